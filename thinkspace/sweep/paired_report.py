"""The paired section of ``results.md``: every setting against the sweep's ``baseline`` setting.

Reads the ``questions_test_<stage>.csv`` files of the headline metric's evaluate stage
(``<stage>:test/...``), pairs each setting's answers with the baseline's by seed and
question id (within the same values of any other axis), and computes the statistics of
``thinkspace.sweep.paired``; when the files name each question's task (``task`` column, or a
synthetic id's family: ``synthetic-<task>-...``) and there are several, the same statistics
per task follow. Anything that stops a comparison (no baseline, a validation
headline, a missing file, question sets that differ) becomes a line of the report, not an
error: the rest of the report is still written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from thinkspace.sweep.files import questions_path, read_questions, read_tasks
from thinkspace.sweep.paired import BOOTSTRAP_SEED, REPLICATES, PairedComparison, compare, holm


@dataclass
class PairedSection:
    """The markdown of the section and, for the chart, each compared group's comparison."""

    markdown: str
    comparisons: list[tuple[str, PairedComparison]] = field(default_factory=list)


def _key(labels: dict[str, Any], setting: str | None = None) -> tuple:
    """A group's identity: its labels without the seed (the setting replaced when given)."""
    labels = {k: v for k, v in labels.items() if k != "seed"}
    if setting is not None:
        labels["setting"] = setting
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def load_answers(members: list[dict[str, Any]], stage: str, notes: list[str]) -> dict[Any, dict[str, int]]:
    """Seed -> (question id -> correct) of a group's finished runs; a missing or bad file is a note."""
    answers = {}
    for row in members:
        if row["state"] != "done":
            continue
        path = questions_path(row["dir"], f"test_{stage}")
        if not path.exists():
            notes.append(f"run {row['name']}: no {path.name} (a run from before per-question files, or an "
                         f"evaluate stage named otherwise); it is left out of the paired statistics")
            continue
        try:
            answers[row["labels"].get("seed")] = read_questions(path)
        except ValueError as e:
            notes.append(f"run {row['name']}: {e}; it is left out of the paired statistics")
    return answers


def load_tasks(members: list[dict[str, Any]], stage: str) -> dict[str, str]:
    """Question id -> task from the first finished run of a group whose file names tasks (else empty)."""
    for row in members:
        path = questions_path(row["dir"], f"test_{stage}")
        if row["state"] == "done" and path.exists():
            try:
                tasks = read_tasks(path)
            except (OSError, ValueError):
                continue
            if tasks:
                return tasks
    return {}


def align(base: dict[Any, dict[str, int]], other: dict[Any, dict[str, int]]
          ) -> tuple[list[str], np.ndarray, np.ndarray] | str:
    """The question ids and both groups' answers as aligned ``[S, Q]`` arrays over their common seeds,
    or why they cannot be.

    Every seed of both groups must hold the same question ids (the two-way bootstrap
    resamples questions across seeds); the message names a seed and an id that differs.
    """
    seeds = [s for s in base if s in other]
    if not seeds:
        return f"no seed has answers from both (baseline seeds {list(base)}, setting seeds {list(other)})"
    ids = sorted(base[seeds[0]])
    for seed in seeds:
        for name, answers in (("baseline", base[seed]), ("setting", other[seed])):
            if set(answers) != set(ids):
                odd = sorted(set(answers) ^ set(ids))[0]
                return (f"question sets differ: seed {seed} of the {name} has {len(answers)} questions, seed "
                        f"{seeds[0]} of the baseline {len(ids)} (e.g. id {odd!r} is in one only)")
    return (ids, np.array([[base[s][i] for i in ids] for s in seeds]),
            np.array([[other[s][i] for i in ids] for s in seeds]))


def _baseline_cells(answers: dict[Any, dict[str, int]]) -> str:
    """``seeds x questions | accuracy`` of the baseline over all its answers."""
    pooled = [v for seed_answers in answers.values() for v in seed_answers.values()]
    if not pooled:
        return "- | -"
    sizes = {len(seed_answers) for seed_answers in answers.values()}
    shape = f"{len(answers)} x {sizes.pop()}" if len(sizes) == 1 else f"{len(answers)} seeds"
    return f"{shape} | {np.mean(pooled):.3f}"


def _p(value: float) -> str:
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def _row(name: str, result: PairedComparison, adjusted: float) -> str:
    return (f"| {name} | {result.seeds} x {result.questions} | {result.accuracy:.3f} | {result.difference:+.3f} | "
            f"[{result.low:+.3f}, {result.high:+.3f}] | {result.b} / {result.c} | {_p(result.p)} | {_p(adjusted)} |")


def _rows(entries: list[tuple[str, PairedComparison]]) -> list[str]:
    """Table rows of ``(name cells, comparison)`` entries, with Holm's correction across all of them."""
    adjusted = holm([result.p for _, result in entries])
    return [_row(name, result, p) for (name, result), p in zip(entries, adjusted)]


def by_task(group: str, ids: list[str], base: np.ndarray, other: np.ndarray,
            tasks: dict[str, str]) -> list[tuple[str, PairedComparison]]:
    """One setting's comparison restricted to each task's questions (tasks in sorted order), as
    ``(name cells, comparison)`` entries of the per-task table."""
    entries = []
    for task in sorted({tasks[i] for i in ids if i in tasks}):
        columns = [j for j, i in enumerate(ids) if tasks.get(i) == task]
        result = compare(base[:, columns], other[:, columns])
        entries.append((f"{group} | {task} | {result.baseline_accuracy:.3f}", result))
    return entries


def paired_section(rows: list[dict[str, Any]], headline: str, baseline: str | None) -> PairedSection:
    """The section for ``results.md`` (see the module docstring); rows as ``report.collect`` gives them."""
    settings = list(dict.fromkeys(r["labels"]["setting"] for r in rows if "setting" in r["labels"]))
    if baseline is None:
        if not settings:
            return PairedSection("")
        return PairedSection("\nPaired statistics: none, the sweep names no `baseline` setting (add `baseline: "
                             "<setting>` to the sweep file, or pass `--baseline` with `--report`).\n")
    stage, _, metric = headline.rpartition(":")
    if not stage:
        return PairedSection(f"\nPaired statistics: none. They need an evaluate stage: the headline `{headline}` "
                             "is a validation metric, and per-question answers are written by `evaluate` (test) "
                             "stages only; make the headline `<stage>:test/accuracy` of an `evaluate` stage.\n")
    if baseline not in settings:
        return PairedSection(f"\nPaired statistics: none, the baseline `{baseline}` is none of the settings "
                             f"here {settings}.\n")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_key(row["labels"]), []).append(row)
    notes: list[str] = []
    answers = {key: load_answers(members, stage, notes) for key, members in groups.items()}
    head = ["setting", "seeds x questions", "accuracy", "difference vs baseline", "95% CI", "b / c", "p (bootstrap)",
            "p (Holm)"]
    table: list[str | PairedComparison] = []  # a finished line, or a comparison whose p Holm adjusts below
    comparisons, task_entries = [], []
    for key, members in groups.items():
        group, labels = members[0]["group"], members[0]["labels"]
        if labels.get("setting") == baseline:
            table.append(f"| {group} (baseline) | {_baseline_cells(answers[key])} | | | | | |")
            continue
        partner = _key(labels, baseline)
        aligned = align(answers.get(partner, {}), answers[key]) if partner in groups else "no baseline runs"
        if isinstance(aligned, str):
            notes.append(f"{group}: no paired statistics: {aligned}")
            table.append(f"| {group} | - | - | - | - | - | - | - |")
            continue
        result = compare(*aligned[1:])
        comparisons.append((group, result))
        table.append(result)
        tasks = load_tasks(groups[partner], stage)
        if len(set(tasks.values())) > 1:
            task_entries += by_task(group, *aligned, tasks)
    rows = iter(_rows(comparisons))
    lines = [f"\n### Paired against `{baseline}`: answers of the `{stage}` stage\n",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             *(line if isinstance(line, str) else next(rows) for line in table)]
    other = "" if metric == "test/accuracy" else f" (the headline `{headline}` is not it: these are of accuracy)"
    lines.append(f"\naccuracy: share of the `{stage}` stage's multiple-choice questions answered right{other}, "
                 "over the seeds both settings finished; difference: setting "
                 "minus baseline on the same questions and seeds; 95% CI: paired bootstrap, resampling seeds and "
                 f"questions ({REPLICATES} replicates, generator seed {BOOTSTRAP_SEED}); b: pairs (seed, question) "
                 "the baseline answered right and the setting wrong, c: the reverse (descriptive); p (bootstrap): "
                 "two-sided, from the same replicates as the interval (below 0.05 when the interval excludes 0; "
                 f"at least {_p(2 / (REPLICATES + 1))}); p (Holm): corrected by Holm's method across the "
                 f"{len(comparisons)} comparison{'s' * (len(comparisons) != 1)} of this table: a setting differs "
                 "from the baseline when it is "
                 "below 0.05 (docs/ablations.md says how to read them).")
    if task_entries:
        head = ["setting", "task", "baseline accuracy", "seeds x questions", "accuracy", "difference vs baseline",
                "95% CI", "b / c", "p (bootstrap)", "p (Holm)"]
        lines += ["\n#### By task (the questions files' `task` column, or the family a synthetic id names)\n",
                  "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head), *_rows(task_entries),
                  ("\nThe same statistics on each task's questions alone (each with its own bootstrap); p (Holm): "
                   f"corrected across the {len(task_entries)} rows of this table.")]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return PairedSection("\n".join(lines) + "\n", comparisons)
