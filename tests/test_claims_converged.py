"""The scorecard's second verdict, "at convergence": the same rules on the converged read-outs."""

import shutil
from pathlib import Path

import pandas as pd

from poslib.claims import NO_CONVERGED, REPRODUCED, UNTESTED, converged_view, scorecard

ROOT = Path(__file__).resolve().parents[1]


def converged_table(vgg: float, fit_ok: bool = True) -> pd.DataFrame:
    rows = []
    for encoder, weights, spc in (("none", "none", 0.01), ("vgg16", "imagenet", vgg)):
        for pattern in ("H", "V", "G", "HS", "VS"):
            for test_set in ("photos", "black", "white", "noise"):
                rows.append({"group": "Table 1", "encoder": encoder, "weights": weights, "pattern": pattern,
                             "test_set": test_set, "kernel": 3, "padding": 0, "taps": "all", "spc_mean": spc,
                             "spc_sd": float("nan"), "spc_sd_folds": 0.01, "spc_se_images": 0.01,
                             "converged": fit_ok or encoder == "none", "paper_spc": 0.8 if encoder == "vgg16" else 0.0})
    return pd.DataFrame(rows)


def test_view_keeps_converged_cells_and_uses_the_fold_spread():
    view = converged_view(converged_table(0.9))
    t1 = view["table1"]
    assert len(t1) == 40 and (t1.layers == 1).all()
    assert abs(t1.spc_sd.iloc[0] - 0.01) < 1e-12  # no encoder seeds: the fold fits' sd
    assert len(converged_view(converged_table(0.9, fit_ok=False))["table1"]) == 20  # missed fits left out


def test_scorecard_gives_a_verdict_at_convergence_beside_the_sgd_one(tmp_path):
    shutil.copy(ROOT / "results" / "table1.csv", tmp_path / "table1.csv")
    shutil.copy(ROOT / "results" / "table1.json", tmp_path / "table1.json")
    converged_table(0.9).to_csv(tmp_path / "converged.csv", index=False)
    card = scorecard(tmp_path).set_index("key")
    assert card.loc["existence", "verdict at convergence"] == REPRODUCED
    assert card.loc["table5", "verdict at convergence"] == NO_CONVERGED
    assert card.loc["levels", "verdict at convergence"] == UNTESTED  # no level fits in this table
    converged_table(0.02).to_csv(tmp_path / "converged.csv", index=False)  # VGG16 no better than PosENet alone
    assert scorecard(tmp_path).set_index("key").loc["existence", "verdict at convergence"] != REPRODUCED


def test_without_converged_results_the_second_verdict_says_so(tmp_path):
    shutil.copy(ROOT / "results" / "table1.csv", tmp_path / "table1.csv")
    card = scorecard(tmp_path).set_index("key")
    assert card.loc["existence", "ours at convergence"] == "converged read-outs not run"


def test_holm_and_chance_level_counts():
    import numpy as np

    from poslib.claims import cell_counts, holm

    assert holm(np.array([0.01, 0.04, 0.03])).tolist() == [True, False, False]
    d = pd.DataFrame({"ours": [0.021] + [0.0] * 19, "spread": [0.01] * 20, "paper": [float("nan")] * 20})
    c = cell_counts(d)
    assert (c["n_cells"], c["n_counting"], c["n_by_chance"]) == (20, 1, 0.91) and c["chance_level"]
    d.loc[0, "ours"] = 0.06  # six spreads: no chance event, even among 20 cells
    assert not cell_counts(d)["chance_level"]
