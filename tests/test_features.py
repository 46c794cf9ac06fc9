"""The feature cache and the grid runner, on real encoders and real photos (small sets)."""

import functools

import pandas as pd
import pytest
import torch

from poslib import features
from poslib.data import photo_items, synthetic_items
from poslib.encoders import build_encoder
from poslib.experiment import DataSets, ReadoutSpec, grid_store, run_grid, standard_data, summarize
from poslib.features import cache_key, compute_features, is_complete
from poslib.patterns import make_pattern
from poslib.photos import photo_pool
from poslib.profiles import get_profile
from poslib.readout import PosENet
from poslib.train import evaluate_readout, train_readout


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def photos():
    pool = photo_pool().sort_values("sha256")
    return photo_items(pool[pool.split == "train"].head(5), crops_per_photo=2)


def files(features):
    return (features.folder / "features.bin").read_bytes()


def test_second_run_reuses_the_cache(cache, photos, monkeypatch):
    monkeypatch.setattr(features, "cache_counts", {"hits": 0, "computed": 0, "images_encoded": 0})
    enc = build_encoder("mobilenet_v2", "imagenet")
    first = compute_features(enc, photos, batch_size=4, progress=False)
    assert features.cache_counts == {"hits": 0, "computed": 1, "images_encoded": 10}
    assert is_complete(first) and len(first) == 10 and first.channels == [16, 24, 32, 96, 1280]
    assert first.data.shape == (10, 1448, 28, 28) and first.data.dtype == torch.bfloat16
    assert [t.shape[1] for t in first.taps] == first.channels
    monkeypatch.setattr(enc, "forward", lambda x: pytest.fail("the encoder ran again"))
    again = compute_features(enc, photos, batch_size=4, progress=False)
    assert features.cache_counts == {"hits": 1, "computed": 1, "images_encoded": 10}
    assert again.folder == first.folder and torch.equal(first.data, again.data)


def test_interrupted_run_resumes_to_identical_bytes(tmp_path, monkeypatch, photos):
    enc = build_encoder("mobilenet_v2", "imagenet")
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path / "a"))
    whole = files(compute_features(enc, photos, batch_size=4, progress=False))
    monkeypatch.setenv("POSLIB_CACHE", str(tmp_path / "b"))
    part = compute_features(enc, photos, batch_size=4, progress=False, limit=4)
    assert not is_complete(part)
    rest = compute_features(enc, photos, batch_size=4, progress=False)
    assert is_complete(rest) and files(rest) == whole


def test_cache_key_changes_when_any_input_changes(photos):
    vgg, vgg_random = build_encoder("vgg16"), build_encoder("vgg16", "random")
    base = dict(size=224, precision="fp32", storage="bf16", grid=28)
    key = cache_key(vgg, photos, **base)
    assert key == cache_key(build_encoder("vgg16"), list(photos), **base)
    assert key != cache_key(vgg_random, photos, **base)  # weights
    assert cache_key(vgg_random, photos, **base) != cache_key(build_encoder("vgg16", "random", seed=1), photos, **base)
    assert key != cache_key(build_encoder("vgg16_nopad"), photos, **base)  # architecture
    assert key != cache_key(build_encoder("vgg16", preprocess="tensor"), photos, **base)  # preprocessing
    assert key != cache_key(vgg, photos[:-1], **base)  # image set
    assert key != cache_key(vgg, photos, **{**base, "size": 192})
    assert key != cache_key(vgg, photos, **{**base, "precision": "bf16"})
    assert key != cache_key(vgg, photos, **{**base, "storage": "fp32"})
    assert key != cache_key(vgg, photos, **{**base, "grid": 14})


def test_bf16_and_fp32_vgg_features_agree_closely(cache, photos):
    enc = build_encoder("vgg16", "imagenet")
    lo = compute_features(enc, photos[:3], precision="bf16", storage="bf16", progress=False)
    hi = compute_features(enc, photos[:3], precision="fp32", storage="fp32", progress=False)
    assert hi.data.dtype == torch.float32 and lo.folder != hi.folder
    for a, b in zip(lo.taps, hi.taps):
        rel = (a.float() - b).norm() / b.norm()
        assert 0 < rel < 0.02  # measured 0.4-0.8% per tap for VGG16 (MobileNetV2: 2-8%)


def test_grid_equals_single_readout_runs(cache):
    prof = get_profile("smoke")
    data = DataSets(train=synthetic_items("noise", 12, seed=3),
                    tests={"noise": synthetic_items("noise", 3, seed=100), "white": synthetic_items("white")})
    specs = [ReadoutSpec(padding=0), ReadoutSpec(padding=1), ReadoutSpec(layers=2, padding=1)]
    grid = run_grid("none", patterns=["H", "G"], readouts=specs, seeds=[0, 1], data=data, profile=prof, progress=False)
    table = grid.table
    assert len(table) == 2 * 3 * 2 * 2 and not table.isna().drop(columns="hidden").any().any()
    feats = compute_features(build_encoder("none"), data.train, storage=prof.feature_storage, progress=False)
    test = compute_features(build_encoder("none"), data.tests["noise"], storage=prof.feature_storage, progress=False)
    for seed in (0, 1):
        for spec in specs:
            single = PosENet(feats.channels, layers=spec.layers, padding=spec.padding, seed=seed,
                             hidden_channels=prof.hidden_channels if spec.layers > 1 else None)
            order = 0 if prof.share_batch_order else seed  # the grid's shared batch order: its first seed
            train_readout(single, feats.taps, make_pattern("G", 224), prof.train_config(order), progress=False)
            ev = evaluate_readout(single, test.taps, make_pattern("G", 224)).summary()  # per-tap input
            row = table[(table.pattern == "G") & (table.padding == spec.padding) & (table.layers == spec.layers)
                        & (table.seed == seed) & (table.test_set == "noise")].iloc[0]
            assert row.spc_mean == pytest.approx(ev["spc_mean"], abs=1e-6)
            assert row.mae_mean == pytest.approx(ev["mae_mean"], abs=1e-6)
    summary = summarize(table)
    # every read-out is either averaged or counted failed (a smoke run's 3 steps leave some unmoved)
    assert len(summary) == 2 * 3 * 2 and (summary.n_seeds + summary.n_failed == 2).all()
    white = table[(table.test_set == "white") & (table.padding == 0)]
    assert len(white) and (white.spc_mean == 0).all()  # an unpadded read-out of a uniform image: a constant map


def test_standard_data_follows_the_profile():
    data = standard_data(get_profile("smoke"))
    assert len(data.train) == 24 and set(data.tests) == {"photos", "black", "white", "noise"}
    assert len(data.tests["photos"]) == 8 and len(data.tests["noise"]) == 2
    train_keys = {i.key.split(":")[1] for i in data.train}
    assert not train_keys & {i.key.split(":")[1] for i in data.tests["photos"]}
    with pytest.raises(ValueError, match="valid: photos, black, white, noise"):
        standard_data(get_profile("smoke"), test_sets=["pascal"])
    with pytest.raises(ValueError, match="positive odd"):
        ReadoutSpec(kernel_size=4)


def test_a_stored_grid_is_loaded_again_only_with_the_same_identity(cache, tmp_path):
    prof = get_profile("smoke")
    data = DataSets(train=synthetic_items("noise", 6, seed=3), tests={"noise": synthetic_items("noise", 2, seed=100)})
    run = functools.partial(run_grid, "none", patterns=["H"], readouts=[ReadoutSpec()], data=data, profile=prof,
                            progress=False, store=tmp_path)
    first = run(seeds=[0, 1])
    again = run(seeds=[0, 1])
    assert not first.reused and again.reused and len(list(tmp_path.glob("grid-*.pt"))) == 1
    pd.testing.assert_frame_equal(first.table, again.table)
    assert first.predictions.keys() == again.predictions.keys()
    assert all(torch.equal(first.predictions[k], again.predictions[k]) for k in first.predictions)
    assert first.losses == again.losses
    other = run(seeds=[0])  # different seeds: a different grid, trained and stored beside the first
    assert not other.reused and len(list(tmp_path.glob("grid-*.pt"))) == 2
    assert other.table.spc_mean.tolist() == pytest.approx(first.table[first.table.seed == 0].spc_mean.tolist(), abs=1e-6)


def test_a_page_grid_store_lives_in_the_cache_and_resume_off_trains_afresh(cache):
    assert grid_store("existence") == cache / "runs" / "existence"
    assert grid_store("existence", resume=False) is None
    with pytest.raises(ValueError, match="plain folder name"):
        grid_store("../elsewhere")
