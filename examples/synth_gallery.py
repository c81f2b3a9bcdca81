"""Draw the pictures in docs/synthetic.md: a contact sheet of generated views and a bird's-eye plot.

    python examples/synth_gallery.py [--out docs/images] [--seed 0] [--size 160]

Writes ``synth_contact_sheet.png`` (one row per view setting plus a strip of a video
walk, each with its question) and ``synth_birdseye.png`` (one room from above: walls,
objects, the walk's camera path with headings, and the cameras of an ``around`` set).
Needs open3d and matplotlib (``pip install thinkspace[3d]``).
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, Polygon, Rectangle  # noqa: E402

from thinkspace.synth.cameras import centre_of, heading_of  # noqa: E402
from thinkspace.synth.episodes import video_episode, view_episode  # noqa: E402
from thinkspace.synth.render import Renderer  # noqa: E402
from thinkspace.synth.scene import COLOURS, SURFACES, generate_scene  # noqa: E402
from thinkspace.synth.video_questions import VIDEO_TASKS  # noqa: E402
from thinkspace.synth.views import SETTINGS  # noqa: E402


def contact_sheet(seed: int, size: int, path: Path) -> None:
    rows = []
    for i, setting in enumerate(SETTINGS):
        rng = np.random.default_rng([seed, i])
        while True:
            scene = generate_scene(rng, f"sheet{i}", (4, 7))
            episode = view_episode(scene, Renderer(scene), setting, rng, 4, size)
            if episode is not None and len(episode.frames) == 4:
                break
        rows.append((setting, [f.rgb for f in episode.frames], episode.questions[0]))
    rng = np.random.default_rng([seed, 99])
    scene = generate_scene(rng, "sheet-video", (5, 7))
    walk = video_episode(scene, Renderer(scene), rng, 16, size, ("object_rel_direction_medium",))
    rows.append(("video (frames 0, 5, 10, 15)", [walk.frames[k].rgb for k in (0, 5, 10, 15)], walk.questions[0] if walk.questions else None))

    fig, axes = plt.subplots(len(rows), 4, figsize=(10, 3.0 * len(rows)))
    for r, (title, images, question) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"view {c + 1}" if "video" not in title else f"t = {[0, 5, 10, 15][c] / 4:.2f} s", fontsize=8)
        axes[r, 0].set_ylabel(title, fontsize=10, fontweight="bold")
        if question is not None:
            text = question.question.split(". ")[-1] if question.task in ("among", "rotation") else question.question
            caption = textwrap.fill(f"{text}  [{', '.join(question.option_lines())}]  answer: {question.answer}", 150)
            axes[r, 0].text(0, -0.12, caption, transform=axes[r, 0].transAxes, fontsize=7, va="top")
    fig.subplots_adjust(left=0.06, right=0.99, top=0.97, bottom=0.04, hspace=0.45, wspace=0.05)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _footprint(obj) -> np.ndarray:
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    hx, hy = obj.size[0] / 2, obj.size[1] / 2
    corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    return corners @ np.array([[c, s], [-s, c]]) + obj.xy


def birdseye(seed: int, size: int, path: Path) -> None:
    rng = np.random.default_rng([seed, 7])
    while True:
        scene = generate_scene(rng, "birdseye", (6, 8))
        renderer = Renderer(scene)
        around = view_episode(scene, renderer, "around", rng, 4, 32)
        if around is not None:
            break
    walk = video_episode(scene, renderer, rng, 32, 32, VIDEO_TASKS)
    fig, ax = plt.subplots(figsize=(7, 6))
    w, d = scene.half
    ax.add_patch(Rectangle((-w, -d), 2 * w, 2 * d, fill=True, color=np.array(SURFACES["floor"]) / 255, alpha=0.35))
    ax.add_patch(Rectangle((-w, -d), 2 * w, 2 * d, fill=False, lw=3, color="0.3"))
    for obj in scene.objects:
        colour = np.array(COLOURS[obj.colour]) / 255
        if obj.shape in ("cube", "pyramid"):
            ax.add_patch(Polygon(_footprint(obj), color=colour))
        else:
            ax.add_patch(Circle(obj.xy, obj.size[0] / 2, color=colour))
        ax.text(obj.xy[0], obj.xy[1] - obj.radius - 0.12, obj.name, ha="center", va="top", fontsize=8)
    path_xy = np.array([centre_of(c)[:2] for c in walk.cams])
    ax.plot(path_xy[:, 0], path_xy[:, 1], "-", color="k", lw=1.5, label="video walk (32 frames)")
    for k in range(0, len(walk.cams), 4):
        h = heading_of(walk.cams[k])
        ax.arrow(*path_xy[k], 0.45 * np.cos(h), 0.45 * np.sin(h), head_width=0.09, color="k")
    ax.plot(*path_xy[0], "o", color="k", ms=8)
    ax.annotate("start", path_xy[0], xytext=(6, -12), textcoords="offset points", fontsize=8)
    for k, cam in enumerate(around.cams):
        xy, h = centre_of(cam)[:2], heading_of(cam)
        ax.arrow(*xy, 0.5 * np.cos(h), 0.5 * np.sin(h), head_width=0.12, color="tab:red")
        ax.annotate(f"view {k + 1}", xy, xytext=(-8, 8), textcoords="offset points", color="tab:red", fontsize=8)
    ax.plot([], [], color="tab:red", label=f"'around' views of the {around.questions[0].facts['anchor']}")
    ax.set_aspect("equal")
    ax.set_xlim(-w - 0.3, w + 0.3), ax.set_ylim(-d - 0.3, d + 1.0)
    ax.set_xlabel("x (m), room frame"), ax.set_ylabel("y (m), room frame")
    ax.set_title(f"{scene.name}: {scene.size[0]:.1f} x {scene.size[1]:.1f} m room from above (+z towards you)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    contact_sheet(args.seed, args.size, args.out / "synth_contact_sheet.png")
    birdseye(args.seed, args.size, args.out / "synth_birdseye.png")
    print(f"wrote {args.out / 'synth_contact_sheet.png'} and {args.out / 'synth_birdseye.png'}")


if __name__ == "__main__":
    main()
