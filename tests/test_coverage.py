"""Every report says what it covers (issue 15, point 1): header, results.json, index."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pandas as pd

from retention_study import __version__
from retention_study.analysis.coverage import run_coverage, source_kind
from retention_study.analysis.results import Results
from retention_study.present import narrative
from retention_study.runner import index as index_page


def _cfg(tmp_path, **data):
    return {"name": "acme-basic", "data": {"format": "events", "as_of": "2026-06-30",
                                           "observation_start": "2023-06-30",
                                           "customers": str(tmp_path / "customers.csv"),
                                           "where": {"plan": "basic"}, **data},
            "study": {"lag_days": 30}}


def _data():
    return SimpleNamespace(format="events", customers=pd.DataFrame(
        {"start_date": pd.to_datetime(["2020-01-05", "2024-02-01"])}))


def test_coverage_record_holds_every_header_fact(tmp_path):
    timeline = SimpleNamespace(n_customers=1234, n_departures=321)
    c = run_coverage(_cfg(tmp_path), _data(), timeline, today=dt.date(2026, 7, 1))
    assert c == {"label": "acme-basic", "source": "real", "files": ["customers.csv"],
                 "format": "events", "as_of": "2026-06-30", "window_start": "2023-06-30",
                 "window_end": "2026-06-30", "customers": 1234, "departures": 321,
                 "segment": {"plan": "basic"}, "lag_days": 30, "engine": "pandas",
                 "package_version": __version__, "run_date": "2026-07-01"}


def test_simulated_data_is_recognised_by_its_truth_file(tmp_path):
    cfg = _cfg(tmp_path)["data"]
    assert source_kind(cfg) == "real"
    (tmp_path / "truth.json").write_text("{}")
    assert source_kind(cfg) == "simulated"
    assert source_kind({**cfg, "source": "real"}) == "real"  # a config key wins


def test_engine_comes_from_the_config_when_present(tmp_path):
    cfg = _cfg(tmp_path, observation_start=None)
    cfg["study"]["engine"] = "duckdb"
    c = run_coverage(cfg, _data(), SimpleNamespace(n_customers=1, n_departures=0))
    assert c["engine"] == "duckdb"
    assert c["window_start"] == "2020-01-05"  # no observation start: the first joiner


def test_header_reads_out_the_record(tmp_path):
    c = run_coverage(_cfg(tmp_path), _data(), SimpleNamespace(n_customers=1234,
                                                              n_departures=321))
    text = narrative.report_header(Results.from_dict({"coverage": c}))
    for fact in ("acme-basic (real data)", "as of** 2026-06-30",
                 "observed** 2023-06-30 to 2026-06-30", "**1,234** customers",
                 "**321** departures", "plan = basic", "30 days", "Engine pandas",
                 f"retention-study {__version__}", f"run on {c['run_date']}"):
        assert fact in text, fact


def test_index_shows_the_coverage(tmp_path):
    run = tmp_path / "acme" / "20260701T000000Z"
    run.mkdir(parents=True)
    coverage = {"label": "acme", "source": "simulated", "window_start": "2023-06-30",
                "window_end": "2026-06-30", "customers": 2953, "departures": 1157,
                "segment": {}, "lag_days": 0, "engine": "pandas", "package_version": "0.1.0",
                "run_date": "2026-07-01"}
    (run / "results.json").write_text(json.dumps({"coverage": coverage}))
    assert Results.read(run / "results.json").coverage == coverage
    (run / "manifest.json").write_text(json.dumps({
        "name": "acme", "status": "ok", "started": "2026-07-01T00:00:00+00:00",
        "coverage": coverage, "parameters": {"data": {"as_of": "2026-06-30"}}}))
    page = index_page.write_index(tmp_path).read_text()
    assert "acme (simulated)" in page and "2,953 customers, 1,157 departures" in page
    assert "observed 2023-06-30 to 2026-06-30" in page and "run 2026-07-01" in page
