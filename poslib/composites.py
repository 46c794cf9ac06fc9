"""Images with exact masks for Section 4.2: real photo cut-outs pasted on real background photos.

Each composite is a random crop of a pool photo (``photos.photo_pool``) with 1-3 cut-outs
(``stamps.stamp_table``) pasted on it, alpha-blended. The label map is exact: a pixel belongs to the
topmost object whose alpha there is at least one half, else to the background (label 0). The
saliency mask is ``labels > 0``; the segmentation target is ``labels`` itself.

Where objects go matters here: real saliency datasets put most objects near the centre, which is
itself a position cue. ``centre_bias`` sets the share of images whose objects are drawn around the
centre; the others place each object uniformly over every position where it fits.
``position_summary`` reports what came out.

Everything is a function of the spec and the seed (one generator per image), cached as one .npz.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from .data import ImageItem, crop_fraction, random_crop
from .files import atomic_write, atomic_write_text
from .fetch import cache_root
from .photos import photo_pool
from .progress import progress_bar
from .stamps import CLASS_NAMES, stamp_table

COMPOSITES_VERSION = 1  # bump when the construction changes meaning
SPLITS = ("train", "test")


@dataclass(frozen=True)
class CompositeSpec:
    """How to build a set of composites; train and test sets differ in ``split`` (disjoint photos
    and disjoint cut-outs)."""

    n: int
    split: str = "train"
    size: int = 224
    seed: int = 0
    objects: tuple[int, int] = (1, 3)  # objects per image, inclusive range
    scale: tuple[float, float] = (0.25, 0.6)  # an object's longer side, as a fraction of the image side
    centre_bias: float = 0.5  # share of images whose objects sit around the centre (the rest: uniform)
    centre_sd: float = 0.12  # spread of centre-biased object centres, as a fraction of the image side

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; valid: {', '.join(SPLITS)}")
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be a positive integer, got {self.n!r}")
        if not isinstance(self.size, int) or self.size < 32:
            raise ValueError(f"size must be an integer >= 32, got {self.size!r}")
        lo, hi = self.objects
        if not 1 <= lo <= hi:
            raise ValueError(f"objects must be a range (lo, hi) with 1 <= lo <= hi, got {self.objects!r}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < lo <= hi <= 1, got {self.scale!r}")
        if not 0 <= self.centre_bias <= 1:
            raise ValueError(f"centre_bias must be in [0, 1], got {self.centre_bias!r}")


@dataclass
class Composites:
    """``images`` (N, S, S, 3) uint8, ``labels`` (N, S, S) uint8 (0 background, else class label),
    ``objects``: one row per pasted object (image, stamp, class, box, placement)."""

    spec: CompositeSpec
    images: np.ndarray
    labels: np.ndarray
    objects: pd.DataFrame
    key: str  # identity of the set (spec, photos, cut-outs): names its cache file

    def __len__(self) -> int:
        return len(self.images)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as float RGB in [0, 1] (N, 3, S, S) and labels as int64 (N, S, S)."""
        images = torch.from_numpy(self.images).permute(0, 3, 1, 2).float().div_(255)
        return images, torch.from_numpy(self.labels).long()

    @property
    def saliency(self) -> np.ndarray:
        """Binary object masks (N, S, S), bool."""
        return self.labels > 0


def _paste(canvas: np.ndarray, labels: np.ndarray, stamp: Image.Image, label: int, x0: int, y0: int) -> None:
    rgba = np.asarray(stamp, dtype=np.float32)
    h, w = rgba.shape[:2]
    alpha = rgba[..., 3:] / 255
    region = canvas[y0:y0 + h, x0:x0 + w]
    region[:] = alpha * rgba[..., :3] + (1 - alpha) * region
    labels[y0:y0 + h, x0:x0 + w][alpha[..., 0] >= 0.5] = label


def _one(spec: CompositeSpec, index: int, backgrounds: list[str], stamps: pd.DataFrame,
         classes: list[str]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    rng = np.random.default_rng([spec.seed, SPLITS.index(spec.split), index])
    s = spec.size
    with Image.open(backgrounds[rng.integers(len(backgrounds))]) as img:
        img = img.convert("RGB")
        img = crop_fraction(img, random_crop(rng))
        canvas = np.asarray(img.resize((s, s), Image.Resampling.BILINEAR), dtype=np.float32).copy()
    labels = np.zeros((s, s), np.uint8)
    placement = "centre" if rng.random() < spec.centre_bias else "uniform"
    rows = []
    for k in range(rng.integers(spec.objects[0], spec.objects[1] + 1)):
        cls = classes[rng.integers(len(classes))]  # classes equally often, whatever their stamp counts
        members = stamps[stamps["class"] == cls]
        row = members.iloc[rng.integers(len(members))]
        longer = rng.uniform(*spec.scale) * s
        with Image.open(row.path) as st:
            f = longer / max(st.size)
            stamp = st.convert("RGBA").resize((max(1, round(st.width * f)), max(1, round(st.height * f))),
                                              Image.Resampling.LANCZOS)
        if rng.random() < 0.5:
            stamp = stamp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        w, h = stamp.size
        if placement == "uniform":
            x0, y0 = rng.integers(0, s - w + 1), rng.integers(0, s - h + 1)
        else:
            cx, cy = rng.normal(s / 2, spec.centre_sd * s, size=2)
            x0 = int(np.clip(round(cx - w / 2), 0, s - w))
            y0 = int(np.clip(round(cy - h / 2), 0, s - h))
        _paste(canvas, labels, stamp, int(row.label), int(x0), int(y0))
        rows.append({"image": index, "order": k, "stamp_id": row.stamp_id, "class": cls, "label": int(row.label),
                     "x0": int(x0), "y0": int(y0), "width": w, "height": h,
                     "cx": (x0 + w / 2) / s, "cy": (y0 + h / 2) / s, "placement": placement})
    return np.clip(canvas.round(), 0, 255).astype(np.uint8), labels, rows


def _key(spec: CompositeSpec, backgrounds: list[str], stamps: pd.DataFrame) -> str:
    ident = {"version": COMPOSITES_VERSION, "spec": asdict(spec),
             "backgrounds": hashlib.sha256("\n".join(backgrounds).encode()).hexdigest(),
             "stamps": hashlib.sha256("\n".join(stamps.sha256 + stamps["class"]).encode()).hexdigest()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def make_composites(spec: CompositeSpec, *, progress: bool = True) -> Composites:
    """The composites of ``spec``: built once (progress bar), then loaded from the cache."""
    pool = photo_pool().sort_values("sha256")
    backgrounds = list(pool.loc[pool.split == spec.split, "path"])
    stamps = stamp_table().sort_values("sha256")
    stamps = stamps[stamps.split == spec.split]
    classes = sorted(stamps["class"].unique(), key=CLASS_NAMES.index)
    key = _key(spec, [Path(b).name for b in backgrounds], stamps)
    path = cache_root() / "composites" / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            images, labels = z["images"], z["labels"]
        objects = pd.read_csv(path.with_suffix(".csv"))
        return Composites(spec, images, labels, objects, key)
    images = np.empty((spec.n, spec.size, spec.size, 3), np.uint8)
    labels = np.empty((spec.n, spec.size, spec.size), np.uint8)
    rows = []
    for i in progress_bar(range(spec.n), desc=f"composites ({spec.split})", unit="img", progress=progress):
        images[i], labels[i], r = _one(spec, i, backgrounds, stamps, classes)
        rows += r
    objects = pd.DataFrame(rows)
    atomic_write_text(path.with_suffix(".csv"), objects.to_csv(index=False))
    def save(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.savez would append ".npz" to a temp name
            np.savez_compressed(f, images=images, labels=labels)

    atomic_write(path, save)  # last: a cache entry exists only when complete
    return Composites(spec, images, labels, objects, key)


def position_summary(comp: Composites) -> dict:
    """Where the objects are: the mean object mask, and how much object area lies in the central
    ninth of the image (a third of each side) compared with the 1/9 of uniformly spread area."""
    mask = comp.saliency
    s = comp.spec.size
    c = slice(s // 3, s - s // 3)
    area = mask.sum()
    return {"mean_mask": mask.mean(axis=0), "object_fraction": float(mask.mean()),
            "central_share": float(mask[:, c, c].sum() / max(area, 1)),
            "central_area": float(((s - 2 * (s // 3)) / s) ** 2),
            "by_placement": comp.objects.placement.value_counts().to_dict()}


def as_items(comp: Composites, n: int | None = None) -> list[ImageItem]:
    """The first ``n`` composites (all by default) as image items, so that encoders' features of them
    go through the feature cache like any photo's: each is written once as a lossless PNG beside
    the set's cache file and keyed by the set's identity and its index."""
    folder = cache_root() / "composites" / f"{comp.key}-png"
    items = []
    for i in range(len(comp) if n is None else min(n, len(comp))):
        path = folder / f"{i:05d}.png"
        if not path.exists():
            image = Image.fromarray(comp.images[i])
            atomic_write(path, lambda tmp, im=image: im.save(tmp, format="PNG"))
        items.append(ImageItem(key=f"composite:{comp.key}:{i}", path=str(path)))
    return items


def region_losses(loss: torch.Tensor, labels: torch.Tensor, *, band: int = 22, adjust: bool = False) -> pd.DataFrame:
    """Per composite, the mean of a per-pixel loss (N, S, S) inside its objects and on its
    background, and within ``band`` pixels of the image border and farther in.

    ``adjust``: first subtract, at every pixel, the loss averaged over all composites there, so that
    objects are compared with background *at the same places*: objects sit nearer the centre than
    the background does, and a read-out's error depends on where a pixel is."""
    if adjust:
        loss = loss - loss.mean(0, keepdim=True)
    masks = labels > 0
    edge = torch.zeros(loss.shape[-2:], dtype=torch.bool)
    edge[:band], edge[-band:], edge[:, :band], edge[:, -band:] = True, True, True, True

    def mean_where(m: torch.Tensor) -> torch.Tensor:
        m = m.expand_as(loss).float()
        return (loss * m).sum((1, 2)) / m.sum((1, 2)).clamp_min(1)

    return pd.DataFrame({"image": range(len(loss)), "objects": mean_where(masks).numpy(),
                         "background": mean_where(~masks).numpy(), "border": mean_where(edge).numpy(),
                         "interior": mean_where(~edge).numpy(), "object_share": masks.float().mean((1, 2)).numpy()})


def region_sentence(regions: pd.DataFrame, compare: str = "objects - background") -> str:
    """Per encoder, the loss in the two regions and their paired difference over composites, with
    whether it lies beyond the noise rule (``regions``: the case study's region table)."""
    parts = []
    for r in regions[regions["comparison"] == compare].itertuples():
        a, b = compare.split(",")[0].split(" - ")
        beyond = "beyond the noise" if r.counts else "within the noise"
        parts.append(f"{r.encoder}: {a} {r.loss_a:.3f}, {b} {r.loss_b:.3f}, difference {r.difference:+.3f} "
                     f"± {r.se_images:.3f} over {r.n_images} composites ({beyond})")
    return "; ".join(parts) or "(no composites measured)"
