"""The data contract: a corpus of malformed inputs, exclusion counts, formats, real data.

Every malformed input is a small edit of a valid base built in tmp_path; each case
states, by hand, the error kind, the culprit column and rows, and what the ledger
must count when the same input is loaded with ``on_invalid: exclude``.
"""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from retention_study import cli
from retention_study.config import resolve_config
from retention_study.data.cells import coerce_covariate, normalise_tokens
from retention_study.data.load import load_study_data
from retention_study.data.readers import read_frame, sniff_delimiter, sniff_encoding
from retention_study.errors import ConfigError, DataContractError

ROOT = Path(__file__).resolve().parents[1]
REAL = Path("../shared/data/real")
AS_OF = "2026-06-30"

# ------------------------------------------------------------------ the valid base

CUSTOMERS = [
    ["customer_id", "start_date", "end_date", "notice_date", "churned", "exit_reason", "plan",
     "region"],
    ["C1", "2024-01-15", "", "", "0", "", "basic", "north"],
    ["C2", "2024-03-01", "2025-06-30", "2025-05-31", "1", "price", "premium", "south"],
    ["C3", "2024-06-10", "", "2026-06-01", "1", "moved", "basic", "south"],  # notice, still served
    ["C4", "2025-01-01", "", "", "", "", "premium", "north"],  # churned derived: 0
    ["C5", "2023-05-05", "2026-01-31", "", "1", "service", "basic", "north"],
    ["C6", "2026-08-01", "", "", "0", "", "basic", "north"],  # joined after as_of
]
PRICES = [
    ["customer_id", "effective_date", "monthly_price", "new_customer_price"],
    ["C1", "2024-01-15", "30", "30"],
    ["C1", "2025-01-15", "33", "29"],
    ["C2", "2024-03-01", "40", "40"],
    ["C2", "2025-04-01", "44", ""],
    ["C3", "2024-06-10", "30", "30"],
    ["C4", "2025-01-01", "40", "38"],
    ["C5", "2023-05-05", "30", "30"],
    ["C5", "2026-01-15", "34", "31"],
    ["C6", "2026-08-01", "30", "30"],
]
CONTACTS = [
    ["customer_id", "contact_date", "direction", "channel", "topic"],
    ["C1", "2024-02-01", "outbound", "phone", "welcome"],
    ["C1", "2025-02-01", "Inbound", "email", "billing"],
    ["C2", "2025-06-05", "outbound", "phone", "retention"],  # between notice and end: fine
    ["C3", "2026-06-02", "outbound", "phone", "retention"],  # after notice, no end yet: fine
    ["C4", "2025-03-01", "inbound", "chat", "question"],
    ["C5", "2025-10-01", "outbound", "visit", "check-in"],
]
TABLE = [
    ["customer", "months", "left", "monthly price", "calls", "plan", "reason"],
    ["T1", "12", "Yes", "30.5", "0", "basic", ""],
    ["T2", "3", "No", "45", "2", "premium", ""],
    ["T3", "0", "No", "40", "1", "basic", ""],  # no time at risk
    ["T4", "24", "Yes", "50", "5", "premium", "price"],
    ["T5", "7", "No", "35", "0", "basic", ""],
    ["T6", "15", "No", "55", "3", "premium", ""],
]
EVENT_FILES = {"customers": CUSTOMERS, "price_events": PRICES, "contact_events": CONTACTS}
BASE_EVENTS_LEDGER = {
    ("customers", "joined after as_of", "out_of_scope"): 1,
    ("price_events", "customer out of scope", "out_of_scope"): 1,
}
BASE_TABLE_LEDGER = {("table", "months is 0 (no time at risk)", "out_of_scope"): 1}


def _frames(rows_by_table: dict) -> dict[str, pd.DataFrame]:
    return {k: pd.DataFrame(v[1:], columns=v[0], dtype=object) for k, v in rows_by_table.items()}


def _write(frame: pd.DataFrame | None, path: Path) -> str:
    if frame is not None:
        frame.to_csv(path, index=False)
    return str(path)


def events_config(tmp_path: Path, frames: dict, **data) -> dict:
    paths = {k: _write(f, tmp_path / f"{k}.csv") for k, f in frames.items()}
    raw = {"data": {"format": "events", "as_of": AS_OF, "controls": ["plan", "region"],
                    **paths, **data}}
    return resolve_config(raw)


def table_config(tmp_path: Path, frame: pd.DataFrame, **data) -> dict:
    raw = {"data": {"format": "table", "path": _write(frame, tmp_path / "table.csv"),
                    "id": "customer", "duration": "months", "duration_unit": "months",
                    "event": {"column": "left", "values": ["yes"]}, "price": ["monthly price"],
                    "contact": ["calls"], "controls": ["plan"], "exit_reason": "reason",
                    "as_of": AS_OF, **data}}
    return resolve_config(raw)


def _ledger(data) -> dict:
    return {(e.table, e.reason, e.kind): e.rows for e in data.ledger.entries}


# ------------------------------------------------------------------ the base is valid


def test_events_base_loads_to_canonical_frames(tmp_path):
    data = load_study_data(events_config(tmp_path, _frames(EVENT_FILES)))
    c = data.customers
    assert c["customer_id"].tolist() == ["C1", "C2", "C3", "C4", "C5"]
    assert c["churned"].tolist() == [0, 1, 1, 0, 1]
    assert c["start_date"].dtype == "datetime64[ns]"
    assert c.loc[2, "notice_date"] == pd.Timestamp("2026-06-01") and pd.isna(c.loc[2, "end_date"])
    assert list(c.columns[:6]) == ["customer_id", "start_date", "end_date", "notice_date",
                                   "churned", "exit_reason"]
    assert "_row" not in c.columns
    p = data.price_events
    assert len(p) == 8 and p["monthly_price"].sum() == 30 + 33 + 40 + 44 + 30 + 40 + 30 + 34
    assert p["new_customer_price"].isna().sum() == 1
    assert data.contact_events["direction"].tolist().count("inbound") == 2
    assert _ledger(data) == BASE_EVENTS_LEDGER
    assert data.ledger.inputs == {"customers": 6, "price_events": 9, "contact_events": 6}
    assert data.roles["controls"] == ["plan", "region"]
    assert data.sources["customers"].endswith("customers.csv")


def test_table_base_loads_with_hand_computed_durations(tmp_path):
    data = load_study_data(table_config(tmp_path, _frames({"t": TABLE})["t"]))
    t = data.table
    assert t["customer_id"].tolist() == ["T1", "T2", "T4", "T5", "T6"]
    assert np.allclose(t["duration_days"], np.array([12, 3, 24, 7, 15]) * 365.25 / 12)
    assert t["event"].tolist() == [1, 0, 1, 0, 0]
    assert t["monthly price"].tolist() == [30.5, 45, 50, 35, 55]
    assert t["exit_reason"].tolist()[2] == "price" and t["exit_reason"].isna().sum() == 4
    assert data.roles == {"price": ["monthly price"], "contact": ["calls"], "controls": ["plan"],
                          "segments": [], "satisfaction": None, "exit_reason": "exit_reason",
                          "contact_kind": "outbound", "controls_auto": False, "units": {},
                          "contact_recency": None}
    assert _ledger(data) == BASE_TABLE_LEDGER


def test_observation_start_drops_early_leavers_and_their_events(tmp_path):
    # C2 gave notice 2025-05-31: its departure predates the window.
    data = load_study_data(events_config(tmp_path, _frames(EVENT_FILES),
                                         observation_start="2025-07-01"))
    assert "C2" not in set(data.customers["customer_id"])
    led = _ledger(data)
    assert led[("customers", "left before observation_start", "out_of_scope")] == 1
    assert led[("price_events", "customer out of scope", "out_of_scope")] == 1 + 2
    assert led[("contact_events", "customer out of scope", "out_of_scope")] == 1
    assert data.observation_start == pd.Timestamp("2025-07-01")


# ------------------------------------------------------------------ the malformed corpus


def _set(table, row, column, value):
    def edit(f):
        f[table].loc[row - 1, column] = value
    return edit


def _append(table, values):
    def edit(f):
        f[table].loc[len(f[table])] = values
    return edit


def _rename(table, old, new):
    def edit(f):
        f[table] = f[table].rename(columns={old: new})
    return edit


def _fill(table, column, value):
    def edit(f):
        f[table][column] = value
    return edit


def _header_only(table):
    def edit(f):
        f[table] = f[table].iloc[0:0]
    return edit


def _all(*edits):
    def edit(f):
        for e in edits:
            e(f)
    return edit


def _excluded(customers=0, prices=0, contacts=0, reason=None, table=None, n=0):
    """Ledger entries (beyond the base) of a case with one bad row and its events."""
    out = {}
    if reason:
        out[(table, reason, "invalid")] = n
    if prices:
        out[("price_events", "customer excluded", "invalid")] = prices
    if contacts:
        out[("contact_events", "customer excluded", "invalid")] = contacts
    return out


C, P, K = "customers", "price_events", "contact_events"
# id, edit, config overrides, kind, file, column, rows, extra ledger entries under exclude
# (None = the problem concerns the whole table: it raises even under exclude).
EVENT_CASES = [
    ("dup_id", _append(C, ["C1", "2024-01-15", "", "", "0", "", "basic", "north"]), {},
     "duplicate_id", C, "customer_id", [1, 7], _excluded(prices=2, contacts=2, table=C,
                                                          reason="duplicate customer_id", n=2)),
    ("unknown_customer", _append(P, ["C9", "2025-01-01", "30", "30"]), {},
     "unknown_customer", P, "customer_id", [10],
     _excluded(table=P, reason="customer_id not in customers", n=1)),
    ("unknown_customer_contact", _set(K, 3, "customer_id", "C22"), {},
     "unknown_customer", K, "customer_id", [3],
     _excluded(table=K, reason="customer_id not in customers", n=1)),
    ("bad_start", _set(C, 2, "start_date", "2024-13-01"), {}, "bad_date", C, "start_date", [2],
     _excluded(prices=2, contacts=1, table=C, reason="unreadable date in start_date", n=1)),
    ("blank_start", _set(C, 4, "start_date", ""), {}, "bad_date", C, "start_date", [4],
     _excluded(prices=1, contacts=1, table=C, reason="missing start_date", n=1)),
    ("bad_end", _set(C, 5, "end_date", "31/01/2026x"), {}, "bad_date", C, "end_date", [5],
     _excluded(prices=2, contacts=1, table=C, reason="unreadable date in end_date", n=1)),
    ("bad_effective", _set(P, 2, "effective_date", "yesterday"), {}, "bad_date", P,
     "effective_date", [2], _excluded(table=P, reason="missing or unreadable effective_date", n=1)),
    ("end_before_start", _set(C, 5, "end_date", "2023-01-01"), {}, "end_before_start", C,
     "end_date", [5], _excluded(prices=2, contacts=1, table=C,
                                reason="end_date before start_date", n=1)),
    ("notice_before_start", _set(C, 3, "notice_date", "2024-01-01"), {}, "notice_before_start",
     C, "notice_date", [3], _excluded(prices=1, contacts=1, table=C,
                                      reason="notice_date before start_date", n=1)),
    ("notice_after_end", _set(C, 2, "notice_date", "2025-07-15"), {}, "notice_after_end", C,
     "notice_date", [2], _excluded(prices=2, contacts=1, table=C,
                                   reason="notice_date after end_date", n=1)),
    ("end_after_as_of", _set(C, 5, "end_date", "2026-07-31"), {}, "after_as_of", C, "end_date",
     [5], _excluded(prices=2, contacts=1, table=C, reason="end_date after as_of", n=1)),
    ("contact_after_as_of", _set(K, 2, "contact_date", "2026-07-01"), {}, "after_as_of", K,
     "contact_date", [2], _excluded(table=K, reason="contact_date after as_of", n=1)),
    ("price_after_exit", _set(P, 8, "effective_date", "2026-02-15"), {}, "event_after_exit", P,
     "effective_date", [8],
     _excluded(table=P, reason="effective_date after the customer's end_date", n=1)),
    ("contact_after_exit", _set(K, 3, "contact_date", "2025-07-02"), {}, "event_after_exit", K,
     "contact_date", [3],
     _excluded(table=K, reason="contact_date after the customer's end_date", n=1)),
    ("zero_price", _set(P, 1, "monthly_price", "0"), {}, "bad_price", P, "monthly_price", [1],
     _excluded(table=P, reason="monthly_price must be a number > 0", n=1)),
    ("negative_price", _set(P, 3, "monthly_price", "-40"), {}, "bad_price", P, "monthly_price",
     [3], _excluded(table=P, reason="monthly_price must be a number > 0", n=1)),
    ("text_price", _set(P, 4, "monthly_price", "forty"), {}, "bad_price", P, "monthly_price",
     [4], _excluded(table=P, reason="monthly_price must be a number > 0", n=1)),
    ("bad_new_price", _set(P, 6, "new_customer_price", "n/a?"), {}, "bad_price", P,
     "new_customer_price", [6],
     _excluded(table=P, reason="new_customer_price must be a number > 0", n=1)),
    ("bad_direction", _set(K, 4, "direction", "sideways"), {}, "bad_direction", K, "direction",
     [4], _excluded(table=K, reason="direction must be one of outbound, inbound", n=1)),
    ("churned_value", _set(C, 1, "churned", "2"), {}, "bad_churned", C, "churned", [1],
     _excluded(prices=2, contacts=2, table=C, reason="churned must be 0/1", n=1)),
    ("churned_without_dates", _set(C, 1, "churned", "1"), {}, "bad_churned", C, "churned", [1],
     _excluded(prices=2, contacts=2, table=C,
               reason="churned contradicts end_date/notice_date", n=1)),
    ("stayed_with_end", _set(C, 5, "churned", "0"), {}, "bad_churned", C, "churned", [5],
     _excluded(prices=2, contacts=1, table=C,
               reason="churned contradicts end_date/notice_date", n=1)),
    ("missing_control", _set(C, 4, "plan", " "), {}, "missing_values", C, "plan", [4],
     _excluded(prices=1, contacts=1, table=C, reason="missing values in plan", n=1)),
    ("missing_event_id", _set(P, 3, "customer_id", ""), {}, "missing_values", P, "customer_id",
     [3], _excluded(table=P, reason="missing customer_id", n=1)),
    ("missing_column", _rename(C, "start_date", "start_dt"), {}, "missing_column", C,
     "start_date", [], None),
    ("missing_direction_column", _rename(K, "direction", "Direction "), {}, "missing_column", K,
     "direction", [], None),
    ("control_typo", None, {"controls": ["plann"]}, "unknown_column", C, "plann", [], None),
    ("no_variance", _fill(C, "region", "north"), {}, "no_variance", C, "region", [], None),
    ("no_departures", _all(_fill(C, "end_date", ""), _fill(C, "notice_date", ""),
                           _fill(C, "churned", "0"), _set(P, 8, "effective_date", "2025-01-15")),
     {}, "no_departures", C, "churned", [], None),
    ("header_only", _header_only(P), {}, "header_only", P, None, [], None),
]


@pytest.mark.parametrize("case", EVENT_CASES, ids=[c[0] for c in EVENT_CASES])
def test_event_corpus_raises_naming_the_culprit(tmp_path, case):
    _, edit, overrides, kind, table, column, rows, _ = case
    frames = _frames(EVENT_FILES)
    if edit:
        edit(frames)
    cfg = events_config(tmp_path, frames, **overrides)
    with pytest.raises(DataContractError) as info:
        load_study_data(cfg)
    err = info.value
    assert err.kind == kind
    assert err.file.endswith(f"{table}.csv") and str(err).startswith(err.file)
    assert err.column == column and (column is None or f"column {column}" in str(err))
    assert err.rows[:len(rows)] == rows
    if rows:
        assert f"(rows {', '.join(map(str, rows[:5]))}" in str(err)
    assert "\n" not in str(err)


@pytest.mark.parametrize("case", EVENT_CASES, ids=[c[0] for c in EVENT_CASES])
def test_event_corpus_under_exclude_counts_by_hand(tmp_path, case):
    _, edit, overrides, kind, *_, extra = case
    frames = _frames(EVENT_FILES)
    if edit:
        edit(frames)
    cfg = events_config(tmp_path, frames, on_invalid="exclude", **overrides)
    if extra is None:
        with pytest.raises(DataContractError) as info:
            load_study_data(cfg)
        assert info.value.kind == kind
        return
    data = load_study_data(cfg)
    assert _ledger(data) == {**BASE_EVENTS_LEDGER, **extra}
    for table, frame in (("customers", data.customers), ("price_events", data.price_events),
                         ("contact_events", data.contact_events)):
        assert data.ledger.rows_analysed(table) == len(frame)


def test_missing_and_empty_files(tmp_path):
    frames = _frames(EVENT_FILES)
    cfg = events_config(tmp_path, frames)
    cfg["data"]["customers"] = str(tmp_path / "nope.csv")
    with pytest.raises(DataContractError) as info:
        load_study_data(cfg)
    assert info.value.kind == "missing_file" and "nope.csv" in str(info.value)
    (tmp_path / "empty.csv").write_text("")
    cfg["data"]["customers"] = str(tmp_path / "empty.csv")
    with pytest.raises(DataContractError) as info:
        load_study_data(cfg)
    assert info.value.kind == "empty_file" and "empty.csv" in str(info.value)


T = "t"
TABLE_CASES = [
    ("dup_id", _set(T, 5, "customer", "T2"), {}, "duplicate_id", "customer", [2, 5],
     {("table", "duplicate customer", "invalid"): 2}),
    ("text_duration", _set(T, 2, "months", "abc"), {}, "bad_duration", "months", [2],
     {("table", "months must be a number >= 0", "invalid"): 1}),
    ("negative_duration", _set(T, 5, "months", "-7"), {}, "bad_duration", "months", [5],
     {("table", "months must be a number >= 0", "invalid"): 1}),
    ("missing_event", _set(T, 2, "left", ""), {}, "missing_values", "left", [2],
     {("table", "missing values in event column left", "invalid"): 1}),
    ("missing_price", _set(T, 5, "monthly price", ""), {}, "missing_values", "monthly price",
     [5], {("table", "missing values in monthly price", "invalid"): 1}),
    ("negative_price", _set(T, 2, "monthly price", "-3"), {}, "bad_price", "monthly price", [2],
     {("table", "monthly price must be a number >= 0", "invalid"): 1}),
    ("text_price", _set(T, 6, "monthly price", "55 EUR"), {}, "bad_price", "monthly price", [6],
     {("table", "monthly price must be a number >= 0", "invalid"): 1}),
    ("missing_contact", _set(T, 1, "calls", ""), {}, "missing_values", "calls", [1],
     {("table", "missing values in calls", "invalid"): 1}),
    ("duration_typo", None, {"duration": "month"}, "unknown_column", "month", [], None),
    ("price_typo", None, {"price": ["monthly_price"]}, "unknown_column", "monthly_price", [],
     None),
    ("event_values", None, {"event": {"column": "left", "values": ["Churned"]}},
     "event_values_unmatched", "left", [], None),
    ("no_variance", _fill(T, "plan", "basic"), {}, "no_variance", "plan", [], None),
    ("no_departures", _all(_fill(T, "left", "No"), _set(T, 3, "left", "Yes")), {},
     "no_departures", "left", [], None),
]


@pytest.mark.parametrize("case", TABLE_CASES, ids=[c[0] for c in TABLE_CASES])
def test_table_corpus(tmp_path, case):
    _, edit, overrides, kind, column, rows, extra = case
    frames = _frames({T: TABLE})
    if edit:
        edit(frames)
    with pytest.raises(DataContractError) as info:
        load_study_data(table_config(tmp_path, frames[T], **overrides))
    err = info.value
    assert err.kind == kind and err.file.endswith("table.csv")
    assert err.column == column and f"column {column}" in str(err)
    assert err.rows[:len(rows)] == rows
    cfg = table_config(tmp_path, frames[T], on_invalid="exclude", **overrides)
    if extra is None:
        with pytest.raises(DataContractError):
            load_study_data(cfg)
        return
    data = load_study_data(cfg)
    assert _ledger(data) == {**BASE_TABLE_LEDGER, **extra}
    assert data.ledger.rows_analysed("table") == len(data.table) == 5 - sum(extra.values())


def test_unknown_column_suggests_the_closest(tmp_path):
    frame = _frames({T: TABLE})[T]
    with pytest.raises(DataContractError, match="did you mean 'months'"):
        load_study_data(table_config(tmp_path, frame, duration="month"))
    with pytest.raises(DataContractError, match="did you mean 'plan'"):
        load_study_data(events_config(tmp_path, _frames(EVENT_FILES), controls=["plann"]))
    with pytest.raises(DataContractError, match="did you mean 'start_dt'"):
        frames = _frames(EVENT_FILES)
        _rename(C, "start_date", "start_dt")(frames)
        load_study_data(events_config(tmp_path, frames))


def test_concatenated_files_name_the_file_and_its_own_rows(tmp_path):
    frame = _frames({T: TABLE})[T]
    first, second = frame.iloc[:3], frame.iloc[3:].copy()
    second.loc[second.index[1], "months"] = "x"  # second file, data row 2
    paths = [_write(first, tmp_path / "a.csv"), _write(second, tmp_path / "b.csv")]
    cfg = table_config(tmp_path, None, path=paths)
    with pytest.raises(DataContractError) as info:
        load_study_data(cfg)
    assert info.value.file.endswith("b.csv") and info.value.rows == [2]
    _write(second.drop(columns="calls"), tmp_path / "b.csv")
    with pytest.raises(DataContractError) as info:
        load_study_data(cfg)
    assert info.value.kind == "missing_column" and info.value.file.endswith("b.csv")


def test_table_mapping_errors_are_config_errors(tmp_path):
    frame = _frames({T: TABLE})[T]
    with pytest.raises(ConfigError, match="duration_unit"):
        load_study_data(table_config(tmp_path, frame, duration_unit="weeks"))
    with pytest.raises(ConfigError, match="data.event"):
        load_study_data(table_config(tmp_path, frame, event="left"))


def test_generated_ids_when_no_id_column(tmp_path):
    frame = _frames({T: TABLE})[T]
    data = load_study_data(table_config(tmp_path, frame, id=None))
    assert data.table["customer_id"].tolist() == ["1", "2", "4", "5", "6"]


# ------------------------------------------------------------------ readers and formats


def test_semicolon_latin1_crlf_sniffed(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes("id;name;price\r\n1;Zoë;1,5\r\n2;Ångström;2\r\n".encode("latin-1"))
    frame = read_frame(str(path))
    assert frame["name"].tolist() == ["Zoë", "Ångström"]
    assert frame["price"].tolist() == ["1,5", "2"] and frame["_row"].tolist() == [1, 2]
    assert sniff_encoding("é".encode("latin-1") + b"abcdef") == "latin-1"
    assert sniff_delimiter("a\tb\n1\t2\n") == "\t"


def test_header_only_and_configured_delimiter(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b\n")
    with pytest.raises(DataContractError) as info:
        read_frame(str(path))
    assert info.value.kind == "header_only"
    path.write_text("a|b\n1|2\n")
    assert read_frame(str(path), delimiter="|")["b"].tolist() == ["2"]


def test_a_column_name_twice_after_trimming_is_named_not_a_traceback(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("customer_id,plan, plan\nC1,a,b\n")
    with pytest.raises(DataContractError) as info:
        read_frame(str(path))
    err = info.value
    assert err.kind == "duplicate_column" and err.column == "plan"
    assert str(err) == f"{path}: column plan: column name appears twice (after trimming spaces)"


def test_an_upper_case_duckdb_suffix_is_read_as_duckdb(tmp_path):
    db = tmp_path / "CRM.DUCKDB"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a")
    frame = read_frame(f"{db}::t")
    assert frame["a"].tolist() == [1] and frame["_file"].iat[0] == f"{db}::t"


def _canonical(data):
    return [data.customers, data.price_events, data.contact_events]


@pytest.mark.parametrize("fmt", ["parquet", "duckdb", "sqlite"])
def test_events_round_trip_through_formats(tmp_path, fmt):
    frames = _frames(EVENT_FILES)
    reference = load_study_data(events_config(tmp_path, frames))
    paths = {}
    if fmt == "parquet":
        for k, f in frames.items():
            f.to_parquet(tmp_path / f"{k}.parquet")
            paths[k] = str(tmp_path / f"{k}.parquet")
    elif fmt == "duckdb":
        db = tmp_path / "crm.duckdb"
        with duckdb.connect(str(db)) as con:
            for k, f in frames.items():
                con.register("f", f)
                con.execute(f"CREATE TABLE {k} AS SELECT * FROM f")
                con.unregister("f")
        paths = {k: f"{db}::{k}" for k in frames}
    else:
        db = tmp_path / "crm.sqlite"
        with sqlite3.connect(db) as con:
            for k, f in frames.items():
                f.to_sql(k, con, index=False)
        paths = {k: f"{db}::{k}" for k in frames}
    data = load_study_data(resolve_config({"data": {"format": "events", "as_of": AS_OF,
                                                    "controls": ["plan", "region"], **paths}}))
    for got, want in zip(_canonical(data), _canonical(reference), strict=True):
        pd.testing.assert_frame_equal(got, want)
    assert data.ledger.to_dict() == reference.ledger.to_dict()


def test_a_native_date_pandas_cannot_hold_is_an_unreadable_cell(tmp_path):
    # an open end written as 9999-12-31 in a Parquet date column (row 5 is C5)
    frames = _frames(EVENT_FILES)
    cfg = events_config(tmp_path, frames)
    customers = frames[C].copy()
    for col in ("start_date", "end_date", "notice_date"):
        customers[col] = pd.to_datetime(customers[col].replace("", None)).astype(
            "datetime64[us]")
    customers.loc[4, "end_date"] = np.datetime64("9999-12-31", "us")
    customers.to_parquet(tmp_path / "customers.parquet")
    cfg["data"]["customers"] = str(tmp_path / "customers.parquet")
    with pytest.raises(DataContractError) as info:
        load_study_data(cfg)
    err = info.value
    assert (err.kind, err.column, err.rows) == ("bad_date", "end_date", [5])
    cfg["data"]["on_invalid"] = "exclude"
    data = load_study_data(cfg)
    assert _ledger(data)[(C, "unreadable date in end_date", "invalid")] == 1
    assert "C5" not in set(data.customers["customer_id"])


@pytest.mark.parametrize("fmt", ["parquet", "sqlite"])
def test_table_with_native_dtypes(tmp_path, fmt):
    frame = _frames({T: TABLE})[T]
    reference = load_study_data(table_config(tmp_path, frame)).table
    typed = frame.assign(months=frame["months"].astype(int),
                         **{"monthly price": frame["monthly price"].astype(float)})
    if fmt == "parquet":
        typed.to_parquet(tmp_path / "t.parquet")
        cfg = table_config(tmp_path, None, path=str(tmp_path / "t.parquet"))
    else:
        with sqlite3.connect(tmp_path / "t.db") as con:
            typed.to_sql("tenure", con, index=False)
        cfg = table_config(tmp_path, None, path=str(tmp_path / "t.db"), table="tenure")
    pd.testing.assert_frame_equal(load_study_data(cfg).table, reference)


def test_tokens_and_covariates():
    assert normalise_tokens(["TRUE", "True", "false", 1, 0.0, "Yes"]).tolist() == \
        ["1", "1", "0", "1", "0", "1"]
    assert coerce_covariate(pd.Series(["TRUE", "False", "True"])).tolist() == [1.0, 0.0, 1.0]
    assert coerce_covariate(pd.Series(["Yes", "No", "No internet service"])).tolist() == \
        ["Yes", "No", "No internet service"]


# ------------------------------------------------------------------ CLI


def _bad_config(tmp_path) -> Path:
    frames = _frames(EVENT_FILES)
    _set(C, 2, "start_date", "2024-13-01")(frames)
    cfg = events_config(tmp_path, frames)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"data": {k: cfg["data"][k] for k in
                                             ("customers", "price_events", "contact_events")}}))
    return path


def test_cli_check_bad_data_one_line_exit_2(tmp_path, capsys):
    assert cli.main(["check", str(_bad_config(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "customers.csv" in err[0] and "start_date" in err[0]
    assert "(rows 2)" in err[0]


def test_cli_subprocess_no_traceback(tmp_path):
    exe = Path(sys.executable).parent / "retention-study"
    proc = subprocess.run([str(exe), "check", str(_bad_config(tmp_path))], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "bad_date" not in proc.stderr
    assert "start_date" in proc.stderr


# ------------------------------------------------------------------ the real data sets


def _csv_rows(*paths):
    rows = []
    for p in paths:
        with open(p, newline="", encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def test_ibm_telco_loads_with_known_facts():
    from retention_study.config_file import load_config

    data = load_study_data(load_config(ROOT / "configs" / "ibm_telco.yaml"))
    raw = _csv_rows(REAL / "ibm_telco_customer_churn.csv")
    assert len(raw) == 7043 and data.ledger.inputs["table"] == 7043
    assert _ledger(data) == {("table", "tenure is 0 (no time at risk)", "out_of_scope"): 11}
    assert data.table["event"].sum() == sum(r["Churn"] == "Yes" for r in raw) == 1869
    assert data.n_customers == 7032
    assert data.table["TechSupport"].nunique() == 3
    assert set(data.table["SeniorCitizen"].unique()) == {0.0, 1.0}


def test_ibm_blank_total_charges_are_missing_values():
    from retention_study.config_file import load_config

    raw = _csv_rows(REAL / "ibm_telco_customer_churn.csv")
    blank_rows = [i + 1 for i, r in enumerate(raw) if not r["TotalCharges"].strip()]
    assert len(blank_rows) == 11
    cfg = load_config(ROOT / "configs" / "ibm_telco.yaml", ["data.price=[TotalCharges]"])
    with pytest.raises(DataContractError) as info:
        load_study_data(cfg)
    assert info.value.kind == "missing_values" and info.value.column == "TotalCharges"
    assert info.value.rows == blank_rows
    cfg["data"]["on_invalid"] = "exclude"
    data = load_study_data(cfg)
    # The blank rows are the tenure-0 rows: counted once, as missing values.
    assert _ledger(data) == {("table", "missing values in TotalCharges", "invalid"): 11}


def test_bigml_both_files_with_their_quirks():
    from retention_study.config_file import load_config

    data = load_study_data(load_config(ROOT / "configs" / "bigml_telecom.yaml"))
    paths = [REAL / "telecom_churn_bigml_80.csv", REAL / "telecom_churn_bigml_20.csv"]
    assert paths[0].read_bytes().count(b"\r\n") > 0 and paths[1].read_bytes().count(b"\r") == 0
    raw = _csv_rows(*paths)
    churners = sum(r["Churn"].lower() == "true" for r in raw)
    # The copy on disk has 2,661 + 667 rows (the README says 2,666 + 667 = 3,333).
    assert data.ledger.inputs["table"] == len(raw) == 3328
    assert data.n_customers == len(raw) and data.table["event"].sum() == churners == 481
    assert data.roles["contact_kind"] == "inbound"
    assert set(data.table["International plan"].unique()) == {0.0, 1.0}
    assert data.table["duration_days"].tolist()[:2] == [128.0, 107.0]


# ------------------------------------------------------------------ the simulated world


def test_simulated_sample_matches_its_truth(small_sample):
    import json

    from retention_study.config_file import load_config

    truth = json.loads((small_sample / "truth.json").read_text())
    overrides = [f"data.{k}={small_sample / k}.csv"
                 for k in ("customers", "price_events", "contact_events")]
    overrides.append(f"data.observation_start={truth['observation_start']}")
    data = load_study_data(load_config(ROOT / "configs" / "example_events.yaml", overrides))
    counts = truth["counts"]
    assert data.ledger.inputs == {k: counts[k] for k in
                                  ("customers", "price_events", "contact_events")}
    early = counts["notice_before_observation_start"]
    assert data.n_customers == counts["customers"] - early
    assert data.customers["churned"].sum() == counts["departures_in_window"]
    still_serving = data.customers["notice_date"].notna() & data.customers["end_date"].isna()
    assert still_serving.sum() == counts["still_serving_notice_on_as_of"]
    assert [e.kind for e in data.ledger.entries] == ["out_of_scope"] * 3


def test_where_studies_one_segment_and_counts_the_rest(small_sample):
    """data.where keeps one segment; the others are out of scope and counted, not lost."""
    cfg = resolve_config({"data": {
        "customers": str(small_sample / "customers.csv"),
        "price_events": str(small_sample / "price_events.csv"),
        "contact_events": str(small_sample / "contact_events.csv"),
        "controls": ["plan", "region"], "where": {"plan": "basic"}}})
    full = pd.read_csv(small_sample / "customers.csv")
    data = load_study_data(cfg)
    assert set(data.customers["plan"]) == {"basic"}
    assert data.roles["controls"] == ["region"]  # constant inside the segment
    reasons = {e.reason: e.rows for e in data.ledger.entries}
    assert reasons["not in the segment studied (plan = basic)"] == int((full["plan"] != "basic").sum())
    assert data.contact_events["customer_id"].isin(data.customers["customer_id"]).all()


def test_float_ids_with_a_gap_meet_the_integer_ids_of_the_event_files(tmp_path):
    # pandas writes an integer id column with a missing cell to Parquet as float
    frames = _frames(EVENT_FILES)
    for key in frames:
        frames[key]["customer_id"] = frames[key]["customer_id"].str[1:]
    cfg = events_config(tmp_path, frames, on_invalid="exclude")
    customers = frames[C].assign(customer_id=[1.0, 2.0, 3.0, 4.0, np.nan, 6.0])
    customers.to_parquet(tmp_path / "customers.parquet")
    cfg["data"]["customers"] = str(tmp_path / "customers.parquet")
    data = load_study_data(cfg)
    assert data.customers["customer_id"].tolist() == ["1", "2", "3", "4"]
    assert _ledger(data) == {
        (C, "missing customer_id", "invalid"): 1, (C, "joined after as_of", "out_of_scope"): 1,
        (P, "customer_id not in customers", "invalid"): 2,  # C5's events: its id is gone
        (P, "customer out of scope", "out_of_scope"): 1,
        (K, "customer_id not in customers", "invalid"): 1}


@pytest.mark.parametrize("wanted", [1, "1", [1.0]])
def test_where_matches_a_native_float_column(tmp_path, wanted):
    # Parquet keeps a 0/1 column with a gap as float: 1.0 must match where: {senior: 1}
    frame = _frames({T: TABLE})[T].assign(senior=[1.0, 0.0, 1.0, 1.0, np.nan, 0.0],
                                          months=lambda f: f["months"].astype(float))
    frame.to_parquet(tmp_path / "t.parquet")
    cfg = table_config(tmp_path, None, path=str(tmp_path / "t.parquet"),
                       where={"senior": wanted})
    data = load_study_data(cfg)
    assert data.table["customer_id"].tolist() == ["T1", "T4"]  # T3: no time at risk
    assert _ledger(data)[("table", f"not in the segment studied (senior = "
                          f"{', '.join(str(v) for v in np.atleast_1d(wanted))})",
                          "out_of_scope")] == 3


def test_where_names_an_unknown_column(small_sample):
    cfg = resolve_config({"data": {
        "customers": str(small_sample / "customers.csv"),
        "price_events": str(small_sample / "price_events.csv"),
        "contact_events": str(small_sample / "contact_events.csv"),
        "where": {"plna": "basic"}}})
    with pytest.raises(DataContractError, match="did you mean 'plan'"):
        load_study_data(cfg)
