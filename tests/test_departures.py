"""Departures from the paper's protocol and the scorecard's rules: the pieces the departures page and
the summary page are built from, on small real inputs."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from poslib.claims import NOT, PARTLY, REPRODUCED, effect_verdict
from poslib.departures import (OFFICIAL_STEPS, RunStore, effect, epochs_for_steps, explain, protocol,
                               steps_per_epoch, train_and_score)
from poslib.encoders import build_encoder
from poslib.readout import PosENet, conv_as_matmul, forward_many
from poslib.weights import CAFFE_BGR_MEAN, IMAGENET_MEAN, IMAGENET_STD, Preprocess


@pytest.mark.parametrize("k,padding", [(1, 0), (3, 0), (3, 1), (5, 2), (7, 0)])
def test_conv_as_matmul_equals_the_convolution_and_its_gradient(k, padding):
    gen = torch.Generator().manual_seed(k + padding)
    x = torch.randn(3, 24, 10, 10, generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 24, k, k, generator=gen, requires_grad=True)
    b = torch.randn(4, generator=gen, requires_grad=True)
    ref = F.conv2d(x, w, b, padding=padding)
    got = conv_as_matmul(x, w, b, padding)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4)
    g_ref = torch.autograd.grad(ref.square().sum(), [w, b])
    g_got = torch.autograd.grad(got.square().sum(), [w, b])
    for a, c in zip(g_ref, g_got):
        assert torch.allclose(a, c, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("k,padding", [(1, 0), (3, 1), (7, 3), (5, 0)])
def test_shifted_sum_backward_is_autograds_bit_for_bit(k, padding):
    """The hand-written backward of the k*k shifted partial maps gives exactly the gradient autograd
    gives for the same sum written as slices (so stored results made either way agree)."""
    from poslib.readout import _ShiftedSum
    gen = torch.Generator().manual_seed(k)
    partial = torch.randn(2, 9, 9, k, k, 5, generator=gen, requires_grad=True)

    def as_slices(t):
        t = F.pad(t, (0, 0, 0, 0, 0, 0, padding, padding, padding, padding))
        s = t.shape[1] - k + 1
        return sum(t[:, a:a + s, b:b + s, a, b] for a in range(k) for b in range(k))

    ref, got = as_slices(partial), _ShiftedSum.apply(partial, padding)
    assert torch.equal(ref, got)
    weight = torch.randn(ref.shape, generator=gen)
    g_ref, = torch.autograd.grad((ref * weight).sum(), partial)
    g_got, = torch.autograd.grad((got * weight).sum(), partial)
    assert torch.equal(g_ref, g_got)
    side = max(3, k - 2 * padding)  # small: gradcheck perturbs every entry
    small = torch.randn(1, side, side, k, k, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _ShiftedSum.apply(t, padding), (small,))


def test_official_input_is_what_torchvision_vgg_saw_expressed_for_caffe_weights():
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    seen = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) + torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * x
    expected = (255 * seen - torch.tensor(CAFFE_BGR_MEAN)[[2, 1, 0]].view(1, 3, 1, 1)).flip(1)
    assert torch.allclose(Preprocess("official")(x), expected, atol=1e-3)
    # ... and it is neither the weights' own input nor raw [0, 1]
    assert not torch.allclose(Preprocess("official")(x), Preprocess("caffe")(x), atol=1.0)
    # the contrast the network sees: 255 * std (about 57) times lower for raw [0, 1] input
    assert Preprocess("official")(x).std() / Preprocess("tensor")(x).std() == pytest.approx(255 * 0.224, rel=0.05)


def test_official_preprocess_resolves_per_weights_convention():
    assert build_encoder("vgg16", "random", preprocess="official").preprocess.kind == "official"
    assert build_encoder("mobilenet_v2", "random", preprocess="official").preprocess.kind == "tensor"
    with pytest.raises(ValueError, match="valid"):
        build_encoder("vgg16", "random", preprocess="bgr")


def test_step_arithmetic_and_the_stretched_schedule():
    assert OFFICIAL_STEPS == 4950
    assert steps_per_epoch(792) == 25 and steps_per_epoch(800) == 25 and steps_per_epoch(801) == 26
    assert epochs_for_steps(375, 792) == 15
    assert epochs_for_steps(375, 264) == 42  # 9 steps per epoch
    assert epochs_for_steps(1, 10_000) == 1
    assert protocol(30, seed=2).lr_milestones == (20,) and protocol(30, seed=2).seed == 2
    with pytest.raises(ValueError):
        epochs_for_steps(0, 10)


def _toy_features(n=24, c=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # a left-to-right ramp in channel 0, so H is learnable from the features alone
    x = torch.randn(n, c, 28, 28, generator=gen) * 0.3
    x[:, 0] += torch.linspace(-1, 1, 28).view(1, 28)
    return x.contiguous(memory_format=torch.channels_last)


def test_seeds_are_independent_and_reproducible():
    train, test = _toy_features(), {"t": _toy_features(8, seed=1)}
    a = train_and_score(train, test, channels=[6], patterns=["H"], seeds=[0, 1], epochs=20)
    b = train_and_score(train, test, channels=[6], patterns=["H"], seeds=[0, 1], epochs=20)
    pd.testing.assert_frame_equal(a, b)
    assert a.spc.iloc[0] != a.spc.iloc[1]  # its own init and batch order per seed
    assert (a.steps == 20).all() and (a.train_inputs == 24).all()
    assert a.spc.iloc[0] > 0.5  # the ramp is read out


def test_a_shared_batch_order_changes_only_the_other_seeds():
    train, test = _toy_features(80), {"t": _toy_features(8, seed=1)}  # 3 batches an epoch: the order matters
    own = train_and_score(train, test, channels=[6], patterns=["H"], seeds=[0, 1], epochs=3)
    shared = train_and_score(train, test, channels=[6], patterns=["H"], seeds=[0, 1], epochs=3, shared_order=True)
    assert own.spc.iloc[0] == shared.spc.iloc[0]  # seed 0 orders its batches with 0 either way
    assert own.spc.iloc[1] != shared.spc.iloc[1]


def test_run_store_resumes_a_finished_run_and_starts_afresh_for_other_settings(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"pattern": ["H", "V"], "seed": [0, 1], "spc": [0.25, 0.5]})

    first = RunStore(tmp_path, {"profile": "smoke", "code": "a"}).get_or_run("baseline", compute)
    again = RunStore(tmp_path, {"profile": "smoke", "code": "a"})  # a new session: read from disk
    rows = again.get_or_run("baseline", compute)
    assert len(calls) == 1 and again.reused == ["baseline"]
    pd.testing.assert_frame_equal(rows.drop(columns="run_seconds"), first.drop(columns="run_seconds"))
    assert rows.seed.dtype.kind == "i"
    RunStore(tmp_path, {"profile": "smoke", "code": "b"}).get_or_run("baseline", compute)  # the code changed
    assert len(calls) == 2
    RunStore(tmp_path, {"profile": "smoke", "code": "a"}, reuse=False).get_or_run("baseline", compute)
    assert len(calls) == 3 and len(RunStore(tmp_path, {"profile": "smoke", "code": "a"}).rows) == 2  # replaced, not added


def test_effects_pair_seeds():
    rows = pd.DataFrame({"setting": ["a", "a", "b", "b"], "pattern": "H", "test_set": "photos", "seed": [0, 1, 0, 1],
                         "spc": [0.5, 0.7, 0.6, 0.8]})
    e = effect(rows, "a", "b")
    assert e.delta_mean.iloc[0] == pytest.approx(0.1) and e.delta_sd.iloc[0] == pytest.approx(0.0, abs=1e-12)


def _effects(delta: float) -> pd.DataFrame:
    return pd.DataFrame({"pattern": ["H", "G"] * 2, "test_set": ["photos"] * 2 + ["black"] * 2,
                         "delta_mean": [delta] * 4, "delta_sd": [0.01] * 4, "n_seeds": 3,
                         "departure": "budget", "setting": "1500 steps", "compared_with": "cpu protocol",
                         "baseline_gap": [-0.2] * 4})


def test_explanations_follow_the_numbers():
    up, down = explain(_effects(0.05)), explain(_effects(-0.05))
    assert "rises by 0.050" in up and "beyond twice" in up and "closes 25% of the photo gap" in up
    assert "falls by 0.050" in down and "widens the photo gap" in down and "rises" not in down
    assert "within twice" in explain(_effects(0.015))
    assert "gap" not in explain(_effects(0.015))  # a change within the noise says nothing about the gap


def _d(ours, spread, paper):
    return pd.DataFrame({"ours": ours, "spread": spread, "paper": paper})


def test_verdict_rule_needs_the_effect_beyond_noise_and_half_the_papers_size():
    assert effect_verdict(_d([0.07, 0.02], [0.01, 0.005], [0.09, 0.02])) == REPRODUCED
    # Table 2a's HS: +0.003 with a seed spread of 0.007 does not count
    assert effect_verdict(_d([0.07, 0.003], [0.01, 0.007], [0.09, 0.086])) == PARTLY
    # beyond noise but below half the paper's size: partly
    assert effect_verdict(_d([0.1], [0.01], [0.42])) == PARTLY
    assert effect_verdict(_d([0.003, -0.2], [0.007, 0.01], [0.09, 0.1])) == NOT
    # a claimed drop (negative paper effect) is judged in its own direction
    assert effect_verdict(_d([-0.25], [0.01], [-0.36])) == REPRODUCED
    assert effect_verdict(_d([0.25], [0.01], [-0.36])) == NOT


def test_one_layer_readouts_trained_together_give_each_ones_own_maps():
    x = _toy_features(4)
    readouts = [PosENet([6], seed=s).eval() for s in (3, 4)]
    together = forward_many(readouts, x)  # the matrix-product path
    for k, r in enumerate(readouts):
        assert torch.allclose(together[:, k], r(x)[:, 0], atol=1e-5)  # nn.Conv2d path


def test_the_code_digest_ignores_comments_but_not_code(monkeypatch):
    import inspect

    import poslib.departures as dep
    before = dep.code_digest()
    source = inspect.getsource(dep.protocol)
    monkeypatch.setattr(inspect, "getsource", lambda obj, _real=inspect.getsource: (
        source.replace("-> TrainConfig:", "-> TrainConfig:  # a comment") if obj is dep.protocol else _real(obj)))
    assert dep.code_digest() == before
    monkeypatch.setattr(inspect, "getsource", lambda obj, _real=inspect.getsource: (
        source.replace("2 / 3", "3 / 4") if obj is dep.protocol else _real(obj)))
    assert dep.code_digest() != before


def test_the_tensor_contrast_probe_is_never_counted_against_the_gap():
    import pandas as pd

    from poslib.departures import explain

    rows = [{"pattern": p, "test_set": t, "delta_mean": 0.07, "delta_sd": 0.01, "n_seeds": 3, "departure": "input",
             "setting": s, "compared_with": "cpu protocol", "baseline_gap": -0.14, "significant": True,
             "share_of_gap": 0.5} for s in ("official", "tensor") for p in ("H", "G") for t in ("photos", "black")]
    text = explain(pd.DataFrame(rows)).splitlines()
    assert "closes" in text[0] and "closes" not in text[1] and "not counted against the gap" in text[1]
