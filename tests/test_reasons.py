"""Tests of retention_study.analysis.reasons against hand computations and simulated worlds."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from lifelines import AalenJohansenFitter

from retention_study.analysis.reason_groups import map_reasons, reason_counts
from retention_study.analysis.reasons import (
    CauseSpecificCox,
    CumulativeIncidence,
    analyse_reasons,
    stated_vs_revealed,
)
from retention_study.analysis.results import Results
from retention_study.data.schema import DAYS_PER_MONTH, StudyData, Timeline
from retention_study.errors import ConfigError
from retention_study.present.plots import plot_cumulative_incidence
from retention_study.survival.competing import aalen_johansen

matplotlib.use("Agg")
AS_OF = pd.Timestamp("2026-06-30")


# --------------------------------------------------------------------------- mapping
@pytest.mark.parametrize(
    "text, group",
    [
        ("Te duur", "price"),
        ("prijsverhoging was te hoog", "price"),
        ("Too expensive", "price"),
        ("Price too high", "price"),
        ("got a cheaper offer", "price"),
        ("Extra data charges", "price"),
        ("Geen aandacht van leverancier", "attention"),
        ("No one called me in two years", "attention"),
        ("poor service", "attention"),
        ("Attitude of support person", "attention"),
        ("nooit gebeld", "attention"),
        ("Competitor offered more data", "competitor"),
        ("overgestapt naar concurrent", "competitor"),
        ("switched to another provider", "competitor"),
        ("Moved", "other"),
        ("verhuisd naar het buitenland", "other"),
        ("Felt ignored", "attention"),
        ("Found a cheaper offer", "price"),
        ("No longer needed", "other"),
    ],
)
def test_default_mapping_covers_common_wording(text, group):
    assert map_reasons([text])["group"].iloc[0] == group


def test_unmapped_reasons_are_other_and_counted():
    mapped = map_reasons(["Te duur", "te duur", "qwerty", "zzz", None, "  "])
    assert mapped["group"].tolist() == ["price", "price", "other", "other", "not stated",
                                        "not stated"]
    assert map_reasons(["Other", "overige", "Don't know"])["matched"].all()
    counts = reason_counts(mapped).set_index("group")
    assert counts.loc["other", "unmapped"] == 2
    assert counts.loc["price", "unmapped"] == 0
    assert counts.loc["price", "wordings"] == 2


def test_custom_groups_replace_the_default_and_keep_order():
    groups = {"geld": [r"\bduur\b", "prijs"], "rest": ["concurrent|duur"]}
    out = map_reasons(["te duur", "concurrent", "prijs"], groups)["group"].tolist()
    assert out == ["geld", "rest", "geld"]  # the first listed group wins


def test_bad_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match="reason_groups.price"):
        map_reasons(["x"], {"price": ["(unclosed"]})


# --------------------------------------------------------------------------- Aalen–Johansen
def test_aalen_johansen_matches_hand_computation_with_ties():
    # t=1: n=6, one price + one attention -> 1/6 each, S=4/6
    # t=3: n=3, one price -> +4/6*1/3; S=4/9.  t=4: n=1, attention -> +4/9
    cif, surv = aalen_johansen([1, 1, 2, 3, 3, 4],
                               ["price", "attention", None, "price", None, "attention"])
    assert cif.index.tolist() == [0, 1, 3, 4]
    assert cif["price"].tolist() == pytest.approx([0, 1 / 6, 7 / 18, 7 / 18])
    assert cif["attention"].tolist() == pytest.approx([0, 1 / 6, 1 / 6, 11 / 18])
    assert surv.tolist() == pytest.approx([1, 4 / 6, 4 / 9, 0])


def test_aalen_johansen_late_entry_by_hand():
    # customer 2 enters at 2.5: not at risk at t=2 (n=2), at risk at t=3 (n=2)
    cif, _ = aalen_johansen([2, 3, 4], ["a", "a", "b"], entry=[0, 2.5, 0])
    assert cif["a"].iloc[-1] == pytest.approx(0.75)
    assert cif["b"].iloc[-1] == pytest.approx(0.25)


def test_aalen_johansen_agrees_with_lifelines_without_ties():
    rng = np.random.default_rng(11)
    t = rng.exponential(10, 120)
    cause = np.where(rng.random(120) < 0.3, None, rng.choice(["p", "q"], 120))
    cif, _ = aalen_johansen(t, cause)
    codes = pd.Series(cause).map({"p": 1, "q": 2}).fillna(0).astype(int)
    ajf = AalenJohansenFitter(calculate_variance=False).fit(t, codes, event_of_interest=1)
    ref = ajf.cumulative_density_.iloc[:, 0]
    ours = cif["p"].reindex(ref.index, method="ffill").fillna(0)
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-9


def test_cumulative_incidences_add_up_to_one_minus_survival():
    rng = np.random.default_rng(2)
    t = np.round(rng.exponential(12, 300))  # rounded: many ties
    cause = np.where(rng.random(300) < 0.2, None, rng.choice(["a", "b", "c"], 300))
    assert (t == 0).any()  # departures at tenure 0 have no risk set and are left out
    cif, surv = aalen_johansen(t, cause)
    assert cif.index[0] == 0 and cif.index.is_unique
    assert np.allclose(cif.sum(axis=1), 1 - surv)


def test_cumulative_incidence_summary_and_plot():
    ci = CumulativeIncidence(horizons=[1, 3, 99]).fit(
        [1, 1, 2, 3, 3, 4], ["price", "attention", None, "price", None, "attention"])
    s = ci.summary
    assert s.loc["price", "departures"] == 2
    assert s.loc["price", "cif_3"] == pytest.approx(7 / 18)
    assert np.isnan(s.loc["price", "cif_99"])  # beyond follow-up
    ax = plot_cumulative_incidence(ci)
    assert len(ax.get_lines()) == 2
    d = json.loads(json.dumps(ci.to_dict(), allow_nan=False))
    curve = pd.DataFrame(d["curve"]).set_index("time")
    assert curve.index.tolist() == [0, 1, 2, 3, 4]
    assert curve["price"].tolist() == pytest.approx([0, 1 / 6, 1 / 6, 7 / 18, 7 / 18])
    assert len(plot_cumulative_incidence(d).get_lines()) == 2


# --------------------------------------------------------------------------- cause-specific Cox
def _competing_world(n=800, seed=4):
    """Price departures driven by x (HR 2 per unit), attention by z (HR 1.65), censoring."""
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    t_price = rng.exponential(30 / np.exp(np.log(2.0) * x))
    t_att = rng.exponential(30 / np.exp(0.5 * z))
    t_cens = rng.uniform(5, 40, n)
    t = np.minimum.reduce([t_price, t_att, t_cens])
    event = (t < t_cens).astype(int)
    group = np.where(t_price < t_att, "price", "attention")
    ep = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "start": 0.0, "stop": t,
                       "event": event, "x": x, "z": z})
    groups = pd.Series(group, index=ep["customer_id"])[event == 1]
    return Timeline(ep, {"price": ["x"], "contact": ["z"]}), groups


def test_cause_specific_cox_recovers_known_effects():
    tl, groups = _competing_world()
    s = CauseSpecificCox().fit(tl, groups).summary.set_index(["group", "covariate"])
    truth = {("price", "x"): 2.0, ("price", "z"): 1.0, ("attention", "x"): 1.0,
             ("attention", "z"): np.exp(0.5)}
    for key, hr in truth.items():
        assert s.loc[key, "lower"] < hr < s.loc[key, "upper"], key
    assert s.loc[("price", "x"), "lower"] > 1.5


def test_cause_specific_cox_skips_small_groups():
    tl, groups = _competing_world(n=300)
    groups.iloc[:3] = "competitor"
    csc = CauseSpecificCox(min_departures=10).fit(tl, groups)
    assert "competitor" in csc.skipped
    assert set(csc.summary["group"]) == {"price", "attention"}


# --------------------------------------------------------------------------- stated vs revealed
def test_stated_vs_revealed_reads_last_rows_by_hand():
    ep = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "c", "d"],
        "start": [0, 6, 0, 0, 3, 0], "stop": [6, 9, 5, 3, 8, 12],
        "event": [0, 1, 1, 0, 0, 1],
        "months_since_contact": [2.0, 10.0, 6.0, 1.0, 3.0, 0.0],
        "loyalty_penalty": [0.0, 20.0, 10.0, 0.0, 5.0, 1.0],
    })
    groups = pd.Series({"a": "price", "b": "price", "d": "attention"})
    t = stated_vs_revealed(Timeline(ep, {}), groups).set_index("group")
    assert t.loc["price", "customers"] == 2
    assert t.loc["price", "months_since_contact_mean"] == pytest.approx(8.0)  # (10 + 6) / 2
    assert t.loc["stayed", "months_since_contact_mean"] == pytest.approx(3.0)  # c's last row
    assert t.loc["price", "loyalty_penalty_median"] == pytest.approx(15.0)
    assert t.loc["stayed", "pct_above_new_price_median"] == pytest.approx(100 * (np.exp(5) - 1))
    assert np.isnan(t.loc["stayed", "months_since_contact_p"])


def test_stated_vs_revealed_on_a_table_uses_its_price_and_contact_columns():
    ep = pd.DataFrame({"customer_id": ["a", "b", "c"], "start": 0.0, "stop": [3.0, 4, 5],
                       "event": [1, 1, 0], "MonthlyCharges": [80.0, 60.0, 20.0],
                       "TechSupport[Yes]": [0.0, 0.0, 1.0], "age": [1.0, 2.0, 3.0]})
    tl = Timeline(ep, {"price": ["MonthlyCharges"], "contact": ["TechSupport[Yes]"],
                       "controls": ["age"]})
    t = stated_vs_revealed(tl, pd.Series({"a": "price", "b": "price"})).set_index("group")
    assert t.loc["price", "MonthlyCharges_mean"] == pytest.approx(70.0)
    assert t.loc["stayed", "TechSupport[Yes]_mean"] == 1.0
    assert "age_mean" not in t.columns


# --------------------------------------------------------------------------- end to end
def _study(n=200, seed=8, with_reasons=True):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    months = rng.exponential(30, n)
    leave = start + pd.to_timedelta(months * DAYS_PER_MONTH, unit="D")
    churned = leave < AS_OF
    wording = rng.choice(["Te duur", "no one called", "Competitor offer", "moved", "blah"], n)
    customers = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)], "start_date": start.normalize(),
        "end_date": pd.Series(leave.normalize()).where(churned),
        "notice_date": pd.NaT, "churned": churned.astype(int),
        "exit_reason": pd.Series(wording).where(churned & with_reasons),
    })
    return StudyData("events", AS_OF, customers=customers)


def test_analyse_reasons_end_to_end_is_json_safe():
    data = _study()
    out = analyse_reasons(data)
    json.dumps(out, allow_nan=False)
    assert out["available"]
    counts = {c["group"]: c["departures"] for c in out["counts"]}
    assert sum(counts.values()) == int(data.customers["churned"].sum())
    assert out["unmapped"] == int((data.customers["exit_reason"] == "blah").sum())
    # competing risks: the shares by reason add up to all departures by 12 months
    tab = out["cumulative_incidence"]["summary"]
    assert sum(r["cif_12"] for r in tab) < 1


def test_analyse_reasons_without_reasons_says_so():
    out = analyse_reasons(_study(with_reasons=False))
    assert out == {"available": False, "why": "the data records no stated exit reasons"}


# ------------------------------------------------- stated reasons as recorded (issue 15, 6)

TELECOM = (["Competitor"] * 40 + ["Dissatisfaction"] * 30 + ["Attitude"] * 20
           + ["Price"] * 15 + ["Other"] * 10 + [None] * 5)


def test_recorded_categories_show_count_group_and_keyword():
    from retention_study.analysis.reason_groups import recorded_categories

    t = recorded_categories(TELECOM).set_index("recorded")
    assert t["departures"].to_dict() == {"Competitor": 40, "Dissatisfaction": 30,
                                         "Attitude": 20, "Price": 15, "Other": 10}
    assert t.loc["Attitude", "group"] == "attention"
    assert t.loc["Attitude", "why"] == "keyword 'Attitude' (attention)"
    # unmapped: its own row, saying it matched nothing and where it was counted
    assert t.loc["Dissatisfaction", "group"] == "other"
    assert t.loc["Dissatisfaction", "why"] == "no keyword matched: counted as other"
    # the table agrees with the mapping the analysis uses
    mapped = map_reasons(TELECOM)
    stated = mapped[mapped["group"] != "not stated"]
    assert t.groupby("group")["departures"].sum().to_dict() == \
        stated["group"].value_counts().to_dict()


def test_recorded_categories_follow_study_reason_groups():
    from retention_study.analysis.reason_groups import recorded_categories

    groups = {"service": ["dissatisf", "attitude"], "competitor": ["competitor"]}
    t = recorded_categories(TELECOM, groups).set_index("recorded")
    assert t.loc["Dissatisfaction", "group"] == "service"
    assert t.loc["Dissatisfaction", "why"] == "keyword 'Dissatisf' (service)"
    assert t.loc["Price", "why"] == "no keyword matched: counted as other"


def test_many_wordings_are_capped_with_a_remainder_row():
    from retention_study.analysis.reason_groups import recorded_categories

    t = recorded_categories([f"reason {i}" for i in range(20)], limit=5)
    assert len(t) == 6 and t.iloc[-1]["recorded"] == "15 other wordings"
    assert t["departures"].sum() == 20


def test_report_text_points_at_the_table():
    from retention_study.present import narrative

    r = Results.from_dict({"reasons": {"available": True, "grouping": "built-in", "unmapped": 30,
                     "counts": [{"group": "other", "departures": 40},
                                {"group": "attention", "departures": 20}],
                     "categories": [{"recorded": "Dissatisfaction", "departures": 30,
                                     "group": "other",
                                     "why": "no keyword matched: counted as other"}]}})
    text = narrative.reasons_reading(r)
    assert "the table below shows each recorded reason" in text
    assert "30 departures gave a reason that matched no keyword" in text
    table = narrative.reason_categories_table(r)
    assert table.iloc[0].tolist() == ["Dissatisfaction", 30, "other",
                                      "no keyword matched: counted as other"]
