"""Compare a fresh ``results/`` folder with the committed one, cell by cell (README: "Compare my run").

A cell is one row of a results CSV and one measure that comes with its seed spread: a pair of
columns ``<m>_mean`` and ``<m>_sd`` (``spc_mean``/``spc_sd``, ``delta_mean``/``delta_sd``, ...). A cell
*moved* when the two runs differ by more than the larger of their two seed sds. Rows are matched on
their non-float columns (encoder, pattern, test set, ...), which name the setting.

Usage::

    python -m poslib.compare results            # against the committed results (git HEAD)
    python -m poslib.compare results --ref DIR  # against another results folder
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd

CELL_COLUMNS = ["setting", "measure", "ours", "ref", "sd", "moved"]


def measures(table: pd.DataFrame) -> list[str]:
    """The measures of ``table`` that carry a seed spread: ``m`` for each ``m_mean``/``m_sd`` pair."""
    return [c[:-5] for c in table.columns if c.endswith("_mean") and f"{c[:-5]}_sd" in table.columns]


def _keys(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if not pd.api.types.is_float_dtype(table[c])]


def compare_tables(ours: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """One row per (setting, measure) present in both tables: ours, ref, the sd it is judged by, moved.

    ``sd`` is the larger of the two seed sds; where neither has one (a single seed), any difference
    above 1e-9 counts as moved.
    """
    shared = [m for m in measures(ref) if f"{m}_mean" in ours.columns]
    if not shared:  # e.g. a listing of photos: nothing with a seed spread to compare
        return pd.DataFrame(columns=CELL_COLUMNS)
    keys = [k for k in _keys(ref) if k in ours.columns]
    ours, ref = ours.copy(), ref.copy()
    for t in (ours, ref):  # the n-th repeat of a setting matches the n-th (tables with repeated keys)
        t["_repeat"] = t.groupby(keys, dropna=False, sort=False).cumcount() if keys else range(len(t))
        t[keys] = t[keys].map(str)  # a missing key is a setting too ("nan"); astype(str) would keep it missing
    both = ours.merge(ref, on=keys + ["_repeat"], suffixes=("", "_ref"))
    setting = both[keys].agg(" ".join, axis=1) if keys else ""
    rows = []
    for m in shared:
        part = pd.DataFrame({"setting": setting, "measure": m}, index=both.index)
        part["ours"], part["ref"] = both[f"{m}_mean"], both[f"{m}_mean_ref"]
        part["sd"] = pd.concat([both[f"{m}_sd"], both[f"{m}_sd_ref"]], axis=1).max(axis=1)
        tolerance = part["sd"].fillna(0).clip(lower=1e-9)
        part["moved"] = (part.ours - part.ref).abs() > tolerance
        rows.append(part[CELL_COLUMNS])
    return pd.concat(rows, ignore_index=True)


def _reference(name: str, ref: str | Path | None, rev: str) -> pd.DataFrame | None:
    """``name`` in the folder ``ref``, or without one ``results/<name>`` as committed at ``rev``; None where absent."""
    if ref is not None:
        path = Path(ref) / name
        return pd.read_csv(path) if path.exists() else None
    shown = subprocess.run(["git", "show", f"{rev}:results/{name}"], capture_output=True, text=True)
    return pd.read_csv(io.StringIO(shown.stdout)) if shown.returncode == 0 else None


def compare_folders(results: str | Path, ref: str | Path | None = None, rev: str = "HEAD") -> pd.DataFrame:
    """Every cell of every CSV in ``results`` against ``ref`` (a folder) or, without one, git ``rev``."""
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder at {results}")
    parts = []
    for path in sorted(results.glob("*.csv")):
        other = _reference(path.name, ref, rev)
        if other is None:
            continue
        parts.append(compare_tables(pd.read_csv(path), other).assign(file=path.name))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*CELL_COLUMNS, "file"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Which results cells moved by more than their seed sd?")
    parser.add_argument("results", nargs="?", default="results", help="the fresh results folder")
    parser.add_argument("--ref", default=None, help="a results folder to compare with (default: git --rev)")
    parser.add_argument("--rev", default="HEAD", help="the commit whose results/ is the reference")
    args = parser.parse_args(argv)
    cells = compare_folders(args.results, args.ref, args.rev)
    if cells.empty:
        print("no results file in common with the reference")
        return 0
    per_file = cells.groupby("file").moved.agg(cells="size", moved="sum")
    print(per_file.to_string())
    moved = cells[cells.moved]
    if len(moved):
        print(f"\n{len(moved)} of {len(cells)} cells moved by more than their seed sd:")
        with pd.option_context("display.max_rows", 200, "display.width", 160, "display.max_colwidth", 60):
            print(moved.assign(change=moved.ours - moved.ref)[["file", "setting", "measure", "ref", "ours", "change", "sd"]]
                  .round(4).to_string(index=False))
    else:
        print(f"\nall {len(cells)} cells within their seed sd")
    return 0


if __name__ == "__main__":
    sys.exit(main())
