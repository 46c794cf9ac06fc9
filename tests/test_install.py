"""Installing poslib into an environment that already has its dependencies (Colab, a lab's
JupyterLab) keeps them: pyproject declares ranges, and pip replaces nothing that satisfies them."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dependencies_are_ranges_not_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    pinned = [d for d in specs if "==" in d]
    assert not pinned, f"exact pins belong in constraints.txt, not pyproject: {pinned}"


def test_installing_into_a_satisfied_environment_replaces_nothing(tmp_path):
    """README's one-line install, dry-run here: only poslib itself would be installed (torch stays)."""
    report = tmp_path / "report.json"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", "--quiet",
                          "--report", str(report), "-e", f"{ROOT}[book]"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    would_install = [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]]
    assert would_install == ["poslib"], would_install
