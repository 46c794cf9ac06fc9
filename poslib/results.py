"""Results files: every table is written with the settings and software that made it."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision


def environment() -> dict:
    """Versions and hardware that a result depends on."""
    from . import __version__

    return {
        "poslib": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
    }


def save_table(table: pd.DataFrame, path: str | Path, settings: dict) -> Path:
    """Write ``table`` as CSV and, beside it (same name, ``.json``), the settings and environment."""
    path = Path(path)
    if path.suffix != ".csv":
        raise ValueError(f"results tables are CSV files; got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    meta = {"settings": settings, "environment": environment(), "columns": list(table.columns)}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return path
