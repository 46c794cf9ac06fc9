"""Random-weight controls: init schemes, scale matching, BatchNorm calibration, position share."""

import pytest
import torch

from poslib.controls import calibrate_batchnorm, conv_spreads, match_scale, position_share, random_encoder
from poslib.encoders import build_encoder
from poslib.features import encoder_identity


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 3, 48, 48, generator=g)


def first_conv(enc):
    return next(m for m in enc.body.modules() if isinstance(m, torch.nn.Conv2d))


def test_pytorch_default_init_differs_from_torchvision_and_has_biases():
    tv, pt = random_encoder("vgg16", 0, "torchvision"), random_encoder("vgg16", 0, "pytorch")
    assert float(first_conv(tv).bias.abs().max()) == 0.0  # torchvision: zero bias
    assert float(first_conv(pt).bias.abs().max()) > 0.0  # PyTorch's default: uniform bias
    # Kaiming uniform with a=sqrt(5) has std 1/sqrt(3 fan_in); torchvision's fan_out normal is larger
    fan_in = 3 * 9
    assert float(first_conv(pt).weight.std()) == pytest.approx((3 * fan_in) ** -0.5, rel=0.15)
    assert encoder_identity(tv) != encoder_identity(pt)
    assert encoder_identity(pt) == encoder_identity(random_encoder("vgg16", 0, "pytorch"))  # seeded


def test_encoder_seeds_give_different_weights():
    a, b = random_encoder("vgg16", 0), random_encoder("vgg16", 1)
    assert not torch.equal(first_conv(a).weight, first_conv(b).weight)
    assert encoder_identity(a) != encoder_identity(b)


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="valid: torchvision, pytorch"):
        random_encoder("vgg16", 0, "xavier")


def test_match_scale_gives_each_conv_the_reference_spread(images):
    reference = build_encoder("vgg16", "imagenet")
    enc = match_scale(random_encoder("vgg16", 0), reference, images)
    want, got = conv_spreads(reference, images), conv_spreads(enc, images)
    assert torch.allclose(got, want, rtol=1e-3)
    assert len(enc.provenance["init_scales"]) == 13
    assert encoder_identity(enc) != encoder_identity(random_encoder("vgg16", 0))


def test_match_scale_refuses_biased_convs(images):
    with pytest.raises(ValueError, match="zero conv biases"):
        match_scale(random_encoder("vgg16", 0, "pytorch"), build_encoder("vgg16", "imagenet"), images)


def test_batchnorm_calibration_normalises_a_random_network(images):
    enc = random_encoder("mobilenet_v2", 0)
    before = enc(images)[-1]
    enc = calibrate_batchnorm(enc, images)
    bn = next(m for m in enc.body.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert float(bn.running_var.mean()) != pytest.approx(1.0, abs=1e-3)  # no longer the init state
    after = enc(images)[-1]
    assert not torch.allclose(before, after)
    assert not enc.body.training
    assert "batchnorm" in encoder_identity(enc)
    with pytest.raises(ValueError, match="no BatchNorm"):
        calibrate_batchnorm(random_encoder("vgg16", 0), images)


def test_position_share_separates_position_from_content():
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-1, 1, 8).expand(8, 8)
    content = torch.randn(200, 1, 8, 8, generator=g)
    assert position_share(content)[0] < 0.02  # pure content: no position, after the noise correction
    assert position_share(ramp.expand(200, 1, 8, 8).clone())[0] == pytest.approx(1.0)
    mixed = ramp + content  # equal variance from position (1/3 + ...) and from content (1)
    share = position_share(mixed)[0]
    expected = float(ramp.var(unbiased=False)) / (float(ramp.var(unbiased=False)) + 1.0)
    assert share == pytest.approx(expected, abs=0.03)
    two = position_share(torch.cat([content, mixed], 1), channels=[1, 1])
    assert two[0] < 0.02 and two[1] == pytest.approx(share)
    with pytest.raises(ValueError, match="channels sum"):
        position_share(mixed, channels=[2])
