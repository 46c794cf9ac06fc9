"""Could other test images change a verdict? The scorecard re-judged on test sets resampled with replacement.

92 test photos stand in for PASCAL-S's 850. Each bootstrap replicate draws, per test set, as many
images as it has, with replacement (the same draw for every table that scores that test set),
recomputes every cell from the per-image results files (the mean over images per seed, then the
mean and sd over seeds and the images' standard error, failed read-outs left out) and judges every
claim again by the same rules. A verdict that holds in nearly every replicate does not hang on
which photos we happened to test on; one that flips in many does. Cells without per-image scores
(read-outs trained outside the grids) keep their values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .claims import CLAIMS, IMAGE_KEYS, _assess, _norm, load_results, with_per_image
from .stats import bootstrap_interval, seed_sd


def _draws(results: dict[str, pd.DataFrame], rng: np.random.Generator) -> dict[tuple[str, int], np.ndarray]:
    sizes = set()
    for t in results.values():
        shared = t.attrs.get("per_image")
        if shared is not None:
            n = shared.table.groupby("test_set").image.max() + 1
            sizes.update(n.items())
    return {(ts, int(n)): rng.integers(0, n, n) for ts, n in sorted(sizes)}


def _resample_images(per_image: pd.DataFrame, draws: dict[tuple[str, int], np.ndarray]) -> pd.DataFrame:
    """The per-image rows of the drawn images, renumbered 0..n-1 in draw order (an image drawn twice
    appears twice), so that pairing by image still pairs the same photo across settings."""
    parts = []
    for ts, rows in per_image.groupby("test_set", sort=False):
        n = int(rows.image.max()) + 1
        draw = draws[(ts, n)]
        pick = pd.DataFrame({"image": draw, "_j": np.arange(len(draw))})
        parts.append(rows.merge(pick, on="image").assign(image=lambda d: d.pop("_j")))
    return pd.concat(parts, ignore_index=True)


def _cells(per_image: pd.DataFrame, keys: list[str]) -> dict[tuple, dict]:
    kept = per_image[~per_image.failed.fillna(False).astype(bool)] if "failed" in per_image else per_image
    norm = kept[keys].apply(lambda col: col.map(_norm))
    per_seed = kept.assign(**{k: norm[k] for k in keys}).groupby([*keys, "seed"], dropna=False, sort=False).spc.agg(
        ["mean", "std", "count"]).reset_index()
    per_seed["se"] = per_seed["std"] / per_seed["count"] ** 0.5
    out = {}
    for key, g in per_seed.groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out[tuple(None if (isinstance(v, float) and v != v) else v for v in key)] = {
            "spc_mean": g["mean"].mean(), "spc_sd": seed_sd(g["mean"]), "spc_se_images": g["se"].mean()}
    if "encoder_seed" in kept:  # random controls: the sd over encoders of the per-encoder means
        enc = kept.assign(**{k: norm[k] for k in keys}).groupby([*keys, "encoder_seed"], dropna=False, sort=False).spc.mean()
        for key, g in enc.groupby(level=list(range(len(keys))), sort=False):
            key = key if isinstance(key, tuple) else (key,)
            key = tuple(None if (isinstance(v, float) and v != v) else v for v in key)
            if key in out:
                out[key]["encoder_sd"] = seed_sd(g)
    return out


def resample(results: dict[str, pd.DataFrame], rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """One bootstrap replicate of the section tables (see the module's docstring)."""
    draws = _draws(results, rng)
    out = {}
    for name, t in results.items():
        shared = t.attrs.get("per_image")
        if shared is None:
            out[name] = t
            continue
        boot = _resample_images(shared.table, draws)
        keys = [c for c in IMAGE_KEYS if c in t.columns and c in boot.columns]
        cells = _cells(boot, keys)
        new = t.copy()
        new.attrs = {}
        for i, row in zip(new.index, new[keys].itertuples(index=False)):
            values = cells.get(tuple(_norm(v) for v in row))
            if values is None:
                continue
            for col, v in values.items():
                if col in new.columns:
                    new.at[i, col] = v
        out[name] = with_per_image(new, boot)
    return out


def verdict_stability(results_dir: str | Path, *, n_boot: int = 200, seed: int = 0,
                      progress: bool = False) -> pd.DataFrame:
    """Per claim: its verdict, the share of bootstrap replicates (test images resampled) that give
    the same verdict, and the other verdicts seen with their shares."""
    from .progress import progress_bar

    results = load_results(results_dir)
    original = {c.key: _assess(c, results)[1] for c in CLAIMS}
    seen: dict[str, list[str]] = {k: [] for k in original}
    rng = np.random.default_rng(seed)
    for _ in progress_bar(range(n_boot), desc="bootstrap replicates", progress=progress):
        boot = resample(results, rng)
        for c in CLAIMS:
            seen[c.key].append(_assess(c, boot)[1])
    rows = []
    for c in CLAIMS:
        counts = pd.Series(seen[c.key]).value_counts(normalize=True)
        others = "; ".join(f"{v} {share:.0%}" for v, share in counts.items() if v != original[c.key])
        rows.append({"key": c.key, "section": c.section, "verdict": original[c.key],
                     "same_verdict": float(counts.get(original[c.key], 0.0)), "other_verdicts": others,
                     "n_boot": n_boot})
    return pd.DataFrame(rows)


HEADLINE = {"table1": {"encoder": "vgg16", "test_set": "photos"}, "table2": {"encoder": "vgg16", "test_set": "photos"},
            "table3": {"encoder": "vgg16", "test_set": "photos"}, "table4": {"test_set": "photos"}}


def headline_intervals(results_dir: str | Path, *, n_boot: int = 2000, seed: int = 0,
                       tables: Sequence[str] = tuple(HEADLINE)) -> pd.DataFrame:
    """Bootstrap 95% intervals over test images of the headline cells of Tables 1-4 (VGG16 on the
    test photos; Table 4 every encoder): one row per cell, with the seeds' mean."""
    results = load_results(results_dir)
    rows = []
    for name in tables:
        t = results.get(name)
        if t is None or t.attrs.get("per_image") is None:
            continue
        pi = t.attrs["per_image"].table
        pi = pi[~pi.failed.fillna(False).astype(bool)] if "failed" in pi else pi
        for k, v in HEADLINE[name].items():
            pi = pi[pi[k] == v]
        keys = [c for c in ("encoder", "weights", "pattern", "layers", "kernel", "padding", "taps") if c in pi]
        for key, g in pi.groupby(keys, dropna=False, sort=False):
            lo, hi = bootstrap_interval(g, n_boot=n_boot, seed=seed)
            rows.append({"table": name, **dict(zip(keys, key)), "spc_mean": g.groupby("seed").spc.mean().mean(),
                         "ci_low": lo, "ci_high": hi, "n_images": g.image.nunique()})
    return pd.DataFrame(rows)
