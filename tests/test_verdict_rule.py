"""The business-scale verdict rule on hand-set levers and tests (no simulation needed).

Each test sets the what-if levers and the likelihood-ratio p-values by hand, so the
label follows from the rule alone, and checks the sentence that must appear and the
ones that must not.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from retention_study.analysis.compare import _example_timeline
from retention_study.analysis.models import BlockModels
from retention_study.analysis.verdict import decide_verdict


@pytest.fixture(scope="module")
def fitted():
    return BlockModels(check_ph=False).fit(_example_timeline(n=800, seed=3))


def _models(fitted, p_contact, p_price, contact_hr=1.5, price_hr=1.0):
    bm = copy.copy(fitted)
    tests = fitted.lr_tests["test"]
    bm.lr_tests = fitted.lr_tests.assign(p=np.where(
        tests == "contact | price", p_contact, np.where(tests == "price | contact", p_price,
                                                        fitted.lr_tests["p"])))
    rows = []
    for block, cov, phrase, hr in (
            ("contact", "months_since_contact", "for every 6 months without contact",
             contact_hr),
            ("price", "loyalty_penalty", "for paying 10% more than new customers", price_hr)):
        clear = abs(np.log(hr)) > 0.05
        rows.append({"block": block, "covariate": cov, "label": cov, "unit": cov,
                     "phrase": phrase, "hr": hr, "lower": hr * (0.9 if clear else 0.8),
                     "upper": hr * (1.1 if clear else 1.25), "p": 0.001 if clear else 0.5})
    bm.effects = pd.DataFrame(rows)
    return bm


def _what_if(contact, price, seed=0):
    """Levers from (change, sd): 95% and 90% intervals and bootstrap draws to match."""
    rng = np.random.default_rng(seed)
    recs, draws = [], {}
    for lever, (change, sd) in (("contact", contact), ("price", price)):
        d = change + sd * rng.standard_normal(400)
        draws[lever] = d
        lo, hi = np.percentile(d, [2.5, 97.5])
        elo, ehi = np.percentile(d, [5, 95])
        recs.append({"lever": lever, "available": True, "description": lever,
                     "contact_every_months": 6.0 if lever == "contact" else None,
                     "departures_expected": 1000.0, "departures_under_lever": 1000 * (1 + change),
                     "change": change, "change_ci_low": lo, "change_ci_high": hi,
                     "change_eq_low": elo, "change_eq_high": ehi,
                     "customers_kept": -1000 * change, "revenue_kept": 1.0})
    return SimpleNamespace(summary=pd.DataFrame(recs), draws=draws)


def test_neither_when_both_levers_are_too_small_to_matter(fitted):
    v = decide_verdict(_models(fitted, 0.4, 0.6, contact_hr=1.0),
                       what_if=_what_if((0.004, 0.01), (-0.006, 0.012)))
    assert v.label == "neither", v.sentence
    assert "by more than 5%" in v.sentence and "too little to matter" in v.sentence
    assert "explains departures" not in v.sentence
    assert v.evidence["basis"] == "what-if levers"


def test_a_significant_but_tiny_effect_does_not_count(fitted):
    """Size counts: p far below alpha, yet the lever moves departures by ~1%."""
    v = decide_verdict(_models(fitted, 1e-9, 1e-9, price_hr=1.02),
                       what_if=_what_if((-0.012, 0.003), (-0.01, 0.003)))
    assert v.evidence["lever_status"] == {"contact": "negligible", "price": "negligible"}
    assert v.label == "neither"
    assert "Both" not in v.sentence


def test_margin_reaches_the_rule_through_decide_verdict(fitted):
    bm = _models(fitted, 0.4, 0.6, contact_hr=1.0)
    wi = _what_if((0.01, 0.02), (-0.01, 0.02))
    assert decide_verdict(bm, what_if=wi, equivalence_margin=0.05).label == "neither"
    tight = decide_verdict(bm, what_if=wi, equivalence_margin=0.02)
    assert tight.label == "inconclusive"
    assert "too little to matter" not in tight.sentence and "no clear effect" in tight.sentence
    # no lever size is claimed here, so no causal condition is attached to one
    assert "cause and effect" not in tight.sentence


def test_contact_counts_only_when_its_lever_and_its_test_agree(fitted):
    wi = _what_if((-0.25, 0.02), (-0.01, 0.04))
    v = decide_verdict(_models(fitted, 1e-6, 0.5), what_if=wi)
    assert v.label == "contact"
    assert v.sentence.startswith("Lack of contact explains departures better than price.")
    assert "would cut departures in the period studied by about 25%" in v.sentence
    # observational data: the lever's size is stated as conditional on causation
    assert "If the link the model found is cause and effect, contacting every" in v.sentence
    # the same lever without a confirming test: not counted, and said so
    v = decide_verdict(_models(fitted, 0.3, 0.5, contact_hr=1.0), what_if=wi)
    assert v.label == "inconclusive"
    assert "does not confirm a clear effect" in v.sentence
    assert "explains departures better" not in v.sentence


def test_contact_that_raises_departures_is_named_with_its_reading(fitted):
    v = decide_verdict(_models(fitted, 1e-6, 0.5, contact_hr=0.7),
                       what_if=_what_if((0.15, 0.02), (0.0, 0.02)))
    assert v.label == "contact"
    assert v.evidence["directions"]["contact"] == "raises departures"
    assert "would raise departures" in v.sentence and "customers lost" in v.sentence
    assert "reactive" in v.sentence and "annoy" in v.sentence
    assert "Lack of contact explains" not in v.sentence
    assert "explains departures better" not in v.sentence


def test_both_says_which_lever_matters_more_and_by_how_much(fitted):
    v = decide_verdict(_models(fitted, 1e-6, 1e-6, price_hr=1.3),
                       what_if=_what_if((-0.30, 0.02), (-0.10, 0.02)))
    assert v.label == "both"
    assert v.evidence["explains_more"] == "contact"
    assert "the contact lever changes more departures than the price lever, by 20 " \
           "percentage points" in v.sentence
    close = decide_verdict(_models(fitted, 1e-6, 1e-6, price_hr=1.3),
                           what_if=_what_if((-0.20, 0.04), (-0.19, 0.04)))
    assert close.label == "both" and close.evidence["explains_more"] is None
    assert "neither lever clearly changes more departures" in close.sentence
    assert "lever changes more departures than the" not in close.sentence


def test_without_levers_the_rule_falls_back_on_the_tests(fitted):
    unavailable = SimpleNamespace(summary=pd.DataFrame(
        [{"lever": lv, "available": False, "why": "flat table"} for lv in
         ("contact", "price", "both")]), draws={})
    v = decide_verdict(_models(fitted, 1e-6, 0.5), what_if=unavailable)
    assert v.evidence["basis"] == "tests" and v.label == "contact"
    assert "would cut departures" not in v.sentence
    # the tests decide here, but their statistics go to the methods, not the answer
    assert "likelihood-ratio p" in v.evidence["statistics"]
    assert "likelihood-ratio" not in v.sentence and "Holm" not in v.sentence


def test_confirmed_lever_has_no_caveat_and_price_that_lowers_departures_is_said(fitted):
    wi = _what_if((-0.25, 0.02), (-0.01, 0.04))
    v = decide_verdict(_models(fitted, 1e-6, 0.5), what_if=wi)
    assert "does not confirm" not in v.sentence
    assert "Higher prices go with FEWER departures" not in v.sentence
    # a clear price lever that RAISES departures: higher prices, fewer departures
    v = decide_verdict(_models(fitted, 0.5, 1e-6, contact_hr=1.0, price_hr=0.8),
                       what_if=_what_if((0.0, 0.02), (0.12, 0.02)))
    assert v.label == "price" and v.evidence["directions"]["price"] == "lowers departures"
    assert "Higher prices go with FEWER departures" in v.sentence
    assert "Price explains departures" not in v.sentence


def test_contact_the_customer_started_is_a_symptom_not_attention(fitted):
    bm = _models(fitted, 1e-6, 0.5, contact_hr=0.7)
    inbound = decide_verdict(bm, contact_kind="inbound")
    assert "contacts the customer started" in inbound.sentence
    assert "symptom" in inbound.sentence and "reactive" not in inbound.sentence
    assert "explains departures" not in inbound.sentence
    outbound = decide_verdict(bm)
    assert "symptom" not in outbound.sentence and "reactive" in outbound.sentence
