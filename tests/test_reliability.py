"""No silent wrong numbers: each fault that used to give a wrong result without an error, reproduced
on real small inputs, now gives the right result, a recomputation with a warning, or a clear error."""

import errno
import json
import os
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from poslib import params
from poslib.claims import scorecard
from poslib.data import ImageItem, load_items, photo_items, synthetic_items
from poslib.encoders import build_encoder
from poslib.experiment import summarize
from poslib.features import compute_features, is_complete
from poslib.files import atomic_write_text
from poslib.metrics import mae, spc
from poslib.patterns import make_pattern
from poslib.photos import _read_manifest, folder_images
from poslib.precision import EMULATE_AVX2, native_bf16, resolve_precision
from poslib.profiles import get_profile
from poslib.readout import PosENet
from poslib.results import results_folder, save_table
from poslib.train import TrainConfig, evaluate_readout, train_readout
from poslib.weights import MOBILENET_V2_TORCHVISION


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _image(path, seed, size=40):
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


# 1. User folders are keyed by content, not by file name.
def test_two_folders_with_the_same_file_names_get_their_own_features(cache, tmp_path):
    for name, seed in (("train", 1), ("test", 2)):
        (tmp_path / name).mkdir()
        _image(tmp_path / name / "a.png", seed)
    enc = build_encoder("none")
    train = compute_features(enc, photo_items(folder_images(tmp_path / "train")), progress=False)
    test = compute_features(enc, photo_items(folder_images(tmp_path / "test")), progress=False)
    assert train.folder != test.folder and not torch.equal(train.data, test.data)
    _image(tmp_path / "test" / "a.png", 3)  # edited in place: new content, new features
    edited = compute_features(enc, photo_items(folder_images(tmp_path / "test")), progress=False)
    assert edited.folder != test.folder and not torch.equal(edited.data, test.data)


# 2. A damaged feature entry is recomputed with a warning, never served.
@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "garbage_meta"])
def test_damaged_feature_entry_is_recomputed(cache, damage):
    enc, items = build_encoder("none"), synthetic_items("noise", 6, seed=5)
    good = compute_features(enc, items, batch_size=4, progress=False)
    expected = good.data.clone()
    path, meta = good.folder / "features.bin", good.folder / "meta.json"
    if damage == "truncate":
        os.truncate(path, path.stat().st_size // 2)
    elif damage == "flip":
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 3] ^= 0xFF
        path.write_bytes(bytes(blob))
    elif damage == "delete":
        path.unlink()
    else:
        meta.write_text("{not json")
    with pytest.warns(UserWarning, match=f"feature cache entry .*{good.folder.name}.* is damaged"):
        again = compute_features(enc, items, batch_size=4, progress=False)
    assert is_complete(again) and torch.equal(again.data, expected)


def test_disk_full_is_a_clear_error_naming_the_cache(cache, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match=f"not enough disk space .* in the cache folder {cache}"):
        compute_features(build_encoder("none"), synthetic_items("noise", 2), progress=False)


def test_finished_entries_are_read_without_writing_and_readable_by_others(cache):
    enc, items = build_encoder("none"), synthetic_items("noise", 3, seed=9)
    first = compute_features(enc, items, progress=False)
    files = sorted(first.folder.iterdir())
    before = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in files)  # group and others may read
    again = compute_features(enc, items, progress=False)
    again.data[0].zero_()  # a private mapping: nothing reaches the shared file
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files} == before


# 3. Cached converted weights are verified on every load.
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_converted_weights_are_converted_again(tmp_path, monkeypatch, damage):
    from poslib.fetch import cache_root

    real_archives = cache_root() / "archives"
    MOBILENET_V2_TORCHVISION.archive.fetch()  # the verified archive, in the real cache
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path))
    (tmp_path / "archives").symlink_to(real_archives)
    good = MOBILENET_V2_TORCHVISION.state_dict()
    path = MOBILENET_V2_TORCHVISION.path
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x7F
        path.write_bytes(bytes(blob))
    else:
        path.write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.warns(UserWarning, match="cached weights .* are damaged"):
        again = MOBILENET_V2_TORCHVISION.state_dict()
    assert all(torch.equal(good[k], again[k]) for k in good)


# 4. NaN in, NaN out; a diverged read-out is reported as failed and kept out of its cell's mean.
def test_spc_and_mae_are_nan_for_maps_with_nan_or_inf():
    target = make_pattern("H", 16)
    pred = target.clone().expand(3, 16, 16).clone()
    pred[1, 3, 4], pred[2, 0, 0] = float("nan"), float("inf")
    rho, err = spc(pred, target), mae(pred, target)
    assert rho[0] == pytest.approx(1.0) and torch.isnan(rho[1:]).all()
    assert torch.isnan(err[1]) and not torch.isnan(err[0])


@pytest.mark.parametrize("bad", [{"lr": float("nan")}, {"lr": float("inf")}, {"lr": 0}, {"lr": -0.1},
                                 {"momentum": float("nan")}, {"weight_decay": -1}, {"lr_gamma": 0}])
def test_train_config_rejects_non_finite_or_non_positive_settings(bad):
    with pytest.raises(ValueError, match=f"{next(iter(bad))} must be a finite number"):
        TrainConfig(**bad)


def test_a_diverged_readout_scores_nan_and_is_counted_as_failed():
    x = synthetic_items("noise", 8, seed=1)
    images = load_items(x, 64)
    readout = PosENet(3, out_size=64, grid=64, seed=0)
    train_readout(readout, images, make_pattern("H", 64), TrainConfig(epochs=2, batch_size=4, lr=1e30), progress=False)
    ev = evaluate_readout(readout, images, make_pattern("H", 64)).summary()
    assert np.isnan(ev["spc_mean"])
    table = pd.DataFrame([{"encoder": "none", "pattern": "H", "test_set": "noise", "seed": s, "spc_mean": v,
                           "mae_mean": 0.2, "n_images": 8, "failed": np.isnan(v)} for s, v in enumerate([0.5, np.nan])])
    row = summarize(table).iloc[0]
    # the failed seed is left out and counted; the one left has no spread (NaN, never 0)
    assert row.spc_mean == 0.5 and row.n_failed == 1 and row.n_seeds == 1 and np.isnan(row.spc_sd)


# 5. Results of another profile never overwrite the book's; the scorecard refuses a mix.
def test_results_of_other_profiles_go_to_their_own_folder(tmp_path):
    assert results_folder(tmp_path, "cpu") == tmp_path
    assert results_folder(tmp_path, "smoke") == tmp_path / "smoke"
    assert results_folder(tmp_path, "smoke", overwrite_book=True) == tmp_path
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        results_folder(tmp_path / "file", "cpu")


def test_scorecard_refuses_tables_of_mixed_profiles(tmp_path):
    row = pd.DataFrame([{"encoder": "vgg16", "weights": "imagenet", "pattern": "H", "test_set": "photos", "spc_mean": 0.6}])
    save_table(row, tmp_path / "table1.csv", {"profile": {"name": "cpu"}})
    save_table(row, tmp_path / "table2.csv", {"profile": {"name": "smoke"}})
    with pytest.raises(ValueError, match=r"different profiles: table1.csv \(cpu\), table2.csv \(smoke\)"):
        scorecard(tmp_path)


# 6. Whole files or none.
def test_concurrent_writers_never_collide_or_leave_half_files(tmp_path):
    path, texts = tmp_path / "meta.json", [json.dumps({"writer": i, "pad": "x" * 200_000}) for i in range(8)]
    errors = []

    def write(t):
        try:
            for _ in range(5):
                atomic_write_text(path, t)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and path.read_text() in texts and [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_a_truncated_photo_manifest_is_not_accepted(tmp_path):
    manifest, summary = tmp_path / "manifest.csv", tmp_path / "summary.json"
    text = pd.DataFrame({"photo_id": list("abcd"), "status": "ok"}).to_csv(index=False)
    import hashlib

    atomic_write_text(manifest, text)
    atomic_write_text(summary, json.dumps({"manifest_sha256": hashlib.sha256(text.encode()).hexdigest()}))
    assert len(_read_manifest(manifest, summary)) == 4
    manifest.write_text(text[: len(text) // 2])
    with pytest.warns(UserWarning, match="does not match its checksum"):
        assert _read_manifest(manifest, summary) is None


# 7. Inputs read right, or refused.
def test_sixteen_bit_greyscale_png_loads_as_its_values(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64), (64, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    img = load_items([ImageItem("r", str(tmp_path / "ramp16.png"))], 64)[0]  # (3, 64, 64)
    assert img.min() < 0.05 and img.max() > 0.95  # not pure white
    assert torch.allclose(img[0, 0], torch.linspace(0, 1, 64), atol=0.03)


@pytest.mark.parametrize("name, size", [("G", 2), ("HS", 5), ("VS", 9), ("H", 1)])
def test_patterns_refuse_sizes_they_cannot_be_drawn_at(name, size):
    with pytest.raises(ValueError, match=f"pattern {name} needs an integer size"):
        make_pattern(name, size)
    assert torch.isfinite(make_pattern(name, 10)).all()


# Clear errors for bad arguments.
@pytest.mark.parametrize("bad", ["3", [64, -1], [], True, [3.0]])
def test_posenet_rejects_ill_typed_channels(bad):
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        PosENet(bad)


def test_build_encoder_with_weights_none_is_an_error_not_a_download():
    with pytest.raises(ValueError, match="must be strings"):
        build_encoder("vgg16", None)


def test_parameter_checks_give_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match=r"parameter encoders must be a list, e.g. \['vgg16'\]"):
        params.listed("encoders", "vgg16")
    with pytest.raises(ValueError, match="must not be an empty list"):
        params.listed("patterns", [])
    with pytest.raises(ValueError, match="must be an integer, got '3'"):
        params.one("n_photos", "3", int)
    with pytest.raises(ValueError, match="does not exist"):
        params.optional_path("train_folder", tmp_path / "missing", folder=True)
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(ValueError, match="is a file; give the folder"):
        params.optional_path("train_folder", tmp_path / "f.png", folder=True)
    assert params.listed("levels", [1, 5], int, params.in_range("levels", 1, 5)) == [1, 5]
    with pytest.raises(ValueError, match=r"must be in \[1, 5\], got 6"):
        params.listed("levels", [6], int, params.in_range("levels", 1, 5))


# Precision follows the machine, and is recorded.
def test_auto_precision_is_bf16_only_where_native():
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if native_bf16("cpu") else "fp32")
    with pytest.raises(ValueError, match="valid: auto, fp32, bf16"):
        resolve_precision("fp16")
    prof = get_profile("cpu")
    assert prof.precisions()["features"] == "fp32"  # the same features on every machine
    assert prof.task_config().precision in ("fp32", "bf16")


def test_emulated_avx2_capability_turns_bf16_off():
    import subprocess
    import sys

    env = {**os.environ, **EMULATE_AVX2}
    out = subprocess.run([sys.executable, "-c", "from poslib.precision import machine_record as m; print(m())"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "'cpu_capability': 'AVX2'" in out and "'cpu_bf16_native': False" in out
