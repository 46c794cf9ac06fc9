"""Progress bars: live in an interactive session, never written into a batch-executed notebook.

tqdm reads ``TQDM_DISABLE`` only for arguments a call leaves out, so a call that passes
``disable=not progress`` would draw its bar (and leave a "0%" line on the page) even in a batch run
that sets it; every bar of poslib goes through here instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from tqdm.auto import tqdm

_OFF = ("1", "true", "yes")
BAR = re.compile(r"\d+%\|")  # what every tqdm bar's text holds: "desc:  40%|####      | 4/10"


def batch_run() -> bool:
    """True where the environment asks for no progress bars (``TQDM_DISABLE=1``, as the Makefile sets)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in _OFF


def progress_bar(iterable: Iterable | None = None, *, progress: bool = True, **kwargs) -> tqdm:
    """A tqdm bar over ``iterable``, shown only when ``progress`` is true and this is not a batch run."""
    return tqdm(iterable, disable=not progress or batch_run(), **kwargs)
