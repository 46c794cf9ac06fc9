"""Measure in a fresh interpreter: torch fixes its CPU capability (and oneDNN its ISA) when it
loads, so a native and an emulated AVX2 measurement need one process each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def in_fresh_interpreter(argv: list[str], extra_env: dict[str, str]) -> dict:
    """Run ``python *argv OUT`` with ``extra_env`` added to the environment; the script writes its
    measurements as JSON to the path OUT, which is returned parsed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "measured.json"
        subprocess.run([sys.executable, *argv, str(out)], env={**os.environ, **extra_env}, check=True)
        return json.loads(out.read_text())
