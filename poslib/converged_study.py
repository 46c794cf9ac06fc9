"""The page "How much position is decodable at convergence?": converged read-outs beside the SGD ones.

Each setting is fitted with ``converged.fit`` on the same training inputs and scored on the same test
sets as the page its SGD value comes from (Table 1's 792 inputs and test sets, Tables 2-4 the same),
so ``spc_sgd`` is the same setting read out by the paper's instrument. Finished fits are kept in the
run store (``$POSLIB_CACHE/runs/converged/``), keyed by everything that decides them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch

from . import converged
from .stats import NOISE_MULTIPLE, direction
from .encoders import build_encoder
from .experiment import DataSets
from .features import FeatureSet, compute_features
from .files import identity_digest, load_checked, save_checked, source_digest
from .profiles import Profile

PATTERNS = ("H", "V", "G", "HS", "VS")
SGD_TABLES = ("table1", "table2", "table3", "table4")  # where the SGD value of a setting is looked up
KEYS = ["encoder", "weights", "pattern", "kernel", "padding", "taps", "test_set"]
COLUMNS = ["group", "encoder", "weights", "init", "preprocess", "padding_mode", "taps", "kernel", "padding", "pattern",
           "test_set", "train_inputs", "n_images", "n_encoders", "spc_mean", "spc_sd", "spc_sd_folds", "spc_se_images",
           "mae_mean", "spc_train", "ridge", "rel_residual", "converged", "spc_sgd", "spc_sgd_sd", "paper_spc"]


@dataclass(frozen=True)
class Setting:
    """One converged read-out configuration: an encoder, the taps read, the read-out's kernel and padding."""

    group: str  # the book's table it mirrors
    encoder: str
    weights: str
    kernel: int = 3
    padding: int = 0
    taps: tuple[int, ...] | None = None  # tap indices (None: all)

    @property
    def taps_label(self) -> str:
        return "all" if self.taps is None else "+".join(f"f{i + 1}" for i in self.taps)


def plan(profile: Profile, *, wide: bool = True) -> list[Setting]:
    """The settings the page fits. ``wide``: include the 3x3 read-outs of all of VGG16's 1,472 channels
    (13,249 unknowns) and MobileNetV2's 1,448 (minutes each); the smoke profile leaves them out, and keeps the levels
    f1, f2 and the kernels up to 3."""
    wide = wide and profile.name != "smoke"
    table1 = [Setting("Table 1", "none", "none")]
    table1 += [Setting("Table 1", e, w) for e, w in (("vgg16", "imagenet"), ("mobilenet_v2", "imagenet"),
                                                    ("vgg16", "random"))] if wide else []
    table2 = [Setting("Table 2", "vgg16", "imagenet", kernel=1)] + [Setting("Table 2", "none", "none", kernel=k) for k in (1, 5, 7)]
    table3 = [Setting("Table 3", "vgg16", "imagenet", taps=(i,)) for i in range(5)]
    table4 = [Setting("Table 4", "none", "none", padding=p) for p in (1, 2)]
    table4 += [Setting("Table 4", "vgg16_nopad", "imagenet")] if wide else []
    out = table1 + table2 + table3 + table4
    return out if profile.name != "smoke" else [s for s in out if s.taps in (None, (0,), (1,)) and s.kernel <= 3]


def code_digest() -> str:
    """A digest of the code that fits and scores converged read-outs (stored fits are reused until it changes)."""
    return source_digest([converged, _fit_rows])


def _channels(feats: FeatureSet, taps: tuple[int, ...] | None) -> list[int] | None:
    if taps is None:
        return None
    offsets = [sum(feats.channels[:i]) for i in range(len(feats.channels) + 1)]
    return [c for t in taps for c in range(offsets[t], offsets[t + 1])]


def _fit_rows(setting: Setting, feats: FeatureSet, tests: dict[str, FeatureSet], data: DataSets, patterns: Sequence[str],
              ridge: converged.RidgeSettings, device: torch.device, progress: bool) -> pd.DataFrame:
    """Fit one setting and score it: one row per pattern and test set."""
    cf = converged.fit(feats.data, data.train, patterns, channels=_channels(feats, setting.taps), kernel=setting.kernel,
                       padding=setting.padding, settings=ridge, device=device, progress=progress)
    whole = [i for i, item in enumerate(data.train) if item.crop is None]  # training SPC: the whole training photos
    train_spc, _ = converged.image_scores(cf, feats.data[torch.as_tensor(whole)], device=device)
    rows = []
    for name, test in tests.items():
        spc, mae = converged.image_scores(cf, test.data, device=device)
        folds = torch.stack([converged.image_scores(cf, test.data, cf.fold_weights[k], device=device)[0].mean(0)
                             for k in range(ridge.folds)])  # (K, P): each fold's fit, scored on the test set
        for p, pattern in enumerate(patterns):
            rows.append({"pattern": pattern, "test_set": name, "n_images": len(test),
                         "spc_mean": spc[:, p].mean().item(), "spc_sd_folds": folds[:, p].std().item(),
                         "spc_se_images": converged.se_images(spc[:, p]), "mae_mean": mae[:, p].mean().item(),
                         "spc_train": train_spc[:, p].mean().item(), "ridge": cf.ridge[p],
                         "rel_residual": max(cf.rel_residual[p], cf.fold_rel_residual[p]),
                         "converged": cf.converged[p]})
    return pd.DataFrame(rows)


def sgd_values(results_dir: str | Path) -> pd.DataFrame:
    """The book's SGD read-outs (mean over seeds) and the paper's values, one row per setting, from
    the section tables in ``results_dir``; one-layer read-outs only."""
    parts = []
    for name in SGD_TABLES:
        path = Path(results_dir) / f"{name}.csv"
        if path.exists():
            t = pd.read_csv(path)
            parts.append(t[t.layers == 1][KEYS + ["spc_mean", "spc_sd", "paper_spc"]])
    if not parts:
        return pd.DataFrame(columns=KEYS + ["spc_sgd", "spc_sgd_sd", "paper_spc"])
    return pd.concat(parts).drop_duplicates(KEYS).rename(columns={"spc_mean": "spc_sgd", "spc_sd": "spc_sgd_sd"})


def run(settings: Sequence[Setting], *, data: DataSets, profile: Profile, results_dir: str | Path,
        ridge: converged.RidgeSettings = converged.RidgeSettings(), patterns: Sequence[str] = PATTERNS,
        device: torch.device = torch.device("cpu"), store: Path | None = None,
        progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Fit every setting (features from the cache) and return the results table (``COLUMNS``) and a
    record of what ran: per setting, its time and whether it was loaded from the store."""
    rows, record = [], {}
    for (encoder, weights) in dict.fromkeys((s.encoder, s.weights) for s in settings):
        enc = build_encoder(encoder, weights)
        cached = dict(precision=profile.feature_precision, storage=profile.feature_storage, device=device,
                      progress=progress)
        feats = compute_features(enc, data.train, **cached)
        tests = {name: compute_features(enc, items, **cached) for name, items in data.tests.items()}
        for s in [s for s in settings if (s.encoder, s.weights) == (encoder, weights)]:
            identity = {"features": feats.folder.name, "tests": {k: v.folder.name for k, v in tests.items()},
                        "setting": asdict(s), "patterns": list(patterns), "ridge": asdict(ridge),
                        "code": code_digest(), "torch": torch.__version__, "device": device.type}
            path = None if store is None else Path(store) / f"fit-{identity_digest(identity)}.pt"
            start = time.perf_counter()
            stored = load_checked(path, what="stored fit") if path is not None and path.exists() else None
            if stored is not None:
                table = stored["table"]
                reused = True
            else:
                table = _fit_rows(s, feats, tests, data, patterns, ridge, device, progress)
                reused = False
                if path is not None:
                    save_checked(path, {"table": table, "identity": identity})
            record[f"{s.group}: {encoder} ({weights}) {s.taps_label} k{s.kernel} p{s.padding}"] = {
                "seconds": round(time.perf_counter() - start, 1), "reused": reused}
            rows.append(table.assign(group=s.group, encoder=encoder, weights=weights,
                                     init="torchvision" if weights == "random" else "",
                                     preprocess=enc.preprocess.kind, padding_mode="zeros", taps=s.taps_label,
                                     kernel=s.kernel, padding=s.padding, train_inputs=len(data.train), n_encoders=1,
                                     spc_sd=float("nan")))
    table = pd.concat(rows, ignore_index=True)
    table = table.merge(sgd_values(results_dir), on=KEYS, how="left")
    return table[COLUMNS], record


def beside(table: pd.DataFrame, test_set: str = "photos") -> pd.DataFrame:
    """A display table for one test set: per setting (rows) and pattern (columns), SPC at
    convergence, by SGD at the `cpu` budget, and the paper's, three decimals."""
    t = table[table.test_set == test_set].sort_values("group", kind="stable")
    t["setting"] = (t.encoder + " (" + t.weights + ")" + t.taps.map(lambda v: "" if v == "all" else f", {v}")
                    + t.kernel.map(lambda k: "" if k == 3 else f", {k}x{k}")
                    + t.padding.map(lambda p: "" if p == 0 else f", padding {p}"))
    out = {}
    for pattern in [p for p in PATTERNS if p in set(t.pattern)]:
        part = t[t.pattern == pattern].set_index(["group", "setting"])
        out[(pattern, "converged")] = part.spc_mean.map("{:.3f}".format).where(part.converged, "not conv.")
        out[(pattern, "SGD")] = part.spc_sgd.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        out[(pattern, "paper")] = part.paper_spc.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    frame = pd.DataFrame(out)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["pattern", "SPC"])
    return frame


def spread(rows: pd.DataFrame) -> pd.Series:
    """A converged cell's spread: the fold fits' sd and the test images' standard error in quadrature
    (encoder seeds' sd too where there are several)."""
    parts = [rows.spc_sd_folds.fillna(0.0), rows.spc_se_images.fillna(0.0), rows.spc_sd.fillna(0.0)]
    return sum(p ** 2 for p in parts) ** 0.5


def _cells(table: pd.DataFrame, **where) -> pd.DataFrame:
    """Converged rows matching ``where``, indexed by pattern: converged SPC, its spread, SGD, paper."""
    t = table
    for k, v in where.items():
        t = t[t[k] == v]
    t = t[t.converged]
    return pd.DataFrame({"conv": t.spc_mean.values, "spread": spread(t).values, "sgd": t.spc_sgd.values,
                         "sgd_sd": t.spc_sgd_sd.values,
                         "paper": t.paper_spc.values, "train": t.spc_train.values}, index=t.pattern.values)


def _effects(d: pd.Series, s: pd.Series) -> str:
    return ", ".join(f"{p} {x:+.3f} ± {e:.3f}" for p, x, e in zip(d.index, d, s))


def _values(d: pd.Series) -> str:
    return ", ".join(f"{p} {x:+.3f}" for p, x in d.dropna().items())


def _tally(d: pd.Series, s: pd.Series) -> tuple[int, int, int]:
    signs = [direction(x, e) for x, e in zip(d, s)]
    return signs.count(1), signs.count(-1), signs.count(0)


def answers(table: pd.DataFrame) -> dict[str, str]:
    """The page's answers, one sentence each, from the numbers by the book's noise rule (an effect
    counts beyond ``stats.NOISE_MULTIPLE`` spreads; unpaired spreads, so conservative)."""
    out = {}
    vgg = _cells(table, group="Table 1", encoder="vgg16", weights="imagenet", test_set="photos")
    if len(vgg):
        gap_sgd, gap_conv = (vgg.sgd - vgg.paper), (vgg.conv - vgg.paper)
        closer = int(((gap_conv.abs() < gap_sgd.abs())).sum())
        both = (vgg.spread ** 2 + vgg.sgd_sd.fillna(0) ** 2) ** 0.5  # the SGD cell's seed sd as well
        up, down, _ = _tally(vgg.conv - vgg.sgd, both)
        out["gap"] = (f"On the test photos, VGG16 (ImageNet) sits {gap_sgd.mean():+.3f} from the paper's SPC by SGD "
                      f"and {gap_conv.mean():+.3f} at convergence (mean over {len(vgg)} patterns); the converged "
                      f"read-out is closer to the paper for {closer} of {len(vgg)} patterns, and above the SGD value "
                      f"beyond the noise for {up} (below for {down}). Converged minus SGD: "
                      f"{_effects(vgg.conv - vgg.sgd, both)}.")
        out["overfit"] = (f"Training minus test SPC of the same VGG16 read-outs: "
                          f"{_effects(vgg.train - vgg.conv, vgg.spread)}.")
    f4 = _cells(table, group="Table 3", taps="f4", test_set="photos")
    f5 = _cells(table, group="Table 3", taps="f5", test_set="photos")
    if len(f4) and len(f5):
        d, s = f5.conv - f4.conv, (f5.spread ** 2 + f4.spread ** 2) ** 0.5
        ahead, behind, tie = _tally(d, s)
        out["levels"] = (f"f5 minus f4 at convergence: {_effects(d, s)}: f5 ahead beyond the noise for {ahead} "
                         f"patterns, behind for {behind}, within it for {tie}.")
        singles = [_cells(table, group="Table 3", taps=f"f{i}", test_set="photos") for i in range(1, 6)]
        if len(vgg):
            levels = pd.DataFrame({f"f{i}": c.conv for i, c in enumerate(singles, 1)})
            best, arg = levels.max(axis=1), levels.idxmax(axis=1)
            d2 = (vgg.conv - best).dropna()
            ahead, behind, tie = _tally(d2, vgg.spread.loc[d2.index] * 2 ** 0.5)
            out["levels_all"] = (f"All levels minus the best single level ({', '.join(f'{p}: {arg[p]}' for p in d2.index)}): "
                                 f"{_effects(d2, vgg.spread.loc[d2.index] * 2 ** 0.5)}: ahead for {ahead}, behind "
                                 f"for {behind}, within the noise for {tie}.")
    nopad = _cells(table, group="Table 4", encoder="vgg16_nopad", test_set="photos")
    if len(nopad) and len(vgg):
        d, s = (nopad.conv - vgg.conv).dropna(), (nopad.spread ** 2 + vgg.spread ** 2) ** 0.5
        _, behind, _ = _tally(d, s.loc[d.index])
        out["nopad"] = (f"VGG16 without padding minus with, on photos at convergence: {_effects(d, s.loc[d.index])} "
                        f"(by SGD: {_values(nopad.sgd - vgg.sgd)}); a loss beyond the noise "
                        f"for {behind} of {len(d)} patterns.")
    pads = {p: _cells(table, encoder="none", kernel=3, padding=p, test_set="photos") for p in (0, 1, 2)}
    if all(len(c) for c in pads.values()):
        d, s = pads[2].conv - pads[0].conv, (pads[2].spread ** 2 + pads[0].spread ** 2) ** 0.5
        gain, _, _ = _tally(d, s)
        out["posenet_padding"] = (f"PosENet alone with read-out padding 2 minus none, on photos at convergence: "
                                  f"{_effects(d, s)}: a gain beyond the noise for {gain} of {len(d)} patterns.")
    rnd = _cells(table, group="Table 1", encoder="vgg16", weights="random", test_set="photos")
    if len(rnd) and len(vgg):
        d, s = rnd.conv - vgg.conv, (rnd.spread ** 2 + vgg.spread ** 2) ** 0.5
        ahead, behind, tie = _tally(d, s)
        out["random"] = (f"Random (torchvision init, one encoder) minus ImageNet VGG16 on photos at convergence: "
                         f"{_effects(d, s)} (by SGD: {_values(rnd.sgd - vgg.sgd)}): random ahead for {ahead} "
                         f"patterns, behind for {behind}, within the noise for {tie}.")
    return out



def figure(table: pd.DataFrame):
    """Converged SPC against SGD SPC, one point per cell that has both, coloured by test set."""
    import matplotlib.pyplot as plt

    t = table[table.converged & table.spc_sgd.notna()]
    fig, ax = plt.subplots(figsize=(5.0, 4.4))
    for name, part in t.groupby("test_set", sort=False):
        ax.errorbar(part.spc_sgd, part.spc_mean, yerr=NOISE_MULTIPLE * spread(part), fmt="o", ms=3.5, alpha=0.75, label=name,
                    elinewidth=0.8)
    lo = min(-0.1, float(t[["spc_sgd", "spc_mean"]].min().min()) - 0.05) if len(t) else -0.1
    ax.plot([lo, 1], [lo, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("SPC, SGD read-out (cpu budget)")
    ax.set_ylabel("SPC, converged read-out")
    if len(t):  # no cell has an SGD value (the SGD pages not run): an empty plot, no legend
        ax.legend(title="test set", fontsize=8)
    fig.tight_layout()
    return fig
