"""Progress on a terminal for each long step of a run (tqdm); quiet when not a terminal.

tqdm sizes its bars to the terminal; a pseudo-terminal that reports a size of 0 x 0
(a freshly opened pty, some CI consoles) gives it -1 rows, and it then hides every
bar: that is how ``run --progress`` came to show nothing. Every bar here is given
the terminal's size, or 80 columns by 20 rows when the terminal reports none.

Examples
--------
>>> with bar(2, "Checking inputs", enabled=False) as b:
...     b.update(1)
>>> papermill_bar(False)
False
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

FALLBACK_COLUMNS = 80
FALLBACK_ROWS = 20


def terminal_size() -> tuple[int, int]:
    """(columns, rows) of stderr's terminal, 80 x 20 where it reports 0."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
        cols, rows = size.columns, size.lines
    except (OSError, ValueError, AttributeError):
        cols, rows = 0, 0
    return cols or FALLBACK_COLUMNS, rows or FALLBACK_ROWS


def wanted(progress: bool | None) -> bool:
    """``progress`` as asked, else whether stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


def tqdm_options(desc: str, unit: str) -> dict:
    """The options every bar of a run shares: stderr, a width, no bar left behind empty."""
    cols, rows = terminal_size()
    return {"desc": desc, "unit": unit, "ncols": min(cols, 100), "nrows": rows,
            "file": sys.stderr, "leave": True}


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str) -> None:
        pass


@contextmanager
def bar(total: int, desc: str, enabled: bool, unit: str = "step"):
    """A tqdm bar when ``enabled``, else an object that ignores updates."""
    if not enabled:
        yield _Silent()
        return
    from tqdm import tqdm

    with tqdm(total=total, **tqdm_options(desc, unit)) as b:
        yield b


def papermill_bar(enabled: bool) -> dict | bool:
    """papermill's ``progress_bar`` argument: its per-cell bar with a width, or False."""
    if not enabled:
        return False
    options = tqdm_options("Executing", "cell")
    options.pop("desc")  # papermill sets it, then names each cell's step
    return options
