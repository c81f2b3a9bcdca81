"""``thinkspace points``: write the point cloud one sample's 3D latents decode to, as a ``.ply`` file.

``thinkspace points --ckpt CKPT --config CFG [--config CFG2] --sample ID --out scene.ply`` builds the model of CFG, loads
CKPT, decodes the sample's latents (:func:`~thinkspace.points.decode.imagine`) and writes a ``.ply``.
"""

from __future__ import annotations

from typing import Any

from thinkspace.data.schema import SpatialSample
from thinkspace.errors import ToolParser
from thinkspace.points.decode import imagine


def find_sample(dataset: Any, key: str, limit: int = 100_000) -> SpatialSample:
    """The sample whose id is ``key`` (or index ``key`` when it is a number)."""
    if key.isdigit():
        return dataset[int(key)]
    for i in range(min(len(dataset), limit)):
        sample = dataset[i]
        if sample.id == key:
            return sample
    raise KeyError(f"no sample with id {key!r} in the first {min(len(dataset), limit)} samples of the dataset")


def main(argv: list[str] | None = None) -> int:
    parser = ToolParser(prog="thinkspace points", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint of a model trained with a latent objective")
    parser.add_argument("--config", required=True, action="append",
                        help="the config the model was trained with (repeat for stacked configs)")
    parser.add_argument("--sample", required=True, help="sample id (or index) in the chosen split")
    parser.add_argument("--out", required=True, help="output .ply path")
    parser.add_argument("--split", default="val", help="data split to take the sample from (default: val)")
    parser.add_argument("--objective", default=None, help="latent objective name (default: the first)")
    args = parser.parse_args(argv)

    from thinkspace.inference.build import cli_from_config, load_checkpoint
    from thinkspace.viz import write_ply

    configs = ", ".join(args.config)
    cli = cli_from_config(args.config)
    module = cli.model
    load_checkpoint(module, args.ckpt, configs)
    module.eval()
    dataset = cli.datamodule.datasets.get(args.split)
    if dataset is None:
        raise ValueError(f"{configs}: data.{args.split} is not configured; pass --split with one that is")
    sample = find_sample(dataset, args.sample)
    points, colours = imagine(module, sample, args.objective)
    path = write_ply(args.out, points, colours)
    print(f"{path}: {points.shape[0]} points from the latents of sample {sample.id!r}")
    return 0
