"""The sweep's results: ``results.csv`` (one row per run), ``results.md`` (mean and
standard deviation over seeds per setting; the runs that answered one letter to every question,
``sweep/constant_answers.py``; with a ``baseline`` setting, the paired statistics of
``sweep/paired_report.py``) and ``results.png`` (the headline metric, and
the paired differences with their intervals)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from thinkspace.sweep.constant_answers import constant_answer_section
from thinkspace.sweep.files import write_text
from thinkspace.sweep.paired import PairedComparison
from thinkspace.sweep.paired_report import paired_section
from thinkspace.utils.file_modes import atomic_write

#: metrics shown in results.md (results.csv has every logged scalar)
SHOWN = ("val/", "test/")


def collect(out: Path) -> list[dict[str, Any]]:
    """One record per run directory under ``out`` (those with a ``run.json``), in the sweep's
    order (``sweep.json``), then any others by name.

    Each: ``name``, ``dir``, ``labels``, ``group`` (labels without the seed), ``state``
    (``done``, ``failed`` or ``not run``), ``error`` and ``metrics`` (``key`` for fit,
    ``<stage>:key`` for an evaluation stage ``test_<stage>``).
    """
    rows = []
    saved = Path(out) / "sweep.json"
    order = {name: i for i, name in enumerate(json.loads(saved.read_text())["runs"])} if saved.exists() else {}
    found = sorted(Path(out).glob("*/run.json"), key=lambda p: (order.get(p.parent.name, len(order)), p.parent.name))
    for run_json in found:
        run_dir = run_json.parent
        info = json.loads(run_json.read_text())
        status_path = run_dir / "status.json"
        status = json.loads(status_path.read_text()) if status_path.exists() else {"state": "not run"}
        metrics: dict[str, float | None] = {}
        for path in sorted(run_dir.glob("metrics_*.json")):
            stage = path.stem.removeprefix("metrics_")
            prefix = "" if stage == "fit" else stage.removeprefix("test_") + ":"
            for key, value in json.loads(path.read_text())["metrics"].items():
                metrics[prefix + key] = value
        labels = info.get("labels") or {}
        group = ", ".join(f"{k}={v}" for k, v in labels.items() if k != "seed") or "base"
        error = "" if status["state"] != "failed" else f"{status.get('stage')}: exit {status.get('returncode')}"
        rows.append({"name": info["name"], "dir": run_dir, "labels": labels, "group": group, "state": status["state"],
                     "error": error, "metrics": metrics, "seconds": status.get("seconds")})
    return rows


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def summarise(rows: list[dict[str, Any]], metrics: list[str]) -> list[dict[str, Any]]:
    """Per group (in first-seen order): runs, finished runs, failed runs and, per metric,
    ``(mean, std, n)`` over the finished runs that logged it (None when none did)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    table = []
    for group, members in groups.items():
        done = [r for r in members if r["state"] == "done"]
        stats = {}
        for key in metrics:
            values = [r["metrics"][key] for r in done if r["metrics"].get(key) is not None]
            stats[key] = (*mean_std(values), len(values)) if values else None
        table.append({"group": group, "runs": len(members), "done": len(done),
                      "failed": [r["name"] for r in members if r["state"] == "failed"], "stats": stats})
    return table


def write_report(out: str | Path, headline: str = "val/accuracy", chart: bool = True,
                 columns: list[str] | None = None, baseline: str | None = None) -> dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and (with ``chart``) ``results.png`` into ``out``.

    ``columns`` chooses the metrics of ``results.md`` (default: every ``val/`` and ``test/``
    metric, the headline first); ``results.csv`` always has every logged scalar. With a
    ``baseline`` setting, ``results.md`` also compares every other setting with it on the
    headline's evaluate stage, question by question, and the chart shows those differences.

    Raises:
        ValueError: when ``out`` holds no runs.
    """
    out = Path(out)
    rows = collect(out)
    if not rows:
        raise ValueError(f"sweep report: {out} holds no runs (no */run.json); run `thinkspace sweep` first")
    all_keys = sorted({k for r in rows for k in r["metrics"]})
    label_keys = list(dict.fromkeys(k for r in rows for k in r["labels"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", *label_keys, "state", "error", "seconds", *all_keys])
    for r in rows:
        writer.writerow([r["name"], *(r["labels"].get(k, "") for k in label_keys), r["state"], r["error"],
                         r["seconds"] if r["seconds"] is not None else "",
                         *("" if r["metrics"].get(k) is None else f"{r['metrics'][k]:.6g}" for k in all_keys)])
    paths = {"csv": out / "results.csv", "md": out / "results.md"}
    write_text(paths["csv"], buffer.getvalue())
    shown = [k for k in all_keys if any(k.split(":")[-1].startswith(p) for p in SHOWN)]
    if columns is not None:
        shown = list(columns)
    elif headline in shown:  # the headline first
        shown.remove(headline)
        shown.insert(0, headline)
    table = summarise(rows, shown)
    paired = paired_section(rows, headline, baseline)
    write_text(paths["md"], markdown(table, shown) + constant_answer_section(rows) + paired.markdown)
    if chart:
        paths["png"] = out / "results.png"
        bar_chart(table, headline, paths["png"], paired.comparisons, baseline)
    return paths


def _cell(stat: tuple[float, float, int] | None) -> str:
    if stat is None:
        return "-"
    mean, std, n = stat
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


def markdown(table: list[dict[str, Any]], metrics: list[str]) -> str:
    """The summary table: one row per setting, ``mean ± std`` over its finished runs."""
    head = ["setting", "runs (done/all)", *metrics, "failed runs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table:
        failed = ", ".join(row["failed"]) or ""
        cells = [row["group"], f"{row['done']}/{row['runs']}", *(_cell(row["stats"][k]) for k in metrics), failed]
        lines.append("| " + " | ".join(cells) + " |")
    note = ("\nmean ± sample standard deviation (n - 1) over the finished runs of each setting (seeds); "
            "`-`: no finished run logged it.\n")
    return "\n".join(lines) + "\n" + note


def bar_chart(table: list[dict[str, Any]], metric: str, path: Path,
              comparisons: list[tuple[str, PairedComparison]] | None = None, baseline: str | None = None) -> None:
    """Bars of ``metric`` per setting with standard-deviation error bars; settings with no
    finished run are marked "failed" (or "no data"). With ``comparisons``, a second panel
    beside it: each setting's paired difference in accuracy from the baseline, with its
    95% interval and a line at 0 (the paired interval, not two accuracies' intervals: the
    questions' difficulty cancels in the pairs, so it is usually the narrower)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("thinkspace sweep: the results chart needs matplotlib (pip install matplotlib, or the "
                          "'dev' extra); pass --no-chart to skip it") from e
    names = [row["group"].replace("setting=", "") for row in table]
    means = [row["stats"].get(metric)[0] if row["stats"].get(metric) else 0.0 for row in table]
    stds = [row["stats"].get(metric)[1] if row["stats"].get(metric) else 0.0 for row in table]
    width = max(4.0, 1.1 * len(names) + 1.5)
    if comparisons:
        fig, (ax, right) = plt.subplots(1, 2, figsize=(width + 4.5, 3.6), dpi=120,
                                        gridspec_kw={"width_ratios": [width, 4.5]})
        difference_panel(right, comparisons, baseline)
    else:
        fig, ax = plt.subplots(figsize=(width, 3.6), dpi=120)
    bars = ax.bar(range(len(names)), means, yerr=stds, capsize=4, color="#4C72B0")
    for bar, row in zip(bars, table):
        if not row["stats"].get(metric):
            ax.text(bar.get_x() + bar.get_width() / 2, 0.0, "failed" if row["failed"] else "no data",
                    ha="center", va="bottom", color="#C44E52", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean ± std over seeds", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    with atomic_write(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def difference_panel(ax: Any, comparisons: list[tuple[str, PairedComparison]], baseline: str | None) -> None:
    """Each setting's difference in accuracy from the baseline (points) with its 95% bootstrap interval."""
    names = [group.replace("setting=", "") for group, _ in comparisons]
    y = list(range(len(names)))[::-1]  # the table's order, top to bottom
    diffs = [c.difference for _, c in comparisons]
    errors = [[c.difference - c.low for _, c in comparisons], [c.high - c.difference for _, c in comparisons]]
    ax.errorbar(diffs, y, xerr=errors, fmt="o", color="#4C72B0", capsize=4)
    ax.axvline(0.0, color="#888888", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel(f"accuracy minus {baseline}'s", fontsize=8)
    ax.set_title("paired difference, 95% bootstrap CI", fontsize=9)
