"""pandas and DuckDB give the same study: episodes row for row, coefficients to 1e-8, verdict.

The reference is the pandas builder (:mod:`retention_study.episodes.timeline`, itself checked by
hand-computed episodes in test_timeline.py) and the pandas Cox engine (checked against R in
test_survival_cox.py); the relational engine is an independent implementation in SQL.
The Spark engine runs the same checks in test_engines_spark.py.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from retention_study import engines
from retention_study.analysis.models import BlockModels
from retention_study.analysis.pipeline import fit_models
from retention_study.analysis.results import Results
from retention_study.config import resolve_config
from retention_study.data.load import load_study_data
from retention_study.data.simulate import write_simulation
from retention_study.engines.base import build_episodes
from retention_study.engines.duckdb_engine import DuckDBEngine
from retention_study.engines.relational_cox import RelationalCoxData, RelationalCoxFitter
from retention_study.engines.sql import transpile
from retention_study.episodes.timeline import build_timeline, example_data
from retention_study.errors import ConfigError
from retention_study.survival import CoxFitter

OPTIONS = [{}, {"notice_guard": False}, {"lag_days": 30},
           {"lag_days": 60, "include_price_level": True, "contact_cap_months": 12,
            "price_increase_window_days": 30}]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small simulated world (known truth) in CSV, with late entry and three controls."""
    out = tmp_path_factory.mktemp("engines_world")
    write_simulation(out, n_customers=1200, seed=11, preset="contact", fmt="csv")
    return out


def _cfg(world, **study):
    return resolve_config({
        "data": {"customers": str(world / "customers.csv"),
                 "price_events": str(world / "price_events.csv"),
                 "contact_events": str(world / "contact_events.csv"),
                 "controls": ["plan", "region", "satisfaction"],
                 "observation_start": "2023-06-30"},
        "study": {"bootstrap": 20, **study}})


def assert_same_timeline(a, b):
    """Row for row: same columns, dtypes, values (floats to 1e-13 relative), metadata."""
    ea, eb = a.episodes, b.episodes
    assert list(ea.columns) == list(eb.columns)
    assert len(ea) == len(eb)
    for col in ea.columns:
        x, y = ea[col].to_numpy(), eb[col].to_numpy()
        assert x.dtype == y.dtype, col
        if x.dtype.kind == "f":
            np.testing.assert_allclose(y, x, rtol=1e-13, atol=0, err_msg=col)
        else:
            assert (x == y).all(), col
    assert a.blocks == b.blocks
    assert a.definitions == b.definitions
    assert a.unmeasured == b.unmeasured
    pa = {k: v for k, v in a.params.items() if k != "engine"}
    pb = {k: v for k, v in b.params.items() if k != "engine"}
    assert pa == pb


def _duckdb_timeline(data, **opts):
    eng = DuckDBEngine(memory_limit="1GB")
    eng.register_study_data(data)
    return build_episodes(eng, data, **opts).to_timeline()


@pytest.mark.parametrize("opts", OPTIONS)
def test_duckdb_episodes_equal_pandas_row_for_row(world, opts):
    data = load_study_data(_cfg(world))
    d_pandas, d_duck = copy.deepcopy(data), copy.deepcopy(data)
    a = build_timeline(d_pandas, **opts)
    b = _duckdb_timeline(d_duck, **opts)
    assert_same_timeline(a, b)
    assert d_pandas.ledger.to_dict() == d_duck.ledger.to_dict()
    # late entry and exclusions are exercised, not only the easy rows
    assert (a.episodes.groupby("customer_id")["start"].min() > 0).any()
    assert any(e["reason"].startswith("no time at risk") for e in a.params["excluded"])


def test_duckdb_episodes_of_the_hand_made_customers():
    for opts in ({}, {"notice_guard": False}, {"lag_days": 30}):
        assert_same_timeline(build_timeline(example_data(), **opts),
                             _duckdb_timeline(example_data(), **opts))


def test_equality_check_sees_a_changed_price(world):
    """The comparison is not vacuous: one price in seven 50% higher changes the episodes."""
    data = load_study_data(_cfg(world))
    changed = copy.deepcopy(data)
    pe = changed.price_events
    pe["monthly_price"] = pe["monthly_price"] * np.where(np.arange(len(pe)) % 7 == 0, 1.5, 1.0)
    with pytest.raises(AssertionError):
        assert_same_timeline(build_timeline(copy.deepcopy(data)), _duckdb_timeline(changed))


def test_customers_with_unusable_rows_are_excluded_alike(world):
    """A missing control and a customer without any price leave whole, counted per reason."""
    data = load_study_data(_cfg(world))
    data.customers.loc[data.customers.index[:5], "region"] = None
    gone = data.customers["customer_id"].iloc[10]
    data.price_events = data.price_events[data.price_events["customer_id"] != gone]
    d_pandas, d_duck = copy.deepcopy(data), copy.deepcopy(data)
    a = build_timeline(d_pandas)
    b = _duckdb_timeline(d_duck)
    assert_same_timeline(a, b)
    reasons = {e["reason"]: e["rows"] for e in a.params["excluded"] if e["table"] == "customers"}
    assert reasons.get("missing value in region", 0) >= 1
    assert reasons.get("no price on record at the start of an interval", 0) == 1
    assert d_pandas.ledger.to_dict() == d_duck.ledger.to_dict()


def test_block_model_coefficients_equal_to_1e8(world):
    """The four block models fitted by SQL aggregates equal the pandas engine's fits."""
    data = load_study_data(_cfg(world))
    tl = build_timeline(copy.deepcopy(data))
    bm = BlockModels().fit(tl)
    eng = DuckDBEngine()
    d = copy.deepcopy(data)
    eng.register_study_data(d)
    etl = build_episodes(eng, d)
    rd = RelationalCoxData(eng, etl.table, bm.columns["both"])
    assert rd.grid
    for name, cols in bm.columns.items():
        if not cols:
            continue
        ref = bm.fits[name].fitter
        fit = RelationalCoxFitter().fit(rd, cols)
        np.testing.assert_allclose(fit.params_.to_numpy(), ref.params_.to_numpy(),
                                   rtol=0, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(fit.standard_errors_.to_numpy(),
                                   ref.standard_errors_.to_numpy(), rtol=1e-8, err_msg=name)
        assert fit.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-12)


def test_relational_cox_with_late_entry_and_rows_spanning_event_times():
    """Off the grid (rows at risk at several event times, late entry, ties): the running
    sums over slots; Breslow and Efron; a ridge penalty."""
    rng = np.random.default_rng(3)
    n = 800
    x = rng.normal(size=(n, 2))
    start = np.round(rng.uniform(0, 3, n), 1) * (rng.uniform(size=n) < 0.4)
    stop = start + np.round(rng.exponential(4 / np.exp(x @ [0.4, -0.3])), 1) + 0.1
    df = pd.DataFrame({"start": start, "stop": stop,
                       "event": (rng.uniform(size=n) < 0.7).astype(int),
                       "a": x[:, 0], "b": x[:, 1]})
    eng = DuckDBEngine()
    eng.register_frame("eps", df)
    rd = RelationalCoxData(eng, "eps", ["a", "b"])
    assert not rd.grid
    for ties, pen in (("efron", 0.0), ("breslow", 0.0), ("efron", 0.1)):
        ref = CoxFitter(ties=ties, penalizer=pen).fit(df, ["a", "b"])
        fit = RelationalCoxFitter(ties=ties, penalizer=pen).fit(rd, ["a", "b"])
        np.testing.assert_allclose(fit.params_, ref.params_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(fit.variance_matrix_, ref.variance_matrix_, rtol=1e-8)


def test_same_verdict_and_numbers_on_duckdb(world):
    """The study's models, cross-validation and verdict on DuckDB-built episodes."""
    results = {}
    for engine in ("pandas", "duckdb"):
        cfg = _cfg(world, engine=engine)
        data = load_study_data(cfg)
        tl = engines.timeline(data, cfg)
        assert tl.params["engine"] == engine
        step = fit_models(tl, cfg, data=data)
        results[engine] = (step.verdict.label, step.models.effects,
                           step.head_to_head.summary if step.head_to_head else None)
    (va, ea, ha), (vb, eb, hb) = results["pandas"], results["duckdb"]
    assert va == vb
    pd.testing.assert_frame_equal(ea, eb, rtol=1e-8)
    if ha is not None:
        pd.testing.assert_frame_equal(ha, hb, rtol=1e-8)


def test_engine_config_is_checked():
    with pytest.raises(ConfigError, match="study.engine duckdb builds event-log episodes"):
        resolve_config({"study": {"engine": "duckdb", "grid": "week"}})
    with pytest.raises(ConfigError, match="study.memory_limit must be a memory size"):
        resolve_config({"study": {"memory_limit": "lots"}})


def test_auto_engine_picks_duckdb_past_the_budget():
    data = example_data()
    assert engines.choose_engine(data, {"study": {"engine": "auto"}}) == "pandas"
    assert engines.choose_engine(data, {"study": {"engine": "auto",
                                                  "memory_limit": "1KB"}}) == "duckdb"


def test_memory_limit_reaches_duckdb():
    eng = DuckDBEngine(memory_limit="300MB")
    limit = eng.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "").upper() in ("286.1MIB", "300.0MB", "300MB")


def test_episode_sql_transpiles_to_spark():
    sql = transpile("SELECT ARG_MAX(p, s), UNNEST(GENERATE_SERIES(a, b)) FROM t", "spark")
    assert "MAX_BY" in sql and "EXPLODE(SEQUENCE" in sql


def test_report_header_names_the_engine_that_built_the_episodes(world, monkeypatch):
    from retention_study.analysis.coverage import run_coverage
    from retention_study.present.narrative import report_header

    monkeypatch.setattr(engines, "_budget_bytes", lambda limit: 1.0)  # auto: past the budget
    cfg = _cfg(world, engine="auto")
    data = load_study_data(cfg)
    tl = engines.timeline(data, cfg)
    coverage = run_coverage(cfg, data, tl)
    assert coverage["engine"] == "duckdb"
    assert "*Engine duckdb" in report_header(Results.from_dict({"coverage": coverage}))
