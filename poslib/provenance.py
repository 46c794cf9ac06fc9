"""How a table or figure was made: a one-line note under it in the book.

The note names the source notebook, the parameters of this run that differ from the notebook's
defaults, the profile, the seeds and the number of images (from the results file's settings), the
wall time of the page so far, the commit, and links to the results files that hold the numbers.
The book copies ``results/`` and ``notebooks/`` into its HTML (``book/_extra``; the notebooks as
``source-notebooks/``, since jupyter-book's exclusion of every notebook outside the table of
contents also matches their own names), so the links work offline from ``book/sections/<name>.html``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import papermill as pm
from IPython.display import Markdown

ROOT = Path(__file__).resolve().parents[1]
PAGE_TO_ROOT = "../../"  # from book/sections/<page>.html to the root of the built book
NOTE_PREFIX = "*How this was made:*"  # tests find the notes by it


CODE_PATHS = ("poslib", "notebooks", "pyproject.toml", "constraints.txt")  # what decides the numbers; results/ and book/ are its output


def commit(root: Path = ROOT) -> str:
    """The short commit of the working tree, marked ``+changes`` when its code (``CODE_PATHS``) has
    uncommitted edits. Results and executed pages written by the run itself do not count, so every
    page of one ``make book`` names the commit that made it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS))
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+changes" if dirty else "")


def changed_parameters(notebook: str | Path, values: Mapping[str, object]) -> dict:
    """The parameters whose value in ``values`` differs from the notebook's parameters cell."""
    out = {}
    for name, p in pm.inspect_notebook(str(notebook)).items():
        if name not in values:
            continue
        try:
            default = eval(p["default"], {}, {})  # the cell's literal (a string, number, list or None)
        except Exception:
            default = p["default"]
        if values[name] != default:
            out[name] = values[name]
    return out


def _link(path: Path, results_root: Path) -> str:
    """A link from a book page to ``path``, a file under the results folder (the book's ``results/``)."""
    try:
        rel = path.resolve().relative_to(results_root.resolve()).as_posix()
    except ValueError:  # not under the results folder: name it, no link
        return f"`{path}`"
    return f"[{path.name}]({PAGE_TO_ROOT}results/{rel})"


def _facts(csv_path: Path) -> list[str]:
    """Seeds and image counts recorded in a results file's settings, where it records them."""
    meta = csv_path.with_suffix(".json")
    if not meta.exists():
        return []
    settings = json.loads(meta.read_text()).get("settings", {})
    facts = []
    seeds = settings.get("seeds")
    if isinstance(seeds, list):
        facts.append(f"seeds {', '.join(map(str, seeds))}")
    elif isinstance(seeds, int):
        facts.append(f"{seeds} seeds")
    steps = settings.get("steps")  # a page that sets its own read-out budget states it
    budget = (settings.get("profile") or {}).get("readout_steps") if isinstance(settings.get("profile"), Mapping) else None
    if isinstance(steps, int):
        facts.append(f"{steps} SGD steps per read-out")
    elif isinstance(budget, int):
        facts.append(f"{budget} SGD steps per read-out (the profile's budget)")
    data = settings.get("data")
    if isinstance(data, Mapping):
        if isinstance(data.get("train_photos"), int):
            facts.append(f"{data['train_photos']} training photos ({data.get('train_inputs', '?')} inputs)")
        tests = {k[2:]: v for k, v in data.items() if k.startswith("n_") and isinstance(v, int)}
        if tests:
            facts.append("test images: " + ", ".join(f"{v} {k}" for k, v in tests.items()))
    return facts


class Page:
    """The provenance of one executed page: create it after the parameters are checked."""

    def __init__(self, notebook: str, values: Mapping[str, object], *, profile: str, results_dir: str | Path) -> None:
        self.results_root = Path(results_dir)  # the book copies this folder to its results/
        self.source = ROOT / "notebooks" / notebook
        if not self.source.exists():
            raise ValueError(f"no notebook {self.source}")
        self.changed = changed_parameters(self.source, values)
        self.profile = profile
        self.commit = commit()
        self.started = time.perf_counter()

    def note(self, *files: str | Path) -> Markdown:
        """The one-line note for a table or figure whose numbers are in ``files`` (CSV; the JSON
        beside each is linked too)."""
        paths = [Path(f) for f in files]
        changed = ", ".join(f"{k}={v!r}" for k, v in self.changed.items()) or "none"
        facts: list[str] = []
        for p in paths:
            facts += [f for f in _facts(p) if f not in facts]
        links = " ".join(f"{_link(p, self.results_root)} ({_link(p.with_suffix('.json'), self.results_root)})"
                         for p in paths)
        minutes = (time.perf_counter() - self.started) / 60
        parts = [f"made by [{self.source.name}]({PAGE_TO_ROOT}source-notebooks/{self.source.name})",
                 f"profile `{self.profile}`", f"parameters changed: {changed}", *facts,
                 f"page time so far {minutes:.1f} min", f"commit `{self.commit}`"]
        if links:
            parts.append(f"numbers: {links}")
        return Markdown(f"{NOTE_PREFIX} " + "; ".join(parts) + ".")
