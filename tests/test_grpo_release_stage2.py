"""3DThinker's released stage 2, round 2 (issue 30 items 1-4): the latent steps of rollouts, the
positions the latent-3D reward projects, the scoring pass with pad embeddings in the slot, rollouts
in training mode and the projector in float32 outside autocast."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from thinkspace.backbones import QwenVL
from thinkspace.backbones.lora import LoraSettings
from thinkspace.data.datasets.synthetic import SyntheticSpatial
from thinkspace.objectives import LatentAlignment
from thinkspace.rl import SpatialGRPO
from thinkspace.rl import rollout as rollout_module
from thinkspace.rl.reward_inputs import latents_after_start, project_latents

REPO = Path(__file__).resolve().parents[1]
#: a reward with spread in every group: completion i scores i
BY_INDEX = {"index": lambda prompts, completions, **_: [float(i) for i in range(len(completions))]}

pytestmark = pytest.mark.usefixtures("one_thread")


def views(n=1, seed=0):
    data = SyntheticSpatial(n, image_size=56, num_views=(1, 2), settings=["leftmost"], num_objects=(3, 4),
                            shuffle_options=False, seed=seed)
    return [data[i] for i in range(n)]


def grpo(k=4, **kwargs):
    torch.manual_seed(0)
    settings = {"group_size": 2, "max_new_tokens": 8, "beta": 0.0, "stop_at_eos": False}
    return SpatialGRPO(kwargs.pop("backbone", None) or QwenVL("tiny:qwen2_5_vl"),
                       latent=LatentAlignment(k=k, projector_width=16), **{**settings, **kwargs})


def full_forward(module, sample, ids):
    """Last-layer hidden states ``[L, D]`` (after the final norm) and log-probabilities ``[n]`` of the
    completion ``ids`` ``[n]``: one plain forward of prompt + ids, every id entering as its embedding."""
    inputs = module.collator()([sample]).inputs
    full = torch.cat([inputs["input_ids"][0], ids])[None]
    types = torch.cat([inputs["mm_token_type_ids"][0], torch.zeros(len(ids), dtype=torch.int)])[None]
    with torch.no_grad():
        hidden = module.backbone.hf.model(input_ids=full, attention_mask=torch.ones_like(full), mm_token_type_ids=types,
                                          pixel_values=inputs["pixel_values"],
                                          image_grid_thw=inputs["image_grid_thw"]).last_hidden_state[0]
        logits = module.backbone.hf.lm_head(hidden)
    prompt = inputs["input_ids"].shape[1]
    logp = logits[prompt - 1:-1].float().log_softmax(-1).gather(-1, ids[:, None])[:, 0]
    return hidden, logp, prompt


# -- item 1: latent steps ------------------------------------------------------------------

def test_rollouts_and_evaluation_decode_latent_steps_pads(tiny_cache):
    module = grpo(k=4, latent_steps=2, reward_latents="after_start")
    slot = module.latent.slot
    rollout = module.roll_out(module.collator()(views()))
    assert rollout.generation.tokens[:, :4].tolist() == [[slot.start_id, slot.pad_id, slot.pad_id, slot.end_id]] * 2
    assert module.generation_settings()["latent_steps"] == 2  # validation, test and predict decode the same
    assert module.decode(module.collator()(views())).tokens[0, :4].tolist() == rollout.generation.tokens[0, :4].tolist()
    with pytest.raises(ValueError, match="model.latent_steps 2 differs from the slot's k 4: .* every completion would "
                                         "score 0 on the latent-3D reward; set model.reward_latents: after_start"):
        grpo(k=4, latent_steps=2, backbone=module.backbone)
    with pytest.raises(ValueError, match="model.latent_steps 8 needs a latent slot"):
        SpatialGRPO(module.backbone, rewards={"answer": "thinkspace.rl.rewards.answer_reward"}, latent_steps=8)
    with pytest.raises(ValueError, match="model.reward_latents must be 'decoded' or 'after_start', got 'pads'"):
        grpo(backbone=module.backbone, reward_latents="pads")


# -- item 2: the positions the latent-3D reward projects -----------------------------------

def test_after_start_picks_the_released_positions(tiny_cache):
    """k = 4, 2 latent steps, completions of 8 tokens (the last one the completion's end): the
    hidden states of a plain forward at start+1 .. start+4, or from the prompt's last position."""
    module = grpo(k=4, latent_steps=2, group_size=5, reward_latents="after_start").eval()
    sample = views()[0]
    gen = module.decode(module.collator()([sample]), group=5, eos_token_id=[])
    slot, text = module.latent.slot, gen.tokens[0, 4:].tolist()  # 4 text tokens after the decoded slot
    s, p, e = slot.start_id, slot.pad_id, slot.end_id
    rows = [[s, p, p, e, *text],  # the slot first: pads 1-2, the end, a text token
            [*text[:3], s, p, p, e, text[3]],  # the slot at step 3: the window ends on the last token
            [*text, *text],  # no slot: the prompt's last position and 3 completion tokens
            [*text, text[0], s, p, p],  # a start without an end: as without a slot
            [*text, s, p, p, e]]  # the slot at step 4: the window passes the completion's end -> invalid
    tokens = torch.tensor(rows)
    constructed = replace(gen, tokens=tokens, latent_start=torch.tensor([0, 3, -1, 5, 4]))
    latents, valid = latents_after_start(module.backbone, constructed, slot)
    assert latents.shape == (5, 4, module.backbone.hidden_size)
    assert valid.tolist() == [True, True, True, True, False]
    for n, first in enumerate([1, 4, -1, -1]):  # completion position of the window's first state
        hidden, _, prompt = full_forward(module, sample, tokens[n])
        torch.testing.assert_close(latents[n], hidden[prompt + first:prompt + first + 4], atol=2e-5, rtol=1e-4)
    assert module.backbone.tokenizer.decode(module.collator()([sample]).inputs["input_ids"][0]).endswith(
        "<|im_start|>assistant\n")  # the release's fallback: the 12 positions after <|im_start|>assistant


def test_after_start_scores_a_slot_closed_early(tiny_cache):
    """With 2 of k = 4 steps the decoded latents are incomplete (reward 0); the released positions score."""
    decoded = grpo(k=4, latent_steps=4, group_size=2).roll_out
    module = grpo(k=4, latent_steps=2, group_size=2, reward_latents="after_start")
    batch = module.collator()(views())
    names = module.rewards.names
    latent3d = module.roll_out(batch).rewards.values[names.index("latent3d")]
    assert ((latent3d > 0) & (latent3d < 1)).all()
    assert decoded(batch).rewards.values[names.index("latent3d")].gt(0).all()  # k steps: the decoded ones score


# -- item 3: the scoring pass ----------------------------------------------------------------

def test_pads_scoring_is_a_plain_forward_of_the_ids(tiny_cache):
    module = grpo(k=4, logprob_inputs="pads", beta=0.04, num_iterations=2)
    sample = views()[0]
    rollout = module.roll_out(module.collator()([sample]))
    gen, slot = rollout.generation, module.latent.slot
    assert gen.logprobs is None  # the decode loop fed latents back: its numbers are not the pads' ones
    seen = []
    language_model = module.backbone.hf.model.language_model
    handle = language_model.register_forward_hook(lambda m, a, kw, out: seen.append(kw["inputs_embeds"]),
                                                  with_kwargs=True)
    module.eval()
    try:
        with torch.no_grad():
            pads = module.logprobs(gen)
    finally:
        handle.remove()
    embeds = seen[-1]  # the completions' pass
    pad_rows = gen.tokens == slot.pad_id
    assert int(pad_rows.sum()) == 2 * 4
    pad_embedding = module.backbone.hf.get_input_embeddings().weight[slot.pad_id]
    assert torch.equal(embeds[pad_rows], pad_embedding.expand(8, -1))
    for n in range(2):
        _, logp, _ = full_forward(module, sample, gen.tokens[n])
        torch.testing.assert_close(pads[n], logp, atol=2e-5, rtol=1e-4)
    # the reference (a frozen copy of the initial policy) and the sampling policy score the same way
    torch.testing.assert_close(rollout.ref_logp, pads, atol=1e-6, rtol=0)
    torch.testing.assert_close(rollout.old_logp, pads, atol=1e-6, rtol=0)
    module.logprob_inputs = "latents"
    with torch.no_grad():
        fed = module.logprobs(gen)
    assert (fed[:, 5:] - pads[:, 5:]).abs().max() > 1e-4  # the text after the slot sees other inputs


# -- item 4: training mode and the projector's precision ---------------------------------------

def test_rollouts_in_training_mode_draw_lora_dropout(tiny_cache):
    modes = []
    for mode in ("eval", "train"):
        module = grpo(k=4, rollout_mode=mode,
                      backbone=QwenVL("tiny:qwen2_5_vl", lora=LoraSettings(r=4, alpha=8, dropout=0.5)))
        module.train()
        batch = module.collator()(views())
        step = module.roll_out(batch).generation.decoder_step  # without hooks: the lean step may run
        dropout = next(m for n, m in module.backbone.named_modules() if n.endswith("lora_dropout.default"))
        calls = []
        handle = dropout.register_forward_hook(lambda m, a, out, seen=calls: seen.append(m.training))
        try:
            module.roll_out(batch)
        finally:
            handle.remove()
        assert module.backbone.training  # restored
        modes.append((set(calls), step))
    (eval_calls, eval_step), (train_calls, train_step) = modes
    assert eval_calls == {False} and eval_step == "lean"
    assert train_calls == {True} and "dropout 0.5 in training mode" in train_step


def test_training_mode_rollouts_train_under_gradient_checkpointing(tiny_cache):
    """No dropout: a step from a rollout in training mode equals one from a rollout in evaluation mode,
    gradient checkpointing on. (Decoding in training mode would otherwise run the prefill, whose graph
    the policy's pass reuses, through checkpointed layers that write the decode's KV cache: the
    backward pass's replay then meets a longer cache and fails.)"""
    results = []
    for mode in ("eval", "train"):
        torch.manual_seed(0)
        backbone = QwenVL("tiny:qwen2_5_vl", lora=LoraSettings(r=4, alpha=8, dropout=0.0))
        module = grpo(k=4, rollout_mode=mode, gradient_checkpointing=True, backbone=backbone, rewards=BY_INDEX)
        with torch.no_grad():
            for name, param in module.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
        module.train()
        module.training_step(module.collator()(views()), 0).backward()
        grads = {n: p.grad for n, p in module.named_parameters() if p.grad is not None}
        results.append((module._rollout.generation.tokens, grads))
    (tokens, grads), (train_tokens, train_grads) = results
    assert torch.equal(tokens, train_tokens) and grads.keys() == train_grads.keys() and len(grads) > 10
    for name, grad in grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(train_grads[name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_the_projector_runs_in_float32_outside_autocast(tiny_cache):
    module = grpo(k=4).eval()
    batch = module.collator()(views())
    gen = module.decode(batch, group=2)
    plain, _ = project_latents(module.latent, batch, gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed, _ = project_latents(module.latent, batch, gen)
    assert plain[0].dtype == mixed[0].dtype == torch.float32
    assert all(torch.equal(a, b) for a, b in zip(plain, mixed))


# -- the paper configs ---------------------------------------------------------------------------

def test_paper_configs_take_the_released_stage2():
    stage2 = yaml.safe_load((REPO / "configs" / "3dthinker" / "stage2_grpo.yaml").read_text())["model"]["init_args"]
    assert (stage2["latent_steps"], stage2["reward_latents"], stage2["logprob_inputs"], stage2["rollout_mode"]) == \
        (8, "after_start", "pads", "train")
    assert stage2["latent"]["init_args"]["k"] == 12  # trained with 12, decoded with 8
    evaluation = yaml.safe_load((REPO / "configs" / "eval" / "mindcube_3dthinker.yaml").read_text())
    assert evaluation["model"]["generation"]["latent_steps"] == 8


@pytest.mark.slow
def test_the_tiny_recipe_runs_with_the_released_stage2_settings(tmp_path):
    """stage2_grpo_tiny.yaml with the paper config's four settings, through the CLI: 8 latent steps of
    k = 12 score on the latent-3D reward (the decoded latents would have none to project)."""
    from cli_helpers import run_cli
    from test_grpo_cli import FAST, TINY, scalars

    released = ["--model.latent_steps", "8", "--model.reward_latents", "after_start", "--model.logprob_inputs", "pads",
                "--model.rollout_mode", "train", "--model.max_new_tokens", "24", "--model.stop_at_eos", "false"]
    run_cli("fit", "--config", str(TINY), "--run_dir", "runs/r", "--trainer.max_steps", "2", *FAST, *released,
            cwd=tmp_path)
    run = tmp_path / "runs" / "r"
    saved = yaml.safe_load((run / "config.yaml").read_text())["model"]["init_args"]
    assert (saved["latent_steps"], saved["reward_latents"], saved["logprob_inputs"], saved["rollout_mode"]) == \
        (8, "after_start", "pads", "train")
    latent3d = scalars(run, "train/rewards/latent3d/mean")
    assert len(latent3d) == 2 and all(0.0 < v < 1.0 for v in latent3d)


def test_after_start_with_pads_scoring_runs_the_completion_pass_once_for_rewards_and_old_policy(tiny_cache,
                                                                                           monkeypatch):
    """``reward_latents: after_start`` with ``logprob_inputs: pads`` and ``num_iterations`` 2: the latent-3D
    reward's positions and the old policy's log-probabilities come from one completion pass (the same
    inputs, no dropout in ``rollout_mode: eval``), equal to each run on its own."""
    import thinkspace.rl.grpo as grpo_module
    import thinkspace.rl.reward_inputs as reward_inputs_module

    module = grpo(k=4, latent_steps=2, group_size=2, reward_latents="after_start", logprob_inputs="pads",
                  num_iterations=2)
    batch = module.collator()(views())
    passes = []
    original = grpo_module.completion_pass

    def counted(*args, **kwargs):
        passes.append(1)
        return original(*args, **kwargs)

    for where in (grpo_module, reward_inputs_module, rollout_module):
        monkeypatch.setattr(where, "completion_pass", counted)
    rollout = module.roll_out(batch)
    assert len(passes) == 1  # was 2: one for the reward's latents, one for the old policy
    gen = rollout.generation
    module.eval()
    with torch.no_grad():  # each on its own pass: the same numbers
        assert torch.equal(rollout.old_logp, module.logprobs(gen))
        alone = module.compute_rewards(batch, gen, rollout.completions)
    assert len(passes) == 3
    names = module.rewards.names
    assert torch.equal(rollout.rewards.values, alone.values)
    assert rollout.rewards.values[names.index("latent3d")].gt(0).all()  # the shared pass fed the reward
    module.rollout_mode = "train"  # dropout draws differ between passes: each runs its own
    passes.clear()
    module.roll_out(batch)
    assert len(passes) == 2
