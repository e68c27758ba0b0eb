"""Progress bars that suit a terminal and a log file alike, for the plugins and the reference methods.

tqdm redraws up to ten times a second, and in a log file (nohup, SLURM) each redraw is one more
line. Its TQDM_MININTERVAL setting is read once, when tqdm is imported, so setting it from a
running program does nothing. Every bar is therefore made here: where stderr is not a terminal it
redraws once a minute, or every TQDM_MININTERVAL seconds when that is set (read at each call).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

LOG_INTERVAL_S = 60.0


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar over ``iterable`` (tqdm's keywords), slowed down when it writes into a file."""
    if not sys.stderr.isatty():
        interval = float(os.environ.get("TQDM_MININTERVAL", LOG_INTERVAL_S))
        kwargs.setdefault("mininterval", interval)
        kwargs.setdefault("maxinterval", max(interval, 10.0))  # tqdm's monitor redraws after maxinterval
    return tqdm(iterable, **kwargs)
