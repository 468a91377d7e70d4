"""Progress on a terminal for every long step of a run; quiet when not a terminal (issue 15, 8).

Run under a pseudo-terminal (python's pty module) as a user's shell would: the pty
reports a size of 0 x 0, which once made tqdm hide every bar.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retention_study.runner import progress

pty = pytest.importorskip("pty", reason="pseudo-terminals need a POSIX system")

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_NB = ROOT / "tests" / "fixtures" / "report" / "fixture_study.ipynb"


def _config(tmp_path: Path) -> Path:
    n = 30
    pd.DataFrame({"customer_id": [f"P-{i:03d}" for i in range(n)],
                  "tenure_months": np.arange(n) + 1,
                  "churned": (np.arange(n) % 2).astype(int)}).to_csv(tmp_path / "c.csv",
                                                                     index=False)
    for name in ("p.csv", "k.csv"):
        (tmp_path / name).write_text("customer_id\nP-000\n")
    cfg = {"name": "bars", "data": {"customers": str(tmp_path / "c.csv"),
                                    "price_events": str(tmp_path / "p.csv"),
                                    "contact_events": str(tmp_path / "k.csv")},
           "study": {"min_departures": 1}, "report": {"timeout_per_cell": 120}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "cfg.yaml"


def _script(cfg: Path, out: Path) -> list[str]:
    code = textwrap.dedent(f"""
        from pathlib import Path
        from retention_study.runner import run_many
        [o] = run_many([Path({str(cfg)!r})], out_dir=Path({str(out)!r}),
                       notebook=Path({str(FIXTURE_NB)!r}))
        print("RESULT", o.ok)
    """)
    return [sys.executable, "-c", code]


def _under_pty(argv: list[str]) -> str:
    pid, fd = pty.fork()
    if pid == 0:  # the child: a process whose stdin/stdout/stderr are the pty
        os.execv(argv[0], argv)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_a_run_on_a_terminal_shows_a_bar_for_each_long_step(tmp_path):
    out = _under_pty(_script(_config(tmp_path), tmp_path / "reports"))
    assert "RESULT True" in out, out[-2000:]
    for step in ("Checking input files", "Executing", "Rendering and checking the report"):
        assert step in out, step
    assert "100%|" in out and ("cell/s" in out or "s/cell" in out)


@pytest.mark.slow
def test_a_run_not_on_a_terminal_prints_no_bar(tmp_path):
    proc = subprocess.run(_script(_config(tmp_path), tmp_path / "reports"),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert "RESULT True" in proc.stdout, proc.stderr[-2000:]
    assert "%|" not in proc.stderr and "Executing" not in proc.stderr


def test_zero_sized_terminal_gets_a_default_size(monkeypatch):
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((0, 0)))
    assert progress.terminal_size() == (80, 20)
    options = progress.tqdm_options("x", "step")
    assert options["nrows"] == 20 and options["ncols"] == 80


def test_bars_are_silent_when_disabled(capsys):
    with progress.bar(3, "quiet", enabled=False) as b:
        b.update(3)
    assert capsys.readouterr().err == ""
    assert progress.papermill_bar(False) is False
    assert progress.papermill_bar(True)["unit"] == "cell"
