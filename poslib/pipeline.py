"""What the book's workflow (``Snakefile``) needs to know about each page: what it reads and writes.

Each section notebook is one Snakemake rule that runs papermill. A page is re-run when what decides
its results changes, never because a file's modification time moved (a fresh clone's files all carry
their checkout time): the rule's ``params`` hold a digest of the notebook, the source of every
``poslib`` module it imports (directly or through other modules), the parameters and the pages it
reads, and Snakemake runs with ``--rerun-triggers params input code software-env``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LIBRARY = Path(__file__).resolve().parent

# Pages that read other pages' results (everything else depends only on its notebook, the library
# and the cached assets): the converged page sets SGD's numbers beside its own, the summary judges
# every claim, the run record lists every results file.
_SECTIONS = ["03_existence", "03b_random_weights", "04_readout_design", "05_where", "06_padding", "06b_padding_modes",
             "06c_full_conv_toy", "07_case_study", "08_tasks", "09_departures", "09b_converged"]
READS: dict[str, list[str]] = {
    "09b_converged": ["03_existence", "04_readout_design", "05_where", "06_padding"],
    "10_summary": _SECTIONS,
    "11_run_record": ["01_method", "02_data_encoders", *_SECTIONS, "10_summary", "12_probe"],
}
# Results a page writes only with some parameters (never declared as a rule's outputs).
OPTIONAL = {"flips.csv", "padding_size.csv", "precision.csv"}


def pages() -> list[str]:
    """The book's pages, in reading order (their notebooks' names)."""
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _imports(source: str, package: str = "poslib") -> set[str]:
    """The ``poslib`` modules that ``source`` imports (relative imports resolved against ``package``)."""
    out = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook cell with IPython magics: fall back to the import lines
        tree = ast.parse("\n".join(line for line in source.splitlines() if re.match(r"\s*(from|import) ", line)))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y / from . import x
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if base == "poslib" or base.startswith("poslib."):
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names)  # from poslib import x: x may be a module
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name == "poslib" or a.name.startswith("poslib."))
    return out


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return LIBRARY / "__init__.py"
    rel = Path(*parts)
    for candidate in (LIBRARY / rel.with_suffix(".py"), LIBRARY / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def sources(page: str) -> list[Path]:
    """The library files ``page`` runs: the modules its notebook imports, and theirs, transitively."""
    seen: dict[str, Path] = {}
    todo = list(_imports(_code(NOTEBOOKS / f"{page}.ipynb"))) + ["poslib"]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or name in seen:
            continue
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        todo.extend(_imports(path.read_text(), package))
    return sorted(set(seen.values()))


def has_parameter(page: str, name: str) -> bool:
    """Whether ``page``'s parameters cell defines ``name`` (papermill's own reading of it)."""
    import papermill

    return name in papermill.inspect_notebook(str(NOTEBOOKS / f"{page}.ipynb"))


def writes(page: str) -> list[str]:
    """The results files ``page`` always writes (names relative to its profile's results folder)."""
    # a path assigned to a name (effects_file = out_dir / ...) is read, not written
    found = re.findall(r'(?<!_file = )out_dir / "([A-Za-z0-9_]+\.csv)"', _code(NOTEBOOKS / f"{page}.ipynb"))
    csvs = sorted(set(found) - OPTIONAL)
    return [f for c in csvs for f in (c, c[:-4] + ".json")]


def digest(page: str, **parameters) -> str:
    """A digest of everything that decides ``page``'s results except the pages it reads (their own
    outputs are the rule's inputs): its notebook, its library files and its parameters."""
    h = hashlib.sha256()
    for path in [NOTEBOOKS / f"{page}.ipynb", *sources(page)]:
        h.update(path.relative_to(ROOT).as_posix().encode())
        h.update(path.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    return h.hexdigest()[:16]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="The book's pages as the workflow sees them.")
    ap.add_argument("page", nargs="?", help="one page: list its library files, results and upstream pages")
    args = ap.parse_args()
    for page in [args.page] if args.page else pages():
        print(f"{page}: {len(sources(page))} library files, writes {', '.join(writes(page)[::2]) or 'nothing'}"
              + (f"; reads {', '.join(READS[page])}" if page in READS else ""))
        if args.page:
            print("\n".join(f"  {p.relative_to(ROOT)}" for p in sources(page)))


if __name__ == "__main__":
    main()
