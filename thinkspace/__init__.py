"""thinkspace: teach vision-language models to reason in 3D.

``thinkspace.load(DIR_or_CKPT)`` restores a trained model for ``.ask(...)`` (imported on
first use, so ``import thinkspace`` stays light).
"""

from typing import Any

from thinkspace.version import __version__

__all__ = ["__version__", "load"]


def load(path: Any, config: Any = None, device: Any = "cpu") -> Any:
    """A trained model from an export directory or a checkpoint, on ``device`` (``cpu``, ``cuda``,
    ``cuda:1``, ...; see :func:`thinkspace.inference.load.load`)."""
    from thinkspace.inference.load import load as _load

    return _load(path, config, device)
