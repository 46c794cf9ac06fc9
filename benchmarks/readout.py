"""Training step of the read-outs on cached features: the wide first convolution as one matrix
product (``readout.conv_as_matmul``) with its hand-written backward, against the same product with
autograd's backward of the shifted slices (the code before it) and against ``F.conv2d``, in one
run on the same machine (ratios, not absolute times, are the result).

One forward and backward pass at the book's shapes: a batch of 32 cached VGG16 feature maps
(1472 channels, 28x28, channels-last; random values: the time does not depend on them), for
- 15 fused one-layer read-outs (5 patterns x 3 seeds, as a grid trains them) of kernel 1, 3 and 7;
- a stacked read-out's first layer, kernel 3, 16 outputs (the cpu profile's hidden width) and 64
  (the departures page's widest).
Measured on the CPU's native capability and with an AVX2-only CPU emulated, each in its own process.
Writes results/benchmark_readout.json.

Usage: .venv/bin/python benchmarks/readout.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fresh import native_and_emulated_avx2  # benchmarks/fresh.py, beside this script
from poslib.readout import conv_as_matmul
from poslib.results import environment

CASES = [("15 fused one-layer, k=1", 1, 15), ("15 fused one-layer, k=3", 3, 15), ("15 fused one-layer, k=7", 7, 15),
         ("stacked first layer, k=3, width 16", 3, 16), ("stacked first layer, k=3, width 64", 3, 64)]
BATCH, CHANNELS, GRID, REPEATS = 32, 1472, 28, 5


def matmul_with_slice_autograd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int) -> torch.Tensor:
    """The baseline: ``conv_as_matmul`` as it was, its shifted sum left to autograd."""
    n, c, h, w = x.shape
    g, k = weight.shape[0], weight.shape[-1]
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    partial = (rows @ weight.permute(1, 2, 3, 0).reshape(c, k * k * g)).view(n, h, w, k, k, g)
    if padding:
        partial = F.pad(partial, (0, 0, 0, 0, 0, 0, padding, padding, padding, padding))
    s_h, s_w = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    out = sum(partial[:, a:a + s_h, b:b + s_w, a, b] for a in range(k) for b in range(k))
    return (out + bias).permute(0, 3, 1, 2)


IMPLEMENTATIONS = {"matmul, autograd of slices (baseline)": matmul_with_slice_autograd,
                   "matmul, hand-written backward (now)": conv_as_matmul,
                   "F.conv2d": lambda x, w, b, p: F.conv2d(x, w, b, padding=p)}


def step_seconds(fn, k: int, outputs: int) -> float:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, CHANNELS, GRID, GRID, generator=gen).contiguous(memory_format=torch.channels_last)
    weight = (torch.randn(outputs, CHANNELS, k, k, generator=gen) * 1e-3).requires_grad_()
    bias = torch.zeros(outputs, requires_grad=True)
    times = []
    for _ in range(REPEATS + 1):  # the first is a warm-up
        start = time.perf_counter()
        fn(x, weight, bias, k // 2).square().sum().backward()
        times.append(time.perf_counter() - start)
        weight.grad = bias.grad = None
    return min(times[1:])


def measure() -> dict:
    rows = []
    for label, k, outputs in CASES:
        secs = {name: step_seconds(fn, k, outputs) for name, fn in IMPLEMENTATIONS.items()}
        base = secs["matmul, autograd of slices (baseline)"]
        rows.append({"case": label, "seconds": secs, "speedup_vs_baseline": {n: base / s for n, s in secs.items()}})
    return {"rows": rows, "environment": environment()}


def main() -> None:
    measured = native_and_emulated_avx2(__file__, measure, __doc__)
    if measured is None:  # this process was one of the two measurements
        return
    out = {"what": f"read-out forward+backward, batch {BATCH}, {CHANNELS} channels, {GRID}x{GRID}, best of {REPEATS}",
           **measured}
    for label in ("native", "emulated_avx2"):
        env = out[label]["environment"]
        print(f"{label}: capability {env.get('cpu_capability')}, {env['torch_threads']} threads")
        for r in out[label]["rows"]:
            cells = ", ".join(f"{n}: {s * 1e3:.0f} ms ({r['speedup_vs_baseline'][n]:.2f}x)" for n, s in r["seconds"].items())
            print(f"  {r['case']:>36}: {cells}")
    Path("results/benchmark_readout.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
