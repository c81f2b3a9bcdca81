"""``thinkspace sweep``: run a grid of configs, on this machine or as SLURM jobs, and tabulate the results.

    thinkspace sweep --config BASE.yaml [--config MORE.yaml] --grid SWEEP.yaml [--out DIR] [--dry-run [--show-configs]] [--max-runs N]
                     [--launcher local|slurm] [--max-parallel N] [--status] [--resubmit-unknown]
    thinkspace sweep --report DIR | FILE.tar.gz [--out DIR]
    thinkspace sweep --archive DIR [--to FILE.tar.gz]

Every run's overrides are checked against the CLI's parser before any run starts.
Each stage of a run (fit, then any ``evaluate`` test stage) runs in its own subprocess
(so multi-GPU strategies launch their own processes as usual). ``local`` runs up to
``--max-parallel`` runs at once (default 1: one after another), the CPU threads or GPUs
split between them; ``slurm`` submits each unfinished run as one job through submitit and
returns (run the command again, or with ``--status``, to see queued/running/done/failed).
Finished runs are skipped, interrupted ones resumed, crashed ones recorded; at the end
``results.csv``, ``results.md`` and ``results.png`` are written into ``DIR`` (default
``runs/sweeps/<grid file stem>``) from the runs finished so far, with ``report_inputs.tar.gz``:
every file the report read, to keep with the tables (``--report`` takes it in place of ``DIR``). Exit status: 0 when every
executed run finished (or every job was submitted), 1 when any failed or was skipped because a live
run holds its directory (``run.lock``), 2 for bad input (nothing run), 130 when interrupted (Ctrl-C:
the running stages save and stop, none starts).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from thinkspace.errors import ToolParser
from thinkspace.sweep.archive import ARCHIVE_NAME, read_archive, write_archive
from thinkspace.sweep.files import write_json
from thinkspace.sweep.grid import LAUNCHERS, Sweep, load_sweep
from thinkspace.sweep.overrides import run_config
from thinkspace.sweep.parallel import run_parallel
from thinkspace.sweep.results import write_report
from thinkspace.sweep.runner import INTERRUPTED, prepare_run, read_status
from thinkspace.training.run_lock import live_holder

if TYPE_CHECKING:
    from thinkspace.sweep.slurm_settings import SlurmSettings


def parser() -> argparse.ArgumentParser:
    p = ToolParser(prog="thinkspace sweep", description=__doc__.splitlines()[0])
    p.add_argument("--config", action="append",
                   help="the base config every run starts from (a `thinkspace fit` config; repeat to stack files)")
    p.add_argument("--grid", help="the sweep file: settings, grid, zip, seeds (see thinkspace.sweep.grid)")
    p.add_argument("--out", help="directory of the runs and results (default: runs/sweeps/<grid file stem>)")
    p.add_argument("--dry-run", action="store_true", help="check every run and print them as a table; run nothing")
    p.add_argument("--show-configs", action="store_true",
                   help="with --dry-run: print every run's overrides and fully resolved config instead of the table")
    p.add_argument("--max-runs", type=int, default=None, help="execute at most N unfinished runs, then report")
    p.add_argument("--report", metavar="DIR",
                   help="only write the results of the runs in DIR, or of an archive FILE.tar.gz (unpacked into "
                        "--out, default runs/sweeps/<archive name>)")
    p.add_argument("--archive", metavar="DIR",
                   help="pack what the report of the runs in DIR reads (metrics, per-question answers) into "
                        "DIR/report_inputs.tar.gz, or --to FILE; run nothing")
    p.add_argument("--to", metavar="FILE", help="with --archive: the archive to write")
    p.add_argument("--metric", default=None, help="headline metric of the chart (default: the sweep file's)")
    p.add_argument("--baseline", default=None,
                   help="setting the paired statistics compare every other one with (default: the sweep file's)")
    p.add_argument("--no-chart", action="store_true", help="skip results.png")
    p.add_argument("--launcher", choices=LAUNCHERS, default=None,
                   help="local: this machine; slurm: one job per run (default: the sweep file's, else local)")
    p.add_argument("--max-parallel", type=int, default=None,
                   help="local: runs at once, CPU threads/GPUs split between them (default: the sweep file's, else 1)")
    p.add_argument("--status", action="store_true", help="show every run's state (and SLURM job); run nothing")
    p.add_argument("--resubmit-unknown", action="store_true",
                   help="slurm: submit again runs whose last job sacct has no record of")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``thinkspace sweep``; bad input raises (``thinkspace.cli`` reports it: one line, exit code 2)."""
    args = parser().parse_args(argv)
    if args.to is not None and not args.archive:  # else silently ignored: no archive where the user asked
        raise ValueError(f"--to {args.to} is for --archive DIR (the archive to write); a sweep or --report writes "
                         f"none there (a sweep writes its own {ARCHIVE_NAME} into --out)")
    if args.archive:
        path, count = write_archive(args.archive, args.to)
        print(f"[sweep] wrote {path} ({count} files, {path.stat().st_size:,} bytes)")
        return 0
    if args.report:
        report = Path(args.report)
        if report.name.endswith(".tar.gz"):
            report = read_archive(report, args.out or Path("runs") / "sweeps" / report.name.removesuffix(".tar.gz"))
            print(f"[sweep] unpacked {args.report} into {report}")
        saved = report / "sweep.json"
        plan = json.loads(saved.read_text()) if saved.exists() else {}
        paths = write_report(report, args.metric or plan.get("metric") or "val/accuracy",
                             chart=not args.no_chart, columns=plan.get("columns"),
                             baseline=args.baseline or plan.get("baseline"))
        print("\n".join(f"[sweep] wrote {p}" for p in paths.values()))
        return 0
    if not args.config or not args.grid:
        raise ValueError("give --config BASE.yaml and --grid SWEEP.yaml (or --report DIR)")
    return sweep(args)


def sweep(args: argparse.Namespace) -> int:
    INTERRUPTED.clear()
    configs = [str(c) for c in args.config]
    for config in configs:
        if not Path(config).is_file():
            raise ValueError(f"--config {config}: no such file")
    plan = load_sweep(args.grid)
    out = Path(args.out or Path("runs") / "sweeps" / Path(args.grid).stem)
    # check every run before any starts: a misspelt key fails here, not after hours
    resolved = {}
    for i, spec in enumerate(plan.runs):
        try:
            resolved[spec.name] = run_config("fit", configs, spec.overrides)
            if i == 0:
                for extra in plan.evaluate.values():
                    run_config("test", configs, {**spec.overrides, **extra})
        except ValueError as e:
            raise ValueError(f"run {spec.name} ({spec.labels}): {e}") from None
    launcher = args.launcher or plan.launcher
    if launcher == "slurm":
        settings = _slurm_settings(plan, resolved, args)
    elif args.max_parallel is not None and args.max_parallel < 1:
        raise ValueError(f"--max-parallel must be at least 1, got {args.max_parallel}")
    if args.dry_run and args.show_configs:
        for spec in plan.runs:
            print(f"=== run {spec.name}  ->  {out / spec.name}")
            print(yaml.safe_dump({"labels": spec.labels, "overrides": spec.overrides}, sort_keys=False).rstrip())
            print("--- resolved config")
            print(resolved[spec.name].rstrip())
    elif args.dry_run:
        print(run_table(plan, out))
    if args.dry_run:
        print(f"[sweep] {len(plan.runs)} runs, stages {['fit', *plan.evaluate]} (dry run: nothing executed)")
        return 0
    if launcher == "slurm" and settings.cluster == "slurm":  # on a login node, before any directory is made
        from thinkspace.sweep.slurm import require_commands

        require_commands(*(["sacct"] if args.status else ["sbatch", "srun", "sacct"]))
    if args.status:
        return show_status(plan, configs, out, launcher, settings if launcher == "slurm" else None)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", {"config": configs, "grid": str(args.grid), "runs": [s.name for s in plan.runs],
                                    "metric": plan.metric, "columns": plan.columns, "baseline": plan.baseline})
    runs = []
    for spec in plan.runs:
        if live_holder(out / spec.name) is None:  # a directory a live run owns is left as it is (execute says so)
            prepare_run(spec, configs, out / spec.name, resolved[spec.name])
        runs.append((spec, out / spec.name))
    start = time.monotonic()
    if launcher == "slurm":
        from thinkspace.sweep.slurm import launch, slurm_log_hint

        counts = launch(plan, settings, runs, configs, out, args.max_runs, args.resubmit_unknown)
        print(f"[sweep] {len(plan.runs)} runs: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
              + f"; {slurm_log_hint(out, settings)}")
        failed = counts.get("failed", 0) if settings.cluster == "debug" else 0
    else:
        todo, executed = [], 0
        for spec, run_dir in runs:
            status = read_status(run_dir)
            if status is None or status.get("state") != "done":
                if args.max_runs is not None and executed >= args.max_runs:
                    continue
                executed += 1
            todo.append((spec, run_dir))
        statuses = run_parallel(plan, todo, configs, args.max_parallel or plan.max_parallel)
        failed = sum(status.get("state") == "failed" for status in statuses)
        locked = sum(status.get("state") == "locked" for status in statuses)
        print(f"[sweep] {executed - locked} run(s) executed in {time.monotonic() - start:.0f} s, {failed} failed, "
              + (f"{locked} skipped (run dir in use by a live run), " if locked else "")
              + f"{len(plan.runs)} in the sweep")
        failed += locked  # not finished: the exit status says so
        interrupted = sum(status.get("state") == "interrupted" for status in statuses)
        if INTERRUPTED.is_set():
            print(f"[sweep] interrupted (Ctrl-C): {interrupted} run(s) stopped after saving their checkpoint and "
                  "marked interrupted; run the sweep again to resume them")
    paths = write_report(out, args.metric or plan.metric, chart=not args.no_chart, columns=plan.columns,
                         baseline=args.baseline or plan.baseline)
    paths["archive"], _ = write_archive(out)  # the report's inputs, small enough to keep with its tables
    print("\n".join(f"[sweep] wrote {p}" for p in paths.values()))
    if INTERRUPTED.is_set():
        return 130
    return 1 if failed else 0


def run_table(plan: Sweep, out: Path, width: int = 60) -> str:
    """One line per run: its name, its overrides (``key=value``, long values cut at ``width``) and its directory."""
    def shown(value: object) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        return text if len(text) <= width else text[:width - 3] + "..."

    rows = [(spec.name, ", ".join(f"{k}={shown(v)}" for k, v in spec.overrides.items()) or "(base config)",
             str(out / spec.name)) for spec in plan.runs]
    header = ("run", "overrides", "directory")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}" for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _slurm_settings(plan: Sweep, resolved: dict[str, str], args: argparse.Namespace) -> SlurmSettings:
    """The sweep file's ``slurm:`` section, checked against every run's trainer."""
    from thinkspace.sweep.slurm_settings import check_resources, parse_slurm

    if args.max_parallel is not None:
        raise ValueError("--max-parallel is for the local launcher; under SLURM the scheduler decides how many jobs "
                         "run at once (a QOS, slurm.qos, can limit it)")
    if not plan.slurm:
        raise ValueError(f"sweep file {plan.path}: --launcher slurm needs a 'slurm:' section with at least "
                         "timeout_min (see docs/ablations.md)")
    settings = parse_slurm(plan.slurm, f"sweep file {plan.path}")
    for name, text in resolved.items():
        check_resources(settings, text, name)
    return settings


def show_status(plan: Sweep, configs: list[str], out: Path, launcher: str, settings: SlurmSettings | None = None) -> int:
    """Print each run's state (with SLURM: its last job and that job's sacct state); run nothing."""
    runs = [(spec, out / spec.name) for spec in plan.runs]
    if launcher == "slurm":
        from thinkspace.sweep.slurm import launch

        counts = launch(plan, settings, runs, configs, out, submit=False)
    else:
        counts = {}
        for spec, run_dir in runs:
            status = read_status(run_dir)
            state = status["state"] if status else "not run"
            if state != "done" and (run_dir / "checkpoints" / "last.ckpt").exists():
                state += " (a checkpoint to resume from)"
            counts[state] = counts.get(state, 0) + 1
            print(f"[sweep] {spec.name}: {state}")
    print(f"[sweep] {len(plan.runs)} runs: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return 0
