import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from poslib.patterns import PATTERNS, make_pattern

OFFICIAL_FILES = {"H": "gt_hor.png", "V": "gt_ver.png", "G": "gt_gau.png", "HS": "gt_horstp.png", "VS": "gt_verstp.png"}


def load_official(path, size=224) -> torch.Tensor:
    """The official loader's steps: greyscale, resize to 224, ToTensor, min-max normalise."""
    t = TF.to_tensor(TF.resize(Image.open(path).convert("L"), [size, size]))[0]
    return (t - t.min()) / (t.max() - t.min())


@pytest.mark.parametrize("name", PATTERNS)
def test_matches_official_png(name, data_dir):
    official = load_official(data_dir / OFFICIAL_FILES[name])
    ours = make_pattern(name, 224)
    assert (ours - official).abs().mean().item() < 0.01


@pytest.mark.parametrize("name", PATTERNS)
@pytest.mark.parametrize("size", [17, 224, 256])
def test_shape_dtype_range(name, size):
    m = make_pattern(name, size)
    assert m.shape == (size, size) and m.dtype == torch.float32
    assert m.min().item() == pytest.approx(0.0, abs=1e-6) and m.max().item() == pytest.approx(1.0, abs=1e-6)


def test_gradients_run_along_their_axis():
    h, v = make_pattern("H", 64), make_pattern("V", 64)
    assert torch.all(h[:, 1:] > h[:, :-1]) and torch.all(h == h[:1])
    assert torch.equal(v, h.T)


def test_gaussian_is_centred_with_zero_corners():
    g = make_pattern("G", 65)
    assert g[32, 32].item() == pytest.approx(1.0)
    assert {round(g[i, j].item(), 6) for i in (0, -1) for j in (0, -1)} == {0.0}
    assert torch.allclose(g, g.T) and torch.allclose(g, g.flip(0))


def test_stripes_have_two_and_a_half_cycles_sampled_at_pixel_centres():
    n = 256
    hs = make_pattern("HS", n)
    rows = torch.arange(n, dtype=torch.float64)
    expected = (torch.cos(2 * math.pi * 2.5 * (rows + 0.5) / n) + 1) / 2
    col = hs[:, 0].double()
    def unit(v):
        return (v - v.min()) / (v.max() - v.min())

    assert torch.allclose(unit(col), unit(expected), atol=1e-6)
    assert torch.all(hs == hs[:, :1])
    assert torch.equal(make_pattern("VS", n), hs.T)
    # 2.5 cycles: the cosine crosses its mid level five times
    centred = np.sign(col.numpy() - 0.5)
    assert int((centred[1:] != centred[:-1]).sum()) == 5


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="H, V, G, HS, VS"):
        make_pattern("diagonal")
    with pytest.raises(ValueError):
        make_pattern("H", size=1)
