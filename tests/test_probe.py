"""Measure your own network: taps found by a dry run, tokens made maps, converged read-outs, the command line."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import models

from poslib import probe
from poslib.converged import RidgeSettings
from poslib.data import synthetic_items


def test_tokens_become_a_patch_grid_with_the_class_token_dropped():
    cls, grid = torch.zeros(2, 1, 3), torch.arange(2 * 16 * 3, dtype=torch.float).view(2, 16, 3)
    m = probe.tokens_to_map(torch.cat([cls, grid], 1))
    assert m.shape == (2, 3, 4, 4) and torch.equal(m[:, :, 0, 1], grid[:, 1])
    with pytest.raises(ValueError, match="square patch grid"):
        probe.tokens_to_map(torch.zeros(1, 14, 3))  # 9 patches and 5 extra tokens: no grid


def test_default_taps_are_a_cnns_stages_and_a_transformers_quartile_blocks():
    assert probe.default_taps(models.resnet18()) == ["relu", "layer1", "layer2", "layer3", "layer4"]
    vit = models.vit_b_16()
    assert probe.default_taps(vit) == [f"encoder.layers.encoder_layer_{i}" for i in (2, 5, 8, 11)]
    with pytest.raises(ValueError, match="unknown taps"):
        probe.features(vit, synthetic_items("black"), ["encoder.nope"], preprocess=probe.imagenet_normalise,
                       progress=False)


def tiny_cnn(padding_mode: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, padding_mode=padding_mode), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1, padding_mode=padding_mode), nn.ReLU())


def test_zero_padding_gives_position_on_black_images_and_circular_padding_none():
    train, test = synthetic_items("noise", 10, seed=1), synthetic_items("noise", 3, seed=50)
    spc = {}
    for mode in ("zeros", "circular"):
        report = probe.measure_position(tiny_cnn(mode), preprocess=lambda x: x, train=train, test=test, size=64,
                                        patterns=["H", "G"], ridge=RidgeSettings(folds=3), progress=False)
        rows = report.rows.set_index(["taps", "pattern", "test_set"])
        spc[mode] = rows.loc[("all", "H", "black"), "spc"]
        assert rows.converged.all() and set(report.share) == {"1", "3"}
    assert spc["zeros"] > 0.2 and abs(spc["circular"]) < 0.05, spc


def test_the_command_line_writes_a_report(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    out = probe.main(["torchvision:resnet18", "--weights", "none", "--images", str(folder), "--kernel", "1",
                      "--out", str(tmp_path / "r")])
    assert {p.name for p in out.iterdir()} == {"position.csv", "position.json", "position.png", "summary.md"}
    with pytest.raises(RuntimeError, match="--weights FILE"):
        probe.from_torchvision("resnet18", weights="DEFAULT")  # offline: no download


def test_a_bad_model_spec_or_bundled_name_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="torchvision:NAME, timm:NAME, bundled:NAME"):
        probe.check_spec("resnet50")
    with pytest.raises(ValueError, match="bundled: mobilenet_v2, efficientnet_lite0, vgg16"):
        probe.check_spec("bundled:resnet50")
    probe.check_spec("bundled:efficientnet_lite0")
