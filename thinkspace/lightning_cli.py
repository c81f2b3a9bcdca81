"""THE config reader: every command reads its training config through :func:`build_cli`.

``thinkspace fit|validate|test|predict``, ``export``, ``points``, ``ask`` / ``thinkspace.load``,
``cache-teacher`` and ``sweep`` all parse ``--config FILE [--config FILE2 ...]`` plus ``--a.b value``
overrides with one parser: Lightning's CLI over :class:`SpatialVLM` (or the LightningModule a config
names in ``model.class_path``) and :class:`SpatialDataModule`, with OmegaConf interpolation
(``${data.batch_size}``, resolved within each file), later files and overrides winning, and every
default of the classes' signatures. How far a command goes is ``until``:

- ``"parsed"``: arguments checked, config resolved (``cli.parser``, ``cli.config``); nothing seeded,
  built or run (the sweep checks its runs this way; :func:`resolved_yaml`).
- ``"built"``: model, datamodule and trainer instantiated on the CPU, nothing run (``export``,
  ``points``, ``thinkspace.load``).
- ``"run"``: the subcommand runs (``thinkspace fit ...``).

Bad arguments (a missing file, a misspelt key, a wrong type) raise :class:`ConfigError` (a ``ValueError``) with
jsonargparse's reason as one line (:func:`thinkspace.errors.parser_error_summary`); a library call
never exits the process or prints a usage text.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from jsonargparse import ArgumentError, ArgumentParser, Namespace
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import (
    Callback,
    ModelCheckpoint,
    ModelSummary,
    ProgressBar,
    ThroughputMonitor,
)
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from thinkspace.data.datamodule import SpatialDataModule
from thinkspace.errors import parser_error_summary
from thinkspace.eval.predictions import BenchmarkPredictions
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.training.checkpoint_file import (
    RecordOrigin,
    check_weights_match,
    read_checkpoint,
)
from thinkspace.training.cpu_threads import cpu_processes_warning, set_cpu_threads
from thinkspace.training.model_summary import RunModelSummary
from thinkspace.training.progress_bar import progress_bar
from thinkspace.training.resume import (
    CHECKPOINT_EVERY_N_STEPS,
    ResumeReport,
    SeedPerBatch,
    report_missing_last,
    run_checkpoint,
    step_checkpoint,
)
from thinkspace.training.run_lock import RunLock, is_rank_zero_process
from thinkspace.training.run_logger import RunLogger
from thinkspace.training.run_summary import FitSummary
from thinkspace.training.stop_signals import StopOnSignal
from thinkspace.training.throughput import Throughput
from thinkspace.utils.stacked_config import StackedConfigFile
from thinkspace.utils.yaml_files import check_yaml_syntax, config_files

Until = Literal["parsed", "built", "run"]

#: arguments of ``Trainer.fit/validate/test/predict`` that a run's saved ``config.yaml`` holds
#: (``ckpt_path: last``, ...): they belong to that invocation, not to the model; read and ignored
#: when a config is read without a subcommand.
RUN_KEYS = ("ckpt_path", "weights_only", "verbose", "return_predictions")

#: ``--ckpt_path`` values that name no file: Lightning looks these checkpoints up itself
CKPT_NAMES = ("last", "best", "hpc", "registry")

#: what a config built without running is built for: one process on the CPU, no logger
_BUILD_ONLY = ["--trainer.logger", "false", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
               "--trainer.strategy", "auto", "--trainer.num_nodes", "1"]


class ConfigError(ValueError):
    """Arguments or config files the parser refuses (one line naming the file or key); errors raised
    while the parsed classes are built (a model's own checks) are not this."""


class ThinkspaceCLI(LightningCLI):
    """LightningCLI plus ``run_dir``: a default TensorBoard logger and checkpointing there.

    Args (besides LightningCLI's):
        ignore_run_keys: accept and ignore :data:`RUN_KEYS` (a run's own ``config.yaml``).
        parse_only: stop once the arguments are parsed (:class:`_Parsed` carries the CLI out).
    """

    def __init__(self, *args: Any, ignore_run_keys: bool = False, parse_only: bool = False,
                 locks: list[RunLock] | None = None, **kwargs: Any) -> None:
        self.ignore_run_keys, self.parse_only = ignore_run_keys, parse_only
        self.locks = locks if locks is not None else []  # the caller releases them, also on errors
        super().__init__(*args, **kwargs)

    def before_instantiate_classes(self) -> None:
        """A subcommand that runs owns its run directory (:mod:`thinkspace.training.run_lock`): refused here,
        before anything is built or written, when another live run holds it. Only global rank 0 locks."""
        if self.subcommand and is_rank_zero_process():
            self.locks.append(RunLock(self._run_dir()).acquire())

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """Lightning's parser (the main one and each subcommand's), whose ``--config`` files merge the
        mappings keyed by name (objectives, cues, rewards) by name (:mod:`thinkspace.utils.stacked_config`)."""
        kwargs.setdefault("dump_header", [f"lightning.pytorch=={pl.__version__}"])
        parser = self.parser_class(**kwargs)
        parser.add_argument("-c", "--config", action=StackedConfigFile,
                            help="Path to a configuration file in json or yaml format (repeat to stack; objectives, "
                                 "cues and rewards merge by name, `name: null` switches one off).")
        return parser

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
        if self.ignore_run_keys:
            for key in RUN_KEYS:
                parser.add_argument(f"--{key}", type=Any, default=None, help="belongs to a run; ignored here")

    def _subcommand_config(self) -> Any:
        return self.config.get(str(self.subcommand), self.config)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Lightning's parsing, a bad argument raised as a :class:`ConfigError` of one line (not the usage
        text and jsonargparse's tree of union members tried)."""
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:
            raise ConfigError(parser_error_summary(f"error: {error}")) from None
        if self.parse_only:
            raise _Parsed(self)

    def _config_files(self) -> list[str]:
        """The ``--config`` files of this invocation, in order."""
        return [str(f) for f in self._subcommand_config().get("config") or []]

    def _ckpt_file(self) -> Path | None:
        """``--ckpt_path`` when it names a file (not ``last``, ``best``, ..., nor a DeepSpeed checkpoint folder).

        Raises:
            FileNotFoundError: a path given that does not exist.
        """
        subcommand = self.config.get("subcommand")  # read before LightningCLI sets self.subcommand
        ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt is None or str(ckpt) in CKPT_NAMES or str(ckpt).startswith("registry:"):
            return None
        path = Path(str(ckpt)).expanduser()
        if path.is_dir():  # DeepSpeed's sharded checkpoint is a directory: Lightning's strategy reads it
            return None
        if not path.is_file():
            raise FileNotFoundError(f"--ckpt_path {ckpt}: no such file; expected a .ckpt written by thinkspace fit, "
                                    f"or one of {', '.join(CKPT_NAMES[:2])}")
        return path

    def _read_ckpt(self, path: Path, keep: bool = True) -> dict[str, Any]:
        """The checkpoint at ``path``, read once per command (memory-mapped: tensors nobody touches stay on
        disk; with torch's weights-only unpickler, as the trainer will read it): an empty, truncated or
        foreign file is a ValueError naming it and what is wrong. ``keep``: hold it for a later reader;
        the last reader (the weights' check) lets it go, so the run does not keep the file mapped (nor,
        once a save replaces that file, its disk space) while it trains."""
        states = self.__dict__.setdefault("_ckpt_states", {})
        state = states.pop(path, None)
        if state is None:
            state = read_checkpoint(path, "--ckpt_path", mmap=True, weights_only=True)
        if keep:
            states[path] = state
        return state

    def _parse_ckpt_path(self) -> None:
        """The model's hyperparameters saved in ``--ckpt_path`` update the config (Lightning's
        ``_parse_ckpt_path``, from the one read of :meth:`_read_ckpt` instead of a second, full one);
        an empty, truncated or foreign file is refused first, and hyperparameters the model does not take
        after, each in one line naming it."""
        path = self._ckpt_file()
        if path is None:
            return super()._parse_ckpt_path()
        hparams = dict(self._read_ckpt(path).get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        if not hparams:
            return None
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({self.config.subcommand: {"model": hparams}}, self.config)
        except ArgumentError as error:  # hyperparameters the config's model does not take: one line, not a traceback
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"--ckpt_path {path}: its saved hyperparameters do not fit the model of this config "
                             f"({reason}); expected a .ckpt written by thinkspace fit with this config") from None
        return None

    def _check_ckpt_weights(self, last_in: list[Path] = ()) -> None:
        """A checkpoint of another config: refused before Lightning's strict load (a traceback), naming the
        first missing and unexpected keys and the config the checkpoint came from. ``last_in``: the
        checkpoint folders ``--ckpt_path last`` looks in (its newest ``last.ckpt`` is checked too)."""
        path = self._ckpt_file()
        if path is None and self._subcommand_config().get("ckpt_path") == "last":
            found = [f / "last.ckpt" for f in last_in if (f / "last.ckpt").is_file()]  # not DeepSpeed's folders
            path = max(found, key=lambda p: p.stat().st_mtime) if found else None
        if path is not None:
            state = self._read_ckpt(path, keep=False)  # its last reader
            check_weights_match(state, self.model.state_dict(), path, ", ".join(self._config_files()) or "(none)")

    # validate, test and predict: a checkpoint of another config is refused before Lightning loads it
    before_validate = before_test = before_predict = _check_ckpt_weights

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
        if self.subcommand and (crowded := cpu_processes_warning(config.get("accelerator"), config.get("devices"))):
            rank_zero_info(crowded)
        run_dir = self._run_dir()
        if config.get("default_root_dir") is None:
            config["default_root_dir"] = str(run_dir)
        if config.get("logger") in (None, True):
            config["logger"] = RunLogger(save_dir=str(run_dir), name="", version="")  # no empty hparams.yaml
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
            # SIGTERM/SIGINT: last.ckpt at the end of the step, exit 143/130 (in the user's checkpoint folder if any)
            own = [Path(c.dirpath) for c in listed if isinstance(c, ModelCheckpoint) and c.dirpath]
            folder = own[0] if own else run_dir / "checkpoints"
            saving = config.get("enable_checkpointing", True) is not False
            callbacks = [*callbacks, StopOnSignal(folder / "last.ckpt" if saving else None)]
        if config.get("enable_progress_bar", True) is not False and not any(
            isinstance(c, ProgressBar) for c in listed
        ):
            callbacks = [*callbacks, progress_bar()]  # right epoch totals for step-limited and resumed runs
        if config.get("enable_model_summary", True) is not False and not any(isinstance(c, ModelSummary) for c in listed):
            callbacks = [*callbacks, RunModelSummary()]  # no FLOPs column of zeros
        if self.subcommand == "fit" and config.get("logger") is not False and not any(
            isinstance(c, ThroughputMonitor) for c in [*listed, *callbacks]
        ):
            callbacks = [*callbacks, Throughput()]  # samples/s, tokens/s, MFU estimate in the logs
        if self.subcommand == "fit":
            callbacks = [*callbacks, FitSummary(run_dir), RecordOrigin(self._config_files(), str(run_dir))]
        if self.subcommand in ("test", "predict") and not any(isinstance(c, BenchmarkPredictions) for c in listed):
            callbacks = [*callbacks, BenchmarkPredictions()]  # predictions jsonl + scores in the run dir
        return super()._instantiate_trainer(config, callbacks)

    def before_fit(self) -> None:
        folders = [Path(c.dirpath) for c in self.trainer.checkpoint_callbacks
                   if isinstance(c, ModelCheckpoint) and c.dirpath]
        self._check_ckpt_weights(folders)
        report_missing_last(self._subcommand_config().get("ckpt_path"), folders)


class _Parsed(Exception):
    """Raised by a parse-only :class:`ThinkspaceCLI` right after parsing: LightningCLI's constructor
    would go on to seed, instantiate and run; :func:`build_cli` catches it and returns the CLI."""

    def __init__(self, cli: ThinkspaceCLI) -> None:
        super().__init__("parsed")
        self.cli = cli


def build_cli(subcommand: str | None, configs: Sequence[str | Path] = (), overrides: Sequence[str] = (), *,
              until: Until = "built") -> ThinkspaceCLI:
    """Read a training config the one way every command does (see the module docstring).

    Args:
        subcommand: ``fit``, ``validate``, ``test`` or ``predict``: that subcommand's parser, with its
            own arguments (``--ckpt_path``, ...); ``None``: the config alone, a run's :data:`RUN_KEYS`
            ignored (with ``until="run"`` the subcommand is then among ``overrides``, in Lightning's
            own order: ``--config F fit``).
        configs: YAML files, stacked in order (later keys win).
        overrides: command-line arguments after the files (``["--trainer.max_steps", "5"]``).
        until: ``"parsed"``, ``"built"`` or ``"run"``.

    Returns:
        the CLI: ``.config`` (and ``.parser``) always; ``.model``, ``.datamodule``, ``.trainer`` once built.

    Raises:
        ConfigError: a missing file or bad key or value, one line naming it.
    """
    args = [*([subcommand] if subcommand else []), *(a for f in configs for a in ("--config", str(f))), *overrides]
    run = subcommand is not None or until == "run"
    if until == "built":
        args += _BUILD_ONLY
    check_config_syntax(args)
    subclass = names_model_class(args)
    kwargs: dict[str, Any] = {
        "subclass_mode_model": subclass,
        "seed_everything_default": 0,
        "parser_kwargs": {"parser_mode": "omegaconf", "exit_on_error": False},
        "trainer_defaults": {"use_distributed_sampler": False},
        "auto_configure_optimizers": False,
        "run": run,
        "ignore_run_keys": not run,
        "parse_only": until == "parsed",
    }
    if until == "run":
        kwargs["save_config_kwargs"] = {"overwrite": True}
    else:
        kwargs["save_config_callback"] = None
    # A config whose `model` names a class_path (e.g. thinkspace.rl.SpatialGRPO) selects that
    # LightningModule; without one the model is SpatialVLM, as in every stage-1 config.
    model = LightningModule if subclass else SpatialVLM
    if until == "run":  # sys.argv stays: Lightning's DDP launcher starts the other processes with it
        locks: list[RunLock] = []
        try:
            return ThinkspaceCLI(model, SpatialDataModule, args=args, locks=locks, **kwargs)
        finally:  # the run directory is free again when the run ends, normally or not
            for lock in locks:
                lock.release()
    argv, sys.argv = sys.argv, sys.argv[:1]  # a library call: the caller's command line is not ours
    try:
        return ThinkspaceCLI(model, SpatialDataModule, args=args, **kwargs)
    except _Parsed as parsed:
        return parsed.cli
    finally:
        sys.argv = argv


def resolved_yaml(subcommand: str, configs: Sequence[str | Path], overrides: Sequence[str] = ()) -> str:
    """The fully resolved config of ``thinkspace SUBCOMMAND --config ... OVERRIDES`` as YAML (what
    ``--print_config`` prints), parsed only: nothing is instantiated, no model loaded.

    Raises:
        ConfigError: as :func:`build_cli`.
    """
    import yaml

    cli = build_cli(subcommand, configs, overrides, until="parsed")
    dumped = yaml.safe_load(cli.parser.dump(cli.config, skip_unset=False))
    return yaml.safe_dump(dumped[subcommand], sort_keys=False)


def build_part(spec: Namespace | dict[str, Any] | None, kind: type) -> Any:
    """One part of a parsed config built alone, as the full build would build it: a component
    (``{class_path, init_args}`` of a ``kind`` subclass) or the init args of class ``kind`` itself
    (e.g. ``data`` for :class:`SpatialDataModule`). ``None`` stays ``None``.

    For a command that needs a config's teacher and data but not its backbone (``cache-teacher``).
    """
    if spec is None:
        return None
    parser = ArgumentParser(exit_on_error=False)
    if "class_path" in spec:
        parser.add_argument("--part", type=kind)
    else:
        parser.add_class_arguments(kind, "part")
    return parser.instantiate_classes(parser.parse_object({"part": spec})).part


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


def check_config_syntax(args: list[str]) -> None:
    """Raise :class:`ConfigError` naming the ``--config`` file, line and column that is not YAML
    (jsonargparse's own message names ``"<unicode string>"``)."""
    try:
        check_yaml_syntax(config_files(args))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def names_model_class(args: list[str]) -> bool:
    """Whether the run selects its LightningModule: ``--model CLASS`` on the command line, or a
    ``--config`` file whose ``model`` mapping has a ``class_path`` (default: :class:`SpatialVLM`)."""
    import yaml

    if "--model" in args or any(a.startswith("--model=") for a in args):
        return True
    for file in config_files(args):
        try:
            data = yaml.safe_load(Path(file).read_text())
        except (OSError, yaml.YAMLError):
            continue  # the parser reports unreadable configs with its own message
        if isinstance(data, dict) and isinstance(data.get("model"), dict) and "class_path" in data["model"]:
            return True
    return False
