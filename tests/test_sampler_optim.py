import math

import pytest
import torch

from thinkspace.data.sampler import EpochSampler
from thinkspace.training.optim import WarmupCosine, WarmupLinear


def test_epoch_order_depends_on_seed_and_epoch_only():
    a = EpochSampler(50, seed=3)
    b = EpochSampler(50, seed=3)
    assert a.order(2) == b.order(2)
    assert a.order(2) != a.order(3)
    assert sorted(a.order(0)) == list(range(50))
    assert EpochSampler(50, seed=4).order(2) != a.order(2)


def test_resume_skips_consumed_batches():
    full = list(EpochSampler(40, seed=1, batch_size=4, progress=lambda: (5, 0)))
    rest = list(EpochSampler(40, seed=1, batch_size=4, progress=lambda: (5, 3)))
    assert rest == full[12:]


def test_ranks_partition_each_epoch():
    parts = [EpochSampler(10, seed=0, rank=r, world_size=3).order(1) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    seen = sorted(i for p in parts for i in p)
    assert set(seen) == set(range(10)) and len(seen) == 12  # two padded repeats


@pytest.mark.parametrize("length,world_size,batch_size", [(7, 2, 3), (32, 2, 1), (5, 4, 2), (1, 2, 4)])
def test_evaluation_splits_give_every_rank_the_same_batch_sizes(length, world_size, batch_size):
    """Under sharding every forward is a collective: no rank may have a batch, or a last smaller batch,
    the others lack (the split is padded with repeats instead)."""
    sizes = []
    for rank in range(world_size):
        order = EpochSampler(length, shuffle=False, rank=rank, world_size=world_size).order(0)
        sizes.append([len(order[i:i + batch_size]) for i in range(0, len(order), batch_size)])
    assert all(s == sizes[0] for s in sizes), sizes


def test_empty_dataset_is_an_error():
    with pytest.raises(ValueError, match="dataset is empty"):
        EpochSampler(0)


def test_warmup_cosine_schedule():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = WarmupCosine(opt, warmup_steps=3, total_steps=13, min_lr_ratio=0.1)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:3] == pytest.approx([0.0, 1 / 3, 2 / 3])  # warm-up starts at 0, as its docstring says
    assert lrs[3] == pytest.approx(1.0)
    assert lrs[8] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[13] == pytest.approx(0.1)


def rates_of(make_schedule, steps: int, lr: float = 1e-4) -> list[float]:
    """The learning rate of each of ``steps`` optimizer steps under ``make_schedule(optimizer)``."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    schedule = make_schedule(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return rates


@pytest.mark.parametrize("min_lr_ratio", [0.0, 0.1])
def test_warmup_cosine_is_the_transformers_cosine_rule(min_lr_ratio):
    from transformers import get_cosine_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

    ours = rates_of(lambda opt: WarmupCosine(opt, warmup_steps=10, total_steps=37, min_lr_ratio=min_lr_ratio), 38)
    if min_lr_ratio == 0:
        hf = rates_of(lambda opt: get_cosine_schedule_with_warmup(opt, 10, 37), 38)
    else:
        hf = rates_of(lambda opt: get_cosine_with_min_lr_schedule_with_warmup(opt, 10, 37, min_lr_rate=min_lr_ratio), 38)
    assert ours[0] == 0.0 and ours[10] == pytest.approx(1e-4)
    assert ours == pytest.approx(hf, abs=1e-15)


def test_warmup_linear_is_the_transformers_trainer_rule():
    """3DThinker trains with the HF Trainer's ``linear`` schedule: same rate at every step."""
    from transformers import get_linear_schedule_with_warmup

    rates = {}
    for name in ("ours", "hf"):
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=1e-4)
        if name == "ours":
            sched = WarmupLinear(opt, warmup_steps=10, total_steps=37)
        else:
            sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=10, num_training_steps=37)
        rates[name] = []
        for _ in range(40):
            rates[name].append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    assert rates["ours"] == pytest.approx(rates["hf"], abs=1e-15)
    assert rates["ours"][0] == 0.0 and rates["ours"][10] == pytest.approx(1e-4)
    assert rates["ours"][37:] == [0.0, 0.0, 0.0]


def test_one_seed_mixer_keeps_the_seeds_each_place_drew_before():
    """Sampler, squares, dropout per batch and GRPO rollouts draw the seeds they drew with their own
    formulas (so orders and masks of earlier runs are unchanged), and positions do not collide."""
    import zlib

    from thinkspace.utils.seeds import mix_seed

    assert mix_seed(7, 3) == 7 * 1_000_003 + 3
    assert mix_seed(7, 40, rank=1) == ((7 * 1_000_003 + 40) * 65_537 + 1) % 2**63
    crc = zlib.crc32(b"train000012")
    assert mix_seed(7, 5, sample_id="train000012") == ((7 * 1_000_003 + 5) * 4_294_967_311 + crc) % 2**63
    seeds = {mix_seed(seed, count, rank=rank) for seed in range(3) for count in range(50) for rank in range(4)}
    assert len(seeds) == 3 * 50 * 4 and all(0 <= s < 2**63 for s in seeds)
