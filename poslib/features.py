"""The feature cache: every input goes through a frozen encoder once (Sec. 3.1's taps, resized to 28x28).

The encoder never changes while read-outs train, so the official code's habit of running it every
epoch, for every pattern and read-out, repeats the same computation hundreds of times. Here the taps
of an (encoder, weights, preprocessing, image set, input size, precision, storage) are computed once,
resized to the read-out's grid, concatenated along channels (the read-out's input, Sec. 3.2) and
stored as one memory-mapped file under ``$POSLIB_CACHE/features/<key>/``.

Trust: an entry is keyed by the *content* of its images (their items' keys hold each file's sha256
and crop), its file's space is reserved before any work (a full disk fails at once, with a message),
every finished chunk has a sha256 in ``meta.json``, and an entry is verified when first opened in a
process: a truncated, deleted or altered file, or an unreadable ``meta.json``, is recomputed with a
one-line warning naming it, never served. Work is saved chunk by chunk: an interrupted run resumes
where it stopped and ends with the same bytes. Finished entries are opened read-only, so a shared
read-only cache works.

Precision: features are computed in float32 by default on every machine (the same numbers whatever
the CPU) and stored in bfloat16 (half the disk and memory); see ``poslib.precision``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import ImageItem, load_items
from .encoders import Encoder
from .fetch import cache_root
from .files import FILE_MODE, atomic_write_text
from .precision import PRECISIONS, check_precision, resolve_precision
from .progress import progress_bar
from .train import pick_device

FORMAT_VERSION = 4  # bump when the stored layout or the resizing changes
STORAGE = PRECISIONS  # stored dtype: "bf16" or "fp32"
_verified: set[tuple] = set()  # (folder, size, mtime) of entries whose checksums passed in this process
# Feature sets this process read whole from the cache ("hits") or computed, wholly or in part
# ("computed"), with the images encoded: recorded in every results JSON (``results.save_table``).
cache_counts: dict[str, int] = {"hits": 0, "computed": 0, "images_encoded": 0}


def check_storage(storage: str) -> str:
    if storage not in STORAGE:
        raise ValueError(f"unknown feature storage {storage!r}; valid: {', '.join(STORAGE)}")
    return storage


# set in provenance only when they change the network: absent keys leave existing cache keys valid
IDENTITY_EXTRAS = ("padding_mode", "init", "init_scales", "init_reference", "init_images", "batchnorm", "batchnorm_images")


def encoder_identity(encoder: Encoder) -> dict:
    """What decides an encoder's outputs: architecture, weights (by checksum or seed), preprocessing,
    and each of ``IDENTITY_EXTRAS`` that its provenance records."""
    p = encoder.provenance
    weights_id = p.get("file_sha256") or p.get("url") or (f"seed:{p['seed']}" if "seed" in p else p.get("source"))
    identity = {"encoder": encoder.name, "weights": encoder.weights, "weights_id": weights_id,
                "preprocess": encoder.preprocess.kind, "taps": encoder.tap_names}
    for key in IDENTITY_EXTRAS:  # a swapped padding mode; re-drawn, rescaled or recalibrated weights
        if key in p:
            identity[key] = p[key]
    return identity


def cache_key(encoder: Encoder, items: Sequence[ImageItem], *, size: int, precision: str, grid: int,
              storage: str = "bf16") -> str:
    """A digest of every input that decides the cached features (``precision``: fp32 or bf16)."""
    spec = {"format": FORMAT_VERSION, **encoder_identity(encoder), "size": size,
            "precision": check_precision(precision, allow_auto=False), "storage": check_storage(storage),
            "grid": grid, "items": hashlib.sha256("\n".join(i.key for i in items).encode()).hexdigest()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class FeatureSet:
    """Cached taps of an image set, resized and concatenated: ``data`` is (N, sum C_i, grid, grid)."""

    data: torch.Tensor  # memory-mapped, stored channels-last (N, grid, grid, C) and viewed as (N, C, grid, grid)
    names: list[str]
    channels: list[int]  # per tap
    keys: list[str]  # the items' keys, in row order
    folder: Path

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def taps(self) -> list[torch.Tensor]:
        """Per-tap views of ``data``: [(N, C_i, grid, grid), ...]."""
        offsets = [sum(self.channels[:i]) for i in range(len(self.channels) + 1)]
        return [self.data[:, a:b] for a, b in zip(offsets, offsets[1:])]


def _nbytes(meta: dict) -> int:
    n, c, h, w = meta["shape"]
    return n * c * h * w * STORAGE[meta["storage"]].itemsize


def _open(path: Path, meta: dict, *, writable: bool) -> torch.Tensor:
    """The file as a flat tensor. Its bytes are laid out (N, H, W, C): one image's features are
    contiguous, so a batch is a gather of whole rows and is born channels-last. A finished entry is
    mapped privately (read-only on disk); one being written is mapped shared."""
    n, c, h, w = meta["shape"]
    return torch.from_file(str(path), shared=writable, size=n * c * h * w, dtype=STORAGE[meta["storage"]])


def _as_nchw(flat: torch.Tensor, shape: list[int]) -> torch.Tensor:
    n, c, h, w = shape
    return flat.view(n, h, w, c).permute(0, 3, 1, 2)


def _chunk_digest(flat: torch.Tensor, row: int, lo: int, hi: int) -> str:
    return hashlib.sha256(flat[lo * row:hi * row].view(torch.uint8).numpy()).hexdigest()


def _reserve(path: Path, nbytes: int) -> None:
    """Create the features file at its full size, its blocks allocated now: a disk too small fails
    here with an OSError naming the cache, instead of a SIGBUS (a dead kernel) half-way through."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        os.close(fd)
        path.unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(e.errno, f"not enough disk space for {nbytes / 2**20:.0f} MiB of features in the cache "
                                   f"folder {path.parent.parent} (set POSLIB_CACHE to a larger disk)") from e
        raise
    os.close(fd)


def _damage(folder: Path, meta: dict | None) -> str | None:
    """Why a cache entry cannot be trusted, or None. Checks the file's size, and the checksum of
    every finished chunk once per process (about 1 s per GB)."""
    if meta is None:
        return "its meta.json is missing or unreadable"
    path = folder / "features.bin"
    try:
        stat = path.stat()
        expected = _nbytes(meta)
        row = expected // meta["n"] // STORAGE[meta["storage"]].itemsize
        digests = meta["digests"]
    except (OSError, KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        return f"it is incomplete ({type(e).__name__}: {e})"
    if stat.st_size != expected:
        return f"features.bin has {stat.st_size} bytes, expected {expected}"
    if sum(hi - lo for lo, hi, _ in digests) != meta["done"]:
        return "its checksums do not cover the finished images"
    memo = (str(folder), stat.st_size, stat.st_mtime_ns, meta["done"])
    if memo in _verified:
        return None
    flat = _open(path, meta, writable=False)
    for lo, hi, digest in digests:
        if _chunk_digest(flat, row, lo, hi) != digest:
            return f"images {lo}-{hi - 1} do not match their checksum"
    _verified.add(memo)
    return None


def _read_meta(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


def _write_meta(folder: Path, meta: dict) -> None:
    atomic_write_text(folder / "meta.json", json.dumps(meta, indent=2) + "\n")


@torch.no_grad()
def compute_features(
    encoder: Encoder,
    items: Sequence[ImageItem],
    *,
    size: int = 224,
    precision: str = "fp32",
    storage: str = "bf16",
    grid: int = 28,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    progress: bool = True,
    limit: int | None = None,
) -> FeatureSet:
    """The taps of ``items`` through ``encoder``, resized to ``grid`` x ``grid``, from the cache or computed.

    ``precision``: the encoder's arithmetic, "fp32" (default: the same features on every machine),
    "bf16" (autocast) or "auto" (bf16 where the hardware has it natively, ``poslib.precision``).
    ``storage``: the stored dtype, "bf16" (half the disk and memory) or "fp32". ``limit`` stops
    after that many newly computed images (the cache stays resumable); used to split long runs
    and in tests.
    """
    check_storage(storage)
    if not items:
        raise ValueError("no images to encode")
    dev = pick_device(device)
    precision = resolve_precision(precision, dev)
    key = cache_key(encoder, items, size=size, precision=precision, grid=grid, storage=storage)
    folder = cache_root() / "features" / key
    n = len(items)
    meta = _read_meta(folder) if folder.exists() else None
    if folder.exists():
        why = _damage(folder, meta)
        if why is not None:
            warnings.warn(f"feature cache entry {folder} is damaged ({why}); recomputing it", stacklevel=2)
            shutil.rmtree(folder)
            meta = None
    if meta is None:
        folder.mkdir(parents=True, exist_ok=True)
        shape = [n, sum(encoder.tap_channels), grid, grid]
        meta = {"key": key, **encoder_identity(encoder), "size": size, "precision": precision, "storage": storage,
                "grid": grid, "n": n, "shape": shape, "channels": list(encoder.tap_channels),
                "batch_size": batch_size, "done": 0, "seconds": 0.0, "digests": []}
        atomic_write_text(folder / "items.txt", "\n".join(i.key for i in items) + "\n")
        _reserve(folder / "features.bin", _nbytes(meta))
        _write_meta(folder, meta)
    start, chunk = meta["done"], meta["batch_size"]  # resume with the batch size the run began with
    flat = _open(folder / "features.bin", meta, writable=start < n)
    data = _as_nchw(flat, meta["shape"])
    cache_counts["hits" if start >= n else "computed"] += 1
    if start < n:
        row = _nbytes(meta) // n // STORAGE[storage].itemsize
        encoder.to(dev)
        if dev.type == "cpu":
            encoder.to(memory_format=torch.channels_last)  # ~1.5x faster convolutions on the CPU
        stop = n if limit is None else min(n, start + limit)
        bar = progress_bar(total=stop - start, desc=f"features {encoder.name}", unit="img", progress=progress)
        t0 = time.perf_counter()
        for lo in range(start, stop, chunk):
            hi = min(lo + chunk, n)
            x = load_items(items[lo:hi], size).to(dev).contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                outs = encoder(x)
            c = 0
            for out in outs:  # (B, C_i, H_i, W_i) -> rows lo:hi, channels c:c+C_i
                out = out.float()
                if out.shape[-2:] != (grid, grid):
                    out = F.interpolate(out, (grid, grid), mode="bilinear", align_corners=True)
                data[lo:hi, c:c + out.shape[1]] = out.to(STORAGE[storage]).cpu()
                c += out.shape[1]
            meta["digests"].append([lo, hi, _chunk_digest(flat, row, lo, hi)])
            meta["done"] = hi
            cache_counts["images_encoded"] += hi - lo
            meta["seconds"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            _write_meta(folder, meta)
            bar.update(hi - lo)
            if hi >= stop:
                break
        bar.close()
        if meta["done"] == n:  # what this process wrote need not be checked again when reopened
            stat = (folder / "features.bin").stat()
            _verified.add((str(folder), stat.st_size, stat.st_mtime_ns, n))
    return FeatureSet(data=data, names=list(encoder.tap_names), channels=list(meta["channels"]),
                      keys=[i.key for i in items], folder=folder)


def is_complete(features: FeatureSet) -> bool:
    meta = _read_meta(features.folder)
    return meta is not None and meta["done"] == meta["n"]
