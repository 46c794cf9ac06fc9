"""Measure your own network: how much position information a CNN or ViT encodes, and where (beyond the paper).

    report = measure_position(model, taps=None, preprocess=normalise)   # any torch.nn.Module
    report.table(); report.figure(); report.save("out/")

    python -m poslib.probe torchvision:resnet18 --weights resnet18-f37072fd.pth --out out/

The paper's question, asked of any network with the instrument of the page "How much position is
decodable at convergence?": frozen taps, resized to 28x28 and concatenated, read out by a linear
k x k read-out fitted to convergence (``poslib.converged``: ridge chosen by cross-validation grouped
by photo, standardised features, checked residual), scored by SPC on held-out photos and on black,
white and noise images, for all taps together and for each tap alone, beside the training SPC and
each tap's position share (the content-free reading of the random-controls page).

- Taps are module names (``model.named_modules()``; for a module call these are torchvision's
  feature-extraction node names). By default: for a CNN, the last module to finish at each spatial
  size (its main stages); for a transformer, the blocks at 1/4, 1/2, 3/4 and the end of its depth.
- A tap that returns tokens (N, L, C) becomes a map by ``tokens_to_map``: the leading L - g^2 tokens
  (class and register tokens, which torchvision's and timm's ViTs put first) are dropped and the
  g x g patch grid is reshaped.
- Read-out size: a 3x3 read-out of C channels has 9C + 1 unknowns; a direct solve fits up to
  ``DIRECT_LIMIT`` here (24 GiB). Wider sets are read out 1x1, and where even that is too wide only
  per tap; the report says which was used.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import converged
from .controls import position_share
from .data import ImageItem, load_items, photo_items, synthetic_items
from .patterns import PATTERNS
from .progress import progress_bar

GRID = 28  # every tap is resized to GRID x GRID, as the book's feature cache does
DIRECT_LIMIT = 15_000  # unknowns of a direct Gram solve on a 24 GiB machine
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (N, 3, H, W) -> torchvision's ImageNet input (mean/std normalised)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def tokens_to_map(x: torch.Tensor) -> torch.Tensor:
    """(N, L, C) tokens -> (N, C, g, g) with g = floor(sqrt(L)): the leading L - g^2 tokens (class,
    register) are dropped, the rest reshaped row by row. A (N, C, H, W) map is returned as it is."""
    if x.dim() == 4:
        return x
    if x.dim() != 3:
        raise ValueError(f"a tap must be a map (N, C, H, W) or tokens (N, L, C); got shape {tuple(x.shape)}")
    n, length, c = x.shape
    g = math.isqrt(length)
    if g < 2 or length - g * g > g:
        raise ValueError(f"{length} tokens do not form a square patch grid (plus a few class/register tokens)")
    return x[:, length - g * g:].transpose(1, 2).reshape(n, c, g, g)


def _outputs(model: nn.Module, x: torch.Tensor, names: Sequence[str] | None) -> list[tuple[str, torch.Tensor]]:
    """(name, output) of the named modules (all but the root when ``names`` is None), in the order
    their forward passes finish."""
    modules = dict(model.named_modules())
    if names is not None:
        unknown = [n for n in names if n not in modules or n == ""]
        if unknown:
            raise ValueError(f"unknown taps {unknown}; valid: module names such as "
                             f"{', '.join(list(n for n in modules if n)[:8])}, ...")
    seen: list[tuple[str, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: seen.append((n, out)))
             for n, m in modules.items() if n and (names is None or n in names)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return [(n, o) for n, o in seen if isinstance(o, torch.Tensor)]


def default_taps(model: nn.Module, preprocess: Callable = imagenet_normalise, size: int = 224) -> list[str]:
    """A CNN's main stages (at each spatial size of 2 px or more, the last of its outermost modules to
    finish) or a
    transformer's blocks at 1/4, 1/2, 3/4 and the end of its depth, found by one dry run."""
    outs = _outputs(model.eval(), preprocess(torch.zeros(1, 3, size, size)), None)
    blocks = _repeated_blocks(model, {n for n, o in outs if o.dim() == 3})
    if len(blocks) >= 2:  # a transformer (its patch embedding may be a conv: the blocks decide)
        depth = len(blocks)
        return list(dict.fromkeys(blocks[max(0, round(depth * q) - 1)] for q in (0.25, 0.5, 0.75, 1.0)))
    maps = [(n, o) for n, o in outs if o.dim() == 4 and min(o.shape[-2:]) >= 2]
    if not maps:
        raise ValueError("found neither feature maps nor a stack of token blocks: name the taps (taps=[...])")
    # per size, the outermost modules (fewest dots: a stage or block, not a layer inside one), and of
    # those the last to finish; sizes in the order they were last seen
    depth = {n: n.count(".") for n, _ in maps}
    shallowest: dict[tuple[int, int], int] = {}
    for n, o in maps:
        size_ = tuple(o.shape[-2:])
        shallowest[size_] = min(shallowest.get(size_, depth[n]), depth[n])
    last: dict[tuple[int, int], str] = {}
    for n, o in maps:
        size_ = tuple(o.shape[-2:])
        if depth[n] == shallowest[size_]:
            last.pop(size_, None)
            last[size_] = n  # re-inserted: dict order is the order each size was last seen
    return list(last.values())


def _repeated_blocks(model: nn.Module, token_outputs: set[str]) -> list[str]:
    """The longest list of sibling modules (a ModuleList or Sequential) that all return tokens."""
    best: list[str] = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.ModuleList, nn.Sequential)):
            kids = [f"{name}.{k}" if name else k for k, _ in m.named_children()]
            if len(kids) > len(best) and kids and all(k in token_outputs for k in kids):
                best = kids
    return best


@dataclass
class TapInfo:
    name: str
    channels: int
    size: tuple[int, int]  # the tap's own spatial size (its patch grid for tokens)
    tokens: bool


def features(model: nn.Module, items: Sequence[ImageItem], taps: Sequence[str], *, preprocess: Callable,
             size: int = 224, batch: int = 16, device: str | torch.device = "cpu",
             progress: bool = True) -> tuple[torch.Tensor, list[TapInfo]]:
    """(N, sum C, 28, 28) float32: each tap of each image, as a map, resized bilinearly
    (align_corners=True, as the official code) and concatenated; and what each tap is."""
    model = model.eval().to(device)
    chunks, info = [], None
    for lo in progress_bar(range(0, len(items), batch), progress=progress, desc="features"):
        x = preprocess(load_items(items[lo:lo + batch], size).to(device))
        outs = dict(_outputs(model, x, taps))
        maps = [tokens_to_map(outs[t]) for t in taps]
        if info is None:
            info = [TapInfo(t, m.shape[1], tuple(m.shape[-2:]), outs[t].dim() == 3) for t, m in zip(taps, maps)]
        chunks.append(torch.cat([F.interpolate(m.float(), size=(GRID, GRID), mode="bilinear", align_corners=True)
                                 for m in maps], 1).cpu())
    return torch.cat(chunks), info


@dataclass
class PositionReport:
    """Converged read-out SPC per taps read, pattern and test set, and each tap's position share."""

    rows: pd.DataFrame
    taps: list[TapInfo]
    share: dict[str, float]
    settings: dict = field(default_factory=dict)

    def table(self, test_set: str = "photos") -> pd.DataFrame:
        """SPC on ``test_set`` (rows: taps read and read-out; columns: patterns), three decimals."""
        t = self.rows[self.rows.test_set == test_set]
        t = t.assign(read=t.taps + " (" + t.kernel.map(lambda k: f"{k}x{k}") + ")")
        return t.pivot(index="read", columns="pattern", values="spc").reindex(columns=list(dict.fromkeys(t.pattern))).round(3)

    def figure(self):
        """SPC on the test photos per tap (lines: patterns), and each tap's position share."""
        import matplotlib.pyplot as plt

        t = self.rows[(self.rows.test_set == "photos") & (self.rows.taps != "all")]
        names = [i.name for i in self.taps]
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
        for pattern, part in t.groupby("pattern", sort=False):
            part = part.set_index("taps").reindex(names)
            a.plot(range(len(names)), part.spc, marker="o", label=pattern)
        a.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        a.set_ylabel("SPC, test photos (converged)")
        a.legend(fontsize=8)
        b.bar(range(len(names)), [self.share[n] for n in names])
        b.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        b.set_ylabel("position share of variance")
        fig.tight_layout()
        return fig

    def save(self, folder: str | Path) -> Path:
        """position.csv (every row), position.json (settings, taps, shares), position.png, summary.md."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.rows.to_csv(folder / "position.csv", index=False)
        (folder / "position.json").write_text(json.dumps({"settings": self.settings, "taps": [asdict(i) for i in self.taps],
                                                          "position_share": self.share}, indent=2, default=str))
        fig = self.figure()
        fig.savefig(folder / "position.png", dpi=120)
        import matplotlib.pyplot as plt

        plt.close(fig)
        lines = [f"# Position information in {self.settings.get('model', 'the model')}", "",
                 "Converged linear read-out SPC on held-out photos (rows: taps read, read-out size):", "",
                 self.table().to_markdown() if _has_tabulate() else self.table().to_string(), "",
                 "Position share per tap: " + ", ".join(f"{k} {v:.3f}" for k, v in self.share.items()), ""]
        (folder / "summary.md").write_text("\n".join(lines))
        return folder


def _has_tabulate() -> bool:
    return importlib.util.find_spec("tabulate") is not None


def _kernel(channels: int, kernel: int) -> int | None:
    """``kernel`` if its read-out fits a direct solve, else 1 if that fits, else None."""
    for k in (kernel, 1):
        if channels * k * k + 1 <= DIRECT_LIMIT:
            return k
    return None


def pool_images(folder: str | Path | None = None, *, train_photos: int | None = None,
                test_photos: int | None = None) -> tuple[list[ImageItem], list[ImageItem]]:
    """Training and test photos: the offline pool's splits, or a folder split by the pool's rule
    (by each file's sha256)."""
    from .photos import folder_images, photo_pool, split_of

    if folder is None:
        table = photo_pool().sort_values("sha256")
        table = table[table.status == "ok"]
    else:
        table = folder_images(folder)
        table = table[table.status == "ok"].assign(split=lambda t: t.sha256.map(split_of)).sort_values("sha256")
    train, test = table[table.split == "train"], table[table.split == "test"]
    if len(train) < 5 or len(test) < 1:
        raise ValueError(f"need at least 5 training photos and 1 test photo, got {len(train)} and {len(test)}")
    return photo_items(train.head(train_photos)), photo_items(test.head(test_photos))


def measure_position(model: nn.Module, *, taps: Sequence[str] | None = None,
                     preprocess: Callable[[torch.Tensor], torch.Tensor] = imagenet_normalise,
                     train: Sequence[ImageItem] | None = None, test: Sequence[ImageItem] | None = None,
                     patterns: Sequence[str] = PATTERNS, kernel: int = 3, per_tap: bool = True, size: int = 224,
                     ridge: converged.RidgeSettings = converged.RidgeSettings(), device: str | torch.device = "cpu",
                     progress: bool = True, name: str = "model") -> PositionReport:
    """How much position ``model`` encodes, and where: converged read-outs of every tap together and
    of each tap alone, scored on held-out photos and on black, white and noise images.

    ``preprocess`` maps RGB in [0, 1] (N, 3, size, size) to the model's input; ``train`` / ``test``:
    image items (default: the offline pool's whole training and test photos).
    """
    if train is None or test is None:
        train, test = pool_images()
    taps = list(taps) if taps is not None else default_taps(model, preprocess, size)
    tests = {"photos": list(test), "black": synthetic_items("black"), "white": synthetic_items("white"),
             "noise": synthetic_items("noise", 8, seed=1000)}
    kw = dict(preprocess=preprocess, size=size, device=device, progress=progress)
    x_train, info = features(model, list(train), taps, **kw)
    x_tests = {k: features(model, v, taps, **kw)[0] for k, v in tests.items()}
    offsets = [sum(i.channels for i in info[:j]) for j in range(len(info) + 1)]
    reads = []
    k_all = _kernel(offsets[-1], kernel)
    if k_all is not None:
        reads.append(("all", None, k_all))
    if per_tap:
        for j, i in enumerate(info):
            k = _kernel(i.channels, kernel)
            if k is not None:
                reads.append((i.name, list(range(offsets[j], offsets[j + 1])), k))
    rows = []
    for label, channels, k in progress_bar(reads, progress=progress, desc="read-outs"):
        cf = converged.fit(x_train, list(train), patterns, channels=channels, kernel=k, settings=ridge, device=device,
                           progress=False)
        train_spc, _ = converged.image_scores(cf, x_train, device=device)
        for test_name, x in x_tests.items():
            spc, _ = converged.image_scores(cf, x, device=device)
            for p, pattern in enumerate(patterns):
                rows.append({"taps": label, "kernel": k, "pattern": pattern, "test_set": test_name,
                             "spc": spc[:, p].mean().item(), "spc_se_images": converged.se_images(spc[:, p]),
                             "spc_train": train_spc[:, p].mean().item(), "ridge": cf.ridge[p],
                             "rel_residual": max(cf.rel_residual[p], cf.fold_rel_residual[p]),
                             "converged": cf.converged[p], "n_images": len(x)})
    share = dict(zip([i.name for i in info], position_share(x_tests["photos"], [i.channels for i in info])))
    settings = {"model": name, "taps": taps, "kernel": kernel, "size": size, "train_inputs": len(train),
                "test_photos": len(test), "ridge": asdict(ridge),
                "read_outs": {label: f"{k}x{k}" for label, _, k in reads},
                "left_out": [i.name for i in info if _kernel(i.channels, kernel) is None] if per_tap else []}
    return PositionReport(pd.DataFrame(rows), info, share, settings)


# --- models from the ecosystem's zoos ---------------------------------------------------------------

def from_torchvision(name: str, *, weights: str | Path | None = None) -> tuple[nn.Module, Callable]:
    """A torchvision model and its preprocessing. ``weights``: None (random init, a control), a
    local state-dict file, or a torchvision weights name such as "DEFAULT" (downloads where the
    network allows)."""
    from torchvision import models

    if name not in models.list_models():
        raise ValueError(f"unknown torchvision model {name!r}; e.g. {', '.join(models.list_models()[:6])}, ...")
    if weights is None or Path(str(weights)).is_file():
        model = models.get_model(name, weights=None)
        if weights is not None:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return model, imagenet_normalise
    try:
        w = models.get_model_weights(name)[weights] if weights != "DEFAULT" else models.get_model_weights(name).DEFAULT
        model = models.get_model(name, weights=w)
    except (OSError, RuntimeError) as e:  # urllib's URLError is an OSError
        raise RuntimeError(f"torchvision:{name} weights {weights} could not be downloaded ({type(e).__name__}); "
                           f"offline, pass a local file: --weights FILE (a torchvision state dict)") from e
    return model, imagenet_normalise


def from_timm(name: str, *, weights: str | Path | None = None) -> tuple[nn.Module, Callable]:
    """A timm model (``pip install timm``) and its own normalisation. ``weights``: None (random),
    a local checkpoint file, or "pretrained" (downloads where the network allows)."""
    try:
        import timm
    except ImportError as e:
        raise ImportError("timm models need timm: pip install timm") from e
    pretrained = weights == "pretrained"
    try:
        model = timm.create_model(name, pretrained=pretrained,
                                  checkpoint_path=str(weights) if weights not in (None, "pretrained") else "")
    except (OSError, RuntimeError) as e:
        raise RuntimeError(f"timm:{name} weights could not be had ({type(e).__name__}); offline, pass a local file: "
                           "--weights FILE") from e
    cfg = model.pretrained_cfg if hasattr(model, "pretrained_cfg") else {}
    mean = torch.tensor(cfg.get("mean", IMAGENET_MEAN)).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", IMAGENET_STD)).view(1, 3, 1, 1)
    return model, lambda x: (x - mean.to(x.device)) / std.to(x.device)


BUNDLED = ("mobilenet_v2", "efficientnet_lite0", "vgg16")


def from_bundled(name: str) -> tuple[nn.Module, Callable]:
    """An ImageNet network whose weights registry packages bundle (works offline), with the input its
    weights expect: torchvision's MobileNetV2, EfficientNet-Lite0, or VGG16's convolutions (the
    original Caffe release)."""
    from torchvision import models

    from .efficientnet_lite import EfficientNetLite0
    from .weights import EFFICIENTNET_LITE0, MOBILENET_V2_TORCHVISION, VGG16_CAFFE, Preprocess

    if name == "mobilenet_v2":
        model = models.mobilenet_v2(weights=None)
        model.load_state_dict(MOBILENET_V2_TORCHVISION.state_dict(), strict=True)
        return model, imagenet_normalise
    if name == "efficientnet_lite0":
        model = EfficientNetLite0()
        model.load_state_dict(EFFICIENTNET_LITE0.state_dict(), strict=True)
        return model, Preprocess(EFFICIENTNET_LITE0.preprocess)
    if name == "vgg16":
        model = models.vgg16(weights=None, init_weights=False).features
        model.load_state_dict(VGG16_CAFFE.state_dict(), strict=True)
        return model, Preprocess(VGG16_CAFFE.preprocess)
    raise ValueError(f"no bundled weights for {name!r}; bundled: {', '.join(BUNDLED)}")


def check_spec(spec: str) -> None:
    """Raise ValueError unless ``spec`` has one of ``load_model``'s forms (KIND:NAME)."""
    kind, _, name = str(spec).partition(":")
    if not kind or not name:
        raise ValueError(f"model must be torchvision:NAME, timm:NAME, bundled:NAME or module.path:callable, got {spec!r}")
    if kind == "bundled" and name not in BUNDLED:
        raise ValueError(f"no bundled weights for {name!r}; bundled: {', '.join(BUNDLED)}")


def load_model(spec: str, *, weights: str | Path | None = None) -> tuple[nn.Module, Callable]:
    """``torchvision:NAME``, ``timm:NAME``, ``bundled:NAME`` (``BUNDLED``: offline ImageNet weights) or
    ``module.path:callable`` (a function returning a module, or a (module, preprocess) pair)."""
    kind, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"model must be torchvision:NAME, timm:NAME, bundled:NAME or module.path:callable, got {spec!r}")
    if kind == "bundled":
        return from_bundled(name)
    if kind == "torchvision":
        return from_torchvision(name, weights=weights)
    if kind == "timm":
        return from_timm(name, weights=weights)
    made = getattr(importlib.import_module(kind), name)()
    model, preprocess = made if isinstance(made, tuple) else (made, imagenet_normalise)
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model, preprocess


def run_models(specs: Sequence[str], *, train: Sequence[ImageItem], test: Sequence[ImageItem], kernel: int = 1,
               folder: str | Path | None = None, device: str | torch.device = "cpu",
               progress: bool = True) -> tuple[pd.DataFrame, dict[str, PositionReport]]:
    """``measure_position`` for each model spec (``load_model``'s forms): one table of every row with
    a ``model`` column, the reports by spec, each saved under ``folder/<spec>`` when given."""
    reports, parts = {}, []
    for spec in specs:
        model, preprocess = load_model(spec)
        report = measure_position(model, preprocess=preprocess, train=train, test=test, kernel=kernel, device=device,
                                  progress=progress, name=spec)
        reports[spec] = report
        parts.append(report.rows.assign(model=spec))
        if folder is not None:
            report.save(Path(folder) / spec.replace(":", "-"))
    table = pd.concat(parts, ignore_index=True)
    return table[["model", *[c for c in table.columns if c != "model"]]], reports


def main(argv: Sequence[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(prog="python -m poslib.probe", description=__doc__.splitlines()[0])
    ap.add_argument("model", help="torchvision:NAME, timm:NAME, bundled:NAME (offline ImageNet weights: "
                                  f"{', '.join(BUNDLED)}) or module.path:callable")
    ap.add_argument("--weights", help="a local weights file, 'none' (random init: the architecture alone), or "
                                      "torchvision's DEFAULT / timm's pretrained (online)")
    ap.add_argument("--taps", nargs="+", help="module names to tap (default: the main stages or blocks)")
    ap.add_argument("--images", help="a folder of photos, split into training and test photos by sha256 "
                                     "(default: the offline pool)")
    ap.add_argument("--train-photos", type=int, help="at most this many training photos")
    ap.add_argument("--test-photos", type=int, help="at most this many test photos")
    ap.add_argument("--kernel", type=int, default=3, help="read-out kernel (1, 3, ...; default 3)")
    ap.add_argument("--out", default="position-report", help="the report's folder (default: position-report)")
    args = ap.parse_args(argv)
    weights = None if args.weights in (None, "none", "random") else args.weights
    model, preprocess = load_model(args.model, weights=weights)
    train, test = pool_images(args.images, train_photos=args.train_photos, test_photos=args.test_photos)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report = measure_position(model, taps=args.taps, preprocess=preprocess, train=train, test=test, kernel=args.kernel,
                              device=device, name=args.model)
    out = report.save(args.out)
    print(report.table().to_string())
    print(f"report written to {out}")
    return out


if __name__ == "__main__":
    main()
