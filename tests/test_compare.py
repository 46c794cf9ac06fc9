"""Comparing a fresh results folder with a reference, cell by cell."""

import pandas as pd

from poslib.compare import compare_folders, compare_tables, main, measures


def table(spc_h: float, sd_h: float = 0.02) -> pd.DataFrame:
    return pd.DataFrame({"encoder": ["vgg16", "vgg16"], "pattern": ["H", "V"], "layers": [1, 1],
                         "spc_mean": [spc_h, 0.60], "spc_sd": [sd_h, 0.01], "paper_spc": [0.8, 0.7]})


def test_measures_are_mean_sd_pairs():
    assert measures(table(0.5)) == ["spc"]


def test_a_cell_moves_only_beyond_the_larger_seed_sd():
    cells = compare_tables(table(0.55), table(0.50))  # H moved by 0.05 > sd 0.02; V unchanged
    assert cells.set_index("setting").moved.to_dict() == {"vgg16 H 1": True, "vgg16 V 1": False}
    within = compare_tables(table(0.515), table(0.50))
    assert not within.moved.any()


def test_rows_are_matched_by_setting_not_by_order():
    shuffled = table(0.50).iloc[::-1].reset_index(drop=True)
    assert not compare_tables(shuffled, table(0.50)).moved.any()


def test_folders_and_the_command_line(tmp_path, capsys):
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    ours.mkdir(), ref.mkdir()
    table(0.7).to_csv(ours / "table1.csv", index=False)
    table(0.5).to_csv(ref / "table1.csv", index=False)
    table(0.5).to_csv(ours / "only_ours.csv", index=False)  # no reference: skipped
    cells = compare_folders(ours, ref)
    assert set(cells.file) == {"table1.csv"} and cells.moved.sum() == 1
    assert main([str(ours), "--ref", str(ref)]) == 0
    assert "1 of 2 cells moved" in capsys.readouterr().out


def test_a_missing_key_is_matched_as_a_setting():
    ours, ref = table(0.50), table(0.50)
    for t in (ours, ref):
        t["weights"] = ["imagenet", None]
    cells = compare_tables(ours, ref)
    assert len(cells) == 2 and not cells.moved.any()
