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


CHECKED_MAGIC = b"poslib-sha256:"  # first line of a checked store entry: its payload's sha256


def save_checked(path: str | Path, obj: object) -> Path:
    """``torch.save(obj)`` with a checksum line before it, written whole or not at all: a reader
    never sees a half-written entry, and ``load_checked`` notices a truncated or altered one."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    return atomic_write_bytes(path, CHECKED_MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


def load_checked(path: str | Path, *, what: str = "stored entry", map_location=None) -> object | None:
    """The object a ``save_checked`` wrote at ``path``, or None, with a one-line warning naming the
    file, when it is damaged (its checksum fails, or it does not unpickle): the caller recomputes.
    An entry written before checksums were recorded is served if it loads."""
    import io
    import warnings

    import torch

    path = Path(path)
    raw = path.read_bytes()
    data = raw
    if raw.startswith(CHECKED_MAGIC):
        head, _, data = raw.partition(b"\n")
        if hashlib.sha256(data).hexdigest().encode() != head[len(CHECKED_MAGIC):]:
            warnings.warn(f"{what} {path} is damaged (its checksum does not match); recomputing it", stacklevel=2)
            return None
    try:
        # our own store of our own results (tables, tensors, lists), hence a full unpickler
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
    except Exception as e:  # truncated or overwritten: torch's "central directory" / "truncated" errors
        warnings.warn(f"{what} {path} is damaged ({type(e).__name__}: {str(e)[:80]}); recomputing it", stacklevel=2)
        return None
