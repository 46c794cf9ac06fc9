import copy
import math

import pytest
import torch
import torch.nn.functional as F

from poslib.readout import PosENet, forward_many, output_grid, train_losses, upsample, upsampled_mse

VGG_TAPS = [(64, 224), (128, 112), (256, 56), (512, 28), (512, 14)]  # (channels, side) of relu1_2..relu5_3


def vgg_like_taps(n=2, scale=8):
    g = torch.Generator().manual_seed(0)
    return [torch.rand(n, c // scale, s // 4, s // 4, generator=g) for c, s in VGG_TAPS]


def test_output_shape_and_range_for_multiscale_taps():
    taps = vgg_like_taps()
    r = PosENet.from_example(taps, seed=0)
    assert r.in_channels == 1472 // 8
    out = r(taps)
    assert out.shape == (2, 1, 224, 224) and 0 <= out.min() and out.max() <= 1


def test_defaults_are_the_papers_and_layout_is_the_official_one():
    r = PosENet(1472)
    assert (r.layers, r.kernel_size, r.padding, r.hidden_channels) == (1, 3, 0, 1472)
    kinds = [type(m).__name__ for m in r.body]
    assert kinds == ["Conv2d", "BatchNorm2d", "Sigmoid"]
    r3 = PosENet(10, layers=3, kernel_size=5, padding=2, hidden_channels=4)
    assert [type(m).__name__ for m in r3.body] == ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["Conv2d", "BatchNorm2d", "Sigmoid"]
    assert r3.body[0].weight.shape == (4, 10, 5, 5) and r3.body[6].weight.shape == (1, 4, 5, 5)
    # parameters of one 3x3 layer on VGG16's 1472 channels: conv weights + bias + BN affine
    assert PosENet(1472).n_parameters == 1472 * 9 + 1 + 2


def test_xavier_uniform_weights_zero_bias_and_seeded_init():
    r = PosENet(64, layers=2, seed=3)
    w = r.body[0].weight
    bound = math.sqrt(6 / (64 * 9 + 64 * 9))
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert all(torch.all(m.bias == 0) for m in r.body if isinstance(m, torch.nn.Conv2d))
    torch.manual_seed(123)  # the global RNG must not matter
    same = PosENet(64, layers=2, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(r.state_dict().values(), same.state_dict().values()))
    other = PosENet(64, layers=2, seed=4)
    assert not torch.equal(r.body[0].weight, other.body[0].weight)


def test_taps_are_resized_bilinearly_with_aligned_corners():
    r = PosENet(3, seed=0)
    x = torch.rand(1, 3, 50, 70)
    assert torch.equal(r.resize_taps(x), F.interpolate(x, (28, 28), mode="bilinear", align_corners=True))


def test_without_padding_a_constant_input_gives_a_constant_map():
    """The heart of the paper's Sec. 4: with no padding, a conv read-out of a uniform image cannot tell positions apart."""
    white = torch.ones(1, 3, 224, 224)
    flat = PosENet(3, padding=0, seed=0).eval()(white)
    assert torch.allclose(flat, flat.flatten()[0].expand_as(flat))
    padded = PosENet(3, padding=1, seed=0).eval()(white)
    assert padded.max() - padded.min() > 1e-3  # zero padding makes the border differ


def test_output_grid_arithmetic():
    assert output_grid(28, 1, 3, 0) == 26
    assert output_grid(28, 3, 7, 0) == 10
    assert output_grid(28, 2, 3, 1) == 28


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel_size": 4}, "positive odd"),
        ({"kernel_size": 0}, "positive odd"),
        ({"layers": 0}, "layers must be"),
        ({"padding": -1}, "padding must be"),
        ({"layers": 5, "kernel_size": 7}, "shrink"),
        ({"hidden_channels": 0}, "hidden_channels"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PosENet(8, **kwargs)


def test_wrong_inputs_raise_clear_errors():
    r = PosENet([4, 8], seed=0)
    with pytest.raises(ValueError, match=r"channels \[4, 8\]"):
        r([torch.rand(1, 8, 10, 10), torch.rand(1, 4, 10, 10)])
    with pytest.raises(ValueError, match="4-D"):
        r([torch.rand(4, 10, 10)])
    with pytest.raises(ValueError, match="batch size"):
        r([torch.rand(1, 4, 10, 10), torch.rand(2, 8, 10, 10)])
    with pytest.raises(ValueError, match="at least one"):
        r([])
    with pytest.raises(ValueError, match="12 input channels"):
        PosENet(12)(torch.rand(1, 3, 10, 10))


def test_reading_a_single_level():
    taps = vgg_like_taps()
    r = PosENet.from_example(taps, taps=[4], seed=0)
    assert r.in_channels == 1472 // 8 and r.read_channels == 512 // 8 and r.body[0].in_channels == 64
    assert torch.equal(r.resize_taps(taps), F.interpolate(taps[4], (28, 28), mode="bilinear", align_corners=True))
    assert r(taps).shape == (2, 1, 224, 224)
    two = PosENet.from_example(taps, taps=[0, 3], seed=0)
    assert two.read_channels == (64 + 512) // 8
    with pytest.raises(ValueError, match="indices into the 2 taps"):
        PosENet([4, 4], taps=[3])
    with pytest.raises(ValueError, match="indices into the 0 taps"):
        PosENet(8, taps=[0])
    with pytest.raises(ValueError, match="indices"):
        PosENet([4, 4], taps=[])


def test_a_concatenated_input_equals_the_tap_list():
    """The feature cache stores taps already resized and concatenated; the read-out reads both alike."""
    taps = vgg_like_taps()
    for kwargs in ({}, {"taps": [2]}, {"taps": [1, 4]}):
        r = PosENet.from_example(taps, seed=0, **kwargs).eval()
        flat = torch.cat([F.interpolate(t, (28, 28), mode="bilinear", align_corners=True) for t in taps], dim=1)
        assert torch.allclose(r(taps), r(flat), atol=1e-6)


def test_forward_many_equals_running_each_read_out():
    taps = vgg_like_taps()
    readouts = [PosENet.from_example(taps, seed=s) for s in range(3)]  # fused: one conv, 3 channels
    readouts += [PosENet.from_example(taps, taps=[1], seed=0), PosENet.from_example(taps, layers=2, hidden_channels=4, seed=0),
                 PosENet.from_example(taps, padding=1, seed=5)]
    for r in readouts:
        r.train()
    twins = [copy.deepcopy(r) for r in readouts]
    stacked = forward_many(readouts, taps)
    assert stacked.shape == (2, len(readouts), 224, 224)
    fused = [stacked[:, k:k + 1] for k in range(len(readouts))]
    for r, twin in zip(readouts, twins):  # BatchNorm running statistics updated as if run alone
        twin(taps)
        for a, b in zip(r.buffers(), twin.buffers()):
            assert torch.allclose(a.float(), b.float(), atol=1e-6)
    for r, out in zip(readouts, fused):
        assert torch.allclose(out, r(taps), atol=1e-6)
    loss = sum(o.mean() for o in fused)
    loss.backward()
    grads = [r.body[0].weight.grad.clone() for r in readouts]
    for r, g in zip(readouts, grads):
        r.zero_grad()
        r(taps).mean().backward()
        assert torch.allclose(r.body[0].weight.grad, g, atol=1e-6)


@pytest.mark.parametrize("side", [26, 24, 28, 10, 1])
def test_matrix_upsampling_equals_bilinear_interpolation(side):
    x = torch.rand(2, 3, side, side)
    expected = F.interpolate(x, (224, 224), mode="bilinear", align_corners=False)
    assert torch.allclose(upsample(x, 224), expected, atol=1e-5)


def test_closed_form_loss_equals_mse_of_the_upsampled_maps():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(4, 3, 26, 26, generator=g, requires_grad=True)
    t = torch.rand(3, 224, 224, generator=g)
    direct = (F.interpolate(y, (224, 224), mode="bilinear", align_corners=False) - t).square().mean(dim=(0, 2, 3))
    closed = upsampled_mse(y, t)
    assert torch.allclose(closed, direct, rtol=1e-5)
    (gd,) = torch.autograd.grad(direct.sum(), y)
    (gc,) = torch.autograd.grad(upsampled_mse(y, t).sum(), y)
    assert torch.allclose(gc, gd, rtol=1e-4, atol=1e-9)


def test_train_losses_are_each_read_outs_mse():
    taps = vgg_like_taps()
    readouts = [PosENet.from_example(taps, seed=s) for s in range(2)] + [PosENet.from_example(taps, layers=2, hidden_channels=4, seed=0)]
    targets = torch.rand(3, 224, 224)
    for r in readouts:
        r.eval()
    losses = train_losses(readouts, taps, targets)
    for r, t, loss in zip(readouts, targets, losses):
        assert loss.item() == pytest.approx(F.mse_loss(r(taps)[:, 0], t.expand(2, 224, 224)).item(), rel=1e-5)


def test_a_stacked_readouts_wide_first_layer_as_a_matrix_product_gives_the_convolutions_maps():
    from poslib.readout import WIDE_INPUT
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, WIDE_INPUT, 28, 28, generator=gen)
    r = PosENet(WIDE_INPUT, layers=2, hidden_channels=4, seed=1).eval()
    as_conv = r(x.contiguous())  # F.conv2d
    as_matmul = r(x.contiguous(memory_format=torch.channels_last))  # conv_as_matmul
    assert torch.allclose(as_conv, as_matmul, atol=1e-5)
