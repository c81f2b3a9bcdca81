"""``SpatialModel``: a restored model that answers questions about images or a video."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from thinkspace.answers import answer_text, choice, option_letters, parse_float
from thinkspace.data.schema import SpatialSample
from thinkspace.inference.inputs import Inputs, question_sample
from thinkspace.objectives.answer_only import AnswerOnly


@dataclass
class Answer:
    """What the model says and sees.

    Attributes:
        text: the completion, special tokens skipped (the reasoning and the answer).
        answer: the parsed answer: an option letter when the question lists options, else a
            number when the text holds one, else the text (inside ``<answer>`` when present).
        features: ``[S, P, C]`` the latent tokens projected to the teacher's tokens, per view.
        points: ``[M, 3]`` world points in metres decoded from them (``M`` may be 0 when no
            patch decodes validly); ``colours`` ``[M, 3]`` in [0, 1].
        position: predicted ``(x, y)`` of the agent in metres (situation head).
        heading: predicted direction the agent faces, radians about +z (0 along world +x).
            SQA3D's rotation differs (its agent faces -x at rotation 0, in a frame centred
            on the scene mesh): ``SQA3D.prediction_record`` converts.
        layout: ``[N, 2]`` predicted bird's-eye ``(x, y)`` of every visual token, metres.

    The world frame is the first view's: origin at its camera, +x along its heading, +z up.
    Fields the model has no head for are ``None``.
    """

    text: str
    answer: str | float | None
    features: Tensor | None = None
    points: Tensor | None = None
    colours: Tensor | None = None
    position: tuple[float, float] | None = None
    heading: float | None = None
    layout: Tensor | None = None


class PromptOnly(AnswerOnly):
    """An objective seen by the collator for a question without ground truth: its *training*
    prompt edits (a latent slot, ``<Pos><Ori>`` after the pseudo situation, so ``ask`` can draw
    where the model places the agent) and, as :class:`AnswerOnly`, nothing that needs geometry."""

    def prepare(self, sample: SpatialSample) -> SpatialSample:
        return self.objective.prepare(sample)


class SpatialModel:
    """A trained thinkspace model for inference (see :func:`thinkspace.load`).

    Attributes:
        module: the LightningModule (``SpatialVLM`` or ``SpatialGRPO``, both a
            :class:`~thinkspace.modules.base.SpatialModule`), in eval mode.
        source: where it was loaded from.
    """

    def __init__(self, module: Any, source: str = "") -> None:
        self.module = module
        self.source = source

    @property
    def backbone(self) -> Any:
        return self.module.backbone

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: str | torch.device) -> SpatialModel:
        self.module.to(device)
        return self

    @property
    def objectives(self) -> dict[str, Any]:
        """The module's objectives by name (GRPO: its latent objective)."""
        return dict(self.module.objectives)

    def objective(self, kind: str) -> Any | None:
        """The first objective of a kind: ``latent``, ``layout`` or ``situation``."""
        from thinkspace.objectives import LatentAlignment, LayoutReconstruction, Situation

        wanted = {"latent": LatentAlignment, "layout": LayoutReconstruction, "situation": Situation}[kind]
        return next((o for o in self.objectives.values() if isinstance(o, wanted)), None)

    def generation(self, **overrides: Any) -> dict[str, Any]:
        """Generation settings: the module's own (greedy), then ``overrides``."""
        settings = self.module.generation_settings()
        settings.setdefault("max_new_tokens", 64)
        settings.setdefault("do_sample", False)
        return {**settings, **overrides}

    @torch.no_grad()
    def ask(self, inputs: SpatialSample | Inputs, question: str | None = None, num_frames: int = 8,
            video: bool | None = None, **generation: Any) -> Answer:
        """Answer ``question`` about ``inputs``.

        Args:
            inputs: image files or PIL images (an unordered set), a video file, or a
                ``SpatialSample`` (its prompt is the question; with geometry, input cues work).
            question: the question, options included (``"...?\\nA. red\\nB. blue"``).
            num_frames: frames sampled from a video.
            video: ``True``: ``inputs`` is a video file whatever its extension (default: by extension).
            generation: ``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``, ``top_k`` (the
                options of :func:`~thinkspace.generation.decode.decode`; ``sampler="transformers"``:
                transformers' ``generate``).

        Raises:
            ValueError: a model with input cues asked about frames without geometry; no question.
        """
        if isinstance(inputs, SpatialSample):
            sample = inputs
            objectives = {**self.objectives, **dict(self.module.cues)}
        else:
            if not question:
                raise ValueError("ask: no question given")
            cues = list(self.module.cues)
            if cues:
                raise ValueError(f"ask: the model takes input cues {cues} built from the frames' geometry; ask with "
                                 "a SpatialSample that carries geometry")
            sample = question_sample(inputs, question, num_frames, video)
            objectives = {name: PromptOnly(o) for name, o in self.objectives.items()}
        batch = self.backbone.collator(objectives, None, with_response=False)([sample]).to(self.device)
        gen = self.module.decode(batch, **self.generation(**generation))  # as test and predict decode
        answer = Answer(text=gen.texts[0], answer=None)
        latent = self.objective("latent")
        if latent is not None:
            from thinkspace.points import decode_latents

            out, seen = gen.prompt_out, gen.prompts
            # an untrained projector may decode to no valid point: an empty cloud, not an error
            features, answer.points, answer.colours = decode_latents(latent, gen, sample, allow_empty=True)
            answer.features = features.tokens()
        else:
            hook = self.module.embeds_hook()
            out, seen = (self.backbone(batch, hook), batch) if self._has_heads() else (None, batch)
        answer.answer = parse_answer(answer.text, sample.prompt)
        situation, layout = self.objective("situation"), self.objective("layout")
        if situation is not None:
            pred = situation.predict(out, seen)
            answer.position = tuple(float(v) for v in pred["xy"][0].cpu())
            answer.heading = float(pred["yaw"][0])
        if layout is not None:
            answer.layout = layout.predict(out)[0].cpu()
        return answer

    def can_draw(self) -> bool:
        """Whether :func:`~thinkspace.inference.bev.bev_picture` has something to draw: latents or heads."""
        return self.objective("latent") is not None or self._has_heads()

    def _has_heads(self) -> bool:
        return self.objective("situation") is not None or self.objective("layout") is not None


def parse_answer(text: str, question: str) -> str | float | None:
    """The answer in ``text`` by thinkspace's rule (:mod:`thinkspace.answers`): the option letter
    (:func:`~thinkspace.answers.choice`, as ``val/accuracy`` reads it) when ``question`` lists options, else
    :func:`~thinkspace.answers.answer_text` as a number when all of it parses as one, else that text. Unlike
    the GRPO reward, which knows a question's kind, a free answer is a number only when it is nothing else
    (``"3 o'clock"`` stays text)."""
    if option_letters(question):
        return choice(text)
    inner = answer_text(text)
    value = parse_float(inner)
    return value if value is not None else inner
