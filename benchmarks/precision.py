"""What bfloat16 encoder features do to the read-out's scores (the default precision is chosen from this).

VGG16 (ImageNet), patterns H, G, HS, three seeds, the cpu profile's data: the same read-outs trained
on fp32 features and on bf16 features (autocast, stored in bfloat16). Prints both and the differences,
and the time the features took; writes results/precision.csv.

Usage: .venv/bin/python benchmarks/precision.py
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from poslib.experiment import ReadoutSpec, run_grid, save_grid, standard_data, summarize
from poslib.profiles import get_profile


def main() -> None:
    base = get_profile("cpu")
    data = standard_data(base)
    tables, seconds = [], {}
    for precision in ("fp32", "bf16"):
        profile = replace(base, precision=precision)
        t = time.perf_counter()
        grid = run_grid("vgg16", patterns=["H", "G", "HS"], readouts=[ReadoutSpec()], seeds=[0, 1, 2],
                        data=data, profile=profile, progress=False)
        seconds[precision] = time.perf_counter() - t
        tables.append(summarize(grid.table).assign(precision=precision))
    both = pd.concat(tables)
    wide = both.pivot_table(index=["pattern", "test_set"], columns="precision", values=["spc_mean", "mae_mean"])
    wide.columns = [f"{a}_{b}" for a, b in wide.columns]
    wide["spc_diff"] = wide.spc_mean_bf16 - wide.spc_mean_fp32
    wide["mae_diff"] = wide.mae_mean_bf16 - wide.mae_mean_fp32
    wide = wide.reset_index()
    print(wide.round(4).to_string(index=False))
    print(f"max |SPC diff| {wide.spc_diff.abs().max():.4f}, max |MAE diff| {wide.mae_diff.abs().max():.4f}")
    print("grid wall time incl. features (cold cache unless cached): " + json.dumps({k: round(v, 1) for k, v in seconds.items()}))
    save_grid(wide, Path("results/precision.csv"), profile=base, data=data, extra={"seconds": seconds})


if __name__ == "__main__":
    main()
