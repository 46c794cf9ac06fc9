"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile: ReLU6, no squeeze-excitation),
laid out as the converted TensorFlow checkpoint ``efficientnet-lite0-57934424.pth`` stores it.

TensorFlow's "SAME" padding is kept exactly: a stride-2 conv pads asymmetrically (one pixel more on
the right and bottom when the input side is even), which matters for a study of where position
comes from: ``SamePadConv2d`` pads at run time as TensorFlow does, then convolves without padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand ratio, in, out) per stage: efficientnet_lite_builder.py, lite0
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
BN = dict(eps=1e-3, momentum=0.01)


class SamePadConv2d(nn.Conv2d):
    """A conv padded as TensorFlow's "SAME": output side ceil(input / stride), the extra pixel of an
    odd total padding on the right and bottom."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return SamePadConv2d(cin, cout, k, stride=stride, groups=groups, bias=False)


class MBConv(nn.Module):
    """Inverted residual: expand (1x1) -> depthwise (k x k) -> project (1x1), skip when shapes allow."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv, self._bn0 = _conv(cin, mid, 1), nn.BatchNorm2d(mid, **BN)
        self._depthwise_conv, self._bn1 = _conv(mid, mid, k, stride, groups=mid), nn.BatchNorm2d(mid, **BN)
        self._project_conv, self._bn2 = _conv(mid, cout, 1), nn.BatchNorm2d(cout, **BN)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """The network with its ImageNet head; ``features`` (stem, 16 blocks, conv head) is what the
    encoder taps."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem, self._bn0 = _conv(3, 32, 3, 2), nn.BatchNorm2d(32, **BN)
        blocks = []
        for repeats, k, stride, expand, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin if i == 0 else cout, cout, k, stride if i == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = _conv(320, 1280, 1), nn.BatchNorm2d(1280, **BN)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class Lite0Features(nn.Module):
    """The feature part as one module whose children torchvision's feature extraction can tap:
    ``stem``, ``blocks.0`` .. ``blocks.15``, ``head``."""

    def __init__(self, net: EfficientNetLite0) -> None:
        super().__init__()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = nn.Sequential(*net._blocks)
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
