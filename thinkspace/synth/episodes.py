"""Episodes: one rendered image set or video of a scene with the questions asked about it.

An :class:`Episode` is what both the on-disk writer and the on-the-fly dataset build;
:func:`thinkspace.data.datasets.synthetic_sample.to_sample` turns one of its questions into a
``SpatialSample`` (the synthetic world knows nothing of the data schema).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from thinkspace.synth.question import Question
from thinkspace.synth.render import Frame, Renderer
from thinkspace.synth.rig import make_rig
from thinkspace.synth.scene import Scene
from thinkspace.synth.situations import make_situation
from thinkspace.synth.video_questions import ask_video
from thinkspace.synth.views import Viewpoint, make_view_set, visibility
from thinkspace.synth.walk import make_walk


@dataclass
class Episode:
    """Rendered frames of one scene and the questions asked about them.

    Attributes:
        scene: the scene (room frame).
        setting: ``"around"``, ``"among"``, ``"rotation"``, ``"leftmost"``, ``"video"`` or ``"ego"`` (a rig).
        cams: ``[S, 4, 4]`` camera-from-room transforms (OpenCV axes).
        K: ``[3, 3]`` intrinsics (pixels), shared by all frames.
        frames: the S rendered frames.
        timestamps: ``[S]`` seconds for a video, ``None`` for an image set.
        questions: questions about this episode.
        viewpoint: ``"standard"`` or ``"held_out"`` camera heights.
        duration: seconds, a video's whole length (frames / fps); ``None`` for an image set.
    """

    scene: Scene
    setting: str
    cams: np.ndarray
    K: np.ndarray
    frames: list[Frame]
    timestamps: np.ndarray | None = None
    questions: list[Question] = field(default_factory=list)
    viewpoint: str = "standard"
    duration: float | None = None

    @property
    def is_video(self) -> bool:
        return self.timestamps is not None


# The arguments of make_view_set, spelled out so configs, callers and type checkers see them.
def view_episode(
    scene: Scene,
    renderer: Renderer,
    setting: str,
    rng: np.random.Generator,
    num_views: int,
    size: int,
    num_questions: int = 1,
    viewpoint: Viewpoint = "standard",
    tries: int = 30,
    want: str | None = None,
) -> Episode | None:
    """An image set of ``setting`` with up to ``num_questions`` questions (``None`` if none fits);
    ``want``: the answer of a balanced family (see :func:`~thinkspace.synth.views.make_view_set`)."""
    made = make_view_set(scene, renderer, setting, rng, num_views, size, num_questions, viewpoint, tries, want)
    if made is None:
        return None
    view, questions = made
    return Episode(scene, setting, view.cams, view.K, view.frames, None, questions, viewpoint)


def video_episode(
    scene: Scene,
    renderer: Renderer,
    rng: np.random.Generator,
    num_frames: int,
    size: int,
    tasks: tuple[str, ...],
    fps: float = 4.0,
) -> Episode:
    """A walk through ``scene`` and one question per task in ``tasks`` that fits.

    ``tasks`` holds VSI-Bench question types and/or ``"situation"`` (SQA3D-style).
    """
    walk = make_walk(scene, rng, num_frames, size, fps)
    frames = renderer.render_many(walk.cams, walk.K, size, size)
    seen = [name for name, views in visibility(frames, scene).items() if views]
    questions = []
    for task in tasks:
        q = make_situation(scene, seen, rng) if task == "situation" else ask_video(scene, seen, task, rng)
        if q is not None:
            questions.append(q)
    return Episode(scene, "video", walk.cams, walk.K, frames, walk.timestamps, questions,
                   duration=num_frames / fps)



def rig_episode(scene: Scene, renderer: Renderer, rng: np.random.Generator, size: int) -> Episode | None:
    """Six views of an ego camera rig and Ego3D-Bench-style questions (:mod:`thinkspace.synth.rig`);
    ``None`` if no spot in the room gives a question."""
    made = make_rig(scene, renderer, rng, size)
    if made is None:
        return None
    cams, K, frames, questions = made
    return Episode(scene, "ego", cams, K, frames, None, questions)
