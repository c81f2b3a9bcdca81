"""``thinkspace sweep``: run a grid of configs one after another and tabulate the results.

    thinkspace sweep --config BASE.yaml --grid SWEEP.yaml [--out DIR] [--dry-run] [--max-runs N]
    thinkspace sweep --report DIR

Every run's overrides are checked against the CLI's parser before any run starts.
Runs execute one after another, each stage (fit, then any ``evaluate`` test stage) in
its own subprocess (so multi-GPU strategies launch their own processes as usual).
Finished runs are skipped, interrupted ones resumed, crashed ones recorded; at the end
``results.csv``, ``results.md`` and ``results.png`` are written into ``DIR`` (default
``runs/sweeps/<grid file stem>``). Exit status: 0 when every executed run finished, 1 when
any failed, 2 for bad input (nothing run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from thinkspace.sweep.grid import load_sweep
from thinkspace.sweep.metrics import write_json
from thinkspace.sweep.report import write_report
from thinkspace.sweep.resolve import resolve
from thinkspace.sweep.runner import execute, prepare_run, read_status


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkspace sweep", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="the base config every run starts from (a `thinkspace fit` config)")
    p.add_argument("--grid", help="the sweep file: settings, grid, zip, seeds (see thinkspace.sweep.grid)")
    p.add_argument("--out", help="directory of the runs and results (default: runs/sweeps/<grid file stem>)")
    p.add_argument("--dry-run", action="store_true", help="print every run, its overrides and resolved config")
    p.add_argument("--max-runs", type=int, default=None, help="execute at most N unfinished runs, then report")
    p.add_argument("--report", metavar="DIR", help="only write the results of the runs in DIR")
    p.add_argument("--metric", default=None, help="headline metric of the chart (default: the sweep file's)")
    p.add_argument("--no-chart", action="store_true", help="skip results.png")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.report:
            saved = Path(args.report) / "sweep.json"
            plan = json.loads(saved.read_text()) if saved.exists() else {}
            paths = write_report(args.report, args.metric or plan.get("metric") or "val/accuracy",
                                 chart=not args.no_chart, columns=plan.get("columns"))
            print("\n".join(f"[sweep] wrote {p}" for p in paths.values()))
            return 0
        if not args.config or not args.grid:
            print("thinkspace sweep: give --config BASE.yaml and --grid SWEEP.yaml (or --report DIR)", file=sys.stderr)
            return 2
        return sweep(args)
    except ValueError as e:
        print(f"thinkspace sweep: error: {e}", file=sys.stderr)
        return 2


def sweep(args: argparse.Namespace) -> int:
    config = str(args.config)
    if not Path(config).is_file():
        raise ValueError(f"--config {config}: no such file")
    plan = load_sweep(args.grid)
    out = Path(args.out or Path("runs") / "sweeps" / Path(args.grid).stem)
    # check every run before any starts: a misspelt key fails here, not after hours
    resolved = {}
    for i, spec in enumerate(plan.runs):
        try:
            resolved[spec.name] = resolve("fit", config, spec.overrides)
            if i == 0:
                for name, extra in plan.evaluate.items():
                    resolve("test", config, {**spec.overrides, **extra})
        except ValueError as e:
            raise ValueError(f"run {spec.name} ({spec.labels}): {e}") from None
    if args.dry_run:
        for spec in plan.runs:
            print(f"=== run {spec.name}  ->  {out / spec.name}")
            print(yaml.safe_dump({"labels": spec.labels, "overrides": spec.overrides}, sort_keys=False).rstrip())
            print("--- resolved config")
            print(resolved[spec.name].rstrip())
        print(f"[sweep] {len(plan.runs)} runs, stages {['fit', *plan.evaluate]} (dry run: nothing executed)")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", {"config": config, "grid": str(args.grid), "runs": [s.name for s in plan.runs],
                                    "metric": plan.metric, "columns": plan.columns})
    start, executed, failed = time.monotonic(), 0, 0
    for spec in plan.runs:
        run_dir = out / spec.name
        prepare_run(spec, config, run_dir, resolved[spec.name])
        status = read_status(run_dir)
        if status is None or status.get("state") != "done":
            if args.max_runs is not None and executed >= args.max_runs:
                continue
            executed += 1
        status = execute(plan, spec, config, run_dir)
        failed += status.get("state") == "failed"
    elapsed = time.monotonic() - start
    print(f"[sweep] {executed} run(s) executed in {elapsed:.0f} s, {failed} failed, {len(plan.runs)} in the sweep")
    paths = write_report(out, args.metric or plan.metric, chart=not args.no_chart, columns=plan.columns)
    print("\n".join(f"[sweep] wrote {p}" for p in paths.values()))
    return 1 if failed else 0
