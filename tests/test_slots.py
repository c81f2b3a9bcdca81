"""The latent slot's row objects by hand, without a model: a forced slot on its schedule, a tracked slot
(model-chosen start, early end), and the two agreeing where both apply."""

from types import SimpleNamespace

import torch

from thinkspace.generation.slots import PlainRows, ScheduledSlot, TrackedSlot, slot_rows

SLOT = SimpleNamespace(start_id=1, pad_id=2, end_id=3, k=2, placement="start")
ROWS, WIDTH = 2, 3


def hidden(step):
    """The last hidden states ``[ROWS, WIDTH]`` the loop would hold at ``step`` (distinct per step and row)."""
    return torch.arange(ROWS * WIDTH, dtype=torch.float32).view(ROWS, WIDTH) + 100 * step


def drive(rows, chosen):
    """The loop's calls for the sampler's ``chosen`` tokens per step (no row stops): the emitted tokens
    ``[N, T]``, the next inputs ``[N, T, D]`` (token id as an embedding, or the fed-back hidden state) and
    which tokens were the sampler's."""
    done = torch.zeros(ROWS, dtype=torch.bool)
    tokens, inputs, sampled = [], [], []
    for step, choice in enumerate(chosen):
        last = hidden(step)
        token = rows.known(step)
        if token is not None:  # scheduled: nothing chosen, nothing to follow
            embeds = token.float()[:, None, None].expand(ROWS, 1, WIDTH)
            inputs.append(rows.feed(step, embeds, last, done, None)[:, 0])
            sampled.append(torch.zeros(ROWS, dtype=torch.bool))
        else:
            token, latent_step, chosen_rows, forced = rows.choose(step, torch.tensor(choice))
            embeds = token.float()[:, None, None].expand(ROWS, 1, WIDTH)
            inputs.append(rows.feed(step, embeds, last, done, latent_step)[:, 0])
            rows.advance(step, token, latent_step, chosen_rows, done)
            sampled.append(chosen_rows & ~torch.tensor(forced))
        tokens.append(token)
    return torch.stack(tokens, 1), torch.stack(inputs, 1), torch.stack(sampled, 1)


def test_a_forced_slot_runs_on_its_schedule():
    rows = slot_rows(SLOT, 2, 6, force_start=True, early_end=False, feedback=True, last=hidden(0))
    assert isinstance(rows, ScheduledSlot)
    tokens, inputs, sampled = drive(rows, [[7, 7]] * 6)
    assert tokens.tolist() == [[1, 2, 2, 3, 7, 7]] * 2
    assert sampled.tolist() == [[False] * 4 + [True] * 2] * 2  # the slot's tokens are not the sampler's
    assert torch.equal(rows.latents, torch.stack([hidden(1), hidden(2)], 1))  # the states before the pads
    assert torch.equal(inputs[:, 1:3], rows.latents)  # fed back as the pads' inputs
    started, count = rows.outcome()
    assert started.tolist() == [0, 0] and count.tolist() == [2, 2]
    short = slot_rows(SLOT, 2, 2, force_start=True, early_end=False, feedback=True, last=hidden(0))
    drive(short, [[7, 7]] * 2)
    assert short.outcome()[1].tolist() == [1, 1]  # a budget of 2: the start and one pad


def test_a_tracked_slot_opens_when_the_model_chooses_and_may_end_early():
    rows = slot_rows(SLOT, 2, 5, force_start=False, early_end=True, feedback=False, last=hidden(0))
    assert isinstance(rows, TrackedSlot)
    # row 0: text, then the start, two pads, the forced end; row 1: the start, then it chooses the end at once
    tokens, inputs, sampled = drive(rows, [[5, 1], [1, 3], [7, 5], [6, 5], [6, 5]])
    assert tokens.tolist() == [[5, 1, 2, 2, 3], [1, 3, 5, 5, 5]]
    assert sampled.tolist() == [[True, True, False, False, False], [True, True, True, True, True]]
    started, count = rows.outcome()
    assert started.tolist() == [1, 0] and count.tolist() == [2, 0]
    assert torch.equal(rows.latents[0], torch.stack([hidden(2)[0], hidden(3)[0]]))
    assert not rows.latents[1].any()  # closed before any pad: no latent
    assert inputs[0, 2, 0].item() == 2  # tokens mode: the pad's own embedding is the input


def test_a_tracked_slot_with_a_forced_start_gives_the_schedule():
    """Where both apply (start forced, no early end), tracking every row gives the schedule's tokens,
    latents and inputs: the schedule only skips the bookkeeping."""
    chosen = torch.randint(4, 9, (7, ROWS), generator=torch.Generator().manual_seed(0)).tolist()
    scheduled = ScheduledSlot(SLOT, 2, 7, True, hidden(0))
    tracked = TrackedSlot(SLOT, 2, True, False, True, hidden(0))
    for a, b in zip(drive(scheduled, chosen), drive(tracked, chosen)):
        assert torch.equal(a, b)
    assert torch.equal(scheduled.latents, tracked.latents)
    assert [t.tolist() for t in scheduled.outcome()] == [t.tolist() for t in tracked.outcome()]


def test_without_a_slot_every_token_is_the_samplers():
    rows = slot_rows(None, 0, 3, force_start=True, early_end=False, feedback=True, last=hidden(0))
    assert type(rows) is PlainRows and rows.latents.shape == (ROWS, 0, WIDTH)
    tokens, _, sampled = drive(rows, [[4, 5], [6, 7], [8, 9]])
    assert tokens.tolist() == [[4, 6, 8], [5, 7, 9]] and bool(sampled.all())
    assert [t.tolist() for t in rows.outcome()] == [[-1, -1], [0, 0]]
