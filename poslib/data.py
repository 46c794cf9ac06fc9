"""Input images: the official synthetic test inputs of Sec. 3.3 (black, white, noise) and image files
loaded as the official code does. The photo pool itself lives in ``photos``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

SYNTHETIC: tuple[str, ...] = ("black", "white", "noise")
NOISE_MEAN = 25.0  # the official noise.jpg: values 0..200, mean ~25, std ~24 per channel
NOISE_MAX = 200.0


def synthetic_images(kind: str, n: int = 1, size: int = 224, seed: int = 0) -> torch.Tensor:
    """``n`` synthetic RGB images in [0, 1] (ToTensor scale): (n, 3, size, size), float32.

    ``noise`` draws each pixel from an exponential with mean 25 (so std ~25), clipped to 0..200
    and rounded to 8-bit levels like the official noise.jpg; the three channels share the value
    (the official file's channels correlate at 0.87). Seeded: the same seed gives the same images.
    """
    if kind not in SYNTHETIC:
        raise ValueError(f"unknown synthetic input {kind!r}; valid: {', '.join(SYNTHETIC)}")
    if not isinstance(n, int) or n < 1 or not isinstance(size, int) or size < 1:
        raise ValueError(f"n and size must be positive integers, got n={n!r}, size={size!r}")
    if kind == "black":
        return torch.zeros(n, 3, size, size)
    if kind == "white":
        return torch.ones(n, 3, size, size)
    gen = torch.Generator().manual_seed(seed)
    levels = torch.empty(n, 1, size, size).exponential_(1 / NOISE_MEAN, generator=gen)
    return levels.clamp_(0, NOISE_MAX).round_().div_(255).expand(n, 3, size, size).contiguous()


def load_images(paths, size: int = 224) -> torch.Tensor:
    """Image files as RGB tensors in [0, 1], (N, 3, size, size): the official loading steps
    (PIL, resize to size x size with bilinear antialiasing, ToTensor)."""
    return load_items([ImageItem(key=str(p), path=str(p)) for p in paths], size)


@dataclass(frozen=True)
class ImageItem:
    """One input image: a photo file (optionally a crop of it) or a seeded synthetic image.

    ``key`` is a stable identity (the photo's sha256 plus the crop, or the synthetic recipe): the
    feature cache is keyed by the keys of its items, never by file paths.
    """

    key: str
    path: str | None = None
    crop: tuple[float, float, float, float] | None = None  # (top, left, height, width), fractions of the image
    synthetic: tuple[str, int] | None = None  # (kind, seed)
    flip: str | None = None  # "vertical" (upside down) or "horizontal" (mirrored), applied after loading


FLIPS: tuple[str, ...] = ("vertical", "horizontal")


def flipped(items, flip: str) -> list[ImageItem]:
    """The same images flipped upside down ("vertical") or left-right ("horizontal"), with keys of
    their own: photos whose content carries position (sky above, ground below) lose that cue."""
    if flip not in FLIPS:
        raise ValueError(f"unknown flip {flip!r}; valid: {', '.join(FLIPS)}")
    return [ImageItem(key=f"{i.key}:flip-{flip}", path=i.path, crop=i.crop, synthetic=i.synthetic, flip=flip)
            for i in items]


def random_crop(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A crop covering 35-100% of the image area with aspect ratio 3/4..4/3, as fractions."""
    area = rng.uniform(0.35, 1.0)
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    h, w = float(min(1.0, np.sqrt(area / ratio))), float(min(1.0, np.sqrt(area * ratio)))
    return (round(float(rng.uniform(0, 1 - h)), 4), round(float(rng.uniform(0, 1 - w)), 4), round(h, 4), round(w, 4))


def crop_fraction(img, crop: tuple[float, float, float, float]):
    """The part of a PIL image given by a crop (top, left, height, width) in fractions of its size."""
    top, left, h, w = crop
    return img.crop((round(left * img.width), round(top * img.height),
                     round((left + w) * img.width), round((top + h) * img.height)))


def photo_items(table, crops_per_photo: int = 1, seed: int = 0) -> list[ImageItem]:
    """Items for the photos of a manifest (``photo_pool()`` or ``folder_images()`` rows).

    Crop 0 of every photo is the whole image (the official input); crops 1.. are random crops drawn
    from a generator seeded by the photo's identity and ``seed``, so they never depend on the order
    or number of photos.
    """
    if not isinstance(crops_per_photo, int) or crops_per_photo < 1:
        raise ValueError(f"crops_per_photo must be a positive integer, got {crops_per_photo!r}")
    items = []
    for row in table.itertuples():
        ident = getattr(row, "sha256", None) or row.photo_id
        items.append(ImageItem(key=f"photo:{ident}", path=row.path))
        rng = np.random.default_rng([seed, int(hashlib.sha256(str(ident).encode()).hexdigest()[:12], 16)])
        for _ in range(1, crops_per_photo):
            crop = random_crop(rng)
            items.append(ImageItem(key=f"photo:{ident}:crop{crop}", path=row.path, crop=crop))
    return items


def synthetic_items(kind: str, n: int = 1, seed: int = 0) -> list[ImageItem]:
    """Items for ``n`` synthetic images of ``kind``; image i of noise uses seed ``seed + i``."""
    if kind not in SYNTHETIC:
        raise ValueError(f"unknown synthetic input {kind!r}; valid: {', '.join(SYNTHETIC)}")
    seeds = [seed + i for i in range(n)] if kind == "noise" else [0] * n
    return [ImageItem(key=f"synthetic:{kind}:{s}:{i}", synthetic=(kind, s)) for i, s in enumerate(seeds)]


def to_rgb8(img):
    """A PIL image of any mode as 8-bit RGB. 16-bit, 32-bit and float greyscale ("I;16", "I", "F")
    are scaled from their range (0..65535 for 16 bit, else the smallest of 1, 255, 65535 or the
    maximum that holds the values) to 0..255; PIL's own convert("RGB") clips them, so a 16-bit PNG
    would load as pure white."""
    from PIL import Image

    if img.mode.startswith("I") or img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else next(
            (t for t in (1.0, 255.0, 65535.0) if a.max() <= t and (t > 1.0 or img.mode == "F")), float(a.max()))
        grey = np.clip(np.round(a / top * 255), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return img.convert("RGB")


def load_items(items, size: int = 224) -> torch.Tensor:
    """The items as RGB tensors in [0, 1], (N, 3, size, size), loaded as the official code does
    (any bit depth: see ``to_rgb8``)."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    out = torch.empty(len(items), 3, size, size)
    for i, item in enumerate(items):
        if item.synthetic is not None:
            kind, s = item.synthetic
            out[i] = synthetic_images(kind, 1, size=size, seed=s)[0]
        else:
            with Image.open(item.path) as img:
                img = to_rgb8(img)
                if item.crop is not None:
                    img = crop_fraction(img, item.crop)
                out[i] = TF.to_tensor(TF.resize(img, [size, size]))
        if item.flip is not None:
            out[i] = out[i].flip(-2 if item.flip == "vertical" else -1)
    return out
