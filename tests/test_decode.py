"""One ``decode()`` for both modules: greedy, it gives transformers' ``generate`` tokens; ``sampler:
transformers`` is transformers' ``generate``; SpatialVLM and SpatialGRPO given the same settings sample
the same tokens from the same seed."""

import re
from dataclasses import replace

import pytest
import torch

from thinkspace.backbones import QwenVL
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.generation.decode import decode
from thinkspace.modules.spatial_vlm import SpatialVLM
from thinkspace.objectives import LatentAlignment, TextCrossEntropy
from thinkspace.rl import SpatialGRPO
from thinkspace.rl.rollout import rollout_generators

pytestmark = pytest.mark.usefixtures("one_thread")


def views(n=2, seed=3):
    data = SyntheticSpatial(n, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=seed)
    return [replace(data[i], response=None) for i in range(n)]


class GenerateSpy:
    """Counts calls of ``hf.generate`` (and hands them on)."""

    def __init__(self, hf):
        self.hf, self.original, self.calls = hf, hf.generate, []

    def __enter__(self):
        def spy(*args, **kwargs):
            self.calls.append(kwargs)
            return self.original(*args, **kwargs)

        self.hf.generate = spy
        return self

    def __exit__(self, *exc):
        del self.hf.generate  # the instance attribute goes; the class's method shows again


@pytest.mark.parametrize("family", ["qwen25", "llava_onevision"])
def test_greedy_decode_gives_transformers_generate_tokens_token_for_token(request, family):
    backbone = request.getfixturevalue(family)
    batch = backbone.collator(with_response=False)(views(2))
    ours = decode(backbone, batch, max_new_tokens=8, eos_token_id=[])
    theirs = decode(backbone, batch, sampler="transformers", max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert ours.tokens.shape == (2, 8) and ours.decoder_step == "lean"
    assert torch.equal(ours.tokens, theirs.tokens)
    assert ours.texts == theirs.texts


def test_the_transformers_sampler_is_transformers_generate(qwen25):
    batch = qwen25.collator(with_response=False)(views(2))
    prompts = batch.prompts(qwen25.tokenizer.pad_token_id)
    with GenerateSpy(qwen25.hf) as spy:
        got = decode(qwen25, batch, sampler="transformers", max_new_tokens=4, do_sample=False, num_beams=2)
    assert len(spy.calls) == 1 and spy.calls[0]["num_beams"] == 2  # its options go to transformers as they are
    with torch.no_grad():
        direct = qwen25.hf.generate(**qwen25.model_inputs(prompts), max_new_tokens=4, do_sample=False, num_beams=2,
                                    pad_token_id=qwen25.tokenizer.pad_token_id)
    assert torch.equal(got.tokens, direct[:, prompts.inputs["input_ids"].shape[1]:])
    assert got.decoder_step == "transformers generate" and got.latents.shape == (2, 0, qwen25.hidden_size)
    with GenerateSpy(qwen25.hf) as spy:
        decode(qwen25, batch, max_new_tokens=4)
    assert spy.calls == []  # thinkspace's decoding never calls it


def test_each_sampler_names_what_it_does_not_take(qwen25):
    batch = qwen25.collator(with_response=False)(views(1))
    with pytest.raises(ValueError, match=re.escape("decoding takes no generation option(s) ['num_beams'] (from "
                                                   "model.generation or the call)")):
        decode(qwen25, batch, max_new_tokens=2, num_beams=2)
    with pytest.raises(ValueError, match=re.escape("sampler 'transformers' (transformers' generate) takes no "
                                                   "option(s) ['decode_step', 'group']")):
        decode(qwen25, batch, sampler="transformers", max_new_tokens=2, group=2, decode_step="lean")
    with pytest.raises(ValueError, match="sampler 'transformers' cannot decode a latent slot"):
        decode(qwen25, batch, object(), sampler="transformers", max_new_tokens=2)
    with pytest.raises(ValueError, match="sampler must be 'thinkspace' or 'transformers', got 'hf'"):
        decode(qwen25, batch, sampler="hf", max_new_tokens=2)


def test_spatial_vlm_decodes_with_thinkspace_unless_the_config_picks_transformers(tiny_cache):
    torch.manual_seed(0)
    module = SpatialVLM(QwenVL("tiny:qwen2_5_vl"), objectives={"text": TextCrossEntropy()},
                        generation={"max_new_tokens": 3, "do_sample": False}).eval()
    batch = module.collator(with_response=False)(views(2))
    with GenerateSpy(module.backbone.hf) as spy:
        ours = module.generate(batch)
        module.generation = {**module.generation, "sampler": "transformers"}
        theirs = module.generate(batch)
    assert len(spy.calls) == 1  # only the explicit choice
    assert ours == theirs  # greedy: the same text


@pytest.mark.parametrize("with_slot", [False, True])
def test_spatial_vlm_and_grpo_sample_the_same_tokens_from_the_same_settings(tiny_cache, with_slot):
    """Validation, test, predict and ``ask`` (SpatialVLM) decode as GRPO's rollouts do: the same sampling
    settings and generators give the same tokens (and latents)."""
    torch.manual_seed(0)
    backbone = QwenVL("tiny:qwen2_5_vl")
    sampling = {"max_new_tokens": 8, "temperature": 0.7, "top_p": 0.9, "top_k": 20}

    def latent():
        return LatentAlignment(k=3, projector_width=16) if with_slot else None

    objectives = {"latent": latent()} if with_slot else {"text": TextCrossEntropy()}
    vlm = SpatialVLM(backbone, objectives=objectives, generation={**sampling, "do_sample": True})
    grpo = SpatialGRPO(backbone, rewards={"answer": "thinkspace.rl.rewards.answer_reward"}, latent=latent(),
                       group_size=3, beta=0.0, **sampling)
    batch = grpo.collator()(views(2))
    rollout = grpo.roll_out(batch).generation
    vlm.eval()
    decoded = vlm.decode(batch, group=3, generator=rollout_generators(grpo.seed, grpo.global_step, batch.ids, grpo.device))
    assert rollout.tokens.shape[0] == 6 and rollout.tokens.shape[1] > 1
    assert torch.equal(decoded.tokens, rollout.tokens)
    assert torch.equal(decoded.sampled, rollout.sampled)
    assert torch.equal(decoded.latents, rollout.latents) and decoded.latents.shape[1] == (3 if with_slot else 0)
    assert len(set(map(tuple, rollout.tokens.tolist()))) > 1  # sampled: the completions differ
