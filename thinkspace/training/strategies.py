"""Lightning strategies that know how a transformers VLM is built, and DDP without a second gradient copy.

:class:`FSDP` is Lightning's ``FSDPStrategy`` whose wrapping units are found in the model
itself: by default the classes its transformers modules list in ``_no_split_modules``
(decoder layers, vision blocks), which is what sharding a VLM needs, so a config names no
model-specific class. Everything else (``sharding_strategy``, ``state_dict_type``,
``cpu_offload``, ``mixed_precision``, ...) is Lightning's.

:class:`DDP` is Lightning's ``DDPStrategy`` with ``gradient_as_bucket_view=True``: torch's DDP then
makes each gradient a view into its all-reduce bucket instead of copying it there, one copy of the
trainable parameters' gradients less (28 GiB for a 7.6 B model's float32 gradients, 14 GiB in bf16).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy
from torch import nn


class DDP(DDPStrategy):
    """Data parallel, every process a whole replica, gradients all-reduced in place in the buckets.

    Args:
        gradient_as_bucket_view: gradients are views into DDP's all-reduce buckets (no second copy;
            torch's own default is False).
        find_unused_parameters: look for parameters that took no part in the step (a graph traversal
            per step); False, torch's and Lightning's default: every trainable parameter takes part.
        kwargs: Lightning's ``DDPStrategy`` arguments (``process_group_backend``, ``timeout``, ...) and
            torch's ``DistributedDataParallel`` ones (``static_graph``, ``bucket_cap_mb``, ...).
    """

    def __init__(self, gradient_as_bucket_view: bool = True, find_unused_parameters: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(gradient_as_bucket_view=gradient_as_bucket_view,
                         find_unused_parameters=find_unused_parameters, **kwargs)


class FSDP(FSDPStrategy):
    """Fully sharded data parallel with the model's own layer classes as units.

    Args:
        wrap: class names to wrap as FSDP units (``["Qwen2_5_VLDecoderLayer"]``);
            default: every name in the ``_no_split_modules`` of the model's transformers
            modules. Ignored when ``auto_wrap_policy`` is given.
        kwargs: Lightning's ``FSDPStrategy`` arguments.

    FSDP needs GPUs (torch refuses a CPU-only machine when the model is wrapped); the
    tests here check the wrapping units and that the configs build up to that point.
    """

    def __init__(self, wrap: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wrap = wrap

    def _setup_model(self, model: nn.Module) -> nn.Module:
        if "auto_wrap_policy" not in self.kwargs:
            from torch.distributed.fsdp.wrap import ModuleWrapPolicy

            self.kwargs["auto_wrap_policy"] = ModuleWrapPolicy(layer_classes(model, self.wrap))
        return super()._setup_model(model)


def layer_classes(model: nn.Module, names: list[str] | None = None) -> set[type[nn.Module]]:
    """The module classes in ``model`` named ``names`` (default: its ``_no_split_modules``).

    Raises:
        ValueError: naming the classes that are not in the model, or when it lists none.
    """
    listed = names is not None
    if names is None:
        names = sorted({n for m in model.modules() for n in (getattr(m, "_no_split_modules", None) or [])})
    found = {type(m) for m in model.modules() if type(m).__name__ in names}
    missing = sorted(set(names) - {c.__name__ for c in found})
    if (listed and missing) or not found:
        present = sorted({type(m).__name__ for m in model.modules() if "Layer" in type(m).__name__ or
                          "Block" in type(m).__name__})
        source = "strategy.init_args.wrap" if listed else "the model's _no_split_modules"
        raise ValueError(f"FSDP: {source} names {missing or names}, not found in the model; its layer and block "
                         f"classes are {present}")
    return found
