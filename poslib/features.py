"""The feature cache: every input goes through a frozen encoder once (Sec. 3.1's taps, resized to 28x28).

The encoder never changes while read-outs train, so the official code's habit of running it every
epoch, for every pattern and read-out, repeats the same computation hundreds of times. Here the taps
of an (encoder, weights, preprocessing, image set, input size, precision) are computed once, resized
to the read-out's grid, concatenated along channels (the read-out's input, Sec. 3.2) and stored as
one memory-mapped file under ``$POSLIB_CACHE/features/<key>/``.
Work is saved chunk by chunk: an interrupted run resumes where it stopped and ends with the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import ImageItem, load_items
from .encoders import Encoder
from .fetch import cache_root
from .train import pick_device

FORMAT_VERSION = 3  # bump when the stored layout or the resizing changes
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return precision


def encoder_identity(encoder: Encoder) -> dict:
    """What decides an encoder's outputs: architecture, weights (by checksum or seed), preprocessing."""
    p = encoder.provenance
    weights_id = p.get("file_sha256") or p.get("url") or (f"seed:{p['seed']}" if "seed" in p else p.get("source"))
    return {"encoder": encoder.name, "weights": encoder.weights, "weights_id": weights_id,
            "preprocess": encoder.preprocess.kind, "taps": encoder.tap_names}


def cache_key(encoder: Encoder, items: Sequence[ImageItem], *, size: int, precision: str, grid: int) -> str:
    """A digest of every input that decides the cached features."""
    spec = {"format": FORMAT_VERSION, **encoder_identity(encoder), "size": size, "precision": precision,
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


def _open(path: Path, shape: list[int], dtype: torch.dtype) -> torch.Tensor:
    """The file as an (N, C, H, W) tensor whose bytes are laid out (N, H, W, C): one image's
    features are contiguous, so a batch is a gather of whole rows and is born channels-last."""
    n, c, h, w = shape
    flat = torch.from_file(str(path), shared=True, size=n * c * h * w, dtype=dtype)
    return flat.view(n, h, w, c).permute(0, 3, 1, 2)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)  # atomic: the progress record is never half written


@torch.no_grad()
def compute_features(
    encoder: Encoder,
    items: Sequence[ImageItem],
    *,
    size: int = 224,
    precision: str = "bf16",
    grid: int = 28,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    progress: bool = True,
    limit: int | None = None,
) -> FeatureSet:
    """The taps of ``items`` through ``encoder``, resized to ``grid`` x ``grid``, from the cache or computed.

    ``precision``: "bf16" runs the encoder under bfloat16 autocast and stores bfloat16 features
    (half the disk and memory); "fp32" computes and stores float32. ``limit`` stops after that many
    newly computed images (the cache stays resumable); used to split long runs and in tests.
    """
    check_precision(precision)
    if not items:
        raise ValueError("no images to encode")
    dev = pick_device(device)
    key = cache_key(encoder, items, size=size, precision=precision, grid=grid)
    folder = cache_root() / "features" / key
    meta_path = folder / "meta.json"
    dtype = PRECISIONS[precision]
    n = len(items)
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
    else:
        folder.mkdir(parents=True, exist_ok=True)
        shape = [n, sum(encoder.tap_channels), grid, grid]
        meta = {"key": key, **encoder_identity(encoder), "size": size, "precision": precision, "grid": grid,
                "n": n, "shape": shape, "channels": list(encoder.tap_channels), "batch_size": batch_size,
                "done": 0, "seconds": 0.0}
        (folder / "items.txt").write_text("\n".join(i.key for i in items) + "\n")
        _write_json(meta_path, meta)
    data = _open(folder / "features.bin", meta["shape"], dtype)
    start, chunk = meta["done"], meta["batch_size"]  # resume with the batch size the run began with
    if start < n:
        encoder.to(dev)
        if dev.type == "cpu":
            encoder.to(memory_format=torch.channels_last)  # ~1.5x faster convolutions on the CPU
        stop = n if limit is None else min(n, start + limit)
        bar = tqdm(total=stop - start, desc=f"features {encoder.name}", unit="img", disable=not progress)
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
                data[lo:hi, c:c + out.shape[1]] = out.to(dtype).cpu()
                c += out.shape[1]
            meta["done"] = hi
            meta["seconds"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            _write_json(meta_path, meta)
            bar.update(hi - lo)
            if hi >= stop:
                break
        bar.close()
    return FeatureSet(data=data, names=list(encoder.tap_names), channels=list(meta["channels"]),
                      keys=[i.key for i in items], folder=folder)


def is_complete(features: FeatureSet) -> bool:
    meta = json.loads((features.folder / "meta.json").read_text())
    return meta["done"] == meta["n"]
