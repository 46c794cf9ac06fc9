"""The paper's two scores (Sec. 3.2): Spearman rank correlation (SPC) and mean absolute error (MAE).

Both are computed per image on the flattened maps, batched in torch. ``spc`` equals
``scipy.stats.spearmanr`` (average ranks for ties) except for one case scipy leaves undefined:
a constant map has no ranks, so its correlation is NaN in scipy and in the official code. Here it
is defined as 0.0 -- a constant prediction carries no position information -- so averages over
images never turn into NaN. "Constant" means constant up to float32 rounding: bilinear upsampling
of a flat map leaves one-ulp wiggles whose ranks are noise, not position (spread at most
``CONSTANT_RTOL`` times the map's magnitude). A map holding NaN or inf has no ranks either, but it
is a failure, not an absence of position: its SPC and MAE are NaN (scipy would rank NaN as the
largest value and return a number), so a diverged read-out can never pass for one scoring 0.
"""

from __future__ import annotations

import torch

CONSTANT_RTOL = 1e-6  # ~8 float32 ulps: a map whose spread is below this is treated as constant


def _as_batch(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Flatten to (N, H*W); a single (H, W) target is broadcast over a batch of predictions."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    single = pred.dim() == 2
    if pred.dim() == 4 and pred.shape[1] == 1:  # (N, 1, H, W) read-out output
        pred = pred[:, 0]
    if target.dim() == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if pred.dim() == 2:
        pred = pred[None]
    if pred.dim() != 3:
        raise ValueError(f"pred must be (H, W), (N, H, W) or (N, 1, H, W); got shape {tuple(pred.shape)}")
    if target.dim() == 2:
        target = target.expand_as(pred) if target.shape == pred.shape[1:] else target[None]
    if target.shape != pred.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)} "
            "(a single (H, W) target is broadcast over a batch)"
        )
    n = pred.shape[0]
    return pred.reshape(n, -1), target.reshape(n, -1), single


def rank(x: torch.Tensor) -> torch.Tensor:
    """Average ranks (1-based, ties share their mean rank) along the last dim, as float64."""
    x = x.to(torch.float64)
    s, order = x.sort(dim=-1)
    n = s.shape[-1]
    pos = torch.arange(n, device=x.device).expand_as(s)
    starts = torch.ones_like(s, dtype=torch.bool)
    starts[..., 1:] = s[..., 1:] != s[..., :-1]
    ends = torch.ones_like(s, dtype=torch.bool)
    ends[..., :-1] = starts[..., 1:]
    first = torch.where(starts, pos, 0).cummax(dim=-1).values  # first index of each tie group
    last = torch.where(ends, pos, n).flip(-1).cummin(dim=-1).values.flip(-1)  # its last index
    avg = (first + last).to(torch.float64) / 2 + 1
    return torch.empty_like(avg).scatter_(-1, order, avg)


def _is_constant(x: torch.Tensor) -> torch.Tensor:
    """(N,) True where a flattened map is constant up to float32 rounding."""
    x = x.to(torch.float64)
    spread = x.amax(-1) - x.amin(-1)
    return spread <= CONSTANT_RTOL * x.abs().amax(-1)


def spc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per image: shape (N,) for a batch, a 0-d tensor for one map.

    A constant pred or target (up to float32 rounding) gives 0.0; scipy and the official code
    give NaN, or a meaningless rank of rounding noise. A pred or target holding NaN or inf gives NaN.
    """
    one_target = torch.as_tensor(target).dim() == 2 and torch.as_tensor(pred).dim() > 2
    p, t, single = _as_batch(pred, target)
    flat = _is_constant(p) | _is_constant(t)
    rp = rank(p)
    rt = rank(t[:1]).expand_as(rp) if one_target else rank(t)  # one target map: rank it once, not per image
    rp = rp - rp.mean(dim=-1, keepdim=True)
    rt = rt - rt.mean(dim=-1, keepdim=True)
    denom = (rp.square().sum(-1) * rt.square().sum(-1)).sqrt()
    ok = (denom > 0) & ~flat
    rho = torch.where(ok, (rp * rt).sum(-1) / denom.clamp_min(1e-300), torch.zeros_like(denom))
    broken = ~torch.isfinite(p).all(-1) | ~torch.isfinite(t).all(-1)
    rho = rho.masked_fill(broken, float("nan"))
    return rho[0] if single else rho


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image: shape (N,) for a batch, a 0-d tensor for one map."""
    p, t, single = _as_batch(pred, target)
    err = (p.to(torch.float64) - t.to(torch.float64)).abs().mean(-1)
    return err[0] if single else err


def content_loss(predictions: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-pixel content loss of Sec. 4.1 (Eq. 4): the mean over patterns of |G - P|.

    L = (|G_H - P_H| + |G_V - P_V| + |G_G - P_G|) / 3 for the H, V and G read-outs' predictions P.
    ``predictions[p]``: (N, H, W) maps; ``targets[p]``: (H, W). Returns (N, H, W): large where the
    image's content pulls the read-out away from pure position.
    """
    if set(predictions) != set(targets) or not predictions:
        raise ValueError(f"need the same patterns in predictions and targets, got {sorted(predictions)} and {sorted(targets)}")
    errs = []
    for p, pred in predictions.items():
        target = torch.as_tensor(targets[p])
        if pred.shape[-2:] != target.shape:
            raise ValueError(f"pattern {p}: prediction maps {tuple(pred.shape[-2:])} vs target {tuple(target.shape)}")
        errs.append((pred.float() - target.float()).abs())
    return torch.stack(errs).mean(0)


# --- Section 4.2's task scores: salient object detection and semantic segmentation ---------------

FMEASURE_BETA2 = 0.3  # the saliency literature's weight: precision counts more than recall


def fmeasure_curve(probs: torch.Tensor, masks: torch.Tensor, *, thresholds: int = 256,
                   beta2: float = FMEASURE_BETA2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Precision, recall and F-measure at ``thresholds`` evenly spaced thresholds in [0, 1].

    Per image, the map binarised at each threshold is compared with the mask; precision and recall
    are averaged over images, and F = (1 + b2) P R / (b2 P + R) is computed from the averages (the
    standard saliency benchmark protocol). An empty prediction has precision 0; an image without
    object pixels has recall 0. ``probs`` (N, H, W) in [0, 1]; ``masks`` (N, H, W) boolean.
    """
    probs, masks = torch.as_tensor(probs).float(), torch.as_tensor(masks).bool()
    if probs.shape != masks.shape or probs.dim() != 3:
        raise ValueError(f"need probs and masks of the same shape (N, H, W); got {tuple(probs.shape)} and {tuple(masks.shape)}")
    n = probs.shape[0]
    # Histogram of each image's scores, split by mask: cumulative sums from the top give, for every
    # threshold, the true positives and all positives in one pass.
    bins = (probs.clamp(0, 1) * (thresholds - 1)).round().long().reshape(n, -1)
    m = masks.reshape(n, -1)
    hit = torch.zeros(n, thresholds).scatter_add_(1, bins, m.float())
    allp = torch.zeros(n, thresholds).scatter_add_(1, bins, torch.ones_like(bins, dtype=torch.float))
    tp = hit.flip(1).cumsum(1).flip(1)  # predictions >= threshold t
    pp = allp.flip(1).cumsum(1).flip(1)
    precision = torch.where(pp > 0, tp / pp.clamp_min(1), torch.zeros_like(tp)).mean(0)
    recall = (tp / m.sum(1, keepdim=True).clamp_min(1)).mean(0)
    f = torch.where(precision + recall > 0,
                    (1 + beta2) * precision * recall / (beta2 * precision + recall).clamp_min(1e-12),
                    torch.zeros_like(precision))
    return precision, recall, f


def max_fmeasure(probs: torch.Tensor, masks: torch.Tensor, *, beta2: float = FMEASURE_BETA2) -> float:
    """The maximum over thresholds of the F-measure curve (``fmeasure_curve``): "max F"."""
    return fmeasure_curve(probs, masks, beta2=beta2)[2].max().item()


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(n_classes, n_classes) pixel counts, rows = true class, columns = predicted class."""
    pred, labels = torch.as_tensor(pred).long().reshape(-1), torch.as_tensor(labels).long().reshape(-1)
    if pred.shape != labels.shape:
        raise ValueError("pred and labels must have the same number of pixels")
    if pred.numel() and (min(pred.min(), labels.min()) < 0 or max(pred.max(), labels.max()) >= n_classes):
        raise ValueError(f"class indices must lie in 0..{n_classes - 1}")
    return torch.bincount(labels * n_classes + pred, minlength=n_classes**2).reshape(n_classes, n_classes)


def mean_iou(confusion: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Mean intersection-over-union over the classes present in the ground truth or the
    prediction (background included, as PASCAL VOC's mIoU), and the per-class IoU (NaN if absent)."""
    c = confusion.double()
    inter = c.diag()
    union = c.sum(0) + c.sum(1) - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))
    return iou.nanmean().item(), iou
