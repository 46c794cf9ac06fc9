"""Stale store entries (made by other code or another torch) are found and deleted; current ones stay."""

import json

import pandas as pd
import torch

from poslib import converged, converged_study
from poslib.data import synthetic_items
from poslib.departures import RunStore, code_digest
from poslib.experiment import DataSets, ReadoutSpec, grid_store, run_grid
from poslib.profiles import get_profile
from poslib.stores import main, store_entries


def test_stale_entries_are_listed_and_deleted_and_current_ones_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path))
    data = DataSets(train=synthetic_items("noise", 4, seed=3), tests={"noise": synthetic_items("noise", 2, seed=100)})
    run_grid("none", patterns=["H"], readouts=[ReadoutSpec()], seeds=[0], data=data, profile=get_profile("smoke"),
             progress=False, store=grid_store("existence"))
    current = next((tmp_path / "runs" / "existence").glob("grid-*.pt"))
    stored = torch.load(current, weights_only=False)
    stored["identity"]["code"] = "0123456789abcdef"  # as a grid made before the training code changed
    torch.save(stored, current.with_name("grid-old.pt"))
    runs = RunStore(tmp_path / "runs" / "departures", {"code": code_digest(), "torch": torch.__version__})
    runs.get_or_run("a", lambda: pd.DataFrame({"spc": [0.5]}))
    old = RunStore(tmp_path / "runs" / "departures", {"code": code_digest(), "torch": "1.0"})
    old.get_or_run("a", lambda: pd.DataFrame({"spc": [0.5]}))

    converged_study.run([converged_study.Setting("Table 1", "none", "none", kernel=1)], data=data,
                        profile=get_profile("smoke"), results_dir=tmp_path, ridge=converged.RidgeSettings(folds=2),
                        patterns=["H"], store=grid_store("converged"), progress=False)
    fit = next((tmp_path / "runs" / "converged").glob("fit-*.pt"))
    stored = torch.load(fit, weights_only=False)
    stored["identity"]["code"] = "fedcba9876543210"  # a fit made before the solver changed
    torch.save(stored, fit.with_name("fit-old.pt"))

    entries = {e.files[0].name: e for e in store_entries()}
    assert {n for n, e in entries.items() if e.stale} == {"grid-old.pt", "fit-old.pt", old.path.name}
    assert "code 0123456789abcdef" in entries["grid-old.pt"].why and "torch 1.0" in entries[old.path.name].why
    assert json.loads(old.path.with_suffix(".json").read_text())["torch"] == "1.0"

    main([])  # a listing deletes nothing
    listing = capsys.readouterr().out
    assert "existence: 2 entries" in listing and "converged: 2 entries" in listing and (current.parent / "grid-old.pt").exists()
    main(["--delete"])
    left = sorted(p.name for p in (tmp_path / "runs").glob("*/*"))
    assert left == sorted([current.name, fit.name, runs.path.name, runs.path.with_suffix(".json").name])
    assert not any(e.stale for e in store_entries())
