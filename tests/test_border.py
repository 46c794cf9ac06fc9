"""Distance to the border and the crop shift, on small maps whose answers are known by hand."""

import pytest
import torch

from poslib.border import border_distance, centre_of_mass, corner_crops, crop_shift, error_by_distance


def test_border_distance_counts_pixels_to_the_nearest_edge():
    d = border_distance(5, 6)
    assert d[0].tolist() == [0] * 6 and d[:, 0].tolist() == [0] * 5
    assert d[2].tolist() == [0, 1, 2, 2, 1, 0]


def test_error_by_distance_puts_a_border_error_in_the_first_band():
    err = torch.zeros(3, 16, 16)
    err[:, 0, :] = 1.0  # the top row only
    table = error_by_distance(err, band=4)
    assert table.distance.tolist() == [0, 4]
    assert table.error_mean[0] == pytest.approx(16 / (16 * 16 - 8 * 8)) and table.error_mean[1] == 0
    with pytest.raises(ValueError, match="band"):
        error_by_distance(err, band=0)


def test_centre_of_mass_of_a_single_pixel_is_that_pixel():
    m = torch.zeros(1, 9, 7)
    m[0, 2, 5] = 3.0
    assert centre_of_mass(m)[0].tolist() == [2.0, 5.0]


def test_corner_crops_keep_the_whole_object_in_view():
    masks = torch.zeros(2, 10, 10)
    masks[0, 1:3, 1:3] = 1  # top left: only the top-left crop of 6 holds it
    crops = corner_crops(masks, 6)  # image 1 has no object: no crop
    assert crops == [(0, 0, 0)]


def test_crop_shift_is_zero_for_a_content_only_map_and_positive_towards_the_centre():
    full = torch.zeros(1, 10, 10)
    full[0, 1, 1] = 1.0
    crops = [(0, 0, 0)]
    same = crop_shift(full, [full[0, :6, :6]], crops)
    assert same["shift"][0] == pytest.approx(0.0) and same.distance[0] == pytest.approx(2 ** 0.5 * 1.5)
    moved = torch.zeros(6, 6)
    moved[2, 2] = 1.0  # one pixel down and right: towards the crop's centre (2.5, 2.5)
    assert crop_shift(full, [moved], crops)["shift"][0] == pytest.approx(2 ** 0.5)


def test_mirror_asymmetry_is_zero_for_symmetric_maps_and_positive_for_a_ramp():
    from poslib.border import mirror_asymmetry

    sym = torch.tensor([[1.0, 2.0, 1.0]] * 3)[None]
    ramp = torch.arange(4.0).repeat(4, 1)[None]
    assert mirror_asymmetry(sym, -1) == 0.0
    assert mirror_asymmetry(ramp, -1) == pytest.approx(8 / 4)  # |f - flip f| sums to 2*(3+1)*4; |f - mean| to 4*4
    assert mirror_asymmetry(ramp, -2) == 0.0  # every row is the same
