"""The book's run record (page "Run record"): how, when and on what each section and results file was made.

Read from what the runs leave behind, never typed by hand: papermill's metadata in each executed
notebook (start, duration, parameters) and the settings and environment in each results JSON
(profile, precision, CPU capability, threads, library versions).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd

from .results import settings_profile


SECTION_COLUMNS = ["notebook", "title", "profile", "start (UTC)", "minutes", "other parameters", "failed"]
FILE_COLUMNS = ["file", "section", "profile", "features", "task networks", "cpu capability", "native bf16",
                "torch threads", "gpu", "torch", "poslib", "feature sets cached", "feature sets computed",
                "images encoded"]


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def section_runs(sections_dir: str | Path) -> pd.DataFrame:
    """One row per executed notebook in ``sections_dir``: title, start, minutes, profile, other parameters."""
    rows = []
    for path in sorted(Path(sections_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        pm = nb.metadata.get("papermill", {})
        params = dict(pm.get("parameters", {}))
        rows.append({"notebook": path.name, "title": _title(nb), "profile": params.pop("profile", None),
                     "start (UTC)": (pm.get("start_time") or "")[:16].replace("T", " "),
                     "minutes": round(pm["duration"] / 60, 1) if pm.get("duration") else float("nan"),
                     "other parameters": ", ".join(f"{k}={v!r}" for k, v in params.items()) or "defaults",
                     "failed": bool(pm.get("exception"))})
    return pd.DataFrame(rows, columns=SECTION_COLUMNS)


def results_files(results_dir: str | Path) -> pd.DataFrame:
    """One row per results JSON in ``results_dir``: section, profile, precision, machine and versions."""
    rows = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            meta = json.loads(path.read_text())
        except ValueError:
            continue
        settings, env = meta.get("settings", {}), meta.get("environment", {})
        precision, cache = settings.get("precision") or {}, meta.get("feature_cache") or {}
        rows.append({"file": path.with_suffix(".csv").name, "section": settings.get("section", ""),
                     "profile": settings_profile(settings),
                     "features": precision.get("features", ""), "task networks": precision.get("task_networks", ""),
                     "cpu capability": env.get("cpu_capability", ""), "native bf16": env.get("cpu_bf16_native", ""),
                     "torch threads": env.get("torch_threads", ""), "gpu": env.get("cuda") or "none",
                     "torch": env.get("torch", ""), "poslib": env.get("poslib", ""),
                     # counted in the section's process up to this file's writing (absent in older files)
                     "feature sets cached": cache.get("hits", ""), "feature sets computed": cache.get("computed", ""),
                     "images encoded": cache.get("images_encoded", "")})
    return pd.DataFrame(rows, columns=FILE_COLUMNS)
