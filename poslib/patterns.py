"""The five position-only target maps of Sec. 3.2 (Fig. 2 of the paper).

The official code loads 256x256 PNGs; here they are generated analytically at any size, defined
as the released files are (``tests/test_patterns.py`` checks the match):

- ``H``: horizontal gradient, value = x (column).
- ``V``: vertical gradient, value = y (row).
- ``G``: centred 2-D Gaussian with sigma = half the width; after min-max scaling the corners are 0.
- ``HS``: horizontal stripes, a cosine along y with 2.5 cycles per image, sampled at pixel centres.
- ``VS``: vertical stripes, the same cosine along x.

Every map is min-max normalised to [0, 1], as the official loader does after resizing.
"""

from __future__ import annotations

import math

import torch

PATTERNS: tuple[str, ...] = ("H", "V", "G", "HS", "VS")
STRIPE_CYCLES = 2.5  # cycles per image side in the released stripe PNGs (period 102.4 px at 256)
SAMPLES_PER_CYCLE = 4  # fewer samples per stripe period alias the cosine into another pattern
MIN_SIZE = {"H": 2, "V": 2, "G": 3, "HS": math.ceil(SAMPLES_PER_CYCLE * STRIPE_CYCLES),
            "VS": math.ceil(SAMPLES_PER_CYCLE * STRIPE_CYCLES)}  # G at 2 px is flat: its four pixels are corners


def _minmax(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min()) / (x.max() - x.min())


def check_pattern(name: str) -> str:
    """Return ``name`` if it is a known pattern, else raise ValueError naming the valid ones."""
    if name not in PATTERNS:
        raise ValueError(f"unknown pattern {name!r}; valid patterns: {', '.join(PATTERNS)}")
    return name


def make_pattern(name: str, size: int = 224) -> torch.Tensor:
    """The target map ``name`` as a float32 tensor of shape (size, size), values in [0, 1]."""
    check_pattern(name)
    if not isinstance(size, int) or isinstance(size, bool) or size < MIN_SIZE[name]:
        raise ValueError(f"pattern {name} needs an integer size >= {MIN_SIZE[name]} (smaller maps are flat or "
                         f"aliased), got {size!r}")
    # Pixel-centre coordinates in (0, 1): the released stripes are sampled at i + 0.5.
    c = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    y, x = torch.meshgrid(c, c, indexing="ij")  # (size, size) each
    if name == "H":
        m = x
    elif name == "V":
        m = y
    elif name == "G":
        sigma = 0.5  # half the width, in units of the image side
        m = torch.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / (2 * sigma**2))
    elif name == "HS":
        m = torch.cos(2 * math.pi * STRIPE_CYCLES * y)
    else:  # "VS"
        m = torch.cos(2 * math.pi * STRIPE_CYCLES * x)
    return _minmax(m).to(torch.float32)
