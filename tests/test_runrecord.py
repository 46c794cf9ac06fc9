"""The run record reads papermill's metadata and the results JSONs."""

import json

import nbformat

from poslib.runrecord import results_files, section_runs


def test_section_runs_read_papermill_metadata(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Existence\n\ntext")])
    nb.metadata["papermill"] = {"parameters": {"profile": "cpu", "seeds": 2}, "duration": 90.0,
                                "start_time": "2026-11-25T08:13:14.3+00:00", "exception": None}
    nbformat.write(nb, tmp_path / "03_existence.ipynb")
    row = section_runs(tmp_path).iloc[0]
    assert (row.title, row.profile, row.minutes, row["other parameters"]) == ("Existence", "cpu", 1.5, "seeds=2")
    assert row["start (UTC)"] == "2026-11-25 08:13" and not row.failed


def test_results_files_read_settings_and_environment(tmp_path):
    meta = {"settings": {"section": "3.3", "profile": {"name": "cpu"}, "precision": {"features": "fp32"}},
            "environment": {"cpu_capability": "AVX2", "torch_threads": 2, "cuda": None},
            "feature_cache": {"hits": 5, "computed": 1, "images_encoded": 24}}
    (tmp_path / "table1.json").write_text(json.dumps(meta))
    (tmp_path / "broken.json").write_text("{not json")
    table = results_files(tmp_path)
    assert table.file.tolist() == ["table1.csv"]
    row = table.iloc[0]
    assert (row.profile, row.features, row["cpu capability"], row["torch threads"], row.gpu) == ("cpu", "fp32", "AVX2", 2, "none")
    assert (row["feature sets cached"], row["feature sets computed"], row["images encoded"]) == (5, 1, 24)


def test_empty_folders_give_empty_tables_with_their_columns(tmp_path):
    assert section_runs(tmp_path).empty and "minutes" in section_runs(tmp_path).columns
    assert results_files(tmp_path).empty and "cpu capability" in results_files(tmp_path).columns
