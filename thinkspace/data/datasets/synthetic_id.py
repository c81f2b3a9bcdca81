"""The id of a ``SyntheticSpatial`` question: it names the question family.

``synthetic-<task>-<split>-<seed>-<index>``, e.g. ``synthetic-situated-test-0-17``: sample 17 of
the ``test`` split of a set with ``seed: 0``, a ``situated`` question. A per-question file
(``questions_test_<stage>.csv``) can thus be split by family from its ids alone.

Ids written before the family was part of them read ``synthetic-<split>-<seed>-<index>``
(``synthetic-test-0-17``); :func:`task_of_id` gives ``None`` for those (their files carry the
family in a ``task`` column instead). Light: no torch import, so the sweep report reads it.
"""

from __future__ import annotations

import re

#: the new form; the family is a task name (letters, digits, underscores: never a hyphen)
_ID = re.compile(r"^synthetic-(?P<task>[a-z0-9_]+)-(?P<split>train|val|test)-(?P<seed>-?\d+)-(?P<index>\d+)$")


def synthetic_id(task: str, split: str, seed: int, index: int) -> str:
    """``synthetic-<task>-<split>-<seed>-<index>``; ``task`` must be a family name without hyphens."""
    if not re.fullmatch(r"[a-z0-9_]+", task):
        raise ValueError(f"synthetic_id: the task {task!r} must be lower-case letters, digits or underscores")
    return f"synthetic-{task}-{split}-{seed}-{index}"


def task_of_id(sample_id: str) -> str | None:
    """The family named by a synthetic question id; ``None`` for any other id, including the
    older ``synthetic-<split>-<seed>-<index>`` form."""
    match = _ID.match(str(sample_id))
    return match["task"] if match else None
