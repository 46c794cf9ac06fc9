"""What the features' precision does to the read-out's scores: the measurement behind the book's scheme.

The book computes features in float32 on every machine (so they are the same whatever the CPU) and
stores them in bfloat16. This benchmark trains the same read-outs (VGG16 ImageNet, patterns H, G, HS,
three seeds, the cpu profile's data) on features made three ways, in one run:
- ``fp32/fp32``: computed and stored in float32 (the reference);
- ``fp32/bf16``: computed in float32, stored in bfloat16 (the book's scheme);
- ``bf16/bf16``: computed under bfloat16 autocast and stored in bfloat16 (what a bf16 machine would
  do under ``precision="bf16"``; 5-8x slower than fp32 on an AVX2-only CPU, so ``--skip-bf16-compute``
  leaves it out there).
Prints each variant's differences from the reference beside the seed sd; writes results/precision.csv.

Usage: .venv/bin/python benchmarks/precision.py [--skip-bf16-compute]
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

VARIANTS = {"fp32/fp32": ("fp32", "fp32"), "fp32/bf16": ("fp32", "bf16"), "bf16/bf16": ("bf16", "bf16")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-bf16-compute", action="store_true")
    args = ap.parse_args()
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
