"""Targeted filters for the lines other libraries print on every command that tell a thinkspace
user nothing (each filter names the one message it drops; nothing else is hidden).

- Lightning's "Tip: ... litlogger" advertisement,
- "Seed set to 0" (every run; the seed is in the run's ``config.yaml``),
- Lightning's "Restoring states from the checkpoint path at ..." and, on ``fit``, "Restored all states
  from the checkpoint at ..." (thinkspace's own line says what a resume restored: step, epoch,
  samples seen; ``test`` keeps Lightning's "Loaded model weights from the checkpoint at ..."),
- Lightning's "The dirpath has changed from ..." when ``test`` loads a checkpoint of another run
  directory (the checkpoint callbacks' bookkeeping, irrelevant to the weights being tested),
- Lightning's note that it skips its default model summary (thinkspace's
  :class:`~thinkspace.training.model_summary.RunModelSummary` drops the FLOPs column of zeros),
- with ``models=True`` (every command that builds a model) transformers' progress bars ("Loading
  weights", "Writing model shards": milliseconds for the tiny models, and a real model's load is
  announced by the run's first lines anyway; huggingface_hub's download bars stay),
- DeepSpeed's "Setting accelerator to CPU" warning (on a CPU run that is the point),
- ``isinstance(treespec, LeafSpec)`` deprecation from Lightning's own pytree helper,
- transformers' "``past_key_values``/``cache_params`` are deprecated" (raised inside its generate),
- LightningCLI's warning that ``args`` and ``sys.argv`` are both given (thinkspace passes argv on),
- with ``quiet_trainer=True`` (``ask``, ``export``, ``points``: a Trainer is only built, never run)
  Lightning's "GPU available / TPU available" lines.
"""

from __future__ import annotations

import logging
import warnings

#: logger name -> beginnings of the messages dropped from it
_DROPPED_LOGS = {
    "lightning.pytorch.utilities.rank_zero": ("💡 Tip:", "Restoring states from the checkpoint path at ",
                                              "Restored all states from the checkpoint at ",
                                              "Trainer already configured with model summary callbacks"),
    "lightning.fabric.utilities.seed": ("Seed set to ",),
    "DeepSpeed": ("Setting accelerator to CPU",),
    "transformers.utils.generic": ("`past_key_values`/`cache_params` are deprecated",),
}
_TRAINER_LINES = ("GPU available:", "TPU available:", "HPU available:")


class _DropMessages(logging.Filter):
    """Drop log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


def silence_known_noise(quiet_trainer: bool = False, models: bool = False) -> None:
    """Install the filters (idempotent: a logger gets each filter once).

    ``models``: also switch off transformers' progress bars; this imports transformers, so commands
    that build no model (``score``, ``synth``, ``sweep``) leave it ``False`` and start fast.
    """
    for name, prefixes in _DROPPED_LOGS.items():
        if name == "lightning.pytorch.utilities.rank_zero" and quiet_trainer:
            prefixes = prefixes + _TRAINER_LINES
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, _DropMessages)]:
            logger.removeFilter(old)
        logger.addFilter(_DropMessages(prefixes))
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r".*`past_key_values`.*deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"The dirpath has changed from ")
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended to run from within Python")
    if models:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
