"""Results files: every table is written with the settings and software that made it.

The committed results (``results/``) are the book's, made with the ``cpu`` profile. A run with
another profile writes under ``results/<profile>/`` (``results_folder``), so a quick smoke run never
overwrites the book's numbers, and readers of several tables (the scorecard) refuse a mix.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision

from .files import atomic_write_text
from .precision import machine_record

BOOK_PROFILE = "cpu"  # the profile whose results are committed and shown in the book


def environment() -> dict:
    """Versions and hardware that a result depends on (CPU capability, native bf16, threads)."""
    from . import __version__

    return {
        "poslib": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        **machine_record(),
    }


def results_folder(results_dir: str | Path, profile: str, *, overwrite_book: bool = False) -> Path:
    """Where a run of ``profile`` writes its tables: ``results_dir`` itself for the book's profile
    (or when ``overwrite_book`` is asked for), else ``results_dir/<profile>/``."""
    if not isinstance(results_dir, (str, Path)) or not str(results_dir):
        raise ValueError(f"results_dir must be a folder path, got {results_dir!r}")
    folder = Path(results_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"results_dir {folder} is a file, not a folder")
    return folder if profile == BOOK_PROFILE or overwrite_book else folder / profile


def table_profile(csv_path: str | Path) -> str | None:
    """The profile recorded in a results table's settings JSON (None if it has none)."""
    meta_path = Path(csv_path).with_suffix(".json")
    try:
        settings = json.loads(meta_path.read_text()).get("settings", {})
    except (OSError, ValueError):
        return None
    return settings_profile(settings)


def settings_profile(settings: dict) -> str | None:
    """The profile name in a results JSON's settings (recorded as a name or as the whole profile)."""
    p = settings.get("profile")
    return p.get("name") if isinstance(p, dict) else p


def save_table(table: pd.DataFrame, path: str | Path, settings: dict) -> Path:
    """Write ``table`` as CSV and, beside it (same name, ``.json``), the settings and environment.
    Both files are written atomically."""
    path = Path(path)
    if path.suffix != ".csv":
        raise ValueError(f"results tables are CSV files; got {path.name!r}")
    from .features import cache_counts  # imported here: features imports the encoders, results must stay light

    meta = {"settings": settings, "environment": environment(), "feature_cache": dict(cache_counts),
            "columns": list(table.columns)}
    atomic_write_text(path, table.to_csv(index=False))
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, default=str) + "\n")
    return path
