"""The project installs from its own files: pyproject and environment.yml agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells a few packages differently from PyPI.
CONDA_TO_PYPI = {"python-duckdb": "duckdb"}
CONDA_ONLY = {"python", "pip"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    return dict(_split(r) for r in reqs)


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"unexpected entry in environment.yml: {dep!r}"
        name, spec = _split(dep)
        if name not in CONDA_ONLY:
            out[CONDA_TO_PYPI.get(name, name)] = spec
    return out


def test_environment_yml_matches_pyproject():
    py, env = _pyproject(), _environment()
    assert sorted(set(py) - set(env)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(env) - set(py)) == [], "in environment.yml but not pyproject.toml"
    differ = {k: (py[k], env[k]) for k in py if py[k] != env[k]}
    assert differ == {}, f"version specifiers differ (pyproject, environment.yml): {differ}"


def test_pandas_capped_below_3_for_lifelines():
    assert "<3" in _pyproject()["pandas"]


def test_no_scrapbook():
    assert "scrapbook" not in _pyproject()


def test_console_script_installed():
    import shutil
    import sys

    script = Path(sys.executable).parent / "retention-study"
    assert script.exists() or shutil.which("retention-study")


def test_ci_runs_make_test():
    text = (ROOT / ".ci" / "run").read_text()
    assert "make test" in text and "set -e" in text
