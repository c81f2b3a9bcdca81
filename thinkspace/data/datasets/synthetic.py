"""``SyntheticSpatial``: procedurally generated rooms, rendered and questioned on the fly.

No files: sample ``i`` is a fresh scene drawn from ``(seed, split, i)`` alone, rendered
with open3d on the CPU (see :mod:`thinkspace.synth`), so any worker, any epoch and any
machine produce the same sample. Splits use disjoint seed streams. A sample's id names its
family: ``synthetic-<task>-<split>-<seed>-<index>`` (:mod:`~thinkspace.data.datasets.synthetic_id`).

World frame (as everywhere in thinkspace): metres, +z up, origin at the first frame's
camera centre, and +x along that camera's heading (its viewing direction projected on
the floor), so the first camera has yaw 0. ``geometry.cam_from_world`` ``[S, 4, 4]``,
``geometry.intrinsics`` ``[S, 3, 3]`` and ``geometry.depth`` ``[S, H, W]`` (metres,
0 = no hit) are exact; situations are in the same frame. ``meta["world_from_room"]``
relates it to the scene's room frame.

Tasks (``settings``):

* image sets (``kind="views"``): ``leftmost`` (which object is furthest left in view k;
  learnable by tiny models from scratch, best with ``num_objects=(3, 4)``),
  ``around``, ``among``, ``rotation`` (MindCube's settings); two families that need 3D,
  with fixed options and balanced answers: ``perspective`` (cross-view: left or right
  in the frame of a view that does not show both objects) and ``situated`` (left, right,
  front or back of someone standing at one object facing another; carries a situation); and
  the study's positive control ``camera_turn`` (did the camera turn left or right between
  views 1 and 2: in the poses, hardly in the pixels; needs 2 views or more);
* videos (``kind="video"``): VSI-Bench's ``object_counting``, ``object_abs_distance``,
  ``object_size_estimation``, ``room_size_estimation``, ``object_rel_distance``,
  ``object_rel_direction_medium``, and the SQA3D-style ``situation``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal, get_args

import numpy as np
from torch.utils.data import Dataset

from thinkspace.data.datasets.synthetic_id import synthetic_id
from thinkspace.data.schema import SpatialSample
from thinkspace.synth.video_questions import VIDEO_TASKS
from thinkspace.synth.views import Viewpoint
from thinkspace.utils.choices import check_choice

#: the tasks of each ``kind``, in the order a default ``settings`` draws from: image-set families,
#: and a walk's questions (:mod:`thinkspace.synth.video_questions`) plus its situation
VIEW_TASKS = ("leftmost", "around", "among", "rotation", "perspective", "situated")
#: image-set tasks asked for by name only (a default ``settings`` leaves them out): the positive control
CONTROL_TASKS = ("camera_turn",)
WALK_TASKS = (*VIDEO_TASKS, "situation")
Kind = Literal["views", "video"]
Split = Literal["train", "val", "test"]
SPLITS = get_args(Split)
#: colours of ``shuffle_options=False`` scenes, in option order (A is always the red object).
FIXED_PALETTE = ("red", "green", "blue", "yellow")
#: tasks that take ``shuffle_options=False``.
FIXED_TASKS = {"leftmost", "perspective", "situated", "camera_turn"}


class SyntheticSpatial(Dataset):
    """Spatial questions about synthetic rooms, as image sets or video walks.

    Args:
        num_samples: samples in the set.
        kind: ``"views"`` (unordered image sets) or ``"video"`` (walks with timestamps).
        settings: tasks to draw from, uniformly (see the module docstring); ``None``
            means all tasks of ``kind`` but the positive control ``camera_turn``.
        image_size: width = height of every frame (pixels).
        num_views: views per image set, in ``[1, 4]``; a pair ``(lo, hi)`` draws it per
            sample. Ignored for videos.
        num_frames: frames per video.
        fps: video frame rate (frames per second), which sets the timestamps.
        num_objects: inclusive range of objects per room, within ``[1, 8]``.
        seed: base seed; sample ``i`` depends on ``(seed, split, i)`` only.
        split: which seed stream; splits never share scenes.
        cache_size: samples kept in memory (least recently used first out); 0 = none.
        shuffle_options: shuffle the options per sample (the model must read them).
            ``False`` (at most 4 objects; ``leftmost``, ``perspective``, ``situated``,
            ``camera_turn``) draws rooms from four colours; ``leftmost`` then always lists one
            object per colour in the order red, green, blue, yellow, so a letter always means a
            colour: the easiest setting. ``perspective``, ``situated`` and ``camera_turn`` list
            their fixed direction options either way.
        viewpoint: camera placement of image sets: ``"standard"`` (eye height 1.2-1.6 m)
            or ``"held_out"`` (1.9-2.2 m, spot views tilted 10 degrees further down),
            for evaluation on viewpoints never trained on. Image sets only.
    """

    def __init__(
        self,
        num_samples: int = 1024,
        kind: Kind = "views",
        settings: list[str] | None = None,
        image_size: int = 112,
        num_views: int | tuple[int, int] = (2, 4),
        num_frames: int = 8,
        fps: float = 2.0,
        num_objects: tuple[int, int] = (3, 6),
        seed: int = 0,
        split: Split = "train",
        cache_size: int = 0,
        shuffle_options: bool = True,
        viewpoint: Viewpoint = "standard",
    ) -> None:
        if num_samples <= 0:
            raise ValueError(f"SyntheticSpatial.num_samples must be positive, got {num_samples}")
        check_choice("SyntheticSpatial.kind", kind, Kind)
        known = (*VIEW_TASKS, *CONTROL_TASKS) if kind == "views" else WALK_TASKS
        settings = list(VIEW_TASKS if kind == "views" else WALK_TASKS) if settings is None else list(settings)
        bad = [s for s in settings if s not in known]
        if bad or not settings:
            raise ValueError(
                f"SyntheticSpatial.settings: {bad or settings} not valid for kind={kind!r}; "
                f"expected a non-empty subset of {list(known)}"
            )
        views = (num_views, num_views) if isinstance(num_views, int) else tuple(num_views)
        if not 1 <= views[0] <= views[1] <= 4:
            raise ValueError(f"SyntheticSpatial.num_views must lie in [1, 4] with lo <= hi, got {num_views}")
        if image_size < 16:
            raise ValueError(f"SyntheticSpatial.image_size must be at least 16 pixels, got {image_size}")
        if num_frames < 2:
            raise ValueError(f"SyntheticSpatial.num_frames must be at least 2, got {num_frames}")
        check_choice("SyntheticSpatial.split", split, Split)
        lo, hi = num_objects
        if not 1 <= lo <= hi <= 8:
            raise ValueError(f"SyntheticSpatial.num_objects must satisfy 1 <= lo <= hi <= 8, got {num_objects}")
        if not shuffle_options and (not set(settings) <= FIXED_TASKS or hi > len(FIXED_PALETTE)):
            raise ValueError(
                f"SyntheticSpatial.shuffle_options=False needs settings within {sorted(FIXED_TASKS)} and num_objects "
                "at most "
                f"{len(FIXED_PALETTE)}; got settings={settings}, num_objects={num_objects}"
            )
        check_choice("SyntheticSpatial.viewpoint", viewpoint, Viewpoint)
        if viewpoint != "standard" and kind != "views":
            raise ValueError(f"SyntheticSpatial.viewpoint {viewpoint!r} applies to image sets (kind='views'); "
                             "videos follow walks at eye height")
        self.viewpoint = viewpoint
        self.shuffle_options = shuffle_options
        self.num_samples = num_samples
        self.kind = kind
        self.settings = tuple(settings)
        self.image_size = image_size
        self.num_views = views
        self.num_frames = num_frames
        self.fps = fps
        self.num_objects = (lo, hi)
        self.seed = seed
        self.split = split
        self.cache_size = cache_size
        self._cache: OrderedDict[int, SpatialSample] = OrderedDict()

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> SpatialSample:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"SyntheticSpatial index {index} out of range [0, {self.num_samples})")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        sample = self._make(index)
        if self.cache_size > 0:
            self._cache[index] = sample
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return sample

    def task(self, index: int) -> str:
        """The task (question family) of sample ``index``, without rendering it."""
        return self._draw_task(index)[0]

    def _draw_task(self, index: int) -> tuple[str, np.random.Generator]:
        """Sample ``index``'s task, drawn first from its own generator (returned, to draw the rest)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, SPLITS.index(self.split), index]))
        return self.settings[int(rng.integers(len(self.settings)))], rng  # drawn once: tasks stay balanced

    def _make(self, index: int) -> SpatialSample:
        from thinkspace.data.datasets.synthetic_sample import to_sample
        from thinkspace.synth.episodes import video_episode, view_episode
        from thinkspace.synth.render import Renderer
        from thinkspace.synth.scene import generate_scene
        from thinkspace.synth.views import BALANCED

        task, rng = self._draw_task(index)
        want = None
        if task in BALANCED:  # the answer too, before any scene: letters stay balanced
            answers = BALANCED[task][1]
            want = answers[int(rng.integers(len(answers)))]
        attempts = 200 if want is not None else 50  # a wanted answer rejects more rooms (most unrendered)
        for attempt in range(attempts):
            palette = None if self.shuffle_options else FIXED_PALETTE
            name = f"{self.split}{index:06d}"
            scene = generate_scene(rng, name, self.num_objects, [self.seed, index, attempt], palette=palette)
            renderer = Renderer(scene, threads=1)
            if self.kind == "views":
                n = int(rng.integers(self.num_views[0], self.num_views[1] + 1))
                episode = view_episode(scene, renderer, task, rng, n, self.image_size, viewpoint=self.viewpoint,
                                       tries=8, want=want)
            else:
                episode = video_episode(scene, renderer, rng, self.num_frames, self.image_size, (task,), self.fps)
            if episode is not None and episode.questions:
                question = episode.questions[0]
                if not self.shuffle_options and task == "leftmost":
                    _fixed_options(question, scene, rng)
                question.id = synthetic_id(task, self.split, self.seed, index)
                return to_sample(episode, question)
        raise RuntimeError(f"SyntheticSpatial: no answerable {task!r} question for index {index} in {attempts} scenes")


def _fixed_options(question, scene, rng: np.random.Generator) -> None:
    """One option per colour of :data:`FIXED_PALETTE`, in that order (absent colours get a made-up shape)."""
    from thinkspace.synth.meshes import SHAPES

    by_colour = {o.colour: o.name for o in scene.objects}
    options = [by_colour.get(c, f"{c} {SHAPES[int(rng.integers(len(SHAPES)))]}") for c in FIXED_PALETTE]
    question.options = options
    question.answer = "ABCD"[options.index(question.facts["correct"])]
