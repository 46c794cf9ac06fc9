"""The claims scorecard: each claim of the paper, its evidence, ours, and a verdict by a stated rule.

The rules are written here, before any number is read, are the same for every profile, and are
shown in the scorecard beside each verdict. For a claim about an effect (a difference between two
settings, per pattern or test set):
- the effect *counts* only where it exceeds twice its spread: the seed sd and the standard error over
  test images (sd / sqrt(n), what a bootstrap of the mean estimates) in quadrature. Where both
  settings were scored on the same test images (a per-image results file), the spread is the
  paired one: of the per-image differences, seed by seed (``stats.paired``); otherwise the two
  cells' spreads are combined (unpaired, so conservative);
- "reproduced": it counts, in the paper's direction and at least half the paper's size, in every
  cell tested; "partly": it counts in the paper's direction in some cell; "not reproduced": in none;
- "not tested": the results needed are missing (for example, weights not available offline).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats

from .results import table_profile
from .stats import NOISE_MULTIPLE, direction, image_scores, paired  # noqa: F401  (direction: re-exported)

REPRODUCED, PARTLY, NOT, UNTESTED = "reproduced", "partly", "not reproduced", "not tested"
EFFECT_RULE = (f"effect counts if > {NOISE_MULTIPLE}x its spread (seed sd and test-image SE); reproduced: counts, in the paper's "
               "direction and >= half its size, in every cell; partly: counts in some cell (marked 'chance level' "
               "when no cell survives Holm's control of the family)")


@dataclass(frozen=True)
class Claim:
    key: str
    section: str
    claim: str
    paper: str  # the paper's evidence
    rule: str  # how the verdict is decided, shown in the scorecard
    assess: Callable[[dict[str, pd.DataFrame]], tuple[str, str]]  # results -> (ours, verdict)
    why: str  # what is known about a difference (measured on the departures page, or a fact)


def _select(t: pd.DataFrame, **where) -> pd.DataFrame:
    mask = pd.Series(True, index=t.index)
    for k, v in where.items():
        mask &= t[k] == v
    return t.loc[mask]


class _Shared:
    """A per-image table riding on a results table's ``attrs`` (never copied with it)."""

    def __init__(self, table: pd.DataFrame):
        self.table, self._groups = table, {}

    def __deepcopy__(self, memo):
        return self

    def scores(self, keys: tuple[str, ...], values: tuple) -> pd.Series | None:
        if keys not in self._groups:
            norm = self.table[list(keys)].apply(lambda col: col.map(_norm))
            self._groups[keys] = {tuple(_norm(v) for v in (k if isinstance(k, tuple) else (k,))): idx
                                  for k, idx in self.table.groupby([norm[c] for c in keys], dropna=False).groups.items()}
        idx = self._groups[keys].get(tuple(_norm(v) for v in values))
        return None if idx is None else image_scores(self.table.loc[idx])


def _norm(v):
    """A settings value comparable across tables (1 == 1.0, NaN/None alike)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v.item() if hasattr(v, "item") else v


IMAGE_KEYS = ("encoder", "weights", "init", "batchnorm", "padding_mode", "pattern", "layers", "kernel", "padding", "taps",
              "test_set")


def with_per_image(table: pd.DataFrame, per_image: pd.DataFrame) -> pd.DataFrame:
    """``table`` carrying its per-image scores, so that comparisons of its cells are paired."""
    table.attrs["per_image"] = _Shared(per_image)
    return table


def _images(part: pd.DataFrame) -> list:
    """Each row's per-image scores (None where the table has no per-image file)."""
    shared = part.attrs.get("per_image")
    if shared is None:
        return [None] * len(part)
    keys = tuple(c for c in IMAGE_KEYS if c in part.columns and c in shared.table.columns)
    return [shared.scores(keys, tuple(getattr(r, c) for c in keys)) for r in part.itertuples(index=False)]


def _spread(t: pd.DataFrame) -> pd.Series:
    """Seed sd combined with the standard error over test images, where the table records it."""
    seed = t.spc_sd.fillna(0.0)
    image = t.spc_se_images.fillna(0.0) if "spc_se_images" in t else 0.0
    return (seed ** 2 + image ** 2) ** 0.5


def _cells(t: pd.DataFrame, index=("pattern",), **where) -> pd.DataFrame:
    """Rows matching ``where``, indexed by ``index``: ours, spread, paper."""
    part = _select(t, **where)
    paper = part.paper_spc if "paper_spc" in part else pd.Series(float("nan"), index=part.index)
    return pd.DataFrame({"ours": part.spc_mean.values, "spread": _spread(part).values, "paper": paper.values,
                         "images": _images(part)},
                        index=pd.MultiIndex.from_frame(part[list(index)]) if len(index) > 1 else part[index[0]].values)


def _pretrained(t: pd.DataFrame, encoder: str) -> pd.DataFrame:
    return t[(t.encoder == encoder) & (t.weights != "random")]


def compare(low: pd.DataFrame, high: pd.DataFrame) -> pd.DataFrame:
    """The effect high - low per cell: ours, its spread, and the paper's (from its values)."""
    common = low.index.intersection(high.index)
    if not len(common):
        raise KeyError("no cells in common")
    low, high = low.loc[common], high.loc[common]
    spread = (low.spread ** 2 + high.spread ** 2) ** 0.5
    if "images" in low and "images" in high:  # paired where both cells have per-image scores
        spread = pd.Series([_paired_spread(lo, hi, unpaired) for lo, hi, unpaired in
                            zip(low.images, high.images, spread)], index=common)
    return pd.DataFrame({"ours": high.ours - low.ours, "spread": spread, "paper": high.paper - low.paper})


def _paired_spread(low: pd.Series | None, high: pd.Series | None, unpaired: float) -> float:
    if low is None or high is None:
        return unpaired
    try:
        return paired(high - low).spread
    except KeyError:  # no images in common (different test sets)
        return unpaired


def effect_verdict(d: pd.DataFrame) -> str:
    """The rule of ``EFFECT_RULE`` on a table of effects (ours, spread, paper) per cell."""
    sign = d.paper.map(lambda v: -1.0 if v < 0 else 1.0)  # the paper's direction (up where it gives none)
    counts = sign * d.ours > NOISE_MULTIPLE * d.spread
    big = (sign * d.ours >= 0.5 * d.paper.abs()) | d.paper.isna()
    if len(d) and (counts & big).all():
        return REPRODUCED
    return PARTLY if counts.any() else NOT


def _label(i) -> str:
    return "/".join(map(str, i)) if isinstance(i, tuple) else str(i)


def describe(d: pd.DataFrame) -> str:
    """'H +0.123 ± 0.010 (paper +0.088)' per cell."""
    return "; ".join(f"{_label(i)} {r.ours:+.3f} ± {r.spread:.3f}" + ("" if math.isnan(r.paper) else f" (paper {r.paper:+.3f})")
                     for i, r in d.iterrows())


def _effect(d: pd.DataFrame, what: str) -> tuple[str, str, pd.DataFrame]:
    return f"{what}: {describe(d)}", effect_verdict(d), d


def _existence(r):
    t = r["table1"]
    idx = ("pattern", "test_set")
    vgg = _cells(_pretrained(t, "vgg16"), idx)
    none = _cells(t[t.encoder == "none"], idx)
    d = compare(none, vgg)
    d = d[d.index.get_level_values("pattern").isin(["H", "V", "G"])]
    return _effect(d, "VGG16 minus PosENet alone, SPC (pattern/test set)")


def _posenet_zero(r):
    t = r["table1"]
    none = t[t.encoder == "none"]
    worst = {s: float(_select(none, test_set=s).spc_mean.abs().max()) for s in none.test_set.unique()}
    synthetic = [v for s, v in worst.items() if s != "photos"]
    ours = "PosENet max |SPC|: " + ", ".join(f"{s} {v:.3f}" for s, v in worst.items())
    if all(v <= 0.15 for v in worst.values()):
        return ours, REPRODUCED
    return ours, PARTLY if synthetic and all(v <= 0.15 for v in synthetic) else NOT


def _mean_cell(c: pd.DataFrame) -> pd.DataFrame:
    """The mean of several cells, its spread (independent errors) and the paper's mean."""
    if c.empty:
        raise KeyError("no cells to average")
    images = None
    if "images" in c and all(x is not None for x in c.images):  # per image, the mean over the cells
        images = pd.concat(list(c.images), axis=1).mean(axis=1, skipna=False)
    return pd.DataFrame({"ours": [c.ours.mean()], "spread": [(c.spread ** 2).sum() ** 0.5 / len(c)],
                         "paper": [c.paper.mean()], "images": [images]}, index=["mean"])


def _stripes(r):
    c = _cells(_select(_pretrained(r["table1"], "vgg16"), test_set="photos"))
    smooth, stripes = c[c.index.isin(["H", "V", "G"])], c[c.index.isin(["HS", "VS"])]
    d = compare(_mean_cell(smooth), _mean_cell(stripes)).rename(index={"mean": "HS,VS - H,V,G"})
    return _effect(d, "VGG16 mean SPC on photos, stripes minus smooth patterns")


def _resnet(r):
    t = _select(r["table1"], test_set="photos")
    if _pretrained(t, "resnet152").empty:
        return "ResNet-152 ImageNet weights not available offline", UNTESTED
    return _effect(compare(_cells(_pretrained(t, "vgg16")), _cells(_pretrained(t, "resnet152"))),
                   "ResNet-152 minus VGG16, SPC on photos")


PROXIES = ("mobilenet_v2", "efficientnet_lite0")  # residual ImageNet CNNs to be had offline


def _resnet_proxy(r):
    """ResNet-152's claim asked of the residual ImageNet networks available offline, against the
    paper's ResNet-152 minus VGG16 effect (a proxy: other architectures, not ResNet)."""
    from .paper import TABLE1, TEST_SETS

    t = _select(r["table1"], test_set="photos")
    vgg = _cells(_pretrained(t, "vgg16"))
    parts = []
    for enc in PROXIES:
        if _pretrained(t, enc).empty:
            continue
        d = compare(vgg, _cells(_pretrained(t, enc)))
        i = TEST_SETS.index("photos")
        d["paper"] = [TABLE1["resnet152"][p][i][0] - TABLE1["vgg16"][p][i][0] if p in TABLE1["resnet152"] else float("nan")
                      for p in d.index]
        parts.append(d.rename(index=lambda p, e=enc: f"{e} {p}"))
    if not parts:
        raise KeyError("no residual ImageNet network in table1")
    return _effect(pd.concat(parts), "proxy minus VGG16, SPC on photos (paper: ResNet-152 minus VGG16)")


def _gains(t: pd.DataFrame, key: str, lo, hi) -> pd.DataFrame:
    return compare(_cells(_select(t, **{key: lo})), _cells(_select(t, **{key: hi})))


def _layers(r):
    t = r["table2"]
    t = t[(t.encoder == "vgg16") & (t.kernel == 3)]
    return _effect(_gains(t, "layers", t.layers.min(), t.layers.max()),
                   f"VGG16 SPC, {t.layers.max()} minus {t.layers.min()} layers")


def _kernels(r):
    t = r["table2"]
    t = t[(t.encoder == "vgg16") & (t.layers == 1)]
    return _effect(_gains(t, "kernel", t.kernel.min(), t.kernel.max()),
                   f"VGG16 SPC, kernel {t.kernel.max()} minus {t.kernel.min()}")


def _levels(r):
    t = r["table3"]
    singles = sorted(v for v in t.taps.unique() if v != "all")
    d = _gains(t, "taps", singles[0], singles[-1])
    verdict = effect_verdict(d)
    every = _cells(_select(t, taps="all"))
    best = {p: max((_cells(_select(t, taps=s)).loc[p] for s in singles), key=lambda c: c.ours) for p in every.index}
    # "all levels the most": the all-level read-out is not below the best single level beyond noise
    all_best = [direction(every.loc[p].ours - best[p].ours, math.hypot(every.loc[p].spread, best[p].spread)) >= 0
                for p in every.index]
    if verdict == REPRODUCED and not all(all_best):
        verdict = PARTLY
    return (f"SPC {singles[-1]} minus {singles[0]}: {describe(d)}; all levels not below the best single level "
            f"(within 2 spreads) for {sum(all_best)} of {len(all_best)}"), verdict, d


def _nopad(r):
    t = _select(r["table4"], test_set="photos")
    return _effect(compare(_cells(_select(t, encoder="vgg16")), _cells(_select(t, encoder="vgg16_nopad"))),
                   "SPC without minus with padding, photos")


def _posenet_padding(r):
    t = _select(r["table4"], encoder="none", test_set="photos")
    return _effect(_gains(t, "padding", t.padding.min(), t.padding.max()),
                   f"PosENet SPC, padding {t.padding.max()} minus {t.padding.min()}")


def _table5(r):
    t = r["table5"].set_index(["task", "padding"])
    rows = []
    for task, score, paper in (("saliency", "fmeasure", "paper_fmeasure_ecssd"), ("segmentation", "miou", "paper_miou")):
        pad, nopad = t.loc[(task, "zero padding")], t.loc[(task, "no padding")]
        rows.append(pd.Series({"ours": pad[f"{score}_mean"] - nopad[f"{score}_mean"],
                               "spread": math.hypot(pad[f"{score}_sd"], nopad[f"{score}_sd"]),
                               "paper": pad[paper] - nopad[paper]}, name=f"{task} {score}"))
    return _effect(pd.DataFrame(rows), "score with minus without padding")


def _table6(r):
    t = _select(r["table6"], test_set="photos")
    base = _cells(_select(t, encoder="vgg16", weights="imagenet"))
    parts = [compare(base, _cells(_select(t, encoder=e))).rename(index=lambda p, e=e: f"{e} {p}")
             for e in ("vgg_sod", "vgg_ss")]
    d = pd.concat(parts)
    ours, verdict, _ = _effect(d, "task network minus ImageNet VGG16, SPC on photos")
    control = _select(t, encoder="vgg_task_random")
    if len(control):  # the same architecture untrained: does the *task* add the information?
        c = _cells(control)
        above = [compare(c, _cells(_select(t, encoder=e))) for e in ("vgg_sod", "vgg_ss")]
        n = sum(direction(x, s) == 1 for a in above for x, s in zip(a.ours, a.spread))
        ours += f"; above the untrained same-width network beyond 2 spreads in {n} of {sum(len(a) for a in above)}"
    return ours, verdict, d


def _task_vs_untrained(r):
    """Table 6 against the right control: each task network minus the same architecture untrained
    (same width), per pattern on photos; the paper gives no such number."""
    t = _select(r["table6"], test_set="photos")
    control = _select(t, encoder="vgg_task_random")
    if control.empty:
        return "the untrained same-width network not run", UNTESTED
    base = _cells(control)
    d = pd.concat([compare(base, _cells(_select(t, encoder=e))).rename(index=lambda p, e=e: f"{e} {p}")
                   for e in ("vgg_sod", "vgg_ss")])
    signs = _signs(d)
    finding = ("training for the task adds position in every cell" if all(x == 1 for x in signs) else
               f"training for the task adds position in {signs.count(1)} of {len(signs)} cells")
    return f"task network minus the untrained same-width network, SPC on photos: {describe(d)}", \
        f"new finding: {finding}", d


def _dense_pretrained(r):
    t = _select(r["table6"], test_set="photos")
    base = _cells(_select(t, encoder="vgg16", weights="imagenet"))
    parts = [compare(base, _cells(_select(t, weights=w))).rename(index=lambda p, w=w: f"{w} {p}")
             for w in ("hed", "craft") if len(_select(t, weights=w))]
    if not parts:
        return "HED / CRAFT not run", UNTESTED
    return f"dense-task network minus ImageNet VGG16, SPC on photos: {describe(pd.concat(parts))}", "new finding"


def _content(r):
    """Eq. 4's loss inside objects minus on the background of composites with exact masks, per
    pretrained encoder (paired over composites); the paper gives no size, only the direction."""
    if "case_study_regions" not in r:
        c = r["case_study"]
        return ("content-loss maps for " + ", ".join(c.encoder) + " (see the case-study figure)", "assessed by eye")
    t = r["case_study_regions"]
    # at the same places: objects sit nearer the centre, where a read-out errs less
    same = "objects - background, same places"
    t = t[(t["comparison"] == (same if (t["comparison"] == same).any() else "objects - background")) & (t.encoder != "none")]
    d = pd.DataFrame({"ours": t.difference.values, "spread": t.se_images.values, "paper": float("nan")},
                     index=t.encoder.values)
    if d.empty:
        raise KeyError("no pretrained encoder in the case study's region table")
    return _effect(d, "content loss inside objects minus on background at the same places, composites")


def _random_control(r):
    """Random minus ImageNet VGG16 per init scheme, on photos and on the content-free inputs (the random
    controls page: spread over encoder and read-out seeds); Table 1's single draw where that page was not run."""
    if "random_controls" not in r:
        t = _select(r["table1"], encoder="vgg16", test_set="photos")
        rand = _cells(_select(t, weights="random"))
        if rand.empty:
            return "random-weight VGG16 not run", UNTESTED
        d = compare(_cells(_pretrained(t, "vgg16")), rand)
        return f"random minus ImageNet VGG16, SPC on photos (one draw): {describe(d[d.index.isin(['H', 'V', 'G'])])}", "new finding"
    t = r["random_controls"]
    t = t.assign(test=t.test_set.where(t.test_set == "photos", "content-free"))
    cells = (t[t.encoder == "vgg16"].groupby(["weights", "init", "test"], sort=False)
             .agg(ours=("spc_mean", "mean"), spread=("spc_sd", "mean")).assign(paper=float("nan")))
    if "random" not in cells.index.get_level_values("weights"):
        return "random-weight VGG16 not run", UNTESTED
    ref = cells.loc["imagenet"].droplevel("init")
    d = pd.concat([compare(ref, g.droplevel(["weights", "init"])).rename(index=lambda s, i=init: f"{i} init, {s}")
                   for init, g in cells.loc[["random"]].groupby("init", sort=False)])
    signs = _signs(d)
    if all(x == 1 for x in signs):
        finding = "random VGG16 ahead under every init and input"
    elif all(x == -1 for x in signs):
        finding = "ImageNet VGG16 ahead under every init and input"
    else:
        finding = "depends on the init or the input"
    return f"random minus ImageNet VGG16, SPC (mean over patterns): {describe(d)}", f"new finding: {finding}", d


def _mode_cells(t: pd.DataFrame, weights: str, mode: str, content_free: bool) -> pd.DataFrame:
    """SPC of VGG16 read-outs with one padding mode, per pattern, on photos or on black/white/noise."""
    part = t[(t.experiment == "encoder") & (t.weights == weights) & (t.padding_mode == mode)]
    part = part[(part.test_set != "photos") if content_free else (part.test_set == "photos")]
    g = part.groupby("pattern", sort=False)
    return pd.DataFrame({"ours": g.spc_mean.mean(), "spread": g.spc_sd.apply(lambda s: (s ** 2).mean() ** 0.5),
                         "paper": float("nan")})


def _signs(d: pd.DataFrame) -> list[int]:
    return [direction(x, s) for x, s in zip(d.ours, d.spread)]


def _zeros_main_source(r):
    """Zero padding ahead of a mode only where it is ahead on every pattern for every set of weights
    run; a mode it beats for one set of weights only is named with those weights."""
    t = r["padding_modes"]
    modes = ("reflect", "replicate", "circular", "partial")
    weights_run = list(t[t.experiment == "encoder"].weights.unique())
    parts, ahead = [], {m: [] for m in modes}  # mode -> the weights for which zeros is ahead on every pattern
    for weights in weights_run:
        ref = _mode_cells(t, weights, "zeros", True)
        for mode in modes:
            d = compare(_mode_cells(t, weights, mode, True), ref).rename(index=lambda p, m=mode, w=weights: f"{w} {m} {p}")
            parts.append(d)
            if all(x == 1 for x in _signs(d)):
                ahead[mode].append(weights)
    d = pd.concat(parts)
    every = [m for m in modes if len(ahead[m]) == len(weights_run)]
    some = [f"{m} ({', '.join(ahead[m])} weights only)" for m in modes if 0 < len(ahead[m]) < len(weights_run)]
    rest = [m for m in modes if not ahead[m]]
    if len(every) == len(modes):
        finding = "zero padding ahead of every other mode on every pattern, for every set of weights"
    else:
        finding = f"zero padding ahead of {', '.join(every) or 'no other mode'} on every pattern for every set of weights"
        finding += (f"; of {', '.join(some)}" if some else "") + (f"; not of {', '.join(rest)}" if rest else "")
    return f"zeros minus other mode, SPC on black/white/noise: {describe(d)}", f"new finding: {finding}", d


def _circular_removes(r):
    t = r["padding_modes"]
    parts = []
    for weights in t[t.experiment == "encoder"].weights.unique():
        parts.append(_mode_cells(t, weights, "circular", True).rename(index=lambda p, w=weights: f"{w} {p}"))
    d = pd.concat(parts)
    zero = all(x == 0 for x in _signs(d))
    largest = d.ours.abs().max()  # the size goes with the verdict: beyond the noise is not the same as large
    return (f"circular padding, SPC on black/white/noise: {describe(d)}",
            "new finding: " + (f"no position read out on content-free inputs (all within {NOISE_MULTIPLE} spreads of 0)" if zero
                               else f"some position remains on content-free inputs (largest |SPC| {largest:.3f})"))


def _full_removes(r):
    t = r["padding_tasks"].set_index("padding_mode")
    rows = []
    for mode in ("zeros", "full"):
        if mode in t.index:
            x = t.loc[mode]
            rows.append(pd.Series({"ours": x.shift_mean, "spread": x.shift_sd / max(1.0, x.n_crops) ** 0.5,
                                   "paper": float("nan")}, name=mode))
    d = pd.DataFrame(rows)
    if "full" not in d.index:
        return "full convolution not run", UNTESTED
    moves = _signs(d.loc[["full"]])[0] != 0
    ours = f"saliency centre shift towards a crop's centre, px (spread: standard error over crops x seeds): {describe(d)}"
    finding = "full convolution (cropped to the same-padding size) " + ("still moves" if moves else "does not move")
    finding += " the salient region with the borders"
    if "kayhan_toy" in r:  # the authors' own toy, run with their full convolution and with our cropped one
        toy = r["kayhan_toy"].set_index(["padding_mode", "test_set"])
        acc = {m: toy.loc[(m, "dissimilar")] for m in ("zeros", "full", "full_cropped") if (m, "dissimilar") in toy.index}
        ours += "; Kayhan & van Gemert's toy, dissimilar-set accuracy: " + ", ".join(
            f"{m} {a.accuracy_mean:.3f} ± {0.0 if math.isnan(a.accuracy_sd) else a.accuracy_sd:.3f}" for m, a in acc.items())
    return ours, "new finding: " + finding


MEASURED = "measured effects of budget, data size, crops, input and width: the departures page"
CLAIMS: tuple[Claim, ...] = (
    Claim("existence", "3.3", "Pretrained VGG16 features encode absolute position (high SPC on photos and on "
          "black, white and noise images).", "VGG SPC .742 / .816 / .814 (H / V / G, PASCAL-S); synthetic .591-.927; "
          "PosENet alone about 0", f"effect: VGG16 minus PosENet alone per pattern (H, V, G) and test set; {EFFECT_RULE}",
          _existence, MEASURED),
    Claim("posenet_zero", "3.3", "PosENet alone (no encoder) extracts almost no position.",
          "SPC .012 / .131 / -.001 / -.001 / .006 (H, V, G, HS, VS)",
          "reproduced: |SPC| <= 0.15 (the paper's largest is .131) in every cell; partly: on black, white and noise "
          "only; else not reproduced", _posenet_zero,
          "photos carry position in their content (sky above, ground below), which a read-out of the bare image can use"),
    Claim("stripes", "3.3", "Stripe patterns (HS, VS) are harder to read out than H, V, G.",
          "VGG SPC .405 / .374 vs .742-.816", f"effect: mean SPC of HS, VS minus mean of H, V, G on photos; {EFFECT_RULE}",
          _stripes, MEASURED),
    Claim("resnet", "3.3", "ResNet-152 encodes more position than VGG16.", "ResNet SPC .933-.951 vs VGG .742-.816",
          f"effect: ResNet-152 minus VGG16 per pattern on photos; {EFFECT_RULE}",
          _resnet, "no ImageNet ResNet can be had offline; supply torchvision's file to test it"),
    Claim("resnet_proxy", "3.3", "ResNet-152's claim by proxy: residual ImageNet CNNs to be had offline (MobileNetV2, "
          "EfficientNet-Lite0) encode more position than VGG16.", "ResNet SPC .933-.951 vs VGG .742-.816",
          f"PROXY, not the paper's network: effect = proxy minus VGG16 per pattern on photos, against the paper's "
          f"ResNet-152 minus VGG16; {EFFECT_RULE}",
          _resnet_proxy, "other architectures than ResNet-152 (depth, width, depthwise convolutions, TF 'SAME' padding)"),
    Claim("layers", "3.4", "More stacked read-out layers read out more position.", "VGG H .742 -> .830 (1 -> 3 layers)",
          f"effect: SPC of the deepest minus the one-layer read-out per pattern; {EFFECT_RULE}",
          _layers, "our stacked read-outs are narrower than the paper's (hidden width: the departures page measures it)"),
    Claim("kernels", "3.4", "Larger read-out kernels read out more position.", "VGG H .542 -> .828 (1x1 -> 7x7)",
          f"effect: SPC of the largest minus the smallest kernel per pattern; {EFFECT_RULE}", _kernels, MEASURED),
    Claim("levels", "3.5", "Deeper VGG16 levels hold more position; all levels together the most.",
          "H .101 (f1) -> .657 (f5), .742 (all)",
          f"effect: SPC of f5 minus f1 per pattern; {EFFECT_RULE}; and reproduced needs the all-level read-out not "
          "below the best single level beyond 2 spreads", _levels, MEASURED),
    Claim("nopad", "4", "VGG16 without zero padding loses most of its position information.",
          "H .742 -> .381, G .814 -> .359, HS .405 -> .011",
          f"effect: SPC without minus with padding per pattern on photos (the paper's: a drop); {EFFECT_RULE}", _nopad,
          "the padding-free network also sees a smaller central field"),
    Claim("posenet_padding", "4", "Zero padding gives PosENet position information.",
          "H .012 -> .274 -> .397 (padding 0, 1, 2)",
          f"effect: PosENet SPC with the most minus with no read-out padding per pattern; {EFFECT_RULE}",
          _posenet_padding, MEASURED),
    Claim("content", "4.1", "Content-loss maps (Eq. 4) show where image semantics disturb the read-out: most on "
          "objects (faces, people, animals).", "Fig. 7 (qualitative)",
          f"effect: loss inside objects minus on background at the same places (each pixel's loss minus its mean over "
          f"composites) per pretrained encoder, over composites with exact masks "
          f"(spread: the composites' paired standard error); the paper gives a direction, no size; {EFFECT_RULE}",
          _content, "the composites are cut-outs pasted on photos, not PASCAL-S's scenes"),
    Claim("table5", "4.2", "VGG trained from scratch without zero padding is much worse at saliency detection "
          "and semantic segmentation.", "F-measure .78 -> .36 (ECSSD); mIoU 23.1% -> 12.3%",
          f"effect: score with minus without padding (F-measure, mIoU); spread: seed sd; {EFFECT_RULE}", _table5,
          "our networks are 1/8 wide, trained briefly on a few hundred composites and scored on held-out "
          "composites, not on ECSSD / VOC; absolute scores are not comparable"),
    Claim("table6", "4.2", "Networks trained for segmentation or saliency encode more position than ImageNet VGG16.",
          "H SPC .742 (VGG) vs .969 (VGG-SOD), .982 (VGG-SS)",
          f"effect: task network minus ImageNet VGG16 per pattern on photos; {EFFECT_RULE}", _table6,
          "our VGG-SOD / VGG-SS are 1/8-width networks trained on composites; the same-width untrained network "
          "is the control (Section 4.2 page)"),
    Claim("table6_control", "4.2", "(Our control for Table 6.) Does training for a dense task add position "
          "to the same architecture untrained?", "no number in the paper (its networks are compared with ImageNet VGG16)",
          "no verdict: counts where the task network minus the untrained same-width network (1/8 of VGG16's width) "
          "exceeds 2x its spread, per pattern on photos; the ImageNet row above mixes in width",
          _task_vs_untrained, ""),
    Claim("table6_dense", "beyond", "(Not a claim of the paper.) Do real networks trained for dense tasks (HED: edges, "
          "CRAFT: text) encode more position than ImageNet VGG16?", "not tested in the paper",
          "no verdict: a question of ours, answered by the numbers", _dense_pretrained, ""),
    Claim("random_control", "beyond", "(Not a claim of the paper.) Do random-weight networks encode position too?",
          "not tested in the paper", "no verdict: a question of ours; per init scheme, random minus ImageNet VGG16 counts "
          "only beyond 2x its spread (sd over encoder and read-out seeds); the finding names the direction when every "
          "init and input agrees", _random_control, ""),
    Claim("padding_zeros_main", "beyond", "(Not a claim of the paper.) Is zero padding the main source of position "
          "among padding modes (Islam et al., IJCV)?", "not tested in the paper",
          "no verdict: a question of ours; zeros minus each other mode (reflect, replicate, circular, partial "
          "convolution) per pattern on black/white/noise counts beyond 2x its spread (read-out seed sd)",
          _zeros_main_source, ""),
    Claim("padding_circular", "beyond", "(Not a claim of the paper.) Does circular padding remove absolute position?",
          "not tested in the paper", "no verdict: a question of ours; removed where VGG16's read-outs with circular "
          "padding give SPC within 2 spreads of 0 on every pattern of black/white/noise", _circular_removes, ""),
    Claim("padding_full_conv", "beyond", "(Not a claim of the paper.) Does full convolution (Kayhan & van Gemert) "
          "remove it?", "not tested in the paper", "no verdict: a question of ours; removed where a saliency network "
          "with full convolution does not move its salient region towards a crop's centre beyond 2 standard errors",
          _full_removes, ""),
)

# Claims about a one-layer read-out's SPC get a second verdict from the converged read-outs
# (``converged.csv``), by the same rules; the rest have no converged version.
CONVERGED_CLAIMS = ("existence", "posenet_zero", "stripes", "kernels", "levels", "nopad", "posenet_padding",
                    "random_control", "padding_zeros_main", "padding_circular")
NO_CONVERGED = "no converged version"
CONVERGED_GROUPS = {"table1": "Table 1", "table2": ("Table 1", "Table 2"), "table3": ("Table 1", "Table 3"),
                    "table4": ("Table 1", "Table 4")}


def converged_view(conv: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The converged read-outs laid out as the section tables the claims read (one-layer read-outs;
    the spread: fold fits' sd in place of the seed sd, and the test images' standard error). Cells
    whose fit missed its tolerance are left out, so a claim that needs them is not tested."""
    t = conv[conv.converged].assign(layers=1, spc_sd=lambda d: (d.spc_sd.fillna(0.0) ** 2 + d.spc_sd_folds ** 2) ** 0.5)
    std = (t.kernel == 3) & (t.padding == 0) & (t.taps == "all")
    # the cells the SGD tables hold: Tables 2 and 3 on photos, Tables 2-4 for H, G, HS (the paper's patterns)
    photos, paper_patterns = t.test_set == "photos", t.pattern.isin(["H", "G", "HS"])
    views = {"table1": t[(t.group == "Table 1") & std],
             "table2": t[t.group.isin(["Table 1", "Table 2"]) & (t.padding == 0) & (t.taps == "all")
                         & t.encoder.isin(["vgg16", "none"]) & (t.weights != "random") & photos & paper_patterns],
             "table3": t[((t.group == "Table 3") | ((t.group == "Table 1") & std)) & (t.encoder == "vgg16")
                         & (t.weights == "imagenet") & photos],
             "table4": t[((t.group == "Table 4") | ((t.group == "Table 1") & std))
                         & t.encoder.isin(["none", "vgg16", "vgg16_nopad"]) & (t.weights != "random") & paper_patterns]}
    return {k: v.reset_index(drop=True) for k, v in views.items() if len(v)}


FILES = {"table1": "table1.csv", "table2": "table2.csv", "table3": "table3.csv", "table4": "table4.csv",
         "case_study": "case_study.csv", "table5": "table5.csv", "table6": "table6.csv",
         "random_controls": "random_controls.csv", "padding_modes": "padding_modes.csv",
         "padding_tasks": "padding_tasks.csv", "kayhan_toy": "kayhan_toy.csv",
         "case_study_regions": "case_study_regions.csv"}


def load_results(results_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The section tables the claims read, each carrying its per-image scores where a per-image file
    exists (so that comparisons are paired); all from one profile."""
    paths = {k: Path(results_dir) / f for k, f in FILES.items() if (Path(results_dir) / f).exists()}
    profiles = {k: table_profile(p) for k, p in paths.items()}
    if len(set(profiles.values())) > 1:
        listing = ", ".join(f"{FILES[k]} ({p or 'no profile recorded'})" for k, p in profiles.items())
        raise ValueError(f"the results in {results_dir} come from different profiles: {listing}; re-run the "
                         "sections with one profile (each profile writes to its own folder)")
    results = {k: pd.read_csv(p) for k, p in paths.items()}
    for k, t in results.items():
        per_image = Path(results_dir) / "per_image" / FILES[k]
        if per_image.exists():
            with_per_image(t, pd.read_csv(per_image))
    return results


def claim_effects(results_dir: str | Path) -> pd.DataFrame:
    """Every effect a verdict weighed, one row per claim and cell: ours, its spread (paired where
    per-image scores exist), the paper's, and whether it counts by the noise rule."""
    results = load_results(results_dir)
    rows = []
    for c in CLAIMS:
        _, _, cells = _assess(c, results)
        if cells is None:
            continue
        for i, r in cells.iterrows():
            rows.append({"key": c.key, "section": c.section, "claim": c.claim, "cell": _label(i), "ours": r.ours,
                         "spread": r.spread, "paper": r.paper, "counts": abs(r.ours) > NOISE_MULTIPLE * r.spread})
    return pd.DataFrame(rows, columns=["key", "section", "claim", "cell", "ours", "spread", "paper", "counts"])


def scorecard(results_dir: str | Path) -> pd.DataFrame:
    """One row per claim: section, claim, the paper's evidence, ours, the rule, verdict, and what we know
    of a difference."""
    results = load_results(results_dir)
    conv_path = Path(results_dir) / "converged.csv"
    at_convergence = converged_view(pd.read_csv(conv_path)) if conv_path.exists() else None
    rows = []
    for c in CLAIMS:
        ours, verdict, cells = _assess(c, results)
        counts = cell_counts(cells)
        if c.key not in CONVERGED_CLAIMS:
            conv_ours, conv_verdict = "", NO_CONVERGED
        elif at_convergence is None:
            conv_ours, conv_verdict = "converged read-outs not run", UNTESTED
        else:
            conv_ours, conv_verdict, conv_cells = _assess(c, at_convergence)
            conv_verdict = _flag_chance(conv_verdict, cell_counts(conv_cells))
            if conv_ours.startswith("results missing"):
                conv_ours = "not fitted at convergence in this run"
        why = c.why if verdict in (PARTLY, NOT, UNTESTED) else ""
        rows.append({"key": c.key, "section": c.section, "claim": c.claim, "paper": c.paper, "ours": ours,
                     "rule": c.rule, "verdict": _flag_chance(verdict, counts),
                     "n_cells": counts["n_cells"], "n_counting": counts["n_counting"], "n_by_chance": counts["n_by_chance"],
                     "ours at convergence": conv_ours, "verdict at convergence": conv_verdict,
                     "what we know of the difference": why})
    return pd.DataFrame(rows)


CHANCE = 2 * stats.norm.sf(NOISE_MULTIPLE)  # a null effect's chance to lie beyond the threshold, two-sided (0.0455)


def cell_counts(d: pd.DataFrame | None) -> dict[str, float]:
    """How many cells a verdict tested, how many count (beyond the threshold, either way) and how many
    would by chance alone (two-sided); ``chance_level``: some cells count, but none survives Holm's
    control of the family (each cell's z = effect / spread, two-sided, family-wise 5 %)."""
    if d is None or not len(d):
        return {"n_cells": float("nan"), "n_counting": float("nan"), "n_by_chance": float("nan"), "chance_level": False}
    n, k = len(d), int((d.ours.abs() > NOISE_MULTIPLE * d.spread).sum())
    p = 2 * stats.norm.sf((d.ours / d.spread.where(d.spread > 0)).abs().fillna(float("inf")).to_numpy())
    return {"n_cells": n, "n_counting": k, "n_by_chance": round(n * CHANCE, 2),
            "chance_level": k > 0 and not holm(p).any()}


def holm(p, alpha: float = 0.05):
    """Which of the p-values survive Holm's step-down control of the family-wise error at ``alpha``."""
    import numpy as np

    order = np.argsort(p)
    keep = np.zeros(len(p), dtype=bool)
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        keep[i] = True
    return keep


def _assess(claim: Claim, results: dict[str, pd.DataFrame]) -> tuple[str, str, pd.DataFrame | None]:
    try:
        out = claim.assess(results)
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as e:  # a section not run, or run without the cells
        return f"results missing ({type(e).__name__}: {e})", UNTESTED, None
    return out if len(out) == 3 else (*out, None)


def _flag_chance(verdict: str, counts: dict) -> str:
    """A "partly" that rests on a chance-level count says so."""
    return f"{verdict} (chance level)" if verdict == PARTLY and counts["chance_level"] else verdict


VERDICT_COLOURS = {REPRODUCED: "#1e7b34", PARTLY: "#a66a00", NOT: "#b02a37", UNTESTED: "#6c757d"}


def _badge(verdict: str) -> str:
    base = verdict.split(" (")[0]
    colour = VERDICT_COLOURS.get(base, "#0b5394" if verdict.startswith("new finding") else "#6c757d")
    short = "new finding" if verdict.startswith("new finding") else verdict
    return (f'<span style="background:{colour};color:white;border-radius:3px;padding:1px 6px;'
            f'white-space:nowrap;font-size:90%">{html.escape(short)}</span>')


def scorecard_html(card: pd.DataFrame) -> str:
    """The scorecard at a glance: one line per claim (section, claim, verdict and verdict at
    convergence as badges, cells counting), its evidence and rule folded beneath it."""
    head = ("<tr><th>§</th><th>claim</th><th>verdict</th><th>at convergence</th><th>cells counting</th></tr>")
    rows = []
    for d in card.to_dict("records"):
        conv = d["verdict at convergence"]
        counting = "" if d["n_cells"] != d["n_cells"] else \
            f'{int(d["n_counting"])} of {int(d["n_cells"])} (chance: {d["n_by_chance"]:.1f})'
        detail = "".join(f"<p><b>{name}.</b> {html.escape(str(d[col]))}</p>" for name, col in
                         (("The paper", "paper"), ("Ours", "ours"), ("Rule", "rule"),
                          ("Ours at convergence", "ours at convergence"),
                          ("What we know of the difference", "what we know of the difference")) if str(d[col]).strip())
        rows.append(f"<tr><td>{html.escape(str(d['section']))}</td><td>{html.escape(d['claim'])}"
                    f"<details><summary>evidence and rule</summary>{detail}</details></td>"
                    f"<td>{_badge(d['verdict'])}</td><td>{'' if conv == NO_CONVERGED else _badge(conv)}</td>"
                    f"<td>{counting}</td></tr>")
    return f'<table class="scorecard">{head}{"".join(rows)}</table>'
