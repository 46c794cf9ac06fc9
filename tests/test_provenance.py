"""The "how this was made" note: parameters that differ from a notebook's defaults, links into the book."""

import subprocess
from pathlib import Path

import pandas as pd

from poslib.provenance import NOTE_PREFIX, Page, changed_parameters, commit
from poslib.results import save_table

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "09_departures.ipynb"


def test_changed_parameters_are_only_those_that_differ_from_the_cell():
    values = {"profile": "smoke", "seeds": 3, "patterns": ["H", "V", "G", "HS"], "budget_factors": [1, 4]}
    assert changed_parameters(NOTEBOOK, values) == {"profile": "smoke", "budget_factors": [1, 4]}


def test_note_links_results_files_under_the_book_results_folder(tmp_path):
    results = tmp_path / "results"
    csv = save_table(pd.DataFrame({"spc": [0.5]}), results / "smoke" / "t.csv",
                     {"seeds": [0, 1], "data": {"train_photos": 24, "train_inputs": 72, "n_photos": 8}})
    page = Page("09_departures.ipynb", {"profile": "smoke", "seeds": 2}, profile="smoke", results_dir=results)
    text = page.note(csv).data
    assert text.startswith(NOTE_PREFIX)
    assert "[t.csv](../../results/smoke/t.csv)" in text and "(../../results/smoke/t.json)" in text
    assert "(../../source-notebooks/09_departures.ipynb)" in text
    assert "profile='smoke', seeds=2" in text and "seeds 0, 1" in text and "24 training photos (72 inputs)" in text
    assert f"`{commit()}`" in text


def test_note_states_the_readout_budget_of_the_profile_or_of_the_page(tmp_path):
    from poslib.profiles import get_profile

    results = tmp_path / "results"
    profile_budget = save_table(pd.DataFrame({"spc": [0.5]}), results / "a.csv", {"profile": get_profile("paper").as_dict()})
    own_budget = save_table(pd.DataFrame({"spc": [0.5]}), results / "b.csv", {"profile": get_profile("cpu").as_dict(), "steps": 378})
    page = Page("03_existence.ipynb", {}, profile="paper", results_dir=results)
    assert "4950 SGD steps per read-out (the profile's budget)" in page.note(profile_budget).data
    assert "378 SGD steps per read-out;" in page.note(own_budget).data


def test_note_names_a_file_outside_the_results_folder_without_a_link(tmp_path):
    page = Page("09_departures.ipynb", {}, profile="cpu", results_dir=tmp_path / "results")
    text = page.note(tmp_path / "elsewhere.csv").data
    assert "parameters changed: none" in text and "](../../results" not in text and "elsewhere.csv" in text


def test_commit_is_marked_changed_by_code_edits_not_by_the_results_a_run_writes(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)
    (tmp_path / "poslib").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "poslib" / "m.py").write_text("x = 1\n")
    (tmp_path / "results" / "t.csv").write_text("spc\n0.5\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    clean = commit(tmp_path)
    (tmp_path / "results" / "t.csv").write_text("spc\n0.6\n")
    assert commit(tmp_path) == clean and not clean.endswith("+changes")
    (tmp_path / "poslib" / "m.py").write_text("x = 2\n")
    assert commit(tmp_path) == clean + "+changes"
