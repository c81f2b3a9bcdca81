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

import sys
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, ThroughputMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.eval.predictions import BenchmarkPredictions
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.progress_bar import progress_bar
from thinkspace.resume import (CHECKPOINT_EVERY_N_STEPS, ResumeReport, SeedPerBatch, report_missing_last,
                               run_checkpoint, step_checkpoint)
from thinkspace.throughput import Throughput

#: subcommands that are not Lightning's: name -> module with ``main(argv) -> int``.
TOOLS = {"synth": "thinkspace.synth.command", "score": "thinkspace.eval.command",
         "cache-teacher": "thinkspace.teachers.command", "points": "thinkspace.points",
         "sweep": "thinkspace.sweep.command", "export": "thinkspace.inference.export",
         "ask": "thinkspace.inference.ask"}


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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``thinkspace`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in TOOLS:
        import importlib

        return int(importlib.import_module(TOOLS[args[0]]).main(args[1:]) or 0)
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
        args=argv,  # None: Lightning reads sys.argv itself
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
