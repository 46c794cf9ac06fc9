"""Section 4.2: VGG encoder-decoders trained from scratch for saliency and segmentation.

``TaskNet`` is VGG16's conv body (13 3x3 convs in blocks of 2, 2, 3, 3, 3, with BatchNorm, laid out
exactly as torchvision's ``vgg16_bn().features``, so its taps are the same f1..f5 nodes) and a light
hypercolumn decoder: each tap is projected by a 1x1 conv, resized to the input size, summed, and a
1x1 conv gives the logits. The decoder has no spatial kernels, so ``pad=False`` removes zero padding
from the whole network and is the only difference between the two variants (Table 5).
``width`` scales every layer (64 = VGG16's widths; the CPU profile uses a narrow one).

Without padding each 3x3 conv trims a pixel from every side (a 224 input leaves taps of 220, 106, 47,
17 and 2 pixels); each tap is stretched back over the whole input, as the feature cache stretches
the taps of ``vgg16_nopad``.

``train_task`` checkpoints after every epoch and resumes from the last checkpoint.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from .encoders import VGG16_BN_TAPS, Encoder
from .files import load_checked, save_checked
from .precision import PRECISIONS, check_precision, resolve_precision
from .metrics import confusion_matrix, mae, max_fmeasure, mean_iou
from .progress import progress_bar
from .weights import Preprocess

VGG16_BLOCKS = (2, 2, 3, 3, 3)
TASKS = ("saliency", "segmentation")


TASK_PADDINGS: tuple[str, ...] = ("zeros", "reflect", "replicate", "circular", "full", "none")
# "full": Kayhan & van Gemert's full convolution (CVPR 2020), zero padding k - 1 = 2 so every pixel
# meets every kernel tap; each tap is cropped back to its same-padding size, centred, before decoding.


NOPAD_MIN_SIDE = 196  # the smallest input a task network without padding can see (its last block needs 7 px)


def check_task_padding(mode: str) -> str:
    if mode not in TASK_PADDINGS:
        raise ValueError(f"unknown task network padding {mode!r}; valid: {', '.join(TASK_PADDINGS)}")
    return mode


def vgg16_bn_body(width: int = 64, pad: bool = True, padding_mode: str = "zeros") -> nn.Sequential:
    """VGG16-BN's conv body without the last pool (torchvision's module indices), widths
    ``width`` x (1, 2, 4, 8, 8); ``padding_mode`` (``TASK_PADDINGS``) applies where ``pad``."""
    check_task_padding(padding_mode)
    pad = pad and padding_mode != "none"
    width_of_pad = (2 if padding_mode == "full" else 1) if pad else 0
    torch_mode = padding_mode if padding_mode in ("reflect", "replicate", "circular") else "zeros"
    layers: list[nn.Module] = []
    c = 3
    for b, n in enumerate(VGG16_BLOCKS):
        w = width * min(2**b, 8)
        if b:
            layers.append(nn.MaxPool2d(2))
        for _ in range(n):
            layers += [nn.Conv2d(c, w, 3, padding=width_of_pad, padding_mode=torch_mode), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True)]
            c = w
    return nn.Sequential(*layers)


def crop_centre(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centred ``size`` window of a map (N, C, H, W) at least that large."""
    top, left = (x.shape[-2] - size[0]) // 2, (x.shape[-1] - size[1]) // 2
    return x[..., top:top + size[0], left:left + size[1]]


def tap_channels(width: int) -> list[int]:
    return [width * min(2**b, 8) for b in range(len(VGG16_BLOCKS))]


class TaskNet(nn.Module):
    """VGG16-BN body + hypercolumn decoder: RGB in [0, 1] (N, 3, H, W) -> logits (N, classes, H, W)."""

    def __init__(self, out_channels: int, *, width: int = 64, pad: bool = True, decoder_width: int | None = None,
                 seed: int = 0, padding_mode: str = "zeros") -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        check_task_padding(padding_mode)
        self.padding_mode = padding_mode if pad else "none"
        self.out_channels, self.width, self.pad = out_channels, width, self.padding_mode != "none"
        self.decoder_width = decoder_width or 2 * width
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.preprocess = Preprocess("torchvision")
            self.body = vgg16_bn_body(width, self.pad, self.padding_mode)
            self.side = nn.ModuleList(nn.Conv2d(c, self.decoder_width, 1) for c in tap_channels(width))
            self.head = nn.Conv2d(self.decoder_width, out_channels, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = images.shape[-2:]
        x, taps = self.preprocess(images), []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if str(i) in VGG16_BN_TAPS:
                # full convolution: the body's maps grow by 4-6 px per block; the decoder reads each tap's
                # centre at its same-padding size (the part over the image; max-pooling odd sizes shifts it <= 1 px)
                scale = 2 ** len(taps)
                taps.append(crop_centre(x, (size[0] // scale, size[1] // scale)) if self.padding_mode == "full" else x)
        z = sum(F.interpolate(side(t), size=size, mode="bilinear", align_corners=False)
                for side, t in zip(self.side, taps))
        return self.head(F.relu(z))

    def describe(self) -> dict:
        return {"architecture": "VGG16-BN body + hypercolumn decoder (1x1 convs)", "width": self.width,
                "pad": self.pad, "decoder_width": self.decoder_width, "out_channels": self.out_channels,
                "parameters": sum(p.numel() for p in self.parameters()),
                # a mode beyond zero padding or none (which ``pad`` says) is named: it is part of the identity
                **({"padding_mode": self.padding_mode} if self.padding_mode not in ("zeros", "none") else {})}


@dataclass(frozen=True)
class TaskConfig:
    """Optimisation of a task network (Adam; the paper does not give its own settings)."""

    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    precision: str = "fp32"  # arithmetic of forward passes: "fp32" or "bf16" (autocast); resolve "auto" first
    seed: int = 0  # initialisation and batch order

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        check_precision(self.precision, allow_auto=False)  # a checkpoint records the precision it was made in


def _targets(labels: torch.Tensor, task: str) -> torch.Tensor:
    return (labels > 0).float()[:, None] if task == "saliency" else labels


def _loss(logits: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    logits = logits.float()
    if task == "saliency":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.cross_entropy(logits, target)


@dataclass
class TaskRun:
    net: TaskNet
    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0  # training time (summed over resumed sessions)
    checkpoint: Path | None = None


def state_digest(module: nn.Module) -> str:
    """sha256 of a module's parameters and buffers: the identity of trained weights in the feature cache."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")


def train_task(net: TaskNet, images: torch.Tensor, labels: torch.Tensor, task: str, config: TaskConfig, *,
               checkpoint: str | Path | None = None, device: torch.device | str = "cpu",
               max_epochs: int | None = None, progress: bool = True) -> TaskRun:
    """Train ``net`` on images (N, 3, H, W) in [0, 1] and label maps (N, H, W).

    With ``checkpoint``, the state is saved after every epoch and a later call resumes from it (a
    finished run is loaded, not repeated). ``max_epochs`` stops this call after that many epochs
    (an interruption on purpose; the next call resumes).
    """
    check_task(task)
    device = torch.device(device)
    net.to(device, memory_format=torch.channels_last)  # ~2x faster convolutions on the CPU
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    run = TaskRun(net, checkpoint=Path(checkpoint) if checkpoint else None)
    start = 0
    state = load_checked(run.checkpoint, what="task checkpoint", map_location=device) \
        if run.checkpoint and run.checkpoint.exists() else None
    if state is not None:
        if state["config"] != asdict(config):
            raise ValueError(f"checkpoint {run.checkpoint} was made with other settings; delete it to retrain")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, run.epoch_loss, run.seconds = state["epoch"], state["epoch_loss"], state["seconds"]
    gen = torch.Generator().manual_seed(config.seed)
    orders = [torch.randperm(len(images), generator=gen) for _ in range(config.epochs)]  # same order on resume
    dtype = PRECISIONS[config.precision]
    n_batches = -(-len(images) // config.batch_size)
    stop = config.epochs if max_epochs is None else min(config.epochs, start + max_epochs)
    bar = progress_bar(total=(stop - start) * n_batches, desc=f"{task} ({'pad' if net.pad else 'no pad'})",
                       unit="batch", progress=progress)
    for epoch in range(start, stop):
        t0, total = time.perf_counter(), 0.0
        net.train()
        for idx in orders[epoch].split(config.batch_size):
            x = images[idx].to(device).contiguous(memory_format=torch.channels_last)
            y = _targets(labels[idx], task).to(device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                logits = net(x)
            loss = _loss(logits, y, task)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            bar.update()
        run.epoch_loss.append(total / len(images))
        run.seconds += time.perf_counter() - t0
        bar.set_postfix(loss=f"{run.epoch_loss[-1]:.3f}")
        if run.checkpoint:
            state = {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                     "epoch_loss": run.epoch_loss, "seconds": run.seconds, "config": asdict(config),
                     "net": net.describe()}
            save_checked(run.checkpoint, state)
    bar.close()
    net.eval()
    return run


@torch.no_grad()
def predict(net: TaskNet, images: torch.Tensor, *, batch_size: int = 32, device: torch.device | str = "cpu",
            precision: str = "auto") -> torch.Tensor:
    """Saliency probabilities (N, H, W) or class scores (N, K, H, W) as float32 on the CPU."""
    device = torch.device(device)
    net.to(device, memory_format=torch.channels_last).eval()
    dtype = PRECISIONS[resolve_precision(precision, device)]
    out = []
    for x in images.split(batch_size):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            logits = net(x.to(device).contiguous(memory_format=torch.channels_last)).float()
        out.append((logits.sigmoid()[:, 0] if net.out_channels == 1 else logits.softmax(1)).cpu())
    return torch.cat(out)


BORDER_FRACTION = 1 / 8  # the border band of ``score_saliency``: 28 px of a 224 image


def score_saliency(probs: torch.Tensor, labels: torch.Tensor, *, border: float = BORDER_FRACTION) -> dict:
    """Max F-measure (beta^2 = 0.3) and MAE of saliency maps against the masks ``labels > 0``, and
    the MAE split into the band within ``border`` x side of the image edge and the interior (where
    a network without padding should suffer most is near the border)."""
    masks = labels > 0
    err = (probs.float() - masks.float()).abs()
    h, w = err.shape[-2:]
    bh, bw = max(1, round(h * border)), max(1, round(w * border))
    band = torch.ones(h, w, dtype=torch.bool)
    band[bh:h - bh, bw:w - bw] = False
    return {"fmeasure": max_fmeasure(probs, masks), "mae": mae(probs, masks.float()).mean().item(),
            "mae_border": err[:, band].mean().item(), "mae_interior": err[:, ~band].mean().item()}


def score_segmentation(scores: torch.Tensor, labels: torch.Tensor, n_classes: int) -> dict:
    """mIoU (background included) and per-class IoU of the argmax labels."""
    miou, per_class = mean_iou(confusion_matrix(scores.argmax(1), labels, n_classes))
    return {"miou": miou, "iou_per_class": per_class.tolist()}


def task_encoder(net: TaskNet, name: str, provenance: dict, weights: str = "trained") -> Encoder:
    """The trained body of ``net`` as a frozen encoder with the f1..f5 taps, for read-outs (Table 6).

    The feature cache knows the weights by ``state_digest`` (stored as ``file_sha256``).
    """
    body = create_feature_extractor(net.body.eval(), return_nodes=dict(VGG16_BN_TAPS))
    prov = {**provenance, **net.describe(), "file_sha256": state_digest(net.body)}
    return Encoder(name, weights, body, Preprocess("torchvision"), list(VGG16_BN_TAPS.values()),
                   tap_channels(net.width), prov)


@torch.no_grad()
def calibrate_batchnorm(net: nn.Module, images: torch.Tensor, *, batch_size: int = 32,
                        device: torch.device | str = "cpu") -> nn.Module:
    """Set every BatchNorm's running statistics to the average over ``images`` (weights unchanged).

    A network at initialisation has running mean 0 and variance 1, so in eval mode its BatchNorm
    layers would not normalise at all; the random-init control gets statistics estimated on the
    training images instead, as training would give it.
    """
    device = torch.device(device)
    net.to(device)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    net.train()
    for x in images.split(batch_size):
        net(x.to(device))
    for m in bns:
        m.momentum = 0.1
    return net.eval()
