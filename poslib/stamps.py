"""Real photo cut-outs with alpha: the objects of Section 4.2's saliency and segmentation data.

No saliency or segmentation dataset can be had offline, but Tux Paint's default stamp collection
(Debian ``tuxpaint-stamps-default``) holds a few hundred PNG cut-outs with an alpha channel in
category folders; about 180 of them are photographs (the others are clip art, letters, symbols).
``stamp_table()`` keeps the photographic ones in six classes, named by folder below with the
drawings left out by name, and splits each class by the hashes of its stamps' bytes (30% test,
at least one of each class on either side), so train and test composites never share an object.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from .files import atomic_write_text
from .fetch import Archive, cache_root, sha256_bytes
from .photos import TEST_FRACTION

STAMPS = Archive("debian", "tuxpaint-stamps-default", "2022.06.04-1",
                 "pool/main/t/tuxpaint-stamps/tuxpaint-stamps-default_2022.06.04-1_all.deb",
                 "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
                 "GPL-2+ (package); stamps credited in its copyright file (public domain, CC, GPL)")
ROOT = "usr/share/tuxpaint/stamps/"


@dataclass(frozen=True)
class StampClass:
    name: str
    folders: tuple[str, ...]  # folders under ROOT whose .png files are this class (not their subfolders)
    drawings: tuple[str, ...] = ()  # file names in those folders that are drawings, not photographs


# Label 0 is background; class i has label i + 1. Folders named "cartoon" or "toys" are never used,
# and the "_mirror" files (flipped copies of another stamp) are dropped so no object is in both splits.
CLASSES: tuple[StampClass, ...] = (
    StampClass("bird", ("animals/birds",)),
    StampClass("mammal", tuple(f"animals/mammals{s}" for s in (
        "", "/rodents", "/camel", "/bears", "/aquatic", "/equines", "/apes", "/cats", "/bovines", "/dogs", "/deer"))
        + ("animals/marsupials",), drawings=("echidna.png", "hedgehog.png", "whale.png")),
    StampClass("flower", ("plants/flowers",), drawings=("flower7.png",)),
    StampClass("fruit", ("food/fruit",)),
    StampClass("vegetable", ("food/vegetables",)),
    StampClass("vehicle", ("vehicles", "vehicles/auto", "vehicles/construction", "vehicles/cycle",
                           "vehicles/emergency", "vehicles/flight", "vehicles/flight/planes", "vehicles/masstransit",
                           "vehicles/race", "military/vehicles"),
               drawings=("7spoke256.png", "wheel_tractor.png", "sedan_police.png")),
)
CLASS_NAMES: tuple[str, ...] = ("background",) + tuple(c.name for c in CLASSES)
STAMPS_VERSION = 2  # bump when the rules above change


def _selected(path: str) -> StampClass | None:
    folder, _, name = path[len(ROOT):].rpartition("/")
    if not name.endswith(".png") or "_mirror" in name:
        return None
    return next((c for c in CLASSES if folder in c.folders and name not in c.drawings), None)


def _stratified_split(table: pd.DataFrame) -> pd.Series:
    """Per class, the stamps with the lowest hashes are the test set (a hash split per class, so a
    small class such as vehicle cannot land almost wholly in one split by chance)."""
    rank = table.groupby("class").sha256.rank(method="first") - 1
    size = table.groupby("class").sha256.transform("size")
    n_test = (size * TEST_FRACTION).round().clip(lower=1)
    return (rank < n_test).map({True: "test", False: "train"})


def stamps_folder() -> Path:
    key = sha256_bytes(repr((STAMPS_VERSION, STAMPS, CLASSES)).encode())[:12]
    return cache_root() / "stamps" / f"stamps-{key}"


def stamp_table() -> pd.DataFrame:
    """One row per photographic cut-out: class, label, size, split and the path of its RGBA PNG.

    Extracted on first use (fetching the pinned 161 MB package), then read from the cache.
    """
    folder = stamps_folder()
    manifest = folder / "manifest.csv"
    if manifest.exists():
        table = pd.read_csv(manifest)
        if all(Path(p).exists() for p in table.path):
            return table
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for member, blob in sorted(STAMPS.members(ROOT).items()):
        cls = _selected(member)
        if cls is None:
            continue
        digest = sha256_bytes(blob)
        with Image.open(io.BytesIO(blob)) as img:
            rgba = img.convert("RGBA")
        path = folder / f"{cls.name}-{Path(member).stem}-{digest[:8]}.png"
        rgba.save(path)
        rows.append({"stamp_id": digest[:12], "class": cls.name, "label": CLASS_NAMES.index(cls.name),
                     "member": member, "width": rgba.width, "height": rgba.height, "sha256": digest,
                     "path": str(path)})
    table = pd.DataFrame(rows)
    table["split"] = _stratified_split(table)
    atomic_write_text(manifest, table.to_csv(index=False))
    return table
