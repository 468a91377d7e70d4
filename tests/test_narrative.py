"""The read-out says what the numbers say, and says so when a number is missing."""

from __future__ import annotations

from retention_study.analysis.results import RateBand, Results
from retention_study.present import narrative

EFFECTS = [
    {"block": "contact", "covariate": "months_since_contact", "unit": "6 months without contact",
     "phrase": "for every 6 months without contact", "hr": 1.6, "lower": 1.5, "upper": 1.7,
     "p": 1e-9},
    {"block": "price", "covariate": "loyalty_penalty", "unit": "+10% above new price",
     "phrase": "for paying 10% more than new customers", "hr": 1.02, "lower": 0.97,
     "upper": 1.07, "p": 0.4},
]
RATES = [
    {"band": "0-3 months", "customer_years": 100.0, "departures": 10, "rate_per_100": 10.0,
     "lower": 9.0, "upper": 11.0, "customers": 90},
    {"band": "3-6 months", "customer_years": 80.0, "departures": 8, "rate_per_100": 10.5,
     "lower": 9.5, "upper": 11.5, "customers": 70},
    {"band": "6-12 months", "customer_years": 60.0, "departures": 15, "rate_per_100": 25.0,
     "lower": 22.0, "upper": 28.0, "customers": 50},
]
BANDS = [RateBand(**r) for r in RATES]


def _results(**over):
    base = {"verdict": "contact", "verdict_sentence": "Lack of contact explains it.",
            "alpha": 0.05, "n_customers": 1234, "n_departures": 321, "customer_years": 2000.4,
            "effects": EFFECTS, "rates_by_contact_band": RATES}
    base.update(over)
    return Results.from_dict(base)


def test_summary_carries_the_computed_numbers():
    text = narrative.executive_summary(_results())
    assert "1,234 customers" in text and "321" in text and "2,000 customer-years" in text
    assert "1.60 times as often for every 6 months without contact (95% CI 1.50–1.70, p < 0.001)" in text
    assert "(95% CI 0.97–1.07, p = 0.400)" in text
    # departures rise clearly from the 6-12 months band on
    assert "once customers pass 6 months without hearing from you" in text


def test_protective_effect_is_read_as_less_often():
    row = dict(EFFECTS[0], hr=0.8, lower=0.7, upper=0.9)
    assert "20% less often" in narrative.effect_sentence(row)


def test_missing_measures_are_named_not_invented():
    r = _results(rates_by_contact_band=None, effects=[])
    assert "could not be measured" in narrative.rates_reading(None, "time since contact")
    assert "No price or contact measure" in narrative.forest_reading(r)
    assert "not be measured" in narrative.loyalty_reading(r)
    assert "could not be analysed" in narrative.reasons_reading(Results.from_dict({"reasons": {"available": False,
                                                                             "why": "no column"}}))


def test_rates_reading_says_whether_intervals_overlap():
    assert "do not overlap" in narrative.rates_reading(BANDS, "x")
    assert "overlap, so" in narrative.rates_reading(BANDS[:2], "x")


def test_ledger_table_balances():
    led = {"rows_in": {"customers": 10},
           "excluded": [{"table": "customers", "reason": "joined after as_of", "rows": 2,
                         "kind": "out_of_scope"}],
           "notes": [], "rows_analysed": {"customers": 8}}
    t = narrative.ledger_table(Results.from_dict({"ledger": led}))
    assert t["Rows"].tolist() == [10, -2, 8]
    assert t["Step"].tolist()[1] == "out of scope: joined after the as-of date"  # no config key


def test_table_mode_summary_names_the_proxies():
    r = _results(format="table", rates_by_contact_band=None,
                 roles={"price": ["Total day charge"], "contact": ["Customer service calls"],
                        "controls": ["International plan"], "contact_kind": "inbound"})
    text = narrative.executive_summary(r)
    assert "'Price' here is Total day charge" in text
    assert "contacts the customer started" in text
    assert "adjust for International plan" in text
    assert narrative.proxy_reading(_results(format="events")) is None


def test_an_interval_containing_one_is_not_read_as_an_effect():
    # HR 0.78 with CI 0.41-1.48: "22% less often" alone would read as a finding
    row = dict(EFFECTS[0], hr=0.78, lower=0.41, upper=1.48, p=0.446)
    assert narrative.effect_sentence(row).endswith(", not clearly different from no effect.")
    assert "no effect" not in narrative.effect_sentence(EFFECTS[0])
    summary = narrative.executive_summary(_results())
    assert "p = 0.400), not clearly different from no effect." in summary
    assert "p < 0.001), not clearly" not in summary


def test_snapshot_contact_gets_no_timing_advice():
    # a flat table's TechSupport says nothing about months without contact
    effects = [{"block": "contact", "covariate": "TechSupport[Yes]", "unit": "TechSupport[Yes]",
                "hr": 0.69, "lower": 0.53, "upper": 0.90, "p": 0.006}]
    text = narrative.executive_summary(_results(format="table", effects=effects,
                                                rates_by_contact_band=None,
                                                roles={"contact": ["TechSupport"]}))
    action = text.split("**What management could do.**")[1]
    assert "months" not in action and "waited longest" not in action
    assert "TechSupport goes with fewer departures" in action


def test_limits_mention_stated_reasons_only_when_there_are_some():
    assert "Stated exit reasons" not in narrative.limits_reading(Results.from_dict({"reasons": {"available": False}}))
    assert "Stated exit reasons" in narrative.limits_reading(Results.from_dict({"reasons": {"available": True}}))


def test_guard_reading_without_events_is_a_sentence():
    text = narrative.guard_reading(Results.from_dict({"robustness": {"available": False,
                                                   "why": "a flat table has no dated events."}}))
    # the reason is the data's, said once, in one sentence (no doubled full stop)
    assert text == "No guard or lag check was possible: a flat table has no dated events."
    assert narrative.guard_reading(Results()) == "No robustness analysis was possible."


def _cv(ll, conc):
    return {"k": 5, "differences": [
        {"metric": "cv_loglik", "estimate": ll[0], "lower": ll[1], "upper": ll[2]},
        {"metric": "concordance", "estimate": conc[0], "lower": conc[1], "upper": conc[2]}]}


def _fit(model, aic):
    return {"model": model, "loglik": -aic / 2 + 2, "n_params": 2, "aic": aic}


def test_comparison_reading_does_not_overstate_small_differences():
    close = _results(aic=[_fit("price", 100.0), _fit("contact", 98.5)],
                     cv=_cv((3.0, -4.6, 8.7), (-0.0002, -0.0004, 0.001)))
    text = narrative.comparison_reading(close)
    assert "about equally well" in text and "model fits better" not in text
    assert "positive favours contact), no clear difference." in text
    assert "-0.000" not in text and "Concordance difference (contact minus price): 0.000" in text
    clear = _results(aic=[_fit("price", 100.0), _fit("contact", 90.0)],
                     cv=_cv((12.0, 5.0, 19.0), (0.02, 0.01, 0.03)))
    text = narrative.comparison_reading(clear)
    assert "the contact model fits better" in text
    assert "positive favours contact)." in text


def test_loyalty_and_satisfaction_readings_say_when_an_interval_includes_one():
    loyalty = {"summary": [{"band": "0-1 years", "mean_pct_above": 0.3, "share_paying_more": 0.1},
                           {"band": "5+ years", "mean_pct_above": 19.0,
                            "share_paying_more": 0.95}],
               "hazard_ratio": {"label": "per +10% above the new-customer price", "hr": 1.06,
                                "lower": 0.97, "upper": 1.15, "p": 0.2}}
    text = narrative.loyalty_reading(_results(loyalty=loyalty))
    assert "customers left 1.06 times as often per +10% above the new-customer price" in text
    assert text.endswith("not clearly different from no effect.")
    seg = {"satisfaction": {"summary": [
        {"segment": "satisfied", "rate": 30.0, "oe": 1.05, "oe_lower": 0.95, "oe_upper": 1.16}]}}
    assert "not clearly different from the trend" in narrative.segments_reading(
        _results(segments=seg))
    seg["satisfaction"]["summary"][0].update(oe=1.25, oe_lower=1.17, oe_upper=1.34)
    assert "not clearly" not in narrative.segments_reading(_results(segments=seg))


def test_contact_that_goes_with_more_departures_is_not_advised():
    # months without contact with HR 0.5: the longer without contact, the FEWER leave
    backwards = [dict(EFFECTS[0], hr=0.5, lower=0.4, upper=0.6), EFFECTS[1]]
    text = narrative.executive_summary(_results(effects=backwards))
    action = text.split("**What management could do.**")[1]
    assert "Do not scale up contact" in action and "Make contact a routine" not in action
    more_calls = [{"block": "contact", "covariate": "outbound_12m", "hr": 1.3, "lower": 1.1,
                   "upper": 1.5, "p": 0.01}]
    assert "Do not scale up contact" in narrative.executive_summary(
        _results(effects=more_calls, verdict="both"))
    assert "Test scheduled contact" in narrative.executive_summary(_results())
