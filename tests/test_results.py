"""The typed results: results.json written and read in one place, with a schema that ships."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from retention_study.analysis.results import (
    SCHEMA_FILE,
    SCHEMA_VERSION,
    Claim,
    LRTest,
    LRTests,
    ModelFit,
    RateBand,
    Results,
    ResultsError,
    json_schema,
)


def _full() -> Results:
    """Results with every kind of field filled (records, tables, sections, None)."""
    test = LRTest("price | contact", "both", "contact", 4.66, 2, 0.0974)
    return Results(
        name="demo", package_version="0.1.0", format="events", as_of="2026-06-30",
        alpha=0.05, verdict="contact", verdict_sentence="Lack of contact explains it.",
        verdict_rule="rule", verdict_evidence={"basis": "what-if levers"},
        what_if=[{"lever": "contact", "available": True, "change": -0.29}],
        n_customers=2953, n_departures=1157, n_episodes=60357, customer_years=5029.75,
        effects=[{"block": "contact", "covariate": "months_since_contact", "hr": 1.39}],
        lr_tests=LRTests(test, None, [test]), aic=[ModelFit("price", -7580.1, 5, 15170.2)],
        rates_by_contact_band=[RateBand("0-3 months", 1914.4, 283, 14.78, 13.11, 16.61, 2572)],
        km={"plan": [{"group": "basic", "customers": 1214}]}, km_logrank={"plan": None},
        claims=[Claim(1, "Price is rarely the real reason", "supported", "p=0.097", "why")],
        problems=["a problem"], unmeasured=["price"], blocks={"contact": ["months_since_contact"]},
    )


def test_the_shipped_schema_is_the_one_the_classes_generate():
    # After changing a class in results.py: python -c "from retention_study.analysis.results import
    # write_schema; write_schema()" (and bump SCHEMA_VERSION when keys change).
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_to_json_and_from_json_round_trip_byte_for_byte():
    results = _full()
    text = results.to_json()
    back = Results.from_json(text)
    assert back == results and back.to_json() == text
    payload = json.loads(text)
    assert list(payload)[0] == "schema_version" and payload["schema_version"] == SCHEMA_VERSION
    assert list(payload) == [f.name for f in dataclasses.fields(Results)]
    jsonschema.validate(payload, json_schema())
    assert back.lr_tests.price_given_contact.p == 0.0974
    assert back.rates_by_contact_band[0].rate_per_100 == 14.78


def test_a_run_from_before_schema_version_is_read_as_now():
    old = json.loads(_full().to_json())
    del old["schema_version"]
    old["rates_by_contact_band"][0]["rate"] = old["rates_by_contact_band"][0]["rate_per_100"]
    back = Results.from_dict(old)
    assert back == _full()
    with pytest.raises(jsonschema.ValidationError):  # an old file is not the current schema
        jsonschema.validate(old, json_schema())


@pytest.mark.parametrize("change, message", [
    ({"verdict": 3}, "results.json: verdict: expected str or null, got int"),
    ({"n_customers": True}, "results.json: n_customers: expected int or null, got bool"),
    ({"verdikt": "price"}, "results.json: verdikt: unknown key"),
    ({"lr_tests": {"price_given_contact": {"p": 0.1}}},
     "results.json: lr_tests.price_given_contact.test: missing"),
    ({"rates_by_contact_band": [{"band": "x", "customer_years": 1.0, "departures": "2",
                                 "rate_per_100": 1.0, "lower": 0.1, "upper": 2.0,
                                 "customers": 3}]},
     "results.json: rates_by_contact_band[0].departures: expected int, got str"),
    ({"effects": {"hr": 1.2}}, "results.json: effects: expected a list, got dict"),
])
def test_a_results_json_that_is_not_results_is_refused_naming_the_key(change, message):
    payload = {**json.loads(_full().to_json()), **change}
    with pytest.raises(ResultsError) as err:
        Results.from_dict(payload)
    assert str(err.value) == message
    assert next(iter(jsonschema.Draft202012Validator(json_schema()).iter_errors(payload)))


def test_read_names_the_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ResultsError, match=r"results\.json: not JSON"):
        Results.read(path)
    path.write_text('{"verdict": []}', encoding="utf-8")
    with pytest.raises(ResultsError) as err:
        Results.read(path)
    assert str(err.value) == f"{path}: verdict: expected str or null, got list"
