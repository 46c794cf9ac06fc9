"""Where in the image position is read: error against the distance to the border, and the shift of
a saliency map when only the image's borders move (beyond the paper; its Fig. 1 made measurable).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch


def border_distance(height: int, width: int) -> torch.Tensor:
    """(height, width) map of each pixel's distance, in pixels, to the nearest image edge (0 on the edge)."""
    y = torch.arange(height).view(-1, 1)
    x = torch.arange(width).view(1, -1)
    return torch.minimum(torch.minimum(y, height - 1 - y), torch.minimum(x, width - 1 - x))


def error_by_distance(errors: torch.Tensor, *, band: int = 8) -> pd.DataFrame:
    """Mean of per-pixel ``errors`` (N, H, W) in bands of ``band`` pixels of distance to the border:
    one row per band (``distance``: the band's first pixel) with the mean and the sd over images."""
    if errors.dim() != 3:
        raise ValueError(f"errors must be (N, H, W), got shape {tuple(errors.shape)}")
    if not isinstance(band, int) or band < 1:
        raise ValueError(f"band must be a positive integer, got {band!r}")
    which = border_distance(*errors.shape[-2:]) // band
    rows = []
    for b in range(int(which.max()) + 1):
        per_image = errors[:, which == b].float().mean(1)
        rows.append({"distance": b * band, "error_mean": per_image.mean().item(),
                     "error_sd": per_image.std().item() if len(per_image) > 1 else 0.0, "n_images": len(per_image)})
    return pd.DataFrame(rows)


def centre_of_mass(maps: torch.Tensor) -> torch.Tensor:
    """(N, 2) centre of mass (row, column) of non-negative maps (N, H, W), in pixels."""
    maps = maps.float().clamp_min(0)
    total = maps.sum((-2, -1)).clamp_min(1e-12)
    rows = torch.arange(maps.shape[-2], dtype=maps.dtype)
    cols = torch.arange(maps.shape[-1], dtype=maps.dtype)
    return torch.stack([(maps.sum(-1) * rows).sum(-1) / total, (maps.sum(-2) * cols).sum(-1) / total], dim=1)


def corner_crops(masks: torch.Tensor, size: int) -> list[tuple[int, int, int]]:
    """(image, top, left) of every ``size`` x ``size`` window at a corner of an image that holds the
    whole object of ``masks`` (N, H, W) (non-zero pixels): the object stays in view, the borders move."""
    n, h, w = masks.shape
    if not 0 < size < min(h, w):
        raise ValueError(f"crop size must be between 1 and {min(h, w) - 1}, got {size}")
    out = []
    for i in range(n):
        ys, xs = torch.nonzero(masks[i] > 0, as_tuple=True)
        if not len(ys):
            continue
        for top in (0, h - size):
            for left in (0, w - size):
                if top <= ys.min() and ys.max() < top + size and left <= xs.min() and xs.max() < left + size:
                    out.append((i, top, left))
    return out


def crop_shift(full: torch.Tensor, cropped: Sequence[torch.Tensor], crops: Sequence[tuple[int, int, int]]) -> pd.DataFrame:
    """How far the saliency centre of mass moves towards a crop's centre when the image is cropped.

    ``full``: (N, H, W) saliency of the whole images; ``cropped[k]``: (s, s) saliency of crop
    ``crops[k] = (image, top, left)``, predicted from the crop alone. The reference is the whole
    image's saliency over the same window (the same pixels in view), so a network that reads only
    content moves by 0; ``shift``: pixels towards the crop's centre (negative: away), ``distance``:
    how far the reference centre lay from the crop's centre."""
    rows = []
    for (i, top, left), crop_map in zip(crops, cropped):
        s = crop_map.shape[-1]
        window = full[i, top:top + s, left:left + s]
        ref, moved = centre_of_mass(window[None])[0], centre_of_mass(crop_map[None])[0]
        towards = torch.tensor([(s - 1) / 2, (s - 1) / 2]) - ref
        distance = towards.norm().item()
        shift = float((moved - ref) @ towards / distance) if distance > 0 else 0.0
        rows.append({"image": i, "top": top, "left": left, "shift": shift, "distance": distance,
                     "moved": (moved - ref).norm().item()})
    return pd.DataFrame(rows)


def mirror_asymmetry(maps: torch.Tensor, dim: int) -> float:
    """sum |f - flip(f)| / sum |f - mean f| of maps (..., H, W) flipped along ``dim`` (-1: left-right,
    -2: top-bottom): 0 for mirror-symmetric maps; "Mind the Pad"'s question for inputs of 2^n + 1."""
    centred = maps - maps.mean(dim=(-2, -1), keepdim=True)
    return float((maps - maps.flip(dim)).abs().sum() / centred.abs().sum().clamp_min(1e-12))
