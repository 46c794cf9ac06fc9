"""Read-outs fitted to convergence: how much position is decodable, whatever the SGD budget (beyond the paper).

The paper's one-layer read-out is Conv(k x k) -> BatchNorm(1) -> Sigmoid -> bilinear upsampling,
trained by SGD for a fixed budget. SPC is a rank statistic, so the linear predictor Conv(k x k)
decides it; here that predictor is fitted to its ridge optimum, with the loss taken after the exact
bilinear upsampling A (224 x s) of the s x s conv output Y_n(w), as the SGD read-out's loss is:

    min_w  sum_n || A Y_n(w) A^T - T ||^2 + lambda ||w||^2      (the intercept is not penalised)

- Features are zero-padded as the read-out pads them, then standardised per channel with the
  training set's mean and sd: the fit is the SGD read-out's function class, and it no longer depends
  on any channel's scale (ridge treats standardised channels alike).
- With X_n the unfolded k x k patches (s^2 rows, C k^2 + 1 columns) and M = A^T A = L L^T, the loss
  is || (L^T (x) L^T) X_n w ||^2 - 2 w^T X_n^T vec(A^T T A) + const: one Gram matrix of the
  transformed patches, accumulated per cross-validation fold, serves every pattern and every ridge.
- The ridge is chosen per pattern by K-fold cross-validation on the training set, grouped by photo
  (crops of one photo never straddle folds), on the validation loss; a choice at the grid's edge
  extends the grid. Each fit is solved by Cholesky and refined until the relative residual of its
  normal equations ||b - (G + lambda P) w|| / ||b|| (in float64, against the accumulated Gram
  matrix) is at most the tolerance; a fit that misses it is flagged, never averaged in.
- A fit is deterministic: its spread comes from the K fold fits (each scored on the test set) and
  from the test images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import metrics
from .data import ImageItem
from .patterns import make_pattern
from .precision import resolve_precision
from .progress import progress_bar
from .readout import bilinear_matrix, output_grid

OUT_SIZE = 224  # the target maps' side (the SGD read-out upsamples to it as well)


@dataclass(frozen=True)
class RidgeSettings:
    """How a converged read-out is fitted; every field is recorded with its results."""

    folds: int = 5  # K of the grouped cross-validation
    ridges: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # relative to the mean diagonal of the Gram matrix
    extend: int = 3  # decades the grid may grow by, one at a time, when the choice sits at an edge
    tolerance: float = 1e-4  # relative residual of the normal equations a fit must reach
    refinements: int = 6  # iterative-refinement steps allowed before a fit counts as not converged
    precision: str = "fp32"  # Gram accumulation: fp32, or bf16 (faster where native, ~1e-3 relative error)
    batch: int = 16  # images per design block (memory: batch x s^2 x (C k^2 + 1) floats)
    seed: int = 0  # the photo -> fold assignment

    def __post_init__(self) -> None:
        if not isinstance(self.folds, int) or self.folds < 2:
            raise ValueError(f"folds must be an integer >= 2, got {self.folds!r}")
        if len(self.ridges) < 2 or any(not (r > 0) for r in self.ridges) or list(self.ridges) != sorted(self.ridges):
            raise ValueError(f"ridges must be at least two increasing positive numbers, got {self.ridges!r}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance must lie in (0, 1), got {self.tolerance!r}")
        resolve_precision(self.precision)


def photo_groups(items: Sequence[ImageItem]) -> list[str]:
    """The photo each input comes from (crops of one photo share it): cross-validation's groups."""
    return [item.path or item.key for item in items]


def fold_of(groups: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """(N,) fold index of each input: photos shuffled with ``seed`` and dealt round-robin, so every
    crop of a photo lands in its photo's fold and fold sizes differ by at most one photo."""
    names = sorted(set(groups))
    if len(names) < folds:
        raise ValueError(f"{folds}-fold cross-validation needs at least {folds} photos, got {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    fold = {names[i]: rank % folds for rank, i in enumerate(order)}
    return np.array([fold[g] for g in groups])


def upsampling_root(grid: int, size: int = OUT_SIZE) -> torch.Tensor:
    """(grid, grid) upper-triangular R with R^T R = A^T A, A the bilinear upsampling matrix
    (``readout.bilinear_matrix``): ||A Y A^T||^2 = ||R Y R^T||^2 for every map Y."""
    a = bilinear_matrix(size, grid).double()
    return torch.linalg.cholesky(a.T @ a).T.contiguous()


def projected_targets(patterns: Sequence[str], grid: int, size: int = OUT_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """(grid^2, P) vec(A^T T A) per pattern (the right-hand side's map) and (P,) ||T||^2."""
    a = bilinear_matrix(size, grid).double()
    ts = [make_pattern(p, size).double() for p in patterns]
    return (torch.stack([(a.T @ t @ a).reshape(-1) for t in ts], 1), torch.stack([t.square().sum() for t in ts]))


def channel_stats(data: torch.Tensor, channels: torch.Tensor, *, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and sd (float64) of ``data[:, channels]`` over inputs and positions; a
    channel with no spread keeps sd 1 (centring alone)."""
    total = torch.zeros(len(channels), dtype=torch.float64)
    square = torch.zeros_like(total)
    n = 0
    for lo in range(0, data.shape[0], batch):
        x = data[lo:lo + batch][:, channels].double()
        total += x.sum((0, 2, 3))
        square += x.square().sum((0, 2, 3))
        n += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / n
    sd = (square / n - mean.square()).clamp_min(0).sqrt()
    return mean, torch.where(sd > 1e-12 * mean.abs().clamp_min(1), sd, torch.ones_like(sd))


def design(x: torch.Tensor, *, kernel: int, padding: int, mean: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """The read-out's design matrix for a batch of raw features x (B, C, g, g): zero-padded as the
    conv pads, standardised, unfolded into k x k patches, plus a column of ones (the intercept).
    Returns (B, s^2, C k^2 + 1) with s = g + 2 padding - k + 1; columns ordered as a conv weight (C, k, k)."""
    x = F.pad(x, (padding,) * 4) if padding else x
    x = (x - mean.to(x)[:, None, None]) / sd.to(x)[:, None, None]
    cols = F.unfold(x, kernel).transpose(1, 2)  # (B, s^2, C k^2)
    return torch.cat([cols, torch.ones_like(cols[..., :1])], 2)


def transform(cols: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """(R (x) R) X per image: (B, s^2, D) -> (B, s^2, D), so that plain least squares on the result
    is least squares after the bilinear upsampling."""
    b, rows, d = cols.shape
    s = root.shape[0]
    r = root.to(cols)
    y = torch.matmul(r, cols.reshape(b, s, s * d))  # rows of the map
    y = torch.matmul(r, y.reshape(b, s, s, d).transpose(1, 2).reshape(b, s, s * d))  # columns
    return y.reshape(b, s, s, d).transpose(1, 2).reshape(b, rows, d)


def add_gram(acc: torch.Tensor, z: torch.Tensor, precision: str, blocks: int = 4) -> None:
    """acc += z^T z (acc (D, D) float32, z (R, D)), upper block triangle only (``symmetrise`` later):
    half the work of a full product. ``precision`` "bf16" multiplies in bfloat16 (native matrix units),
    summing each block's product into the float32 accumulator."""
    d = z.shape[1]
    edges = [round(i * d / blocks) for i in range(blocks + 1)]
    zz = z.to(torch.bfloat16) if precision == "bf16" else z
    for i in range(blocks):
        a, b = edges[i], edges[i + 1]
        zi = zz[:, a:b].T
        rest = zz[:, a:]
        acc[a:b, a:] += (zi @ rest).to(acc.dtype)


def symmetrise(acc: torch.Tensor) -> torch.Tensor:
    """Fill the lower triangle from the upper one (``add_gram`` computes the upper block triangle)."""
    return torch.triu(acc) + torch.triu(acc, 1).T


@dataclass
class Normal:
    """Per-fold pieces of the normal equations: G_k = sum X~_n^T X~_n, S_k = sum X_n, n_k inputs."""

    grams: list[torch.Tensor]  # K x (D, D) float32
    sums: list[torch.Tensor]  # K x (s^2, D) float64
    counts: list[int]
    mean: torch.Tensor
    sd: torch.Tensor
    grid: int  # s, the conv output's side


def accumulate(data: torch.Tensor, channels: torch.Tensor, fold: np.ndarray, *, kernel: int, padding: int,
               settings: RidgeSettings, device: torch.device, progress: bool = True) -> Normal:
    """One pass over the training features (N, C_all, g, g): the per-fold Gram matrices and sums."""
    g = data.shape[-1]
    s = output_grid(g, 1, kernel, padding)
    if s < 1:
        raise ValueError(f"a {kernel}x{kernel} read-out with padding {padding} leaves no output on a {g}x{g} grid")
    mean, sd = channel_stats(data, channels)
    root = upsampling_root(s).to(device)
    d = len(channels) * kernel * kernel + 1
    precision = resolve_precision(settings.precision, device)
    grams = [torch.zeros(d, d, device=device) for _ in range(settings.folds)]
    sums = [torch.zeros(s * s, d, dtype=torch.float64, device=device) for _ in range(settings.folds)]
    counts = [int((fold == k).sum()) for k in range(settings.folds)]
    batches = [(k, idx[i:i + settings.batch]) for k in range(settings.folds)
               for idx in [np.flatnonzero(fold == k)] for i in range(0, len(idx), settings.batch)]
    for k, idx in progress_bar(batches, progress=progress, desc="Gram matrix"):
        x = data[torch.as_tensor(idx)][:, channels].to(device, torch.float32)
        cols = design(x, kernel=kernel, padding=padding, mean=mean, sd=sd)  # (B, s^2, D)
        sums[k] += cols.sum(0).double()
        add_gram(grams[k], transform(cols, root).reshape(-1, d), precision)
    return Normal([symmetrise(gk) for gk in grams], sums, counts, mean, sd, s)


@dataclass
class Solution:
    weights: torch.Tensor  # (D, P) float64
    rel_residual: torch.Tensor  # (P,)


def solve(gram: torch.Tensor, rhs: torch.Tensor, ridge: torch.Tensor, settings: RidgeSettings) -> Solution:
    """(gram + ridge_p P) w_p = rhs_p for every column p (P: identity but for the unpenalised
    intercept, the last unknown), by Cholesky and iterative refinement in float64 until the relative
    residual is at most the tolerance. Columns with equal ridges share one factorisation."""
    d, n_rhs = rhs.shape
    w = torch.zeros(d, n_rhs, dtype=torch.float64, device=rhs.device)
    res = torch.full((n_rhs,), float("nan"), dtype=torch.float64)
    penalty = torch.ones(d, dtype=torch.float64, device=rhs.device)
    penalty[-1] = 0.0
    for lam in torch.unique(ridge).tolist():
        cols = torch.nonzero(ridge == lam).flatten().tolist()
        b = rhs[:, cols]
        exact = gram.double()
        exact.diagonal().add_(lam * penalty)
        for dtype in (torch.float32, torch.float64):  # float64 only where float32 cannot converge
            h = gram.to(dtype)
            h.diagonal().add_((lam * penalty).to(dtype))
            factor, info = torch.linalg.cholesky_ex(h)
            del h
            if info.item() != 0:
                continue
            x = torch.cholesky_solve(b.to(dtype), factor).double()
            for _ in range(settings.refinements):
                r = b - exact @ x
                rel = r.norm(dim=0) / b.norm(dim=0).clamp_min(1e-300)
                if bool((rel <= settings.tolerance).all()):
                    break
                x = x + torch.cholesky_solve(r.to(dtype), factor).double()
            rel = (b - exact @ x).norm(dim=0) / b.norm(dim=0).clamp_min(1e-300)
            if bool((rel <= settings.tolerance).all()):
                break
        w[:, cols] = x
        res[cols] = rel.cpu()
    return Solution(w, res)


@dataclass
class ConvergedFit:
    """A converged read-out per pattern: the full fit, the K fold fits, the chosen ridges."""

    patterns: list[str]
    kernel: int
    padding: int
    channels: torch.Tensor  # indices into the features' channels
    mean: torch.Tensor
    sd: torch.Tensor
    grid: int
    weights: torch.Tensor  # (D, P) the fit on the whole training set
    fold_weights: torch.Tensor  # (K, D, P) each fold's fit (trained without it) at the chosen ridge
    ridge: list[float]  # per pattern, relative to the mean diagonal of the Gram matrix
    rel_residual: list[float]  # per pattern, the whole-set fit's
    fold_rel_residual: list[float]  # per pattern, the largest over the fold fits
    cv_loss: dict[float, list[float]]  # ridge -> per-pattern validation MSE per pixel
    settings: RidgeSettings = field(default_factory=RidgeSettings)

    @property
    def converged(self) -> list[bool]:
        tol = self.settings.tolerance
        return [r <= tol and f <= tol for r, f in zip(self.rel_residual, self.fold_rel_residual)]


def fit(data: torch.Tensor, items: Sequence[ImageItem], patterns: Sequence[str], *, channels: Sequence[int] | None = None,
        kernel: int = 3, padding: int = 0, settings: RidgeSettings = RidgeSettings(),
        device: str | torch.device = "cpu", progress: bool = True) -> ConvergedFit:
    """Converged read-outs of ``patterns`` from the training features ``data`` (N, C, g, g) of
    ``items`` (for the grouping by photo): ridge chosen per pattern by grouped K-fold cross-validation."""
    device = torch.device(device)
    if data.shape[0] != len(items):
        raise ValueError(f"{data.shape[0]} feature rows but {len(items)} items")
    chans = torch.arange(data.shape[1]) if channels is None else torch.as_tensor(list(channels), dtype=torch.long)
    fold = fold_of(photo_groups(items), settings.folds, settings.seed)
    nm = accumulate(data, chans, fold, kernel=kernel, padding=padding, settings=settings, device=device,
                    progress=progress)
    u, t2 = projected_targets(patterns, nm.grid)
    u, t2 = u.to(device), t2.to(device)
    total = sum(nm.grams)
    pixels = OUT_SIZE * OUT_SIZE
    ridges = list(settings.ridges)
    losses: dict[float, torch.Tensor] = {}  # ridge -> (P,) validation MSE summed over folds
    fold_sols: dict[float, list[Solution]] = {}
    scale = []  # per fold: mean diagonal of its training Gram (penalised part)
    for k in range(settings.folds):
        g_train = total - nm.grams[k]
        scale.append(g_train.diagonal()[:-1].double().mean().item())

    def evaluate(lam: float) -> None:
        loss = torch.zeros(len(patterns), dtype=torch.float64, device=device)
        sols = []
        for k in range(settings.folds):
            g_train = total - nm.grams[k]
            b_train = (sum(nm.sums) - nm.sums[k]).T @ u  # (D, P)
            sol = solve(g_train, b_train, torch.full((len(patterns),), lam * scale[k], dtype=torch.float64), settings)
            w = sol.weights
            gk = nm.grams[k].double()
            bk = nm.sums[k].T @ u
            loss += ((w * (gk @ w)).sum(0) - 2 * (w * bk).sum(0) + nm.counts[k] * t2) / pixels
            sols.append(sol)
        losses[lam] = loss / sum(nm.counts)
        fold_sols[lam] = sols

    for lam in ridges:
        evaluate(lam)
    for _ in range(settings.extend):  # grow the grid by a decade where a pattern's choice sits at an edge
        best = [min(losses, key=lambda r: losses[r][p].item()) for p in range(len(patterns))]
        grow = ([min(losses) / 10] if min(losses) in best else []) + ([max(losses) * 10] if max(losses) in best else [])
        if not grow:
            break
        for lam in grow:
            evaluate(lam)
    best = [min(losses, key=lambda r: losses[r][p].item()) for p in range(len(patterns))]
    full_scale = total.diagonal()[:-1].double().mean().item()
    b_full = sum(nm.sums).T @ u
    full = solve(total, b_full, torch.tensor([r * full_scale for r in best], dtype=torch.float64, device=device),
                 settings)
    fold_w = torch.stack([torch.stack([fold_sols[best[p]][k].weights[:, p] for p in range(len(patterns))], 1)
                          for k in range(settings.folds)])
    fold_res = [max(fold_sols[best[p]][k].rel_residual[p].item() for k in range(settings.folds))
                for p in range(len(patterns))]
    return ConvergedFit(list(patterns), kernel, padding, chans, nm.mean, nm.sd, nm.grid, full.weights.cpu(),
                        fold_w.cpu(), best, full.rel_residual.tolist(), fold_res,
                        {lam: v.tolist() for lam, v in sorted(losses.items())}, settings)


def predict(cf: ConvergedFit, data: torch.Tensor, weights: torch.Tensor | None = None, *,
            device: str | torch.device = "cpu") -> torch.Tensor:
    """(N, P, 224, 224) upsampled predictions of the read-outs (default: the whole-set fit's
    ``cf.weights``; or a (D, P) set such as one fold's) on features ``data`` (N, C, g, g)."""
    w = (cf.weights if weights is None else weights).to(device, torch.float64)
    a = bilinear_matrix(OUT_SIZE, cf.grid).to(device, torch.float64)
    out = []
    for lo in range(0, data.shape[0], cf.settings.batch):
        x = data[lo:lo + cf.settings.batch][:, cf.channels].to(device, torch.float32)
        cols = design(x, kernel=cf.kernel, padding=cf.padding, mean=cf.mean, sd=cf.sd).double()
        y = (cols @ w).transpose(1, 2).reshape(-1, w.shape[1], cf.grid, cf.grid)  # (B, P, s, s)
        out.append((a @ y @ a.T).float().cpu())
    return torch.cat(out)


def image_scores(cf: ConvergedFit, data: torch.Tensor, weights: torch.Tensor | None = None, *,
                 device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image SPC and MAE of every pattern's read-out: two (N, P) tensors. Predictions are
    scored in blocks, never all kept (a training set's maps would fill memory)."""
    targets = [make_pattern(p, OUT_SIZE) for p in cf.patterns]
    spcs, maes = [], []
    block = cf.settings.batch * 4
    for lo in range(0, data.shape[0], block):
        pred = predict(cf, data[lo:lo + block], weights, device=device)
        spcs.append(torch.stack([metrics.spc(pred[:, p], t) for p, t in enumerate(targets)], 1))
        maes.append(torch.stack([metrics.mae(pred[:, p], t) for p, t in enumerate(targets)], 1))
    return torch.cat(spcs).float(), torch.cat(maes).float()


def se_images(values: torch.Tensor) -> float:
    """Standard error of the mean over test images; NaN for a single image (no spread)."""
    v = values.double()
    return float(v.std() / math.sqrt(len(v))) if len(v) > 1 else float("nan")
