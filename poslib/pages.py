"""Executed notebooks made into clean book pages: code behind a toggle, papermill's injected cell
removed, no progress bars.

Source notebooks tag every code cell but the ``parameters`` cell ``hide-input`` (myst-nb shows the
output and folds the code); papermill adds an ``injected-parameters`` cell that repeats the
parameters, which ``tidy`` tags ``remove-cell`` after execution. A progress bar that reached an
executed notebook anyway (a run without ``TQDM_DISABLE``) is dropped from its outputs by ``tidy``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .progress import BAR


def _tag(cell, tag: str) -> bool:
    tags = cell.metadata.setdefault("tags", [])
    if tag in tags:
        return False
    tags.append(tag)
    return True


def tag_source(path: str | Path) -> int:
    """Tag every code cell of a source notebook ``hide-input``, except its ``parameters`` cell."""
    nb = nbformat.read(path, as_version=4)
    n = sum(_tag(c, "hide-input") for c in nb.cells
            if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    if n:
        nbformat.write(nb, path)
    return n


def _without_bars(output) -> object | None:
    """``output`` with its progress-bar text removed; None when nothing else was in it."""
    if output.output_type == "stream":
        if not BAR.search(output.text):
            return output
        kept = [line for line in output.text.replace("\r", "\n").split("\n") if line.strip() and not BAR.search(line)]
        if not kept:
            return None
        output.text = "\n".join(kept) + "\n"
        return output
    data = output.get("data", {})
    shown = {k for k in data if k != "application/vnd.jupyter.widget-view+json"}
    if shown == {"text/plain"} and BAR.search(str(data["text/plain"])):
        return None  # a tqdm widget's text stand-in
    return output


def tidy(path: str | Path) -> int:
    """Tag papermill's injected-parameters cell of an executed notebook ``remove-cell`` and drop
    progress bars from its outputs; the number of changes."""
    nb = nbformat.read(path, as_version=4)
    n = sum(_tag(c, "remove-cell") for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        n += sum(bool(BAR.search(str(o))) for o in cell.outputs)
        cell.outputs = [o for o in (_without_bars(o) for o in cell.outputs) if o is not None]
    if n:
        nbformat.write(nb, path)
    return n


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:]:
        tidy(arg)
