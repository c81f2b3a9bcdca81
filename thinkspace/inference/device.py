"""The device a restored model runs on: ``cpu``, ``cuda``, ``cuda:1``, ``mps``, ... checked before loading."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """``cuda`` (the current CUDA device) when one is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inference_device(name: str | torch.device | None, setting: str = "device") -> torch.device:
    """``name`` as a ``torch.device`` this machine has (``None``: :func:`default_device`).

    Args:
        setting: what the error calls the value (``--device`` for the command line).

    Raises:
        ValueError: naming ``setting`` and the value: not a device string, or a device this
            machine does not have (no CUDA, an index beyond the GPU count, no MPS).
    """
    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{setting} {name!r} is not a device; expected cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{setting} {name!r}: CUDA is not available on this machine; use cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{setting} {name!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{setting} {name!r}: MPS is not available on this machine; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{setting} {name!r}: thinkspace runs models on cpu, cuda, cuda:N or mps")
    return device
