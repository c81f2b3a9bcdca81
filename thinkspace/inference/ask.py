"""``thinkspace ask --model DIR --images a.jpg b.jpg | --video walk.mp4 --question "..."``.

Prints the model's reasoning and parsed answer; ``--ply`` writes the point cloud decoded
from its 3D latents, ``--bev`` a bird's-eye picture (points, layout, predicted position and
heading), when the model has the heads for them.
"""

from __future__ import annotations

from thinkspace.errors import ToolParser


def main(argv: list[str] | None = None) -> int:
    parser = ToolParser(prog="thinkspace ask", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="export directory (thinkspace export), model directory or .ckpt")
    parser.add_argument("--config", default=None, action="append",
                        help="training config of a .ckpt, repeat for stacked configs (default: its run's config.yaml)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", help="one or more images, an unordered set of views")
    source.add_argument("--video", help="a video file")
    parser.add_argument("--question", required=True, help="the question, options included")
    parser.add_argument("--num-frames", type=int, default=8, help="frames sampled from --video (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="decoding budget (default: the model's)")
    parser.add_argument("--ply", default=None, help="write the point cloud decoded from the latents here")
    parser.add_argument("--bev", default=None, help="write a bird's-eye PNG here")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:1, mps, ... (default: cuda if available, else cpu)")
    args = parser.parse_args(argv)

    from thinkspace.inference.device import inference_device
    from thinkspace.inference.inputs import question_sample
    from thinkspace.inference.load import load

    # the device and inputs are checked before the (slow) model load, so a bad one fails at once
    device = inference_device(args.device, "--device")
    question_sample(args.video or args.images, args.question, args.num_frames, video=args.video is not None)
    model = load(args.model, args.config, device=device)
    if args.ply and model.objective("latent") is None:
        raise SystemExit(f"{args.model}: the model has no 3D latents; --ply needs a latent-alignment model")
    if args.bev and not model.can_draw():
        raise SystemExit(f"{args.model}: the model has no latent, layout or situation head; --bev has nothing to draw")
    generation = {} if args.max_new_tokens is None else {"max_new_tokens": args.max_new_tokens}
    answer = model.ask(args.video or args.images, args.question, num_frames=args.num_frames,
                       video=args.video is not None, **generation)
    print(f"reasoning: {answer.text}")
    print(f"answer: {answer.answer}")
    if answer.position is not None:
        print(f"position: ({answer.position[0]:.2f}, {answer.position[1]:.2f}) m, heading {answer.heading:.2f} rad")
    if args.ply:
        from thinkspace.viz import write_ply

        print(f"{write_ply(args.ply, answer.points, answer.colours)}: {answer.points.shape[0]} points")
    if args.bev:
        from thinkspace.inference.bev import bev_picture

        print(f"{bev_picture(answer, args.bev)}: bird's-eye picture")
    return 0
