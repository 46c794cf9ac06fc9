"""Profiles state their read-out budget in SGD steps; the paper profile's is the official run's."""

import pytest

from poslib.experiment import standard_data
from poslib.profiles import PROFILES, get_profile, steps_per_epoch


def test_the_paper_profile_takes_the_official_number_of_sgd_steps():
    paper = get_profile("paper")
    assert paper.readout_steps == 15 * steps_per_epoch(10_553, 32) == 4950
    on_dut_s, on_pool = paper.for_inputs(10_553).train_config(), paper.for_inputs(264).train_config()
    assert on_dut_s.epochs == 15 and on_dut_s.lr_milestones == (10,)
    assert on_pool.epochs * steps_per_epoch(264) == pytest.approx(4950, rel=0.01)
    assert on_pool.lr_milestones[0] / on_pool.epochs == pytest.approx(2 / 3, abs=0.01)  # same fraction of the run


@pytest.mark.parametrize("name", ["smoke", "cpu"])
def test_a_profiles_epochs_on_its_own_training_set_give_its_stated_budget(name):
    prof = get_profile(name)
    n = len(standard_data(prof, test_sets=[]).train)
    assert prof.epochs * steps_per_epoch(n, prof.batch_size) == prof.readout_steps
    assert prof.for_inputs(n) == prof


def test_every_profile_states_a_positive_budget():
    assert all(p.readout_steps >= 1 for p in PROFILES.values())
    with pytest.raises(ValueError, match="readout_steps must be a positive integer"):
        PROFILES["cpu"].__class__(**{**PROFILES["cpu"].as_dict(), "readout_steps": 0})
