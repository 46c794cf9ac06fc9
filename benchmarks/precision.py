"""What precision does to the book's numbers: the measurement behind its scheme, in two parts.

``--part features``:
The book computes features in float32 on every machine (so they are the same whatever the CPU) and
stores them in bfloat16. This benchmark trains the same read-outs (VGG16 ImageNet, patterns H, G, HS,
three seeds, the cpu profile's data) on features made three ways, in one run:
- ``fp32/fp32``: computed and stored in float32 (the reference);
- ``fp32/bf16``: computed in float32, stored in bfloat16 (the book's scheme);
- ``bf16/bf16``: computed under bfloat16 autocast and stored in bfloat16 (what a bf16 machine would
  do under ``precision="bf16"``; 5-8x slower than fp32 on an AVX2-only CPU, so ``--skip-bf16-compute``
  leaves it out there).
Prints each variant's differences from the reference beside the seed sd; writes results/precision.csv.

``--part tasks``: Section 4.2's task networks (Table 5: saliency and segmentation, with and without
padding, the book's three seeds, the cpu profile) trained in fp32 and in bf16, the two precisions
``precision="auto"`` picks on an AVX2-only and on a bf16-native CPU. Prints each Table 5 cell's
bf16 - fp32 difference beside its seed sd; writes results/precision_tasks.csv (per network) and
results/precision_tasks_cells.csv (per cell). Run it where bf16 is native: emulated bf16 is 5-8x slower.

Usage: .venv/bin/python benchmarks/precision.py [--part features|tasks|all] [--skip-bf16-compute]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from poslib.experiment import ReadoutSpec, run_grid, save_grid, standard_data, summarize
from poslib.profiles import get_profile
from poslib.results import save_table
from poslib.tasks import summarize_tasks, task_data, train_and_score

VARIANTS = {"fp32/fp32": ("fp32", "fp32"), "fp32/bf16": ("fp32", "bf16"), "bf16/bf16": ("bf16", "bf16")}


def task_networks(seeds: list[int], tasks: list[str]) -> None:
    """Table 5's networks in fp32 and in bf16; each cell's difference against its seed sd."""
    base = get_profile("cpu")
    train, test = task_data(base)
    rows = []
    for precision in ("fp32", "bf16"):
        profile = replace(base, task_precision=precision)
        for task in tasks:
            for mode in ("zeros", "none"):
                for seed in seeds:
                    _, _, row = train_and_score(task, mode, seed, train, test, profile, progress=False)
                    rows.append({"task": task, "padding": "zero padding" if mode == "zeros" else "no padding",
                                 "seed": seed, **row})
                    print(f"{precision} {task} {mode} seed {seed}: " + ", ".join(
                        f"{k} {row[k]:.4f}" for k in ("fmeasure", "mae", "miou", "train_seconds") if k in row))
    runs = pd.DataFrame(rows)
    cells = pd.concat([summarize_tasks(g).assign(precision=p) for p, g in runs.groupby("precision")])
    wide = cells.pivot_table(index=["task", "padding"], columns="precision",
                             values=[c for c in cells if c.endswith(("_mean", "_sd")) and not c.startswith("train")])
    wide.columns = [f"{a}[{b}]" for a, b in wide.columns]
    for score in ("fmeasure", "mae", "miou"):
        if f"{score}_mean[fp32]" in wide:
            wide[f"{score}_diff"] = wide[f"{score}_mean[bf16]"] - wide[f"{score}_mean[fp32]"]
            wide[f"{score}_sd_max"] = wide[[f"{score}_sd[fp32]", f"{score}_sd[bf16]"]].max(axis=1)
    wide = wide.reset_index()
    print(wide.round(4).to_string(index=False))
    for score in ("fmeasure", "mae", "miou"):
        d = wide[f"{score}_diff"].dropna() if f"{score}_diff" in wide else pd.Series(dtype=float)
        if len(d):
            beyond = int((d.abs() > wide.loc[d.index, f"{score}_sd_max"]).sum())
            print(f"{score}: max |bf16 - fp32| {d.abs().max():.4f}; cells beyond the larger seed sd: {beyond} of {len(d)}")
    settings = {"what": "Table 5 task networks, bf16 vs fp32", "profile": base.as_dict(), "seeds": seeds, "tasks": tasks,
                "n_train": len(train), "n_test": len(test)}
    save_table(runs, Path("results/precision_tasks.csv"), settings)
    save_table(wide, Path("results/precision_tasks_cells.csv"), settings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["features", "tasks", "all"], default="features")
    ap.add_argument("--skip-bf16-compute", action="store_true")
    ap.add_argument("--task-seeds", type=int, default=3, help="seeds per Table 5 cell (the book: 3)")
    ap.add_argument("--tasks", nargs="+", choices=["saliency", "segmentation"], default=["saliency", "segmentation"],
                    help="Table 5's tasks to train (each fp32 network costs about 2.5 min on 2 cores)")
    args = ap.parse_args()
    if args.part in ("tasks", "all"):
        task_networks(list(range(args.task_seeds)), args.tasks)
    if args.part == "tasks":
        return
    base = get_profile("cpu")
    data = standard_data(base)
    tables, seconds = [], {}
    for label, (compute, storage) in VARIANTS.items():
        if args.skip_bf16_compute and compute == "bf16":
            continue
        profile = replace(base, feature_precision=compute, feature_storage=storage)
        t = time.perf_counter()
        grid = run_grid("vgg16", patterns=["H", "G", "HS"], readouts=[ReadoutSpec()], seeds=[0, 1, 2],
                        data=data, profile=profile, progress=False)
        seconds[label] = time.perf_counter() - t
        tables.append(summarize(grid.table).assign(variant=label))
    both = pd.concat(tables)
    wide = both.pivot_table(index=["pattern", "test_set"], columns="variant", values=["spc_mean", "spc_sd", "mae_mean"])
    wide.columns = [f"{a}[{b}]" for a, b in wide.columns]
    for label in seconds:
        if label != "fp32/fp32":
            wide[f"spc_diff[{label}]"] = wide[f"spc_mean[{label}]"] - wide["spc_mean[fp32/fp32]"]
            wide[f"mae_diff[{label}]"] = wide[f"mae_mean[{label}]"] - wide["mae_mean[fp32/fp32]"]
    wide = wide.reset_index()
    print(wide.round(4).to_string(index=False))
    for label in seconds:
        if label != "fp32/fp32":
            d = wide[f"spc_diff[{label}]"].abs()
            print(f"{label}: max |SPC diff| {d.max():.4f}; cells whose diff exceeds the seed sd: "
                  f"{int((d > wide['spc_sd[fp32/fp32]']).sum())} of {len(d)}")
    print("grid wall time incl. features (cold cache unless cached): " + json.dumps({k: round(v, 1) for k, v in seconds.items()}))
    save_grid(wide, Path("results/precision.csv"), profile=base, data=data, extra={"seconds": seconds})


if __name__ == "__main__":
    main()
