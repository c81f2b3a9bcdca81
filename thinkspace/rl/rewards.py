"""Rewards are plain functions: ``f(prompts, completions, **sample_fields) -> list[float | None]``.

``prompts`` and ``completions`` are lists of ``N = B x G`` strings (each prompt repeated
for its G completions); completions keep the latent slot's tokens and end before the
stop token. Sample fields come as keyword lists of the same length:

* ``answer``, ``answer_type`` (``choice``, ``number``, ``text``), ``task``, ``sample_id``, ``meta``;
* with a latent objective (3D latents): ``projected`` (``[S, P, C]`` projected latents of
  the completion, ``None`` when it produced no latents) and ``teacher`` (``[S, P, C]``
  teacher tokens of the sample's views, ``None`` when it has none).

A function returns one value per completion: a float, or ``None`` where the reward does
not apply (a text answer for a choice-only reward, a sample without teacher features).
Accept ``**fields`` to ignore fields you do not read. Add your own in YAML by dotted
path (``model.rewards.mine: my_package.rewards.brevity``); :class:`RewardSet` combines
them with weights and checks what they return.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from thinkspace.answers import choice, gold_choice, mindcube_choice, number, same_text, thinker_stage2_choice
from thinkspace.utils.choices import check_choice
from thinkspace.slot_tokens import END, PAD, START

RewardFunction = Callable[..., Sequence[float | None]]

_SLOT = re.escape(START) + f"(?:{re.escape(PAD)})*" + re.escape(END)
_FORMAT = re.compile(rf"\s*{_SLOT}\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", re.DOTALL)
_FORMAT_NO_SLOT = re.compile(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", re.DOTALL)
# searched, not matched: anything may come before the start token, between it and <think>, and after </answer>
_LENIENT = re.compile(re.escape(START) + r".*?<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_LENIENT_NO_SLOT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def format_reward(prompts: list[str], completions: list[str], latent: bool = True, **fields: Any) -> list[float]:
    """1.0 when the completion is the latent slot (start, pads, end), then ``<think>...</think>``,
    then ``<answer>...</answer>`` and nothing else; 0.0 otherwise. ``latent=False`` asks for
    the think and answer blocks only."""
    pattern = _FORMAT if latent else _FORMAT_NO_SLOT
    return [1.0 if pattern.fullmatch(c) else 0.0 for c in completions]


def lenient_format_reward(prompts: list[str], completions: list[str], latent: bool = True,
                          **fields: Any) -> list[float]:
    """1.0 when the completion holds, in this order, the start token, ``<think>...</think>``, only
    whitespace, then ``<answer>...</answer>``, wherever they are (a search, not a full match: text
    before, between the start and ``<think>`` and after the answer is allowed; pads and the end
    token are not required). 3DThinker's released stage-2 format rule
    (``open_r1/vlm_modules/qwen_module.py``, ``format_reward``). ``latent=False``: without the start."""
    pattern = _LENIENT if latent else _LENIENT_NO_SLOT
    return [1.0 if pattern.search(c) else 0.0 for c in completions]


def first_answer_reward(prompts: list[str], completions: list[str], answer: list[Any],
                        **fields: Any) -> list[float | None]:
    """1.0 when the option letter read (by MindCube's extractor) from the *first* ``<answer>`` block
    equals the gold answer's letter; 0.0 when it differs, when no letter is read, or when the
    completion has no ``<answer>`` block (no fallback to untagged text). Letters are upper case
    A-E only (``"c"`` reads as nothing). ``None`` without a gold answer. 3DThinker's released
    stage-2 answer rule (``qwen_module.py``, ``response_text_reward``), for choice questions."""
    out: list[float | None] = []
    for completion, gold in zip(completions, answer):
        if gold is None:
            out.append(None)
            continue
        letter = thinker_stage2_choice(completion)
        out.append(float(letter is not None and letter == mindcube_choice(str(gold).strip())))
    return out


def answer_reward(prompts: list[str], completions: list[str], answer: list[Any], answer_type: list[str],
                  rel_tol: float = 0.1, **fields: Any) -> list[float | None]:
    """1.0 for a right answer, 0.0 for a wrong one, ``None`` for a sample without a gold answer; the
    completion is read by thinkspace's rule (:mod:`thinkspace.answers`, the same as ``val/accuracy``).

    * ``choice``: :func:`~thinkspace.answers.choice` equals the gold letter;
    * ``number``: :func:`~thinkspace.answers.number` is within ``rel_tol`` (relative) of the gold number;
    * ``text``: :func:`~thinkspace.answers.same_text` (equal after SQA3D's answer normalisation).
    """
    out: list[float | None] = []
    for completion, gold, kind in zip(completions, answer, answer_type):
        if gold is None:
            out.append(None)
            continue
        if kind == "choice":
            out.append(float(choice(completion) == gold_choice(gold)))
        elif kind == "number":
            value, target = number(completion), float(gold)
            out.append(float(value is not None and abs(value - target) <= rel_tol * abs(target)))
        elif kind == "text":
            out.append(float(same_text(completion, gold)))
        else:
            raise ValueError(f"answer_reward: answer_type {kind!r} is not 'choice', 'number' or 'text'")
    return out


def released_cosine(pred: Tensor, target: Tensor) -> Tensor:
    """3DThinker's released stage-2 cosine of ``[S, P, C]`` tensors (``qwen_module.py``, ``sim_reward``):
    channels L2-normalised, leading size-1 axes squeezed, then ``F.cosine_similarity`` along its
    default ``dim=1`` and the mean. With one view that axis is the channels (the mean over tokens
    of per-token cosines); with several it is the *tokens* (per view and channel, the cosine of
    the two ``P``-long columns, averaged)."""
    pred = F.normalize(pred.float(), dim=-1).squeeze(0)
    target = F.normalize(target.float(), dim=-1).squeeze(0)
    return F.cosine_similarity(pred, target).mean()


def latent3d_reward(prompts: list[str], completions: list[str], projected: list[Tensor | None] | None = None,
                    teacher: list[Tensor | None] | None = None, cosine: str = "channels",
                    **fields: Any) -> list[float | None]:
    """``(cos + 1) / 2`` between the projected latents and the teacher tokens ``[S, P, C]``: in
    ``[0, 1]``. ``cosine: channels``: the cosine along channels, averaged over tokens (and views);
    ``cosine: released``: :func:`released_cosine` (along the token axis when there are several
    views). 0.0 for a completion without latents, ``None`` for a sample without teacher features."""
    check_choice("latent3d_reward (model.reward_kwargs.latent3d.cosine): cosine", cosine, ("channels", "released"))
    if projected is None or teacher is None:
        raise ValueError("latent3d_reward needs the fields 'projected' and 'teacher': give the GRPO module a "
                         "latent objective (model.latent: a LatentAlignment with the stage-1 projector)")
    out: list[float | None] = []
    for pred, target in zip(projected, teacher):
        if target is None:
            out.append(None)
        elif pred is None:
            out.append(0.0)
        else:
            if pred.shape != target.shape:
                raise ValueError(f"latent3d_reward: projected latents {tuple(pred.shape)} vs teacher tokens "
                                 f"{tuple(target.shape)}")
            target = target.to(pred.device)
            if cosine == "released":
                cos = released_cosine(pred, target)
            else:
                cos = F.cosine_similarity(pred.float(), target.float(), dim=-1).mean()
            out.append(float((cos + 1) / 2))
    return out


def resolve(name: str, spec: str | RewardFunction) -> RewardFunction:
    """A reward function from a dotted path (``package.module.function``) or a callable."""
    if callable(spec):
        return spec
    module, _, attr = str(spec).rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), attr) if module else None
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model.rewards.{name}: cannot import {spec!r} ({err}); expected a dotted path "
                         "such as thinkspace.rl.rewards.answer_reward") from err
    if not callable(fn):
        raise ValueError(f"model.rewards.{name}: {spec!r} is not a callable; expected a dotted path to a function")
    return fn


@dataclass
class CompletionRewards:
    """Rewards of ``N`` completions.

    Attributes:
        values: ``[R, N]`` each reward's values, NaN where it returned ``None``.
        total: ``[N]`` weighted sum over rewards (a ``None`` contributes nothing).
        names: the R reward names in order.
    """

    values: Tensor
    total: Tensor
    names: list[str]


class RewardSet:
    """Named reward functions combined with weights.

    Args:
        functions: name -> dotted path or callable; ``None`` (or ``"null"``) drops that reward.
        weights: name -> weight (default 1.0 each); a name that is not a reward is an error
            (a dropped reward's weight is ignored).
        kwargs: name -> extra keyword arguments of that function (e.g. ``{answer: {rel_tol: 0.05}}``).
    """

    def __init__(self, functions: dict[str, str | RewardFunction], weights: dict[str, float] | None = None,
                 kwargs: dict[str, dict[str, Any]] | None = None) -> None:
        named = dict(functions or {})
        # null drops a reward (jsonargparse hands a nested null override over as the string "None")
        functions = {k: v for k, v in named.items() if v is not None and str(v).lower() not in ("none", "null")}
        if not functions:
            raise ValueError("model.rewards: no reward function; give at least one (name: dotted.path)")
        bad = [k for k in functions if not k or "." in k or "/" in k]
        if bad:
            raise ValueError(f"model.rewards: names {bad} may not be empty or hold '.' or '/' (they name log keys)")
        for key, mapping in (("reward_weights", weights), ("reward_kwargs", kwargs)):
            unknown = sorted(set(mapping or {}) - set(named))  # a dropped reward's weight is ignored
            if unknown:
                raise ValueError(f"model.{key}: {unknown} name no reward; rewards are {sorted(functions)}")
        self.names = list(functions)
        self.functions = {k: resolve(k, v) for k, v in functions.items()}
        self.weights = {k: float((weights or {}).get(k, 1.0)) for k in self.names}
        self.kwargs = {k: dict((kwargs or {}).get(k) or {}) for k in self.names}

    def __call__(self, prompts: list[str], completions: list[str], fields: dict[str, list[Any]],
                 sample_ids: list[str]) -> CompletionRewards:
        """Score ``N`` completions; ``sample_ids`` name them in errors.

        Raises:
            ValueError: naming the reward, when it returns other than N values, or a value
                that is neither a finite number nor ``None`` (naming the sample too).
        """
        n = len(completions)
        rows = []
        for name in self.names:
            got = self.functions[name](prompts, completions, **fields, **self.kwargs[name])
            got = list(got) if got is not None else None
            if got is None or len(got) != n:
                size = "None" if got is None else f"{len(got)} values"
                raise ValueError(f"reward {name!r} returned {size} for {n} completions; expected one float or "
                                 "None per completion")
            row = []
            for i, value in enumerate(got):
                if value is None:
                    row.append(math.nan)
                    continue
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"reward {name!r} returned {value!r} for sample {sample_ids[i]!r} "
                                     f"(completion {i}); expected a float or None") from None
                if not math.isfinite(number):
                    raise ValueError(f"reward {name!r} returned {number} for sample {sample_ids[i]!r} "
                                     f"(completion {i}); rewards must be finite (return None to skip a sample)")
                row.append(number)
            rows.append(row)
        values = torch.tensor(rows, dtype=torch.float32)
        weights = torch.tensor([self.weights[k] for k in self.names])[:, None]
        total = torch.nan_to_num(values * weights, nan=0.0).sum(0)
        return CompletionRewards(values=values, total=total, names=list(self.names))
