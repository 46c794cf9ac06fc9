"""Training and evaluation of a read-out against one target pattern (Sec. 3.2, official protocol).

The encoder is frozen, so a read-out only ever sees its *outputs*: the inputs here are tap lists
(or image tensors for PosENet alone) held in memory or memory-mapped, never raw images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from .metrics import mae, spc
from .progress import progress_bar
from .readout import PosENet, Taps, as_taps, forward_many, train_losses


@dataclass(frozen=True)
class TrainConfig:
    """The official optimisation protocol; every value can be changed."""

    epochs: int = 15
    batch_size: int = 32
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_milestones: tuple[int, ...] = (10,)  # lr x lr_gamma at the start of these epochs (0-based)
    lr_gamma: float = 0.1
    seed: int = 0  # order of the training batches (the read-out's init has its own seed)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name, low, strict in (("lr", 0.0, True), ("momentum", 0.0, False), ("weight_decay", 0.0, False),
                                  ("lr_gamma", 0.0, True)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < low or (strict and v == low):
                raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {v!r}")
        if not all(isinstance(m, int) and m >= 0 for m in self.lr_milestones):
            raise ValueError(f"lr_milestones must be epoch indices >= 0, got {self.lr_milestones!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    epoch_loss: list[float] = field(default_factory=list)  # mean MSE over each epoch's batches
    batch_loss: list[float] = field(default_factory=list)


@dataclass
class Evaluation:
    spc: torch.Tensor  # (N,) per-image Spearman
    mae: torch.Tensor  # (N,) per-image mean absolute error
    predictions: torch.Tensor  # (N, out, out) predicted maps, float32 on the CPU

    def summary(self) -> dict:
        """Mean and sd over images (sd 0 for one image), as the paper's table cells."""
        sd = (lambda x: x.std().item()) if len(self.spc) > 1 else (lambda x: 0.0)
        return {"spc_mean": self.spc.mean().item(), "spc_sd": sd(self.spc),
                "mae_mean": self.mae.mean().item(), "mae_sd": sd(self.mae), "n_images": len(self.spc)}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, else the CPU; a device name forces the choice."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA device is available; use 'cpu' or 'auto'")
    return dev


def _batch(taps: Sequence[torch.Tensor], idx: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    idx = idx.sort().values  # ascending rows: memory-mapped caches are read front to back
    # channels_last: the read-out's wide-input convolutions run ~3x faster in it on the CPU. A store
    # that is already channels-last (the feature cache) is gathered as rows, with no transpose.
    out = []
    for t in taps:
        if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
            out.append(t.permute(0, 2, 3, 1)[idx].to(device, torch.float32).permute(0, 3, 1, 2))
        else:
            out.append(t[idx].to(device, torch.float32, memory_format=torch.channels_last))
    return out


def _check_target(target: torch.Tensor, readout: PosENet) -> torch.Tensor:
    target = torch.as_tensor(target, dtype=torch.float32)
    expected = (readout.out_size, readout.out_size)
    if target.dim() != 2 or tuple(target.shape) != expected:
        raise ValueError(f"target must be a single {expected} map, got shape {tuple(target.shape)}")
    return target


def train_readouts(
    readouts: Sequence[PosENet],
    inputs: torch.Tensor | Taps,
    targets: Sequence[torch.Tensor],
    config: TrainConfig = TrainConfig(),
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> list[TrainResult]:
    """Fit several read-outs on the same batches: each input batch is read once for all of them.

    Read-out r learns ``targets[r]``; their parameters are disjoint, so one backward pass of the
    summed losses gives each the gradient of its own loss, and the results equal separate runs with
    the same batch order (``config.seed``) up to float rounding (a test checks this).
    """
    taps = as_taps(inputs)
    if len(readouts) != len(targets) or not readouts:
        raise ValueError(f"need one target per read-out, got {len(readouts)} read-outs and {len(targets)} targets")
    targets = [_check_target(t, r) for t, r in zip(targets, readouts)]
    dev = pick_device(device)
    params = []
    for r in readouts:
        r.to(dev).train()
        params += list(r.parameters())
    goal = torch.stack(targets).to(dev)  # (R, out, out)
    n = taps[0].shape[0]
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(config.lr_milestones), gamma=config.lr_gamma)
    gen = torch.Generator().manual_seed(config.seed)
    results = [TrainResult() for _ in readouts]
    label = "train read-out" if len(readouts) == 1 else f"train {len(readouts)} read-outs"
    bar = progress_bar(range(config.epochs), desc=label, unit="epoch", progress=progress, leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=gen)
        totals = [0.0] * len(readouts)
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            batch = _batch(taps, idx, dev)
            losses = train_losses(readouts, batch, goal)  # (R,): each read-out's MSE at the target size
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            for k, loss in enumerate(losses.tolist()):
                results[k].batch_loss.append(loss)
                totals[k] += loss * len(idx)
        sched.step()
        for k, res in enumerate(results):
            res.epoch_loss.append(totals[k] / n)
        bar.set_postfix(loss=f"{results[0].epoch_loss[-1]:.4f}")
    return results


def train_readout(
    readout: PosENet,
    inputs: torch.Tensor | Taps,
    target: torch.Tensor,
    config: TrainConfig = TrainConfig(),
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> TrainResult:
    """Fit ``readout`` so that every input maps to ``target`` (per-pixel MSE, SGD; Sec. 3.2).

    ``inputs``: an image batch (N, 3, H, W) or a tap list [(N, C_i, H_i, W_i), ...].
    ``target``: one (out_size, out_size) map, the same for every image.
    Deterministic for a given ``config.seed`` and read-out init on a given device.
    """
    return train_readouts([readout], inputs, [target], config, device=device, progress=progress)[0]


@torch.no_grad()
def evaluate_readouts(
    readouts: Sequence[PosENet],
    inputs: torch.Tensor | Taps,
    targets: Sequence[torch.Tensor],
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    keep_predictions: int | None = None,
) -> list[Evaluation]:
    """Per-image SPC and MAE of each read-out against its target; inputs are read once for all.

    ``keep_predictions``: keep the predicted maps of only the first that many images (memory).
    """
    taps = as_taps(inputs)
    targets = [_check_target(t, r) for t, r in zip(targets, readouts)]
    dev = pick_device(device)
    for r in readouts:
        r.to(dev).eval()
    n = taps[0].shape[0]
    keep = n if keep_predictions is None else min(n, keep_predictions)
    spcs, maes, preds = ([[] for _ in readouts] for _ in range(3))
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        batch = _batch(taps, idx, dev)
        outs = forward_many(readouts, batch)  # (B, R, out, out)
        for k, t in enumerate(targets):
            pred = outs[:, k].float().cpu()  # (B, out, out)
            spcs[k].append(spc(pred, t).float())
            maes[k].append(mae(pred, t).float())
            if start < keep:
                preds[k].append(pred[: keep - start])
    empty = torch.empty(0, readouts[0].out_size, readouts[0].out_size)
    return [Evaluation(spc=torch.cat(spcs[k]), mae=torch.cat(maes[k]),
                       predictions=torch.cat(preds[k]) if preds[k] else empty) for k in range(len(readouts))]


def evaluate_readout(
    readout: PosENet,
    inputs: torch.Tensor | Taps,
    target: torch.Tensor,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> Evaluation:
    """Per-image SPC and MAE of the read-out's predictions against ``target`` (eval-mode BatchNorm)."""
    return evaluate_readouts([readout], inputs, [target], batch_size=batch_size, device=device)[0]
