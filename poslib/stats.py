"""The book's statistics, once: seed summaries, failed read-outs, paired differences, bootstrap intervals.

Conventions every table follows:
- a single seed has no spread: its sd is NaN ("no spread" in prose), never 0;
- a read-out that failed to train is kept out of a cell's mean and counted in ``n_failed``: its loss
  or scores are not finite, or its training went nowhere (``failed_readout``), or it stayed at a
  constant map's loss while another seed of the same cell learned (``mark_failed``); a read-out
  that trained but scores 0 (a constant map on a content-free input) is a result and stays in;
- two settings scored on the same test images are compared by their per-image differences
  (``paired_difference``), whose spread is far smaller than the two cells' spreads combined when
  the images, not the settings, carry most of the variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

NOISE_MULTIPLE = 2  # a difference counts when it exceeds twice its spread: the one noise rule of every verdict and sentence


def seed_sd(values: Sequence[float] | pd.Series) -> float:
    """Sample sd over seeds, missing values (failed read-outs) left out; NaN for fewer than two
    (one seed has no spread)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def without_failed(rows: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    """``rows`` with ``columns`` blanked (NaN) where a read-out failed, and the failed mask: a
    groupby then leaves failed read-outs out of every mean and sd yet keeps every setting."""
    failed = rows["failed"].fillna(False).astype(bool) if "failed" in rows else pd.Series(False, index=rows.index)
    blanked = rows.copy()
    for c in columns:
        if c in blanked:
            blanked[c] = blanked[c].where(~failed)
    return blanked.assign(_failed=failed.astype(int), _kept=(~failed).astype(int)), failed


def constant_map_loss(target: torch.Tensor) -> float:
    """MSE of the best constant map against ``target`` (its variance over pixels)."""
    return float(target.double().var(unbiased=False))


def failed_readout(final_loss: float, first_loss: float, spc_mean: float, constant_loss: float,
                   fraction: float = 0.99) -> bool:
    """A read-out failed when its loss or scores are not finite, or when training went nowhere: its
    final loss neither clearly below its first epoch's (``fraction`` of it) nor clearly below the
    best constant map's (the target's variance), so its SPC is noise from its init. A read-out with
    nothing to learn still moves from its init to a near-constant map (its loss falls) and is a
    result, as is one that trained and then meets a content-free test input (SPC 0): failure is
    judged on training, not on the test."""
    if not (math.isfinite(final_loss) and math.isfinite(spc_mean)):
        return True
    return final_loss >= fraction * first_loss and final_loss >= fraction * constant_loss


def mark_failed(rows: pd.DataFrame, cell: Sequence[str], fraction: float = 0.99) -> pd.DataFrame:
    """``rows`` (one per read-out and test set) with ``failed`` completed by the cell rule: a read-out
    whose final training loss stayed at a constant map's (not below ``fraction`` of it) failed when
    another read-out of the same ``cell`` (another seed) got clearly below it, for then the features
    held what its optimisation did not find. Where no read-out of a cell gets below (nothing to learn,
    as for PosENet alone on stripes) they are a result. Rows without losses are left as they are."""
    if not {"final_train_loss", "constant_map_loss"} <= set(rows.columns):
        return rows
    stuck = rows.final_train_loss >= fraction * rows.constant_map_loss
    learned = (~stuck).groupby([rows[c] for c in cell], dropna=False, sort=False).transform("any")
    own = rows["failed"].fillna(False).astype(bool) if "failed" in rows else False
    return rows.assign(failed=own | (stuck & learned))


def quadrature(*parts: float) -> float:
    """sqrt of the sum of squares of the known parts (NaN when none is known)."""
    known = [x for x in parts if x == x]
    return math.sqrt(sum(x * x for x in known)) if known else float("nan")


def direction(effect: float, spread: float) -> int:
    """+1 or -1 where ``effect`` lies beyond ``NOISE_MULTIPLE`` spreads of zero, 0 where it is within
    them or where the spread is unknown (NaN: one seed has no spread, so nothing can be said to count)."""
    if spread != spread or abs(effect) <= NOISE_MULTIPLE * spread:
        return 0
    return 1 if effect > 0 else -1


def beyond_noise(difference: float, spread_: float) -> bool:
    """The book's noise rule: |difference| > NOISE_MULTIPLE x spread (never, when the spread is unknown)."""
    return spread_ == spread_ and abs(difference) > NOISE_MULTIPLE * spread_


@dataclass(frozen=True)
class Paired:
    """``a`` minus ``b`` over the same test images and seeds."""

    difference: float  # mean over seeds of the mean per-image difference
    se_images: float  # sd of the per-image differences / sqrt(n images), averaged over seeds
    sd_seeds: float  # sd over seeds of the per-seed mean difference (NaN for one seed)
    n_images: int
    n_seeds: int

    @property
    def spread(self) -> float:
        """Seed sd and test-image SE of the difference in quadrature (a missing one counted as 0,
        NaN when both are missing), as the book's rule combines them."""
        return quadrature(self.sd_seeds, self.se_images)

    @property
    def counts(self) -> bool:
        return beyond_noise(self.difference, self.spread)

    def text(self) -> str:
        sp = self.spread
        return f"{self.difference:+.3f} (paired spread {sp:.3f})" if sp == sp else f"{self.difference:+.3f} (no spread)"


def paired_difference(per_image: pd.DataFrame, a: dict, b: dict, *, score: str = "spc") -> Paired:
    """``a`` minus ``b``, two settings of a per-image table (columns: the settings, ``seed``,
    ``test_set``, ``image``, ``spc``, ``mae``), paired by seed, test set and image. ``a`` and ``b``
    select rows by column values; failed read-outs (a ``failed`` column) are left out of both."""
    def pick(sel: dict) -> pd.Series:
        rows = per_image
        for k, v in sel.items():
            rows = rows[rows[k] == v]
        if rows.empty:
            raise KeyError(f"no per-image rows for {sel}")
        return image_scores(rows, score)
    return paired(pick(a) - pick(b))


def image_scores(rows: pd.DataFrame, score: str = "spc") -> pd.Series:
    """One setting's per-image scores indexed by (seed, test_set, image), failed read-outs left out."""
    if "failed" in rows:
        rows = rows[~rows.failed.fillna(False).astype(bool)]
    return rows.set_index(["seed", "test_set", "image"])[score]


def paired(differences: pd.Series) -> Paired:
    """The paired summary of per-image differences indexed by (seed, test_set, image): aligned
    differences of two settings' ``image_scores`` (pairs missing on either side are dropped)."""
    d = differences.dropna()
    if d.empty:
        raise KeyError("the two settings share no seed, test set and image")
    by_seed = d.groupby(level="seed")
    means = by_seed.mean()
    se = by_seed.apply(lambda x: x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else float("nan")).mean()
    return Paired(float(means.mean()), float(se), seed_sd(means), int(by_seed.size().iloc[0]), len(means))


def bootstrap_interval(per_image: pd.DataFrame, *, score: str = "spc", n_boot: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of a cell's mean score when its test images are resampled (the seeds'
    per-image scores averaged first, so an image is drawn with all its seeds)."""
    per = per_image.groupby("image")[score].mean().to_numpy()
    if len(per) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = per[rng.integers(0, len(per), size=(n_boot, len(per)))].mean(axis=1)
    lo = (1 - level) / 2
    return float(np.quantile(means, lo)), float(np.quantile(means, 1 - lo))


def summarize_seeds(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per setting (``by``): mean and sd over seeds of ``spc_mean`` (and ``mae_mean``), ``n_seeds``
    averaged and ``n_failed`` left out (rows with a true ``failed``), in the rows' order."""
    kept, _ = without_failed(rows, ["spc_mean", "mae_mean"])
    return kept.groupby(list(by), dropna=False, sort=False).agg(
        spc_mean=("spc_mean", "mean"), spc_sd=("spc_mean", seed_sd), mae_mean=("mae_mean", "mean"),
        n_seeds=("_kept", "sum"), n_failed=("_failed", "sum")).reset_index()


def pm(mean: float, sd: float, digits: int = 3) -> str:
    """``mean ± sd`` for a table cell; a missing sd (one seed) reads "no spread", never ± 0."""
    if mean != mean:
        return "n/a"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if sd == sd else f"{mean:.{digits}f} (no spread)"


def paired_changes(per_image: pd.DataFrame, base: dict, other: dict, patterns: Sequence[str]) -> pd.DataFrame:
    """Per pattern, ``other`` minus ``base`` (settings selected by column values), paired by seed,
    test set and image: the change, its paired spread and whether it lies beyond the noise."""
    rows = []
    for p in patterns:
        d = paired_difference(per_image, {**other, "pattern": p}, {**base, "pattern": p})
        rows.append({"pattern": p, "change": d.difference, "spread": d.spread, "counts": d.counts,
                     "n_images": d.n_images, "n_seeds": d.n_seeds})
    return pd.DataFrame(rows)


def changes_sentence(changes: pd.DataFrame, verb: str = "increases") -> str:
    """'increases it beyond the noise for 2 of 3 patterns (H +0.070 ± 0.010, ...; G +0.004 ± 0.006
    within it)' from ``paired_changes``' table."""
    up = changes[changes.counts & (changes.change > 0)]
    down = changes[changes.counts & (changes.change < 0)]
    flat = changes[~changes.counts]
    fmt = lambda t: ", ".join(f"{r.pattern} {r.change:+.3f} ± {r.spread:.3f}" for r in t.itertuples())  # noqa: E731
    text = f"{verb} it beyond the noise (paired over test images and seeds) for {len(up)} of {len(changes)} patterns"
    parts = [fmt(up)] if len(up) else []
    if len(down):
        parts.append(f"lowers it for {fmt(down)}")
    if len(flat):
        parts.append(f"{fmt(flat)} within the noise")
    return text + (f" ({'; '.join(parts)})" if parts else "")
