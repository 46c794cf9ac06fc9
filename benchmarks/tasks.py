"""Training speed of Section 4.2's task networks: the settings ``dense.train_task`` uses against a
plain fp32 baseline, in one run on the same machine (ratios, not absolute times, are the result).

One training step (forward, loss, backward, Adam) of the cpu profile's saliency network (width 8,
batch 16, 224x224 real composites), timed for:
- fp32, default (contiguous) memory format: the baseline;
- fp32, channels-last (what ``train_task`` does where bf16 is not native: ``precision="auto"``);
- bf16 autocast, contiguous;
- bf16 autocast, channels-last (what ``train_task`` does where bf16 is native).
Measured twice, each in its own process: on the CPU's native capability and with an AVX2-only CPU
emulated (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2), where bf16 has no native unit.
Writes results/benchmark_tasks.json.

Usage: .venv/bin/python benchmarks/tasks.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fresh import native_and_emulated_avx2  # benchmarks/fresh.py, beside this script
from poslib.composites import CompositeSpec, make_composites
from poslib.dense import TaskNet
from poslib.profiles import get_profile
from poslib.results import environment

STEPS, WARMUP, BATCH = 12, 3, 16


def images_per_second(bf16: bool, channels_last: bool, images: torch.Tensor, masks: torch.Tensor, width: int) -> float:
    net = TaskNet(1, width=width, seed=0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net.to(memory_format=fmt).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = images.contiguous(memory_format=fmt), masks
    for step in range(WARMUP + STEPS):
        if step == WARMUP:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return STEPS * BATCH / (time.perf_counter() - start)


def measure() -> dict:
    """Images per second of each setting, in this process's CPU capability."""
    width = get_profile("cpu").task_width
    comp = make_composites(CompositeSpec(BATCH, "train", seed=123), progress=False)
    images, labels = comp.tensors()
    masks = (labels > 0).float()[:, None]
    rates = {name: images_per_second(bf16, cl, images, masks, width)
             for name, bf16, cl in (("fp32", False, False), ("fp32_channels_last", False, True), ("bf16", True, False),
                                   ("bf16_channels_last", True, True))}
    ratios = {k: v / rates["fp32"] for k, v in rates.items()}
    return {"images_per_second": rates, "ratio_to_fp32": ratios, "environment": environment()}


def main() -> None:
    measured = native_and_emulated_avx2(__file__, measure, __doc__)
    if measured is None:  # this process was one of the two measurements
        return
    out = {"what": "TaskNet training step, saliency, batch 16, 224x224", "width": get_profile("cpu").task_width,
           "steps": STEPS, **measured}
    for label in ("native", "emulated_avx2"):
        r = out[label]
        env = r["environment"]
        print(f"{label}: capability {env.get('cpu_capability')}, native bf16 {env.get('cpu_bf16_native')}, "
              f"{env['torch_threads']} threads")
        for k, v in r["images_per_second"].items():
            print(f"{k:>20}: {v:6.1f} img/s  ({r['ratio_to_fp32'][k]:.2f}x the fp32 baseline)")
    Path("results/benchmark_tasks.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
