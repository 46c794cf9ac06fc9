"""Grids of read-out experiments (encoder x pattern x read-out variant x seed) run from the feature cache.

Each encoder sees every input once (``features``); then, for each seed, every (pattern, read-out
variant) read-out of that encoder is trained on the same batches, so a whole grid costs about one
read of the cache per epoch and seed. Results come back as a tidy table, one row per cell and test
set, and can be written to a results file with their settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch

from . import metrics, readout as readout_module, stats, train as train_module
from .data import ImageItem, photo_items, synthetic_items
from .encoders import Encoder, build_encoder, check_encoder
from .features import FeatureSet, compute_features
from .fetch import cache_root
from .files import identity_digest, load_checked, save_checked, source_digest
from .patterns import check_pattern, make_pattern
from .photos import folder_images, photo_pool
from .profiles import Profile
from .readout import PosENet
from .stats import constant_map_loss, failed_readout, mark_failed, seed_sd, without_failed
from .results import save_table
from .train import evaluate_readouts, pick_device, train_readouts

TEST_SETS: tuple[str, ...] = ("photos", "black", "white", "noise")
NOISE_SEED = 1000  # noise test images use seeds 1000, 1001, ... (disjoint from any training seed)


@dataclass(frozen=True)
class ReadoutSpec:
    """A read-out variant: Table 2 varies layers and kernel, Table 4 padding, Table 3 the taps read."""

    layers: int = 1
    kernel_size: int = 3
    padding: int = 0
    taps: tuple[int, ...] | None = None  # tap indices read (None: all)

    def __post_init__(self) -> None:
        if not isinstance(self.kernel_size, int) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel size must be a positive odd integer (1, 3, 5, 7, ...), got {self.kernel_size!r}")
        if not isinstance(self.layers, int) or self.layers < 1:
            raise ValueError(f"layers must be a positive integer, got {self.layers!r}")
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"padding must be an integer >= 0, got {self.padding!r}")

    @property
    def taps_label(self) -> str:
        return "all" if self.taps is None else "+".join(f"f{i + 1}" for i in self.taps)


@dataclass
class DataSets:
    """Training inputs and named test sets, as lists of image items."""

    train: list[ImageItem]
    tests: dict[str, list[ImageItem]]
    description: dict = field(default_factory=dict)


def standard_data(profile: Profile, *, seed: int = 0, train_folder: str | None = None,
                  test_folder: str | None = None, test_sets: Sequence[str] = TEST_SETS) -> DataSets:
    """The profile's training photos (with crops) and test sets: photos, black, white, noise.

    ``train_folder`` / ``test_folder``: user folders (e.g. DUT-S, PASCAL-S) replacing the offline pool.
    """
    for name in test_sets:
        if name not in TEST_SETS:
            raise ValueError(f"unknown test set {name!r}; valid: {', '.join(TEST_SETS)}")
    if train_folder is None or (test_folder is None and "photos" in test_sets):
        pool = photo_pool().sort_values("sha256")  # a fixed order, independent of the sources' order
    train_rows = folder_images(train_folder, split="train") if train_folder else pool[pool.split == "train"]
    train_rows = train_rows[train_rows.status == "ok"] if "status" in train_rows else train_rows
    if profile.train_photos is not None:
        train_rows = train_rows.head(profile.train_photos)
    tests: dict[str, list[ImageItem]] = {}
    if "photos" in test_sets:
        test_rows = folder_images(test_folder) if test_folder else pool[pool.split == "test"]
        test_rows = test_rows[test_rows.status == "ok"]
        if profile.test_photos is not None:
            test_rows = test_rows.head(profile.test_photos)
        tests["photos"] = photo_items(test_rows)
    for kind in ("black", "white", "noise"):
        if kind in test_sets:
            n = profile.noise_images if kind == "noise" else 1
            tests[kind] = synthetic_items(kind, n, seed=NOISE_SEED)
    train = photo_items(train_rows, profile.train_crops, seed=seed)
    description = {"train": train_folder or "offline pool (train split)", "train_photos": len(train_rows),
                   "train_inputs": len(train), "test_photos": test_folder or "offline pool (test split)",
                   **{f"n_{k}": len(v) for k, v in tests.items()}}
    return DataSets(train, tests, description)


@dataclass
class GridResult:
    table: pd.DataFrame  # one row per (pattern, read-out, seed, test set)
    predictions: dict[tuple, torch.Tensor]  # (pattern, layers, kernel, padding, taps, seed, test set) -> (K, H, W)
    losses: dict[tuple, list[float]]  # (pattern, layers, kernel, padding, taps, seed) -> epoch losses
    per_image: pd.DataFrame  # one row per (cell, seed, test set, image): spc, mae, failed
    reused: bool = False  # loaded from a ``run_grid(store=...)`` folder instead of trained


def run_grid(
    encoder: str | Encoder,
    *,
    patterns: Sequence[str],
    readouts: Sequence[ReadoutSpec],
    seeds: Sequence[int],
    data: DataSets,
    profile: Profile,
    weights: str = "imagenet",
    preprocess: str = "weights",
    weights_path: str | None = None,
    device: str | None = None,
    keep_predictions: int = 4,
    progress: bool = True,
    store: str | Path | None = None,
) -> GridResult:
    """Train and evaluate one read-out per (pattern, read-out variant, seed) on ``encoder``'s cached taps.

    ``encoder``: a name of ``build_encoder`` (with ``weights``, ``preprocess``, ``weights_path``) or a
    ready ``Encoder`` (e.g. a trained task network's body, ``dense.task_encoder``).
    ``store``: a folder keeping finished grids, keyed by everything that decides them (the features'
    cache keys, the read-outs, seeds and training settings, a digest of the training code, torch's
    version, the device): a page that stops resumes grid by grid, and a re-run loads them.
    """
    if isinstance(encoder, str):
        check_encoder(encoder, None if encoder == "none" else weights)
    for p in patterns:
        check_pattern(p)
    if not readouts or not seeds:
        raise ValueError("need at least one read-out variant and one seed")
    dev = pick_device(device)
    enc = encoder if isinstance(encoder, Encoder) else build_encoder(encoder, weights, preprocess=preprocess,
                                                                     weights_path=weights_path)
    cached = dict(precision=profile.feature_precision, storage=profile.feature_storage, device=dev, progress=progress)
    feats = compute_features(enc, data.train, **cached)
    profile = profile.for_inputs(len(feats))  # the profile's read-out budget in SGD steps, whatever the training set
    tests = {name: compute_features(enc, items, **cached)
             for name, items in data.tests.items()}
    # Read-outs trained together share each batch; with share_batch_order all seeds form one group
    # whose batch order is seeded by the first seed, else each seed shuffles on its own.
    groups = [list(seeds)] if profile.share_batch_order else [[s] for s in seeds]
    if store is None:
        return _train_grid(enc, feats, tests, patterns, readouts, seeds, groups, profile, dev, keep_predictions, progress)
    identity = {"features": feats.folder.name, "tests": {k: v.folder.name for k, v in tests.items()},
                "patterns": list(patterns), "readouts": [asdict(r) for r in readouts], "seeds": list(seeds),
                "train_configs": [asdict(profile.train_config(g[0])) for g in groups],
                "hidden_channels": profile.hidden_channels, "keep_predictions": keep_predictions,
                "code": grid_code_digest(), "torch": torch.__version__, "device": dev.type}
    path = Path(store) / f"grid-{identity_digest(identity)}.pt"
    stored = load_checked(path, what="stored grid") if path.exists() else None
    if stored is not None:
        return GridResult(stored["table"], stored["predictions"], stored["losses"], stored["per_image"], reused=True)
    result = _train_grid(enc, feats, tests, patterns, readouts, seeds, groups, profile, dev, keep_predictions, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checked(path, {"table": result.table, "predictions": result.predictions, "losses": result.losses,
                        "per_image": result.per_image, "identity": identity})
    return result


def grid_store(page: str, resume: bool = True) -> Path | None:
    """The folder where ``page`` keeps its finished grids (``run_grid(store=...)``), or ``None`` to
    train every grid afresh: a re-run with unchanged settings and code loads them, a stopped page
    resumes grid by grid."""
    if not page or "/" in page:
        raise ValueError(f"grid store name must be a plain folder name, got {page!r}")
    return cache_root() / "runs" / page if resume else None


def grid_code_digest() -> str:
    """A digest of the code that trains and scores a grid's read-outs (comments and layout aside)."""
    return source_digest([readout_module, train_module, metrics, _train_grid, stats.failed_readout, stats.constant_map_loss])


def _train_grid(enc: Encoder, feats: FeatureSet, tests: dict[str, FeatureSet], patterns: Sequence[str],
                readouts: Sequence[ReadoutSpec], seeds: Sequence[int], groups: list[list[int]], profile: Profile,
                dev: torch.device, keep_predictions: int, progress: bool) -> GridResult:
    targets = {p: make_pattern(p, 224) for p in patterns}
    cells = [(p, spec, seed) for seed in seeds for spec in readouts for p in patterns]
    rows, predictions, losses, per_image = [], {}, {}, []
    for group in groups:
        members = [c for c in cells if c[2] in group]
        models = [PosENet(feats.channels, layers=spec.layers, kernel_size=spec.kernel_size, padding=spec.padding,
                          hidden_channels=profile.hidden_channels if spec.layers > 1 else None,
                          taps=spec.taps, seed=seed) for _, spec, seed in members]
        history = train_readouts(models, [feats.data], [targets[p] for p, _, _ in members],
                                 profile.train_config(group[0]), device=dev, progress=progress)
        for (p, spec, seed), h in zip(members, history):
            losses[(p, spec.layers, spec.kernel_size, spec.padding, spec.taps_label, seed)] = h.epoch_loss
        for test_name, test_feats in tests.items():
            evals = evaluate_readouts(models, [test_feats.data], [targets[p] for p, _, _ in members], device=dev,
                                      keep_predictions=keep_predictions)
            for (p, spec, seed), model, ev in zip(members, models, evals):
                key = (p, spec.layers, spec.kernel_size, spec.padding, spec.taps_label, seed, test_name)
                predictions[key] = ev.predictions
                final_loss = losses[key[:-1]][-1]
                summary = ev.summary()
                constant_loss = constant_map_loss(targets[p])
                setting = {"encoder": enc.name, "weights": enc.weights, "preprocess": enc.preprocess.kind,
                           "pattern": p, "layers": spec.layers, "kernel": spec.kernel_size,
                           "padding": spec.padding, "taps": spec.taps_label,
                           "hidden": model.hidden_channels if spec.layers > 1 else None,
                           "seed": seed, "test_set": test_name}
                # failed: not finite, or training went nowhere (stats.failed_readout)
                failed = failed_readout(final_loss, losses[key[:-1]][0], summary["spc_mean"], constant_loss)
                rows.append({**setting, **summary, "final_train_loss": final_loss,
                             "constant_map_loss": constant_loss, "failed": failed})
                per_image.append(pd.DataFrame({**setting, "image": range(len(ev.spc)), "spc": ev.spc.numpy(),
                                               "mae": ev.mae.numpy(), "failed": failed}))
    return GridResult(pd.DataFrame(rows), predictions, losses, pd.concat(per_image, ignore_index=True))


SETTINGS = ["encoder", "weights", "preprocess", "pattern", "layers", "kernel", "padding", "taps", "hidden", "test_set"]


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Average per-seed results over seeds: ``spc_mean`` is the mean over seeds of the per-image
    mean, ``spc_sd`` the standard deviation over seeds (NaN for a single seed: no spread); likewise
    for MAE. ``spc_se_images``: the standard error of the mean over test images (per-image sd /
    sqrt(n), what a bootstrap over images estimates), averaged over seeds. Failed read-outs
    (``stats.failed_readout``) are left out of the mean and counted in ``n_failed``; ``n_seeds``
    counts the seeds averaged."""
    keys = [c for c in SETTINGS if c in table.columns]
    table = mark_failed(table, [k for k in keys if k != "test_set"])
    kept, _ = without_failed(table, ["spc_mean", "spc_sd", "mae_mean"])
    g = kept.groupby(keys, dropna=False, sort=False)
    extra = {"image_sd": ("spc_sd", "mean")} if "spc_sd" in table.columns else {}  # per-image sd of each seed's run
    out = g.agg(spc_mean=("spc_mean", "mean"), spc_sd=("spc_mean", seed_sd), mae_mean=("mae_mean", "mean"),
                mae_sd=("mae_mean", seed_sd), n_images=("n_images", "first"), n_seeds=("_kept", "sum"),
                n_failed=("_failed", "sum"), **extra).reset_index()
    if "image_sd" in out:
        out.insert(out.columns.get_loc("n_images"), "spc_se_images", out.pop("image_sd") / out.n_images ** 0.5)
    return out


def per_image_table(grids: Sequence[GridResult], **columns) -> pd.DataFrame:
    """The per-image scores of several grids in one table (``results/per_image/<table>.csv``), with
    constant ``columns`` added."""
    keep = ["encoder", "weights", "pattern", "layers", "kernel", "padding", "taps", "seed", "test_set", "image",
            "spc", "mae", "failed"]
    parts = []
    for g in grids:  # the failure flags of summarize (the cell rule), per read-out
        cell = [c for c in SETTINGS if c in g.table.columns and c != "test_set"]
        flags = mark_failed(g.table, cell)[[*cell, "seed", "failed"]].drop_duplicates([*cell, "seed"])
        read_out = [c for c in cell if c in g.per_image.columns] + ["seed"]
        flags = flags[read_out + ["failed"]].astype({c: object for c in read_out})
        pi = g.per_image.drop(columns="failed").astype({c: object for c in read_out})
        parts.append(pi.merge(flags, on=read_out, how="left")[keep])
    out = pd.concat(parts, ignore_index=True)
    return out.assign(**columns) if columns else out


def save_per_image(table: pd.DataFrame, name: str, out_dir: str | Path, settings: dict | None = None) -> Path:
    """Write ``results/per_image/<name>.csv`` (scores rounded to 6 decimals: float32 noise aside)."""
    rounded = table.assign(spc=table.spc.round(6), mae=table.mae.round(6))
    return save_table(rounded, Path(out_dir) / "per_image" / f"{name}.csv", settings or {})


def save_grid(table: pd.DataFrame, path: str | Path, *, profile: Profile, data: DataSets, extra: dict | None = None) -> Path:
    """Write a results table with the profile, the data and the software that made it."""
    settings = {"profile": profile.as_dict(), "precision": profile.precisions(pick_device(None)), "data": data.description,
                "train_config": asdict(profile.train_config()), **(extra or {})}
    return save_table(table, path, settings)
