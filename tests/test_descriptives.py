"""Descriptives against hand computations and independent references.

Rates: person-time and departures per band counted by hand on a 3-customer episode
table; exact Poisson limits checked against limits found by root-finding on the
Poisson CDF (not the chi-square formula the code uses). Kaplan-Meier: product-limit
values worked out by hand on 6 customers, 3 of them entering late.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from retention_study.analysis.descriptives import (
    contact_bands,
    penalty_bands,
    poisson_ci,
    rates_by_band,
)
from retention_study.analysis.km import (
    ImmortalTimeError,
    cohort_column,
    customer_durations,
    km_by_group,
)
from retention_study.data.schema import DAYS_PER_MONTH, StudyData, Timeline
from retention_study.errors import AnalysisError

ROOT = Path(__file__).resolve().parents[1]
TELCO = ROOT / "../shared/data/real/ibm_telco_customer_churn.csv"


def exact_limits(k: int, alpha: float = 0.05) -> tuple[float, float]:
    """Garwood limits of a Poisson mean by root-finding on the Poisson CDF."""
    upper = optimize.brentq(lambda mu: stats.poisson.cdf(k, mu) - alpha / 2, 1e-9, 100)
    if k == 0:
        return 0.0, upper
    lower = optimize.brentq(lambda mu: stats.poisson.sf(k - 1, mu) - alpha / 2, 1e-9, 100)
    return lower, upper


@pytest.fixture
def episodes() -> pd.DataFrame:
    # a: 0-6 (1 month since contact), 6-12 (4), 12-15 (8) leaves
    # b: 0-12 (2), 12-36 (24, capped) censored
    # c: enters late at 3, 3-9 (5) leaves
    return pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b", "c"],
        "start": [0.0, 6, 12, 0, 12, 3],
        "stop": [6.0, 12, 15, 12, 36, 9],
        "event": [0, 0, 1, 0, 0, 1],
        "months_since_contact": [1.0, 4, 8, 2, 24, 5],
        "loyalty_penalty": [0.0, np.log(1.1), np.log(1.15), -0.05, np.log(1.3), 0.0],
    })


def test_poisson_ci_zero_events_matches_known_value():
    lower, upper = poisson_ci([0], [1.0])
    assert lower[0] == 0.0
    assert upper[0] == pytest.approx(3.689, abs=5e-4)  # -ln(0.025)


@pytest.mark.parametrize("k", [1, 2, 7, 30])
def test_poisson_ci_matches_root_finding(k):
    lower, upper = poisson_ci([k], [2.0])
    ref_lo, ref_up = exact_limits(k)
    assert lower[0] == pytest.approx(ref_lo / 2.0, rel=1e-6)
    assert upper[0] == pytest.approx(ref_up / 2.0, rel=1e-6)


def test_contact_bands_person_time_and_counts_by_hand(episodes):
    r = contact_bands(Timeline(episodes=episodes, blocks={}))
    assert r["band"].astype(str).tolist() == [
        "0-3 months", "3-6 months", "6-12 months", "12-24 months", "24+ months"]
    # 0-3: a 6 + b 12 months; 3-6: a 6 + c 6; 6-12: a 3; 12-24: none; 24+: b 24
    assert r["customer_years"].tolist() == pytest.approx([1.5, 1.0, 0.25, 0.0, 2.0])
    assert r["departures"].tolist() == [0, 1, 1, 0, 0]
    assert r["customers"].tolist() == [2, 2, 1, 0, 1]
    np.testing.assert_allclose(r["rate_per_100"], [0, 100, 400, np.nan, 0])
    assert r.loc[0, "lower"] == 0.0
    assert r.loc[0, "upper"] == pytest.approx(3.689 / 1.5 * 100, rel=1e-3)
    lo, up = exact_limits(1)
    assert r.loc[2, "lower"] == pytest.approx(lo / 0.25 * 100, rel=1e-6)
    assert r.loc[2, "upper"] == pytest.approx(up / 0.25 * 100, rel=1e-6)
    assert np.isnan(r.loc[3, "lower"]) and np.isnan(r.loc[3, "upper"])


def test_band_edges_left_closed_for_contact_right_closed_for_penalty():
    ep = pd.DataFrame({"start": [0.0, 0], "stop": [12.0, 12], "event": [1, 0],
                       "months_since_contact": [3.0, 24.0],
                       "loyalty_penalty": [0.0, np.log(1.1)]})
    c = contact_bands(ep)
    assert c["departures"].tolist() == [0, 1, 0, 0, 0]  # 3 months -> "3-6"
    assert c["customer_years"].tolist() == pytest.approx([0, 1, 0, 0, 1])
    p = penalty_bands(ep)
    # exactly the new-customer price -> "at or below"; exactly +10% -> "0-10%"
    assert p["departures"].tolist() == [1, 0, 0, 0]
    assert p["customer_years"].tolist() == pytest.approx([1, 1, 0, 0])


def test_penalty_bands_by_hand(episodes):
    p = penalty_bands(episodes)
    # <=0: a 6, b 12, c 6 months; 0-10: a 6; 10-20: a 3 (event); 20+: b 24
    assert p["customer_years"].tolist() == pytest.approx([2.0, 0.5, 0.25, 2.0])
    assert p["departures"].tolist() == [1, 0, 1, 0]


def test_rates_by_band_shape_b_table():
    table = pd.DataFrame({"duration_days": [DAYS_PER_MONTH * 12, DAYS_PER_MONTH * 24],
                          "event": [1, 0], "price": [10.0, 50.0]})
    r = rates_by_band(table, "price", [0, 20, 100], ["cheap", "dear"])
    assert r["customer_years"].tolist() == pytest.approx([1.0, 2.0])
    assert r["departures"].tolist() == [1, 0]


def test_rates_by_band_unknown_column_is_named_error(episodes):
    with pytest.raises(AnalysisError, match="no column 'nope'"):
        rates_by_band(episodes, "nope", [0, 1])


def test_rates_total_person_time_is_conserved(episodes):
    r = contact_bands(episodes)
    total = ((episodes["stop"] - episodes["start"]).sum()) / 12
    assert r["customer_years"].sum() == pytest.approx(total)
    assert r["departures"].sum() == episodes["event"].sum()


# ----------------------------------------------------------------------- Kaplan-Meier

OBS = pd.Timestamp("2020-01-01")
MONTH = 30  # days per "month" in the hand example; KM only depends on the order


def _customer(cid, entry, duration, event, plan, censor_at_as_of=False):
    start = OBS - pd.Timedelta(days=entry * MONTH)
    exit_ = start + pd.Timedelta(days=duration * MONTH)
    return {"customer_id": cid, "start_date": start, "plan": plan,
            "end_date": pd.NaT if censor_at_as_of else exit_,
            "notice_date": exit_ if event else pd.NaT, "churned": event}


@pytest.fixture
def km_data() -> StudyData:
    rows = [
        _customer("1", 0, 2, 1, "basic"),
        _customer("2", 0, 4, 0, "basic"),
        _customer("3", 1, 5, 1, "basic"),
        _customer("4", 3, 6, 1, "basic"),
        _customer("5", 0, 8, 0, "basic", censor_at_as_of=True),
        _customer("6", 4.5, 9, 1, "basic"),
        _customer("7", 10, 4, 1, "basic"),  # gone before the observation start
        _customer("8", 0, 3, 1, "premium"),
        _customer("9", 0, 1, 0, "premium"),
    ]
    customers = pd.DataFrame(rows)
    customers["exit_reason"] = np.nan
    as_of = OBS + pd.Timedelta(days=8 * MONTH)
    return StudyData(format="events", as_of=as_of, customers=customers, observation_start=OBS)


def _m(months: float) -> float:
    return months * MONTH / DAYS_PER_MONTH


def test_km_product_limit_with_late_entry_by_hand(km_data):
    km = km_by_group(km_data, "plan")
    basic = km.fitters["basic"]
    # events at 2 (4 at risk: 1,2,3,5), 5 (3,4,5,6), 6 (4,5,6), 9 (6)
    assert float(basic.predict(_m(1))) == pytest.approx(1.0)
    assert float(basic.predict(_m(3))) == pytest.approx(3 / 4)
    assert float(basic.predict(_m(5.5))) == pytest.approx(3 / 4 * 3 / 4)
    assert float(basic.predict(_m(7))) == pytest.approx(9 / 16 * 2 / 3)
    assert float(basic.predict(_m(9.5))) == pytest.approx(0.0)
    s = km.summary.set_index("group")
    assert s.loc["basic", "customers"] == 6  # customer 7 left before observation start
    assert s.loc["basic", "departures"] == 4
    assert s.loc["basic", "median_months"] == pytest.approx(_m(6))
    assert km.survival_at(_m(3))["premium"] == pytest.approx(0.0)


def test_km_without_late_entry_differs(km_data):
    # Ignoring left truncation (everyone from tenure 0) gives a different, wrong curve:
    # the guard that entry= is really used.
    km_data.observation_start = None
    naive = km_by_group(km_data, "plan").fitters["basic"]
    assert float(naive.predict(_m(3))) != pytest.approx(3 / 4)


def test_at_risk_counts_by_hand(km_data):
    km = km_by_group(km_data, "plan")
    table = km.at_risk([0, _m(3), _m(5)])
    # basic: t=0 -> 1,2,5; t=3 -> 2,3,4,5; t=5 -> 4,5,6 (entry <= t < exit)
    assert table.loc["basic"].tolist() == [3, 4, 3]
    # premium: 8 (exit 3) and 9 (exit 1) at 0; nobody after
    assert table.loc["premium"].tolist() == [2, 0, 0]


def test_customer_durations_entry_and_event(km_data):
    d = customer_durations(km_data).set_index("customer_id")
    assert "7" not in d.index
    assert d.loc["4", "entry"] == pytest.approx(_m(3))
    assert d.loc["5", "duration"] == pytest.approx(_m(8))  # censored at as_of
    assert d.loc["5", "event"] == 0


def test_cohort_column(km_data):
    cohorts = cohort_column(km_data)
    assert cohorts.tolist()[:2] == [2020, 2020]
    assert cohorts.iloc[5] == 2019  # joined 135 days before 2020-01-01
    km = km_by_group(km_data, "cohort")
    assert set(km.fitters) == {"2019", "2020"}


@pytest.mark.parametrize("column", ["months_since_contact", "loyalty_penalty",
                                    "monthly_price", "exit_reason", "notice_date"])
def test_immortal_time_guard(km_data, column):
    with pytest.raises(ImmortalTimeError):
        km_by_group(km_data, column)


def test_immortal_time_guard_knows_the_timelines_covariates(km_data):
    tl = Timeline(episodes=pd.DataFrame(), blocks={"contact": ["ever_called_back"]})
    with pytest.raises(ImmortalTimeError, match="immortal-time"):
        km_by_group(km_data, "ever_called_back", timeline=tl)
    with pytest.raises(ValueError):  # also a ValueError for callers that catch that
        km_by_group(km_data, "ever_called_back", timeline=tl)


def test_unknown_or_dummy_column_is_not_an_immortal_time_error(km_data):
    with pytest.raises(AnalysisError) as info:
        km_by_group(km_data, "colour")
    assert not isinstance(info.value, ImmortalTimeError)
    with pytest.raises(AnalysisError, match="'plan'"):
        km_by_group(km_data, "plan[premium]")


@pytest.mark.skipif(not TELCO.is_file(), reason="real data not available")
def test_km_by_contract_on_ibm_telco():
    raw = pd.read_csv(TELCO)
    table = pd.DataFrame({"customer_id": raw["customerID"],
                          "duration_days": raw["tenure"] * DAYS_PER_MONTH,
                          "event": (raw["Churn"] == "Yes").astype(int),
                          "Contract": raw["Contract"]})
    data = StudyData(format="table", as_of=pd.Timestamp("2026-06-30"), table=table)
    km = km_by_group(data, "Contract")
    s = km.summary.set_index("group")
    assert s["customers"].sum() == 7043
    assert s["departures"].sum() == 1869  # the data set's published churn count
    # month-to-month customers leave far sooner than two-year contracts
    assert km.survival_at(24)["Month-to-month"] < km.survival_at(24)["Two year"] - 0.3
    assert km.at_risk([0]).sum().iloc[0] == 7043 - 11  # tenure-0 customers not followed


def test_rates_recover_known_hazards_in_a_simulated_world():
    # Piecewise-constant truth: 1% a month while recently contacted (first 6 months),
    # 3% a month once contact has lapsed; follow-up ends at 36 months.
    rng = np.random.default_rng(7)
    n, h1, h2, switch, end = 4000, 0.01, 0.03, 6.0, 36.0
    t1 = rng.exponential(1 / h1, n)
    t2 = switch + rng.exponential(1 / h2, n)
    first_stop = np.minimum(t1, switch)
    ep1 = pd.DataFrame({"customer_id": np.arange(n), "start": 0.0, "stop": first_stop,
                        "event": (t1 < switch).astype(int), "months_since_contact": 1.0})
    on = t1 >= switch
    ep2 = pd.DataFrame({"customer_id": np.arange(n)[on], "start": switch,
                        "stop": np.minimum(t2[on], end), "event": (t2[on] < end).astype(int),
                        "months_since_contact": 24.0})
    r = contact_bands(pd.concat([ep1, ep2])).set_index("band")
    for band, truth in (("0-3 months", 1200 * h1), ("24+ months", 1200 * h2)):
        assert r.loc[band, "lower"] < truth < r.loc[band, "upper"]
        assert r.loc[band, "rate_per_100"] == pytest.approx(truth, rel=0.15)
    # the same departures over each customer's whole time (the band of the last row)
    # would show the lapsed band at a far lower rate than the truth
    last = pd.concat([ep1, ep2]).groupby("customer_id").agg(
        years=("stop", "max"), event=("event", "max"), msc=("months_since_contact", "last"))
    lapsed = last[last["msc"] == 24.0]
    assert 100 * lapsed["event"].sum() / (lapsed["years"].sum() / 12) < 0.8 * 1200 * h2


def test_table_shape_start_is_as_of_minus_tenure_and_late_entry():
    table = pd.DataFrame({"customer_id": ["a", "b"], "duration_days": [365.0, 100.0],
                          "event": [1, 0], "Contract": ["x", "y"]})
    data = StudyData(format="table", as_of=pd.Timestamp("2026-06-30"), table=table)
    assert cohort_column(data).tolist() == [2025, 2026]  # joined 2025-06-30, 2026-03-22
    d = customer_durations(data, observation_start="2026-01-01")
    # a joined 185 days before the observation start (Jul-Dec + 1); b after it
    assert d["entry"].tolist() == pytest.approx([185 / DAYS_PER_MONTH, 0.0])
    assert d["duration"].tolist() == pytest.approx([365 / DAYS_PER_MONTH, 100 / DAYS_PER_MONTH])


def test_km_by_cohort_uses_the_grouped_spans():
    # eleven start years (2016-2026) make at most six curves: spans of two years
    starts = pd.to_datetime([f"{y}-03-01" for y in range(2016, 2027)])
    cust = pd.DataFrame({"customer_id": [f"c{i}" for i in range(11)], "start_date": starts,
                         "end_date": pd.NaT, "notice_date": pd.NaT, "churned": 0})
    data = StudyData(format="events", as_of=pd.Timestamp("2026-06-30"), customers=cust)
    km = km_by_group(data, "cohort")
    assert list(km.fitters) == ["2016-2017", "2018-2019", "2020-2021", "2022-2023",
                                "2024-2025", "2026-2027"]
