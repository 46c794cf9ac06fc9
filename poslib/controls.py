"""Controls for the random-weight finding: init schemes, scale matching, BatchNorm calibration, and
a content-independent reading of how much of the features' variance is position.

A random encoder is only a control if its init is stated and varied. ``random_encoder`` draws one
with a given seed and scheme; ``match_scale`` rescales a random VGG16 so that each conv's output
spread equals a reference network's on the same images; ``calibrate_batchnorm`` gives a random
network's BatchNorm layers the statistics of real images. Each records what it did in the
encoder's provenance, hence in its feature-cache key (``features.encoder_identity``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import pandas as pd
from torch import nn

from . import dense
from .encoders import Encoder, build_encoder
from .stats import mark_failed, seed_sd, without_failed

INIT_SCHEMES: tuple[str, ...] = ("torchvision", "pytorch")  # scale-matched: ``match_scale`` on a torchvision init


def check_init(scheme: str) -> str:
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {', '.join(INIT_SCHEMES)}")
    return scheme


def random_encoder(name: str, seed: int, init: str = "torchvision") -> Encoder:
    """``name`` with random weights drawn with ``seed``.

    "torchvision": torchvision's own init (VGG: Kaiming normal, fan_out, zero bias; BatchNorm weight
    1, bias 0). "pytorch": every conv and linear layer re-drawn by PyTorch's default
    ``reset_parameters`` (Kaiming uniform with a=sqrt(5), uniform bias): what a VGG gets when, as in
    the official code, its ``_initialize_weights`` is never called.
    """
    enc = build_encoder(name, "random", seed=seed)
    if check_init(init) == "pytorch":
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for m in enc.body.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.reset_parameters()
        enc.provenance = {**enc.provenance, "init": "pytorch"}
    return enc


def _convs(encoder: Encoder) -> list[nn.Conv2d]:
    return [m for m in encoder.body.modules() if isinstance(m, nn.Conv2d)]


@torch.no_grad()
def conv_spreads(encoder: Encoder, images: torch.Tensor, *, batch_size: int = 16) -> torch.Tensor:
    """The standard deviation of each conv's output (over images, channels and positions), in order."""
    convs = _convs(encoder)
    sums = torch.zeros(len(convs), 2, dtype=torch.float64)
    counts = torch.zeros(len(convs), dtype=torch.float64)

    def hook(k):
        def record(_module, _inputs, out):
            out = out.double()
            sums[k, 0] += out.sum()
            sums[k, 1] += (out * out).sum()
            counts[k] += out.numel()
        return record

    handles = [m.register_forward_hook(hook(k)) for k, m in enumerate(convs)]
    try:
        for x in images.split(batch_size):
            encoder(x)
    finally:
        for h in handles:
            h.remove()
    mean = sums[:, 0] / counts
    return (sums[:, 1] / counts - mean * mean).clamp_min(0).sqrt()


def _digest(images: torch.Tensor) -> str:
    return hashlib.sha256(images.float().contiguous().numpy().tobytes()).hexdigest()[:16]


@torch.no_grad()
def match_scale(encoder: Encoder, reference: Encoder, images: torch.Tensor) -> Encoder:
    """Rescale ``encoder``'s convs (in place) so that each conv's output spread on ``images`` equals
    ``reference``'s, layer by layer (both: the same architecture and input).

    With zero biases, ReLU and max pooling the network is positively homogeneous, so scaling conv i
    by s_i scales every later conv's output by s_i too: s_i is the ratio of target to current spread
    divided by the ratio already applied upstream, and one measurement pass suffices.
    """
    convs, ref_convs = _convs(encoder), _convs(reference)
    if len(convs) != len(ref_convs):
        raise ValueError("encoder and reference must have the same convs")
    if any(c.bias is not None and c.bias.abs().max() > 0 for c in convs):
        raise ValueError("match_scale needs zero conv biases (a torchvision-init random VGG)")
    ratio = conv_spreads(reference, images) / conv_spreads(encoder, images)
    scales = ratio / torch.cat([torch.ones(1, dtype=ratio.dtype), ratio[:-1]])
    for conv, s in zip(convs, scales):
        conv.weight.mul_(float(s))
    encoder.provenance = {**encoder.provenance, "init": "scale-matched",
                          "init_scales": [float(f"{s:.6g}") for s in scales],
                          "init_reference": reference.weights, "init_images": _digest(images)}
    return encoder


def calibrate_batchnorm(encoder: Encoder, images: torch.Tensor, *, batch_size: int = 32) -> Encoder:
    """Set every BatchNorm's running statistics to their average over ``images`` (weights unchanged).

    At init, running mean 0 and variance 1 make eval-mode BatchNorm the identity (times its weight):
    a random network then runs unnormalised. Training would give it real statistics; so does this
    (``dense.calibrate_batchnorm`` on the encoder's body, fed the encoder's preprocessing).
    """
    if not any(isinstance(m, nn.BatchNorm2d) for m in encoder.body.modules()):
        raise ValueError(f"{encoder.name} has no BatchNorm layers to calibrate")
    dense.calibrate_batchnorm(encoder.body, encoder.preprocess(images), batch_size=batch_size)
    encoder.provenance = {**encoder.provenance, "batchnorm": f"calibrated on {len(images)} images",
                          "batchnorm_images": _digest(images)}
    return encoder


def position_share(features: torch.Tensor, channels: Sequence[int] | None = None) -> list[float]:
    """The share of the features' variance that position alone explains, per tap (content-free).

    ``features``: (N, C, g, g) for N images. Per channel, the position variance is the variance over
    positions of the mean map over images, less its sampling noise (the mean over positions of the
    variance over images, / N); the total is the variance over images and positions. Per tap
    (``channels``: its channel counts; default one tap): summed position variance / summed total.
    0: the mean map is flat (no absolute position); 1: every image gives the same map.
    """
    x = features.double()
    n = x.shape[0]
    if n < 2:
        raise ValueError("position_share needs at least 2 images")
    mean_map = x.mean(0)  # (C, g, g)
    within = x.var(0, unbiased=True).flatten(1).mean(1)  # (C,)
    positional = (mean_map.flatten(1).var(1, unbiased=False) - within / n).clamp_min(0)
    total = x.transpose(0, 1).flatten(1).var(1, unbiased=False)
    channels = list(channels) if channels is not None else [x.shape[1]]
    out, start = [], 0
    for c in channels:
        t = total[start:start + c].sum()
        out.append(float(positional[start:start + c].sum() / t) if t > 0 else float("nan"))
        start += c
    if start != x.shape[1]:
        raise ValueError(f"channels sum to {start}, features have {x.shape[1]}")
    return out


def summarize_runs(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean and sd over every run (encoder seed x read-out seed) of each setting's SPC, and the sd over
    encoder seeds of the per-encoder means (NaN where one encoder, e.g. ImageNet weights: no spread).
    Failed read-outs (``stats.failed_readout``) are left out and counted in ``n_failed``."""
    by = list(by)
    rows = mark_failed(rows, [k for k in by if k != "test_set"])
    kept, _ = without_failed(rows, ["spc_mean"])
    per_encoder = kept.groupby([*by, "encoder_seed"], dropna=False, sort=False)["spc_mean"].mean().reset_index()
    out = kept.groupby(by, dropna=False, sort=False).agg(
        spc_mean=("spc_mean", "mean"), spc_sd=("spc_mean", seed_sd), n_runs=("_kept", "sum"),
        n_encoders=("encoder_seed", "nunique"), n_failed=("_failed", "sum")).reset_index()
    enc_sd = per_encoder.groupby(by, dropna=False, sort=False)["spc_mean"].agg(seed_sd).rename("encoder_sd")
    return out.merge(enc_sd.reset_index(), on=by, how="left")
