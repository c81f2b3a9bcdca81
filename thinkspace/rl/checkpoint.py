"""Start stage 2 from stage 1: a SpatialVLM checkpoint's backbone and latent projector."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from thinkspace.training.checkpoint_file import read_checkpoint

_PROJECTOR = re.compile(r"^objectives\.[^.]+\.projector\.(.+)$")
_LORA = re.compile(r"\.(lora_[AB]|lora_embedding_[AB]|lora_magnitude_vector)\.")


def load_stage1(module: Any, path: str) -> str:
    """Load the backbone (and, with ``module.latent``, the projector) of a SpatialVLM ``.ckpt``.

    The policy may wrap its language model in LoRA adapters: a full weight ``...q_proj.weight``
    of the checkpoint goes into the adapter's ``...q_proj.base_layer.weight``; the adapters
    start as peft initialises them (their product is zero, so the policy starts as stage 1).

    Returns:
        one line naming the file, its training step and the counts of weights loaded and skipped
        (the checkpoint's other weights: objectives' heads and cues stage 2 has no place for).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: naming the key, when the checkpoint has no backbone, holds LoRA adapters
            itself, misses weights the policy has, or a shape differs (e.g. another vocabulary
            size: configure the same latent slot as in stage 1).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"model.init_from: {file} does not exist; expected a stage-1 .ckpt")
    # memory-mapped: every rank reads the weights it copies, not the optimizer states beside them
    checkpoint = read_checkpoint(file, "model.init_from:", mmap=True)
    state = checkpoint.get("state_dict", checkpoint)
    source = {}
    for key, value in state.items():
        if key.startswith("backbone."):
            key = key[len("backbone."):]
            key = key[len("model.base_model.model."):] if key.startswith("model.base_model.model.") else \
                key[len("model."):] if key.startswith("model.") else key
            if _LORA.search(f".{key}"):
                raise ValueError(f"model.init_from: {file} holds LoRA adapter weights ({key}); merge them into "
                                 "the base weights before starting stage 2")
            source[key] = value
    if not source:
        raise ValueError(f"model.init_from: {file} has no 'backbone.*' weights; expected a SpatialVLM checkpoint")
    target = module.backbone.hf.state_dict()
    mapped, missing = {}, []
    for key, value in source.items():
        name = key if key in target else re.sub(r"\.([^.]+)$", r".base_layer.\1", key)
        if name not in target:
            missing.append(key)
            continue
        if target[name].shape != value.shape:
            raise ValueError(f"model.init_from: {file}: {key} has shape {tuple(value.shape)} but the policy's is "
                             f"{tuple(target[name].shape)}; same backbone and latent slot (k, tokens) as stage 1?")
        mapped[name] = value
    if missing:
        raise ValueError(f"model.init_from: {file}: {len(missing)} weights have no place in the policy "
                         f"(first: {missing[:3]}); is it the same backbone?")
    absent = [k for k in target if k not in mapped and not _LORA.search(f".{k}") and "modules_to_save" not in k]
    if absent:
        raise ValueError(f"model.init_from: {file} lacks {len(absent)} of the policy's weights (first: {absent[:3]})")
    module.backbone.hf.load_state_dict(mapped, strict=False)
    projector: dict[str, Any] = {}
    if module.latent is not None:
        projector = {m.group(1): v for k, v in state.items() if (m := _PROJECTOR.match(k))}
        if not projector:
            raise ValueError(f"model.init_from: {file} holds no latent projector (objectives.<name>.projector.*); "
                             "model.latent needs the stage-1 projector for the latent-3D reward")
        module.latent.projector.load_state_dict(projector)
    return loaded_line(file, checkpoint, len(mapped), len(projector), len(state) - len(source) - len(projector))


def loaded_line(file: Path, checkpoint: dict[str, Any], backbone: int, projector: int, skipped: int) -> str:
    """``model.init_from: loaded FILE (step S, epoch E): ...`` with the counts of weights (tensors)."""
    step = checkpoint.get("global_step")
    when = f"step {step}, epoch {checkpoint.get('epoch')}" if step is not None else "no step recorded"
    latent = f" + {projector} latent projector" if projector else ""
    return (f"model.init_from: loaded {file} ({when}): {backbone} backbone{latent} weights; "
            f"{skipped} other weights skipped (stage-1 heads and cues)")
