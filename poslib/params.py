"""Checks of a notebook's parameters: a one-line error naming the parameter, before any compute.

papermill and a user's edits can put any value in a parameters cell (a scalar where a list is
expected, a string for a number, a file for a folder); each notebook's validation cell passes every
parameter through one of these, so a wrong value stops the run in its first cells, not after an
hour of training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "True or False"}


def _is(value, kind: type) -> bool:
    if isinstance(value, bool):  # True is an int in Python, never a valid count or name here
        return kind is bool
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def one(name: str, value, kind: type = str, check: Callable | None = None):
    """A single value of ``kind``, passed through ``check`` (which raises naming the valid values)."""
    if not _is(value, kind):
        raise ValueError(f"parameter {name} must be {_TYPE_NAMES[kind]}, got {value!r}")
    if check is not None:
        check(value)
    return value


def listed(name: str, value, kind: type = str, check: Callable | None = None, *, allow_empty: bool = False) -> list:
    """A list of values of ``kind``, each passed through ``check``."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"parameter {name} must be a list, e.g. [{value!r}], got {value!r}")
    if not value and not allow_empty:
        raise ValueError(f"parameter {name} must not be an empty list")
    for v in value:
        if not _is(v, kind):
            raise ValueError(f"parameter {name}: every item must be {_TYPE_NAMES[kind]}, got {v!r}")
        if check is not None:
            check(v)
    return list(value)


def in_range(name: str, low: float | None = None, high: float | None = None) -> Callable:
    """A check that a number lies in [low, high]."""
    def check(v) -> None:
        if (low is not None and v < low) or (high is not None and v > high):
            bounds = f">= {low}" if high is None else (f"<= {high}" if low is None else f"in [{low}, {high}]")
            raise ValueError(f"parameter {name} must be {bounds}, got {v!r}")
    return check


def among(name: str, valid) -> Callable:
    """A check that a value is one of ``valid``."""
    def check(v) -> None:
        if v not in valid:
            raise ValueError(f"unknown {name} {v!r}; valid: {', '.join(map(str, valid))}")
    return check


def optional_path(name: str, value, *, folder: bool) -> str | None:
    """None, or a path that exists and is a folder (``folder``) or a file."""
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not str(value):
        raise ValueError(f"parameter {name} must be a path or None, got {value!r}")
    p = Path(value).expanduser()
    if not p.exists():
        raise ValueError(f"parameter {name}: {p} does not exist")
    if folder and not p.is_dir():
        raise ValueError(f"parameter {name}: {p} is a file; give the folder that holds the images")
    if not folder and not p.is_file():
        raise ValueError(f"parameter {name}: {p} is a folder; give the file itself")
    return str(p)
