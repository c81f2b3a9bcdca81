"""``thinkspace points``: decode a trained model's 3D latents into a coloured point cloud.

``thinkspace points --ckpt CKPT --config CFG --sample ID --out scene.ply`` builds the
model of CFG, loads CKPT, decodes the sample's prompt with its latent slot (the
objective's ``decoding`` mode), projects the k latents to the teacher's tokens, decodes
them with the teacher (oracle: the inverse of its encoding; VGGT: its camera and depth
heads), unprojects and writes a ``.ply``. :class:`PointCloudLogger` logs the same
picture to TensorBoard during validation.
"""

from __future__ import annotations

import argparse
from typing import Any

import lightning as L
import torch
from torch import Tensor

from thinkspace.data.schema import SpatialSample
from thinkspace.teachers.base import TeacherFeatures


def latent_objective(module: Any, name: str | None = None) -> tuple[str, Any]:
    """The (name, objective) with a latent slot and a projector."""
    for key, objective in module.objectives.items():
        if (name is None or key == name) and hasattr(objective, "slot") and hasattr(objective, "project"):
            return key, objective
    raise ValueError(f"model.objectives has no latent-alignment objective{' named ' + repr(name) if name else ''}")


@torch.no_grad()
def imagine(module: Any, sample: SpatialSample, objective: str | None = None) -> tuple[Tensor, Tensor]:
    """World points ``[M, 3]`` and colours ``[M, 3]`` decoded from the model's latents for ``sample``."""
    from thinkspace.generation.latent_decoding import generate_with_latents

    _, latent = latent_objective(module, objective)
    collate = module.backbone.collator(dict(module.objectives), None, with_response=False)
    batch = collate([sample])
    device = next(module.parameters()).device
    batch = batch.to(device)
    gen = generate_with_latents(module.backbone, batch, latent.slot, mode=latent.decoding,
                                max_new_tokens=latent.slot.k + 2)
    _, points, colours = decode_latents(latent, gen, sample)
    return points, colours


def decode_latents(latent: Any, gen: Any, sample: SpatialSample, allow_empty: bool = False
                   ) -> tuple[TeacherFeatures, Tensor, Tensor]:
    """The projected latents of a one-sample decoding ``gen`` as teacher features ``[S, P, C]``,
    and the world points ``[M, 3]`` (metres) and colours ``[M, 3]`` the teacher decodes from them.

    Raises:
        RuntimeError: naming the sample, when decoding produced no latent slot, or no valid
            point (unless ``allow_empty``: then ``M`` is 0).
    """
    if not bool(gen.has_latents.all()):
        raise RuntimeError(f"sample {sample.id!r}: decoding produced no latent slot")
    grid = latent.teacher.sample_grid(sample)
    tokens = latent.project(gen.prompt_out, gen.prompts, [(sample.num_frames, grid)], latents=gen.latents)[0]
    features = TeacherFeatures.from_tokens(tokens.float().cpu(), latent.teacher.num_register, grid)
    points, colours = latent.teacher.point_cloud(features, sample)
    if points.shape[0] == 0 and not allow_empty:
        raise RuntimeError(f"sample {sample.id!r}: the projected latents decode to no valid point "
                           "(is the model trained with this teacher?)")
    return features, points, colours


def find_sample(dataset: Any, key: str, limit: int = 100_000) -> SpatialSample:
    """The sample whose id is ``key`` (or index ``key`` when it is a number)."""
    if key.isdigit():
        return dataset[int(key)]
    for i in range(min(len(dataset), limit)):
        sample = dataset[i]
        if sample.id == key:
            return sample
    raise KeyError(f"no sample with id {key!r} in the first {min(len(dataset), limit)} samples of the dataset")


class PointCloudLogger(L.Callback):
    """Log the point cloud decoded from the latents of one validation sample to TensorBoard.

    Args:
        index: which sample of the validation set.
        objective: name of the latent objective (default: the first).
    """

    def __init__(self, index: int = 0, objective: str | None = None) -> None:
        self.index, self.objective = index, objective

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        dataset = trainer.datamodule.datasets.get("val") if trainer.datamodule else None
        if dataset is None or trainer.logger is None or trainer.sanity_checking:
            return
        from thinkspace.viz import log_point_cloud

        try:
            points, colours = imagine(module, dataset[self.index], self.objective)
        except RuntimeError as error:  # early in training the latents may decode to nothing
            from lightning.pytorch.utilities import rank_zero_warn

            rank_zero_warn(f"PointCloudLogger: {error}")
            return
        log_point_cloud(trainer.logger, "val/latent_points", points, colours, trainer.global_step)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkspace points", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint of a model trained with a latent objective")
    parser.add_argument("--config", required=True, help="the config the model was trained with")
    parser.add_argument("--sample", required=True, help="sample id (or index) in the chosen split")
    parser.add_argument("--out", required=True, help="output .ply path")
    parser.add_argument("--split", default="val", help="data split to take the sample from (default: val)")
    parser.add_argument("--objective", default=None, help="latent objective name (default: the first)")
    args = parser.parse_args(argv)

    from thinkspace.inference.build import cli_from_config, load_checkpoint
    from thinkspace.viz import write_ply

    cli = cli_from_config([args.config])
    module = cli.model
    load_checkpoint(module, args.ckpt, args.config)
    module.eval()
    dataset = cli.datamodule.datasets.get(args.split)
    if dataset is None:
        raise SystemExit(f"{args.config}: data.{args.split} is not configured; pass --split with one that is")
    sample = find_sample(dataset, args.sample)
    points, colours = imagine(module, sample, args.objective)
    path = write_ply(args.out, points, colours)
    print(f"{path}: {points.shape[0]} points from the latents of sample {sample.id!r}")
    return 0
