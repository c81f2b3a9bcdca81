"""``decode_step: auto`` (the default): the lean step on the CPU, transformers' (Hugging Face) step on a GPU
until ``benchmarks/gpu_smoke.py`` has measured the lean one there, the choice and its reason logged once
(issue 29 item 5). The GPU is faked: the device check is replaced, the tensors stay on the CPU."""

import inspect
import logging

import pytest
from latent_helpers import latent_module, prompts

from thinkspace.generation import model_step
from thinkspace.generation.decode import decode
from thinkspace.rl import SpatialGRPO

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def module(tiny_cache):
    return latent_module()


def _decode(module, **settings):
    return decode(module.backbone, prompts(module), max_new_tokens=4, eos_token_id=[], **settings)


def test_auto_is_the_default_and_decodes_with_the_lean_step_on_the_cpu(module):
    assert _decode(module).decoder_step == "lean"
    assert _decode(module, decode_step="auto").decoder_step == "lean"


def test_auto_on_a_gpu_decodes_with_the_hugging_face_step_and_says_why_once(module, monkeypatch, caplog):
    monkeypatch.setattr(model_step, "device_type", lambda tensor: "cuda")
    monkeypatch.setattr(model_step, "_auto_logged", False)
    lean = _decode(module, decode_step="lean")  # the option stays: asked for, it runs on any device
    with caplog.at_level(logging.INFO):
        first, second = _decode(module), _decode(module)
    assert lean.decoder_step == "lean"
    assert first.decoder_step == second.decoder_step == f"hugging face: {model_step.UNMEASURED_REASON}"
    assert "measured on CPUs only" in model_step.UNMEASURED_REASON and "gpu_smoke.py" in model_step.UNMEASURED_REASON
    lines = [r.getMessage() for r in caplog.records if "with the Hugging Face step" in r.getMessage()]
    assert lines == [f"decoding on cuda with the Hugging Face step: {model_step.UNMEASURED_REASON}"]  # once
    assert first.tokens.equal(lean.tokens)  # the same greedy tokens either way


def test_grpo_rollouts_and_validation_default_to_auto():
    assert inspect.signature(SpatialGRPO.__init__).parameters["decode_step"].default == "auto"
