"""Executed notebooks made into clean book pages: code behind a toggle, papermill's injected cell removed.

Source notebooks tag every code cell but the ``parameters`` cell ``hide-input`` (myst-nb shows the
output and folds the code); papermill adds an ``injected-parameters`` cell that repeats the
parameters, which ``tidy`` tags ``remove-cell`` after execution.
"""

from __future__ import annotations

from pathlib import Path

import nbformat


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


def tidy(path: str | Path) -> int:
    """Tag papermill's injected-parameters cell of an executed notebook ``remove-cell``."""
    nb = nbformat.read(path, as_version=4)
    n = sum(_tag(c, "remove-cell") for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    if n:
        nbformat.write(nb, path)
    return n


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:]:
        tidy(arg)
