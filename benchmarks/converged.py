"""The converged read-out's two costs at the book's widest shape, measured in one run on the same machine.

VGG16 with all five taps read by a 3x3 read-out: 1472 channels, 13,249 unknowns (the intercept
included), 26x26 outputs per input. A fit is
- the Gram matrix, accumulated over the training set (792 inputs in the `cpu` profile), here timed
  on one block of 16 inputs (random values: the time does not depend on them) in float32 (the
  baseline, what the page uses) and in bfloat16 (native matrix units where the CPU has them);
- its solves: 5 folds x 5 ridges of cross-validation, plus the whole-set fit: one Cholesky
  factorisation and refined solve each, timed once at full size.
The projection of a whole fit is block time x 792 / 16 + 26 solves (the page records each fit's own time).
Measured on the CPU's native capability and with an AVX2-only CPU emulated, each in its own process.
Writes results/benchmark_converged.json.

Usage: .venv/bin/python benchmarks/converged.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from fresh import native_and_emulated_avx2  # benchmarks/fresh.py, beside this script
from poslib import converged
from poslib.results import environment

CHANNELS, GRID, KERNEL, BLOCK, TRAIN_INPUTS, PATTERNS = 1472, 28, 3, 16, 792, 5
SOLVES = 5 * 5 + 1  # folds x ridges of the cross-validation, and the whole-set fit


def measure() -> dict:
    torch.manual_seed(0)
    x = torch.rand(BLOCK, CHANNELS, GRID, GRID)
    mean, sd = torch.full((CHANNELS,), 0.5, dtype=torch.float64), torch.full((CHANNELS,), 0.29, dtype=torch.float64)
    s = GRID - KERNEL + 1
    root = converged.upsampling_root(s)
    d = CHANNELS * KERNEL * KERNEL + 1
    out = {"unknowns": d, "block_inputs": BLOCK, "training_inputs": TRAIN_INPUTS}
    for precision in ("fp32", "bf16"):
        acc = torch.zeros(d, d)
        times = []
        for _ in range(2):  # the first call warms the allocator and oneDNN's kernels
            start = time.perf_counter()
            cols = converged.design(x, kernel=KERNEL, padding=0, mean=mean, sd=sd)
            converged.add_gram(acc, converged.transform(cols, root).reshape(-1, d), precision)
            times.append(time.perf_counter() - start)
        out[f"gram_block_s_{precision}"] = round(times[-1], 3)
        out[f"gram_gflops_{precision}"] = round(BLOCK * s * s * d * d / times[-1] / 1e9, 1)  # half of 2 R D^2: one triangle
    gram = converged.symmetrise(acc).double() / (BLOCK * s * s)
    gram = (gram + gram.T) / 2
    gram.diagonal().add_(1.0)  # a well-posed system of the real size (the ridge a fit would add)
    rhs = torch.randn(d, PATTERNS, dtype=torch.float64)
    start = time.perf_counter()
    sol = converged.solve(gram.float(), rhs, torch.full((PATTERNS,), 1e-2, dtype=torch.float64), converged.RidgeSettings())
    out["solve_s"] = round(time.perf_counter() - start, 2)
    out["solve_rel_residual"] = float(sol.rel_residual.max())
    for precision in ("fp32", "bf16"):
        out[f"projected_fit_min_{precision}"] = round(
            (out[f"gram_block_s_{precision}"] * TRAIN_INPUTS / BLOCK + SOLVES * out["solve_s"]) / 60, 1)
    out["bf16_over_fp32_gram_speed"] = round(out["gram_block_s_fp32"] / out["gram_block_s_bf16"], 2)
    out["environment"] = environment()
    return out


if __name__ == "__main__":
    result = native_and_emulated_avx2(__file__, measure, __doc__)
    if result is not None:
        path = Path(__file__).resolve().parents[1] / "results" / "benchmark_converged.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
