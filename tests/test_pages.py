"""Clean pages: progress bars that reached an executed notebook are dropped, everything else kept."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from poslib.pages import tidy


def test_tidy_drops_progress_bars_and_keeps_other_output(tmp_path):
    cell = new_code_cell("run()", outputs=[
        new_output("stream", name="stderr", text="\rtrain 3 read-outs:   0%|          | 0/15 [00:00<?, ?epoch/s]"),
        new_output("stream", name="stdout", text="features 40%|####  | 4/10\nsaved table1.csv\n"),
        new_output("display_data", data={"text/plain": "composites (train):   0%|          | 0/640",
                                         "application/vnd.jupyter.widget-view+json": {"model_id": "x"}}),
        new_output("execute_result", data={"text/plain": "0.5"}, execution_count=1)])
    path = tmp_path / "page.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    assert tidy(path) == 3
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [o.output_type for o in outputs] == ["stream", "execute_result"]
    assert outputs[0].text == "saved table1.csv\n"
    assert tidy(path) == 0  # idempotent
