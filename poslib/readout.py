"""The read-out of Sec. 3.2, the position encoding module (PosENet).

Each input tap is resized bilinearly (align_corners=True, as the official code) to a 28x28 grid and
concatenated along channels; ``layers`` k x k convolutions follow. Hidden layers are
Conv + BatchNorm + ReLU, the last Conv(-> 1) + BatchNorm(1) + Sigmoid; the map is then upsampled
bilinearly (align_corners=False, as the official code) to the target size. Applied straight to
the image, this module alone is what the paper calls "PosENet".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

WIDE_INPUT = 256  # input channels from which a stacked read-out's first conv runs as a matrix product

Taps = Sequence[torch.Tensor]  # feature maps, each (N, C_i, H_i, W_i)


def as_taps(x: torch.Tensor | Taps) -> list[torch.Tensor]:
    """A single (N, C, H, W) tensor (an image batch) becomes a one-tap list."""
    taps = [x] if isinstance(x, torch.Tensor) else list(x)
    if not taps:
        raise ValueError("the read-out needs at least one feature map")
    for i, t in enumerate(taps):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"tap {i} must be a 4-D tensor (N, C, H, W); got {shape}")
    if len({t.shape[0] for t in taps}) != 1:
        raise ValueError(f"taps disagree on the batch size: {[t.shape[0] for t in taps]}")
    return taps


@functools.lru_cache(maxsize=32)
def bilinear_matrix(out_size: int, in_size: int) -> torch.Tensor:
    """(out_size, in_size) matrix of 1-D bilinear interpolation with align_corners=False, as
    F.interpolate computes it. Upsampling a map Y is then A @ Y @ A.T: the same numbers, but as two
    matrix products, whose backward pass is far faster on a CPU than the interpolation kernel's."""
    scale = in_size / out_size
    src = ((torch.arange(out_size, dtype=torch.float64) + 0.5) * scale - 0.5).clamp(min=0)
    lo = src.floor().long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    w_hi = src - lo
    a = torch.zeros(out_size, in_size, dtype=torch.float64)
    a[torch.arange(out_size), lo] += 1 - w_hi
    a[torch.arange(out_size), hi] += w_hi
    return a.float()


def upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling (align_corners=False) of square maps (N, C, s, s) -> (N, C, size, size)."""
    a = bilinear_matrix(size, x.shape[-1]).to(x.device, x.dtype)
    return a @ x @ a.T


def output_grid(grid: int, layers: int, kernel_size: int, padding: int) -> int:
    """Side of the read-out's output before upsampling: each layer maps s -> s + 2p - k + 1."""
    return grid + layers * (2 * padding - kernel_size + 1)


class PosENet(nn.Module):
    """Position read-out (Sec. 3.2; Table 2 varies ``layers`` and ``kernel_size``, Table 4 ``padding``).

    Args:
        in_channels: total input channels, or the channel count of each tap (checked at forward).
        layers: number of conv layers (the paper's default 1).
        kernel_size: k of every k x k conv, a positive odd number (default 3).
        padding: zero padding of every conv (default 0, as the paper).
        hidden_channels: width of the hidden layers (default: the input channel count, as the
            official code).
        grid: side of the grid every tap is resized to (28).
        out_size: side of the upsampled output map (224, the target size).
        seed: if given, the weights are drawn from a generator with this seed, so two read-outs
            built with the same seed are identical whatever the global RNG state.
        taps: read only these input taps, by index (Table 3: one level at a time); default all.
            Needs ``in_channels`` given per tap; it still describes the whole input.

    Input: a list of taps with the channels given, or one tensor holding them already resized and
    concatenated (N, sum C_i, grid, grid), as the feature cache stores them.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        *,
        layers: int = 1,
        kernel_size: int = 3,
        padding: int = 0,
        hidden_channels: int | None = None,
        grid: int = 28,
        out_size: int = 224,
        seed: int | None = None,
        taps: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        def positive_int(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        if isinstance(in_channels, int) and not isinstance(in_channels, bool):
            self.tap_channels: tuple[int, ...] | None = None
            total = in_channels
        elif isinstance(in_channels, Sequence) and not isinstance(in_channels, str) and in_channels \
                and all(positive_int(c) for c in in_channels):
            self.tap_channels = tuple(in_channels)
            total = sum(self.tap_channels)
        else:
            raise ValueError(f"in_channels must be a positive integer or a non-empty list of them (one per tap), "
                             f"got {in_channels!r}")
        self.tap_indices = None if taps is None else tuple(int(i) for i in taps)
        if self.tap_indices is not None:
            n_taps = 0 if self.tap_channels is None else len(self.tap_channels)
            if not self.tap_indices or not all(0 <= i < n_taps for i in self.tap_indices):
                raise ValueError(f"taps must be indices into the {n_taps} taps given per tap in in_channels, "
                                 f"got {taps!r}")
            offsets = [sum(self.tap_channels[:i]) for i in range(n_taps)]
            self.channel_ranges = [(offsets[i], offsets[i] + self.tap_channels[i]) for i in self.tap_indices]
            read = sum(b - a for a, b in self.channel_ranges)
        else:
            self.channel_ranges, read = None, total
        for name, value, low in (("in_channels", total, 1), ("layers", layers, 1), ("padding", padding, 0),
                                 ("grid", grid, 1), ("out_size", out_size, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer (1, 3, 5, 7, ...), got {kernel_size!r}")
        if output_grid(grid, layers, kernel_size, padding) < 1:
            raise ValueError(
                f"{layers} layer(s) of {kernel_size}x{kernel_size} with padding {padding} shrink the "
                f"{grid}x{grid} grid to nothing"
            )
        hidden = read if hidden_channels is None else hidden_channels
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden_channels must be a positive integer, got {hidden_channels!r}")

        self.in_channels, self.read_channels, self.layers, self.kernel_size = total, read, layers, kernel_size
        self.padding, self.hidden_channels, self.grid, self.out_size = padding, hidden, grid, out_size
        blocks: list[nn.Module] = []
        c_in = read
        for _ in range(layers - 1):
            blocks += [nn.Conv2d(c_in, hidden, kernel_size, padding=padding), nn.BatchNorm2d(hidden), nn.ReLU()]
            c_in = hidden
        blocks += [nn.Conv2d(c_in, 1, kernel_size, padding=padding), nn.BatchNorm2d(1), nn.Sigmoid()]
        self.body = nn.Sequential(*blocks)
        self.reset_parameters(seed)

    @classmethod
    def from_example(cls, example: torch.Tensor | Taps, **kwargs) -> "PosENet":
        """A read-out whose input channels are inferred from an example tap list (or image batch)."""
        return cls([t.shape[1] for t in as_taps(example)], **kwargs)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Xavier-uniform conv weights, zero biases, BatchNorm at identity (the official init)."""
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, generator=gen)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def resize_taps(self, taps: torch.Tensor | Taps) -> torch.Tensor:
        """Resize every tap to grid x grid, concatenate, keep the channels read: (N, C_read, grid, grid)."""
        taps = as_taps(taps)
        channels = [t.shape[1] for t in taps]
        g = (self.grid, self.grid)
        if len(taps) == 1 and channels[0] == self.in_channels:  # one tap, or the cache's concatenation
            x = taps[0] if taps[0].shape[-2:] == g else F.interpolate(taps[0], g, mode="bilinear", align_corners=True)
        else:
            if self.tap_channels is not None and tuple(channels) != self.tap_channels:
                raise ValueError(f"expected taps with channels {list(self.tap_channels)}, got {channels}")
            if sum(channels) != self.in_channels:
                raise ValueError(f"expected {self.in_channels} input channels in all, got {sum(channels)} ({channels})")
            x = torch.cat([t if t.shape[-2:] == g else F.interpolate(t, g, mode="bilinear", align_corners=True)
                           for t in taps], dim=1)
        if self.channel_ranges is not None:
            parts = [x[:, a:b] for a, b in self.channel_ranges]
            x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return x

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, s, s) -> (N, 1, out_size, out_size), bilinear (align_corners=False), as the official code."""
        return upsample(x, self.out_size)

    def forward(self, taps: torch.Tensor | Taps) -> torch.Tensor:
        """Predicted position map in [0, 1]: (N, 1, out_size, out_size)."""
        return self.upsample(self.apply_body(self.resize_taps(taps)))  # body: (N, 1, s, s), s = output_grid(...)

    def apply_body(self, x: torch.Tensor) -> torch.Tensor:
        """``self.body(x)``; a wide first layer of a stacked read-out runs as one matrix product
        (``conv_as_matmul``: the same numbers up to float rounding, the wide input read once per pass)."""
        if self.layers > 1 and x.shape[1] >= WIDE_INPUT and x.is_contiguous(memory_format=torch.channels_last):
            first = self.body[0]
            return self.body[1:](conv_as_matmul(x, first.weight, first.bias, self.padding))
        return self.body(x)

    def fusion_key(self) -> tuple | None:
        """Read-outs with equal keys can share one convolution (see ``forward_many``)."""
        if self.layers != 1:
            return None
        ranges = None if self.channel_ranges is None else tuple(self.channel_ranges)
        return (self.in_channels, ranges, self.kernel_size, self.padding, self.grid, self.out_size)


class _ShiftedSum(torch.autograd.Function):
    """Sum over taps (a, b) of ``partial[:, a:a + s, b:b + s, a, b]`` (partial: (N, H, W, k, k, G),
    zero-padded by ``padding`` first): the k*k shifted partial maps of ``conv_as_matmul``.

    Written as slices, autograd's backward allocates and zero-fills a partial-sized tensor per tap
    and adds the k*k of them (quadratic in k*k: about 10x slower than this for k = 7 and 15 fused
    read-outs, ``benchmarks/readout.py``). Here the backward writes each tap's gradient into one
    zeroed tensor: the same values bit for bit (every tap fills its own disjoint entries), the
    forward unchanged.
    """

    @staticmethod
    def forward(ctx, partial: torch.Tensor, padding: int) -> torch.Tensor:
        k = partial.shape[3]
        if padding:
            partial = F.pad(partial, (0, 0, 0, 0, 0, 0, padding, padding, padding, padding))
        s_h, s_w = partial.shape[1] - k + 1, partial.shape[2] - k + 1
        ctx.padded_shape, ctx.padding = partial.shape, padding
        return sum(partial[:, a:a + s_h, b:b + s_w, a, b] for a in range(k) for b in range(k))  # (N, s, s, G)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        shape, p = ctx.padded_shape, ctx.padding
        k, s_h, s_w = shape[3], grad.shape[1], grad.shape[2]
        grad_partial = grad.new_zeros(shape)
        for a in range(k):
            for b in range(k):
                grad_partial[:, a:a + s_h, b:b + s_w, a, b] = grad
        return grad_partial[:, p:shape[1] - p, p:shape[2] - p], None


def conv_as_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` for a wide input and few outputs, as one matrix
    product: every input pixel times all k*k*G kernel taps at once, then the k*k shifted partial
    maps are summed. Zero padding pads the partial maps (a zero pixel contributes nothing).

    The same numbers as the convolution up to float rounding, but the wide input is read once per
    pass, forward and backward: on an AVX2 CPU 1.1-1.5x ``F.conv2d``'s step for a 1472-channel input
    at k = 3 and 7 (on AVX512, 0.7x; one implementation everywhere keeps every machine's numbers
    the same; ``benchmarks/readout.py``).
    x: (N, C, H, W), best stored channels-last; weight: (G, C, k, k); returns (N, G, s, s).
    """
    n, c, h, w = x.shape
    g, k = weight.shape[0], weight.shape[-1]
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view when x is channels-last
    partial = (rows @ weight.permute(1, 2, 3, 0).reshape(c, k * k * g)).view(n, h, w, k, k, g)
    return (_ShiftedSum.apply(partial, padding) + bias).permute(0, 3, 1, 2)


def _group_maps(readouts: Sequence[PosENet], taps) -> list[tuple[list[int], torch.Tensor]]:
    """Read-outs' maps before upsampling, by group: [(read-out indices, (N, G, s, s)), ...].

    Single-layer read-outs that read the same channels with the same kernel and padding run as one
    convolution (``conv_as_matmul``) with one output channel each, then per-channel BatchNorm (each read-out's own
    statistics and affine parameters) and sigmoid: the same maths as running them one by one, but the
    wide input is read once.
    """
    groups: dict = {}
    for i, r in enumerate(readouts):
        key = r.fusion_key()
        if key is not None:
            key += (r.training,)
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    out = []
    for members in groups.values():
        first = readouts[members[0]]
        if first.fusion_key() is None:
            out.append((members, first.apply_body(first.resize_taps(taps))))
            continue
        x = first.resize_taps(taps)
        convs = [readouts[i].body[0] for i in members]
        bns = [readouts[i].body[1] for i in members]
        y = conv_as_matmul(x, torch.cat([c.weight for c in convs]), torch.cat([c.bias for c in convs]),
                           first.padding)  # (N, G, s, s)
        mean, var = torch.cat([b.running_mean for b in bns]), torch.cat([b.running_var for b in bns])
        z = F.batch_norm(y, mean, var, torch.cat([b.weight for b in bns]), torch.cat([b.bias for b in bns]),
                         training=first.training, momentum=bns[0].momentum, eps=bns[0].eps)
        if first.training:  # write the updated running statistics back to each read-out's BatchNorm
            for j, b in enumerate(bns):
                b.running_mean.copy_(mean[j:j + 1])
                b.running_var.copy_(var[j:j + 1])
                b.num_batches_tracked += 1
        out.append((members, torch.sigmoid(z)))
    return out


def _in_readout_order(parts: list[tuple[list[int], torch.Tensor]], dim: int) -> torch.Tensor:
    """Concatenate per-group values along ``dim`` and put them back in the read-outs' order."""
    joined = torch.cat([values for _, values in parts], dim=dim)
    order = [i for idx, _ in parts for i in idx]
    if order == sorted(order):
        return joined
    return joined.index_select(dim, torch.tensor(order, device=joined.device).argsort())


def forward_many(readouts: Sequence[PosENet], taps: torch.Tensor | Taps) -> torch.Tensor:
    """The outputs of several read-outs on the same input batch, stacked: (N, R, out, out)."""
    parts = [(idx, upsample(maps, readouts[idx[0]].out_size)) for idx, maps in _group_maps(readouts, taps)]
    return _in_readout_order(parts, dim=1)


def upsampled_mse(maps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-channel MSE between the bilinear upsampling of ``maps`` (N, G, s, s) and ``targets``
    (G, S, S): mean over images and pixels of (A Y A^T - T)^2, shape (G,).

    Computed in closed form at the low resolution, ||A Y A^T||^2 = tr(Y^T M Y M) with M = A^T A, and
    <T, A Y A^T> = <A^T T A, Y>, so neither the forward nor the backward pass touches S x S maps per
    image (the same number as upsampling first, up to float rounding; a test checks it).
    """
    size = targets.shape[-1]
    a = bilinear_matrix(size, maps.shape[-1]).to(maps.device, torch.float64)
    y = maps.to(torch.float64)
    t = targets.to(maps.device, torch.float64)
    m = a.T @ a  # (s, s)
    quad = ((m @ y) * (y @ m)).sum(dim=(-2, -1))  # tr(Y^T M Y M) = <M Y, Y M>: (N, G)
    cross = (y * (a.T @ t @ a)).sum(dim=(-2, -1))  # (N, G)
    const = t.square().sum(dim=(-2, -1))  # (G,)
    return ((quad - 2 * cross).mean(dim=0) + const).div(size * size).to(maps.dtype)


def train_losses(readouts: Sequence[PosENet], taps, targets: torch.Tensor) -> torch.Tensor:
    """Each read-out's MSE against its target (R, S, S) on one batch, shape (R,)."""
    parts = [(idx, upsampled_mse(maps, targets[idx])) for idx, maps in _group_maps(readouts, taps)]
    return _in_readout_order(parts, dim=0)
