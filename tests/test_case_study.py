"""Fig. 7 as a number: the content loss inside objects vs on background, from exact masks."""

import pandas as pd
import pytest
import torch

from poslib.composites import as_items, region_losses, region_sentence
from poslib.data import load_items
from poslib.profiles import get_profile
from poslib.tasks import task_data


def test_region_losses_average_inside_the_masks_and_the_border_band():
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[0, 10:20, 10:20] = 3
    labels[1, 0:8, 0:32] = 1
    loss = torch.where(labels > 0, 1.0, 0.25)
    t = region_losses(loss, labels, band=4)
    assert t.objects.tolist() == [1.0, 1.0] and t.background.tolist() == [0.25, 0.25]
    assert t.object_share[0] == pytest.approx(100 / 1024)
    edge = torch.zeros(32, 32, dtype=torch.bool)
    edge[:4], edge[-4:], edge[:, :4], edge[:, -4:] = True, True, True, True
    assert t.border[1] == pytest.approx(loss[1][edge].mean().item())


def test_composites_go_through_the_loader_unchanged():
    _, test = task_data(get_profile("smoke"))
    items = as_items(test, 3)
    assert len({i.key for i in items}) == 3 and all(test.key in i.key for i in items)
    assert torch.equal(load_items(items), test.tensors()[0][:3])  # lossless PNG, no resampling at 224


def test_region_sentence_says_which_differences_lie_beyond_the_noise():
    regions = pd.DataFrame([{"encoder": "vgg16", "comparison": "objects - background", "loss_a": 0.3, "loss_b": 0.2,
                             "difference": 0.1, "se_images": 0.01, "n_images": 64, "counts": True},
                            {"encoder": "none", "comparison": "objects - background", "loss_a": 0.2, "loss_b": 0.2,
                             "difference": 0.001, "se_images": 0.01, "n_images": 64, "counts": False}])
    s = region_sentence(regions)
    assert "vgg16: objects 0.300, background 0.200, difference +0.100 ± 0.010 over 64 composites (beyond the noise)" in s
    assert "none: objects 0.200" in s and "(within the noise)" in s


def test_the_same_places_comparison_removes_a_loss_that_depends_only_on_where_a_pixel_is():
    labels = torch.zeros(4, 32, 32, dtype=torch.long)
    for i, (top, left) in enumerate([(12, 12), (10, 14), (14, 10), (2, 2)]):
        labels[i, top:top + 8, left:left + 8] = 1  # objects near the centre, one in a corner
    ramp = torch.linspace(0, 1, 32).view(1, 1, 32).expand(4, 32, 32)  # error grows to the right, whatever the image
    raw, same = region_losses(ramp, labels), region_losses(ramp, labels, adjust=True)
    assert (raw.objects - raw.background).abs().max() > 0.05
    assert (same.objects - same.background).abs().max() < 1e-6
