"""The padding-modes page (beyond the paper): its encoders, its table look-ups and its sentences.

Serves ``notebooks/06b_padding_modes.ipynb``. The experiments themselves run through the library's
grid engine (``experiment.run_grid``), read-out training (``train``) and task networks (``tasks``).
"""

from __future__ import annotations

import math

import pandas as pd

from .stats import NOISE_MULTIPLE, direction
from .encoders import Encoder, build_encoder


def vgg16_padded(weights: str, mode: str, *, seed: int = 0) -> Encoder:
    """VGG16 (``weights``: "imagenet" or "random" drawn with ``seed``) with every conv padding in ``mode``.

    "none" is the padding page's ``vgg16_nopad`` (the same network, so its cached features are shared)."""
    if mode == "none":
        return build_encoder("vgg16_nopad", weights, seed=seed)
    return build_encoder("vgg16", weights, seed=seed, padding_mode=mode)


def mode_cell(table: pd.DataFrame, experiment: str, weights: str, mode: str, test_sets: list[str], *,
              padding: int | None = None, pattern: str | None = None) -> tuple[float, float]:
    """(mean SPC, mean seed sd) of the padding-modes table's cells that match; (nan, nan) if none do.

    ``table`` has one row per (experiment, weights, padding_mode, padding, pattern, test_set) with
    ``spc_mean`` and ``spc_sd`` over read-out seeds; rows are averaged over patterns and test sets
    unless ``pattern`` picks one."""
    part = table[(table.experiment == experiment) & (table.weights == weights) & (table.padding_mode == mode)
                 & table.test_set.isin(test_sets)]
    if padding is not None:
        part = part[part.padding == padding]
    if pattern is not None:
        part = part[part.pattern == pattern]
    if not len(part):
        return math.nan, math.nan
    return float(part.spc_mean.mean()), float(part.spc_sd.mean())


MODE_LABELS = {"zeros": "zero padding", "reflect": "reflect padding", "replicate": "replicate padding",
               "circular": "circular padding", "partial": "partial convolution", "none": "no padding",
               "full": "full convolution"}
WEIGHTS_LABELS = {"imagenet": "ImageNet", "random": "random"}


def versus(a: tuple[float, float], b: tuple[float, float], reference: str) -> str:
    """'d above/below <reference> b, beyond/within twice the combined spread (s)' for two (mean, sd)
    pairs: the page's sentences state a direction only with the noise rule that decides whether it counts."""
    d, spread = a[0] - b[0], math.hypot(a[1], b[1])
    head = f"{abs(d):.3f} {'above' if d > 0 else 'below'} {reference} {b[0]:.3f}"
    if spread != spread:
        return f"{head} (one seed: no spread, so not judged)"
    noise = "within" if direction(d, spread) == 0 else "beyond"
    times = {2: "twice"}.get(NOISE_MULTIPLE, f"{NOISE_MULTIPLE}x")
    return f"{head}, {noise} {times} the combined spread ({spread:.3f})"


def score_cell(task_table: pd.DataFrame, mode: str, score: str) -> tuple[float, float]:
    """(mean, sd over seeds) of a saliency network's ``score`` ("fmeasure", "mae", "mae_border",
    "mae_interior") with padding ``mode``, from the page's per-mode table."""
    row = task_table.set_index("padding_mode").loc[mode]
    return float(row[f"{score}_mean"]), float(row[f"{score}_sd"])
