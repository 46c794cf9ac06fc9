"""Tables for the book: our numbers beside the paper's, and the results files the book reads."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

RESULT_COLUMNS = ["encoder", "weights", "pattern", "layers", "kernel", "padding", "taps", "test_set",
                  "spc_mean", "spc_sd", "mae_mean", "mae_sd", "n_images", "n_seeds", "paper_spc", "paper_mae"]


def results_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The columns every results table has, in order (extra columns such as ``hidden`` follow)."""
    missing = [c for c in RESULT_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"results table lacks columns {missing}")
    extra = [c for c in summary.columns if c not in RESULT_COLUMNS]
    return summary[RESULT_COLUMNS + extra]


def side_by_side(table: pd.DataFrame, rows: Sequence[str], columns: str = "test_set", metric: str = "spc") -> pd.DataFrame:
    """A display table: for each value of ``columns``, ours (mean ± sd over seeds; one seed: the
    mean alone, it has no spread) beside the paper's value. ``metric``: "spc" or "mae". Narrow enough for the
    book's column: the differences are in the results files and the summary's forest plot."""
    out = {}
    for value, part in table.groupby(columns, sort=False):
        part = part.set_index(list(rows))
        ours = [f"{m:.3f}" if m != m or s != s else f"{m:.3f} ± {s:.3f}".replace(" 0.", " .")
                for m, s in zip(part[f"{metric}_mean"], part[f"{metric}_sd"])]
        out[(value, "ours")] = pd.Series(ours, index=part.index).replace("nan", "")
        out[(value, "paper")] = part[f"paper_{metric}"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    frame = pd.DataFrame(out)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=[columns, metric.upper()])
    return frame


def cell(table: pd.DataFrame, metric: str = "spc_mean", **where) -> float:
    """The one value of ``metric`` in the row matching ``where`` (a clear error if not exactly one)."""
    mask = pd.Series(True, index=table.index)
    for k, v in where.items():
        mask &= table[k] == v
    found = table.loc[mask, metric]
    if len(found) != 1:
        raise KeyError(f"expected one row for {where}, found {len(found)}")
    return float(found.iloc[0])
