"""The decode loop's stop test with sharded weights (one process standing in for a rank whose rows are all
done while another rank's are not): it keeps stepping, its rows masked, until every rank is done, and
emits the tokens of a decode that stops on its own. Two real processes: ``tests/test_sharded.py``."""

import pytest
import torch
from test_decode import views
from torch import nn

import thinkspace.generation.decode as decode_module
from thinkspace.generation import rank_agreement
from thinkspace.generation.decode import decode
from thinkspace.generation.rank_agreement import rows_done, sharded_weights, stop_test

pytestmark = pytest.mark.usefixtures("one_thread")


class OtherRank:
    """A stop test whose other rank is done only at its ``done_at``-th call (counting from 1)."""

    def __init__(self, done_at: int) -> None:
        self.done_at, self.calls = done_at, 0

    def __call__(self, done: list[bool]) -> bool:
        self.calls += 1
        return all(done) and self.calls >= self.done_at


def test_a_rank_whose_rows_are_done_steps_until_the_others_are_and_decodes_the_same_tokens(qwen25, monkeypatch):
    batch = qwen25.collator(with_response=False)(views(2))
    first = int(decode(qwen25, batch, max_new_tokens=1, eos_token_id=[]).tokens[0, 0])
    # both rows stop at their first token (the tiny random model repeats one token)
    alone = decode(qwen25, batch, max_new_tokens=24, eos_token_id=first)
    assert alone.completion_mask.sum(1).tolist() == [1, 1]
    other = OtherRank(done_at=2)
    monkeypatch.setattr(decode_module, "stop_test", lambda language_model: (other, True))
    calls: list[int] = []
    hook = qwen25.language_model().register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        agreed = decode(qwen25, batch, max_new_tokens=24, eos_token_id=first)
    finally:
        hook.remove()
    assert other.calls == 2  # asked every 8 tokens: at steps 8 and 16, stopping at the second
    assert len(calls) == 1 + 16  # the prefill, then one step per token until every rank was done
    assert agreed.decoder_step.startswith("hugging face: sharded weights")
    assert torch.equal(agreed.tokens, alone.tokens) and torch.equal(agreed.completion_mask, alone.completion_mask)
    assert agreed.texts == alone.texts


def test_unsharded_weights_keep_the_ranks_own_stop_test(qwen25):
    assert stop_test(qwen25.language_model()) == (rows_done, False)
    assert not sharded_weights(qwen25.hf)
    assert rows_done([True, True]) and not rows_done([True, False])


def test_zero3_partitioned_parameters_count_as_sharded():
    layer = nn.Linear(2, 2)
    layer.weight.ds_id = 0  # what DeepSpeed ZeRO-3 marks its partitioned parameters with
    assert sharded_weights(layer)


def test_the_decoders_sharding_is_looked_up_once_and_again_when_its_parameters_change(monkeypatch):
    """Several processes (faked): the first decode walks the decoder's parameters, later ones do not,
    until sharding swaps the parameters (as ``fully_shard`` swaps them for DTensors)."""
    monkeypatch.setattr(rank_agreement.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(rank_agreement.dist, "get_world_size", lambda group=None: 2)
    walks = []
    original = rank_agreement.sharded_weights
    monkeypatch.setattr(rank_agreement, "sharded_weights", lambda module: walks.append(1) or original(module))
    decoder = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    assert stop_test(decoder) == (rows_done, False) and stop_test(decoder) == (rows_done, False)
    assert len(walks) == 1
    weight = nn.Parameter(decoder[0].weight.detach().clone())
    weight.ds_id = 0  # partitioned, as DeepSpeed ZeRO-3 marks it
    decoder[0].weight = weight
    all_done, sharded = stop_test(decoder)
    assert sharded and all_done is not rows_done and len(walks) == 2


def test_validation_decodes_only_where_some_rank_has_a_choice_question(monkeypatch):
    """Unsharded, a rank decodes for its own choice questions only; sharded (faked: the other rank's
    answer), every rank decodes when any rank has one, and none when no rank has one (no wasted decode)."""
    from types import SimpleNamespace

    from thinkspace.modules import spatial_vlm
    from thinkspace.modules.spatial_vlm import SpatialVLM

    layer = nn.Linear(2, 2)
    assert rank_agreement.any_rank_needs(True, layer) and not rank_agreement.any_rank_needs(False, layer)
    decoded = []
    module = SimpleNamespace(backbone=nn.Linear(2, 2), log=lambda *a, **k: None,
                             generate=lambda batch, **settings: decoded.append(1) or ["A"] * len(batch.answers))
    metric = SimpleNamespace(update=lambda texts, answers: None)
    numbers = SimpleNamespace(answer_types=["number"], answers=[3.0])
    choices = SimpleNamespace(answer_types=["choice"], answers=["A"])
    for other_rank_has_one, batch, expected in [(False, numbers, 0), (True, numbers, 1), (False, choices, 1)]:
        monkeypatch.setattr(spatial_vlm, "any_rank_needs", lambda needed, _m, other=other_rank_has_one: needed or other)
        decoded.clear()
        SpatialVLM._log_accuracy(module, batch, metric, "val/accuracy")
        assert len(decoded) == expected, (other_rank_has_one, batch.answer_types)
