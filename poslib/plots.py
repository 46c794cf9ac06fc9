"""Figures shared by the book's sections."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

from .patterns import PATTERNS, make_pattern

PATTERN_TITLES = {"H": "H (horizontal)", "V": "V (vertical)", "G": "G (Gaussian)",
                  "HS": "HS (horizontal stripes)", "VS": "VS (vertical stripes)"}


def show_maps(maps: Sequence[torch.Tensor], titles: Sequence[str], *, cmap: str = "gray",
              panel: float = 2.2, suptitle: str | None = None) -> plt.Figure:
    """One row of (H, W) maps in [0, 1], each with its title."""
    fig, axes = plt.subplots(1, len(maps), figsize=(panel * len(maps), panel + 0.4), squeeze=False)
    for ax, m, t in zip(axes[0], maps, titles):
        ax.imshow(torch.as_tensor(m).detach().cpu(), cmap=cmap, vmin=0, vmax=1)
        ax.set_title(t, fontsize=9)
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def show_patterns(size: int = 224, patterns: Sequence[str] = PATTERNS) -> plt.Figure:
    """The target maps of Fig. 2 of the paper, generated at ``size``."""
    return show_maps([make_pattern(p, size) for p in patterns], [PATTERN_TITLES[p] for p in patterns])


def plot_curves(curves: Mapping[str, Sequence[float]], *, xlabel: str = "epoch",
                ylabel: str = "training MSE", title: str | None = None) -> plt.Figure:
    """Loss curves, one line per label, epochs counted from 1."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for label, ys in curves.items():
        ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def contact_sheet(paths: Sequence[str], *, columns: int = 16, thumb: int = 72,
                  title: str | None = None) -> plt.Figure:
    """Thumbnails of image files in a grid (aspect kept, centred in square cells)."""
    from PIL import Image

    rows = max(1, -(-len(paths) // columns))
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), "white")
    for i, p in enumerate(paths):
        with Image.open(p) as img:
            img = img.convert("RGB")
            img.thumbnail((thumb - 4, thumb - 4))
            x, y = (i % columns) * thumb, (i // columns) * thumb
            sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
    fig, ax = plt.subplots(figsize=(columns * thumb / 80, rows * thumb / 80 + (0.4 if title else 0)))
    ax.imshow(sheet)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


FIGURE_DPI = 90  # sharp on screen, and keeps each executed notebook well under its 1.5 MB budget


def _has_photos(fig: plt.Figure) -> bool:
    return any(im.get_array().ndim == 3 for ax in fig.axes for im in ax.get_images())


def figure_bytes(fig: plt.Figure, *, dpi: int = FIGURE_DPI) -> tuple[bytes, str]:
    """``fig`` rendered for the book: JPEG when it shows photographs (a tenth of PNG's size), else PNG."""
    fmt = "jpeg" if _has_photos(fig) else "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", **({"pil_kwargs": {"quality": 85}} if fmt == "jpeg" else {}))
    return buf.getvalue(), fmt


def glue_figure(name: str, fig: plt.Figure) -> None:
    """Store ``fig`` for the book under ``name`` (myst-nb glue) and close it, so it shows only where
    the page places it."""
    from IPython.display import Image
    from myst_nb import glue

    data, fmt = figure_bytes(fig)
    glue(name, Image(data=data, format=fmt), display=False)
    plt.close(fig)


def prediction_grid(images: Sequence[torch.Tensor], rows: Mapping[str, Sequence[torch.Tensor]],
                    *, panel: float = 1.5, title: str | None = None, label_rows: Sequence[str] = (),
                    n_labels: int = 7) -> plt.Figure:
    """Input images in the first row, then one row of predicted maps per label (one map per image).

    Maps are grey levels in [0, 1], except the rows named in ``label_rows``: integer label maps
    (0 .. n_labels - 1) drawn in distinct colours, background black.
    """
    n_rows, n_cols = 1 + len(rows), len(images)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(panel * n_cols + 1.2, panel * n_rows), squeeze=False)
    for j, img in enumerate(images):
        axes[0, j].imshow(torch.as_tensor(img).permute(1, 2, 0).clamp(0, 1))
    for i, (label, maps) in enumerate(rows.items(), start=1):
        for j, m in enumerate(maps):
            if label in label_rows:
                axes[i, j].imshow(torch.as_tensor(m), cmap=label_colours(n_labels), vmin=-0.5, vmax=n_labels - 0.5,
                                  interpolation="nearest")
            else:
                axes[i, j].imshow(torch.as_tensor(m), cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return _without_ticks(fig, axes.flat, title)


def _without_ticks(fig: plt.Figure, axes, title: str | None) -> plt.Figure:
    """Panels of images: no ticks (labels stay), an optional title, a tight layout."""
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def label_colours(n: int):
    """A colour map for label maps: black background, then tab10 colours."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(["black"] + [plt.get_cmap("tab10")(i % 10) for i in range(n - 1)])


def position_figure(mean_mask, centres: Sequence[tuple[float, float]], *, title: str | None = None) -> plt.Figure:
    """Where objects lie: the mean object mask (share of images with an object at each pixel) and a
    2-D histogram of object centres (fractions of the image side)."""
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.2))
    im = axes[0].imshow(mean_mask, cmap="magma", vmin=0)
    axes[0].set_title("mean object mask", fontsize=9)
    fig.colorbar(im, ax=axes[0], fraction=0.046)
    c = np.asarray(centres, dtype=float).reshape(-1, 2)
    h = axes[1].hist2d(c[:, 0], c[:, 1], bins=8, range=[[0, 1], [0, 1]], cmap="viridis")
    axes[1].invert_yaxis()
    axes[1].set_aspect("equal")
    axes[1].set_title("object centres (x, y)", fontsize=9)
    fig.colorbar(h[3], ax=axes[1], fraction=0.046)
    return _without_ticks(fig, axes, title)


def forest(effects, *, title: str | None = None) -> plt.Figure:
    """Each claim's effects, one row per cell: ours as a dot with its interval (the noise rule's
    threshold, ``NOISE_MULTIPLE`` spreads either side; filled where it counts), the paper's as a
    cross where it gives one. ``effects``: ``claims.claim_effects``' table."""
    from .stats import NOISE_MULTIPLE

    rows = effects.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.24 * len(rows)))
    y = list(range(len(rows)))[::-1]
    for yi, r in zip(y, rows.itertuples()):
        ax.errorbar(r.ours, yi, xerr=NOISE_MULTIPLE * r.spread if r.spread == r.spread else 0, fmt="o", ms=4,
                    color="tab:blue", mfc="tab:blue" if r.counts else "white", capsize=2, lw=1)
        if r.paper == r.paper:
            ax.plot(r.paper, yi, "x", color="tab:red", ms=6)
    ax.axvline(0, color="0.5", lw=0.8)
    labels = [f"{r.key}: {r.cell}" for r in rows.itertuples()]
    ax.set_yticks(y, labels, fontsize=7)
    for i in range(1, len(rows)):  # a line between claims
        if rows.key[i] != rows.key[i - 1]:
            ax.axhline(y[i] + 0.5, color="0.85", lw=0.6)
    ax.set_xlabel("effect (SPC; table5: the task score). Ours: dot, ±2 spreads, filled where it counts; paper: x",
                  fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
