"""Tests of retention_study.analysis.segments against hand computations and simulated worlds."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from lifelines import NelsonAalenFitter

from retention_study.analysis import loyalty as loyalty_module
from retention_study.analysis.customers import (
    customer_frame,
    departure_rates,
    poisson_rate,
    segment_hazard_ratios,
)
from retention_study.analysis.loyalty import (
    LoyaltyPenalty,
    loyalty_hazard_ratio,
    price_gap_snapshots,
)
from retention_study.analysis.satisfaction import (
    SatisfactionAnalysis,
    breslow_expected,
    satisfaction_segment,
)
from retention_study.analysis.segments import SegmentAnalysis, analyse_segments
from retention_study.data.schema import DAYS_PER_MONTH, StudyData
from retention_study.errors import AnalysisError
from retention_study.present.plots import plot_departure_rates, plot_loyalty

matplotlib.use("Agg")
AS_OF = pd.Timestamp("2026-06-30")
D = pd.Timestamp


# --------------------------------------------------------------------------- customer frame
def test_customer_frame_shape_a_stops_at_notice_and_enters_late():
    c = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "start_date": [D("2020-01-01"), D("2020-01-01"), D("2024-01-01"), D("2020-01-01")],
        "end_date": [D("2021-03-01"), pd.NaT, pd.NaT, D("2021-01-01")],
        "notice_date": [D("2021-01-01"), pd.NaT, pd.NaT, pd.NaT],
        "churned": [1, 0, 0, 1], "exit_reason": np.nan,
    })
    data = StudyData("events", D("2026-01-01"), customers=c,
                     observation_start=D("2022-01-01"))
    f = customer_frame(data).set_index("customer_id")
    # a and d left before the observation window: no time at risk
    assert list(f.index) == ["b", "c"]
    assert f.loc["b", "entry"] == pytest.approx((D("2022-01-01") - D("2020-01-01")).days
                                               / DAYS_PER_MONTH)
    assert f.loc["b", "duration"] == pytest.approx(2192 / DAYS_PER_MONTH)
    assert f.loc["c", "entry"] == 0.0
    no_window = customer_frame(StudyData("events", D("2026-01-01"), customers=c))
    a = no_window.set_index("customer_id").loc["a"]
    assert a["duration"] == pytest.approx(366 / DAYS_PER_MONTH) and a["event"] == 1


def test_customer_frame_shape_b_converts_days():
    t = pd.DataFrame({"customer_id": ["x", "y"], "duration_days": [DAYS_PER_MONTH * 6, 0.0],
                      "event": [1, 0], "plan": ["a", "b"]})
    f = customer_frame(StudyData("table", AS_OF, table=t))
    assert f["duration"].tolist() == pytest.approx([6.0])  # tenure 0 has no time at risk
    assert f["plan"].tolist() == ["a"]


# --------------------------------------------------------------------------- rates
def test_poisson_rate_matches_exact_table_values():
    # Garwood limits for 10 events: 4.7954 and 18.3904; for 0 events: 0 and 3.6889
    r = poisson_rate([10, 0], [100.0, 100.0])
    assert r["lower"].tolist() == pytest.approx([4.7954, 0.0], abs=1e-4)
    assert r["upper"].tolist() == pytest.approx([18.3904, 3.6889], abs=1e-4)
    assert r["rate"].tolist() == pytest.approx([10.0, 0.0])


def test_departure_rates_by_hand_with_late_entry():
    f = pd.DataFrame({"entry": [0.0, 6.0, 0.0], "duration": [12.0, 30.0, 6.0],
                      "event": [1, 1, 0], "seg": ["a", "a", "b"]})
    r = departure_rates(f, "seg").set_index("segment")
    # a: 12 + 24 months = 3 customer-years, 2 departures -> 66.7 per 100
    assert r.loc["a", "customer_years"] == pytest.approx(3.0)
    assert r.loc["a", "rate"] == pytest.approx(200 / 3)
    assert r.loc["b", "departures"] == 0 and r.loc["b", "lower"] == 0.0


def _segment_world(n=900, hr=2.0, seed=3):
    rng = np.random.default_rng(seed)
    seg = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    rate = np.where(seg == "plus", hr, 1.0) / 24.0
    t = rng.exponential(1 / rate)
    cens = rng.uniform(12, 48, n)
    return pd.DataFrame({"entry": 0.0, "duration": np.minimum(t, cens),
                         "event": (t < cens).astype(int), "plan": seg})


def test_segment_hazard_ratios_recover_known_truth():
    hrs = segment_hazard_ratios(_segment_world(), "plan").set_index("segment")
    assert hrs["reference"].iloc[0] == "basic"  # largest segment by default
    assert hrs.loc["basic", "hr"] == 1.0
    assert hrs.loc["plus", "lower"] < 2.0 < hrs.loc["plus", "upper"]
    assert hrs.loc["pro", "lower"] < 1.0 < hrs.loc["pro", "upper"]


def test_segment_analysis_joins_rates_and_hrs():
    sa = SegmentAnalysis(reference="pro").fit(_segment_world(), "plan")
    assert sa.reference == "pro"
    assert set(sa.summary.columns) >= {"rate", "lower", "hr", "hr_lower", "hr_upper"}
    assert sa.summary.loc["pro", "hr"] == 1.0
    json.dumps(sa.to_dict(), allow_nan=False)


def test_single_level_segment_is_an_analysis_error():
    f = _segment_world(n=50).assign(plan="one")
    with pytest.raises(AnalysisError, match="single level"):
        segment_hazard_ratios(f, "plan")


# --------------------------------------------------------------------------- satisfaction
def test_satisfaction_segment_boundaries_and_custom_thresholds():
    assert satisfaction_segment([2, 2.5, 4, 4.01]).tolist() == [
        "unhappy", "satisfied", "satisfied", "delighted"]
    assert satisfaction_segment([3, 7, 8, 9], thresholds=[6, 8]).tolist() == [
        "unhappy", "satisfied", "satisfied", "delighted"]
    with pytest.raises(AnalysisError):
        satisfaction_segment([1], thresholds=[4, 2])


def test_breslow_expected_by_hand_and_against_nelson_aalen():
    # late entry: b enters at 1.5, so H0(1)=1/2 (a, c at risk), H0(2)=1/2 + 1/2 (b, c)
    f = pd.DataFrame({"entry": [0.0, 1.5, 0.0], "duration": [1.0, 2.0, 3.0],
                      "event": [1, 1, 0]})
    assert breslow_expected(f, np.ones(3)).tolist() == pytest.approx([0.5, 0.5, 1.0])
    # unit risk scores: expected = Nelson-Aalen cumulative hazard at each exit (with ties)
    rng = np.random.default_rng(0)
    g = pd.DataFrame({"entry": 0.0, "duration": np.round(rng.exponential(10, 200)) + 1,
                      "event": (rng.random(200) < 0.7).astype(int)})
    naf = NelsonAalenFitter(nelson_aalen_smoothing=False).fit(g["duration"], g["event"])
    ref = naf.cumulative_hazard_at_times(g["duration"]).to_numpy()
    assert breslow_expected(g, np.ones(200)) == pytest.approx(ref)


def _satisfaction_world(excess: float, n=1500, seed=7):
    """Hazard log-linear in the score (HR 0.8 per point), times ``excess`` for 3-4."""
    rng = np.random.default_rng(seed)
    score = rng.integers(1, 6, n)
    hazard = np.exp(np.log(0.8) * (score - 3)) * np.where((score >= 3) & (score <= 4),
                                                          excess, 1.0) / 30
    t = rng.exponential(1 / hazard)
    cens = rng.uniform(6, 48, n)
    return pd.DataFrame({"entry": 0.0, "duration": np.minimum(t, cens),
                         "event": (t < cens).astype(int), "score": score})


def test_satisfied_excess_is_detected_when_present():
    sa = SatisfactionAnalysis().fit(_satisfaction_world(excess=2.0), "score")
    s = sa.summary
    assert list(s.index) == ["unhappy", "satisfied", "delighted"]
    assert s.loc["satisfied", "oe_lower"] > 1
    assert sa.satisfied_excess["lower"] > 1.3
    assert s.loc["satisfied", "hr"] == 1.0  # the reference
    # observed = expected overall under the fitted linear model (Breslow at the MLE)
    assert s["observed"].sum() == pytest.approx(s["expected"].sum(), rel=1e-3)


def test_missing_reference_segment_falls_back_to_the_largest():
    w = _satisfaction_world(excess=1.0, n=300)
    w = w[w["score"] >= 3]  # nobody unhappy
    sa = SatisfactionAnalysis(reference="unhappy").fit(w, "score")
    assert list(sa.summary.index) == ["satisfied", "delighted"]
    assert sa.summary.loc["satisfied", "hr"] == 1.0
    assert sa.to_dict()["reference"] == "satisfied"


def test_no_excess_when_hazard_is_linear_in_score():
    sa = SatisfactionAnalysis().fit(_satisfaction_world(excess=1.0), "score")
    s = sa.summary
    assert s.loc["satisfied", "oe_lower"] < 1 < s.loc["satisfied", "oe_upper"]
    assert sa.per_point["lower"] < 0.8 < sa.per_point["upper"]
    assert sa.satisfied_excess["lower"] < 1 < sa.satisfied_excess["upper"]
    json.dumps(sa.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- loyalty penalty
def _loyalty_data():
    c = pd.DataFrame({
        "customer_id": ["a", "b"], "start_date": [D("2020-01-01"), D("2023-01-01")],
        "end_date": [pd.NaT, D("2024-01-01")], "notice_date": [pd.NaT, D("2023-12-01")],
        "churned": [0, 1], "exit_reason": np.nan,
    })
    p = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b"],
        "effective_date": [D("2020-01-01"), D("2021-06-01"), D("2023-03-01"), D("2023-01-01")],
        "monthly_price": [20.0, 22.0, 25.0, 20.0],
        "new_customer_price": [20.0, 20.0, 20.0, np.nan],
    })
    return StudyData("events", D("2024-06-30"), customers=c, price_events=p)


def test_price_gap_snapshots_take_the_price_in_force():
    s = price_gap_snapshots(_loyalty_data(), step_months=12)
    # a: tenure 0, 12, 24, 36, 48 months; b has no new-customer price
    assert s["customer_id"].unique().tolist() == ["a"]
    assert s["tenure"].tolist() == [0, 12, 24, 36, 48]
    assert s["pct_above"].tolist() == pytest.approx([0, 0, 10, 10, 25])


def test_price_gap_snapshots_match_pandas_merge_asof_on_random_data():
    # The as-of join runs on packed integer keys; pandas' merge_asof by id is the
    # reference (customers in random id order, some without prices, unknown ids).
    rng = np.random.default_rng(11)
    n = 80
    start = D("2019-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    c = pd.DataFrame({"customer_id": [f"k{i}" for i in rng.permutation(n)],
                      "start_date": start, "end_date": pd.NaT, "notice_date": pd.NaT})
    m = 400
    p = pd.DataFrame({"customer_id": rng.choice(list(c.customer_id[:70]) + ["zz"], m),
                      "effective_date": D("2019-01-01")
                      + pd.to_timedelta(rng.choice(2000, m, replace=False), unit="D"),
                      "monthly_price": rng.uniform(20, 40, m).round(2),
                      "new_customer_price": np.where(rng.random(m) < 0.1, np.nan, 25.0)})
    data = StudyData("events", D("2025-06-30"), customers=c, price_events=p)
    got = price_gap_snapshots(data, step_months=3)
    snaps = loyalty_module._tenure_snapshots(c, data.as_of, 3).drop(columns="_row")
    ref = pd.merge_asof(snaps.sort_values("date"), p.sort_values("effective_date"),
                        left_on="date", right_on="effective_date", by="customer_id")
    ref = ref.dropna(subset=["monthly_price", "new_customer_price"])
    ref["pct_above"] = 100.0 * (ref["monthly_price"] / ref["new_customer_price"] - 1.0)
    ref = ref.drop(columns="effective_date").sort_values(["customer_id", "tenure"],
                                                         ignore_index=True)
    assert len(got) > 300
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def test_loyalty_table_by_band_by_hand():
    lp = LoyaltyPenalty(bands=[0, 24, np.inf], step_months=12).fit(_loyalty_data())
    t = lp.summary
    assert list(t.index) == ["0-2 years", "2+ years"]
    assert t["mean_pct_above"].tolist() == pytest.approx([0, 15])
    assert t["median_pct_above"].tolist() == pytest.approx([0, 10])
    assert t["share_paying_more"].tolist() == pytest.approx([0, 1])
    assert lp.trend == pytest.approx(15)
    json.dumps(lp.to_dict(), allow_nan=False)
    assert plot_loyalty(lp).get_xlabel() == "tenure"


def test_loyalty_needs_price_events():
    t = pd.DataFrame({"customer_id": ["x"], "duration_days": [30.0], "event": [1]})
    with pytest.raises(AnalysisError, match="price events"):
        LoyaltyPenalty().fit(StudyData("table", AS_OF, table=t))


def test_loyalty_hazard_ratio_recovers_truth_with_time_varying_penalty():
    rng = np.random.default_rng(9)
    n = 600
    # two episodes per customer: penalty 0 for 12 months, then a known penalty
    pen = np.log(rng.uniform(1.0, 1.5, n))  # the Timeline's log(price / new-customer price)
    beta = np.log(1.3) / np.log(1.1)  # HR 1.3 per 10% above the new-customer price
    t1 = rng.exponential(24, n)
    t2 = 12 + rng.exponential(24 / np.exp(beta * pen))
    first = pd.DataFrame({"customer_id": np.arange(n), "start": 0.0,
                          "stop": np.minimum(t1, 12), "event": (t1 < 12) * 1,
                          "loyalty_penalty": 0.0})
    second = pd.DataFrame({"customer_id": np.arange(n), "start": 12.0,
                           "stop": np.minimum(t2, 48), "event": (t2 < 48) * 1,
                           "loyalty_penalty": pen})[t1 >= 12]
    ep = pd.concat([first, second]).sort_values(["customer_id", "start"])
    hr = loyalty_hazard_ratio(ep)
    assert hr["label"] == "per 10% above the new-customer price"
    assert hr["lower"] < 1.3 < hr["upper"]
    assert hr["lower"] > 1.05


# --------------------------------------------------------------------------- end to end
def test_analyse_segments_on_a_table_is_json_safe():
    w = _satisfaction_world(excess=1.0, n=400)
    t = pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(w))],
                      "duration_days": w["duration"] * DAYS_PER_MONTH, "event": w["event"],
                      "csat": w["score"], "plan": np.where(w.index % 3 == 0, "a", "b"),
                      "same": "x"})
    data = StudyData("table", AS_OF, table=t,
                     roles={"satisfaction": "csat", "segments": ["plan", "same"]})
    out = analyse_segments(data)
    json.dumps(out, allow_nan=False)
    assert out["satisfaction"]["column"] == "csat"
    assert out["by_column"]["plan"]["reference"] == "b"
    assert "same" in out["skipped"]
    ax = plot_departure_rates(pd.DataFrame(out["satisfaction"]["summary"]))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["unhappy", "satisfied", "delighted"]


def test_columns_without_usable_values_are_skipped_not_a_traceback():
    t = pd.DataFrame({"customer_id": list("abcdef"), "duration_days": [100.0, 200, 300, 400,
                                                                       500, 600],
                      "event": [1, 0, 1, 0, 1, 0], "sat": ["good", "bad", "ok"] * 2,
                      "seg": [np.nan] * 6})
    data = StudyData("table", AS_OF, table=t, roles={"satisfaction": "sat", "segments": ["seg"]})
    out = analyse_segments(data)
    assert out["satisfaction"] is None and out["by_column"] == {}
    assert "no numeric scores" in out["skipped"]["sat"]
    assert "no values" in out["skipped"]["seg"]
