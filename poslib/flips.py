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

from .data import FLIPS, flipped
from .experiment import DataSets, ReadoutSpec, per_image_table, run_grid, summarize
from .profiles import Profile
from .stats import NOISE_MULTIPLE, image_scores, paired

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
        parts.append(_paired_changes(s.assign(test_set="photos"), per_image_table([grid])))
    return pd.concat(parts, ignore_index=True)[COLUMNS + ["change", "change_spread"]]


def _paired_changes(table: pd.DataFrame, per_image: pd.DataFrame) -> pd.DataFrame:
    """Each flipped row's change from the photos as they are, paired by seed and photo (the same
    photo, flipped or not, under the same read-out)."""
    def scores(pattern: str, test_set: str) -> pd.Series:
        rows = per_image[(per_image.pattern == pattern) & (per_image.test_set == test_set)].assign(test_set="photos")
        return image_scores(rows)
    change, spread = [], []
    for r in table.itertuples():
        if r.flip == "none":
            change.append(float("nan"))
            spread.append(float("nan"))
            continue
        try:
            d = paired(scores(r.pattern, f"photos flipped {r.flip}") - scores(r.pattern, "photos"))
        except KeyError:  # its read-outs failed: nothing to pair
            change.append(float("nan"))
            spread.append(float("nan"))
            continue
        change.append(d.difference)
        spread.append(d.spread)
    return table.assign(change=change, change_spread=spread)


def changes(table: pd.DataFrame) -> pd.DataFrame:
    """Per encoder, pattern and flip: SPC flipped minus as-is, its spread (paired by seed and photo
    where the table has it, else the seed sds and the test images' standard errors in quadrature)
    and whether it counts by the book's noise rule."""
    key = ["encoder", "weights", "pattern"]
    base = table[table.flip == "none"].set_index(key)
    rows = []
    for flip in FLIPS:
        other = table[table.flip == flip].set_index(key)
        d = other.spc_mean - base.spc_mean
        spread = (other.spc_sd.fillna(0) ** 2 + base.spc_sd.fillna(0) ** 2 + other.spc_se_images.fillna(0) ** 2
                  + base.spc_se_images.fillna(0) ** 2) ** 0.5
        if "change_spread" in other:
            spread = other.change_spread.fillna(spread)
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
