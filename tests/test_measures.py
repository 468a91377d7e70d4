"""One vocabulary of measures: no code name or jargon reaches the manager (issue 15, point 2).

The forbidden strings are the ones the issue quotes from real reports: ``TechSupport[Yes]``,
``loyalty_penalty``, "see the refit in ph_remedy", "per SD of MonthlyCharges (30.1 units)",
yes/no columns as 0.0/1.0, and snapshot columns called "a fact known when the customer
joined".
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from retention_study.analysis.km import KMResult
from retention_study.analysis.results import Results
from retention_study.episodes import measures
from retention_study.present import forest, narrative, plots

JARGON = ("TechSupport[Yes]", "loyalty_penalty", "ph_remedy", "per SD", "SD of",
          "(30.1 units)", "a fact known when the customer joined", "x log(tenure)")

#: The IBM Telco run's results, as results.json holds them (numbers from that run).
IBM = {
    "verdict": "contact", "format": "table", "alpha": 0.05,
    "verdict_sentence": ("Customers left 0.69 times as often with TechSupport[Yes] (vs without) "
                         "(95% CI 0.53–0.90); customers left 0.78 times as often per SD of "
                         "MonthlyCharges (30.1 units) (95% CI 0.20–3.00), not clearly different "
                         "from no effect. The contact measure (TechSupport[Yes]) explains "
                         "departures better than the price measure (MonthlyCharges)."),
    "n_customers": 7032, "n_departures": 1869, "customer_years": 18999.0,
    "effects": [
        {"block": "contact", "covariate": "TechSupport[Yes]", "label": "1 if TechSupport is "
         "'Yes', else 0 (reference: 'No') (contact: contact by the supplier, measured once "
         "at the snapshot)", "unit": "TechSupport[Yes] yes vs no",
         "phrase": "with TechSupport[Yes] (vs without)", "hr": 0.69, "lower": 0.53,
         "upper": 0.90, "p": 0.0056},
        {"block": "price", "covariate": "MonthlyCharges", "label": "MonthlyCharges as recorded",
         "unit": "+1 SD of MonthlyCharges (30.1 units)",
         "phrase": "per SD of MonthlyCharges (30.1 units)", "hr": 0.78, "lower": 0.20,
         "upper": 3.0, "p": 0.71}],
    "blocks": {"price": ["MonthlyCharges"], "contact": ["TechSupport[Yes]"], "service": [],
               "controls": ["Contract[One year]", "PhoneService"]},
    "definitions": {"TechSupport[Yes]": "1 if TechSupport is 'Yes', else 0 (reference: 'No') "
                    "(contact: contact by the supplier, measured once at the snapshot)",
                    "MonthlyCharges": "MonthlyCharges as recorded (a price proxy)",
                    "Contract[One year]": "1 if Contract is 'One year', else 0 (reference: "
                    "'Month-to-month') (control: adjusted for)",
                    "PhoneService": "PhoneService as recorded (adjusted for)"},
    "roles": {"price": ["MonthlyCharges"], "contact": ["TechSupport"],
              "controls": ["Contract", "PhoneService"], "contact_kind": "outbound"},
    "km": {"PhoneService": [{"group": "0.0", "customers": 680, "departures": 170,
                             "median_months": None},
                            {"group": "1.0", "customers": 6352, "departures": 1699,
                             "median_months": None}]},
    "ph_check": {"tests": [{"covariate": "TechSupport[Yes]", "p": 0.001}],
                 "remedy": {"description": "Final model refitted with TechSupport[Yes] x "
                            "log(tenure) interactions.", "summary": [
                                {"covariate": "TechSupport[Yes]", "coef": -0.5, "se": 0.2,
                                 "p": 0.01},
                                {"covariate": "TechSupport[Yes]:log_t", "coef": 0.07,
                                 "se": 0.05, "p": 0.12}]}},
    "problems": ["Proportional hazards fails for TechSupport[Yes] (the effect changes with "
                 "tenure); see the refit in ph_remedy."],
    "unmeasured": [], "reasons": {"available": False, "why": "no reasons"},
    "claims": [{"claim": 1, "title": "Price is rarely the real reason", "status": "supported",
                "number": "HR 0.69 for TechSupport[Yes]", "why": "contact adds to price"}],
    "parameters": {"data": {"units": {"MonthlyCharges": "EUR per month"}}},
}


def _all_text(payload: dict) -> str:
    results = Results.from_dict(payload)
    parts = [narrative.executive_summary(results), narrative.forest_reading(results),
             narrative.km_reading(results.km["PhoneService"], "PhoneService"),
             narrative.ph_reading(results), narrative.limits_reading(results)]
    for table in (narrative.definitions_table(results), narrative.ph_remedy_table(results),
                  narrative.claims_table(results)):
        parts.append(table.to_csv(index=False))
    return "\n".join(parts)


@pytest.mark.parametrize("jargon", JARGON)
def test_no_code_name_or_jargon_reaches_the_text(jargon):
    assert jargon not in _all_text(IBM)


def test_yes_no_columns_read_as_words_not_numbers():
    text = narrative.km_reading(IBM["km"]["PhoneService"], "PhoneService")
    assert "no: 680 customers" in text and "yes: 6,352 customers" in text
    assert not re.search(r"\b[01]\.0\b", text)


def test_configured_unit_reaches_the_sentence():
    text = narrative.forest_reading(Results.from_dict(IBM))
    assert "for every 30.1 EUR per month more in monthly charges" in text
    assert "with tech support (against customers without)" in text
    without = Results.from_dict(dict(IBM, parameters={"data": {}}))
    assert "for every 30.1 more in monthly charges" in narrative.forest_reading(without)


def test_snapshot_columns_are_not_called_baseline_facts():
    text = narrative.km_reading(IBM["km"]["PhoneService"], "PhoneService")
    assert "at the snapshot" in text
    cohort = narrative.km_reading([{"group": "2020", "customers": 3, "departures": 1}], "cohort")
    assert "the year the customer joined" in cohort


def test_every_builder_measure_has_one_entry_with_all_fields():
    from retention_study.analysis.models import BUSINESS_UNITS

    for name, (_scale, unit, phrase) in BUSINESS_UNITS.items():
        m = measures.MEASURES[name]  # every measure the models scale has words here
        assert m.business_unit == unit and m.phrase == phrase, name
        assert m.block in measures.BLOCK_NAMES and m.label and m.unit
    assert measures.expected_direction("months_since_contact") == 1
    assert measures.expected_direction("outbound_12m") == -1
    assert measures.is_headline("loyalty_penalty") and not measures.is_headline("outbound_12m")


def test_plots_take_labels_from_the_vocabulary():
    assert forest.BLOCK_NAMES is measures.BLOCK_NAMES
    eff = pd.DataFrame(IBM["effects"])
    ticks = [t.get_text() for t in forest.plot_forest(eff).get_yticklabels()]
    plt.close("all")
    assert not any(j in t for t in ticks for j in JARGON + ("[",))


def test_km_legend_and_at_risk_rows_show_yes_no():
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(0)
    fitters = {g: KaplanMeierFitter(label=g).fit(rng.exponential(10, 30), np.ones(30))
               for g in ("0.0", "1.0")}
    ax = plots.plot_km(KMResult(by="PhoneService", fitters=fitters))
    ax.figure.canvas.draw()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    rows = [line.split()[0] for table in ax.figure.axes[1:]
            for t in table.get_xticklabels() for line in t.get_text().split("\n")
            if line.split()]
    plt.close("all")
    assert legend == ["no", "yes"]
    assert "yes" in rows and "no" in rows
    assert "0.0" not in rows and "1.0" not in rows
