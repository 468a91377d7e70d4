"""Shared fixtures: small simulated data made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "real"
# Tests run from the repository root, as the configs' relative paths expect.
os.chdir(ROOT)


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> Path:
    """A small simulated Shape A data set (the default preset), written as CSV."""
    from retention_study.data.simulate import write_simulation

    out = tmp_path_factory.mktemp("sample")
    write_simulation(out, n_customers=1500, seed=7, preset="contact", fmt="csv")
    return out


@pytest.fixture(scope="session", autouse=True)
def every_results_json_matches_the_schema(tmp_path_factory):
    """After the session: every results.json the tests wrote validates against the shipped
    JSON Schema and reads back as :class:`~retention_study.analysis.results.Results`.

    Runs, notebooks and pipelines write results.json under the session's temporary
    folder; a file that does not validate fails the session (an error at teardown),
    naming the file and the first problem.
    """
    yield
    import json

    import jsonschema

    from retention_study.analysis.results import SCHEMA_FILE, Results, ResultsError

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    problems = []
    for path in sorted(tmp_path_factory.getbasetemp().rglob("results.json")):
        if path.parent.name.startswith(".") or path.is_symlink():
            continue
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # the tests of unreadable results.json write such files on purpose
        if not isinstance(payload, dict) or "schema_version" not in payload:
            continue  # hand-written stand-ins of an older run (read by Results.from_dict)
        error = next(iter(validator.iter_errors(payload)), None)
        if error is not None:
            problems.append(f"{path}: {'/'.join(map(str, error.path))}: {error.message[:200]}")
            continue
        try:
            Results.read(path)
        except ResultsError as exc:
            problems.append(str(exc))
    assert not problems, "results.json not matching the schema:\n" + "\n".join(problems)
