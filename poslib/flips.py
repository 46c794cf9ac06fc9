"""Content or position? The existence page's read-outs scored on the test photos flipped (beyond the paper).

PosENet alone reads V from photos (SPC about .29): photos carry position in their content (sky above,
ground below). If a read-out's score comes from such content, turning the test photos upside down
reverses it; if it comes from the network's own sense of position (zero padding), the score stays.
The read-outs are trained once, exactly as Table 1's (same data, seeds and batches), and scored on
the photos as they are, flipped upside down ("vertical") and mirrored ("horizontal").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from .claims import NOISE_MULTIPLE
from .data import FLIPS, flipped
from .experiment import DataSets, ReadoutSpec, run_grid, summarize
from .profiles import Profile

COLUMNS = ["encoder", "weights", "flip", "pattern", "test_set", "spc_mean", "spc_sd", "n_seeds", "n_images", "spc_se_images"]


def run(encoders: Sequence[tuple[str, str]], *, data: DataSets, profile: Profile, patterns: Sequence[str],
        device: str | torch.device | None = None, store: Path | None = None, progress: bool = True) -> pd.DataFrame:
    """SPC of each encoder's Table 1 read-outs on the test photos as they are and flipped: one row
    per encoder, flip ("none", "vertical", "horizontal") and pattern."""
    photos = data.tests["photos"]
    tests = {"photos": photos, **{f"photos flipped {f}": flipped(photos, f) for f in FLIPS}}
    flip_data = DataSets(data.train, tests, data.description)
    parts = []
    for encoder, weights in encoders:
        grid = run_grid(encoder, weights=weights, patterns=patterns, readouts=[ReadoutSpec()],
                        seeds=list(range(profile.seeds)), data=flip_data, profile=profile, device=device, store=store,
                        progress=progress)
        s = summarize(grid.table)
        s["flip"] = s.test_set.map(lambda t: t.rsplit(" ", 1)[1] if t.startswith("photos flipped") else "none")
        parts.append(s.assign(test_set="photos"))
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def changes(table: pd.DataFrame) -> pd.DataFrame:
    """Per encoder, pattern and flip: SPC flipped minus as-is, its spread (seed sds and the test
    images' standard errors in quadrature) and its direction by the book's noise rule."""
    key = ["encoder", "weights", "pattern"]
    base = table[table.flip == "none"].set_index(key)
    rows = []
    for flip in FLIPS:
        other = table[table.flip == flip].set_index(key)
        d = other.spc_mean - base.spc_mean
        spread = (other.spc_sd.fillna(0) ** 2 + base.spc_sd.fillna(0) ** 2 + other.spc_se_images.fillna(0) ** 2
                  + base.spc_se_images.fillna(0) ** 2) ** 0.5
        rows.append(pd.DataFrame({"flip": flip, "as_is": base.spc_mean, "flipped": other.spc_mean, "change": d,
                                  "spread": spread, "counts": d.abs() > NOISE_MULTIPLE * spread}))
    return pd.concat(rows).reset_index()


def sentence(table: pd.DataFrame, encoder: str, weights: str) -> str:
    """What flipping does to one encoder's read-outs, pattern by pattern, from the numbers."""
    c = changes(table)
    c = c[(c.encoder == encoder) & (c.weights == weights)]
    parts = []
    for flip in FLIPS:
        f = c[c.flip == flip]
        moved = [f"{r.pattern} {r.as_is:.3f} -> {r.flipped:.3f}" for r in f.itertuples() if r.counts]
        still = [r.pattern for r in f.itertuples() if not r.counts]
        parts.append(f"{flip}ly flipped, " + ("; ".join(moved) + " (beyond the noise)" if moved else "no pattern moves")
                     + (f", {', '.join(still)} within the noise" if moved and still else ""))
    return "; ".join(parts)
