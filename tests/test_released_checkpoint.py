"""A 3DThinker checkpoint as released: the slot's tokens added pad, start, end and the tied vocabulary
resized to the tokenizer's length, the projector saved inside the model as ``projector_model.*``, the
slot's ids in config.json (3DThinker's ``3dthinker/stage1/src/main.py``). Written here from the tiny
Qwen2.5-VL, then loaded through thinkspace's normal path (a backbone ``path``)."""

import copy
import re

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from thinkspace.backbones import QwenVL
from thinkspace.backbones.paths import resolve_model_path
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment
from thinkspace.slot_tokens import END, PAD, RELEASED_ORDER, START
from thinkspace.teachers import OracleGeometryTeacher

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_TOKENS = 1016  # the tiny Qwen tokenizer's length; its embeddings have 1024 rows (padded, as Qwen's)


def objective(**kwargs) -> LatentAlignment:
    return LatentAlignment(k=3, projector="paper", paper_view_size=(84, 56),
                           teacher=OracleGeometryTeacher(patch_size=14), **kwargs)


class ReleasedNames(nn.Module):
    """A paper projector's layers under the names 3DThinker's ``projector`` class gives them, with
    weights no fresh initialisation has."""

    def __init__(self, ours: nn.Module) -> None:
        super().__init__()
        self.prompte_model = copy.deepcopy(ours.latent_mix)
        self.fusion_model = copy.deepcopy(ours.fusion)
        self.proj_3d_model = copy.deepcopy(ours.channels)
        generator = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))


def write_released(out, with_projector=True, tokenizer_has_tokens=True):
    """The tiny model saved as 3DThinker's stage 1 saves a checkpoint; returns the projector's tensors."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source = resolve_model_path("tiny:qwen2_5_vl")
    processor = AutoProcessor.from_pretrained(source)
    model = AutoModelForImageTextToText.from_pretrained(source)
    for token in RELEASED_ORDER:  # one call each, in 3DThinker's order
        processor.tokenizer.add_tokens(token, special_tokens=True)
    model.resize_token_embeddings(len(processor.tokenizer))
    pad, start, end = processor.tokenizer.convert_tokens_to_ids([PAD, START, END])
    model.config.latent_token_id, model.config.latent_start_id, model.config.latent_end_id = pad, start, end
    tensors = {}
    if with_projector:
        fresh = objective()
        fresh.setup(QwenVL(source))  # only to size the projector as the tiny model needs it
        model.projector_model = ReleasedNames(fresh.projector)
        tensors = {n: t.clone() for n, t in model.projector_model.state_dict().items()}
    model.save_pretrained(out)
    (processor if tokenizer_has_tokens else AutoProcessor.from_pretrained(source)).save_pretrained(out)
    return tensors


@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_cache):
    out = tmp_path_factory.mktemp("released")
    return out, write_released(out)


def test_the_released_layout_orders_and_resizes_as_3dthinker(tiny_cache):
    ours = QwenVL("tiny:qwen2_5_vl")
    objective().setup(ours)  # thinkspace's layout: start, pad, end; the padded rows kept
    assert [ours.tokenizer.convert_tokens_to_ids(t) for t in (START, PAD, END)] == [TINY_TOKENS, TINY_TOKENS + 1,
                                                                                     TINY_TOKENS + 2]
    assert ours.hf.get_input_embeddings().weight.shape[0] == 1024
    theirs = QwenVL("tiny:qwen2_5_vl")
    latent = objective(token_layout="released")
    latent.setup(theirs)
    slot = latent.slot
    assert (slot.pad_id, slot.start_id, slot.end_id) == (TINY_TOKENS, TINY_TOKENS + 1, TINY_TOKENS + 2)
    assert theirs.hf.get_input_embeddings().weight.shape[0] == TINY_TOKENS + 3  # resized to the tokenizer
    assert theirs.hf.lm_head.weight.shape[0] == TINY_TOKENS + 3  # tied: the head shrinks with it
    assert theirs.hf.lm_head.weight.data_ptr() == theirs.hf.get_input_embeddings().weight.data_ptr()


def test_a_released_checkpoint_loads_as_a_backbone_path(released):
    path, tensors = released
    model = SpatialVLM(QwenVL(str(path)), objectives={"latent": objective(token_layout="released")})
    latent = model.objectives["latent"]
    slot = latent.slot
    assert (slot.pad_id, slot.start_id, slot.end_id) == (TINY_TOKENS, TINY_TOKENS + 1, TINY_TOKENS + 2)
    assert model.backbone.hf.get_input_embeddings().weight.shape[0] == TINY_TOKENS + 3  # as saved, no resize
    state = latent.projector.state_dict()
    renamed = {"prompte_model.": "latent_mix.", "fusion_model.": "fusion.", "proj_3d_model.": "channels."}
    assert len(state) == len(tensors) == 2 * (2 + 6 + 6)  # weight and bias of each Linear
    for name, tensor in tensors.items():
        head = next(h for h in renamed if name.startswith(h))
        assert torch.equal(state[renamed[head] + name[len(head):]], tensor), name
    fresh = SpatialVLM(QwenVL(str(path)), objectives={"latent": objective(token_layout="released",
                                                                          projector_init="new")})
    assert not torch.equal(fresh.objectives["latent"].projector.fusion[0].weight, latent.projector.fusion[0].weight)


def test_a_released_checkpoint_read_with_thinkspaces_order_is_refused_by_its_config(tmp_path, tiny_cache):
    write_released(tmp_path, with_projector=False, tokenizer_has_tokens=False)
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path}/config.json: latent_start_id {TINY_TOKENS + 1} but the tokenizer gives {TINY_TOKENS}, "
            f"latent_token_id {TINY_TOKENS} but the tokenizer gives {TINY_TOKENS + 1}; a released 3DThinker "
            "checkpoint needs LatentAlignment token_layout: released (got 'thinkspace')")):
        objective().setup(QwenVL(str(tmp_path)))
    latent = objective(token_layout="released")  # the tokens added in the official order get the recorded ids
    latent.setup(QwenVL(str(tmp_path)))
    assert (latent.slot.pad_id, latent.slot.start_id) == (TINY_TOKENS, TINY_TOKENS + 1)


def test_a_missing_projector_is_refused_naming_what_is_missing(released, tmp_path, tiny_cache):
    write_released(tmp_path, with_projector=False)
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path} (LatentAlignment projector_init: checkpoint): no projector_model.* tensors in the model "
            "directory's safetensors")):
        objective(token_layout="released", projector_init="checkpoint").setup(QwenVL(str(tmp_path)))
    auto = objective(token_layout="released")  # auto: nothing to load, a fresh projector
    auto.setup(QwenVL(str(tmp_path)))
    # a checkpoint whose projector lacks one tensor: named, whatever projector_init asks
    path, _ = released
    weights = load_file(str(path / "model.safetensors"))
    del weights["projector_model.fusion_model.10.bias"]
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path}: its released 3DThinker projector does not fit LatentAlignment's paper projector "
            "(k 3, 6 visual and 25 teacher tokens): missing projector_model.fusion_model.10.bias")):
        objective(token_layout="released").setup(QwenVL(str(tmp_path)))


def test_the_released_resize_works_under_a_lora_adapted_head(tiny_cache):
    from thinkspace.backbones.lora import LANGUAGE_LINEAR_AND_HEAD, LoraSettings

    backbone = QwenVL("tiny:qwen2_5_vl", lora=LoraSettings(r=4, alpha=8, target_modules=LANGUAGE_LINEAR_AND_HEAD))
    head = backbone.hf.lm_head
    before = head.lora_B["default"].weight.detach().clone()
    objective(token_layout="released").setup(backbone)  # stage 2: LoRA applied before the objective's setup
    hf = backbone.hf
    assert hf.lm_head is head and head.base_layer.weight is hf.get_input_embeddings().weight  # still tied
    assert head.base_layer.weight.shape == (TINY_TOKENS + 3, 128) and head.lora_B["default"].out_features == \
        TINY_TOKENS + 3
    assert torch.equal(head.lora_B["default"].weight, before[:TINY_TOKENS + 3])
    assert head.lora_B["default"].weight.requires_grad and not hf.get_input_embeddings().weight.requires_grad
    assert hf.lm_head(torch.randn(2, 128)).shape == (2, TINY_TOKENS + 3)
