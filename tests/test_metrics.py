import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from poslib.metrics import content_loss, mae, rank, spc


def scipy_spc(p, t):
    return np.array([spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(p, t)])


@pytest.mark.parametrize("shape", [(4, 224, 224), (3, 7, 13), (2, 1, 5)])
def test_spc_equals_scipy_on_random_maps(shape):
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
    t[0] = p[0] * 0.5 + t[0] * 0.5  # one strongly correlated pair
    np.testing.assert_allclose(spc(p, t).numpy(), scipy_spc(p.numpy(), t.numpy()), atol=1e-6)


def test_spc_equals_scipy_with_ties():
    g = torch.Generator().manual_seed(1)
    p = torch.randint(0, 4, (5, 30, 30), generator=g).float()  # heavy ties
    t = torch.randint(0, 7, (5, 30, 30), generator=g).float()
    t[1] = p[1] + torch.randint(0, 2, (30, 30), generator=g)
    np.testing.assert_allclose(spc(p, t).numpy(), scipy_spc(p.numpy(), t.numpy()), atol=1e-6)


def test_rank_averages_ties():
    assert rank(torch.tensor([10.0, 20.0, 10.0, 5.0])).tolist() == [2.5, 4.0, 2.5, 1.0]


def test_single_map_target_broadcasts_over_a_batch():
    g = torch.Generator().manual_seed(2)
    t = torch.rand(16, 16, generator=g)
    p = torch.rand(3, 1, 16, 16, generator=g)  # read-out output layout
    expected = scipy_spc(p[:, 0].numpy(), np.broadcast_to(t.numpy(), (3, 16, 16)))
    np.testing.assert_allclose(spc(p, t).numpy(), expected, atol=1e-6)
    assert spc(t, t).dim() == 0 and spc(t, t).item() == pytest.approx(1.0)
    assert spc(t, 1 - t).item() == pytest.approx(-1.0)


def test_constant_map_gives_zero_not_nan():
    t = torch.rand(8, 8)
    assert spc(torch.full((8, 8), 0.3), t).item() == 0.0
    assert spc(t, torch.zeros(8, 8)).item() == 0.0
    wiggle = torch.full((8, 8), 0.5, dtype=torch.float64) + torch.randn(8, 8, dtype=torch.float64) * 3e-8  # ulp-level noise
    assert spc(wiggle, t).item() == 0.0
    assert spc(0.5 + t.double() * 1e-5, t).item() == pytest.approx(1.0)  # small but real
    batch = torch.stack([torch.full((8, 8), 0.5), t])
    out = spc(batch, t)
    assert not torch.isnan(out).any() and out.tolist() == pytest.approx([0.0, 1.0])


def test_mae_equals_numpy():
    g = torch.Generator().manual_seed(3)
    p, t = torch.rand(4, 9, 11, generator=g), torch.rand(4, 9, 11, generator=g)
    np.testing.assert_allclose(mae(p, t).numpy(), np.abs(p.numpy() - t.numpy()).mean(axis=(1, 2)), atol=1e-7)
    assert mae(torch.full((5, 5), 0.5), torch.zeros(5, 5)).item() == pytest.approx(0.5)


@pytest.mark.parametrize("fn", [spc, mae])
def test_shape_mismatch_raises(fn):
    with pytest.raises(ValueError, match="shapes differ"):
        fn(torch.rand(2, 8, 8), torch.rand(2, 8, 9))
    with pytest.raises(ValueError, match="shapes differ"):
        fn(torch.rand(2, 8, 8), torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="pred must be"):
        fn(torch.rand(8), torch.rand(8))


def test_content_loss_is_equation_4():
    g = torch.Generator().manual_seed(4)
    targets = {p: torch.rand(6, 6, generator=g) for p in ("H", "V", "G")}
    preds = {p: torch.rand(2, 6, 6, generator=g) for p in ("H", "V", "G")}
    loss = content_loss(preds, targets)
    expected = sum((preds[p] - targets[p]).abs() for p in ("H", "V", "G")) / 3
    assert loss.shape == (2, 6, 6) and torch.allclose(loss, expected)
    assert content_loss({p: targets[p].expand(1, 6, 6) for p in targets}, targets).abs().max() == 0
    with pytest.raises(ValueError, match="same patterns"):
        content_loss({"H": preds["H"]}, targets)
