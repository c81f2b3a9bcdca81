"""SQA3D localization scored per situation, as the official localization file does.

SQA3D's ``utils/localization_metric.py`` scores the records of
``v1_balanced_localization_{split}_scannetv2.json`` (``{"annotations": [{scene_id,
situation, alternative_situation, position {x, y, z}, rotation {_x, _y, _z, _w}}]}``), one
record per situation, not the questions (a situation carries about five). Here a
situation is the pair ``(scene_id, situation text)``; its prediction is the
``agent_pos`` / ``agent_rot`` of its first question record that has them (every
question of a situation sees the same frames and situation text, so a model gives them
all the same prediction), and its gold is the localization file's record when that file
is given, else the question records' own ``position`` / ``rotation``. A record may carry
at most 3 predictions (the official metric asserts it); more is an error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from thinkspace.records import Located, field, read_json_list
from thinkspace.geometry import as_position, as_quaternion, quaternion_yaw, yaw_error_degrees

MAX_PREDICTIONS = 3  # per record, utils/localization_metric.py
POSITION_THRESHOLDS = (0.5, 1.0)  # metres
YAW_THRESHOLDS = (15.0, 30.0)  # degrees

Key = tuple[str, str]
Pose = tuple[tuple[float, float], float]  # (x, y) metres, rotation-vector z radians


def situation_key(record: dict[str, Any], where: str) -> Key:
    """``(scene_id, situation text)`` of a question or localization record."""
    return (str(field(record, "scene_id", where, "the ScanNet scene")),
            str(field(record, "situation", where, "the situation text")).strip())


def _pose(record: dict[str, Any], where: str) -> Pose:
    xy = as_position(field(record, "position", where, "gold position"), where)
    return xy, quaternion_yaw(*as_quaternion(field(record, "rotation", where, "gold rotation"), where))


def localization_hits(gold_xy: tuple[float, float], gold_yaw: float,
                      pred_xy: list[tuple[float, float]], pred_yaw: list[float]) -> dict[str, bool]:
    """Whether the closest prediction is within each threshold: keys ``acc@0.5m``,
    ``acc@1.0m``, ``acc@15deg``, ``acc@30deg``."""
    dist = min(math.hypot(p[0] - gold_xy[0], p[1] - gold_xy[1]) for p in pred_xy)
    turn = min(yaw_error_degrees(gold_yaw, r) for r in pred_yaw)
    hits = {f"acc@{t}m": dist < t for t in POSITION_THRESHOLDS}
    hits.update({f"acc@{t:g}deg": turn < t for t in YAW_THRESHOLDS})
    return hits


def several(value: Any, where: str, name: str) -> list[Any]:
    """A prediction or a list of at most :data:`MAX_PREDICTIONS` predictions, as a list.

    Raises:
        ValueError: more than 3 predictions, or none (names the record and the field).
    """
    many = value if isinstance(value, list) and value and isinstance(value[0], (list, dict)) else [value]
    if not many or len(many) > MAX_PREDICTIONS:
        raise ValueError(f"{where}: {name} holds {len(many)} predictions; SQA3D's localization metric takes "
                         f"1 to {MAX_PREDICTIONS} per record")
    return many


def _same(xy: list[tuple[float, float]], yaw: list[float], xy2: list[tuple[float, float]], yaw2: list[float]) -> bool:
    """Equal predictions up to 1 mm and 1e-4 rad (batches padded differently differ in the last digits)."""
    return (len(xy) == len(xy2) and len(yaw) == len(yaw2)
            and all(abs(a - b) < 1e-3 for p, q in zip(xy, xy2) for a, b in zip(p, q))
            and all(abs(a - b) < 1e-4 for a, b in zip(yaw, yaw2)))


def read_localization(path: str | Path) -> list[tuple[str, Key, Pose]]:
    """Every record of an official localization file: where, situation key and gold pose."""
    return [(where, situation_key(record, where), _pose(record, where))
            for where, record in read_json_list(path, "annotations")]


def localization_by_situation(records: list[Located], localization: str | Path | None = None
                              ) -> tuple[dict[str, float], list[str]]:
    """Acc@0.5m/1.0m/15deg/30deg (percent) and notes.

    With ``localization`` (the official file) every gold record counts once and a gold
    situation without a prediction is a miss, as ``localization_metric.py`` counts
    (``total = len(gold)``). Without it, the situations of ``records`` that carry a
    prediction are scored against their own ``position`` / ``rotation`` (a partial run
    stays meaningful). Returns ``({}, [])`` when no record carries ``agent_pos`` and ``agent_rot``.
    """
    predicted: dict[Key, tuple[str, list[tuple[float, float]], list[float]]] = {}
    own_gold: dict[Key, Pose] = {}
    differing = 0
    for where, record in records:
        if record.get("agent_pos") is None or record.get("agent_rot") is None:
            continue
        key = situation_key(record, where)
        xy = [as_position(p, where) for p in several(record["agent_pos"], where, "agent_pos")]
        yaw = [quaternion_yaw(*as_quaternion(r, where)) for r in several(record["agent_rot"], where, "agent_rot")]
        if key in predicted:
            differing += not _same(xy, yaw, *predicted[key][1:])
            continue
        predicted[key] = (where, xy, yaw)
        own_gold.setdefault(key, _pose(record, where))
    if not predicted:
        return {}, []
    gold = read_localization(localization) if localization is not None else [
        (predicted[key][0], key, pose) for key, pose in own_gold.items()]
    located: dict[str, list[bool]] = {}
    missing = 0
    for _, key, pose in gold:
        if key not in predicted:
            missing += 1
            hits = dict.fromkeys(("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg"), False)
        else:
            hits = localization_hits(*pose, *predicted[key][1:])
        for name, hit in hits.items():
            located.setdefault(name, []).append(hit)
    notes = [f"localization scored per situation: {len(gold)} situations"]
    if differing:
        notes.append(f"{differing} record(s) predict another pose than the first record of their situation; "
                     "the first counts")
    unknown = [where for key, (where, _, _) in predicted.items() if key not in {k for _, k, _ in gold}]
    if unknown:
        notes.append(f"{len(unknown)} predicted situations are not in {localization} (e.g. {unknown[0]}); unscored")
    if missing:
        notes.append(f"{missing} of {len(gold)} gold situations have no prediction: counted as misses, as the "
                     "official metric counts them (score without the localization file for a partial run)")
    return {name: 100.0 * sum(hits) / len(hits) for name, hits in located.items()}, notes
