"""PointCloudLogger: the point cloud one validation sample's latents decode to, in TensorBoard."""

from __future__ import annotations

import lightning as L

from thinkspace.points.decode import imagine


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
            with trainer.precision_plugin.forward_context():  # the steps' autocast (bf16-mixed), as in validation
                points, colours = imagine(module, dataset[self.index], self.objective)
        except RuntimeError as error:  # early in training the latents may decode to nothing
            from lightning.pytorch.utilities import rank_zero_warn

            rank_zero_warn(f"PointCloudLogger: {error}")
            return
        log_point_cloud(trainer.logger, "val/latent_points", points, colours, trainer.global_step)
