"""``ColouredSquares``: a tiny in-memory spatial QA set for tests and smoke runs.

Each sample shows coloured squares on a grey canvas and asks which colour lies left
of the others (or right, for variety). Images are drawn with PIL from the sample's
seed, so the set needs no files, is identical on every machine, and a 1M-parameter
model learns it in a few hundred steps. With ``video=True`` the squares drift across
the frames and the question is about the first frame.
"""

from __future__ import annotations

import random
from typing import Literal

import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from thinkspace.data.schema import SpatialSample
from thinkspace.utils.seeds import mix_seed

# Its own palette (distinct, saturated at tiny sizes), not the synthetic world's.
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 210, 40),
    "purple": (150, 60, 190),
    "cyan": (40, 200, 210),
}
LETTERS = "ABCD"


class ColouredSquares(Dataset):
    """Which colour is on the left (or right)? Four options, one right by construction.

    Args:
        num_samples: samples in the set.
        image_size: ``(height, width)`` of each frame in pixels.
        num_views: frames per sample; a range ``(lo, hi)`` draws it per sample, so a
            batch mixes view counts. Every view shows the same pair of squares.
        video: samples are videos with timestamps (at ``fps``) instead of image sets.
        fps: frame rate of the video samples.
        seed: base seed; sample ``i`` depends on ``(seed, i)`` only.
        sides: which questions to ask.
        shuffle_options: shuffle the four options per sample (harder: the model must
            read the options); otherwise they are always the same four colours in
            the same order.
    """

    def __init__(
        self,
        num_samples: int = 512,
        image_size: tuple[int, int] = (56, 112),
        num_views: int | tuple[int, int] = 1,
        video: bool = False,
        fps: float = 2.0,
        seed: int = 0,
        sides: tuple[Literal["left", "right"], ...] = ("left",),
        shuffle_options: bool = True,
    ) -> None:
        if num_samples <= 0:
            raise ValueError(f"ColouredSquares.num_samples must be positive, got {num_samples}")
        self.num_samples = num_samples
        self.image_size = tuple(image_size)
        self.num_views = (num_views, num_views) if isinstance(num_views, int) else tuple(num_views)
        self.video = video
        self.fps = fps
        self.seed = seed
        self.sides = tuple(sides)
        self.shuffle_options = shuffle_options

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> SpatialSample:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"ColouredSquares index {index} out of range [0, {self.num_samples})")
        rng = random.Random(mix_seed(self.seed, index))
        palette = sorted(COLOURS) if self.shuffle_options else list(COLOURS)[:4]
        names = rng.sample(palette, 4)
        left, right = names[0], names[1]
        side = rng.choice(self.sides)
        num_frames = rng.randint(*self.num_views)
        frames = [self._draw(rng, left, right, shift=t * 3 if self.video else 0) for t in range(num_frames)]
        options = names[:] if self.shuffle_options else palette
        if self.shuffle_options:
            rng.shuffle(options)
        gold = LETTERS[options.index(left if side == "left" else right)]
        lines = "\n".join(f"{LETTERS[i]}. {name}" for i, name in enumerate(options))
        where = "in the first frame" if self.video else "in the image"
        prompt = f"Which colour is on the {side} {where}?\n{lines}\nAnswer with the option's letter."
        return SpatialSample(
            id=f"squares-{self.seed}-{index}",
            source="squares",
            task=side,
            frames=frames,
            prompt=prompt,
            response=gold,
            answer=gold,
            answer_type="choice",
            timestamps=torch.arange(num_frames, dtype=torch.float32) / self.fps if self.video else None,
            meta={"options": options, "left": left, "right": right},
        )

    def _draw(self, rng: random.Random, left: str, right: str, shift: int) -> Image.Image:
        h, w = self.image_size
        image = Image.new("RGB", (w, h), (128, 128, 128))
        draw = ImageDraw.Draw(image)
        side = max(4, min(h, w // 2) // 2)
        x_left = rng.randint(0, w // 2 - side) if w // 2 > side else 0
        x_right = rng.randint(w // 2, w - side)
        for name, x in ((left, x_left), (right, x_right)):
            y = rng.randint(0, h - side)
            x = min(w - side, x + shift)
            draw.rectangle([x, y, x + side - 1, y + side - 1], fill=COLOURS[name])
        return image
