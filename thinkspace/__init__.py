"""thinkspace: teach vision-language models to reason in 3D.

``thinkspace.load(DIR_or_CKPT)`` restores a trained model for ``.ask(...)`` (imported on
first use, so ``import thinkspace`` stays light).
"""

from typing import Any

from thinkspace.moved import install as _install_moved_modules

__version__ = "0.1.0"
_install_moved_modules()  # old module paths raise an error naming the new one


def load(path: Any, config: Any = None) -> Any:
    """A trained model from an export directory or a checkpoint (see :func:`thinkspace.inference.load.load`)."""
    from thinkspace.inference.load import load as _load

    return _load(path, config)
