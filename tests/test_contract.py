"""The data contract's second line: values that slipped through (issue 16) and own data
(issue 15): non-finite numbers and sentinels, placeholder ids, unusable controls,
events the contract should question, NUL bytes, every problem in one run.

Each case edits the valid base of ``test_load`` by hand and states, by hand, the kind,
file, column and rows of the error, and the ledger count under ``on_invalid: exclude``.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from test_load import (
    BASE_EVENTS_LEDGER,
    BASE_TABLE_LEDGER,
    EVENT_FILES,
    TABLE,
    C,
    K,
    P,
    T,
    _append,
    _frames,
    _ledger,
    _set,
    events_config,
    table_config,
)

from retention_study import cli
from retention_study.analysis.results import Results
from retention_study.data.load import load_study_data
from retention_study.errors import DataContractError, DataContractErrors

INF_MSG = "{} must be a finite number (not inf or a sentinel such as 1e308)"
PLACEHOLDER = "customer_id is a placeholder for a missing value (NA, NULL, None, nan), not an id"


def _load_error(cfg) -> DataContractError:
    with pytest.raises(DataContractError) as info:
        load_study_data(cfg)
    assert "\n" not in str(info.value) or isinstance(info.value, DataContractErrors)
    return info.value


def _exclude(cfg) -> dict:
    cfg["data"]["on_invalid"] = "exclude"
    return _ledger(load_study_data(cfg))


# ------------------------------------------------------------------ non-finite, sentinels

# value, column, row (1-based), the price events' row: C2's second price
@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e308", "9e15"])
@pytest.mark.parametrize("column", ["monthly_price", "new_customer_price"])
def test_infinite_or_sentinel_price_is_an_error_naming_the_cell(tmp_path, value, column):
    frames = _frames(EVENT_FILES)
    _set(P, 4, column, value)(frames)
    err = _load_error(events_config(tmp_path, frames))
    assert (err.kind, err.column, err.rows) == ("non_finite", column, [4])
    assert err.file.endswith("price_events.csv")
    assert str(err) == f"{err.file}: column {column}: {INF_MSG.format(column)} (rows 4)"
    led = _exclude(events_config(tmp_path, frames))
    assert led == {**BASE_EVENTS_LEDGER, (P, INF_MSG.format(column), "invalid"): 1}


def test_a_large_but_real_price_is_kept(tmp_path):
    frames = _frames(EVENT_FILES)
    _set(P, 4, "monthly_price", "99999999")(frames)  # 1e8: absurd but finite, below 1e15
    data = load_study_data(events_config(tmp_path, frames))
    assert data.price_events["monthly_price"].max() == 99999999


@pytest.mark.parametrize("column,value,row", [("months", "inf", 2), ("months", "1e308", 4),
                                              ("monthly price", "-inf", 5),
                                              ("calls", "inf", 1)])
def test_table_non_finite_is_an_error_or_counted(tmp_path, column, value, row):
    frames = _frames({T: TABLE})
    _set(T, row, column, value)(frames)
    err = _load_error(table_config(tmp_path, frames[T]))
    assert (err.kind, err.column, err.rows) == ("non_finite", column, [row])
    led = _exclude(table_config(tmp_path, frames[T]))
    assert led == {**BASE_TABLE_LEDGER, ("table", INF_MSG.format(column), "invalid"): 1}


def test_a_non_finite_numeric_control_is_an_error(tmp_path):
    frames = _frames(EVENT_FILES)
    frames[C]["score"] = ["1", "2", "inf", "3", "4", "5"]
    err = _load_error(events_config(tmp_path, frames, controls=["plan", "score"]))
    assert (err.kind, err.column, err.rows) == ("non_finite", "score", [3])


@pytest.mark.parametrize("fmt", ["parquet", "duckdb", "sqlite"])
def test_native_inf_in_every_format(tmp_path, fmt):
    frames = _frames(EVENT_FILES)
    cfg = events_config(tmp_path, frames)
    prices = frames[P].assign(monthly_price=frames[P]["monthly_price"].astype(float))
    prices.loc[2, "monthly_price"] = np.inf  # row 3
    if fmt == "parquet":
        prices.to_parquet(tmp_path / "p.parquet")
        cfg["data"]["price_events"] = str(tmp_path / "p.parquet")
    elif fmt == "duckdb":
        with duckdb.connect(str(tmp_path / "crm.duckdb")) as con:
            con.register("f", prices)
            con.execute("CREATE TABLE prices AS SELECT * FROM f")
        cfg["data"]["price_events"] = f"{tmp_path / 'crm.duckdb'}::prices"
    else:
        with sqlite3.connect(tmp_path / "crm.sqlite") as con:
            prices.to_sql("prices", con, index=False)
        cfg["data"]["price_events"] = f"{tmp_path / 'crm.sqlite'}::prices"
    err = _load_error(cfg)
    assert (err.kind, err.column, err.rows) == ("non_finite", "monthly_price", [3])
    assert _exclude(cfg)[(P, INF_MSG.format("monthly_price"), "invalid")] == 1


# ------------------------------------------------------------------ placeholder ids


@pytest.mark.parametrize("word", ["NA", "NULL", "nan", "None", "n/a", "#N/A"])
def test_placeholder_ids_are_missing_not_ids(tmp_path, word):
    frames = _frames(EVENT_FILES)
    _set(C, 4, "customer_id", word)(frames)  # C4: one price, one contact
    _set(P, 6, "customer_id", word)(frames)
    _set(K, 5, "customer_id", word)(frames)
    err = _load_error(events_config(tmp_path, frames))
    assert isinstance(err, DataContractErrors)  # the three files at once
    assert [(p.kind, Path(p.file).stem, p.column, p.rows) for p in err.problems] == [
        ("missing_values", C, "customer_id", [4]), ("missing_values", P, "customer_id", [6]),
        ("missing_values", K, "customer_id", [5])]
    assert err.problems[0].message == PLACEHOLDER
    led = _exclude(events_config(tmp_path, frames))
    assert led == {**BASE_EVENTS_LEDGER, (C, PLACEHOLDER, "invalid"): 1,
                   (P, PLACEHOLDER, "invalid"): 1, (K, PLACEHOLDER, "invalid"): 1}


def test_placeholder_ids_in_a_table(tmp_path):
    frames = _frames({T: TABLE})
    _set(T, 2, "customer", "NULL")(frames)
    _set(T, 5, "customer", "None")(frames)
    err = _load_error(table_config(tmp_path, frames[T]))
    assert (err.kind, err.column, err.rows) == ("missing_values", "customer", [2, 5])
    led = _exclude(table_config(tmp_path, frames[T]))
    reason = PLACEHOLDER.replace("customer_id", "customer")
    assert led == {**BASE_TABLE_LEDGER, ("table", reason, "invalid"): 2}


def test_placeholder_ids_in_parquet(tmp_path):
    frames = _frames(EVENT_FILES)
    cfg = events_config(tmp_path, frames)
    frames[C].assign(customer_id=["C1", "C2", "C3", "NA", "C5", "C6"]).to_parquet(
        tmp_path / "c.parquet")
    cfg["data"]["customers"] = str(tmp_path / "c.parquet")
    err = _load_error(cfg)
    assert isinstance(err, DataContractErrors)  # and C4's events: not in customers
    assert (err.kind, err.column, err.rows) == ("missing_values", "customer_id", [4])


# ------------------------------------------------------------------ unusable controls


def _levels_column(n: int) -> list[str]:
    return [f"note {i}" for i in range(n)]


@pytest.mark.parametrize("key,column,why", [
    ("controls", "start_date", "is a date column"),
    ("controls", "joined", "is a date column"),
    ("segments", "customer_id", "is the customer id (every customer its own level)"),
    ("controls", "churned", "is the outcome"),
])
def test_a_control_must_be_a_customer_attribute(tmp_path, key, column, why):
    frames = _frames(EVENT_FILES)
    frames[C]["joined"] = frames[C]["start_date"]
    err = _load_error(events_config(tmp_path, frames, **{key: [column]}))
    assert (err.kind, err.column, err.rows) == ("unusable_attribute", column, [])
    assert err.message.startswith(f"data.{key}: {column} {why}: a control or segment must be")
    # not a row problem: refused under exclude as well
    with pytest.raises(DataContractError, match=re.escape(why)):
        load_study_data(events_config(tmp_path, frames, on_invalid="exclude", **{key: [column]}))


def test_free_text_with_many_levels_is_refused_but_100_levels_are_fine(tmp_path):
    base = _frames(EVENT_FILES)[C]
    many = pd.concat([base.iloc[:5]] * 30, ignore_index=True)
    many["customer_id"] = [f"X{i}" for i in range(len(many))]
    frames = {**_frames(EVENT_FILES), C: many.assign(note=_levels_column(150))}
    frames[P] = frames[P].iloc[0:0]
    frames[P].loc[0] = ["X0", "2024-01-15", "30", "30"]
    frames[K] = frames[K].iloc[:1].assign(customer_id="X0")
    err = _load_error(events_config(tmp_path, frames, controls=["note"]))
    assert err.kind == "unusable_attribute" and err.column == "note"
    assert "has 150 distinct values (free text or an id); a control or segment may have at " \
           "most 100" in err.message
    frames[C]["note"] = [f"n{i % 100}" for i in range(150)]
    assert load_study_data(events_config(tmp_path, frames, controls=["note"])).n_customers == 150


def test_table_id_and_outcome_cannot_be_segments(tmp_path):
    frame = _frames({T: TABLE})[T]
    err = _load_error(table_config(tmp_path, frame, segments=["customer", "months"]))
    assert [(p.kind, p.column) for p in err.problems] == [
        ("unusable_attribute", "customer"), ("unusable_attribute", "months")]


# ------------------------------------------------------------------ events to question


def test_events_before_the_customers_start(tmp_path):
    frames = _frames(EVENT_FILES)
    _set(P, 5, "effective_date", "2024-06-01")(frames)  # C3 starts 2024-06-10
    _set(K, 1, "contact_date", "2023-12-31")(frames)  # C1 starts 2024-01-15
    err = _load_error(events_config(tmp_path, frames))
    assert [(p.kind, p.column, p.rows) for p in err.problems] == [
        ("event_before_start", "effective_date", [5]),
        ("event_before_start", "contact_date", [1])]
    assert _exclude(events_config(tmp_path, frames)) == {
        **BASE_EVENTS_LEDGER, (P, "effective_date before the customer's start_date", "invalid"): 1,
        (K, "contact_date before the customer's start_date", "invalid"): 1}


def test_the_whole_price_file_twice_is_counted_and_changes_nothing(tmp_path):
    once = load_study_data(events_config(tmp_path, _frames(EVENT_FILES)))
    frames = _frames(EVENT_FILES)
    frames[P] = pd.concat([frames[P], frames[P]], ignore_index=True)
    for on_invalid in ("error", "exclude"):
        twice = load_study_data(events_config(tmp_path, frames, on_invalid=on_invalid))
        pd.testing.assert_frame_equal(twice.price_events, once.price_events)
        # 9 copies; C6's copy is out of scope first (with its original): 8 dropped as copies
        assert _ledger(twice) == {
            ("customers", "joined after as_of", "out_of_scope"): 1,
            (P, "customer out of scope", "out_of_scope"): 2,
            (P, "exact duplicate row (an identical copy, dropped)", "duplicate"): 8}
        assert twice.ledger.rows_analysed(P) == 8 == len(twice.price_events)


def test_a_copied_contact_would_count_twice(tmp_path):
    frames = _frames(EVENT_FILES)
    _append(K, ["C5", "2025-10-01", "outbound", "visit", "check-in"])(frames)  # row 7 = row 6
    err = _load_error(events_config(tmp_path, frames))
    assert (err.kind, err.column, err.rows) == ("duplicate_row", None, [7])
    assert str(err).endswith("contact_events.csv: exact duplicate row (the contact would "
                             "count twice) (rows 7)")
    assert _exclude(events_config(tmp_path, frames)) == {
        **BASE_EVENTS_LEDGER,
        (K, "exact duplicate row (the contact would count twice)", "invalid"): 1}


def test_two_prices_on_one_date(tmp_path):
    frames = _frames(EVENT_FILES)
    _append(P, ["C1", "2025-01-15", "35", "29"])(frames)  # row 10 vs row 2 (33)
    _append(P, ["C1", "2025-01-15", "33", "29"])(frames)  # row 11: a copy of row 2
    err = _load_error(events_config(tmp_path, frames))
    assert (err.kind, err.column, err.rows) == ("conflicting_price", "effective_date", [2, 10])
    led = _exclude(events_config(tmp_path, frames))
    assert led == {**BASE_EVENTS_LEDGER,
                   (P, "exact duplicate row (an identical copy, dropped)", "duplicate"): 1,
                   (P, "two different prices on one effective_date", "invalid"): 2}


def test_nul_bytes_name_the_file_and_rows(tmp_path):
    cfg = events_config(tmp_path, _frames(EVENT_FILES))
    path = Path(cfg["data"]["contact_events"])
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"phone", b"ph\x00one")  # data row 1
    lines[5] = lines[5] + b"\x00\x00"  # data row 5
    path.write_bytes(b"\n".join(lines))
    err = _load_error(cfg)
    assert (err.kind, err.file, err.rows) == ("nul_bytes", str(path), [1, 5])
    assert str(err) == (f"{path}: NUL bytes in the file (binary data or a mis-saved export; "
                        "save it again as UTF-8 CSV) (rows 1, 5)")


def test_a_utf16_export_is_read_not_refused(tmp_path):
    frames = _frames(EVENT_FILES)
    cfg = events_config(tmp_path, frames)
    reference = load_study_data(cfg).customers
    path = Path(cfg["data"]["customers"])
    path.write_bytes(path.read_text().encode("utf-16"))
    pd.testing.assert_frame_equal(load_study_data(cfg).customers, reference)


# ------------------------------------------------------------------ all problems at once


def test_every_problem_of_a_file_in_one_run(tmp_path, capsys):
    frames = _frames(EVENT_FILES)
    _set(C, 2, "start_date", "2024-13-01")(frames)
    _set(C, 4, "churned", "maybe")(frames)
    _set(P, 1, "monthly_price", "inf")(frames)
    _set(P, 7, "monthly_price", "forty")(frames)  # C5 (row 3 is C2's: its start is bad)
    _set(K, 4, "direction", "sideways")(frames)
    cfg = events_config(tmp_path, frames)
    err = _load_error(cfg)
    assert [(Path(p.file).stem, p.kind, p.column, p.rows) for p in err.problems] == [
        (C, "bad_date", "start_date", [2]), (C, "bad_churned", "churned", [4]),
        (P, "non_finite", "monthly_price", [1]), (P, "bad_price", "monthly_price", [7]),
        (K, "bad_direction", "direction", [4])]
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": cfg["data"]}))
    assert cli.main(["check", str(config)]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 5
    assert all(line.startswith("retention-study: error: ") for line in err_lines)
    assert err_lines[3].endswith("price_events.csv: column monthly_price: monthly_price must "
                                 "be a number > 0 (rows 7)")


def test_problems_beyond_the_limit_are_counted(tmp_path):
    problems = [DataContractError(f"problem {i}", file="f.csv") for i in range(25)]
    lines = str(DataContractErrors(problems)).splitlines()
    assert len(lines) == 21 and lines[19] == "f.csv: problem 19"
    assert lines[20] == "... and 5 more problems"


# ------------------------------------------------------------------ own data in minutes

DUTCH = {"customers": {"customer_id": "Klantnr", "start_date": "Startdatum",
                       "end_date": "Einddatum", "notice_date": "Opzegdatum",
                       "churned": "Vertrokken", "exit_reason": "Reden"},
         "price_events": {"customer_id": "Klantnr", "effective_date": "Ingangsdatum",
                          "monthly_price": "Maandprijs", "new_customer_price": "Nieuwprijs"},
         "contact_events": {"customer_id": "Klantnr", "contact_date": "Datum",
                            "direction": "Richting", "channel": "Kanaal", "topic": "Onderwerp"}}


def _dutch_frames() -> dict:
    frames = _frames(EVENT_FILES)
    for table, mapping in DUTCH.items():
        frames[table] = frames[table].rename(columns=mapping)
    words = {"outbound": "Uitgaand", "inbound": "in"}
    frames[K]["Richting"] = frames[K]["Richting"].str.lower().map(words)
    return frames


def test_column_and_direction_mapping_reads_a_dutch_export_like_the_base(tmp_path):
    (tmp_path / "ref").mkdir()
    reference = load_study_data(events_config(tmp_path / "ref", _frames(EVENT_FILES)))
    cfg = events_config(tmp_path, _dutch_frames(), columns=DUTCH,
                        direction_values={"outbound": ["uitgaand"], "inbound": ["in", "binnen"]})
    data = load_study_data(cfg)
    for got, want in zip([data.customers, data.price_events, data.contact_events],
                         [reference.customers, reference.price_events,
                          reference.contact_events], strict=True):
        pd.testing.assert_frame_equal(got, want)
    assert _ledger(data) == BASE_EVENTS_LEDGER


def test_mapped_columns_are_named_as_the_file_names_them(tmp_path):
    frames = _dutch_frames()
    _set(C, 2, "Startdatum", "2024-13-01")(frames)
    _set(K, 4, "Richting", "sideways")(frames)
    cfg = events_config(tmp_path, frames, columns=DUTCH,
                        direction_values={"outbound": "uitgaand", "inbound": ["in"]})
    err = _load_error(cfg)
    assert [(p.column, p.rows) for p in err.problems] == [("Startdatum", [2]), ("Richting", [4])]
    assert str(err.problems[1]).endswith(
        "column Richting: direction must be one of outbound, inbound (or uitgaand, in: "
        "data.direction_values) (rows 4)")
    no_words = _load_error(events_config(tmp_path, _dutch_frames(), columns=DUTCH))
    assert no_words.kind == "bad_direction" and no_words.rows == [1, 2, 3, 4, 5, 6]


def test_a_mapping_to_a_column_that_does_not_exist(tmp_path):
    mapping = {"customers": {**DUTCH["customers"], "start_date": "Begin"}}
    frames = {**_frames(EVENT_FILES), C: _dutch_frames()[C]}
    err = _load_error(events_config(tmp_path, frames, columns=mapping))
    assert (err.kind, err.column) == ("unknown_column", "Begin")
    assert "data.columns.customers.start_date maps to a column that does not exist" in str(err)


@pytest.mark.parametrize("spec,match", [
    ({"klanten": {}}, "unknown table 'klanten'"),
    ({"customers": {"id": "Klantnr"}}, "unknown column 'id'"),
    ({"customers": ["Klantnr"]}, "must be a mapping"),
])
def test_column_mapping_config_errors(tmp_path, spec, match):
    from retention_study.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        load_study_data(events_config(tmp_path, _frames(EVENT_FILES), columns=spec))


def test_event_log_options_on_a_table_are_config_errors_not_ignored(tmp_path):
    from retention_study.errors import ConfigError

    frame = _frames({T: TABLE})[T]
    with pytest.raises(ConfigError) as info:
        table_config(tmp_path, frame, columns={"customers": {"customer_id": "customer"}},
                     direction_values={"outbound": ["out"]}, decimal=",", thousands=",")
    lines = str(info.value).splitlines()
    assert lines == ["config: data.thousands (',') must differ from data.decimal",
                     "config: data.columns applies to data.format 'events' only (a table's "
                     "columns are mapped by data.duration, data.event, data.price, ...)",
                     "config: data.direction_values applies to data.format 'events' only (a "
                     "table's columns are mapped by data.duration, data.event, data.price, "
                     "...)"]


def test_decimal_commas_get_a_hint_and_an_option(tmp_path):
    frames = _frames({T: TABLE})
    frames[T]["monthly price"] = ["30,5", "45", "40", "50,25", "35", "55,75"]
    err = _load_error(table_config(tmp_path, frames[T]))
    assert (err.kind, err.column, err.rows) == ("bad_price", "monthly price", [1, 4, 6])
    assert str(err).endswith("column monthly price: monthly price must be a number >= 0; "
                             "looks like decimal commas: set data.decimal: ',' (rows 1, 4, 6)")
    data = load_study_data(table_config(tmp_path, frames[T], decimal=","))
    assert data.table["monthly price"].tolist() == [30.5, 45, 50.25, 35, 55.75]


def test_thousands_and_decimal_in_a_semicolon_csv(tmp_path):
    path = tmp_path / "t.csv"
    rows = [";".join(r) for r in TABLE]
    rows[1] = rows[1].replace("30.5", "1.030,5")
    path.write_text("\n".join(rows) + "\n")
    data = load_study_data(table_config(tmp_path, None, path=str(path), decimal=",",
                                        thousands="."))
    assert data.table["monthly price"].tolist() == [1030.5, 45, 50, 35, 55]


def test_decimal_commas_in_price_events(tmp_path):
    frames = _frames(EVENT_FILES)
    _set(P, 2, "monthly_price", "33,00")(frames)
    err = _load_error(events_config(tmp_path, frames))
    assert "looks like decimal commas" in err.message and err.rows == [2]
    data = load_study_data(events_config(tmp_path, frames, decimal=","))
    assert data.price_events["monthly_price"].iloc[1] == 33.0


# ------------------------------------------------------------------ a table's contact recency


def _recency_table(path: Path, n: int = 1500, hr_6m: float = 1.5, seed: int = 3) -> None:
    """Simulated truth: the monthly hazard rises by ``hr_6m`` per 6 months without contact."""
    rng = np.random.default_rng(seed)
    months_since = rng.uniform(0, 30, n).round(1)  # some beyond the 24-month cap
    price = rng.normal(50, 10, n).round(2)
    capped = np.minimum(months_since, 24)
    rate = 0.03 * np.exp(np.log(hr_6m) / 6 * capped)
    tenure = np.minimum(rng.exponential(1 / rate), 36)
    frame = pd.DataFrame({"id": [f"K{i}" for i in range(n)], "tenure": tenure.round(3) + 0.001,
                          "left": np.where(tenure < 36, "yes", "no"), "bill": price,
                          "months_since_call": months_since,
                          "plan": rng.choice(["a", "b"], n)})
    frame.to_csv(path, index=False)


def test_a_table_column_that_is_months_since_contact_is_used_as_that_measure(tmp_path):
    from retention_study.analysis.pipeline import fit_models
    from retention_study.config import resolve_config
    from retention_study.episodes.timeline import build_timeline
    from retention_study.present.narrative import proxy_reading

    _recency_table(tmp_path / "t.csv")
    cfg = resolve_config({"data": {
        "format": "table", "path": str(tmp_path / "t.csv"), "id": "id", "duration": "tenure",
        "event": {"column": "left", "values": ["yes"]}, "price": ["bill"],
        "contact": ["months_since_call"], "controls": ["plan"],
        "units": {"months_since_call": "months", "bill": "EUR per month"}}})
    data = load_study_data(cfg)
    assert data.roles["units"] == {"months_since_call": "months", "bill": "EUR per month"}
    assert data.roles["contact_recency"] == {"column": "months_since_call", "unit": "months",
                                             "months_per_unit": 1.0}
    tl = build_timeline(data, contact_cap_months=24)
    assert tl.blocks["contact"] == ["months_since_contact"]
    got = tl.episodes.set_index("customer_id")["months_since_contact"]
    want = data.table.set_index("customer_id")["months_since_call"].clip(upper=24)
    np.testing.assert_allclose(got.loc[want.index], want)
    assert tl.definitions["months_since_contact"].startswith(
        "months since the supplier last contacted the customer (months_since_call in the "
        "table, in months), capped at 24")
    assert not [u for u in tl.unmeasured if u.startswith("supplier contact")]
    effect = fit_models(tl, cfg, cross_validate=False, check_ph=False).models.effects.set_index(
        "covariate")
    row = effect.loc["months_since_contact"]
    assert row["unit"] == "6 months without outbound contact"
    assert row["lower"] < 1.5 < row["upper"] and row["lower"] > 1  # the simulated truth
    text = proxy_reading(Results.from_dict({"format": "table", "roles": data.roles}))
    assert "cannot be measured" not in text
    assert "time since the last contact is months_since_call as the table records it" in text


def test_a_recency_in_days_is_converted_and_bad_values_are_named(tmp_path):
    frames = _frames({T: TABLE})
    cfg = table_config(tmp_path, frames[T], units={"calls": "days since the last call"})
    data = load_study_data(cfg)
    assert data.roles["contact_recency"]["months_per_unit"] == pytest.approx(12 / 365.25)
    frames[T]["calls"] = ["0", "2", "1", "-5", "0", "3"]
    err = _load_error(table_config(tmp_path, frames[T], units={"calls": "days"}))
    assert (err.kind, err.column) == ("bad_recency", "calls")


# ------------------------------------------------------------------ the probe's rows, by the CLI


def _write_config(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump({"name": "probe", "data": cfg["data"]}))
    return path


def _probe_events(tmp_path, edit=None, **data) -> Path:
    frames = _frames(EVENT_FILES)
    if edit:
        edit(frames)
    return _write_config(tmp_path, events_config(tmp_path, frames, **data))


PROBES = {
    "price_inf": (lambda p: _probe_events(p, _set(P, 2, "monthly_price", "inf")),
                  "price_events.csv: column monthly_price: monthly_price must be a finite "
                  "number (not inf or a sentinel such as 1e308) (rows 2)"),
    "new_price_inf": (lambda p: _probe_events(p, _set(P, 1, "new_customer_price", "inf")),
                      "column new_customer_price: new_customer_price must be a finite number"),
    "start_date_control": (lambda p: _probe_events(p, controls=["start_date"]),
                           "column start_date: data.controls: start_date is a date column"),
    "id_segment": (lambda p: _probe_events(p, segments=["customer_id"]),
                   "column customer_id: data.segments: customer_id is the customer id"),
    "table_tenure_inf": (lambda p: _write_config(p, table_config(p, _frames({T: TABLE})[T].assign(
        months=["12", "3", "0", "inf", "7", "15"]))),
        "table.csv: column months: months must be a finite number (not inf or a sentinel "
        "such as 1e308) (rows 4)"),
}


@pytest.mark.parametrize("probe", list(PROBES))
def test_probe_rows_are_exit_2_with_one_line(tmp_path, capsys, probe):
    make, expected = PROBES[probe]
    config = make(tmp_path)
    capsys.readouterr()
    assert cli.main(["check", str(config)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and expected in err[0], err
    assert "Traceback" not in err[0]


def test_run_with_an_infinite_price_fails_fast_with_2(tmp_path, capsys):
    """The probe's run hung (killed after 7 minutes): now the load cell fails, exit 2."""
    config = PROBES["price_inf"][0](tmp_path)
    status = cli.main(["run", str(config), "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("probe: FAILED (exit 2)")]
    assert len(line) == 1 and "monthly_price must be a finite number" in line[0]


def test_a_free_text_contact_column_or_decimal_comma_control_is_refused_with_a_hint(tmp_path):
    frame = pd.concat([_frames({T: TABLE})[T]] * 30, ignore_index=True)
    frame["customer"] = [f"T{i}" for i in range(len(frame))]
    frame["calls"] = [f"{i},5" for i in range(len(frame))]  # 180 decimal-comma numbers
    err = _load_error(table_config(tmp_path, frame))
    assert (err.kind, err.column) == ("unusable_attribute", "calls")
    assert err.message.startswith("data.contact: calls has 180 distinct values")
    assert err.message.endswith("looks like decimal commas: set data.decimal: ','")
    data = load_study_data(table_config(tmp_path, frame, decimal=","))
    assert data.table["calls"].iloc[0] == 0.5
