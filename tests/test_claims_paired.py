"""The scorecard pairs two settings' cells by test image where a per-image results file exists."""

import numpy as np
import pandas as pd

from poslib.claims import _cells, compare, with_per_image
from poslib.stats import paired_difference


def _tables(shift: float = 0.03, n: int = 30, seeds=(0, 1, 2)):
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.3, n)  # the images differ a lot; the encoders by a small shift
    per_image = pd.concat([pd.DataFrame({"encoder": e, "weights": "imagenet", "pattern": "H", "test_set": "photos",
                                         "seed": s, "image": range(n), "failed": False,
                                         "spc": base + add + rng.normal(0, 0.01, n)})
                           for e, add in (("a", shift), ("b", 0.0)) for s in seeds], ignore_index=True)
    cells = (per_image.groupby(["encoder", "weights", "pattern", "test_set", "seed"], sort=False).spc
             .agg(["mean", "std"]).reset_index())
    summary = cells.groupby(["encoder", "weights", "pattern", "test_set"], sort=False).agg(
        spc_mean=("mean", "mean"), spc_sd=("mean", "std"), image_sd=("std", "mean")).reset_index()
    summary["spc_se_images"] = summary.pop("image_sd") / n ** 0.5
    return summary, per_image


def test_compare_uses_the_paired_spread_when_per_image_scores_exist():
    summary, per_image = _tables()
    unpaired = compare(_cells(summary[summary.encoder == "b"]), _cells(summary[summary.encoder == "a"]))
    with_per_image(summary, per_image)
    paired = compare(_cells(summary[summary.encoder == "b"]), _cells(summary[summary.encoder == "a"]))
    assert paired.ours.iloc[0] == unpaired.ours.iloc[0]
    assert paired.spread.iloc[0] < unpaired.spread.iloc[0] / 5
    assert abs(paired.ours.iloc[0]) > 2 * paired.spread.iloc[0] > 0  # counts only when paired
    assert abs(unpaired.ours.iloc[0]) < 2 * unpaired.spread.iloc[0]
    direct = paired_difference(per_image, {"encoder": "a"}, {"encoder": "b"})
    assert paired.spread.iloc[0] == direct.spread


def test_the_scorecard_at_a_glance_has_one_line_per_claim_with_badges_and_folded_evidence():
    from poslib.claims import NO_CONVERGED, scorecard_html

    card = pd.DataFrame([
        {"key": "a", "section": "3.3", "claim": "VGG16 encodes position", "paper": ".742", "ours": "+0.57 ± 0.03",
         "rule": "counts if > 2x", "verdict": "partly (chance level)", "n_cells": 12, "n_counting": 1,
         "n_by_chance": 0.55, "ours at convergence": "+0.6", "verdict at convergence": "reproduced",
         "what we know of the difference": "budget"},
        {"key": "b", "section": "4.1", "claim": "Padding <adds> position", "paper": "Fig. 7", "ours": "by eye",
         "rule": "by eye", "verdict": "assessed by eye", "n_cells": float("nan"), "n_counting": float("nan"),
         "n_by_chance": float("nan"), "ours at convergence": "", "verdict at convergence": NO_CONVERGED,
         "what we know of the difference": ""}])
    page = scorecard_html(card)
    assert page.count("<details>") == 2 and page.count("<tr>") == 3
    assert "partly (chance level)" in page and "1 of 12 (chance: 0.6)" in page
    assert "Padding &lt;adds&gt; position" in page  # escaped, never raw HTML from a claim's text
    assert NO_CONVERGED not in page  # claims without a converged version show no badge there
