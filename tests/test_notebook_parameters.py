"""Issue 15 point 7: papermill parameters merge with the notebook's defaults.

The study notebook's own parameters cell is copied into a small notebook whose only
other cell writes the config the study would use; the README's papermill commands
(as a user types them) then inject a partial ``data`` dict, or ``-p study.lag_days 30``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from retention_study.config import STUDY_NOTEBOOK

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> tuple[Path, dict]:
    """A notebook with the study's parameters cell and a cell that dumps the config."""
    study = nbformat.read(str(STUDY_NOTEBOOK), as_version=4)
    params = next(c for c in study.cells if "parameters" in c.metadata.get("tags", []))
    dump = nbformat.v4.new_code_cell(
        "import json\nfrom retention_study.analysis import pipeline\n"
        "cfg = pipeline.config_from_parameters(name, data, study, report)\n"
        "json.dump(cfg, open(results_path, 'w'))")
    nb = nbformat.v4.new_notebook(cells=[params, dump], metadata=study.metadata)
    folder = tmp_path_factory.mktemp("params")
    path = folder / "probe.ipynb"
    nbformat.write(nb, str(path))
    return path, _run(path, folder / "defaults.json")


def _run(path: Path, out: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "papermill", str(path), str(out.with_suffix(".ipynb")),
         "-p", "results_path", str(out), *args],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def readme_papermill(option: str) -> list[str]:
    """The arguments after the notebook paths of the README's papermill command using option."""
    from test_readme_commands import readme_commands

    (argv,) = [c for c in readme_commands() if c[0].endswith("papermill") and option in c]
    return argv[3:]


def test_a_partial_data_dict_changes_one_key_and_keeps_the_notebook_defaults(probe):
    path, defaults = probe
    args = readme_papermill("-y")
    assert args[args.index("-y") + 1] == '{"data": {"on_invalid": "exclude"}}'
    cfg = _run(path, path.with_name("partial.json"), *args)
    assert cfg["data"]["on_invalid"] == "exclude"
    assert defaults["data"]["on_invalid"] == "error"
    # everything else is the notebook's default, not the package's bare default
    assert defaults["data"]["controls"] == ["plan"]
    assert defaults["data"]["observation_start"] == "2023-06-30"
    for key in ("controls", "segments", "satisfaction", "exit_reason", "observation_start"):
        assert cfg["data"][key] == defaults["data"][key], key
    assert cfg["study"] == defaults["study"]


def test_a_dotted_parameter_sets_one_key(probe):
    path, defaults = probe
    assert readme_papermill("study.lag_days")[-3:] == ["-p", "study.lag_days", "30"]
    cfg = _run(path, path.with_name("dotted.json"), *readme_papermill("study.lag_days"),
               "-p", "data.as_of", "2026-05-31")
    assert cfg["study"]["lag_days"] == 30
    assert cfg["data"]["as_of"] == "2026-05-31"
    assert {k: v for k, v in cfg["study"].items() if k != "lag_days"} == {
        k: v for k, v in defaults["study"].items() if k != "lag_days"}
    assert cfg["data"]["controls"] == defaults["data"]["controls"]
