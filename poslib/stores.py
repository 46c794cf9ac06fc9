"""The stores of finished work under ``$POSLIB_CACHE/runs/`` and the trained task networks under
``$POSLIB_CACHE/tasks/``: which entries this code can still load.

A page's read-out grids (``experiment.run_grid(store=...)``), the departures page's runs
(``departures.RunStore``) and the converged read-outs' fits (``converged_study.run``) are kept
keyed by everything that decides them, the code's digest and torch's version among it. A change to
that code leaves the old entries on disk where nothing will load them again (a padding-modes grid is
about 170 MB). ``python -m poslib.stores`` lists them; ``--delete`` removes the stale ones. Entries
made with other settings (another profile) are kept.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .converged_study import code_digest as fits_digest
from .departures import code_digest as runs_digest
from .experiment import grid_code_digest
from .fetch import cache_root
from .files import load_checked


@dataclass
class StoreEntry:
    page: str  # the store's folder, one per page
    files: list[Path]  # what deleting the entry removes
    bytes: int
    stale: bool
    why: str  # for a stale entry: which part of its identity no longer matches


def _identity(path: Path) -> dict:
    if path.suffix == ".pt":  # a grid or fit: the identity is stored inside, beside the tensors it decides
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged entry is reported as such below
            stored = load_checked(path, map_location="cpu")
        if stored is None:
            raise ValueError("damaged")
        return stored["identity"]
    return json.loads(path.with_suffix(".json").read_text())


def _mismatch(identity: dict, code: str) -> str:
    changed = [f"{k} {identity.get(k)} (now {now})" for k, now in (("code", code), ("torch", torch.__version__))
               if identity.get(k) != now]
    return ", ".join(changed)


def store_entries(root: str | Path | None = None) -> list[StoreEntry]:
    """Every stored grid and run set under ``root`` (default ``$POSLIB_CACHE/runs``), marked stale
    when the code digest or torch version that made it differs from this installation's."""
    root = Path(root) if root is not None else cache_root() / "runs"
    digests = {"grid-": grid_code_digest(), "runs-": runs_digest(), "fit-": fits_digest()}
    entries = []
    for path in sorted(p for p in root.glob("*/*") if p.suffix in (".pt", ".csv") and p.stem.startswith(tuple(digests))):
        files = [path] + ([path.with_suffix(".json"), path.with_suffix(".sha256")] if path.suffix == ".csv" else [])
        try:
            why = _mismatch(_identity(path), digests[path.stem.split("-")[0] + "-"])
        except (OSError, KeyError, RuntimeError, ValueError) as e:  # unreadable: nothing can load it either
            why = "damaged" if str(e) == "damaged" else f"unreadable ({type(e).__name__})"
        entries.append(StoreEntry(path.parent.name, files, sum(f.stat().st_size for f in files if f.exists()),
                                  bool(why), why))
    tasks = root.parent / "tasks"  # trained task networks: keyed by their settings, stale only when damaged
    for path in sorted(tasks.glob("*.pt")) if tasks.is_dir() else []:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            why = "" if load_checked(path, map_location="cpu") is not None else "damaged"
        entries.append(StoreEntry("tasks", [path], path.stat().st_size, bool(why), why))
    return entries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m poslib.stores", description=__doc__.splitlines()[0])
    parser.add_argument("--delete", action="store_true", help="delete the stale entries")
    parser.add_argument("--root", help="the stores' folder (default: $POSLIB_CACHE/runs)")
    args = parser.parse_args(argv)
    entries = store_entries(args.root)
    for page in sorted({e.page for e in entries}):
        mine = [e for e in entries if e.page == page]
        stale = [e for e in mine if e.stale]
        print(f"{page}: {len(mine)} entries, {sum(e.bytes for e in mine) / 1e9:.2f} GB; "
              f"{len(stale)} stale, {sum(e.bytes for e in stale) / 1e9:.2f} GB")
        for why in sorted({e.why for e in stale}):
            print(f"  {sum(e.why == why for e in stale)} made with {why}")
    stale = [e for e in entries if e.stale]
    if args.delete:
        for e in stale:
            for f in e.files:
                f.unlink(missing_ok=True)
        print(f"deleted {len(stale)} stale entries, {sum(e.bytes for e in stale) / 1e9:.2f} GB")
    elif stale:
        print("run with --delete to remove the stale entries")


if __name__ == "__main__":
    main()
