"""The sweep file and its expansion into runs.

A sweep file (YAML) lists axes of config overrides, in dotted keys as on the command
line (``model.optimizer.init_args.lr``)::

    settings:                # named bundles of overrides: one axis, its column "setting"
      text_only: {}
      layout: {model.objectives.layout: {class_path: thinkspace.objectives.LayoutReconstruction}}
    grid:                    # every combination of these values
      data.batch_size: [8, 16]
    zip:                     # each group is one axis: its lists advance together
      - model.optimizer.init_args.lr: [1.0e-4, 3.0e-4]
        trainer.max_steps: [200, 100]
    seeds: [0, 1, 2]         # one run per seed, written to every key of seed_keys
    seed_keys: [seed_everything]
    fixed: {trainer.max_steps: 50}  # applied to every run (before the axes)
    evaluate:                # optional test stages after fit: name -> overrides
      heldout: {data.test: {...}}
    metric: heldout:test/accuracy  # the headline metric: of the chart and the paired statistics
    baseline: text_only      # the setting every other one is compared with, question by question
    columns: [val/accuracy, val/loss]  # metrics of results.md (default: every val/ and test/ one)
    command: [thinkspace]    # how a run is launched (a program taking thinkspace's arguments)
    launcher: local          # local (this machine) or slurm (one job per run); --launcher overrides
    max_parallel: 2          # local: runs at once, CPU threads / GPUs split between them
    slurm: {partition: gpu, timeout_min: 1440, gpus_per_node: 8}  # see thinkspace.sweep.slurm

Runs are the product settings x grid x zip groups x seeds, in that order. A value
``null`` switches a component off (``model.objectives.layout: null``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkspace.utils.yaml_files import read_yaml

KNOWN = ("settings", "grid", "zip", "seeds", "seed_keys", "fixed", "evaluate", "metric", "baseline", "columns",
         "command", "launcher", "max_parallel", "slurm")
LAUNCHERS = ("local", "slurm")


@dataclass
class RunSpec:
    """One run of a sweep.

    Attributes:
        name: its directory name (stable: a function of its overrides alone).
        overrides: dotted key -> value, in the order they are applied.
        labels: axis -> shown value, for the results table (``setting``, ``lr``, ``seed``...).
        seed: the run's seed, or None without a seed axis.
    """

    name: str
    overrides: dict[str, Any]
    labels: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    @property
    def group(self) -> str:
        """The run's setting without its seed: runs of one group are averaged."""
        return ", ".join(f"{k}={v}" for k, v in self.labels.items() if k != "seed") or "base"


@dataclass
class Sweep:
    """A parsed sweep file."""

    path: Path
    runs: list[RunSpec]
    evaluate: dict[str, dict[str, Any]]
    metric: str
    command: list[str]
    columns: list[str] | None = None
    launcher: str = "local"
    max_parallel: int = 1
    slurm: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None


def load_sweep(path: str | Path) -> Sweep:
    """Read and expand a sweep file.

    Raises:
        ValueError: naming the file and key, for an unknown section, an axis without
            values, lists of different lengths in a zip group, an empty sweep, two runs
            with the same overrides, a ``metric`` of an evaluate stage it does not list, or a
            ``baseline`` that is none of the settings.
    """
    path = Path(path)
    data = read_yaml(path, what="sweep file")  # a syntax error or a repeated key names file and line
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"sweep file {path}: expected a mapping of sections {list(KNOWN)}, got {type(data).__name__}")
    unknown = sorted(set(data) - set(KNOWN))
    if unknown:
        raise ValueError(f"sweep file {path}: unknown section(s) {unknown}; expected some of {list(KNOWN)}")
    runs = expand(data, where=str(path))
    evaluate = data.get("evaluate") or {}
    if not isinstance(evaluate, dict) or not all(isinstance(v, dict | None) for v in evaluate.values()):
        raise ValueError(f"sweep file {path}: 'evaluate' must map stage names to overrides")
    command = data.get("command") or ["thinkspace"]
    if isinstance(command, str):
        command = command.split()
    columns = data.get("columns")
    if columns is not None and (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)):
        raise ValueError(f"sweep file {path}: 'columns' must list metric names, got {columns!r}")
    launcher = data.get("launcher") or "local"
    if launcher not in LAUNCHERS:
        raise ValueError(f"sweep file {path}: 'launcher' must be one of {list(LAUNCHERS)}, got {launcher!r}")
    max_parallel = data.get("max_parallel", 1)
    if not isinstance(max_parallel, int) or isinstance(max_parallel, bool) or max_parallel < 1:
        raise ValueError(f"sweep file {path}: 'max_parallel' must be a positive integer, got {max_parallel!r}")
    slurm = _mapping(data, "slurm", str(path))
    metric = str(data.get("metric") or "val/accuracy")
    stage = metric.rpartition(":")[0]
    if stage and stage not in evaluate:
        raise ValueError(f"sweep file {path}: 'metric' {metric!r} is of the evaluate stage {stage!r}, which "
                         f"'evaluate' does not list (it lists {list(evaluate)})")
    baseline = data.get("baseline")
    settings = list(data.get("settings") or {})
    if baseline is not None and baseline not in settings:
        raise ValueError(f"sweep file {path}: 'baseline' must name one of the settings {settings}, got {baseline!r}")
    return Sweep(path, runs, {k: v or {} for k, v in evaluate.items()}, metric,
                 [str(c) for c in command], columns, launcher, max_parallel, dict(slurm), baseline)


def _mapping(data: dict, key: str, where: str) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"sweep file {where}: '{key}' must be a mapping, got {type(value).__name__}")
    return value


def _values(values: Any, key: str, where: str) -> list:
    if not isinstance(values, list) or not values:
        raise ValueError(f"sweep file {where}: axis '{key}' must list at least one value, got {values!r}")
    return values


def expand(data: dict[str, Any], where: str = "<sweep>") -> list[RunSpec]:
    """The runs of a parsed sweep file (see the module docstring), in order."""
    fixed = _mapping(data, "fixed", where)
    axes: list[list[tuple[dict[str, Any], dict[str, Any]]]] = []  # per axis: (labels, overrides) choices
    settings = _mapping(data, "settings", where)
    if "settings" in data and not settings:
        raise ValueError(f"sweep file {where}: 'settings' is empty; name at least one setting")
    if settings:
        for name, bundle in settings.items():
            if not isinstance(bundle, dict | None):
                raise ValueError(f"sweep file {where}: setting '{name}' must map keys to values, got {bundle!r}")
        axes.append([({"setting": name}, dict(bundle or {})) for name, bundle in settings.items()])
    for key, values in _mapping(data, "grid", where).items():
        axes.append([({_short(key): _label(v)}, {key: v}) for v in _values(values, f"grid.{key}", where)])
    groups = data.get("zip") or []
    if not isinstance(groups, list):
        raise ValueError(f"sweep file {where}: 'zip' must be a list of groups of equal-length axes")
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not group:
            raise ValueError(f"sweep file {where}: zip[{i}] must map keys to lists of values")
        lengths = {k: len(_values(v, f"zip[{i}].{k}", where)) for k, v in group.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"sweep file {where}: zip[{i}] lists of different lengths {lengths}; they advance "
                             "together, so they must be equally long")
        n = next(iter(lengths.values()))
        axes.append([({_short(k): _label(v[j]) for k, v in group.items()}, {k: v[j] for k, v in group.items()})
                     for j in range(n)])
    seeds = data.get("seeds")
    seed_keys = data.get("seed_keys") or ["seed_everything"]
    if seeds is not None:
        seeds = _values(seeds, "seeds", where)
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ValueError(f"sweep file {where}: seeds must be integers, got {seeds}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"sweep file {where}: seeds repeat: {seeds}")
        axes.append([({"seed": s}, {k: s for k in seed_keys}) for s in seeds])
    if not axes:
        raise ValueError(f"sweep file {where}: no runs: it lists none of settings, grid, zip, seeds (or only empty "
                         "ones); give at least one axis")
    runs, seen = [], {}
    for combo in itertools.product(*axes):
        labels, overrides = {}, dict(fixed)
        for lab, ovr in combo:
            labels.update(lab)
            overrides.update(ovr)
        seed = labels.get("seed")
        name = run_name(labels, overrides)
        same = _digest(sorted(overrides.items(), key=lambda kv: kv[0]))
        if same in seen:
            raise ValueError(f"sweep file {where}: runs {seen[same]} and {labels} have the same overrides")
        seen[same] = labels
        runs.append(RunSpec(name, overrides, labels, seed))
    return runs


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _label(value: Any) -> Any:
    """A value as the table shows it: scalars as they are, structures by a short hash."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return "#" + _digest(value)[:6]


def _digest(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")


def run_name(labels: dict[str, Any], overrides: dict[str, Any]) -> str:
    """The run's directory name: its labels, readable, then a hash of all its overrides.

    The hash makes names collision-free (two runs differ in their overrides, so in
    their hash) and stable: it depends on the overrides alone, not on the other runs or
    their order. Example: ``setting=pointmap_seed=1_3fa2c9d1``.
    """
    parts = []
    for key, value in labels.items():
        text = _UNSAFE.sub("-", str(value)).strip("-")[:24] or "x"
        parts.append(f"{_UNSAFE.sub('-', key)}={text}")
    return "_".join([*parts, _digest(sorted(overrides.items(), key=lambda kv: kv[0]))[:8]])
