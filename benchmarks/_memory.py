"""Peak memory of a process tree, sampled in the background (shared by the benchmarks).

RSS of a process and all its descendants (a JVM, a papermill kernel) read from
/proc/<pid>/status and summed, every ``every`` seconds; the largest sum is the peak.
Not a benchmark itself: ``make bench`` runs only ``bench_*.py``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory(threading.Thread):
    """Peak of the summed RSS of a process (default: this one) and its descendants.

    ``limit_gb`` kills the whole tree once its RSS passes that many GB (``killed`` then
    says so), so that a runaway run cannot take the machine down.
    """

    def __init__(self, pid: int | None = None, every: float = 0.2,
                 limit_gb: float | None = None) -> None:
        super().__init__(daemon=True)
        self.pid = os.getpid() if pid is None else pid
        self.every, self.peak_kb = every, 0
        self.limit_kb = None if limit_gb is None else limit_gb * 1024 ** 2
        self.killed = False
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            seen, todo, total = set(), [self.pid], 0
            while todo:
                pid = todo.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                total += _rss_kb(pid)
                todo += _children(pid)
            self.peak_kb = max(self.peak_kb, total)
            if self.limit_kb is not None and total > self.limit_kb and not self.killed:
                self.killed = True
                for pid in seen - {os.getpid()}:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            self._halt.wait(self.every)

    def stop(self) -> float:
        """Stop sampling; the peak in GB."""
        self._halt.set()
        self.join()
        return self.peak_kb / 1024 ** 2
