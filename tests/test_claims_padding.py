"""The scorecard's padding-mode rows follow their stated rules (beyond 2x the spread), on small tables; one noise rule."""

import pandas as pd

from poslib.claims import _circular_removes, _full_removes, _zeros_main_source


def modes_table(spc: dict[str, float], sd: float = 0.01) -> pd.DataFrame:
    rows = [{"experiment": "encoder", "weights": "imagenet", "padding_mode": mode, "pattern": p, "test_set": t,
             "spc_mean": value, "spc_sd": sd} for mode, value in spc.items() for p in ("H", "G") for t in ("black", "photos")]
    return pd.DataFrame(rows)


def test_zero_padding_ahead_only_of_the_modes_it_beats_beyond_the_spread():
    t = modes_table({"zeros": 0.5, "reflect": 0.0, "replicate": 0.0, "circular": 0.49, "partial": 0.7})
    ours, verdict, _ = _zeros_main_source({"padding_modes": t})
    assert verdict == ("new finding: zero padding ahead of reflect, replicate on every pattern for every set of weights; "
                       "not of circular, partial")
    assert "imagenet reflect H +0.500" in ours
    rand = modes_table({"zeros": 0.5, "reflect": 0.0, "replicate": 0.0, "circular": 0.0, "partial": 0.7}).assign(weights="random")
    _, verdict, _ = _zeros_main_source({"padding_modes": pd.concat([t, rand])})
    assert verdict == ("new finding: zero padding ahead of reflect, replicate on every pattern for every set of weights; "
                       "of circular (random weights only); not of partial")


def test_circular_counts_as_removing_position_only_within_two_spreads_of_zero():
    assert "no position" in _circular_removes({"padding_modes": modes_table({"circular": 0.01}, sd=0.01)})[1]
    assert _circular_removes({"padding_modes": modes_table({"circular": 0.05}, sd=0.01)})[1].endswith(
        "some position remains on content-free inputs (largest |SPC| 0.050)")


def test_full_convolution_judged_by_its_crop_shift_and_its_standard_error():
    t = pd.DataFrame([{"padding_mode": "zeros", "shift_mean": 3.0, "shift_sd": 2.0, "n_crops": 100},
                      {"padding_mode": "full", "shift_mean": 0.3, "shift_sd": 2.0, "n_crops": 100}])
    assert _full_removes({"padding_tasks": t})[1].endswith("does not move the salient region with the borders")
    t.loc[1, "shift_mean"] = 1.0  # 5 standard errors
    assert _full_removes({"padding_tasks": t})[1].endswith("still moves the salient region with the borders")


def test_one_noise_rule_decides_directions_in_verdicts_and_sentences():
    from poslib.claims import NOISE_MULTIPLE, direction
    from poslib.padding_study import versus
    assert NOISE_MULTIPLE == 2
    assert direction(0.021, 0.01) == 1 and direction(-0.021, 0.01) == -1
    assert direction(0.02, 0.01) == 0 and direction(-0.019, 0.01) == 0  # at or within twice the spread
    # the page's sentence and the scorecard agree on the same numbers
    assert versus((0.3, 0.0), (0.0, 0.14), "zeros").startswith("0.300 above zeros 0.000, beyond")
    assert versus((0.27, 0.0), (0.0, 0.14), "zeros").startswith("0.270 above zeros 0.000, within")
