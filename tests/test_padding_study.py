"""The padding-modes page's look-ups and sentences, on small tables whose answers are known."""

import math

import pandas as pd

from poslib.padding_study import mode_cell, versus, vgg16_padded


def table() -> pd.DataFrame:
    rows = [{"experiment": "encoder", "weights": "imagenet", "padding_mode": m, "padding": None, "pattern": p,
             "test_set": t, "spc_mean": v + (0.2 if t == "photos" else 0.0), "spc_sd": 0.01}
            for m, v in (("zeros", 0.5), ("circular", 0.0)) for p in ("H", "G") for t in ("photos", "black")]
    rows += [{"experiment": "posenet", "weights": "none", "padding_mode": "zeros", "padding": w, "pattern": "H",
              "test_set": "photos", "spc_mean": 0.1 * w, "spc_sd": 0.0} for w in (1, 2)]
    return pd.DataFrame(rows)


def test_mode_cell_averages_the_matching_cells_only():
    t = table()
    assert mode_cell(t, "encoder", "imagenet", "zeros", ["black"]) == (0.5, 0.01)
    assert mode_cell(t, "encoder", "imagenet", "zeros", ["photos", "black"])[0] == 0.6
    assert mode_cell(t, "posenet", "none", "zeros", ["photos"], padding=2) == (0.2, 0.0)
    assert all(math.isnan(x) for x in mode_cell(t, "encoder", "random", "zeros", ["black"]))


def test_versus_states_the_direction_and_whether_it_clears_the_noise_rule():
    assert versus((0.5, 0.01), (0.0, 0.01), "zero padding's") == (
        "0.500 above zero padding's 0.000, beyond twice the combined spread (0.014)")
    assert versus((0.0, 0.1), (0.05, 0.1), "it").startswith("0.050 below it 0.050, within")


def test_no_padding_is_the_padding_pages_network():
    enc = vgg16_padded("random", "none", seed=0)
    assert enc.name == "vgg16_nopad"
    assert vgg16_padded("random", "circular", seed=0).name == "vgg16"


def test_score_cell_reads_a_modes_mean_and_sd():
    from poslib.padding_study import score_cell

    t = pd.DataFrame([{"padding_mode": "zeros", "fmeasure_mean": 0.7, "fmeasure_sd": 0.02},
                      {"padding_mode": "full", "fmeasure_mean": 0.6, "fmeasure_sd": 0.03}])
    assert score_cell(t, "full", "fmeasure") == (0.6, 0.03)
