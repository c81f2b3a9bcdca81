"""Write constraints.txt: the exact versions of thinkspace's installed dependencies.

Run after the suite passed on new versions (see README, "Test"):
    python .ci/pin_versions.py > constraints.txt
It walks the requirements of the installed ``thinkspace`` with its ``dev`` and ``deepspeed``
extras (what CI installs), following only requirements whose markers hold on this machine.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXTRAS = ("dev", "deepspeed")


def requirements(name: str, extras: tuple[str, ...]) -> list[Requirement]:
    """The requirements of the installed ``name`` that apply here, with ``extras`` switched on."""
    found = []
    for line in distribution(name).requires or []:
        req = Requirement(line)
        environments = [{"extra": e} for e in ("", *extras)]
        if req.marker is None or any(req.marker.evaluate(env) for env in environments):
            found.append(req)
    return found


def closure(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    """``{canonical name: installed version}`` of every distribution ``root`` pulls in."""
    pinned: dict[str, str] = {}
    todo = [(root, extras)]
    while todo:
        name, extra = todo.pop()
        for req in requirements(name, extra):
            key = canonicalize_name(req.name)
            try:
                version = distribution(req.name).version
            except PackageNotFoundError:
                sys.exit(f"{req.name} (needed by {name}) is not installed: install thinkspace with {EXTRAS} first")
            if key not in pinned:
                pinned[key] = version
                todo.append((req.name, tuple(req.extras)))
    return pinned


def main() -> None:
    pins = closure("thinkspace", EXTRAS)
    print("# The versions the suite was last run with (python .ci/pin_versions.py > constraints.txt).")
    print("# pip install -e \".[dev]\" -c constraints.txt  installs exactly these; drop -c for the newest.")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")


if __name__ == "__main__":
    main()
