"""A sweep run's overrides: as command-line arguments, checked against thinkspace's own parser.

Every run's overrides become ``--key value`` arguments of ``thinkspace fit`` (so they
mean exactly what they mean on the command line). Before any run starts, each run's
arguments are parsed by the one config reader (:func:`thinkspace.lightning_cli.resolved_yaml`:
nothing is instantiated, no model is loaded), which catches misspelt keys and wrong types and
gives the run's fully resolved config.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from thinkspace.lightning_cli import ConfigError, resolved_yaml


def as_arguments(overrides: dict[str, Any]) -> list[str]:
    """``{"a.b": 1, "c": {"class_path": ...}}`` -> ``["--a.b", "1", "--c", '{"class_path": ...}']``."""
    args = []
    for key, value in overrides.items():
        args += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return args


def run_config(subcommand: str, configs: list[str], overrides: dict[str, Any]) -> str:
    """The resolved config (YAML text) of ``thinkspace SUBCOMMAND --config C1 [--config C2 ...]`` with the
    overrides (the base config files stacked in order).

    Raises:
        ValueError: with the parser's message, when the arguments do not parse; or
            naming the key, when an override names a key the config does not have (the
            parser alone accepts e.g. ``model.objectives.layuot.init_args.weight``).
    """
    try:
        text = resolved_yaml(subcommand, configs, as_arguments(overrides))
    except ConfigError as error:
        # the parser's nested reasons (a wrong class_path, an enum value) kept, as one line
        given = " ".join(f"--config {c}" for c in configs)
        raise ValueError(f"thinkspace {subcommand} {given}: the overrides do not parse: {str(error)[-2000:]}") from None
    check_keys(overrides, base_config(subcommand, configs), ", ".join(configs))
    return text


_BASES: dict[tuple[str, ...], dict] = {}


def base_config(subcommand: str, configs: list[str]) -> dict:
    """The base config's resolved mapping (its files stacked; parsed once per process)."""
    key = (subcommand, *configs)
    if key not in _BASES:
        try:
            _BASES[key] = yaml.safe_load(resolved_yaml(subcommand, configs)) or {}
        except ConfigError as error:
            raise ValueError(f"base config {', '.join(configs)} does not parse: {error}") from None
    return _BASES[key]


def check_keys(overrides: dict[str, Any], base: dict, config: str) -> None:
    """Every override key must exist in the base config, or add one whole component.

    A key may add a new entry to a mapping of components (``model.cues.pointmap``) when
    its value is a whole component (a mapping with ``class_path``) or ``null``.

    Raises:
        ValueError: naming the key, the missing part and the keys that do exist there.
    """
    for key, value in overrides.items():
        node: Any = base
        parts = key.split(".")
        for i, part in enumerate(parts):
            if isinstance(node, dict) and part in node:
                node = node[part]
                continue
            where = ".".join(parts[:i]) or "the top level"
            last = i == len(parts) - 1
            whole = value is None or (isinstance(value, dict) and "class_path" in value)
            parent_is_mapping = node is None or (isinstance(node, dict) and "class_path" not in node)
            if last and whole and parent_is_mapping:
                break  # a new component in a mapping such as model.cues
            known = sorted(node) if isinstance(node, dict) else []
            raise ValueError(f"sweep override '{key}': {config} has no key '{part}' under {where}"
                             + (f" (it has {known})" if known else "")
                             + ("; to add a component give its whole mapping with class_path" if last else ""))
