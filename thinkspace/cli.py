"""The ``thinkspace`` command.

``thinkspace fit|validate|test|predict --config FILE [--config FILE2] [--a.b value]``
runs Lightning's CLI over :class:`SpatialVLM` (or the LightningModule a config names in
``model.class_path``, e.g. ``thinkspace.rl.SpatialGRPO``) and :class:`SpatialDataModule` with
OmegaConf interpolation. Every run writes under one predictable directory,
``run_dir`` (default ``--trainer.default_root_dir``, else ``runs/<stem of the first --config>``)::

    runs/quickstart/
      config.yaml            # the fully resolved config of the last invocation
      events.out.tfevents.*  # TensorBoard
      checkpoints/last.ckpt  # resume with --ckpt_path last (exact: docs/architecture.md)
      predictions_test_<benchmark>.jsonl, scores_test_<benchmark>.json  # test/predict on a benchmark

``last.ckpt`` is rewritten at validation (or epoch end) and every ``--checkpoint_every_n_steps``
optimizer steps (:mod:`thinkspace.resume`).

Other subcommands (``synth``, ...) are plain argparse programs dispatched by name.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, ThroughputMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from thinkspace.cpu_threads import set_cpu_threads
from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.errors import BAD_INPUT, parser_error_summary, run_reporting_errors
from thinkspace.eval.predictions import BenchmarkPredictions
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.noise import silence_known_noise
from thinkspace.progress_bar import progress_bar
from thinkspace.resume import (CHECKPOINT_EVERY_N_STEPS, ResumeReport, SeedPerBatch, report_missing_last,
                               run_checkpoint, step_checkpoint)
from thinkspace.run_summary import FitSummary
from thinkspace.throughput import Throughput

#: subcommands that are not Lightning's: name -> module with ``main(argv) -> int``.
TOOLS = {"synth": "thinkspace.synth.command", "score": "thinkspace.eval.command",
         "cache-teacher": "thinkspace.teachers.command", "points": "thinkspace.inference.points",
         "sweep": "thinkspace.sweep.command", "export": "thinkspace.inference.export",
         "ask": "thinkspace.inference.ask"}

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


class ThinkspaceCLI(LightningCLI):
    """LightningCLI plus ``run_dir``: a default TensorBoard logger and checkpointing there."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="Directory for logs, checkpoints and the resolved config (default: --trainer.default_root_dir, else "
                 "runs/<config stem>).",
        )
        parser.add_argument(
            "--checkpoint_every_n_steps",
            type=int,
            default=CHECKPOINT_EVERY_N_STEPS,
            help="Rewrite checkpoints/last.ckpt every N optimizer steps (0: only at validation and epoch ends).",
        )

    def _subcommand_config(self) -> Any:
        return self.config.get(str(self.subcommand), self.config)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Lightning's parsing, with a bad argument reported as one line (not the usage text and
        jsonargparse's tree of union members tried) and exit code 2."""
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured):
                super().parse_arguments(parser, args)
        except SystemExit as stop:
            if stop.code in (0, None):
                sys.stderr.write(captured.getvalue())
                raise
            raise SystemExit(parser_error_summary(captured.getvalue())) from None
        sys.stderr.write(captured.getvalue())

    def _run_dir(self) -> Path:
        """``--run_dir``, else ``--trainer.default_root_dir`` (Lightning's name for it), else
        ``runs/<stem of the first --config>``."""
        config = self._subcommand_config()
        root = (config.get("trainer") or {}).get("default_root_dir")
        if config.get("run_dir") and root and Path(config["run_dir"]) != Path(root):
            raise ValueError(f"--run_dir {config['run_dir']} and --trainer.default_root_dir {root} disagree: "
                             "both name the run directory; set only --run_dir")
        if config.get("run_dir") or root:
            return Path(config.get("run_dir") or root)
        files = config.get("config") or []
        stem = Path(str(files[0])).stem if files else "default"
        return Path("runs") / stem

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Any:
        check_gpu_count(config.get("accelerator"), config.get("devices"))
        threads = set_cpu_threads(config.get("accelerator")) if self.subcommand else None  # not for `ask`
        if threads:
            rank_zero_info(threads)
        run_dir = self._run_dir()
        if config.get("default_root_dir") is None:
            config["default_root_dir"] = str(run_dir)
        if config.get("logger") in (None, True):
            config["logger"] = TensorBoardLogger(save_dir=str(run_dir), name="", version="")
        listed = config.get("callbacks") or []
        listed = listed if isinstance(listed, list) else [listed]
        if config.get("enable_checkpointing", True) is not False and not any(
            isinstance(c, ModelCheckpoint) for c in listed
        ):
            callbacks = [*callbacks, run_checkpoint(run_dir / "checkpoints")]
            every = self._subcommand_config().get("checkpoint_every_n_steps")
            if self.subcommand == "fit" and every:  # a crash loses at most `every` steps, validation or not
                callbacks = [*callbacks, step_checkpoint(run_dir / "checkpoints", every)]
        if self.subcommand == "fit":
            # one line saying what was resumed; dropout keyed by the batch, so resumes are exact
            callbacks = [*callbacks, ResumeReport(), SeedPerBatch()]
        if config.get("enable_progress_bar", True) is not False and not any(
            isinstance(c, ProgressBar) for c in listed
        ):
            callbacks = [*callbacks, progress_bar()]  # right epoch totals for step-limited and resumed runs
        if self.subcommand == "fit" and config.get("logger") is not False and not any(
            isinstance(c, ThroughputMonitor) for c in [*listed, *callbacks]
        ):
            callbacks = [*callbacks, Throughput()]  # samples/s, tokens/s, MFU estimate in the logs
        if self.subcommand == "fit":
            callbacks = [*callbacks, FitSummary(run_dir)]
        if self.subcommand in ("test", "predict") and not any(isinstance(c, BenchmarkPredictions) for c in listed):
            callbacks = [*callbacks, BenchmarkPredictions()]  # predictions jsonl + scores in the run dir
        return super()._instantiate_trainer(config, callbacks)

    def before_fit(self) -> None:
        folders = [Path(c.dirpath) for c in self.trainer.checkpoint_callbacks
                   if isinstance(c, ModelCheckpoint) and c.dirpath]
        report_missing_last(self._subcommand_config().get("ckpt_path"), folders)


def check_gpu_count(accelerator: Any, devices: Any) -> None:
    """Refuse more GPUs than the machine has, before anything is loaded or launched."""
    if accelerator not in ("gpu", "cuda"):
        return
    if isinstance(devices, list | tuple):
        wanted = len(devices)
    elif isinstance(devices, int) or str(devices).isdigit():
        wanted = int(devices)
    else:  # "auto", -1, "0,1": Lightning resolves these against the machine itself
        return
    import torch

    have = torch.cuda.device_count()
    if wanted > have:
        raise ValueError(f"trainer.devices asks for {wanted} GPUs but this machine has {have} "
                         "(torch.cuda.device_count()); lower trainer.devices or run on a GPU node")


def names_model_class(args: list[str]) -> bool:
    """Whether the run selects its LightningModule: ``--model CLASS`` on the command line, or a
    ``--config`` file whose ``model`` mapping has a ``class_path`` (default: :class:`SpatialVLM`)."""
    import yaml

    files = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    files += [b for a, b in zip(args, args[1:]) if a == "--config"]
    if "--model" in args or any(a.startswith("--model=") for a in args):
        return True
    for file in files:
        try:
            data = yaml.safe_load(Path(file).read_text())
        except (OSError, yaml.YAMLError):
            continue  # Lightning's parser reports unreadable configs with their own message
        if isinstance(data, dict) and isinstance(data.get("model"), dict) and "class_path" in data["model"]:
            return True
    return False


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
        silence_known_noise()  # Lightning's own options before the subcommand (--config F fit)
        named = next((a for a in args if a in ("fit", "validate", "test", "predict")), "fit")
        return run_reporting_errors(named, run_lightning, args)
    if first not in COMMANDS:
        print(f"thinkspace: error: unknown command {first!r}; expected one of:\n{command_list()}", file=sys.stderr)
        return BAD_INPUT
    silence_known_noise(quiet_trainer=first in ("ask", "export", "points"))
    rest = args[args.index(first) + 1:] + (["--debug"] if "--debug" in args[:args.index(first)] else [])
    if first in TOOLS:
        import importlib

        return run_reporting_errors(first, importlib.import_module(TOOLS[first]).main, rest)
    return run_reporting_errors(first, lambda lightning_args: run_lightning([first, *lightning_args]), rest)


def run_lightning(args: list[str]) -> int:
    """``thinkspace fit|validate|test|predict ...``: Lightning's CLI over the config's module."""
    # A config whose `model` names a class_path (e.g. thinkspace.rl.SpatialGRPO) selects that
    # LightningModule; without one the model is SpatialVLM, as in every stage-1 config.
    subclass = names_model_class(args)
    ThinkspaceCLI(
        LightningModule if subclass else SpatialVLM,
        SpatialDataModule,
        subclass_mode_model=subclass,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"parser_mode": "omegaconf"},
        trainer_defaults={"use_distributed_sampler": False},
        auto_configure_optimizers=False,
        args=args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
