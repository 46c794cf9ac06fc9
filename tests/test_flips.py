"""The flip test: Table 1's read-outs scored on the test photos as they are and flipped."""

import dataclasses

import pandas as pd

from poslib import flips
from poslib.data import synthetic_items
from poslib.experiment import DataSets
from poslib.profiles import get_profile


def test_flips_score_the_same_read_outs_on_flipped_inputs():
    """A black image is its own flip: same read-outs, same scores. Noise images are not."""
    train = synthetic_items("noise", 6, seed=3)
    for kind, same in (("black", True), ("noise", False)):
        data = DataSets(train, {"photos": synthetic_items(kind, 2, seed=50)})
        # enough steps that the read-outs move from their init (a read-out that never moves is failed)
        table = flips.run([("none", "none")], data=data, profile=dataclasses.replace(get_profile("smoke"), readout_steps=30),
                          patterns=["H", "V"], progress=False)
        assert sorted(table.flip.unique()) == ["horizontal", "none", "vertical"] and (table.test_set == "photos").all()
        c = flips.changes(table)
        assert (c.change.abs() < 1e-9).all() == same


def test_changes_count_only_beyond_the_noise_and_the_sentence_says_which():
    rows = [("none", "V", 0.30, 0.01), ("vertical", "V", -0.28, 0.01), ("horizontal", "V", 0.29, 0.01),
            ("none", "H", 0.03, 0.02), ("vertical", "H", 0.04, 0.02), ("horizontal", "H", -0.02, 0.02)]
    table = pd.DataFrame([{"encoder": "none", "weights": "none", "flip": f, "pattern": p, "test_set": "photos",
                           "spc_mean": m, "spc_sd": s, "n_seeds": 3, "n_images": 92, "spc_se_images": 0.0}
                          for f, p, m, s in rows])
    c = flips.changes(table).set_index(["flip", "pattern"])
    assert c.loc[("vertical", "V"), "counts"] and not c.loc[("horizontal", "V"), "counts"]
    assert not c.loc[("vertical", "H"), "counts"]
    text = flips.sentence(table, "none", "none")
    assert "V 0.300 -> -0.280 (beyond the noise), H within the noise" in text and "horizontally flipped, no pattern moves" in text
