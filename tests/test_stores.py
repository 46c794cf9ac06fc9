"""Stale store entries (made by other code or another torch) are found and deleted; current ones stay."""

import functools
import json

import pandas as pd
import pytest
import torch

from poslib import converged, converged_study
from poslib.data import synthetic_items
from poslib.departures import RunStore, code_digest
from poslib.experiment import DataSets, ReadoutSpec, grid_store, run_grid
from poslib.files import load_checked, save_checked
from poslib.profiles import get_profile
from poslib.stores import main, store_entries


def test_stale_entries_are_listed_and_deleted_and_current_ones_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path))
    data = DataSets(train=synthetic_items("noise", 4, seed=3), tests={"noise": synthetic_items("noise", 2, seed=100)})
    run_grid("none", patterns=["H"], readouts=[ReadoutSpec()], seeds=[0], data=data, profile=get_profile("smoke"),
             progress=False, store=grid_store("existence"))
    current = next((tmp_path / "runs" / "existence").glob("grid-*.pt"))
    stored = load_checked(current)
    stored["identity"]["code"] = "0123456789abcdef"  # as a grid made before the training code changed
    save_checked(current.with_name("grid-old.pt"), stored)
    runs = RunStore(tmp_path / "runs" / "departures", {"code": code_digest(), "torch": torch.__version__})
    runs.get_or_run("a", lambda: pd.DataFrame({"spc": [0.5]}))
    old = RunStore(tmp_path / "runs" / "departures", {"code": code_digest(), "torch": "1.0"})
    old.get_or_run("a", lambda: pd.DataFrame({"spc": [0.5]}))

    converged_study.run([converged_study.Setting("Table 1", "none", "none", kernel=1)], data=data,
                        profile=get_profile("smoke"), results_dir=tmp_path, ridge=converged.RidgeSettings(folds=2),
                        patterns=["H"], store=grid_store("converged"), progress=False)
    fit = next((tmp_path / "runs" / "converged").glob("fit-*.pt"))
    stored = load_checked(fit)
    stored["identity"]["code"] = "fedcba9876543210"  # a fit made before the solver changed
    save_checked(fit.with_name("fit-old.pt"), stored)

    entries = {e.files[0].name: e for e in store_entries()}
    assert {n for n, e in entries.items() if e.stale} == {"grid-old.pt", "fit-old.pt", old.path.name}
    assert "code 0123456789abcdef" in entries["grid-old.pt"].why and "torch 1.0" in entries[old.path.name].why
    assert json.loads(old.path.with_suffix(".json").read_text())["torch"] == "1.0"

    main([])  # a listing deletes nothing
    listing = capsys.readouterr().out
    assert "existence: 2 entries" in listing and "converged: 2 entries" in listing and (current.parent / "grid-old.pt").exists()
    main(["--delete"])
    left = sorted(p.name for p in (tmp_path / "runs").glob("*/*"))
    assert left == sorted([current.name, fit.name, runs.path.name, runs.path.with_suffix(".json").name,
                           runs.path.with_suffix(".sha256").name])
    assert not any(e.stale for e in store_entries())


def _damage(path, how):
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:  # one flipped bit deep in the payload: it may still unpickle
        blob = bytearray(raw)
        blob[len(blob) * 3 // 4] ^= 0x01
        path.write_bytes(bytes(blob))


@pytest.mark.parametrize("how", ["truncated", "bit flip"])
def test_a_damaged_grid_fit_or_run_store_is_recomputed_with_a_warning_naming_it(tmp_path, monkeypatch, how):
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path))
    data = DataSets(train=synthetic_items("noise", 4, seed=3), tests={"noise": synthetic_items("noise", 2, seed=100)})
    grid = functools.partial(run_grid, "none", patterns=["H"], readouts=[ReadoutSpec()], seeds=[0], data=data,
                             profile=get_profile("smoke"), progress=False, store=grid_store("existence"))
    first = grid()
    path = next((tmp_path / "runs" / "existence").glob("grid-*.pt"))
    _damage(path, how)
    with pytest.warns(UserWarning, match=f"stored grid {path} is damaged"):
        again = grid()
    assert not again.reused and again.table.spc_mean.equals(first.table.spc_mean)
    assert grid().reused  # rewritten whole

    fit = functools.partial(converged_study.run, [converged_study.Setting("Table 1", "none", "none", kernel=1)], data=data,
                            profile=get_profile("smoke"), results_dir=tmp_path, ridge=converged.RidgeSettings(folds=2),
                            patterns=["H"], store=grid_store("converged"), progress=False)
    fit()
    fit_path = next((tmp_path / "runs" / "converged").glob("fit-*.pt"))
    _damage(fit_path, how)
    with pytest.warns(UserWarning, match="stored fit .* is damaged"):
        _, record = fit()
    assert not any(r["reused"] for r in record.values())

    runs = RunStore(tmp_path / "runs" / "departures", {"code": code_digest()})
    runs.get_or_run("a", lambda: pd.DataFrame({"spc": [0.5]}))
    _damage(runs.path, how)
    with pytest.warns(UserWarning, match="stored runs .* are damaged"):
        again = RunStore(tmp_path / "runs" / "departures", {"code": code_digest()})
    assert again.rows.empty


def test_a_damaged_task_checkpoint_is_retrained_with_a_warning(tmp_path):
    from poslib.dense import TaskConfig, TaskNet, train_task

    images, labels = torch.rand(4, 3, 32, 32), torch.randint(0, 2, (4, 32, 32))
    config = TaskConfig(epochs=1, batch_size=2, precision="fp32")
    ckpt = tmp_path / "task.pt"
    train_task(TaskNet(1, width=2), images, labels, "saliency", config, checkpoint=ckpt, progress=False)
    _damage(ckpt, "truncated")
    with pytest.warns(UserWarning, match=f"task checkpoint {ckpt} is damaged"):
        run = train_task(TaskNet(1, width=2), images, labels, "saliency", config, checkpoint=ckpt, progress=False)
    assert len(run.epoch_loss) == 1


def _grid_in_a_process(cache: str, out: str) -> None:
    import os

    os.environ["POSLIB_CACHE"] = cache
    data = DataSets(train=synthetic_items("noise", 4, seed=3), tests={"noise": synthetic_items("noise", 2, seed=100)})
    g = run_grid("none", patterns=["H"], readouts=[ReadoutSpec()], seeds=[0], data=data, profile=get_profile("smoke"),
                 progress=False, store=grid_store("existence"))
    g.table.to_csv(out, index=False)


def test_two_processes_asking_for_the_same_grid_at_once_both_get_it_whole(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_grid_in_a_process, args=(str(tmp_path), str(tmp_path / f"{i}.csv"))) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    a, b = (pd.read_csv(tmp_path / f"{i}.csv") for i in range(2))
    assert a.spc_mean.equals(b.spc_mean)
    stored = list((tmp_path / "runs" / "existence").glob("grid-*"))
    assert len(stored) == 1 and load_checked(stored[0]) is not None  # one whole entry, no temporary left behind
