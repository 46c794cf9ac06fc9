"""Files written whole or not at all, readable by others: a crash, a full disk or a second writer
never leaves a half-written manifest, metadata or results file behind. And the digests that name
stored results: of the settings that decide them and of the code that computes them."""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

FILE_MODE = 0o644  # shared caches: files other users can read


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file unique to this call, beside ``path``, then move it
    into place in one step (os.replace). Two writers never share a temporary name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def identity_digest(identity: Mapping, length: int = 20) -> str:
    """A digest of everything that decides a stored result (a JSON-able mapping, keys in any order)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:length]


def source_digest(parts: Iterable[object], length: int = 16) -> str:
    """A digest of the source of modules, functions or classes, comments and layout aside (their
    syntax trees), so stored results are reused until the code that computed them changes."""
    trees = [ast.dump(ast.parse(textwrap.dedent(inspect.getsource(p)))) for p in parts]
    return hashlib.sha256("".join(trees).encode()).hexdigest()[:length]
