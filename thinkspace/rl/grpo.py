"""``SpatialGRPO``: GRPO on the Lightning loop (3DThinker's stage 2), from outcome rewards alone.

One training step: (every ``num_iterations`` steps) roll out G completions per prompt
(:mod:`thinkspace.rl.rollout`), score them with the reward functions
(:mod:`thinkspace.rl.rewards`), normalise the rewards within each group into advantages;
then the clipped policy-ratio loss with a k3 KL penalty to the reference policy,
averaged over completion tokens (:mod:`thinkspace.rl.loss`).

Data parallel: each rank rolls out its own prompts, so a group never spans ranks and
advantages are computed within it; the token mean and the reward statistics are
reduced over ranks.
"""

from __future__ import annotations

import copy
import logging
from contextlib import nullcontext
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchmetrics import MeanMetric

from thinkspace.backbones.base import VLMBackbone
from thinkspace.backbones.capabilities import LATENT_DECODING
from thinkspace.data.batch import Batch
from thinkspace.generation.decode import DecodeStep
from thinkspace.generation.prefill import Prefill
from thinkspace.modules.base import SpatialModule
from thinkspace.objectives.latent3d import LatentAlignment
from thinkspace.rl.checkpoint import load_stage1
from thinkspace.rl.chosen_logprobs import DEFAULT_CHUNK_TOKENS
from thinkspace.rl.grpo_settings import (
    DEFAULT_REWARDS,
    LogprobInputs,
    LossTokens,
    Reference,
    RewardLatents,
    RolloutMode,
    check_latent_steps,
    check_prompt_lengths,
    check_settings,
    reference_kind,
)
from thinkspace.rl.loss import LossNormalisation, clipped_loss, group_advantages
from thinkspace.rl.prefix_cache import (
    allow_read_only_cache,
    checkpointing_paused,
    train_mode_dropout,
)
from thinkspace.rl.reward_inputs import latents_after_start, reward_inputs
from thinkspace.rl.rewards import CompletionRewards, RewardSet, latent3d_reward
from thinkspace.rl.rollout import (
    Rollout,
    completion_pass,
    completion_texts,
    rollout_generators,
    sequence_logprobs,
)
from thinkspace.rl.stats import reward_statistics

logger = logging.getLogger(__name__)

def _adamw(params: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-5)


class SpatialGRPO(SpatialModule):
    """Group relative policy optimisation of a VLM backbone (latents included).

    Shared with the supervised module (:class:`~thinkspace.modules.base.SpatialModule`): freezing,
    the optimizer, ``test_step`` and ``predict_step``; :attr:`objectives` is the latent objective
    under its own name.

    Args:
        backbone: the policy (e.g. :class:`thinkspace.backbones.QwenVL`, with ``lora`` for
            adapter training: the reference policy is then the same model with its adapter
            disabled).
        rewards: reward functions by name, as dotted paths (``None`` drops one). Default:
            format, answer and latent-3D (latent-3D only with ``latent``; see docs/grpo.md).
        reward_weights: weight per reward name (default 1.0 each; the paper sums them).
        reward_kwargs: extra keyword arguments per reward name (e.g. ``{answer: {rel_tol: 0.05}}``).
        latent: the stage-1 latent objective (its slot, teacher and projector; the projector
            is frozen): completions decode with its slot (``latent_steps`` latent steps), and the
            latent-3D reward compares the projected latents (``reward_latents``) with the teacher's
            tokens. ``None``: no slot.
        group_size: completions per prompt, G (at least 2).
        max_new_tokens: decoding steps per completion (latent steps included).
        temperature: sampling temperature (the log-probabilities use the same).
        top_p: nucleus sampling mass (1: off).
        top_k: sample among the k most likely tokens (0: off).
        stop_at_eos: stop a completion at the end-of-turn token; ``False`` decodes
            ``max_new_tokens`` every time (equal work for benchmarks).
        force_latent_start: open the latent slot as the first token of every completion;
            ``False``: the policy opens it when it samples the start token (3DThinker's release).
        latent_early_end: the policy may close the slot before ``latent_steps`` by sampling the
            end token (3DThinker's release); otherwise the end is forced after exactly ``latent_steps``.
        latent_steps: latent steps (pads) per slot when decoding, rollouts and evaluation alike
            (``None``: the slot's k; 3DThinker's authors decode 8 after training with 12). Other
            than k, ``reward_latents: decoded`` has no k latents to project: refused with a
            latent-3D reward.
        reward_latents: the hidden states the latent-3D reward projects: ``decoded`` (the k latents
            fed back while decoding; a completion without them scores 0) or ``after_start`` (a
            pass over the sampled ids with pad tokens in the slot, the k positions after the start
            token, or after the prompt without a slot, as 3DThinker's release); see
            :mod:`thinkspace.rl.reward_inputs`.
        logprob_inputs: what enters at the slot's pads when the policy and the reference score a
            rollout: ``latents`` (the latents fed back while sampling, as the sampler saw them, with
            ``decoding: feedback``) or ``pads`` (the ``<|latent_pad|>`` embedding: a plain forward of
            the sampled ids, as 3DThinker's release).
        rollout_mode: the mode rollouts sample, score and compute rewards in: ``eval`` (no dropout) or
            ``train`` (LoRA dropout drawn, as 3DThinker's release, whose trainer never leaves train mode;
            the decode then takes the Hugging Face step, which draws it). The reference pass disables
            the adapters, so it draws no LoRA dropout either way.
        loss_tokens: which completion tokens the loss counts: ``sampled`` (tokens the policy
            chose; the forced start, pads and end are not) or ``completion`` (every completion
            token up to and including the stop token, forced ones too, as 3DThinker's release).
        loss_normalisation: ``token`` (mean over every counted token) or ``sequence`` (each
            completion's token mean, then the mean over completions, as 3DThinker's release);
            see :func:`thinkspace.rl.loss.clipped_loss`.
        beta: KL coefficient (0: no reference policy at all).
        epsilon: clip range of the policy ratio.
        epsilon_high: upper clip range (default ``epsilon``).
        scale_rewards: divide by the group's std (+ ``advantage_eps``); ``False``: centre only.
        advantage_eps: added to the group std.
        num_iterations: optimisation steps per rollout batch; with more than 1 the loader's
            batches in between are not rolled out (see docs/grpo.md).
        reference: ``auto`` (adapter-disabled model with LoRA, else a frozen copy when beta > 0),
            ``adapter``, ``copy``.
        init_from: a SpatialVLM checkpoint (``.ckpt``, stage 1) whose backbone and latent
            projector weights start the policy (and define the reference).
        seed: seed of the rollout sampling (with the step and each sample's id, so resumes are
            exact and a prompt's completions do not depend on the rank that rolls it out).
        optimizer: optimizer factory over the trainable parameters (default AdamW, lr 1e-5).
        scheduler: learning-rate scheduler factory, stepped every optimizer step.
        freeze: regular expressions of parameter names to freeze (e.g. ``"\\.visual\\."``).
        max_length: longest prompt in tokens (the collator fails naming the sample).
        gradient_checkpointing: recompute the decoder's activations in the backward pass of
            the scoring pass (the ``B x G`` completions; the prompts' prefill keeps its own).
        decode_step: the rollouts' per-token step: ``auto`` (``lean`` on the CPU, ``hugging_face`` on a GPU
            until the lean step is measured there), ``lean`` (weights fused and LoRA folded once
            per rollout, static KV buffers; the Hugging Face step where the decoder is not
            supported), ``compiled`` (the lean step through ``torch.compile``) or ``hugging_face``
            (see :func:`~thinkspace.generation.decode.thinkspace_decode`).
        logprob_chunk_tokens: completion tokens whose float32 logits exist at once when the policy
            and the reference score a rollout (1,024 x 151,936 are 0.58 GiB; the backward pass
            recomputes each chunk's logits); 0: all at once (see :mod:`thinkspace.rl.chosen_logprobs`).
    """

    def __init__(
        self,
        backbone: VLMBackbone,
        rewards: dict[str, str | None] | None = None,
        reward_weights: dict[str, float] | None = None,
        reward_kwargs: dict[str, dict[str, Any]] | None = None,
        latent: LatentAlignment | None = None,
        group_size: int = 8,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        stop_at_eos: bool = True,
        force_latent_start: bool = True,
        latent_early_end: bool = False,
        latent_steps: int | None = None,
        reward_latents: RewardLatents = "decoded",
        logprob_inputs: LogprobInputs = "latents",
        rollout_mode: RolloutMode = "eval",
        loss_tokens: LossTokens = "sampled",
        loss_normalisation: LossNormalisation = "token",
        beta: float = 0.04,
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        scale_rewards: bool = True,
        advantage_eps: float = 1e-4,
        num_iterations: int = 1,
        reference: Reference = "auto",
        init_from: str | None = None,
        seed: int = 0,
        optimizer: OptimizerCallable = _adamw,
        scheduler: LRSchedulerCallable | None = None,
        freeze: list[str] | None = None,
        max_length: int | None = None,
        gradient_checkpointing: bool = False,
        decode_step: DecodeStep = "auto",
        logprob_chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    ) -> None:
        super().__init__(backbone, optimizer, scheduler)
        check_settings(group_size=group_size, num_iterations=num_iterations, max_new_tokens=max_new_tokens,
                       loss_tokens=loss_tokens, loss_normalisation=loss_normalisation, reference=reference,
                       decode_step=decode_step, reward_latents=reward_latents, logprob_inputs=logprob_inputs,
                       rollout_mode=rollout_mode, logprob_chunk_tokens=logprob_chunk_tokens)
        backbone.require(LATENT_DECODING, "SpatialGRPO (its rollouts decode with latent steps)")
        self.latent = latent
        if latent is not None:  # keeps its name (its targets' key in the batch): nothing here assumes one
            latent.setup(backbone)
            latent.projector.requires_grad_(False)  # the stage-1 projector pairs latents with the teacher; it is not trained
        chosen, kwargs = dict(DEFAULT_REWARDS if rewards is None else rewards), dict(reward_kwargs or {})
        if rewards is None and latent is None:  # no slot: no latent-3D reward, a format without the slot
            chosen.pop("latent3d")
            kwargs.setdefault("format", {"latent": False})
        self.rewards = RewardSet(chosen, reward_weights, kwargs)
        check_latent_steps(latent, latent_steps, reward_latents, latent3d_reward in self.rewards.functions.values())
        self.val_rewards = torch.nn.ModuleDict({name: MeanMetric() for name in self.rewards.names})
        self.group_size, self.max_new_tokens = group_size, max_new_tokens
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.stop_at_eos, self.force_latent_start = stop_at_eos, force_latent_start
        self.latent_early_end, self.latent_steps = latent_early_end, latent_steps
        self.reward_latents, self.logprob_inputs, self.rollout_mode = reward_latents, logprob_inputs, rollout_mode
        self.loss_tokens, self.loss_normalisation = loss_tokens, loss_normalisation
        self.beta, self.epsilon, self.epsilon_high = beta, epsilon, epsilon_high
        self.scale_rewards, self.advantage_eps = scale_rewards, advantage_eps
        self.num_iterations, self.seed = num_iterations, seed
        self.decode_step, self.logprob_chunk_tokens = decode_step, logprob_chunk_tokens
        self.init_from, self.max_length = init_from, max_length
        self.reference_kind = reference_kind(reference, uses_adapter=hasattr(backbone.model, "disable_adapter"))
        self._rollout: Rollout | None = None
        self._uses = 0
        self._initialised = self._prepared = False
        #: why the policy's scoring pass cannot start from the rollout's prefill (None: it does)
        self.prefix_reuse_blocker: str | None = None
        self.finish_init(freeze, gradient_checkpointing)
        if gradient_checkpointing:
            allow_read_only_cache(backbone.language_model())  # the scoring pass reads its prefix read-only

    # -- data --------------------------------------------------------------------------

    def collator(self, with_response: bool = True, evaluation: bool = False) -> Any:
        """Prompts only (the policy writes the responses), plus their texts and gold answers; the same
        for rollouts and for ``evaluation`` (test, predict)."""
        return self.backbone.collator(self.objectives, self.max_length, False)

    @property
    def objectives(self) -> dict[str, LatentAlignment]:
        """The latent objective under its name (its targets' key in batches), or nothing."""
        return {self.latent.name: self.latent} if self.latent is not None else {}

    def generation_settings(self) -> dict[str, Any]:
        """How this policy decodes outside training (validation, test, predict, ``thinkspace.load``): greedy,
        its ``max_new_tokens`` and ``decode_step`` and, with a latent objective, the slot's opening and
        closing rules the rollouts used (``force_latent_start``, ``latent_early_end``). Rollouts add the
        sampling (``temperature``, ``top_p``, ``top_k``), through the same :meth:`decode`."""
        settings: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "decode_step": self.decode_step}
        if self.latent is not None:  # the slot's rules: only a decode with a slot takes them
            settings.update(force_start=self.force_latent_start, early_end=self.latent_early_end)
            if self.latent_steps is not None:
                settings["latent_steps"] = self.latent_steps
        return settings

    # -- set-up: stage-1 weights, then the reference ------------------------------------

    def setup(self, stage: str) -> None:
        self.prepare_policy()

    def prepare_policy(self, reference: bool = True) -> None:
        """Load ``init_from`` (once) and, with ``reference`` and when needed, freeze a copy as the
        reference policy (once; decoding alone, as in inference, never needs it).

        Runs before a resumed checkpoint is restored, so the reference is the initial policy.
        """
        if not self._initialised:
            if self.init_from:
                rank_zero_info(load_stage1(self, self.init_from))
            # the rollout prefills in evaluation mode (rollout_mode: eval) or draws its own dropout (train),
            # the policy scores in training mode: the same numbers unless dropout is drawn in training
            self.prefix_reuse_blocker = train_mode_dropout(self.backbone)
            if self.prefix_reuse_blocker is not None:
                logger.info("GRPO: the policy's scoring pass runs the prompts again instead of reusing the "
                            "rollout's prefill (dropout in training mode: %s)", self.prefix_reuse_blocker)
            self._initialised = True
        if reference and not self._prepared:
            if self.beta > 0 and self.reference_kind == "copy":
                # outside the module tree: not in checkpoints, not in the optimizer
                self.__dict__["_reference"] = copy.deepcopy(self.backbone).eval().requires_grad_(False)
            self._prepared = True

    # -- rollouts ----------------------------------------------------------------------

    @torch.no_grad()
    def roll_out(self, batch: Batch) -> Rollout:
        """Sample G completions per prompt, score them, and compute what the loss needs."""
        self.prepare_policy()
        check_prompt_lengths(self.backbone, batch, self.max_new_tokens)
        training, in_train = self.backbone.training, self.rollout_mode == "train"
        self.backbone.train(in_train)  # eval: no dropout while sampling and scoring the samples
        # fresh log-probabilities from the decode loop serve as the sampling policy's when the loop
        # saw the scoring pass's inputs (not when it fed latents back and the scoring feeds pads)
        loop_logprobs = self.num_iterations > 1 and self._decode_feeds() == self._score_feeds()
        try:
            # transformers turns the KV cache off in checkpointed layers in training mode (as the
            # release's unwrap_model_for_generation, decoding runs without checkpointing)
            with checkpointing_paused(self.backbone.language_model()) if in_train else nullcontext():
                gen = self.decode(batch, do_sample=True, temperature=self.temperature, top_p=self.top_p,
                                  top_k=self.top_k, eos_token_id=None if self.stop_at_eos else [],
                                  group=self.group_size, generator=rollout_generators(self.seed, self.global_step, batch.ids, self.device),
                                  return_logprobs=loop_logprobs, keep_prefix=self.prefix_reuse_blocker is None)
            completions = completion_texts(self.backbone.tokenizer, gen)
            shared = self._shared_completion_pass(gen, loop_logprobs, in_train)
            rewards = self.compute_rewards(batch, gen, completions, shared)
            advantages = group_advantages(rewards.total.to(self.device), self.group_size, self.scale_rewards,
                                          self.advantage_eps)
            # the sampling policy's log-probabilities: those the decode loop computed (the same
            # weights, mode and inputs as a scoring pass; equal to 1e-6, tests/test_grpo_reuse.py)
            old = None
            if self.num_iterations > 1:
                old = gen.logprobs if loop_logprobs else self.logprobs(gen, states=shared)
            ref = self.reference_logprobs(gen) if self.beta > 0 else None
        finally:
            self.backbone.train(training)
        self._log_rewards(rewards, gen)
        counted = gen.completion_mask if self.loss_tokens == "completion" else gen.sampled & gen.completion_mask
        return Rollout(prompts=gen.prompts, generation=gen, mask=counted,
                       rewards=rewards, advantages=advantages, old_logp=old, ref_logp=ref, completions=completions)

    def compute_rewards(self, batch: Batch, gen: Any, completions: list[str],
                        states: tuple[Tensor, Tensor] | None = None) -> CompletionRewards:
        """Every reward of the ``B x G`` completions (see :mod:`thinkspace.rl.rewards` for the fields);
        ``states``: the completion pass with pad embeddings, when already run (``_shared_completion_pass``)."""
        latents = None
        if self.latent is not None and self.reward_latents == "after_start":
            latents = latents_after_start(self.backbone, gen, self.latent.slot, states)
        prompts, fields = reward_inputs(batch, gen, self.latent, latents)
        return self.rewards(prompts, completions, fields, fields["sample_id"])

    def _shared_completion_pass(self, gen: Any, loop_logprobs: bool, in_train: bool) -> tuple[Tensor, Tensor] | None:
        """The completion pass that both the latent-3D reward's positions (``reward_latents: after_start``)
        and the old policy's log-probabilities (``num_iterations`` > 1, not from the decode loop) run, run
        once, when their inputs are the same: pad embeddings in the slot (the scoring pass does not feed
        latents) and no dropout drawn (``rollout_mode: eval``; in ``train`` each pass draws its own, as the
        release's two forwards do). ``None`` otherwise: each caller runs its own."""
        shared = (self.latent is not None and self.reward_latents == "after_start" and self.num_iterations > 1
                  and not loop_logprobs and not self._score_feeds() and not in_train)
        return completion_pass(self.backbone, gen.prompts, gen, feedback=False) if shared else None

    # -- log-probabilities ---------------------------------------------------------------

    def _decode_feeds(self) -> bool:
        """Whether decoding feeds the latents back at the slot's pads (``decoding: feedback``)."""
        return self.latent is not None and self.latent.feeds_back

    def _score_feeds(self) -> bool:
        """Whether the scoring passes feed the decoded latents at the slot's pads (``logprob_inputs``)."""
        return self._decode_feeds() and self.logprob_inputs == "latents"

    def logprobs(self, gen: Any, prefix: Prefill | None = None, states: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``[N, T]`` log-probabilities of the rollout's tokens under the current policy (from
        ``prefix``, the rollout's own prefill with its graph, when given; from ``states``, the completion
        pass already run, when given)."""
        return sequence_logprobs(self.backbone, gen.prompts, gen, self.temperature, self._score_feeds(), prefix=prefix,
                                 chunk_tokens=self.logprob_chunk_tokens, states=states)

    @torch.no_grad()
    def reference_logprobs(self, gen: Any) -> Tensor:
        """``[N, T]`` log-probabilities under the reference policy (adapter disabled, or the frozen copy)."""
        if self.reference_kind == "adapter":
            scorer, adapters_off = self.backbone, self.backbone.model.disable_adapter()
        else:
            scorer, adapters_off = self.__dict__["_reference"], nullcontext()
            if next(scorer.parameters()).device != self.device:  # moved once (a walk over every module)
                scorer.to(self.device)
        with adapters_off:
            return sequence_logprobs(scorer, gen.prompts, gen, self.temperature, self._score_feeds(),
                                     chunk_tokens=self.logprob_chunk_tokens)

    # -- the step ------------------------------------------------------------------------

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        if self._rollout is None or self._uses >= self.num_iterations:
            self._rollout, self._uses = self.roll_out(batch), 0
        rollout = self._rollout
        self._uses += 1
        # the rollout's prefill, computed with gradients by these same weights: scored from once (its
        # graph serves one backward pass; later iterations of the rollout run the prompts again)
        prefix, rollout.generation.prefix = rollout.generation.prefix, None
        logp = self.logprobs(rollout.generation, prefix)
        old = rollout.old_logp if rollout.old_logp is not None else logp.detach()
        loss, stats = clipped_loss(logp, old, rollout.advantages, rollout.mask, self.epsilon, self.epsilon_high,
                                   self.beta, rollout.ref_logp, self.loss_normalisation)
        n = len(rollout.advantages)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log_dict({f"train/{k}": v for k, v in stats.items()}, batch_size=n, sync_dist=True)
        return loss

    def training_work(self, batch: Batch) -> tuple[int, int]:
        """``(completions, tokens)`` of the last step, for throughput: the ``B x G`` completions
        and the tokens scored with gradients (the prompts once, every completion's tokens)."""
        gen = self._rollout.generation
        prompt_tokens = int(self._rollout.prompts.inputs["attention_mask"].sum())
        return gen.tokens.shape[0], prompt_tokens + int(gen.completion_mask.sum())

    def _log_rewards(self, rewards: CompletionRewards, gen: Any) -> None:
        if self._trainer is None:
            return
        logs = reward_statistics(rewards, gen.group, self.device)
        lengths = gen.completion_mask.sum(1).float()
        logs["completion_length"] = lengths.mean()
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=len(lengths))

    # -- evaluation ----------------------------------------------------------------------

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Greedy completions (one per prompt), each reward's mean logged as ``val/rewards/<name>``."""
        gen = self.decode(batch)
        rewards = self.compute_rewards(batch, gen, completion_texts(self.backbone.tokenizer, gen))  # slot kept
        for name, row in zip(rewards.names, rewards.values):
            # a metric, not a conditional log: every rank takes part in the reduction
            metric = self.val_rewards[name]
            metric.update(row[~torch.isnan(row)].to(self.device))
            self.log(f"val/rewards/{name}", metric, on_step=False, on_epoch=True)

    def generate(self, batch: Batch) -> list[str]:
        """Greedy completions of the prompts (latent steps included), special tokens skipped."""
        return self.decode(batch).texts

    @torch.no_grad()
    def decode(self, batch: Batch, **overrides: Any) -> Any:
        """As :meth:`SpatialModule.decode`, once ``init_from`` is loaded (decoding alone, as in inference,
        never builds the reference policy)."""
        self.prepare_policy(reference=False)
        return super().decode(batch, **overrides)
