"""One check for a setting that takes one of a few named values, read from the signature's ``Literal``.

The ``Literal`` that types an argument is the one list of its choices: the check and the error
message read it, so a new choice is added in one place.
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin


def choices_of(allowed: Any) -> tuple[Any, ...]:
    """The values of a ``Literal[...]`` type (or of any other collection, as a tuple)."""
    return get_args(allowed) if get_origin(allowed) is Literal else tuple(allowed)


def check_choice(name: str, value: Any, allowed: Any) -> None:
    """Raise unless ``value`` is one of ``allowed`` (a ``Literal`` type or a collection).

    Raises:
        ValueError: ``"{name} must be 'a', 'b' or 'c', got 'd'"``.
    """
    choices = choices_of(allowed)
    if value not in choices:
        quoted = [repr(c) for c in choices]
        listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        raise ValueError(f"{name} must be {listed}, got {value!r}")
