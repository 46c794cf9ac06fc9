"""Padding modes of a network's convolutions, swapped with the weights kept (beyond the paper).

``set_padding(module, mode)`` changes every ``nn.Conv2d`` that pads:
- "zeros" (the default of every network here), "reflect", "replicate", "circular": PyTorch's own
  ``padding_mode`` (the padding width is kept);
- "partial": partial convolution (Liu et al. 2018): zero padding, with each output re-weighted by
  k*k / (number of window taps inside the image), so a border output is not dimmed by the zeros;
- "none": padding removed (each conv's output shrinks by k - 1).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

PADDING_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate", "circular", "partial", "none")


def check_padding_mode(mode: str) -> str:
    if mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {mode!r}; valid: {', '.join(PADDING_MODES)}")
    return mode


class PartialConv2d(nn.Module):
    """A zero-padded convolution re-weighted at the border by k*k / (taps inside the image)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _ratio(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
               dilation: tuple[int, int]) -> torch.Tensor:
        ones = torch.ones(1, 1, h, w)
        inside = F.conv2d(ones, torch.ones(1, 1, *kernel), stride=stride, padding=padding, dilation=dilation)
        return (kernel[0] * kernel[1]) / inside.clamp(min=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        y = F.conv2d(x, c.weight, None, c.stride, c.padding, c.dilation, c.groups)
        ratio = self._ratio(x.shape[-2], x.shape[-1], c.kernel_size, c.stride, c.padding, c.dilation)
        y = y * ratio.to(y.device, y.dtype)
        return y if c.bias is None else y + c.bias.view(1, -1, 1, 1)


def pad_features(x: torch.Tensor, padding: int, mode: str) -> torch.Tensor:
    """(N, C, H, W) maps padded by ``padding`` pixels on every side in ``mode`` ("zeros", "reflect",
    "replicate", "circular"). A one-layer read-out with padding 0 on these maps computes exactly what
    it computes with padding ``padding`` in ``mode`` on the maps themselves."""
    if mode not in ("zeros", "reflect", "replicate", "circular"):
        raise ValueError(f"cannot pad features in mode {mode!r}; valid: zeros, reflect, replicate, circular")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an integer >= 0, got {padding!r}")
    if padding == 0:
        return x
    return F.pad(x.float(), (padding,) * 4, mode="constant" if mode == "zeros" else mode).to(x.dtype)


def set_padding(module: nn.Module, mode: str) -> nn.Module:
    """``module`` with every padding convolution switched to ``mode`` (in place; weights unchanged)."""
    check_padding_mode(mode)
    if type(module).__name__ == "PosENet":  # its fused forward pads with zeros whatever the conv says
        raise TypeError("a PosENet's padding mode cannot be swapped (its fused forward pads with zeros); give it "
                        "padding 0 and inputs padded by pad_features(x, padding, mode) instead")
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Conv2d) and any(p > 0 for p in child.padding):
            if mode == "none":
                child.padding = (0, 0)
            elif mode == "partial":
                setattr(module, name, PartialConv2d(child))
            else:
                child.padding_mode = mode
        else:
            set_padding(child, mode)
    return module
