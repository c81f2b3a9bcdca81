"""A generated question, its options, and how it reads as a prompt.

Choice questions have up to four options lettered A-D; the answer is the letter.
Numeric questions have no options; the answer is a number. ``facts`` holds what an
independent checker needs to recompute the answer (object names, view index, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from thinkspace.synth.meshes import SHAPES
from thinkspace.synth.scene import COLOURS, Scene

LETTERS = "ABCD"
CHOICE_INSTRUCTION = "Answer with the option's letter."
NUMBER_INSTRUCTION = "Answer with a single number."


@dataclass
class Question:
    """One question about a scene.

    Attributes:
        id: unique id; for view sets it starts with the setting, as MindCube's ids do.
        task: question family, e.g. ``"around"`` or ``"object_counting"``.
        question: the question text without options.
        options: option texts (without letters); empty for numeric questions.
        answer: option letter (choice) or number (numeric).
        answer_type: ``"choice"`` or ``"number"``.
        facts: inputs of the answer (names, indices, directions) for independent checks.
        situation: ``{"position": [x, y], "yaw": rad, "text": str}`` in the room frame, if situated.
    """

    id: str
    task: str
    question: str
    options: list[str]
    answer: str | float
    answer_type: Literal["choice", "number"]
    facts: dict[str, Any] = field(default_factory=dict)
    situation: dict[str, Any] | None = None

    def option_lines(self) -> list[str]:
        """``["A. red cube", ...]``."""
        return [f"{LETTERS[i]}. {text}" for i, text in enumerate(self.options)]

    def prompt(self) -> str:
        """Situation (if any), question, options one per line, and the answer instruction."""
        parts = [self.situation["text"]] if self.situation else []
        parts.append(self.question)
        if self.answer_type == "choice":
            parts += self.option_lines() + [CHOICE_INSTRUCTION]
        else:
            parts.append(NUMBER_INSTRUCTION)
        return "\n".join(parts)

    def response(self) -> str:
        """The target text: the letter, or the number as text."""
        return self.answer if isinstance(self.answer, str) else format_number(self.answer)

    def answer_text(self) -> str:
        """The correct option's text (choice) or the number as text."""
        if self.answer_type == "choice":
            return self.options[LETTERS.index(str(self.answer))]
        return format_number(float(self.answer))


def format_number(x: float) -> str:
    """Integers without a decimal point, others with at most two decimals: ``3``, ``2.35``."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.2f}".rstrip("0").rstrip(".")


def make_choice(
    rng: np.random.Generator, correct: str, distractors: list[str], fillers: list[str], k: int = 4
) -> tuple[list[str], str]:
    """Shuffle ``correct`` with up to ``k - 1`` distractors (topped up from ``fillers``).

    Returns:
        ``(options, letter of the correct option)``.
    """
    pool = [d for d in distractors if d != correct]
    chosen = [pool[i] for i in rng.permutation(len(pool))[: k - 1]]
    extra = [f for f in fillers if f != correct and f not in chosen]
    chosen += extra[: k - 1 - len(chosen)]
    options = [correct] + chosen
    order = rng.permutation(len(options))
    options = [options[i] for i in order]
    return options, LETTERS[options.index(correct)]


def absent_names(scene: Scene, rng: np.random.Generator, k: int = 3) -> list[str]:
    """``k`` plausible object names not in ``scene``, preferring colours it does not use."""
    used = {o.colour for o in scene.objects}
    names = {o.name for o in scene.objects}
    free = [c for c in COLOURS if c not in used]
    candidates = [f"{c} {s}" for c in free for s in SHAPES] or [
        f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in names
    ]
    return [candidates[i] for i in rng.permutation(len(candidates))[:k]]
