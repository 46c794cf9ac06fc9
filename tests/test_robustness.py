"""Verdicts re-judged on resampled test images: a large effect holds, one carried by a few images does not."""

import numpy as np
import pandas as pd
import pytest

from poslib.experiment import summarize
from poslib.robustness import headline_intervals, resample, verdict_stability
from poslib.claims import load_results
from poslib.paper import TABLE1, TEST_SETS


def _write_table1(folder, vgg_spc) -> None:
    """A Table 1 of VGG16 against PosENet alone on 40 test photos, 3 seeds, with its per-image file."""
    rng = np.random.default_rng(0)
    rows = []
    for enc, weights, spc in (("vgg16", "imagenet", vgg_spc), ("none", "none", np.zeros(40))):
        for p in ("H", "V", "G"):
            for s in range(3):
                rows.append(pd.DataFrame({"encoder": enc, "weights": weights, "pattern": p, "layers": 1, "kernel": 3,
                                          "padding": 0, "taps": "all", "seed": s, "test_set": "photos",
                                          "image": range(40), "spc": spc + rng.normal(0, 0.01, 40), "mae": 0.2,
                                          "failed": False}))
    per_image = pd.concat(rows, ignore_index=True)
    per_seed = per_image.groupby(["encoder", "weights", "pattern", "layers", "kernel", "padding", "taps", "seed",
                                  "test_set"], sort=False).agg(spc_mean=("spc", "mean"), spc_sd=("spc", "std"),
                                                               mae_mean=("mae", "mean"), n_images=("image", "size"),
                                                               failed=("failed", "any")).reset_index()
    table = summarize(per_seed)
    table["paper_spc"] = [TABLE1[e][p][TEST_SETS.index("photos")][0] if e in TABLE1 else np.nan
                          for e, p in zip(table.encoder, table.pattern)]
    (folder / "per_image").mkdir(parents=True)
    table.to_csv(folder / "table1.csv", index=False)
    per_image.to_csv(folder / "per_image" / "table1.csv", index=False)


def test_a_large_effect_keeps_its_verdict_on_every_resampled_test_set(tmp_path):
    _write_table1(tmp_path, np.full(40, 0.8))
    v = verdict_stability(tmp_path, n_boot=20).set_index("key")
    assert v.loc["existence", "verdict"] == "reproduced" and v.loc["existence", "same_verdict"] == 1.0


def test_an_effect_carried_by_three_photos_flips_on_some_resampled_test_sets(tmp_path):
    spc = np.zeros(40)
    spc[:3] = 1.0  # three photos carry the whole effect, the rest none
    _write_table1(tmp_path, spc)
    v = verdict_stability(tmp_path, n_boot=40).set_index("key")
    assert 0.0 < v.loc["existence", "same_verdict"] < 1.0


def test_a_resampled_table_recomputes_its_cells_from_the_drawn_images(tmp_path):
    spc = np.linspace(0, 1, 40)
    _write_table1(tmp_path, spc)
    results = load_results(tmp_path)
    means = [resample(results, np.random.default_rng(s))["table1"].set_index(["encoder", "pattern"]).loc[("vgg16", "H"), "spc_mean"]
             for s in range(30)]
    assert np.std(means) > 0.02 and abs(np.mean(means) - 0.5) < 0.05  # it moves, around the full set's mean
    cells = headline_intervals(tmp_path, n_boot=500)
    h = cells[(cells.encoder == "vgg16") & (cells.pattern == "H")].iloc[0]
    assert h.ci_low < 0.5 < h.ci_high and h.ci_high - h.ci_low == pytest.approx(2 * 1.96 * 0.29 / 40 ** 0.5, rel=0.3)
