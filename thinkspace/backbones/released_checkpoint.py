"""What a released 3DThinker checkpoint directory holds besides the transformers model.

3DThinker's stage 1 attaches its projector to the model (``model.projector_model = projector``) and
writes the latent tokens' ids into the config (``latent_token_id``, ``latent_start_id``,
``latent_end_id``; ``3dthinker/stage1/src/main.py``), so ``save_pretrained`` puts the projector's
tensors into the model's safetensors as ``projector_model.*`` and the ids into ``config.json``.
transformers ignores both when it loads the directory; these helpers read them.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

#: the prefix of the projector's tensors in a released checkpoint's safetensors
PROJECTOR_PREFIX = "projector_model."
#: config.json keys of the slot's ids, by role (3DThinker's ``main.py``)
SLOT_ID_KEYS = {"start": "latent_start_id", "pad": "latent_token_id", "end": "latent_end_id"}


def safetensors_files(path: str | Path) -> list[Path]:
    """The weight files of a local model directory (one file or the shards of its index); empty for a
    Hub id or a directory without safetensors."""
    root = Path(path)
    index = root / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError) as err:
            raise ValueError(f"{index}: expected JSON with a 'weight_map' ({err})") from err
        return [root / s for s in shards]
    single = root / "model.safetensors"
    return [single] if single.is_file() else []


def prefixed_tensors(path: str | Path, prefix: str = PROJECTOR_PREFIX) -> dict[str, Tensor]:
    """Every tensor of a local model directory whose name starts with ``prefix``, the prefix removed
    (``{}`` when there are none, or for a Hub id)."""
    from safetensors import safe_open

    out: dict[str, Tensor] = {}
    for file in safetensors_files(path):
        with safe_open(str(file), framework="pt") as f:
            names = [n for n in f.keys() if n.startswith(prefix)]  # noqa: SIM118 (a safetensors file, not a dict)
            out.update({n[len(prefix):]: f.get_tensor(n) for n in names})
    return out


def slot_ids_in_config(path: str | Path) -> dict[str, int]:
    """The latent slot's ids a released checkpoint's ``config.json`` records, by role (``start``, ``pad``,
    ``end``); ``{}`` for a model without them (or a Hub id)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return {}
    data = json.loads(config.read_text())
    return {role: int(data[key]) for role, key in SLOT_ID_KEYS.items() if data.get(key) is not None}
