"""``thinkspace export --ckpt CKPT --config CFG --out DIR``: a trained run as a model directory.

The directory is a standard Hugging Face model (safetensors weights, config, processor and
tokenizer with the added special tokens; LoRA merged, or kept as a peft adapter in
``adapter/`` with ``--keep-adapter``) that plain transformers loads, plus what only
thinkspace uses::

    DIR/
      config.json, model.safetensors, preprocessor_config.json, tokenizer.json, ...
      thinkspace_heads.safetensors   # projector, layout/situation heads, camera-prior MLP, ...
      thinkspace.json                # the module and backbone specs that rebuild the whole model

The backbone is written in the dtype its config loads it in (``dtype``: bfloat16 for the paper
configs), LoRA merged from float32 and rounded once; a LoRA'd ``lm_head`` tied to the input
embeddings is written untied (:mod:`thinkspace.backbones.merge`); the heads keep their dtype.

It is written to a temporary directory beside ``DIR`` and renamed when complete, so an
interrupted export leaves no half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from thinkspace.errors import ToolParser
from thinkspace.inference.build import load_checkpoint, module_from_config
from thinkspace.utils.file_modes import apply_umask
from thinkspace.version import __version__

MANIFEST = "thinkspace.json"
HEADS = "thinkspace_heads.safetensors"
FORMAT = 1
#: training-only settings that mean nothing to a restored model
_TRAINING_ONLY = ("optimizer", "scheduler", "init_from", "gradient_checkpointing")


def head_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every thinkspace-owned tensor of ``module`` (all but the backbone's), contiguous, on the CPU."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()
            if not k.startswith("backbone.") and isinstance(v, torch.Tensor)}


def export(ckpt: str | Path, config: str | Path | list[str | Path], out: str | Path, keep_adapter: bool = False,
           overwrite: bool = False) -> Path:
    """Export the model of ``config`` with the weights of ``ckpt`` to the directory ``out``.

    Raises:
        FileExistsError: ``out`` exists and is not empty (and not ``overwrite``).
        ValueError: the checkpoint does not match the config (names the keys and both files).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
    files = config if isinstance(config, list) else [config]
    module, spec = module_from_config(files)
    load_checkpoint(module, ckpt, ", ".join(map(str, files)))
    module.eval()
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        backbone_args = module.backbone.save_pretrained(tmp, merge_lora=not keep_adapter)
        save_file(head_weights(module), str(tmp / HEADS))
        (tmp / MANIFEST).write_text(json.dumps(manifest(spec, type(module.backbone), backbone_args, ckpt, files),
                                               indent=2) + "\n")
        apply_umask(tmp)  # safetensors files are created 0600
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def manifest(spec: dict[str, Any], backbone_class: type, backbone_args: dict[str, Any], ckpt: str | Path,
             files: list[str | Path]) -> dict[str, Any]:
    """``thinkspace.json``: the module's spec with the exported backbone in place of the trained one."""
    init_args = {k: v for k, v in spec["init_args"].items() if k not in _TRAINING_ONLY}
    init_args["backbone"] = {"class_path": f"{backbone_class.__module__}.{backbone_class.__qualname__}",
                             "init_args": backbone_args}
    return {"format": FORMAT, "thinkspace": __version__, "heads": HEADS,
            "model": {"class_path": spec["class_path"], "init_args": init_args},
            "exported_from": {"checkpoint": str(ckpt), "config": [str(f) for f in files]}}


def main(argv: list[str] | None = None) -> int:
    parser = ToolParser(prog="thinkspace export", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint of the run (e.g. runs/NAME/checkpoints/last.ckpt)")
    parser.add_argument("--config", required=True, action="append",
                        help="the config the run was trained with (repeat for stacked configs)")
    parser.add_argument("--out", required=True, help="the model directory to write")
    parser.add_argument("--keep-adapter", action="store_true",
                        help="keep LoRA as a peft adapter in DIR/adapter instead of merging it")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty --out")
    args = parser.parse_args(argv)
    out = export(args.ckpt, args.config, args.out, args.keep_adapter, args.overwrite)
    print(f"{out}: exported (AutoModelForImageTextToText.from_pretrained or thinkspace.load)")
    return 0
