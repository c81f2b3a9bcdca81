"""``BenchmarkScore``: what a scorer returns, as a table (rich) or one JSON object."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BenchmarkScore:
    """Scores of one predictions file.

    Attributes:
        benchmark: ``"mindcube"``, ``"vsibench"``, ``"sqa3d"``, ``"ego3d"``, ``"scanqa"`` or ``"viewspatial"``.
        n: records scored (all of them; see ``skipped`` for any the official code skips).
        overall: the benchmark's headline number, in percent.
        groups: percent per setting (MindCube), question type (VSI-Bench), metric (SQA3D) or
            multiple-choice category (Ego3D-Bench) or metric (ScanQA: EM@1, EM@10, F-value, BLEU-1..4, ...).
        group_key: JSON key of ``groups``: ``"by_setting"``, ``"by_type"``, ``"by_category"`` or ``"by_metric"``.
        counts: records per group (where a group is a set of records).
        columns: further scores per group, a column each in the table: name -> {group: percent,
            ..., "overall": percent} (SQA3D's ``em_refined``, EM-R).
        extra: further numbers in percent (e.g. localization accuracies), unless the key names
            another unit (Ego3D-Bench's ``<category>_rmse_m``: metres).
        notes: remarks worth printing (records skipped, unparseable answers, ...).
    """

    benchmark: str
    n: int
    overall: float
    groups: dict[str, float]
    group_key: str = "by_setting"
    counts: dict[str, int] = field(default_factory=dict)
    columns: dict[str, dict[str, float]] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self, notes: bool = False) -> dict[str, Any]:
        """``{"benchmark", "n", "overall", "by_setting" | "by_type"}`` plus ``"columns"`` (SQA3D's
        ``em_refined``) and ``"extra"`` (SQA3D localization) when present and ``"notes"`` when asked."""
        out: dict[str, Any] = {"benchmark": self.benchmark, "n": self.n, "overall": self.overall,
                               self.group_key: dict(self.groups)}
        if self.columns:
            out["columns"] = {name: dict(values) for name, values in self.columns.items()}
        if self.extra:
            out["extra"] = dict(self.extra)
        if notes and self.notes:
            out["notes"] = list(self.notes)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat ``{prefix/overall: ..., prefix/<group>: ..., prefix/<column>/<group>: ...}`` for a logger (percent)."""
        flat = {f"{prefix}/overall": self.overall}
        flat.update({f"{prefix}/{k}": v for k, v in self.groups.items()})
        for name, values in self.columns.items():
            flat.update({f"{prefix}/{name}/{k}": v for k, v in values.items()})
        flat.update({f"{prefix}/{k}": v for k, v in self.extra.items()})
        return flat

    def print_table(self, console: Any = None) -> None:
        """A readable table on the terminal (rich)."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        name = {"by_setting": "setting", "by_category": "category", "by_metric": "metric"}.get(self.group_key, "question type")
        table = Table(title=f"{self.benchmark}: {self.n} records")
        table.add_column(name)
        table.add_column("n", justify="right")
        table.add_column("score %", justify="right")
        for name in self.columns:
            table.add_column(f"{name} %", justify="right")

        def more(key: str) -> list[str]:
            return [f"{v[key]:.2f}" if key in v else "" for v in self.columns.values()]

        for key, value in self.groups.items():
            table.add_row(key, str(self.counts.get(key, "")), f"{value:.2f}", *more(key))
        for key, value in self.extra.items():
            table.add_row(key, "", f"{value:.2f}", *[""] * len(self.columns))
        table.add_row("overall", str(self.n), f"{self.overall:.2f}", *more("overall"), style="bold")
        console.print(table)
        for note in self.notes:
            console.print(f"note: {note}")
