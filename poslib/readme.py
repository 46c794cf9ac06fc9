"""The README's findings, generated from the committed results: ``python -m poslib.readme`` rewrites
the block between its markers, ``--check`` fails when the README and the results disagree (a test runs it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

BEGIN = "<!-- findings: generated from results/ by python -m poslib.readme; do not edit by hand -->"
END = "<!-- end of findings -->"
ROOT = Path(__file__).resolve().parents[1]


def _spc(t: pd.DataFrame, column: str = "spc_mean", **where) -> str:
    for k, v in where.items():
        t = t[t[k] == v]
    return ", ".join(f"{r.pattern} {getattr(r, column):.3f}" for r in t.itertuples())


def findings(results_dir: str | Path = ROOT / "results") -> str:
    """The block: the headline numbers and one line per claim with its two verdicts."""
    results_dir = Path(results_dir)
    card = pd.read_csv(results_dir / "claims.csv")
    t1 = pd.read_csv(results_dir / "table1.csv")
    vgg = t1[(t1.encoder == "vgg16") & (t1.weights == "imagenet") & (t1.test_set == "photos")
             & t1.pattern.isin(["H", "V", "G"])]
    lines = [BEGIN, "",
             f"- **VGG16 with ImageNet weights encodes absolute position.** Its one-layer read-out reaches SPC "
             f"{_spc(vgg)} on {int(vgg.n_images.iloc[0])} held-out photos with the paper's SGD read-out at our `cpu` "
             f"budget (the paper: {_spc(vgg, 'paper_spc')} on PASCAL-S)."]
    conv_path = results_dir / "converged.csv"
    if conv_path.exists():
        conv = pd.read_csv(conv_path)
        c = conv[(conv.group == "Table 1") & (conv.encoder == "vgg16") & (conv.weights == "imagenet")
                 & (conv.test_set == "photos") & conv.pattern.isin(["H", "V", "G"])]
        if len(c):
            lines.append(f"- **Fitted to convergence**, the same linear read-out reaches {_spc(c)}: part of the gap "
                         "to the paper was the SGD budget, not the features.")
    none = t1[(t1.encoder == "none") & (t1.test_set == "photos")]
    if len(none):
        top = none.loc[none.spc_mean.abs().idxmax()]
        text = (f"- **PosENet alone** (no encoder) reads nothing from black, white or noise images; on photos "
                f"its largest SPC is {top.spc_mean:.3f} ({top.pattern}), from what the photos show")
        flips_path = results_dir / "flips.csv"
        flips = pd.read_csv(flips_path) if flips_path.exists() else pd.DataFrame(columns=["encoder", "flip", "pattern"])
        flipped = flips[(flips.encoder == "none") & (flips.flip == "vertical") & (flips.pattern == top.pattern)]
        if top.pattern == "V" and len(flipped):
            text += (f": with the test photos turned upside down it reads {flipped.spc_mean.iloc[0]:.3f}, "
                     "the sky is where the ground was")
        lines.append(text + ".")
    counts = card.verdict.value_counts()
    lines += [f"- Of the paper's claims, {counts.get('reproduced', 0)} reproduce, {counts.get('partly', 0)} partly, "
              f"{counts.get('not reproduced', 0)} do not, {counts.get('not tested', 0)} could not be tested offline.",
              "", "| section | claim | verdict | at convergence |", "|---|---|---|---|"]
    for r in card.to_dict("records"):
        cells = [r["section"], r["claim"].replace("(Not a claim of the paper.) ", ""), r["verdict"],
                 r.get("verdict at convergence", "")]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") if isinstance(c, str) else "" for c in cells) + " |")
    lines += ["", END]
    return "\n".join(lines)


def update(readme: Path = ROOT / "README.md", results_dir: Path = ROOT / "results") -> bool:
    """Rewrite the README's block; True if it changed."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no findings block ({BEGIN} ... {END})")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = head + findings(results_dir) + tail
    readme.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m poslib.readme", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the README's block differs from the results")
    args = ap.parse_args(argv)
    if args.check:
        text = (ROOT / "README.md").read_text()
        ok = findings() in text
        print("README findings match results/" if ok else "README findings differ from results/: run python -m poslib.readme")
        return 0 if ok else 1
    print("README findings updated" if update() else "README findings already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
