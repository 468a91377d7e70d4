"""Spark (local[2]) gives the study pandas gives: episodes row for row, coefficients to 1e-8.

pyspark and Java are an optional extra (``make setup-spark``); without them these tests
skip with the reason, and fail under ``CI=true`` (.ci/run installs both), where a skip
would hide a gap. One SparkSession serves the whole test session (starting one takes
tens of seconds) and the world is tiny: the point is equality, not speed.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
from test_engines import _cfg, assert_same_timeline

from retention_study.analysis.models import BlockModels
from retention_study.engines.base import build_episodes
from retention_study.engines.relational_cox import RelationalCoxData, RelationalCoxFitter
from retention_study.engines.spark_engine import spark_available
from retention_study.episodes.timeline import build_timeline, example_data

pytestmark = pytest.mark.slow


def find_spark() -> None:
    """Skip without pyspark or Java, except under CI=true, where a skip hides a gap."""
    ok, why = spark_available()
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why} (CI=true: the Spark tests must run; .ci/run installs them)")
        pytest.skip(f"{why}; make setup-spark installs pyspark and says how to get Java")


@pytest.fixture(scope="session")
def spark():
    find_spark()
    from retention_study.engines.spark_engine import local_session

    session = local_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from retention_study.data.simulate import write_simulation

    out = tmp_path_factory.mktemp("spark_world")
    write_simulation(out, n_customers=250, seed=5, preset="contact", fmt="csv")
    return out


def _spark_timeline(spark, data, **opts):
    from retention_study.engines.spark_engine import SparkEngine

    eng = SparkEngine(spark)
    eng.register_study_data(data)
    return eng, build_episodes(eng, data, **opts)


def test_spark_episodes_of_the_hand_made_customers(spark):
    _, tl = _spark_timeline(spark, example_data())
    assert_same_timeline(build_timeline(example_data()), tl.to_timeline())


@pytest.fixture(scope="module")
def default_build(spark, tiny_world):
    """The tiny world's default episodes on Spark, built once for the tests below."""
    from retention_study.data.load import load_study_data

    data = load_study_data(_cfg(tiny_world))
    d_pandas, d_spark = copy.deepcopy(data), copy.deepcopy(data)
    ref = build_timeline(d_pandas)
    eng, tl = _spark_timeline(spark, d_spark)
    return ref, d_pandas, eng, tl, d_spark


def test_spark_episodes_and_ledger_equal_pandas(default_build):
    ref, d_pandas, _, tl, d_spark = default_build
    assert_same_timeline(ref, tl.to_timeline())
    assert d_pandas.ledger.to_dict() == d_spark.ledger.to_dict()


def test_spark_naive_lagged_episodes_equal_pandas(spark, tiny_world):
    from retention_study.data.load import load_study_data

    data = load_study_data(_cfg(tiny_world))
    opts = {"notice_guard": False, "lag_days": 30}
    ref = build_timeline(copy.deepcopy(data), **opts)
    _, tl = _spark_timeline(spark, copy.deepcopy(data), **opts)
    assert_same_timeline(ref, tl.to_timeline())


def test_spark_block_model_coefficients_equal_to_1e8(default_build):
    """Each Newton step a Spark job with beta as query parameters; only sums collected."""
    ref_tl, _, eng, tl, _ = default_build
    bm = BlockModels().fit(ref_tl)
    rd = RelationalCoxData(eng, tl.table, bm.columns["both"])
    for name in ("controls", "both"):
        ref = bm.fits[name].fitter
        fit = RelationalCoxFitter().fit(rd, bm.columns[name])
        np.testing.assert_allclose(fit.params_.to_numpy(), ref.params_.to_numpy(),
                                   rtol=0, atol=1e-8, err_msg=name)
        assert fit.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-12)


def test_spark_tests_skip_without_spark_and_fail_under_ci(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)  # no java on PATH
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="make setup-spark"):
        find_spark()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        find_spark()


def test_python_workers_run_the_study_interpreter(spark):
    """Workers use this venv's Python, not the first `python3` on PATH (it may lack pandas)."""
    import sys

    if os.environ.get("PYSPARK_PYTHON", sys.executable) != sys.executable:
        pytest.skip("PYSPARK_PYTHON names another interpreter: the user chose it")
    worker = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable)
    assert worker.collect() == [sys.executable]
