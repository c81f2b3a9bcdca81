"""A bird's-eye picture of what a model answered: imagined points, layout, position and heading."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thinkspace.inference.model import Answer


def bev_picture(answer: Answer, out: str | Path, title: str | None = None, max_points: int = 4000) -> Path:
    """Draw ``answer`` from above (world frame, metres) into the PNG ``out``.

    Shows the points decoded from the latents in their colours, the layout head's position of
    every visual token, the first view's camera (the origin, facing +x) and the predicted
    position and heading of the agent, whichever the model has.

    Raises:
        ValueError: the answer has nothing to draw (no latents, layout or situation head).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if answer.points is None and answer.layout is None and answer.position is None:
        raise ValueError("bev: the model has no latent, layout or situation head; there is nothing to draw")
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    if answer.points is not None and len(answer.points):
        keep = np.linspace(0, len(answer.points) - 1, min(max_points, len(answer.points))).astype(int)
        points, colours = answer.points[keep].numpy(), answer.colours[keep].clamp(0, 1).numpy()
        ax.scatter(points[:, 0], points[:, 1], c=colours, s=6, edgecolors="none", label="points from the latents")
    if answer.layout is not None:
        layout = answer.layout.numpy()
        ax.scatter(layout[:, 0], layout[:, 1], s=8, c="0.55", marker="s", label="visual tokens (layout head)")
    ax.scatter([0], [0], marker="^", s=70, c="black", label="view 1 camera (origin, facing +x)")
    ax.annotate("", xy=(0.6, 0), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "black"})
    if answer.position is not None:
        x, y = answer.position
        heading = answer.heading or 0.0
        ax.scatter([x], [y], s=70, c="crimson", label="predicted position and heading")
        ax.annotate("", xy=(x + 0.6 * np.cos(heading), y + 0.6 * np.sin(heading)), xytext=(x, y),
                    arrowprops={"arrowstyle": "->", "color": "crimson", "lw": 2})
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    ax.set_title(title or f"answer: {answer.answer}", fontsize=9)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
