"""The collator: exact label masks, any batch mix, visual-token positions."""

from dataclasses import replace

import pytest
import torch
from PIL import Image

from thinkspace.data.batch import IGNORE_INDEX
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.objectives import TextCrossEntropy


@pytest.fixture(scope="module")
def collator(qwen25):
    return qwen25.collator({"text": TextCrossEntropy()})


def mixed_samples():
    views = ColouredSquares(16, num_views=(1, 3), seed=2)
    video = ColouredSquares(4, num_views=(3, 5), video=True, fps=2.0, seed=3)
    return [views[0], video[0], views[1], views[2], video[1]]


def test_labels_mask_exactly_the_prompt(collator, qwen25):
    samples = mixed_samples()
    batch = collator(samples)
    tok = qwen25.tokenizer
    ids, labels, mask = batch.inputs["input_ids"], batch.labels, batch.inputs["attention_mask"]
    for b, sample in enumerate(samples):
        n = int(mask[b].sum())
        p = int(batch.prompt_lengths[b])
        prompt = collator.prompt_text(sample)
        assert prompt.endswith("<|im_start|>assistant\n")
        if not sample.is_video:  # the prompt is exactly the processor's encoding of it
            alone = qwen25.processor(text=[prompt], images=sample.frames, return_tensors="pt")["input_ids"][0]
            assert torch.equal(ids[b, :p], alone)
        assert (labels[b, :p] == IGNORE_INDEX).all()
        assert torch.equal(labels[b, p:n], ids[b, p:n])
        assert (labels[b, n:] == IGNORE_INDEX).all() and (ids[b, n:] == tok.pad_token_id).all()
        assert tok.decode(ids[b, p:n]) == sample.response + "<|im_end|>"


def test_batch_of_mixed_view_counts_and_videos(collator):
    samples = mixed_samples()
    batch = collator(samples)
    image_samples = [s for s in samples if not s.is_video]
    video_samples = [s for s in samples if s.is_video]
    assert batch.inputs["image_grid_thw"].shape == (sum(s.num_frames for s in image_samples), 3)
    assert batch.inputs["video_grid_thw"].shape == (len(video_samples), 3)
    # Qwen2.5-VL merges video frames in pairs: ceil(S / 2) temporal groups per video
    assert batch.inputs["video_grid_thw"][:, 0].tolist() == [-(-s.num_frames // 2) for s in video_samples]
    # seconds per temporal group = temporal patch / fps
    assert batch.inputs["second_per_grid_ts"].tolist() == pytest.approx([1.0, 1.0])
    assert batch.visual.frames_per_group.tolist() == [2 if s.is_video else 1 for s in samples]
    frames_per_sample = torch.bincount(batch.visual.grid[:, 0], minlength=len(samples)).tolist()
    assert frames_per_sample == [-(-s.num_frames // 2) if s.is_video else s.num_frames for s in samples]


def test_visual_positions_match_the_processor_placeholders(collator, qwen25):
    samples = mixed_samples()
    batch = collator(samples)
    layout = qwen25.layout()
    ids = batch.inputs["input_ids"]
    for b, sample in enumerate(samples):
        token = layout.video_token_id if sample.is_video else layout.image_token_id
        expected = (ids[b] == token).nonzero().flatten()
        assert torch.equal(batch.visual.positions(b), expected)
        for _, frame, rows, cols in batch.visual.grid[batch.visual.grid[:, 0] == b].tolist():
            pos = batch.visual.positions(b, frame)
            assert pos.numel() == rows * cols
            keep = (batch.visual.sample == b) & (batch.visual.frame == frame)
            # row-major inside the frame
            assert (batch.visual.row[keep] * cols + batch.visual.col[keep]).tolist() == list(range(rows * cols))
    assert len(batch.visual) == int(((ids == layout.image_token_id) | (ids == layout.video_token_id)).sum())
    assert torch.equal(batch.inputs["mm_token_type_ids"], (ids == layout.image_token_id).int()
                       + 2 * (ids == layout.video_token_id).int())


def test_batch_size_one_and_many_pad_to_longest(collator):
    data = ColouredSquares(40, num_views=(1, 4), seed=5)
    one = collator([data[0]])
    assert one.labels.shape == one.inputs["input_ids"].shape and len(one) == 1
    many = collator([data[i] for i in range(40)])
    lengths = many.inputs["attention_mask"].sum(1)
    assert many.inputs["input_ids"].shape == (40, int(lengths.max()))
    assert len(set(lengths.tolist())) > 1


def test_long_sample_fails_with_its_id(qwen25):
    collate = qwen25.collator({"text": TextCrossEntropy()}, max_length=20)
    with pytest.raises(ValueError, match=r"sample 'squares-0-0' \(squares\) is \d+ tokens long, over max_length=20"):
        collate([ColouredSquares(2)[0]])


def test_missing_response_fails_with_its_id(collator):
    sample = ColouredSquares(2)[1]
    sample.response = None
    with pytest.raises(ValueError, match="sample 'squares-0-1' .* has no response"):
        collator([sample])


def test_fixed_grid_tokens_indexes_each_frame_block_and_names_a_miscount():
    from thinkspace.data.collate import fixed_grid_tokens

    ids = torch.tensor([[5, 9, 9, 9, 9, 7, 9, 9, 9, 9], [5, 9, 9, 9, 9, 0, 0, 0, 0, 0]])  # 9: placeholder
    vis = fixed_grid_tokens(ids, [2, 1], 9, rows=2, cols=2, mismatch=lambda b, n, f: f"{b}:{n}:{f}")
    assert vis.position.tolist() == [1, 2, 3, 4, 6, 7, 8, 9, 1, 2, 3, 4]
    assert vis.frame.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
    assert vis.row.tolist() == [0, 0, 1, 1] * 3 and vis.col.tolist() == [0, 1, 0, 1] * 3
    assert vis.grid.tolist() == [[0, 0, 2, 2], [0, 1, 2, 2], [1, 0, 2, 2]]
    with pytest.raises(RuntimeError, match="^1:4:2$"):
        fixed_grid_tokens(ids, [2, 2], 9, rows=2, cols=2, mismatch=lambda b, n, f: f"{b}:{n}:{f}")


@pytest.fixture(scope="module")
def gemma3(tiny_cache):
    from thinkspace.backbones.gemma3 import Gemma3

    return Gemma3("tiny:gemma3")


def float_frame() -> Image.Image:
    """A 32-bit float image (PIL mode ``F``): no defined range, refused by ``to_rgb``."""
    return Image.new("F", (112, 56), 0.5)


@pytest.mark.parametrize("family", ["qwen25", "llava_onevision", "composed", "gemma3"])
def test_a_bad_in_memory_frame_is_named_by_sample_id_and_index(request, family):
    backbone = request.getfixturevalue(family)
    views = ColouredSquares(2, num_views=(2, 2), seed=2)
    sample = replace(views[1], frames=[views[1].frames[0], float_frame()])
    with pytest.raises(ValueError, match=rf"^frame 1 of sample '{sample.id}' \(an in-memory image\): 32-bit float "
                                         r"image \(PIL mode 'F'\) has no defined range"):
        backbone.collator({"text": TextCrossEntropy()})([views[0], sample])


def test_a_bad_frame_opened_from_a_file_is_named_by_its_file_and_the_sample(collator, tmp_path):
    float_frame().save(tmp_path / "depth.tif")
    views = ColouredSquares(1, num_views=(2, 2), seed=2)
    sample = replace(views[0], frames=[Image.open(tmp_path / "depth.tif"), views[0].frames[1]])
    with pytest.raises(ValueError, match=rf"^image file {tmp_path}/depth\.tif \(sample '{sample.id}'\): 32-bit float"):
        collator([sample])


def test_a_bad_video_frame_is_named_too(collator):
    video = ColouredSquares(1, num_views=(3, 3), video=True, fps=2.0, seed=3)[0]
    sample = replace(video, frames=[*video.frames[:2], float_frame()])
    with pytest.raises(ValueError, match=rf"^frame 2 of sample '{video.id}' \(an in-memory image\): 32-bit float"):
        collator([sample])
