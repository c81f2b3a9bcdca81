"""Read a YAML file so that a syntax error names the file, line and column (PyYAML alone says
``in "<unicode string>"`` for text it was handed, and jsonargparse passes that on), and so that a
key repeated in one mapping is an error (PyYAML keeps the last one silently: a sweep grid with a
setting named twice would run only the second)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key appears twice in one YAML mapping."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises :class:`DuplicateKeyError` on a key repeated in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<:`` merges are allowed to repeat keys of the merged mapping
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it itself
            if seen is not None:
                raise DuplicateKeyError(
                    None, None,
                    f"key {key!r} repeated (first at line {seen}); each key may appear once in a mapping",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """``yaml.safe_load(text)``, except that a key repeated in one mapping raises :class:`DuplicateKeyError`."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects


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
        ValueError: ``"{what} {path}: not valid YAML at line L, column C: ..."`` (a syntax error or a
            key repeated in one mapping, ``key 'k' repeated (first at line L0)``), or unreadable.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ValueError(f"{what} {path}: cannot be read ({err.strerror})") from err
    try:
        return load_yaml_text(text)
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
    """Each of ``files`` that exists parses as YAML without a repeated key (a missing one is the
    parser's to report).

    Raises:
        ValueError: naming the first file that does not parse, its line and column.
    """
    for file in files:
        if Path(file).is_file():
            read_yaml(file)
