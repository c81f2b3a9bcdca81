"""3D latent imagery: the latent slot, label masks, projector shapes, alignment loss, decoding."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from thinkspace.backbones import QwenVL
from thinkspace.data.batch import IGNORE_INDEX
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.data.schema import SpatialSample
from thinkspace.generation.decode import decode
from thinkspace.heads.projector import LatentProjector, PaperProjector, View
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment, TextCrossEntropy
from thinkspace.objectives.latent3d import alignment_loss
from thinkspace.objectives.latent_slot import END, PAD, START, LatentSlot
from thinkspace.teachers import OracleGeometryTeacher


pytestmark = pytest.mark.usefixtures("one_thread")


def views(n=3, size=56, seed=0, count=(1, 3)):
    data = SyntheticSpatial(n, image_size=size, num_views=count, settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=seed)
    return [data[i] for i in range(n)]


def text_sample(response):
    return SpatialSample(id="s1", source="cot", task="among", frames=np.zeros((1, 28, 28, 3), np.uint8),
                         prompt="?", response=response)


# -- the slot -----------------------------------------------------------------------

def test_slot_replaces_the_marker_or_is_inserted_at_start_or_end():
    slot = LatentSlot(k=3)
    assert slot.insert(text_sample("<output_3D><think>a</think>")).response == \
        START + PAD * 3 + END + "<think>a</think>"
    assert slot.insert(text_sample("B")).response == START + PAD * 3 + END + "B"
    assert LatentSlot(k=2, placement="end").insert(text_sample("B")).response == "B" + START + PAD * 2 + END
    already = START + PAD * 3 + END + "C"
    assert slot.insert(text_sample(already)).response == already


def test_missing_marker_when_required_and_wrong_pad_count_name_the_sample():
    with pytest.raises(ValueError, match=r"sample 's1' \(cot\): the response has no '<output_3D>' marker"):
        LatentSlot(k=3, require_marker=True).insert(text_sample("B"))
    with pytest.raises(ValueError, match=r"sample 's1' \(cot\): .* 2 pads; expected exactly 3"):
        LatentSlot(k=3).insert(text_sample(START + PAD * 2 + END + "B"))


def test_latent_positions_on_a_hand_built_sequence():
    slot = LatentSlot(k=3).bind([50, 51, 52])
    ids = torch.tensor([[1, 2, 50, 51, 51, 51, 52, 9, 0, 0],
                        [1, 2, 3, 4, 50, 51, 51, 51, 52, 9]])
    assert slot.positions(ids).tolist() == [[2, 3, 4], [4, 5, 6]]
    hidden = torch.arange(20.0).view(2, 10, 1)
    assert slot.gather(hidden, ids)[..., 0].tolist() == [[2, 3, 4], [14, 15, 16]]
    labels = slot.mask_labels(ids, ids.clone())
    assert (labels == IGNORE_INDEX).tolist() == (ids == 51).tolist()
    with pytest.raises(ValueError, match="sample 'b': found 2 latent pads in the sequence, expected 3"):
        slot.positions(torch.tensor([[50, 51, 51, 51, 52], [50, 51, 51, 52, 0]]), ids=["a", "b"])


@pytest.fixture(scope="module")
def module(tiny_cache):
    torch.manual_seed(0)
    return SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={
        "text": TextCrossEntropy(), "latent": LatentAlignment(k=4, projector_width=32)})


def test_collated_labels_mask_the_pads_and_supervise_start_and_end(module):
    batch = module.collator()(views(3))
    slot = module.objectives["latent"].slot
    ids, labels = batch.inputs["input_ids"], batch.labels
    for b in range(3):
        p = int(batch.prompt_lengths[b])
        assert ids[b, p].item() == slot.start_id and labels[b, p].item() == slot.start_id
        assert (ids[b, p + 1:p + 5] == slot.pad_id).all() and (labels[b, p + 1:p + 5] == IGNORE_INDEX).all()
        assert labels[b, p + 5].item() == slot.end_id
    assert torch.equal(slot.positions(ids), batch.prompt_lengths[:, None] + torch.arange(4))


# -- projector ----------------------------------------------------------------------

@pytest.mark.parametrize("batch_size,num_views,vis_grid,out_grid", [
    (1, 1, (2, 2), (4, 4)), (2, 3, (4, 6), (8, 12)), (3, 2, (3, 5), (37, 37))])
def test_projector_shapes_any_batch_views_and_image_size(batch_size, num_views, vis_grid, out_grid):
    proj = LatentProjector(in_width=24, out_width=10, num_latents=4, num_special=5, width=16)
    latents = torch.randn(batch_size, 4, 24)
    vs = [View(b, torch.randn(vis_grid[0] * vis_grid[1] + b, 24)[: vis_grid[0] * vis_grid[1]], vis_grid, out_grid)
          for b in range(batch_size) for _ in range(num_views)]
    out = proj(latents, vs)
    assert len(out) == batch_size * num_views
    assert all(o.shape == (5 + out_grid[0] * out_grid[1], 10) for o in out)


def test_projector_mixes_view_sizes_in_one_batch():
    proj = LatentProjector(8, 6, 2, num_special=1, width=16)
    out = proj(torch.randn(2, 2, 8), [View(0, torch.randn(4, 8), (2, 2), (3, 3)),
                                      View(1, torch.randn(15, 8), (3, 5), (6, 10))])
    assert [o.shape for o in out] == [(10, 6), (61, 6)]


def test_paper_projector_is_tied_to_one_size():
    proj = PaperProjector(8, 6, num_latents=3, visual_tokens=4, teacher_tokens=10, depth=2, latent_tokens=5)
    assert proj(torch.randn(1, 3, 8), [View(0, torch.randn(4, 8), (2, 2), (3, 3))])[0].shape == (10, 6)
    with pytest.raises(ValueError, match="PaperProjector: a view has 6 visual tokens .* built for 4"):
        proj(torch.randn(1, 3, 8), [View(0, torch.randn(6, 8), (2, 3), (3, 3))])


def test_paper_projector_sizes_come_from_backbone_and_teacher(module):
    objective = LatentAlignment(k=3, projector="paper", paper_view_size=(84, 56),
                                teacher=OracleGeometryTeacher(patch_size=14))
    objective.setup(module.backbone)  # its tokens exist already: the shared backbone is not changed
    assert objective.projector.visual_tokens == 2 * 3  # 84 wide, 56 tall -> 4x6 patches -> 2x3 merged tokens
    assert objective.projector.teacher_tokens == 1 + 4 * 6


# -- loss ---------------------------------------------------------------------------

def test_validation_metric_is_the_mean_channel_cosine(module):
    batch = module.collator()(views(2, seed=5))
    latent = module.objectives["latent"]
    with torch.no_grad():
        out = module.backbone(batch)
        cosine = latent.evaluate(out, batch)["cosine"]
        cos_loss = alignment_loss(torch.cat([p.flatten(0, 1) for p in latent.project(out, batch)]),
                                  torch.cat([f.tokens().flatten(0, 1) for f in latent.teacher_features(batch)]),
                                  "cosine")
    assert cosine.item() == pytest.approx(1 - cos_loss.item(), abs=1e-5)


def test_alignment_losses_by_hand():
    pred = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    target = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert alignment_loss(pred, target, "mse").item() == pytest.approx(0.5)
    assert alignment_loss(pred, target, "mse", "token_mean").item() == pytest.approx(1.0)
    assert alignment_loss(pred, target, "mse", "sum").item() == pytest.approx(2.0)
    assert alignment_loss(pred, target, "smooth_l1").item() == pytest.approx(0.25)  # 0.5 * 1^2 on 2 of 4
    assert alignment_loss(pred, torch.tensor([[2.0, 0.0], [1.0, 0.0]]), "cosine").item() == pytest.approx(0.5)


def test_alignment_loss_falls_on_a_fixed_batch(tiny_cache):
    torch.manual_seed(0)
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={
        "latent": LatentAlignment(k=4, projector_width=32)})
    batch = module.collator()(views(4, seed=3))
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=3e-3)
    history = []
    for _ in range(15):
        total, logs = module.losses(batch)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(logs["latent.align"].item())
    assert history[-1] < 0.6 * history[0], history  # measured: 0.55 -> 0.31 in 12 steps


# -- decoding -----------------------------------------------------------------------

def test_token_decoding_reproduces_teacher_forced_latents_and_feedback_differs(module):
    module.eval()
    samples = [replace(s, response="") for s in views(3, seed=1)]  # prompt + slot only
    batch = module.collator()(samples)
    slot = module.objectives["latent"].slot
    with torch.no_grad():
        forced = slot.gather(module.backbone(batch).hidden, batch.inputs["input_ids"])
    tokens = decode(module.backbone, batch, slot, mode="tokens", max_new_tokens=8)
    assert tokens.tokens[:, :6].tolist() == [[slot.start_id] + [slot.pad_id] * 4 + [slot.end_id]] * 3
    assert tokens.has_latents.all()
    torch.testing.assert_close(tokens.latents, forced, atol=1e-4, rtol=1e-4)
    feedback = decode(module.backbone, batch, slot, mode="feedback", max_new_tokens=8)
    assert feedback.tokens[:, :6].tolist() == tokens.tokens[:, :6].tolist()
    torch.testing.assert_close(feedback.latents[:, 0], forced[:, 0], atol=1e-4, rtol=1e-4)
    assert (feedback.latents[:, 1:] - forced[:, 1:]).abs().max() > 1e-2
    module.train()


def test_latent_decoding_on_a_1d_rope_backbone_matches_teacher_forcing(tiny_cache):
    from thinkspace.backbones.llava_onevision import LlavaOneVision

    torch.manual_seed(0)
    module = SpatialVLM(LlavaOneVision("tiny:llava_onevision"), objectives={
        "latent": LatentAlignment(k=3, projector_width=16)}).eval()
    batch = module.collator()([replace(s, response="") for s in views(3, seed=1)])  # left padding differs
    slot = module.objectives["latent"].slot
    with torch.no_grad():
        forced = slot.gather(module.backbone(batch).hidden, batch.inputs["input_ids"])
    decoded = decode(module.backbone, batch, slot, mode="tokens", max_new_tokens=5)
    torch.testing.assert_close(decoded.latents, forced, atol=1e-4, rtol=1e-4)


def test_collating_a_response_without_the_required_marker_names_the_sample(module):
    objective = LatentAlignment(k=2, require_marker=True, projector_width=8)
    objective.setup(module.backbone)
    collate = module.backbone.collator({"latent": objective})
    with pytest.raises(ValueError, match=r"sample 'synthetic-\w+-train-0-0' \(synthetic\): the response has no "
                                         r"'<output_3D>' marker but the latent slot requires one"):
        collate(views(1))
