"""The verdict's and the what-if's sentences, each also tested where it must not appear."""

from __future__ import annotations

from retention_study.analysis.results import Results
from retention_study.present import narrative


def _lever(lever="contact", change=-0.2, lo=-0.25, hi=-0.15, available=True, **kw):
    rec = {"lever": lever, "available": available, "description": "a policy",
           "departures_expected": 1000.0, "departures_under_lever": 1000.0 * (1 + change),
           "change": change, "change_ci_low": lo, "change_ci_high": hi,
           "customers_kept": -1000.0 * change, "revenue_kept": 5000.0,
           "revenue_change": 5000.0, "why": "" if available else "a flat table has no history"}
    return {**rec, **kw}


def test_what_if_lines_say_kept_or_lost_with_the_ci():
    kept = narrative.what_if_line(_lever())
    assert "800 departures instead of 1,000 (-20%, 95% CI -25% to -15%), 200 customers kept" \
        in kept
    lost = narrative.what_if_line(_lever(change=0.1, lo=0.05, hi=0.15))
    assert "100 customers lost" in lost and "kept" not in lost
    # a price cut's revenue net of the discount is said only when it differs
    assert "net of the lower prices" not in kept
    cut = narrative.what_if_line(_lever("price", revenue_change=-40000.0))
    assert "net of the lower prices: -40,000" in cut


def test_what_if_lines_are_absent_when_no_lever_was_estimated():
    assert narrative.what_if_lines(Results.from_dict({"what_if": []})) == []
    assert narrative.what_if_lines(Results.from_dict({"what_if": [_lever(available=False)]})) == []
    lines = narrative.what_if_lines(Results.from_dict({"what_if": [_lever(), _lever("price", available=False)]}))
    assert len(lines) == 2 and "not estimated (a flat table has no history)" in lines[1]


def _guard(naive_verdict, naive_hr, verdict="both"):
    eff = {"block": "contact", "covariate": "months_since_contact", "unit": "6 months",
           "hr": 1.52, "lower": 1.3, "upper": 1.7, "p": 0.001}
    naive = dict(eff, hr=naive_hr, lower=naive_hr * 0.9, upper=naive_hr * 1.1)
    return Results.from_dict({"verdict": verdict, "effects": [eff],
                              "robustness": {"available": True,
                                             "naive": {"verdict": naive_verdict,
                                                       "effects": [naive]}}})


def test_guard_paragraph_says_the_flip_not_both_instead_of_both():
    text = narrative.guard_reading(_guard("both", 0.45))
    assert "instead of" not in text
    assert "would still read **both**" in text and "flips" in text
    assert "hazard ratio 1.52 with the guard, 0.45 without" in text
    # no flip, same verdict: neither 'instead of' nor 'flips'
    same = narrative.guard_reading(_guard("both", 1.50))
    assert "instead of" not in same and "flips" not in same and "also be **both**" in same
    # another verdict: 'instead of', and the flip when there is one
    other = narrative.guard_reading(_guard("price", 0.45, verdict="contact"))
    assert "**price** instead of **contact**" in other and "flips" in other
    assert "flips" not in narrative.guard_reading(_guard("price", 1.5, verdict="contact"))


def test_summary_leads_with_what_if_only_when_levers_were_estimated():
    base = {"verdict": "contact", "verdict_sentence": "Lack of contact explains departures.",
            "n_customers": 10, "customer_years": 5.0, "n_departures": 3, "effects": [],
            "alpha": 0.05}
    with_levers = narrative.executive_summary(Results.from_dict({**base, "what_if": [_lever()]}))
    assert "**What if**" in with_levers and "200 customers kept" in with_levers
    without = narrative.executive_summary(Results.from_dict({**base, "what_if": [_lever(available=False)]}))
    assert "**What if**" not in without
    assert "**What if**" not in narrative.executive_summary(Results.from_dict(base))
