"""Measure in a fresh interpreter: torch fixes its CPU capability (and oneDNN its ISA) when it
loads, so a native and an emulated AVX2 measurement need one process each."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from poslib.precision import EMULATE_AVX2


def in_fresh_interpreter(argv: list[str], extra_env: dict[str, str]) -> dict:
    """Run ``python *argv OUT`` with ``extra_env`` added to the environment; the script writes its
    measurements as JSON to the path OUT, which is returned parsed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "measured.json"
        subprocess.run([sys.executable, *argv, str(out)], env={**os.environ, **extra_env}, check=True)
        return json.loads(out.read_text())


def native_and_emulated_avx2(script: str, measure: Callable[[], dict], description: str) -> dict | None:
    """The command line of a benchmark that measures the same thing on both capabilities.

    Run as ``script --here OUT`` (internal), it writes ``measure()`` to OUT and returns None; run
    plainly, it runs ``measure()`` in two fresh interpreters, the CPU's native capability and an
    AVX2-only CPU emulated, and returns ``{"native": ..., "emulated_avx2": ...}``.
    """
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--here", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.here:
        Path(args.here).write_text(json.dumps(measure()))
        return None
    here = [script, "--here"]
    return {"native": in_fresh_interpreter(here, {}), "emulated_avx2": in_fresh_interpreter(here, EMULATE_AVX2)}
