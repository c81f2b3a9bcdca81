"""Where a backbone's files come from: ``tiny:<name>`` (built once, cached), a directory or a Hub id."""

from __future__ import annotations

import json
from pathlib import Path

from thinkspace.backbones.registry import TINY_PREFIX


def resolve_model_path(path: str) -> str:
    """Turn a model reference into something ``from_pretrained`` loads.

    ``tiny:<name>`` builds (once, cached) a tiny random model of the family that names it
    (:mod:`thinkspace.backbones.registry`) and returns its directory. An existing directory
    must hold a ``config.json``. Anything else (``owner/name``) is passed through as a Hub id
    (which needs the Hub or its local cache).

    Raises:
        ValueError: ``tiny:`` with a name no family builds.
        FileNotFoundError: a directory without ``config.json``, or a path-like
            reference (``./``, ``/``, ``~``) that does not exist.
    """
    if path.startswith(TINY_PREFIX):
        from thinkspace.backbones.tiny import tiny_model_dir  # builds with transformers: imported on use

        return str(tiny_model_dir(path[len(TINY_PREFIX):]))
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(f"{local}: no config.json; expected a Hugging Face model directory")
        return str(local)
    if path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise FileNotFoundError(f"model path {path!r} does not exist; expected a model directory or a Hub id")
    return path


def read_model_type(path: str) -> str:
    """The ``model_type`` in a model's ``config.json`` (local directory or Hub id)."""
    local = Path(path) / "config.json"
    if local.is_file():
        try:
            return json.loads(local.read_text())["model_type"]
        except (json.JSONDecodeError, KeyError) as err:
            raise ValueError(f"{local}: expected JSON with a 'model_type' key ({err})") from err
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).model_type
