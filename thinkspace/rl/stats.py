"""Reward statistics for the logs, exact over every rank's completions."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from thinkspace.rl.rewards import CompletionRewards


def reward_statistics(rewards: CompletionRewards, group: int, device: torch.device | str | None = None
                      ) -> dict[str, Tensor]:
    """``rewards/<name>/mean``, ``/std`` (over completions where the reward applied) and
    ``/zero_spread`` (share of groups whose applicable values are all equal: no learning
    signal from that reward), for every reward and for the weighted ``total``.

    Sums are all-reduced across data-parallel ranks (on ``device``, the module's: the
    process group's backend decides where tensors must live), so every rank logs the
    global values.
    """
    rows = torch.cat([rewards.values, rewards.total[None]])  # [R + 1, N]
    names = [*rewards.names, "total"]
    valid = ~torch.isnan(rows)
    values = torch.nan_to_num(rows, nan=0.0)
    grouped = rows.view(len(names), -1, group)
    high = torch.nan_to_num(grouped, nan=-torch.inf).amax(-1)
    low = torch.nan_to_num(grouped, nan=torch.inf).amin(-1)
    applies = valid.view(len(names), -1, group).any(-1)
    sums = torch.stack([valid.sum(1).float(), values.sum(1), (values ** 2).sum(1),
                        (applies & (high == low)).sum(1).float(), applies.sum(1).float()], 1)  # [R + 1, 5]
    if dist.is_available() and dist.is_initialized():
        sums = sums.to(device or "cpu")
        dist.all_reduce(sums)
        sums = sums.cpu()
    out = {}
    for name, (count, total, squares, flat, groups) in zip(names, sums):
        if count == 0:
            continue
        mean = total / count
        out[f"rewards/{name}/mean"] = mean
        out[f"rewards/{name}/std"] = (squares / count - mean ** 2).clamp(min=0).sqrt()
        out[f"rewards/{name}/zero_spread"] = flat / groups.clamp(min=1)
    return out
