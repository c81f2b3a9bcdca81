"""Read a YAML file so that a syntax error names the file, line and column (PyYAML alone says
``in "<unicode string>"`` for text it was handed, and jsonargparse passes that on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def yaml_problem(error: yaml.YAMLError) -> str:
    """``line L, column C: what is wrong`` (1-based, as editors count) of a PyYAML error."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if "'\\t'" in problem:
        problem += " (YAML indents with spaces; a tab is not allowed)"
    return where + problem


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """The parsed contents of the YAML file ``path`` (``None`` for an empty file).

    Raises:
        ValueError: ``"{what} {path}: not valid YAML at line L, column C: ..."``, or unreadable.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ValueError(f"{what} {path}: cannot be read ({err.strerror})") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{what} {path}: not valid YAML at {yaml_problem(err)}") from None


def config_files(args: list[str]) -> list[str]:
    """The files of ``--config FILE`` and ``--config=FILE`` in ``args``, in order."""
    files = []
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
        elif arg == "--config" and i + 1 < len(args):
            files.append(args[i + 1])
    return files


def check_yaml_syntax(files: list[str]) -> None:
    """Each of ``files`` that exists parses as YAML (a missing one is the parser's to report).

    Raises:
        ValueError: naming the first file that does not parse, its line and column.
    """
    for file in files:
        if Path(file).is_file():
            read_yaml(file)
