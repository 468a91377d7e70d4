"""Issue 16 points 4, 5, 7 and 8: run folders under faults.

- run names never escape ``<out>/<name>/``;
- a run killed with kill -9 at any step leaves nothing under its name and
  ``latest`` unchanged, and the next run succeeds;
- runs of one config started together get their own folders, and ``latest`` and
  the index agree afterwards;
- a reports folder that cannot be written is exit 2 with one line;
- the same input and config give a byte-identical results.json (the real study).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from retention_study import cli, runner
from retention_study.config import STUDY_NOTEBOOK
from retention_study.runner import execute, folders, plan
from retention_study.runner import index as index_page

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_NB = ROOT / "tests" / "fixtures" / "report" / "fixture_study.ipynb"

pytestmark = pytest.mark.slow


def fixture_world(folder: Path, name: str = "demo") -> Path:
    """The runner tests' small world (tests/test_report.py) and a config for it."""
    from test_report import write_config, write_world

    return write_config(folder, name, write_world(folder / "data"))


def run_in_process(config: Path, out: Path, notebook: Path = FIXTURE_NB) -> subprocess.Popen:
    """A run in its own process group (so kill -9 reaches its kernel too)."""
    code = ("import sys; from pathlib import Path; from retention_study import runner; "
            "o = runner.run_config(Path(sys.argv[1]), out_dir=Path(sys.argv[2]), "
            "notebook=Path(sys.argv[3]), progress=False); sys.exit(o.exit_status)")
    return subprocess.Popen([sys.executable, "-c", code, str(config), str(out), str(notebook)],
                            cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def runs_under(name_dir: Path) -> list[str]:
    return sorted(p.name for p in name_dir.iterdir() if p.name != "latest"
                  and not p.name.startswith(".")) if name_dir.is_dir() else []


# --------------------------------------------------------------------------- names


def test_a_traversing_name_from_a_grid_value_stays_inside(tmp_path):
    assert folders.safe_name("..") == "none"
    assert folders.safe_name("../../x") == "x"
    for value in ("..", "../..", "/etc", "a/../../b"):
        spec = plan.RunSpec(Path("c.yaml"), grid=(("data.where.plan", value),))
        assert "/" not in spec.suffix and spec.suffix not in (".", "..")
    with pytest.raises(ValueError, match="outside"):
        folders.inside(tmp_path / "reports" / "demo", tmp_path / "reports" / "demo" / "..")


@pytest.mark.parametrize("name", ["..", ".", "../outside", "/tmp/abs"])
def test_a_traversing_run_name_writes_nothing_outside_its_folder(tmp_path, name, capsys):
    config = fixture_world(tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["name"] = name
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "nest" / "reports"
    status = cli.main(["run", str(config), "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len(err) == 1 and "name must be a plain name" in err[0]
    # Only the reports folder itself was touched, and inside it only the failed run.
    assert sorted(p.name for p in (tmp_path / "nest").iterdir()) == ["reports"]
    assert not (tmp_path / "outside").exists() and not Path("/tmp/abs").exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        [config.stem, "index.html"])
    assert (out / config.stem).is_dir() and not (out / config.stem / "latest").exists()


# --------------------------------------------------------------------------- kill -9


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, kernel_ready):
    base = tmp_path_factory.mktemp("faults")
    config = fixture_world(base)
    out = base / "reports"
    outcome = runner.run_config(config, out_dir=out, notebook=FIXTURE_NB, progress=False)
    assert outcome.ok, outcome.lines()
    return config, out, outcome.run_dir


@pytest.fixture(scope="module")
def kernel_ready():
    """The project kernel, registered as `make setup` does when missing."""
    if not execute.kernel_installed("retention-study"):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", sys.prefix,
                        "--name", "retention-study"], check=True, capture_output=True)


# Files that appear in the staging folder as a run goes: kill when each shows up.
STEPS = ["run.log", "manifest.json", "report.ipynb", "report.html"]


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_any_step_leaves_no_half_report(first_run, step):
    config, out, good = first_run
    name_dir = out / "demo"
    before = runs_under(name_dir)
    proc = run_in_process(config, out)
    staging = out / folders.STAGING_DIR
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if any((d / step).exists() for d in staging.glob("demo-*")):
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    after = runs_under(name_dir)
    if after == before:  # killed before the end: nothing new, latest unchanged
        assert folders.resolve_latest(name_dir) == good
    else:  # it had already finished: then it is whole, and latest shows it
        (new,) = set(after) - set(before)
        assert json.loads((name_dir / new / "manifest.json").read_text())["status"] == "ok"
        assert (name_dir / new / "report.html").is_file()


def test_the_next_run_after_kills_succeeds_and_cleans_up(first_run):
    config, out, good = first_run
    outcome = runner.run_config(config, out_dir=out, notebook=FIXTURE_NB, progress=False)
    assert outcome.ok, outcome.lines()
    assert folders.resolve_latest(out / "demo") == outcome.run_dir
    # staging folders of killed runs are removed; the index lists only whole runs
    assert [p for p in (out / folders.STAGING_DIR).iterdir() if p.is_dir()] == []
    listed = {r["dir"] for r in index_page.collect_runs(out)}
    assert all(not d.startswith(".") for d in listed)


# --------------------------------------------------------------------------- together


def test_two_runs_started_together_get_separate_folders_and_one_latest(tmp_path, kernel_ready):
    config = fixture_world(tmp_path)
    out = tmp_path / "reports"
    procs = [run_in_process(config, out) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    runs = runs_under(out / "demo")
    assert len(runs) == 2, runs
    manifests = {r: json.loads((out / "demo" / r / "manifest.json").read_text()) for r in runs}
    assert all(m["status"] == "ok" for m in manifests.values())
    newest = max(runs, key=lambda r: (manifests[r]["started"], len(r), r))
    assert folders.resolve_latest(out / "demo").name == newest
    index = (out / "index.html").read_text()
    assert all(f"demo/{r}" in index for r in runs)
    assert index.count("(latest)") == 1


# --------------------------------------------------------------------------- read-only


def test_a_reports_folder_that_is_a_file_is_exit_2_with_one_line(tmp_path, capsys):
    config = fixture_world(tmp_path)
    (tmp_path / "taken").write_text("a file, not a folder")
    status = cli.main(["run", str(config), "--out", str(tmp_path / "taken" / "reports")])
    err = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len(err) == 1 and "cannot write reports there" in err[0], err


def test_a_read_only_reports_folder_is_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    config = fixture_world(tmp_path)
    out = tmp_path / "reports"
    out.mkdir()
    out.chmod(0o555)
    if os.access(out, os.W_OK):  # root ignores permissions: a read-only file system then
        real_mkdir = Path.mkdir

        def read_only(self, *args, **kwargs):
            if self == out or out in self.parents:
                raise OSError(30, "Read-only file system")
            return real_mkdir(self, *args, **kwargs)
        monkeypatch.setattr(Path, "mkdir", read_only)
    try:
        status = cli.main(["run", str(config), "--out", str(out)])
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len(err) == 1 and f"{out}: cannot write reports there" in err[0], err
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- determinism


def test_same_input_and_config_give_byte_identical_results(tmp_path, kernel_ready):
    from retention_study.data.simulate import write_simulation

    sample = tmp_path / "sample"
    write_simulation(sample, n_customers=800, seed=11, preset="contact", fmt="csv")
    cfg = {"name": "twice",
           "data": {"customers": str(sample / "customers.csv"),
                    "price_events": str(sample / "price_events.csv"),
                    "contact_events": str(sample / "contact_events.csv"),
                    "as_of": "2026-06-30", "controls": ["plan"], "segments": ["plan"],
                    "exit_reason": "exit_reason", "satisfaction": "satisfaction"},
           "study": {"bootstrap": 20, "cv_folds": 3}}
    config = tmp_path / "twice.yaml"
    config.write_text(yaml.safe_dump(cfg))
    outcomes = [runner.run_config(config, out_dir=tmp_path / "reports",
                                  notebook=STUDY_NOTEBOOK, progress=False) for _ in range(2)]
    assert all(o.ok for o in outcomes), [o.lines() for o in outcomes]
    first, second = ((o.run_dir / "results.json").read_bytes() for o in outcomes)
    assert first == second
    # what does differ between the runs lives in the manifests
    manifests = [json.loads((o.run_dir / "manifest.json").read_text()) for o in outcomes]
    assert manifests[0]["started"] != manifests[1]["started"] or \
        outcomes[0].run_dir != outcomes[1].run_dir
    assert "steps" in manifests[0] and "total" in manifests[0]["steps"]
