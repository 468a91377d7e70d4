"""Grades of evidence in the headline, and advice graded by them."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from retention_study.analysis.compare import _example_timeline, decide_verdict
from retention_study.analysis.evidence import answer_heading, evidence_grade, experiment_sentence
from retention_study.analysis.models import BlockModels
from retention_study.analysis.results import Results
from retention_study.data.schema import Timeline
from retention_study.present import narrative

EFFECTS = [
    {"block": "contact", "covariate": "months_since_contact", "unit": "6 months without contact",
     "phrase": "for every 6 months without contact", "hr": 1.6, "lower": 1.5, "upper": 1.7,
     "p": 1e-9},
    {"block": "price", "covariate": "loyalty_penalty", "unit": "+10% above new price",
     "phrase": "for paying 10% more than new customers", "hr": 1.3, "lower": 1.2,
     "upper": 1.4, "p": 1e-5},
]
PLAN = {"block": "contact", "what": "contact a random half of the customers who pass 6 months "
        "without contact", "per_quarter": 812.4, "reduction": 0.15, "power": 0.8,
        "departures_needed": 1189, "months_needed": 31.0}
STATS = re.compile(r"\bp [=<]|Holm|likelihood-ratio|\bAIC\b|chi|cross-validated")


def _results(**over):
    base = {"verdict": "contact", "verdict_sentence": "Lack of contact explains departures.",
            "alpha": 0.05, "n_customers": 1234, "n_departures": 321, "customer_years": 2000.4,
            "effects": EFFECTS, "format": "events", "timeline_params": {"notice_guard": True},
            "confounding": {"experiments": [PLAN], "scan": {"flagged": []}}}
    base.update(over)
    return Results.from_dict(base)


def _answer(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(("**The answer",
                                                                       "**What the data")))


@pytest.mark.parametrize("verdict", ["contact", "price", "both", "neither", "inconclusive"])
@pytest.mark.parametrize("fmt,kind", [("events", "outbound"), ("table", "outbound"),
                                      ("table", "inbound")])
def test_no_routine_from_observational_data_and_no_bare_proxy_answer(verdict, fmt, kind):
    r = _results(verdict=verdict, format=fmt, roles={"contact": ["TechSupport"],
                                                     "contact_kind": kind})
    text = narrative.executive_summary(r)
    assert "Make contact a routine" not in text
    answer = _answer(text)
    grade = evidence_grade(r)["label"]
    assert f"(evidence: {grade})" in answer
    if fmt == "table":
        assert not answer.startswith("**The answer")
        assert "pointer rather than proof" in answer


def test_dated_records_say_so_and_propose_the_sized_test():
    text = narrative.executive_summary(_results())
    assert _answer(text).startswith("**The answer: contact** (evidence: dated records, "
                                    "observational).")
    action = text.split("**What management could do.**")[1]
    assert "Test scheduled contact" in action
    assert ("To settle it, contact a random half of the customers who pass 6 months without "
            "contact: with about 812 such customers a quarter, a 15% drop in their departures "
            "would be detected with 80% power within 31 months (1,189 departures needed).") \
        in action
    # a price verdict does not propose the contact test
    assert "To settle it" not in narrative.executive_summary(_results(verdict="price"))
    assert "To settle it" not in narrative.executive_summary(_results(verdict="neither"))


def test_impractical_test_is_called_so():
    text = experiment_sentence(dict(PLAN, months_needed=None), PLAN["what"])
    assert "not practical" in text and "within" not in text


def test_answer_paragraph_carries_no_test_statistics():
    rng = np.random.default_rng(4)
    worlds = {"contact": _example_timeline()}
    n = 800
    null = pd.DataFrame({"customer_id": np.arange(n).astype(str), "start": 0.0,
                         "months_since_contact": rng.normal(size=n),
                         "loyalty_penalty": rng.normal(size=n), "stop": rng.exponential(10, n),
                         "event": 1})
    worlds["null"] = Timeline(null, {"contact": ["months_since_contact"],
                                     "price": ["loyalty_penalty"], "service": [],
                                     "controls": []})
    labels = set()
    for tl in worlds.values():
        verdict = decide_verdict(BlockModels().fit(tl))
        labels.add(verdict.label)
        answer = _answer(narrative.executive_summary(_results(
            verdict=verdict.label, verdict_sentence=verdict.sentence)))
        assert not STATS.search(answer), answer
        # ... they are in the methods instead
        assert "Holm" in narrative.evidence_methods(
            _results(verdict_evidence=verdict.evidence))
    assert len(labels) == 2


def test_grade_methods_sentence():
    text = narrative.evidence_methods(_results(format="table", roles={"contact_kind": "inbound"}))
    assert text.startswith("Grade of evidence: Customer-initiated contact")
    assert answer_heading(_results()).startswith("**The answer")


def test_methods_sentences_appear_only_when_they_apply():
    from retention_study.present.wording import late_entry_reading

    conf = {"source": "config", "observation_start": "2023-06-30"}
    text = late_entry_reading(Results.from_dict({"late_entry": conf}))
    assert "data.observation_start" in text and "records begin" not in text
    assert narrative.grid_reading(Results.from_dict({"format": "table", "timeline_params": {"grid": "month"}})) \
        is None
    methods = narrative.evidence_methods(_results(timeline_params={"grid": "day"}))
    assert "tenure months" not in methods and "verdict's tests" not in methods
    assert "late entry" not in methods and "E-values" not in methods
    assert "survey score" not in methods  # no satisfaction column
    sat = narrative.evidence_methods(_results(roles={"satisfaction": "sat", "controls": []}))
    assert "The survey score (sat) is shown by segment but not adjusted for." in sat
    assert "survey score" not in narrative.evidence_methods(
        _results(roles={"satisfaction": "sat", "controls": ["sat"]}))


def test_confounding_reading_says_what_moved_and_what_did_not():
    ev = {"covariate": "months_since_contact", "unit": "6 months without contact", "hr": 1.4,
          "e_value": 2.1, "e_value_ci": 1.8, "transform": "none (rare outcome)"}
    scan = {"scanned": ["region", "plan"], "flagged": ["plan"], "threshold": 0.1,
            "skipped": {"account": "3000 distinct values: an identifier, not a trait"}}
    text = narrative.confounding_reading(Results.from_dict({"confounding": {"scan": scan, "e_values": [ev]}}))
    assert "plan changed at least one hazard ratio by more than 10%" in text
    assert "account was not checked" in text and "about 2.10-fold" in text
    quiet = narrative.confounding_reading(Results.from_dict({"confounding": {
        "scan": {**scan, "flagged": [], "skipped": {}},
        "e_values": [dict(ev, e_value_ci=1.0)]}}))
    assert "None changed a hazard ratio by more than 10%." in quiet
    assert "E-value" not in quiet and "not checked" not in quiet


def test_e_values_and_the_scan_speak_the_vocabulary_not_code_names():
    # IBM-shaped: a dummy and a snapshot column scaled by its SD (issue 15 point 2)
    results = Results.from_dict({"definitions": {"TechSupport[Yes]": "1 if TechSupport is 'Yes', else 0 "
                                                   "(reference: 'No')"},
               "effects": [{"covariate": "TechSupport[Yes]", "unit": "TechSupport[Yes] yes vs no"},
                           {"covariate": "MonthlyCharges",
                            "unit": "+1 SD of MonthlyCharges (30.1 units)"}],
               "confounding": {"scan": {"scanned": ["gender"], "flagged": ["gender"],
                                        "threshold": 0.1, "rows": [
                   {"column": "gender", "covariate": "MonthlyCharges", "hr_before": 0.8,
                    "hr_after": 0.6, "change": -0.25, "flagged": True}]},
                   "e_values": [{"covariate": c, "unit": "raw", "hr": 0.7, "e_value": 2.0,
                                 "e_value_ci": 1.5, "transform": "square root"}
                                for c in ("TechSupport[Yes]", "MonthlyCharges")]}})
    texts = [narrative.confounding_reading(results), narrative.confounding_note(results),
             narrative.e_value_table(results).to_string(), narrative.scan_table(results).to_string()]
    for text in texts:
        assert "SD" not in text and "[Yes]" not in text and "units)" not in text, text
    assert "monthly charges (30.1 more)" in texts[1]
    assert "Tech support" in texts[2] or "tech support" in texts[2]
