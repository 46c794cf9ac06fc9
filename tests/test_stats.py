"""The book's statistics on small real inputs: failed read-outs, paired differences, seed spreads."""

import numpy as np
import pandas as pd
import pytest

from poslib.data import load_items, synthetic_items
from poslib.patterns import make_pattern
from poslib.readout import PosENet
from poslib.stats import (bootstrap_interval, constant_map_loss, failed_readout, paired_difference, pm, seed_sd,
                          summarize_seeds)
from poslib.train import TrainConfig, evaluate_readout, train_readout


def _trained(lr: float):
    """A PosENet learning H from 16 noise images that hold H faintly (so a read-out can learn it)."""
    target = make_pattern("H", 32)
    images = load_items(synthetic_items("noise", 16, seed=3), 32) * 0.5 + target
    readout = PosENet(3, out_size=32, grid=32, seed=0)
    h = train_readout(readout, images, target, TrainConfig(epochs=6, batch_size=8, lr=lr), progress=False)
    ev = evaluate_readout(readout, images, target)
    return h.epoch_loss[-1], h.epoch_loss[0], ev.spc.mean().item(), constant_map_loss(target)


def test_a_readout_that_learns_is_not_failed_and_one_that_cannot_move_is():
    learned = _trained(lr=0.5)
    assert not failed_readout(*learned)
    stuck = _trained(lr=1e-9)  # its loss stays at its init's, above a constant map's
    assert failed_readout(*stuck)
    assert failed_readout(float("nan"), 0.1, 0.3, 0.08) and failed_readout(0.01, 0.1, float("nan"), 0.08)
    # nothing to learn, yet the loss fell from its init to a constant map's: a result, not a failure
    assert not failed_readout(0.0801, 0.12, 0.01, 0.08)


def test_the_constant_map_loss_is_the_targets_variance():
    t = make_pattern("H", 64)
    assert constant_map_loss(t) == pytest.approx(float(((t - t.mean()) ** 2).mean()), rel=1e-6)


def test_one_seed_has_no_spread():
    assert np.isnan(seed_sd([0.4])) and seed_sd([0.4, 0.6]) == pytest.approx(0.1414, abs=1e-4)
    assert pm(0.4, float("nan")) == "0.400 (no spread)" and pm(0.4, 0.05) == "0.400 ± 0.050"


def _per_image(rng, shift: float, n_images: int = 40, seeds=(0, 1, 2)) -> pd.DataFrame:
    # images differ a lot (sd .3), the two settings by a small constant shift plus little noise
    base = rng.normal(0.5, 0.3, n_images)
    rows = []
    for s in seeds:
        for name, add in (("a", shift), ("b", 0.0)):
            rows.append(pd.DataFrame({"setting": name, "seed": s, "test_set": "photos", "image": range(n_images),
                                      "spc": base + add + rng.normal(0, 0.01, n_images)}))
    return pd.concat(rows, ignore_index=True)


def test_paired_difference_sees_a_small_shift_that_the_cells_spreads_hide():
    t = _per_image(np.random.default_rng(0), shift=0.03)
    d = paired_difference(t, {"setting": "a"}, {"setting": "b"})
    assert d.difference == pytest.approx(0.03, abs=0.005) and d.n_images == 40 and d.n_seeds == 3
    assert d.counts  # paired: the images' own spread cancels
    unpaired_se = float(np.hypot(*(t[t.setting == k].groupby("seed").spc.std().mean() / np.sqrt(40) for k in "ab")))
    assert unpaired_se > 10 * d.se_images and abs(d.difference) < 2 * unpaired_se  # unpaired, it would not count
    assert not paired_difference(_per_image(np.random.default_rng(1), shift=0.0),
                                 {"setting": "a"}, {"setting": "b"}).counts


def test_paired_difference_leaves_failed_readouts_out_and_refuses_an_empty_selection():
    t = _per_image(np.random.default_rng(0), shift=0.03).assign(failed=False)
    t.loc[(t.setting == "a") & (t.seed == 2), ["failed", "spc"]] = [True, -5.0]
    d = paired_difference(t, {"setting": "a"}, {"setting": "b"})
    assert d.n_seeds == 2 and d.difference == pytest.approx(0.03, abs=0.005)
    with pytest.raises(KeyError):
        paired_difference(t, {"setting": "c"}, {"setting": "b"})


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    small = pd.DataFrame({"image": range(20), "spc": rng.normal(0.5, 0.2, 20)})
    big = pd.DataFrame({"image": range(500), "spc": rng.normal(0.5, 0.2, 500)})
    lo, hi = bootstrap_interval(small)
    assert lo < small.spc.mean() < hi
    blo, bhi = bootstrap_interval(big)
    assert bhi - blo < (hi - lo) / 3


def test_summarize_seeds_counts_failed_runs_and_keeps_every_setting():
    rows = pd.DataFrame({"mode": ["z", "z", "z", "c"], "seed": [0, 1, 2, 0], "spc_mean": [0.5, 0.7, -0.4, 0.2],
                         "mae_mean": [0.2] * 4, "failed": [False, False, True, True]})
    out = summarize_seeds(rows, ["mode"]).set_index("mode")
    assert out.loc["z", "spc_mean"] == pytest.approx(0.6) and out.loc["z", "n_failed"] == 1
    assert out.loc["c", "n_failed"] == 1 and out.loc["c", "n_seeds"] == 0 and np.isnan(out.loc["c", "spc_mean"])


def test_a_seed_stuck_at_a_constant_map_fails_only_where_another_seed_of_its_cell_learned():
    from poslib.stats import mark_failed

    rows = pd.DataFrame({"encoder": ["resnet"] * 3 + ["none"] * 3, "pattern": "HS", "seed": [0, 1, 2] * 2,
                         "final_train_loss": [0.1246, 0.0048, 0.0068, 0.1249, 0.1250, 0.1248],
                         "constant_map_loss": 0.125, "failed": False})
    out = mark_failed(rows, ["encoder", "pattern"])
    # ResNet seed 0 stayed at the constant map's loss while seeds 1 and 2 learned: failed. PosENet
    # alone learned nothing with any seed: nothing to learn, a result.
    assert out.failed.tolist() == [True, False, False, False, False, False]


def test_changes_sentence_says_which_patterns_move_beyond_the_noise():
    from poslib.stats import changes_sentence, paired_changes

    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.3, 40)
    rows = [pd.DataFrame({"layers": layers, "pattern": p, "seed": s, "test_set": "photos", "image": range(40),
                          "spc": base + (0.05 if (layers == 3 and p == "H") else 0.0) + rng.normal(0, 0.01, 40)})
            for layers in (1, 3) for p in ("H", "G") for s in range(3)]
    c = paired_changes(pd.concat(rows), {"layers": 1}, {"layers": 3}, ["H", "G"])
    assert c.counts.tolist() == [True, False]
    text = changes_sentence(c)
    assert text.startswith("increases it beyond the noise (paired over test images and seeds) for 1 of 2 patterns (H +0.0")
    assert "G " in text and "within the noise" in text
