"""The ``thinkspace`` command.

``thinkspace fit|validate|test|predict --config FILE [--config FILE2] [--a.b value]``
runs Lightning's CLI over :class:`SpatialVLM` (or the LightningModule a config names in
``model.class_path``, e.g. ``thinkspace.rl.SpatialGRPO``) and :class:`SpatialDataModule` with
OmegaConf interpolation. Every run writes under one predictable directory,
``run_dir`` (default ``--trainer.default_root_dir``, else ``runs/<stem of the first --config>``)::

    runs/quickstart/
      config.yaml            # the fully resolved config of the last invocation
      run.lock               # while a run runs: its pid, host, start (one live run per directory; training/run_lock.py)
      events.out.tfevents.*  # TensorBoard
      checkpoints/last.ckpt  # resume with --ckpt_path last (exact: docs/architecture.md)
      predictions_test_<benchmark>.jsonl, scores_test_<benchmark>.json  # test/predict on a benchmark

``last.ckpt`` is rewritten at validation (or epoch end) and every ``--checkpoint_every_n_steps``
optimizer steps (:mod:`thinkspace.training.resume`).

Other subcommands (``synth``, ...) are argparse programs dispatched by name; every one that reads a
training config reads it through :func:`thinkspace.lightning_cli.build_cli`, and every one reports bad
input through :mod:`thinkspace.errors` (one line, exit code 2).
"""

from __future__ import annotations

import sys

from thinkspace.errors import BAD_INPUT, run_reporting_errors
from thinkspace.training.noise import silence_known_noise

#: subcommands that are not Lightning's: name -> module with ``main(argv) -> int``.
TOOLS = {"synth": "thinkspace.synth.command", "score": "thinkspace.eval.command",
         "cache-teacher": "thinkspace.teachers.command", "points": "thinkspace.inference.points",
         "sweep": "thinkspace.sweep.command", "export": "thinkspace.inference.export",
         "ask": "thinkspace.inference.ask"}

#: subcommands that build no model: they import neither transformers nor Lightning (fast start)
LIGHT = ("score", "synth", "sweep")

#: every subcommand with one line: ``thinkspace --help`` and the unknown-command error list them.
COMMANDS = {
    "fit": "train a model (Lightning's CLI over SpatialVLM or the config's model.class_path)",
    "validate": "run the validation loop of a config on a checkpoint",
    "test": "test on a benchmark: predictions in its own format and scores in the run dir",
    "predict": "predict on a benchmark: predictions in its own format in the run dir",
    "synth": "render the synthetic spatial world (views, video walks, questions) to a folder",
    "score": "score a predictions file as the benchmark's official evaluator does",
    "sweep": "run an ablation grid locally or on SLURM and tabulate the results",
    "export": "a trained run as a Hugging Face model directory plus thinkspace's heads",
    "ask": "answer a question about images or a video with a trained or exported model",
    "points": "write the point cloud one sample's 3D latents decode to, as a .ply file",
    "cache-teacher": "run a config's geometry teacher once over its data and cache the features",
}


def command_list() -> str:
    """One line per subcommand, for ``--help`` and the unknown-command error."""
    width = max(map(len, COMMANDS))
    return "\n".join(f"  {name:<{width}}  {line}" for name, line in COMMANDS.items())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``thinkspace`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args if a != "--debug"), None)
    if first in (None, "-h", "--help"):
        print("usage: thinkspace COMMAND [--debug] ...  (thinkspace COMMAND --help for its options)\n\n"
              f"commands:\n{command_list()}\n\n--debug: show the traceback of an error, not just its one line")
        return 0 if first else BAD_INPUT
    if first.startswith("-"):
        silence_known_noise(models=True)  # Lightning's own options before the subcommand (--config F fit)
        named = next((a for a in args if a in ("fit", "validate", "test", "predict")), "fit")
        return run_reporting_errors(named, run_lightning, args)
    if first not in COMMANDS:
        print(f"thinkspace: error: unknown command {first!r}; expected one of:\n{command_list()}", file=sys.stderr)
        return BAD_INPUT
    silence_known_noise(quiet_trainer=first in ("ask", "export", "points"), models=first not in LIGHT)
    rest = args[args.index(first) + 1:] + (["--debug"] if "--debug" in args[:args.index(first)] else [])
    if first in TOOLS:
        import importlib

        return run_reporting_errors(first, importlib.import_module(TOOLS[first]).main, rest)
    return run_reporting_errors(first, lambda lightning_args: run_lightning([first, *lightning_args]), rest)


def run_lightning(args: list[str]) -> int:
    """``thinkspace fit|validate|test|predict ...``: Lightning's CLI over the config's module, read by
    the one config reader (:func:`thinkspace.lightning_cli.build_cli`).

    Exit codes: 0 done; 2 bad input; 143 / 130 stopped by SIGTERM / SIGINT (during ``fit``, after saving
    ``last.ckpt``: :mod:`thinkspace.training.stop_signals`)."""
    # imported here: `score`, `synth` and `--help` need no Lightning
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from thinkspace.lightning_cli import build_cli

    try:
        build_cli(None, (), args, until="run")
    except SIGTERMException:  # Lightning's own stop (outside a training step): a SystemExit without a code, 0
        print("thinkspace: SIGTERM: stopped; exit code 143", file=sys.stderr, flush=True)
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
