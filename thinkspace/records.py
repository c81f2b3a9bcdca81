"""Read benchmark files (jsonl, json, parquet, arrow) with errors that name the file and line.

Every record comes with its location, ``"path:line"`` for jsonl (``"path:#i"`` for the
i-th entry of a json list, parquet or arrow table), so scorers and dataset adapters can say
exactly which record is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Located = tuple[str, dict[str, Any]]


def read_jsonl(path: str | Path) -> list[Located]:
    """``(location, record)`` for every non-blank line of a JSON-lines file (UTF-8, a leading BOM allowed).

    Raises:
        FileNotFoundError: no such file (message names it).
        ValueError: a line is not valid JSON or not a JSON object (message names file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file {path} not found")
    out: list[Located] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a BOM (Windows editors) dropped
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{number}: not UTF-8 text (byte {raw[err.start]:#04x} at column "
                                 f"{err.start + 1}); expected UTF-8 JSON lines") from err
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: malformed JSON line ({err.msg} at column {err.colno})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            out.append((f"{path}:{number}", record))
    return out


def read_json(path: str | Path) -> Any:
    """The value of a UTF-8 JSON file (a leading BOM allowed); errors name the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file {path} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))  # a leading BOM dropped
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
                         "expected UTF-8 JSON") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: malformed JSON ({err.msg})") from err


def read_json_list(path: str | Path, key: str | None = None) -> list[Located]:
    """Entries of a UTF-8 JSON file (a leading BOM allowed) holding a list (or a dict whose ``key`` holds the list)."""
    path = Path(path)
    data = read_json(path)
    if key is not None:
        if not isinstance(data, dict) or key not in data:
            raise ValueError(f"{path}: expected a JSON object with a {key!r} list")
        data = data[key]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records")
    return [(f"{path}:#{i}", r) for i, r in enumerate(data)]


def read_table(path: str | Path) -> list[Located]:
    """Records of a ``.json`` (list), ``.parquet`` or ``.arrow`` file, by suffix; any other suffix is read
    as JSON lines.

    Parquet needs ``pyarrow`` or ``pandas``, Arrow needs ``pyarrow`` (the ``parquet`` extra); without them
    the error says so, naming the extra.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix == ".arrow":
        return _read_arrow(path)
    if suffix == ".json":
        return read_json_list(path)
    return read_jsonl(path)


def _read_parquet(path: Path) -> list[Located]:
    if not path.is_file():
        raise FileNotFoundError(f"file {path} not found")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError(
                f"{path}: reading parquet needs pyarrow or pandas (the parquet extra: "
                "pip install 'thinkspace[parquet]'), or convert the file to jsonl"
            ) from err
        rows = pd.read_parquet(path).to_dict(orient="records")
    else:
        try:
            rows = pq.read_table(path).to_pylist()
        except pa.ArrowException as err:
            raise ValueError(f"{path}: not a parquet table ({err}); expected a parquet file, as Hugging Face "
                             "datasets publish a split") from err
    return [(f"{path}:#{i}", _plain(r)) for i, r in enumerate(rows)]


def _read_arrow(path: Path) -> list[Located]:
    """Rows of an Arrow IPC file as Hugging Face ``datasets`` saves a split (``data-00000-of-00001.arrow``,
    the stream format), or in the IPC file format."""
    if not path.is_file():
        raise FileNotFoundError(f"file {path} not found")
    try:
        import pyarrow as pa
    except ImportError as err:
        raise ImportError(f"{path}: reading an .arrow file needs pyarrow (the parquet extra: pip install "
                          "'thinkspace[parquet]'), or export the split to jsonl") from err
    with pa.memory_map(str(path)) as source:
        try:
            table = pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            try:
                table = pa.ipc.open_file(source).read_all()
            except pa.ArrowInvalid as err:
                raise ValueError(f"{path}: not an Arrow table ({err}); expected an Arrow IPC stream or file, "
                                 "as `datasets` saves a split") from err
    return [(f"{path}:#{i}", row) for i, row in enumerate(table.to_pylist())]


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """numpy arrays and scalars from parquet readers as plain lists and numbers."""
    out = {}
    for k, v in record.items():
        out[k] = v.tolist() if hasattr(v, "tolist") else v
    return out


def field(record: dict[str, Any], key: str, where: str, what: str = "") -> Any:
    """``record[key]``, or a ``KeyError`` naming the location, the key and what was expected."""
    if key not in record:
        hint = f" ({what})" if what else ""
        present = ", ".join(sorted(record)) or "none"
        raise KeyError(f"{where}: missing field {key!r}{hint}; fields present: {present}")
    return record[key]


def position(where: str) -> tuple[str, str]:
    """``(file, "line N")`` of a jsonl location ``"path:N"``; ``(file, "#i")`` of ``"path:#i"`` (and
    of other positions, e.g. MSQA's ``"path:scan.response#i"``)."""
    file, _, pos = where.rpartition(":")
    return (file, f"line {pos}") if pos.isdigit() else (file, pos)


def refuse_duplicate_ids(located_ids: list[tuple[str, str]], what: str = "sample id") -> None:
    """Raise if an id appears twice among ``(location, id)`` pairs (a duplicate would be read, trained
    on or scored twice).

    Raises:
        ValueError: ``"{file}: sample id 'x' at line 3 and again at line 7; expected each id once"``.
    """
    first: dict[str, str] = {}
    for where, key in located_ids:
        if key in first:
            file, was = position(first[key])
            again_file, again = position(where)
            again = again if again_file == file else where
            raise ValueError(f"{file}: {what} {key!r} at {was} and again at {again}; expected each id once")
        first[key] = where
