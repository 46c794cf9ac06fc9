"""Padding modes swapped into real networks: the physics the padding page relies on, on small inputs."""

import pytest
import torch
import torch.nn.functional as F

from poslib.dense import TaskNet
from poslib.encoders import build_encoder
from poslib.features import encoder_identity
from poslib.metrics import spc
from poslib.padding import PADDING_MODES, PartialConv2d, pad_features, set_padding
from poslib.patterns import make_pattern
from poslib.readout import PosENet


def taps_on_constant(mode: str, value: float = 0.5) -> list[torch.Tensor]:
    enc = build_encoder("vgg16", "random", padding_mode=mode, seed=0)
    return enc(torch.full((1, 3, 64, 64), value))


def spatial_range(t: torch.Tensor) -> float:
    return float((t.amax(dim=(-2, -1)) - t.amin(dim=(-2, -1))).abs().max())


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_border_copying_modes_give_constant_features_on_a_constant_image(mode):
    for tap in taps_on_constant(mode):
        assert spatial_range(tap) <= 1e-4 * max(1.0, float(tap.abs().max()))


@pytest.mark.parametrize("mode", ["zeros", "partial"])
def test_zero_and_partial_padding_mark_the_border_of_a_constant_image(mode):
    deepest = taps_on_constant(mode)[-1]
    assert spatial_range(deepest) > 1e-2 * float(deepest.abs().max())


@pytest.mark.parametrize("mode,expected", [("reflect", 0.0), ("zeros", None)])
def test_readout_on_black_and_white_is_flat_without_a_border_signal(mode, expected):
    # float64, so that 13 layers of float32 rounding do not pass for a position signal
    enc = build_encoder("vgg16", "random", padding_mode=mode, seed=0).double()
    readout = PosENet(enc.tap_channels, seed=0).double().eval()
    target = make_pattern("H", 224)
    for value in (0.0, 1.0):
        with torch.no_grad():
            pred = readout(enc(torch.full((1, 3, 224, 224), value, dtype=torch.float64)))[0, 0]
        score = float(spc(pred, target))
        if expected is None:
            assert (pred.max() - pred.min()) > 1e-6  # zero padding leaves a map that varies
        else:
            assert score == expected


def test_partial_convolution_reweights_only_the_border():
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    x = torch.rand(1, 2, 6, 6)
    ref = conv(x)
    out = PartialConv2d(conv)(x)
    assert torch.allclose(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-6)  # interior: plain conv
    corner = F.conv2d(x, conv.weight, None, padding=1)[..., 0, 0] * 9 / 4 + conv.bias
    assert torch.allclose(out[..., 0, 0], corner, atol=1e-5)  # a corner sees 4 of 9 taps


def test_padding_mode_is_part_of_the_cache_identity_only_when_swapped():
    zeros = encoder_identity(build_encoder("vgg16", "random"))
    assert "padding_mode" not in zeros  # existing cache keys stay valid
    ids = {m: encoder_identity(build_encoder("vgg16", "random", padding_mode=m))["padding_mode"]
           for m in PADDING_MODES if m != "zeros"}
    assert ids == {m: m for m in PADDING_MODES if m != "zeros"}
    with pytest.raises(ValueError, match="valid"):
        build_encoder("vgg16", "random", padding_mode="mirror")


def test_no_padding_shrinks_the_taps_like_vgg16_nopad():
    x = torch.rand(1, 3, 224, 224)
    a = build_encoder("vgg16", "random", padding_mode="none")(x)
    b = build_encoder("vgg16_nopad", "random")(x)
    assert [t.shape for t in a] == [t.shape for t in b]
    assert all(torch.allclose(u, v) for u, v in zip(a, b))


def test_set_padding_keeps_the_weights():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 1))
    before = [p.clone() for p in net.parameters()]
    set_padding(net, "circular")
    assert net[0].padding_mode == "circular" and net[2].padding_mode == "zeros"  # 1x1, no padding: untouched
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_task_network_with_border_copying_padding_is_flat_on_a_constant_image(mode):
    net = TaskNet(1, width=4, padding_mode=mode, seed=0).double().eval()
    with torch.no_grad():
        out = net(torch.full((1, 3, 64, 64), 0.5, dtype=torch.float64))
    assert spatial_range(out) <= 1e-9


@pytest.mark.parametrize("mode", ["zeros", "full"])
def test_task_network_with_zero_padding_marks_the_border(mode):
    net = TaskNet(1, width=4, padding_mode=mode, seed=0).double().eval()
    with torch.no_grad():
        out = net(torch.full((1, 3, 64, 64), 0.5, dtype=torch.float64))
    assert out.shape[-2:] == (64, 64) and spatial_range(out) > 1e-6


def test_unknown_task_padding_is_refused():
    with pytest.raises(ValueError, match="valid"):
        TaskNet(1, width=4, padding_mode="mirror")


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_padded_features_into_an_unpadded_readout_equal_the_padded_readout(mode):
    x = torch.rand(2, 5, 28, 28)
    padded = PosENet(5, padding=2, seed=3).eval()
    set_padding(padded.body, mode)  # the plain convolution, run through the body alone
    via_input = PosENet(5, padding=0, grid=32, seed=3).eval()
    with torch.no_grad():
        assert torch.allclose(via_input(pad_features(x, 2, mode)), padded.upsample(padded.body(x)), atol=1e-5)


def test_set_padding_refuses_a_posenet():
    with pytest.raises(TypeError, match="pad_features"):
        set_padding(PosENet(5, padding=1), "reflect")
