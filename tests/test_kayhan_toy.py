"""Kayhan & van Gemert's red-green toy: the data, the network's padding modes, a short training run."""

import pytest
import torch

from poslib import kayhan_toy as toy


def box_rows(images: torch.Tensor, channel: int) -> torch.Tensor:
    """Top row of the box in ``channel`` per image."""
    rows = images[:, channel].amax(-1)  # (N, 32)
    return rows.float().argmax(-1)


def test_classes_are_told_by_the_box_order_and_in_training_also_by_their_height():
    x, y = toy.boxes(40, seed=0)
    assert x.shape == (40, 3, 32, 32) and (y == torch.arange(40) % 2).all()
    left_red = x[:, 0].amax(1).float().argmax(-1) < x[:, 1].amax(1).float().argmax(-1)  # leftmost column per colour
    assert (left_red == (y == 0)).all()
    top = box_rows(x, 0)
    assert (top[y == 0] < 12).all() and (top[y == 1] > 17).all()
    moved, _ = toy.boxes(40, seed=0, dissimilar=True)
    assert (box_rows(moved, 0) - top == torch.where(y == 0, 16, -16)).all()  # same boxes, the other class's height


def test_full_convolution_with_global_pooling_ignores_where_the_content_is():
    """A box in the corner and the same box moved by the network's total stride (8 px): full
    convolution pools the same features; same-padding zeros and full convolution cropped back to
    the same-padding size, as our saliency networks' taps are, do not."""
    corner = torch.zeros(1, 3, 32, 32)
    corner[0, 0, 0:4, 0:4] = 1
    moved = torch.roll(corner, shifts=(8, 8), dims=(-2, -1))
    pooled = {}
    for mode in ("full", "zeros", "full_cropped"):
        net = toy.ToyNet(mode, seed=0)
        feats = []
        for img in (corner, moved):
            x = img
            side = 32
            for conv in net.convs:
                x = torch.relu(conv(x))
                side = (side - 1) // conv.stride[0] + 1
            if mode == "full_cropped":
                x = toy.crop_centre(x, (side, side))
            feats.append(x.amax(dim=(-2, -1)))
        pooled[mode] = (feats[0] - feats[1]).abs().max().item() / feats[0].abs().max().item()
    assert pooled["full"] < 1e-5
    assert pooled["zeros"] > 1e-3 and pooled["full_cropped"] > 1e-3


def test_a_short_run_reports_every_mode_and_same_padding_learns_the_similar_set():
    config = toy.ToyConfig(train=400, val=100, test=100, epochs=8, patience=2, batch=40)
    runs, summary = toy.run(["zeros", "full_cropped"], seeds=[0, 1], config=config, progress=False)
    assert len(runs) == 4 and set(summary.test_set) == {"similar", "dissimilar"}
    assert (summary.n_seeds == 2).all() and summary.accuracy_sd.notna().all()
    assert runs[runs.padding_mode == "zeros"].similar.mean() > 0.75  # learnt, by whatever cue
    single = toy.run(["zeros"], seeds=[0], config=toy.ToyConfig(train=40, val=20, test=20, epochs=1, batch=20),
                     progress=False)[1]
    assert single.accuracy_sd.isna().all()  # one seed: no spread
    with pytest.raises(ValueError, match="unknown padding mode"):
        toy.ToyNet("reflect")
