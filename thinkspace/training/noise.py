"""Targeted filters for the lines other libraries print on every command that tell a thinkspace
user nothing (each filter names the one message it drops; nothing else is hidden).

- Lightning's "Tip: ... litlogger" advertisement,
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
    "lightning.pytorch.utilities.rank_zero": ("💡 Tip:",),
    "DeepSpeed": ("Setting accelerator to CPU",),
    "transformers.utils.generic": ("`past_key_values`/`cache_params` are deprecated",),
}
_TRAINER_LINES = ("GPU available:", "TPU available:", "HPU available:", "💡 Tip:")


class _DropMessages(logging.Filter):
    """Drop log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


def silence_known_noise(quiet_trainer: bool = False) -> None:
    """Install the filters (idempotent: a logger gets each filter once)."""
    for name, prefixes in _DROPPED_LOGS.items():
        if name == "lightning.pytorch.utilities.rank_zero" and quiet_trainer:
            prefixes = _TRAINER_LINES
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, _DropMessages)]:
            logger.removeFilter(old)
        logger.addFilter(_DropMessages(prefixes))
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r".*`past_key_values`.*deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended to run from within Python")
