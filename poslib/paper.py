"""The paper's published numbers (Islam, Jia & Bruce, ICLR 2020), typed in once, to stand beside ours.

Every value is (SPC, MAE) as printed in the paper. The paper's test photos are PASCAL-S; ours are
the offline pool's test split ("photos"). Its stripe (HS, VS) MAEs fit targets in [-1, 1], not the
[0, 1] maps the code releases (see the Method section), so HS/VS MAEs are not comparable.
"""

from __future__ import annotations

import pandas as pd

TEST_SETS = ("photos", "black", "white", "noise")  # the paper's PASCAL-S | Black | White | Noise

# Table 1: one 3x3 read-out layer, no padding. model -> pattern -> four (SPC, MAE) cells.
TABLE1 = {
    "none": {"H": [(.012, .251), (.0, .251), (.0, .251), (.001, .251)],
             "V": [(.131, .248), (.0, .251), (.0, .251), (.053, .250)],
             "G": [(-.001, .233), (.0, .186), (.0, .186), (-.034, .214)],
             "HS": [(-.001, .712), (-.055, .704), (.0, .704), (.023, .710)],
             "VS": [(.006, .723), (.081, .709), (.081, .709), (.018, .714)]},
    "vgg16": {"H": [(.742, .149), (.751, .164), (.873, .157), (.591, .173)],
              "V": [(.816, .129), (.846, .146), (.927, .138), (.771, .150)],
              "G": [(.814, .109), (.842, .123), (.898, .116), (.762, .129)],
              "HS": [(.405, .556), (.532, .583), (.576, .574), (.375, .573)],
              "VS": [(.374, .567), (.538, .575), (.437, .578), (.526, .566)]},
    "resnet152": {"H": [(.933, .084), (.987, .080), (.994, .078), (.973, .077)],
                  "V": [(.951, .083), (.978, .069), (.979, .072), (.968, .074)],
                  "G": [(.936, .070), (.953, .068), (.964, .064), (.971, .055)],
                  "HS": [(.534, .528), (.566, .518), (.562, .515), (.471, .530)],
                  "VS": [(.520, .537), (.574, .523), (.593, .514), (.523, .545)]},
}

# Table 2 (PASCAL-S): (model, pattern, layers, kernel) -> (SPC, MAE).
TABLE2 = {}
for _pattern, _rows in {
    "H": {(1, 3): [(.012, .251), (.742, .149)], (2, 3): [(.056, .250), (.797, .128)], (3, 3): [(.055, .250), (.830, .117)],
          (1, 1): [(.013, .251), (.542, .196)], (1, 7): [(.060, .250), (.828, .120)]},
    "G": {(1, 3): [(-.001, .233), (.814, .109)], (2, 3): [(.067, .187), (.828, .105)], (3, 3): [(.126, .186), (.835, .104)],
          (1, 1): [(.017, .188), (.724, .127)], (1, 7): [(.068, .187), (.816, .111)]},
    "HS": {(1, 3): [(-.001, .712), (.405, .556)], (2, 3): [(-.006, .628), (.483, .538)], (3, 3): [(.003, .628), (.491, .540)],
           (1, 1): [(-.004, .628), (.317, .576)], (1, 7): [(.002, .628), (.487, .532)]},
}.items():
    for (_layers, _kernel), (_pos, _vgg) in _rows.items():
        TABLE2[("none", _pattern, _layers, _kernel)] = _pos
        TABLE2[("vgg16", _pattern, _layers, _kernel)] = _vgg

# Table 3 (VGG16, PASCAL-S): (pattern, taps) -> (SPC, MAE); taps "f1".."f5" or "all".
TABLE3 = {("H", t): v for t, v in zip(("f1", "f2", "f3", "f4", "f5", "all"),
                                       [(.101, .249), (.344, .225), (.472, .203), (.610, .181), (.657, .177), (.742, .149)])}
TABLE3 |= {("G", t): v for t, v in zip(("f1", "f2", "f3", "f4", "f5", "all"),
                                        [(.241, .182), (.404, .168), (.588, .146), (.653, .138), (.693, .135), (.814, .109)])}

# Table 4 (PASCAL-S): (model, read-out padding, pattern) -> (SPC, MAE).
TABLE4 = {}
for _model, _pad, _cells in [("none", 0, [(.012, .251), (-.001, .233), (-.001, .712)]),
                             ("none", 1, [(.274, .239), (.205, .184), (.148, .608)]),
                             ("none", 2, [(.397, .223), (.380, .177), (.214, .595)]),
                             ("vgg16", 0, [(.742, .149), (.814, .109), (.405, .556)]),
                             ("vgg16_nopad", 0, [(.381, .223), (.359, .174), (.011, .628)])]:
    for _p, _v in zip(("H", "G", "HS"), _cells):
        TABLE4[(_model, _pad, _p)] = _v


def attach_paper(table: pd.DataFrame, lookup) -> pd.DataFrame:
    """Add ``paper_spc`` and ``paper_mae`` columns from ``lookup(row) -> (spc, mae) | None``."""
    pairs = [lookup(row) for row in table.itertuples()]
    out = table.copy()
    out["paper_spc"] = [p[0] if p else None for p in pairs]
    out["paper_mae"] = [p[1] if p else None for p in pairs]
    return out

# Table 5: task networks trained from scratch with and without zero padding.
# (a) saliency: (F-measure, MAE) on ECSSD, PASCAL-S, DUT-OMRON; (b) VOC 2012 segmentation mIoU.
SALIENCY_SETS = ("ECSSD", "PASCAL-S", "DUT-OMRON")
TABLE5_SALIENCY = {"no padding": [(.36, .48), (.32, .48), (.25, .48)],
                   "zero padding": [(.78, .17), (.66, .21), (.63, .18)]}
TABLE5_MIOU = {"no padding": .123, "zero padding": .231}

# Table 6: read-outs (H, G, HS; one 3x3 layer) from VGG16 trained for saliency (VGG-SOD) or
# segmentation (VGG-SS); (model, pattern) -> four (SPC, MAE) cells (PASCAL-S | Black | White | Noise).
# The paper's Table 6 prints the ImageNet VGG only for H; its G and HS rows are Table 1's (same setting).
TABLE6 = {("vgg16", p): TABLE1["vgg16"][p] for p in ("H", "G", "HS")}
TABLE6 |= {("vgg_sod", "H"): [(.969, .055), (.857, .099), (.938, .087), (.965, .060)],
           ("vgg_ss", "H"): [(.982, .038), (.990, .030), (.985, .032), (.985, .033)],
           ("vgg_sod", "G"): [(.948, .067), (.904, .086), (.907, .085), (.912, .077)],
           ("vgg_ss", "G"): [(.971, .055), (.984, .050), (.989, .046), (.982, .051)],
           ("vgg_sod", "HS"): [(.667, .476), (.699, .506), (.709, .482), (.668, .489)],
           ("vgg_ss", "HS"): [(.810, .430), (.802, .426), (.810, .426), (.789, .428)]}
