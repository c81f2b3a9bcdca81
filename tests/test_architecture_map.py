"""docs/architecture.md's map of the package stays true to the tree: every entry at the package
root is on the map, and every file the map names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "thinkspace"


def map_block() -> str:
    text = (REPO / "docs" / "architecture.md").read_text()
    block = re.search(r"```\nthinkspace/\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md: no ``` block starting with 'thinkspace/'"
    return block.group(1)


def test_every_root_entry_is_on_the_map():
    mapped = {m.group(1) for m in re.finditer(r"^  ([\w.]+/?)", map_block(), re.M)}
    present = {p.name + "/" if p.is_dir() else p.name for p in PACKAGE.iterdir()
               if p.name != "__init__.py" and not p.name.startswith((".", "__pycache__"))
               and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert present - mapped == set(), "on disk, missing from docs/architecture.md's map"
    assert mapped - present == set(), "on docs/architecture.md's map, not on disk"


def test_every_file_the_map_names_exists():
    files = {p.name for p in PACKAGE.rglob("*.py")}
    named = set(re.findall(r"\b(\w+\.py)\b", map_block()))
    assert named - files == set(), "named on docs/architecture.md's map, no such file in thinkspace/"
