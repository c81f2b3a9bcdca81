"""Batch reshaping: the prompts alone, left-padded (``Batch.prompts``), and each prompt's rows
repeated for a group (``Batch.repeat``), by hand and on a collated batch."""

from dataclasses import replace

import torch

from thinkspace.data.batch import IGNORE_INDEX, Batch, VisualTokens
from thinkspace.data.datasets.squares import ColouredSquares
from thinkspace.modules.base import SpatialModule
from thinkspace.teachers.base import TeacherFeatures

PAD = 9


def hand_batch() -> Batch:
    """Two samples: prompt lengths 3 and 5 (then responses), one visual token each, 2 and 1 frame groups."""
    ids = torch.tensor([[10, 11, 12, 20, 21, 0], [30, 31, 32, 33, 34, 40]])
    visual = VisualTokens(sample=torch.tensor([0, 1, 1]), position=torch.tensor([1, 2, 3]),
                          frame=torch.tensor([0, 0, 1]), row=torch.tensor([0, 0, 0]), col=torch.tensor([0, 0, 0]),
                          grid=torch.tensor([[0, 0, 1, 1], [1, 0, 1, 1], [1, 1, 1, 1]]),
                          frames_per_group=torch.tensor([2, 1]))
    return Batch(ids=["a", "b"], inputs={"input_ids": ids, "attention_mask": torch.tensor([[1] * 5 + [0], [1] * 6]),
                                         "mm_token_type_ids": (ids == 11).int() + (ids >= 32).int() * (ids <= 33).int(),
                                         "pixel_values": torch.ones(3, 4)},
                 labels=torch.full_like(ids, IGNORE_INDEX), prompt_lengths=torch.tensor([3, 5]), visual=visual,
                 answers=["A", 2.0], answer_types=["choice", "number"], tasks=["t1", "t2"],
                 texts=["left?", "how far?"], meta=[{"scene": 1}, {"scene": 2}])


def test_prompts_cut_the_responses_and_pad_on_the_left():
    batch = hand_batch()
    prompts = batch.prompts(PAD)
    assert prompts.inputs["input_ids"].tolist() == [[PAD, PAD, 10, 11, 12], [30, 31, 32, 33, 34]]
    assert prompts.inputs["attention_mask"].tolist() == [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]
    assert prompts.inputs["mm_token_type_ids"].tolist() == [[0, 0, 0, 1, 0], [0, 0, 1, 1, 0]]
    assert prompts.visual.position.tolist() == [3, 2, 3]  # sample 0 shifted by its 2 pads
    assert prompts.prompt_lengths.tolist() == [5, 5] and bool((prompts.labels == IGNORE_INDEX).all())
    assert prompts.inputs["pixel_values"] is batch.inputs["pixel_values"]  # images are not cut
    assert prompts.texts == ["left?", "how far?"] and prompts.meta == [{"scene": 1}, {"scene": 2}]
    assert prompts.ids == ["a", "b"] and prompts.answers == ["A", 2.0]


def test_repeat_gives_each_sample_its_group_of_rows():
    batch = hand_batch()
    wide = batch.repeat(3)
    assert len(wide) == 6 and wide.ids == ["a"] * 3 + ["b"] * 3
    assert wide.texts == ["left?"] * 3 + ["how far?"] * 3 and wide.meta == [{"scene": 1}] * 3 + [{"scene": 2}] * 3
    assert wide.answers == ["A"] * 3 + [2.0] * 3 and wide.answer_types == ["choice"] * 3 + ["number"] * 3
    assert wide.tasks == ["t1"] * 3 + ["t2"] * 3
    assert wide.inputs["input_ids"].shape == (6, 6)
    assert torch.equal(wide.inputs["input_ids"][4], batch.inputs["input_ids"][1])
    assert wide.prompt_lengths.tolist() == [3, 3, 3, 5, 5, 5] and wide.labels.shape == (6, 6)
    assert torch.equal(wide.inputs["pixel_values"], batch.inputs["pixel_values"])  # images are not rows
    assert wide.visual.sample.tolist() == [0, 1, 2, 3, 3, 4, 4, 5, 5]
    assert wide.visual.position.tolist() == [1, 1, 1, 2, 3, 2, 3, 2, 3]
    assert wide.visual.frame.tolist() == [0, 0, 0, 0, 1, 0, 1, 0, 1]
    assert wide.visual.grid[:, 0].tolist() == [0, 1, 2, 3, 3, 4, 4, 5, 5]
    assert wide.visual.frames_per_group.tolist() == [2, 2, 2, 1, 1, 1]


def test_repeat_of_some_samples_numbers_their_rows_from_zero():
    wide = hand_batch().repeat(2, [1])
    assert wide.ids == ["b", "b"] and wide.texts == ["how far?"] * 2 and wide.meta == [{"scene": 2}] * 2
    assert wide.visual.sample.tolist() == [0, 0, 1, 1] and wide.visual.position.tolist() == [2, 3, 2, 3]
    assert wide.visual.grid.tolist() == [[0, 0, 1, 1], [0, 1, 1, 1], [1, 0, 1, 1], [1, 1, 1, 1]]
    assert wide.visual.frames_per_group.tolist() == [1, 1] and wide.prompt_lengths.tolist() == [5, 5]


def test_a_collated_batch_carries_prompt_texts_and_meta_through_both(qwen25):
    data = ColouredSquares(2, num_views=(1, 2), seed=4)
    samples = [data[0], data[1]]
    batch = qwen25.collator({}, None, with_response=False)(samples)
    assert batch.texts == [s.prompt for s in samples] and batch.meta == [dict(s.meta) for s in samples]
    prompts = batch.prompts(qwen25.tokenizer.pad_token_id).repeat(2)
    assert prompts.texts == [samples[0].prompt] * 2 + [samples[1].prompt] * 2
    image = qwen25.hf.config.image_token_id
    ids = prompts.inputs["input_ids"]
    # every visual token of every row still points at an image placeholder after padding and repeating
    assert bool((ids[prompts.visual.sample, prompts.visual.position] == image).all())
    assert int((ids == image).sum()) == len(prompts.visual)


def with_teacher_features(batch: Batch) -> Batch:
    """``hand_batch`` with cached teacher features (float16, as the cache stores them) and a device
    teacher's prepared pixels in its targets."""
    features = [TeacherFeatures(camera=torch.ones(2, 8, dtype=torch.float16), register=torch.ones(2, 1, 8,
                                dtype=torch.float16), patch=torch.ones(2, 4, 8, dtype=torch.float16), grid=(2, 2)),
                None]
    return replace(batch, targets={"latent": [{"features": features[0]}, None],
                                   "prior": [{"prepared": torch.zeros(1, 3, 14, 14)}]})


def test_teacher_features_move_with_the_batch_in_their_dtype():
    batch = with_teacher_features(hand_batch())
    module = SpatialModule.__new__(SpatialModule)  # the hook needs no state
    moved = module.transfer_batch_to_device(batch, torch.device("meta"), 0)
    features = moved.targets["latent"][0]["features"]
    assert {features.camera.device.type, features.register.device.type, features.patch.device.type} == {"meta"}
    assert features.patch.dtype == torch.float16 and features.grid == (2, 2)  # the loss casts on the device
    assert moved.targets["latent"][1] is None
    assert moved.targets["prior"][0]["prepared"].device.type == "meta"
    assert moved.inputs["input_ids"].device.type == "meta" and moved.visual.grid.device.type == "meta"
    assert batch.targets["latent"][0]["features"].patch.device.type == "cpu"  # the loader's batch is untouched


def test_a_cuda_transfer_does_not_block_and_pinning_reaches_the_features(monkeypatch):
    calls = []
    monkeypatch.setattr(Batch, "to", lambda self, device, non_blocking=False: calls.append((device, non_blocking)))
    module = SpatialModule.__new__(SpatialModule)
    module.transfer_batch_to_device(hand_batch(), torch.device("cuda", 0), 0)
    module.transfer_batch_to_device(hand_batch(), torch.device("cpu"), 0)
    assert calls == [(torch.device("cuda", 0), True), (torch.device("cpu"), False)]
    monkeypatch.undo()

    pinned = []  # no CUDA here: record which tensors the loader's pin_memory would page-lock

    def pin(self):
        pinned.append(self.data_ptr())
        return self.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    batch = with_teacher_features(hand_batch())
    out = batch.pin_memory()
    features = batch.targets["latent"][0]["features"]
    for tensor in (features.camera, features.register, features.patch, batch.targets["prior"][0]["prepared"],
                   batch.inputs["input_ids"], batch.labels, batch.visual.position):
        assert tensor.data_ptr() in pinned
    assert out.targets["latent"][0]["features"].patch.data_ptr() != features.patch.data_ptr()
