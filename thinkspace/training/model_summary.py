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
    get_formatted_model_size,
    get_human_readable_count,
)

#: Lightning's own model-summary logger, so the table goes where Lightning's went (its log handler, rank 0)
log = logging.getLogger("lightning.pytorch.callbacks.model_summary")


def summary_text(columns: list[tuple[str, list[str]]], total: int, trainable: int, size_mb: float,
                 modes: dict[str, int], flops: int) -> str:
    """The summary as text: a table of ``columns`` (header, one value per layer), then the totals;
    FLOPs (column and total) only when some were counted."""
    if not flops:
        columns = [(name, values) for name, values in columns if name != "FLOPs"]
    widths = [max([len(name), *(len(str(v)) for v in values)]) for name, values in columns]
    rows = [" | ".join(f"{name:<{w}}" for (name, _), w in zip(columns, widths, strict=True))]
    rule = "-" * len(rows[0])
    rows.append(rule)
    for i in range(len(columns[0][1]) if columns else 0):
        rows.append(" | ".join(f"{values[i]!s:<{w}}" for (_, values), w in zip(columns, widths, strict=True)))
    rows.append(rule)
    totals = [(get_human_readable_count(trainable), "Trainable params"),
              (get_human_readable_count(total - trainable), "Non-trainable params"),
              (get_human_readable_count(total), "Total params"),
              (get_formatted_model_size(size_mb), "Total estimated model params size (MB)"),
              (str(modes.get("train", 0)), "Modules in train mode"),
              (str(modes.get("eval", 0)), "Modules in eval mode")]
    if flops:
        totals.append((get_human_readable_count(flops), "Total FLOPs"))
    rows += [f"{value:<10} {what}" for value, what in totals]
    return "\n".join(rows)


class RunModelSummary(ModelSummary):
    """Lightning's ``ModelSummary`` (same depth, same numbers) printed by :func:`summary_text`."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        log.info("\n" + summary_text(summary_data, total_parameters, trainable_parameters, model_size,
                                     total_training_modes, total_flops))
