"""Input images: the official synthetic test inputs of Sec. 3.3 (black, white, noise) and image files
loaded as the official code does. The photo pool itself lives in ``photos``."""

from __future__ import annotations

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
    from PIL import Image
    from torchvision.transforms import functional as TF

    out = torch.empty(len(paths), 3, size, size)
    for i, p in enumerate(paths):
        with Image.open(p) as img:
            out[i] = TF.to_tensor(TF.resize(img.convert("RGB"), [size, size]))
    return out
