"""The model summary at the start of ``fit``: Lightning's table, without a FLOPs column of zeros.

Lightning counts FLOPs only for a module with an ``example_input_array``; thinkspace's modules have
none (their inputs are processor outputs of varying shape), so its summary printed a FLOPs column
of ``0`` and "Total FLOPs: 0" on every run. Where FLOPs were counted, they are shown.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary.model_summary import (
    _format_summary_table,
)

#: Lightning's own model-summary logger, so the table goes where Lightning's went (its log handler, rank 0)
log = logging.getLogger("lightning.pytorch.callbacks.model_summary")


def summary_text(columns: list[tuple[str, list[str]]], total: int, trainable: int, size_mb: float,
                 modes: dict[str, int], flops: int) -> str:
    """Lightning's summary text (its own table of ``columns``: header, one value per layer; then the
    totals), with FLOPs (the column and the "Total Flops" line, its last) only when some were counted."""
    if flops:
        return _format_summary_table(total, trainable, size_mb, modes, flops, *columns)
    columns = [(name, values) for name, values in columns if name != "FLOPs"]
    return _format_summary_table(total, trainable, size_mb, modes, flops, *columns).rsplit("\n", 1)[0]


class RunModelSummary(ModelSummary):
    """Lightning's ``ModelSummary`` (same depth, same numbers) printed by :func:`summary_text`."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        log.info("\n" + summary_text(summary_data, total_parameters, trainable_parameters, model_size,
                                     total_training_modes, total_flops))
