"""The TensorBoard logger of a run directory, without an empty ``hparams.yaml`` beside ``config.yaml``."""

from __future__ import annotations

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class RunLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger; ``hparams.yaml`` is written only when the module or data module
    saved hyperparameters (``save_hyperparameters``). thinkspace's modules do not: the run's
    ``config.yaml`` holds every setting, and an empty ``hparams.yaml`` beside it only raised the
    question which file is the run's."""

    @rank_zero_only
    def save(self) -> None:
        if self.hparams:
            super().save()
        else:
            self.experiment.flush()
