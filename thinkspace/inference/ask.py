"""``thinkspace ask --model DIR --images a.jpg b.jpg | --video walk.mp4 --question "..."``.

Prints the model's reasoning and parsed answer; ``--ply`` writes the point cloud decoded
from its 3D latents, ``--bev`` a bird's-eye picture (points, layout, predicted position and
heading), when the model has the heads for them.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkspace ask", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="export directory (thinkspace export), model directory or .ckpt")
    parser.add_argument("--config", default=None, help="training config of a .ckpt (default: its run's config.yaml)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", help="one or more images, an unordered set of views")
    source.add_argument("--video", help="a video file")
    parser.add_argument("--question", required=True, help="the question, options included")
    parser.add_argument("--num-frames", type=int, default=8, help="frames sampled from --video (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="decoding budget (default: the model's)")
    parser.add_argument("--ply", default=None, help="write the point cloud decoded from the latents here")
    parser.add_argument("--bev", default=None, help="write a bird's-eye PNG here")
    args = parser.parse_args(argv)

    from thinkspace.inference.load import load

    model = load(args.model, args.config)
    generation = {} if args.max_new_tokens is None else {"max_new_tokens": args.max_new_tokens}
    answer = model.ask(args.video or args.images, args.question, num_frames=args.num_frames, **generation)
    print(f"reasoning: {answer.text}")
    print(f"answer: {answer.answer}")
    if answer.position is not None:
        print(f"position: ({answer.position[0]:.2f}, {answer.position[1]:.2f}) m, heading {answer.heading:.2f} rad")
    if args.ply:
        if answer.points is None:
            raise SystemExit(f"{args.model}: the model has no 3D latents; --ply needs a latent-alignment model")
        from thinkspace.viz import write_ply

        print(f"{write_ply(args.ply, answer.points, answer.colours)}: {answer.points.shape[0]} points")
    if args.bev:
        from thinkspace.inference.bev import bev_picture

        print(f"{bev_picture(answer, args.bev)}: bird's-eye picture")
    return 0
