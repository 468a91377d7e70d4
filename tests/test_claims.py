"""Tests of retention_study.analysis.claims: each claim's decision on crafted results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retention_study.analysis.after_notice import after_notice_shares, rate_ratio
from retention_study.analysis.claims import (
    STATUSES,
    check_claims,
    parse_claims,
)
from retention_study.analysis.results import Results
from retention_study.config import CLAIMS_FILE
from retention_study.data.schema import DAYS_PER_MONTH, StudyData

D = pd.Timestamp


def claims(results: dict, path=CLAIMS_FILE):
    """The claims decided from results written as results.json would hold them."""
    return check_claims(Results.from_dict(results), path)


def status(results: dict, claim: int) -> str:
    table = claims(results).set_index("claim")
    return table.loc[claim, "status"]


def test_parse_claims_reads_the_seven_titles():
    t = parse_claims(CLAIMS_FILE)
    assert t["claim"].tolist() == list(range(1, 8))
    assert t.loc[0, "title"] == "Price is rarely the real reason"
    assert t.loc[6, "title"] == "Price cuts at the exit do not buy loyalty"


def test_empty_results_cannot_tell_anything(tmp_path):
    t = claims({}, CLAIMS_FILE)
    assert list(t.columns) == ["claim", "title", "status", "number", "why"]
    assert (t["status"] == "cannot tell").all()
    assert t["why"].str.len().gt(10).all()
    extra = tmp_path / "c.md"
    extra.write_text("1. **One.**\n9. **Unknown claim.**\n", encoding="utf-8")
    assert claims({}, extra)["status"].tolist() == ["cannot tell", "cannot tell"]


def _test(name, p, statistic=None):
    big, small = "both", name.split(" | ")[1]
    return {"test": name, "big": big, "small": small, "statistic": statistic, "df": 2, "p": p}


def _lr(pc, cp):
    return {"lr_tests": {"price_given_contact": _test("price | contact", pc),
                         "contact_given_price": _test("contact | price", cp)}}


@pytest.mark.parametrize("pc, cp, expected", [
    (0.40, 0.001, "supported"),
    (0.001, 0.40, "not supported"),
    (0.001, 0.001, "not supported"),
    (0.30, 0.40, "not supported"),
])
def test_claim_1_price_versus_contact(pc, cp, expected):
    assert status(_lr(pc, cp), 1) == expected


def test_claim_1_number_and_snapshot_caveat():
    r = _lr(0.3, 0.001)
    r["lr_tests"]["contact_given_price"]["statistic"] = 18.07
    row = claims({**r, "verdict": "contact"}, CLAIMS_FILE).loc[0]
    assert row["number"] == "price given contact p=0.300; contact given price LR 18.1, p=0.001" \
        "; verdict: contact"
    assert "snapshot" not in row["why"]
    table = {**r, "format": "table", "roles": {"price": ["MonthlyCharges"],
                                               "contact": ["TechSupport"]}}
    why = claims(table, CLAIMS_FILE).loc[0, "why"]
    assert "snapshot columns (MonthlyCharges, TechSupport)" in why


def test_claim_1_cannot_tell_without_contact_block():
    assert status({"lr_tests": {"price_given_contact": _test("price | contact", 0.01)}},
                  1) == "cannot tell"


def _effect(hr, lo, hi, label="per 6 months without outbound contact"):
    return {"label": label, "hr": hr, "lower": lo, "upper": hi, "p": 0.01}


def _bands(r1, r2, width=1.0):
    return [{"band": band, "customer_years": 100.0, "departures": int(rate), "rate_per_100": rate,
             "lower": rate - width, "upper": rate + width, "customers": 50}
            for band, rate in (("0-3 months", r1), ("24+ months", r2))]


def test_claim_2_attention():
    assert status({"effects": [_effect(1.3, 1.1, 1.5)]}, 2) == "supported"
    assert status({"effects": [_effect(1.05, 0.9, 1.2)]}, 2) == "not supported"
    assert status({"effects": [_effect(0.7, 0.6, 0.8)]}, 2) == "not supported"
    # the effect is found by its label, not its position
    other = _effect(2.0, 1.5, 2.5, label="per 10% price increase")
    assert status({"effects": [other]}, 2) == "cannot tell"
    as_models_give = {"covariate": "months_since_contact", "label": "months since ...",
                      "unit": "6 months without outbound contact", "hr": 1.3, "lower": 1.1,
                      "upper": 1.5, "p": 0.001}
    row = claims({"effects": [other, as_models_give]}, CLAIMS_FILE).loc[1]
    assert row["status"] == "supported"
    assert row["number"] == "HR 1.30 (1.10-1.50) per 6 months without outbound contact"
    assert status({"rates_by_contact_band": _bands(5, 12)}, 2) == "supported"
    assert status({"rates_by_contact_band": _bands(5, 6)}, 2) == "not supported"


def _satisfaction(oe, lo, hi, departures=40):
    rows = [{"segment": "unhappy", "departures": 30, "rate": 8.0, "oe": 1.0, "oe_lower": 0.7,
             "oe_upper": 1.4},
            {"segment": "satisfied", "departures": departures, "rate": 9.0, "oe": oe,
             "oe_lower": lo, "oe_upper": hi}]
    return {"segments": {"satisfaction": {"summary": rows}}}


def test_claim_3_satisfied_slip_away():
    assert status(_satisfaction(1.4, 1.1, 1.8), 3) == "supported"
    assert status(_satisfaction(1.0, 0.8, 1.2), 3) == "not supported"
    assert status(_satisfaction(0.7, 0.5, 0.9), 3) == "not supported"
    assert status(_satisfaction(1.4, 1.1, 1.8, departures=4), 3) == "cannot tell"
    assert status({"segments": {"satisfaction": None}}, 3) == "cannot tell"


def _loyalty(first, last, share):
    return {"loyalty": {"summary": [
        {"band": "0-1 years", "mean_pct_above": first, "median_pct_above": first,
         "share_paying_more": 0.1},
        {"band": "5+ years", "mean_pct_above": last, "median_pct_above": last,
         "share_paying_more": share}],
        "hazard_ratio": {"label": "per 10 points", "hr": 1.2, "lower": 1.1, "upper": 1.3}}}


def test_claim_4_loyalty_punished():
    assert status(_loyalty(0.0, 15.0, 0.8), 4) == "supported"
    assert status(_loyalty(0.0, 0.5, 0.2), 4) == "not supported"
    assert status(_loyalty(0.0, 15.0, 0.3), 4) == "not supported"
    assert status({"loyalty": None}, 4) == "cannot tell"
    number = claims(_loyalty(0.0, 15.0, 0.8), CLAIMS_FILE).loc[3, "number"]
    assert "15.0%" in number and "1.20 (1.10-1.30)" in number


def _after(lo_c, lo_p):
    part = {"share_after_notice": 0.4, "rate_ratio": 3.0, "upper": 5.0}
    return {"after_notice": {"available": True,
                             "outbound_contacts": {**part, "lower": lo_c},
                             "price_cuts": {**part, "lower": lo_p}}}


def test_claim_5_wake_up_at_cancellation():
    assert status(_after(1.5, 0.5), 5) == "supported"
    assert status(_after(0.5, 1.5), 5) == "supported"
    assert status(_after(0.5, 0.5), 5) == "not supported"
    assert status({"after_notice": {"available": False, "why": "shape B"}}, 5) == "cannot tell"
    r = {**_after(1.5, 0.5), "naive": [_effect(0.6, 0.5, 0.7)],
         "effects": [_effect(1.2, 1.1, 1.3)]}
    assert "naive 0.60 vs adjusted 1.20" in claims(r, CLAIMS_FILE).loc[4, "number"]


def _reasons(hr, lo, hi, price_mean=9.0):
    svr = [{"group": "price", "customers": 40, "months_since_contact_mean": price_mean},
           {"group": "stayed", "customers": 400, "months_since_contact_mean": 3.0}]
    csc = [{"group": "price", "covariate": "loyalty_penalty", "hr": 3.0, "lower": 2.0,
            "upper": 4.0},
           {"group": "price", "covariate": "months_since_contact", "hr": hr, "lower": lo,
            "upper": hi},
           {"group": "attention", "covariate": "months_since_contact", "hr": 1.5,
            "lower": 1.2, "upper": 1.8}]
    return {"reasons": {"available": True, "stated_vs_revealed": svr,
                        "cause_specific": {"summary": csc}}}


def test_claim_6_stated_versus_revealed():
    assert status(_reasons(1.06, 1.03, 1.09), 6) == "supported"
    assert status(_reasons(1.00, 0.97, 1.03), 6) == "not supported"
    # the decision is the tenure-matched model, not the raw means
    assert status(_reasons(1.00, 0.97, 1.03, price_mean=20.0), 6) == "not supported"
    number = claims(_reasons(1.06, 1.03, 1.09), CLAIMS_FILE).loc[5, "number"]
    assert "1.06 (1.03-1.09)" in number and "9.0 vs stayers now 3.0" in number
    assert status({"reasons": {"available": False}}, 6) == "cannot tell"
    no_model = {"reasons": {"available": True, "stated_vs_revealed": None,
                            "cause_specific": None}}
    assert status(no_model, 6) == "cannot tell"
    attention_only = _reasons(1.0, 0.9, 1.1)
    attention_only["reasons"]["cause_specific"]["summary"] = attention_only["reasons"][
        "cause_specific"]["summary"][2:]
    assert status(attention_only, 6) == "cannot tell"


def _reversals(rd, nd, rc, nc):
    return {"reversals": {"after_discount": {"reversed": rd, "notices": nd},
                          "after_contact": {"reversed": rc, "notices": nc}}}


def test_claim_7_reversals():
    assert status(_reversals(5, 100, 30, 100), 7) == "supported"
    assert status(_reversals(30, 100, 5, 100), 7) == "not supported"
    assert status(_reversals(10, 100, 12, 100), 7) == "not supported"
    assert status(_reversals(1, 5, 3, 5), 7) == "cannot tell"
    assert status({"reversals": None}, 7) == "cannot tell"


def test_incomplete_results_are_cannot_tell_not_a_crash():
    broken = {"after_notice": {"available": True,
                               "outbound_contacts": {"rate_ratio": 2.0}}}  # no limits
    t = claims(broken, CLAIMS_FILE)
    assert t.loc[4, "status"] == "cannot tell"
    assert set(t["status"]) <= set(STATUSES)


# --------------------------------------------------------------------------- rate ratio
def test_rate_ratio_limits_cover_the_truth():
    rng = np.random.default_rng(1)
    a = rng.poisson(2.0 * 10, 400)  # true rate ratio 2 with exposures 10 and 20
    b = rng.poisson(1.0 * 20, 400)
    hits = [rate_ratio(x, 10.0, y, 20.0)["lower"] < 2 < rate_ratio(x, 10.0, y, 20.0)["upper"]
            for x, y in zip(a, b, strict=True)]
    assert np.mean(hits) >= 0.93
    zero = rate_ratio(0, 10.0, 5, 10.0)
    assert zero["lower"] == 0.0 and zero["rate_ratio"] == 0.0


# --------------------------------------------------------------------------- after notice
def _notice_data():
    c = pd.DataFrame({
        "customer_id": ["a", "b"], "start_date": [D("2020-01-01"), D("2020-01-01")],
        "end_date": [D("2020-12-31"), pd.NaT], "notice_date": [D("2020-12-01"), pd.NaT],
        "churned": [1, 0], "exit_reason": np.nan,
    })
    k = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "a", "b", "b"],
        "contact_date": pd.to_datetime(["2020-03-01", "2020-06-01", "2020-12-01", "2020-12-10",
                                        "2020-12-02", "2020-05-01", "2020-07-01"]),
        "direction": ["outbound"] * 4 + ["inbound"] + ["outbound"] * 2,
        "channel": "phone", "topic": np.nan,
    })
    p = pd.DataFrame({
        "customer_id": ["a", "a", "b", "b", "b"],
        "effective_date": pd.to_datetime(["2020-01-01", "2020-12-05", "2020-01-01",
                                          "2020-04-01", "2020-08-01"]),
        "monthly_price": [20.0, 18.0, 20.0, 22.0, 19.0], "new_customer_price": np.nan,
    })
    return StudyData("events", D("2021-06-30"), customers=c, contact_events=k, price_events=p)


def test_after_notice_shares_by_hand():
    out = after_notice_shares(_notice_data())
    json.dumps(out, allow_nan=False)
    assert type(out["outbound_contacts"]["rate_before_per_month"]) is float
    oc = out["outbound_contacts"]
    assert out["notices"] == 1
    assert (oc["total"], oc["after_notice"]) == (6, 2)
    assert oc["share_after_notice"] == pytest.approx(1 / 3)
    # a: 335 days before the notice (2020 is a leap year), 31 days from notice to end
    assert oc["rate_before_per_month"] == pytest.approx(2 / (335 / DAYS_PER_MONTH))
    assert oc["rate_after_per_month"] == pytest.approx(2 / (31 / DAYS_PER_MONTH))
    assert oc["rate_ratio"] == pytest.approx(335 / 31)
    pc = out["price_cuts"]
    assert (pc["total"], pc["after_notice"]) == (2, 1)  # b's cut has no notice to follow


def test_after_notice_not_available_without_notices_or_on_tables():
    data = _notice_data()
    data.customers["notice_date"] = pd.NaT
    assert after_notice_shares(data)["available"] is False
    t = pd.DataFrame({"customer_id": ["x"], "duration_days": [30.0], "event": [1]})
    out = after_notice_shares(StudyData("table", D("2021-01-01"), table=t))
    assert out["available"] is False and "table" in out["why"]


def test_claim_1_reads_the_tests_at_the_verdicts_holm_level():
    # raw p 0.03 and 0.04 would say "price still explains"; Holm gives 0.06 and 0.06,
    # where the verdict sees neither block: the claim must not contradict it
    r = {**_lr(0.04, 0.03), "verdict_evidence": {"p_price_given_contact_holm": 0.06,
                                                 "p_contact_given_price_holm": 0.06}}
    row = claims(r, CLAIMS_FILE).loc[0]
    assert row["status"] == "not supported"
    assert "neither block" in row["why"]
    assert "Holm-adjusted: price p=0.060, contact p=0.060" in row["number"]
    assert "neither block" not in claims(_lr(0.04, 0.03), CLAIMS_FILE).loc[0, "why"]


def test_after_notice_counts_match_a_plain_pandas_reference():
    # The counts use array lookups instead of id maps; a row-by-row pandas reference on
    # random data (ties within a day, customers without notice, unknown ids) must agree.
    from retention_study.analysis.after_notice import _around_notice, _price_cuts

    rng = np.random.default_rng(5)
    n = 60
    start = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    notice = (start + pd.to_timedelta(rng.integers(30, 700, n), unit="D")).where(
        rng.random(n) < 0.6)
    end = (notice + pd.to_timedelta(rng.integers(0, 40, n), unit="D")).where(rng.random(n) < .7)
    cust = pd.DataFrame({"customer_id": [f"c{i}" for i in rng.permutation(n)],
                         "start_date": start, "notice_date": notice, "end_date": end})
    m = 500
    prices = pd.DataFrame({
        "customer_id": rng.choice(list(cust.customer_id) + ["zz"], m),
        "effective_date": pd.Timestamp("2022-01-01")
        + pd.to_timedelta(rng.integers(0, 60, m) * 14, unit="D"),
        "monthly_price": rng.choice([20.0, 25.0, 30.0], m)})
    as_of = pd.Timestamp("2024-12-31")

    p = prices.sort_values(["customer_id", "effective_date"], kind="stable")
    ref_cuts = p.loc[p.groupby("customer_id")["monthly_price"].diff() < 0]
    cuts = _price_cuts(prices)
    assert sorted(cuts.index) == sorted(ref_cuts.index) and len(cuts) > 10

    events = cuts.copy()
    out = _around_notice(events, cust, as_of, 0.05)
    by_id = cust.set_index("customer_id")
    at = events["customer_id"].map(by_id["notice_date"])
    stop = events["customer_id"].map(by_id["end_date"].fillna(as_of)).where(at.notna())
    stop = np.maximum(stop, at)
    assert out["after_notice"] == int((events["date"] >= at).sum())
    assert out["after_notice_noticers"] == int(((events["date"] >= at)
                                                 & (events["date"] <= stop)).sum())
    assert out["before_notice_noticers"] == int((events["date"] < at).sum()) > 0
    assert out["after_notice_noticers"] > 0
