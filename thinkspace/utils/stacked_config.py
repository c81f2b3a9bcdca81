"""Stacked ``--config`` files merge the mappings keyed by name (objectives, cues, rewards) by name.

jsonargparse merges a later config file into the earlier ones key by key, but a ``dict``-typed value
(``model.objectives: dict[str, Objective | None]``) is one leaf to it: a second file naming one
objective replaced the whole mapping, silently dropping the first file's objectives, while the same
addition as a dotted override (``--model.objectives.confidence ...``) was merged. Here a later file
adds or overrides entries by name, exactly as dotted overrides do:

- a new name is added;
- a name already there with the same (or no) ``class_path`` has its ``init_args`` merged key by key;
- a name with another ``class_path`` is replaced;
- ``name: null`` switches that entry off (kept as ``null``, as ``--model.objectives.name null`` does).

:class:`StackedConfigFile` is the ``--config`` action of the one config reader
(:mod:`thinkspace.lightning_cli`), so this holds for every command that reads a training config.
"""

from __future__ import annotations

from typing import Any

from jsonargparse import ActionConfigFile, Namespace

#: init arguments of the LightningModules that map a name to a component; merged by name
NAMED_KEYS = ("objectives", "cues", "rewards", "reward_weights", "reward_kwargs")


def named_keys(cfg: Namespace) -> list[str]:
    """The dotted keys of ``cfg`` holding a mapping keyed by name: ``model.objectives``, or
    ``model.init_args.rewards`` when the config names its module by ``class_path``."""
    return [key for key in cfg.keys()  # noqa: SIM118 (a Namespace iterates its top level; keys() is dotted)
            if key.startswith("model.") and key.rsplit(".", 1)[-1] in NAMED_KEYS and isinstance(cfg.get(key), dict)]


def merge_entry(before: Any, after: Any) -> Any:
    """One named entry of a later file (``after``) over the earlier one (``before``)."""
    if not (isinstance(before, Namespace) and isinstance(after, Namespace)):
        return after
    if after.get("class_path") not in (None, before.get("class_path")):
        return after  # another class: its arguments are its own
    merged = before.clone()
    merged.update(after)  # leaves of init_args, key by key
    return merged


def merge_by_name(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any] | None:
    """``after`` (what the later file gave) merged over ``before`` name by name; the earlier names first."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    return {**before, **{name: merge_entry(before.get(name), entry) for name, entry in after.items()}}


class StackedConfigFile(ActionConfigFile):
    """jsonargparse's ``--config`` action, with the named mappings of each file merged by name into the
    files before it (module docstring)."""

    def __call__(self, parser: Any, cfg: Namespace, values: Any, option_string: str | None = None) -> None:
        before = {key: cfg.get(key) for key in named_keys(cfg)}
        super().__call__(parser, cfg, values, option_string)
        for key, earlier in before.items():
            cfg[key] = merge_by_name(earlier, cfg.get(key))
