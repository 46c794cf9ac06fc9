"""The converged read-out: its solver against closed-form least squares, its scale invariance,
and a feature set that holds the target linearly."""

import numpy as np
import pytest
import torch

from poslib import converged
from poslib.data import ImageItem
from poslib.patterns import make_pattern
from poslib.readout import bilinear_matrix


def items(n: int, crops: int = 1) -> list[ImageItem]:
    return [ImageItem(key=f"p{i // crops}-{i % crops}", path=f"photo{i // crops}.jpg") for i in range(n)]


def test_folds_keep_crops_of_a_photo_together_and_are_balanced():
    groups = converged.photo_groups(items(30, crops=3))
    fold = converged.fold_of(groups, 5, seed=0)
    for g in set(groups):
        assert len({fold[i] for i, h in enumerate(groups) if h == g}) == 1
    assert sorted(np.bincount(fold).tolist()) == [6, 6, 6, 6, 6]
    with pytest.raises(ValueError, match="at least 5 photos"):
        converged.fold_of(groups[:6], 5)


def test_upsampling_root_preserves_the_upsampled_norm():
    r = converged.upsampling_root(6)
    a = bilinear_matrix(224, 6).double()
    y = torch.randn(6, 6, dtype=torch.float64)
    assert torch.allclose((a @ y @ a.T).norm(), (r @ y @ r.T).norm(), rtol=1e-10)


def test_solver_equals_closed_form_ridge_after_upsampling():
    """The accumulated normal equations and their solve give the ridge solution of the explicit
    problem: every upsampled 224x224 pixel a row, the intercept unpenalised (to 1e-5)."""
    torch.manual_seed(0)
    n, c, g, k = 10, 3, 6, 3
    x = torch.rand(n, c, g, g) + 0.5
    settings = converged.RidgeSettings(folds=2, tolerance=1e-10, refinements=10)
    fold = np.zeros(n, dtype=int)
    fold[n // 2:] = 1
    nm = converged.accumulate(x, torch.arange(c), fold, kernel=k, padding=1, settings=settings,
                              device=torch.device("cpu"), progress=False)
    gram, total_sum = sum(nm.grams), sum(nm.sums)
    u, _ = converged.projected_targets(["H", "G"], nm.grid)
    lam = 3.0
    sol = converged.solve(gram, total_sum.T @ u, torch.tensor([lam, lam], dtype=torch.float64), settings)
    # explicit: upsample every column of the design to 224x224
    a = bilinear_matrix(224, nm.grid).double()
    cols = converged.design(x, kernel=k, padding=1, mean=nm.mean, sd=nm.sd).double()  # (n, s^2, D)
    d = cols.shape[2]
    maps = cols.transpose(1, 2).reshape(n, d, nm.grid, nm.grid)
    big = (a @ maps @ a.T).reshape(n, d, -1).transpose(1, 2).reshape(-1, d)  # (n 224^2, D)
    pen = torch.ones(d, dtype=torch.float64)
    pen[-1] = 0
    for p, name in enumerate(["H", "G"]):
        t = make_pattern(name).double().reshape(-1).repeat(n)
        w = torch.linalg.solve(big.T @ big + lam * torch.diag(pen), big.T @ t)
        assert torch.allclose(sol.weights[:, p], w, rtol=1e-5, atol=1e-5 * w.abs().max())
    assert (sol.rel_residual <= 1e-10).all()


def test_positive_rescaling_of_a_channel_leaves_predictions_unchanged():
    torch.manual_seed(1)
    n, c, g = 20, 4, 8
    x = torch.rand(n, c, g, g)
    scaled = x.clone()
    scaled[:, 1] *= 37.0
    scaled[:, 3] *= 0.01
    settings = converged.RidgeSettings(folds=4, ridges=(1e-2, 1e-1, 1.0))
    its = items(n, crops=2)
    fits = [converged.fit(f, its, ["H", "V"], kernel=3, padding=1, settings=settings, progress=False)
            for f in (x, scaled)]
    assert fits[0].ridge == fits[1].ridge
    p0, p1 = (converged.predict(cf, f[:5]) for cf, f in zip(fits, (x, scaled)))
    assert torch.allclose(p0, p1, atol=1e-4 * p0.abs().max())


def test_features_holding_the_target_linearly_give_spc_near_one_and_noise_gives_little():
    """A channel that *is* the horizontal coordinate (plus content noise) is read out almost
    perfectly; pure noise channels are not (train and test photos disjoint)."""
    torch.manual_seed(2)
    n, g = 30, 28
    coord = torch.linspace(0, 1, g).expand(g, g)
    noise = torch.randn(n, 3, g, g)
    with_pos = torch.cat([coord.expand(n, 1, g, g) + 0.05 * torch.randn(n, 1, g, g), noise], 1)
    settings = converged.RidgeSettings(folds=3)
    its = items(n)
    good = converged.fit(with_pos[:20], its[:20], ["H"], kernel=1, settings=settings, progress=False)
    bad = converged.fit(noise[:20], its[:20], ["H"], kernel=1, settings=settings, progress=False)
    spc_good, _ = converged.image_scores(good, with_pos[20:])
    spc_bad, _ = converged.image_scores(bad, noise[20:])
    assert spc_good.mean() > 0.99
    assert spc_bad.mean().abs() < 0.3
    assert all(good.converged) and all(bad.converged)
