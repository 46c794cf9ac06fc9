"""Where our numbers depart from the paper's: each departure of the protocol as a controlled experiment.

Every experiment trains fresh read-outs on cached encoder features and changes one thing against a
baseline (the ``cpu`` profile's protocol): the number of SGD steps, the number of training photos,
the random crops, the input convention, the read-out's hidden width. Seeds are independent: each
seed has its own read-out initialisation *and* its own batch order. All patterns of one seed share
that seed's batches (one read of the features per step for all of them).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch

from . import readout, train as train_module
from .files import atomic_write_text, identity_digest, source_digest
from .patterns import check_pattern, make_pattern
from .profiles import epochs_for_steps, steps_per_epoch  # noqa: F401  (re-exported for the pages)
from .readout import PosENet
from .stats import NOISE_MULTIPLE
from .train import TrainConfig, evaluate_readouts, pick_device, train_readouts

OFFICIAL_STEPS = math.ceil(10_553 / 32) * 15  # DUT-S training set, batch 32, 15 epochs: 4,950 steps


def protocol(epochs: int, seed: int, batch_size: int = 32) -> TrainConfig:
    """The official SGD protocol stretched to ``epochs``: the lr drop stays at 2/3 of the run."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr_milestones=(max(1, round(epochs * 2 / 3)),),
                       seed=seed)


def train_and_score(train: torch.Tensor, tests: Mapping[str, torch.Tensor], *, channels: Sequence[int],
                    patterns: Sequence[str], seeds: Sequence[int], epochs: int, layers: int = 1,
                    hidden: int | None = None, shared_order: bool = False, device: str | None = None,
                    progress: bool = False) -> pd.DataFrame:
    """One read-out per (pattern, seed) trained on ``train`` features, scored on each test set.

    ``train`` and each test: (N, sum C_i, g, g) features (e.g. ``FeatureSet.data`` or a row subset).
    Seed s initialises the read-outs with s and orders the batches with s (with ``shared_order``,
    every seed takes seed 0's batch order, as the book's grids do for speed). Returns one row per
    (pattern, seed, test set) with the per-image mean SPC and MAE and the number of SGD steps.
    """
    for p in patterns:
        check_pattern(p)
    if not seeds:
        raise ValueError("need at least one seed")
    dev = pick_device(device)
    # Each step gathers a batch of rows: channels-last (as the feature cache stores them) makes that a
    # copy of whole rows, about 4x faster on a CPU than from an NCHW tensor; on a GPU the rows stay there.
    train = train.to(dev if dev.type == "cuda" else "cpu", torch.float32).contiguous(memory_format=torch.channels_last)
    targets = [make_pattern(p, 224) for p in patterns]
    steps = epochs * steps_per_epoch(train.shape[0])
    rows = []
    for seed in seeds:
        models = [PosENet(list(channels), layers=layers, hidden_channels=hidden if layers > 1 else None, seed=seed)
                  for _ in patterns]
        order = protocol(epochs, 0 if shared_order else seed)
        history = train_readouts(models, [train], targets, order, device=dev, progress=progress)
        for name, feats in tests.items():
            evals = evaluate_readouts(models, [feats], targets, device=dev, keep_predictions=0)
            for p, ev, h in zip(patterns, evals, history):
                s = ev.summary()
                rows.append({"pattern": p, "seed": seed, "test_set": name, "spc": s["spc_mean"], "mae": s["mae_mean"],
                             "n_images": s["n_images"], "steps": steps, "epochs": epochs,
                             "train_inputs": int(train.shape[0]), "final_train_loss": h.epoch_loss[-1]})
    return pd.DataFrame(rows)


def code_digest() -> str:
    """A digest of the code that computes a run's rows (the read-out, its training, the protocol and
    ``train_and_score``), so stored runs are not reused after that code changed; edits to comments,
    layout, or how the rows are summarised or described do not invalidate them."""
    return source_digest([readout, train_module, steps_per_epoch, epochs_for_steps, protocol, train_and_score])


class RunStore:
    """Finished runs' per-seed rows, written to disk as each run ends, so a long page resumes where
    it stopped. One CSV per ``identity`` (everything that decides the rows: settings, feature cache
    keys, code digest, torch version); a run is found again by its name. With ``reuse=False`` every
    run is computed afresh and replaces what the store held."""

    def __init__(self, folder: str | Path, identity: Mapping, *, reuse: bool = True) -> None:
        self.path = Path(folder) / f"runs-{identity_digest(identity)}.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.with_suffix(".json").exists():
            atomic_write_text(self.path.with_suffix(".json"), json.dumps(identity, indent=1, sort_keys=True, default=str))
        self.rows = self._load() if reuse and self.path.exists() else None
        if self.rows is None:
            self.rows = pd.DataFrame({"run": pd.Series(dtype=str)})
        self.reused: list[str] = []

    def _load(self) -> pd.DataFrame | None:
        """The stored rows, or None (with a warning naming the file) when they are damaged: their
        checksum fails, or (stored before checksums were kept) they do not parse."""
        text = self.path.read_bytes()
        check = self.path.with_suffix(".sha256")
        if check.exists() and check.read_text().strip() != hashlib.sha256(text).hexdigest():
            warnings.warn(f"stored runs {self.path} are damaged (checksum mismatch); recomputing them", stacklevel=3)
            return None
        try:
            return pd.read_csv(io.BytesIO(text))
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
            warnings.warn(f"stored runs {self.path} are damaged ({type(e).__name__}); recomputing them", stacklevel=3)
            return None

    def get_or_run(self, name: str, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The stored rows of run ``name``, or ``compute()``'s, stored before they are returned."""
        stored = self.rows.run == name
        if stored.any():
            self.reused.append(name)
            return self.rows[stored].drop(columns="run").reset_index(drop=True)
        started = time.perf_counter()
        rows = compute().assign(run_seconds=lambda r: time.perf_counter() - started)
        new = rows.assign(run=name)
        self.rows = new if self.rows.empty else pd.concat([self.rows, new], ignore_index=True)
        text = self.rows.to_csv(index=False)
        atomic_write_text(self.path, text)
        atomic_write_text(self.path.with_suffix(".sha256"), hashlib.sha256(text.encode()).hexdigest())
        return rows


def summarize_seeds(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean and sd over seeds of each setting's SPC and MAE (NaN, never dropped, if a seed diverged)."""
    g = rows.groupby(list(by), sort=False, dropna=False)
    sd = lambda x: x.std(skipna=False) if len(x) > 1 else float("nan")  # noqa: E731
    mean = lambda x: x.mean(skipna=False)  # noqa: E731
    return g.agg(spc_mean=("spc", mean), spc_sd=("spc", sd), mae_mean=("mae", mean), mae_sd=("mae", sd),
                 n_seeds=("seed", "nunique"), steps=("steps", "first"), train_inputs=("train_inputs", "first"),
                 n_images=("n_images", "first")).reset_index()


def effect(rows: pd.DataFrame, baseline: str, change: str, *, by: Sequence[str] = ("pattern", "test_set"),
           column: str = "setting") -> pd.DataFrame:
    """The change in SPC from ``baseline`` to ``change`` (two values of ``column``), per ``by`` cell.

    Seeds pair up (same seed in both settings); ``delta_sd`` is the sd over seeds of the paired
    differences, so ``delta_mean`` counts as an effect only beyond about twice that.
    """
    a = rows[rows[column] == baseline].set_index([*by, "seed"])["spc"]
    b = rows[rows[column] == change].set_index([*by, "seed"])["spc"]
    d = (b - a).dropna().rename("delta").reset_index()
    g = d.groupby(list(by), sort=False)["delta"]
    return pd.DataFrame({"delta_mean": g.mean(), "delta_sd": g.std(), "n_seeds": g.size()}).reset_index()


def overview(effects: pd.DataFrame) -> pd.DataFrame:
    """Per departure and setting, the mean over patterns of the paired change in SPC, on photos and on
    the synthetic test sets, with its seed spread, the baseline's gap to the paper and the count of
    cells whose change exceeds twice its spread."""
    e = effects.assign(test=effects.test_set.where(effects.test_set == "photos", "synthetic"),
                       beyond=effects.delta_mean.abs() > NOISE_MULTIPLE * effects.delta_sd)
    out = (e.groupby(["departure", "setting", "compared_with", "test"], sort=False)
           .agg(delta_mean=("delta_mean", "mean"), delta_sd=("delta_sd", "mean"), gap=("baseline_gap", "mean"),
                cells_beyond_2sd=("beyond", "sum"), cells=("beyond", "size")).reset_index())
    out["share_of_gap"] = -out.delta_mean / out.gap
    return out


def _change(d: float, sd: float, where: str) -> str:
    if d == 0 or abs(d) < 5e-4:
        return f"SPC on {where} does not change (±{sd:.3f})"
    noise = "beyond" if abs(d) > NOISE_MULTIPLE * sd else "within"
    return f"SPC on {where} {'rises' if d > 0 else 'falls'} by {abs(d):.3f} ± {sd:.3f}, {noise} twice its seed spread"


def _gap(d: float, gap: float) -> str:
    if abs(d) < 5e-4 or not gap == gap:  # no change, or no paper value (NaN)
        return ""
    if gap < 0:  # ours below the paper: a rise closes the gap
        return f"; it closes {d / -gap:.0%} of the photo gap to the paper" if d > 0 else "; it widens the photo gap to the paper"
    return "; it moves further above the paper" if d > 0 else f"; it closes {-d / gap:.0%} of the photo gap to the paper"


# Settings measured beside the departures that are not departures: raw [0, 1] input only lowers the
# input's contrast (255x below the Caffe input these weights expect), which neither the paper nor we use.
PROBES = {("input", "tensor")}


def explain(effects: pd.DataFrame, tests: Sequence[str] = ("photos", "synthetic")) -> str:
    """A Markdown list, one sentence per departure and setting; every direction and size in it comes
    from the numbers (mean over patterns of the paired per-seed change, and its seed spread)."""
    rows = overview(effects)
    lines = []
    for (departure, setting, reference), g in rows.groupby(["departure", "setting", "compared_with"], sort=False):
        g = g.set_index("test")
        parts = [_change(g.loc[t, "delta_mean"], g.loc[t, "delta_sd"], "test photos" if t == "photos" else "black, white and noise")
                 for t in tests if t in g.index]
        gap = ""
        if (departure, setting) in PROBES:  # not a departure of ours from the paper: it cannot close the gap
            gap = "; a probe of the input's contrast, not a departure from the paper's protocol, so not counted against the gap"
        elif "photos" in g.index and abs(g.loc["photos", "delta_mean"]) > NOISE_MULTIPLE * g.loc["photos", "delta_sd"]:
            gap = _gap(g.loc["photos", "delta_mean"], g.loc["photos", "gap"])  # only a change beyond the noise moves the gap
        lines.append(f"- **{departure}** ({setting}, against {reference}): " + "; ".join(parts) + gap + ".")
    return "\n".join(lines)
