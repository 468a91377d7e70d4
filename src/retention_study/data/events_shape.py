"""Shape A: the customers, price_events and contact_events files into canonical frames.

Read with the config's column maps, checked by :class:`~.contract.Checker`: ids,
dates and the time logic of each customer, repeated events, prices, directions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention_study.data.cells import (
    HELPER_COLUMNS,
    cell_text,
    closest,
    id_text,
    normalise_tokens,
    read_dates,
    unique,
)
from retention_study.data.contract import (
    Checker,
    apply_where,
    check_attributes,
    data_units,
    raise_problems,
    read_input,
)
from retention_study.data.ledger import Ledger
from retention_study.data.readers import FILE_COL
from retention_study.data.schema import (
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    DIRECTIONS,
    PRICE_COLUMNS,
    StudyData,
)
from retention_study.errors import DataContractError

# ---------------------------------------------------------------- shape A

_EVENT_TABLES = {"customers": CUSTOMER_COLUMNS, "price_events": PRICE_COLUMNS,
                 "contact_events": CONTACT_COLUMNS}
_RESERVED_CUSTOMER = {
    "customer_id": "is the customer id (every customer its own level)",
    "start_date": "is a date column", "end_date": "is a date column",
    "notice_date": "is a date column", "churned": "is the outcome",
    "exit_reason": "is the stated exit reason, known only once a customer leaves",
}


def _column_maps(data: dict) -> dict[str, dict[str, str]]:
    """``data.columns`` (checked by the config): {table: {canonical name: the file's}}."""
    return data.get("columns") or {}


def _read_mapped(data: dict, key: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read one event-log file and give its columns their canonical names."""
    raw = read_input(data, data[key])
    mapping = _column_maps(data).get(key, {})
    where = str(raw[FILE_COL].iat[0])
    problems = []
    for canonical, column in mapping.items():
        if column not in raw.columns:
            near = closest(column, raw.columns)
            hint = f" (did you mean '{near}'?)" if near else ""
            problems.append(DataContractError(
                f"data.columns.{key}.{canonical} maps to a column that does not exist{hint}",
                file=where, column=column, kind="unknown_column"))
        elif canonical != column and canonical in raw.columns:
            problems.append(DataContractError(
                f"both '{column}' (data.columns.{key}.{canonical}) and a column named "
                f"'{canonical}': which one is meant?", file=where, column=column,
                kind="duplicate_column"))
    raise_problems(problems)
    return raw.rename(columns={v: k for k, v in mapping.items()}), mapping


def _load_customers(data: dict, as_of: pd.Timestamp, start: pd.Timestamp | None,
                    ledger: Ledger, problems: list) -> tuple[pd.DataFrame, set, pd.DataFrame]:
    """Return (clean customers, ids of every row read, dropped rows with why)."""
    raw, names = _read_mapped(data, "customers")
    ledger.rows_in("customers", len(raw))
    chk = Checker(raw, "customers", data, ledger, problems, names)
    controls = list(data["controls"])
    covariates = unique(controls + list(data["segments"])
                         + ([data["satisfaction"]] if data["satisfaction"] else []))
    if (chk.require(["customer_id", "start_date", "end_date"])
            + chk.require(covariates, what="mapped column")):
        chk.stop()
    check_attributes(chk, data, _RESERVED_CUSTOMER)
    ids = chk.check_ids("customer_id")
    chk.check_unique(ids, "customer_id")
    apply_where(chk, data["where"])
    s, e, n = _customer_dates(raw, chk)
    given = _churned(raw, chk)
    chk.check_missing(controls)
    chk.check_finite(covariates)
    chk.flag(s > as_of, kind="after_as_of", column="start_date",
             message="joined after as_of", out_of_scope=True)
    _check_customer_timing(chk, s, e, n, as_of)
    # A notice with no end date yet is a departure decision dated at the notice.
    derived = (e.notna() | n.notna()).astype(int)
    chk.flag(given.notna() & (given != derived), kind="bad_churned", column="churned",
             message="churned contradicts end_date/notice_date")
    if start is not None:
        chk.flag(n.fillna(e) < start, kind="out_of_scope", column="end_date",
                 message="left before observation_start", out_of_scope=True)
    out = raw.assign(customer_id=ids, start_date=s, end_date=e, notice_date=n, churned=derived)
    out["exit_reason"] = cell_text(raw["exit_reason"]) if "exit_reason" in raw else np.nan
    for col in covariates:
        out[col] = chk.covariate(col)
    clean = out.loc[~chk.bad]
    if chk.clean and clean["churned"].sum() == 0:
        chk.problem("no departures at all (no churned, end_date or notice_date in scope)",
                    column="churned", kind="no_departures")
    if chk.clean:
        chk.check_variance(clean, controls)
    others = [c for c in raw.columns if c not in CUSTOMER_COLUMNS and c not in HELPER_COLUMNS]
    return (clean[CUSTOMER_COLUMNS + others].reset_index(drop=True),
            set(ids.dropna()), _drop_reasons(chk))


def _customer_dates(raw: pd.DataFrame, chk: Checker) -> list[pd.Series]:
    """start_date, end_date, notice_date parsed (notice_date all NaT when absent)."""
    out = []
    for col in ("start_date", "end_date", "notice_date"):
        if col not in raw:
            out.append(pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"))
            continue
        parsed, bad = read_dates(raw[col])
        chk.flag(bad, kind="bad_date", column=col, message=f"unreadable date in {col}")
        out.append(parsed)
    chk.flag(out[0].isna(), kind="bad_date", column="start_date", message="missing start_date")
    return out


def _check_customer_timing(chk: Checker, s: pd.Series, e: pd.Series, n: pd.Series,
                           as_of: pd.Timestamp) -> None:
    chk.flag(e < s, kind="end_before_start", column="end_date",
             message="end_date before start_date")
    chk.flag(n < s, kind="notice_before_start", column="notice_date",
             message="notice_date before start_date")
    chk.flag(n > e, kind="notice_after_end", column="notice_date",
             message="notice_date after end_date")
    for col, d in (("end_date", e), ("notice_date", n)):
        chk.flag(d > as_of, kind="after_as_of", column=col, message=f"{col} after as_of")


def _churned(raw: pd.DataFrame, chk: Checker) -> pd.Series:
    """The given churned flag as 0/1 (NaN where blank or absent: derived from the dates)."""
    if "churned" not in raw:
        return pd.Series(np.nan, index=raw.index)
    tokens = normalise_tokens(raw["churned"]).set_axis(raw.index)
    chk.flag(tokens.notna() & ~tokens.isin(["0", "1"]), kind="bad_churned", column="churned",
             message="churned must be 0/1")
    return pd.to_numeric(tokens.where(tokens.isin(["0", "1"])), errors="coerce")


def _drop_reasons(chk: Checker) -> pd.DataFrame:
    """Each dropped customer row: its id and whether it was out of scope or invalid."""
    kind = np.where(chk.scope, "out_of_scope", "invalid")
    frame = pd.DataFrame({"customer_id": id_text(chk.frame["customer_id"]), "kind": kind})
    return frame.loc[chk.bad]


def _load_events(data: dict, key: str, customers: pd.DataFrame, known: set,
                 dropped: pd.DataFrame, as_of: pd.Timestamp, ledger: Ledger,
                 problems: list) -> pd.DataFrame:
    date_col = "effective_date" if key == "price_events" else "contact_date"
    raw, names = _read_mapped(data, key)
    ledger.rows_in(key, len(raw))
    chk = Checker(raw, key, data, ledger, problems, names)
    if chk.require(["customer_id", date_col] + (["monthly_price"] if key == "price_events"
                                                else ["direction"])):
        chk.stop()
    ids = chk.check_ids("customer_id")
    chk.flag(~ids.isin(known), kind="unknown_customer", column="customer_id",
             message="customer_id not in customers")
    # each event's row in the clean customers (-1: none), looked up once for every check
    pos = pd.Index(customers["customer_id"]).get_indexer(ids)
    _drop_with_customer(chk, ids, pos, dropped)
    dates, bad = read_dates(raw[date_col])
    chk.flag(bad | dates.isna(), kind="bad_date", column=date_col,
             message=f"missing or unreadable {date_col}")
    out = raw.assign(customer_id=ids, **{date_col: dates})
    if key == "price_events":
        out = _check_prices(out, chk)
        columns = PRICE_COLUMNS
    else:
        out = _check_contacts(raw, out, chk, _direction_words(data))
        columns = CONTACT_COLUMNS
    chk.flag(dates > as_of, kind="after_as_of", column=date_col, message=f"{date_col} after as_of")
    chk.flag(dates > _of_customer(customers["end_date"], pos, ids.index), kind="event_after_exit",
             column=date_col, message=f"{date_col} after the customer's end_date")
    # Before the start, a price or a contact would set the customer's first month.
    chk.flag(dates < _of_customer(customers["start_date"], pos, ids.index),
             kind="event_before_start", column=date_col,
             message=f"{date_col} before the customer's start_date")
    _check_repeats(chk, raw, out, key)
    return out.loc[~chk.bad, columns].reset_index(drop=True)


def _check_repeats(chk: Checker, raw: pd.DataFrame, out: pd.DataFrame, key: str) -> None:
    """Exact duplicate rows (a file appended twice) and two prices on one date."""
    cols = [c for c in raw.columns if c not in HELPER_COLUMNS]
    live = raw.loc[~chk.bad, cols]
    copies = pd.Series(False, index=raw.index)
    copies[live.index[live.duplicated(keep="first")]] = True
    if key == "price_events":
        # An identical copy of a price row changes no price: dropped, counted.
        chk.drop(copies, "exact duplicate row (an identical copy, dropped)")
        prices = out.loc[~chk.bad, ["customer_id", "effective_date", "monthly_price",
                                    "new_customer_price"]]
        distinct = prices.drop_duplicates()
        keys = distinct.loc[distinct.duplicated(["customer_id", "effective_date"], keep=False),
                            ["customer_id", "effective_date"]].drop_duplicates()
        both = pd.MultiIndex.from_frame(out[["customer_id", "effective_date"]]).isin(
            pd.MultiIndex.from_frame(keys)) if len(keys) else np.zeros(len(out), bool)
        chk.flag(pd.Series(both, index=out.index), kind="conflicting_price",
                 column="effective_date", message="two different prices on one effective_date")
    else:
        # A copied contact would count twice in the contacts of the last 12 months.
        chk.flag(copies, kind="duplicate_row", column=None,
                 message="exact duplicate row (the contact would count twice)")


def _of_customer(values: pd.Series, pos: np.ndarray, index: pd.Index) -> pd.Series:
    """``values`` (a column of the clean customers) at each event's customer; NaT for none.

    Examples
    --------
    >>> d = pd.Series(pd.to_datetime(["2025-01-01", "2025-02-01"]))
    >>> _of_customer(d, np.array([1, -1]), pd.RangeIndex(2)).tolist()
    [Timestamp('2025-02-01 00:00:00'), NaT]
    """
    return pd.Series(values.array.take(pos, allow_fill=True), index=index, name=values.name)


def _drop_with_customer(chk: Checker, ids: pd.Series, pos: np.ndarray,
                        dropped: pd.DataFrame) -> None:
    """Events of a customer who left the analysis go with it, counted by why.

    ``pos``: each event's row among the clean customers (-1: not among them).
    """
    gone = ids.notna() & (pos < 0)
    scope = dropped.loc[dropped["kind"] == "out_of_scope", "customer_id"]
    out = np.zeros(len(ids), dtype=bool)
    where = np.flatnonzero(gone.to_numpy(dtype=bool))
    out[where] = ids.iloc[where].isin(scope).to_numpy()  # only the events whose customer is gone
    chk.flag(pd.Series(out, index=ids.index), kind="out_of_scope", column="customer_id",
             message="customer out of scope", out_of_scope=True)
    # Under on_invalid: error the customer's own problem is reported; its events follow it.
    chk.flag(gone, kind="invalid", column="customer_id", message="customer excluded",
             quiet=True)


def _check_prices(out: pd.DataFrame, chk: Checker) -> pd.DataFrame:
    price, bad, hint = chk.numbers("monthly_price")
    chk.flag(bad | price.isna() | (price <= 0), kind="bad_price", column="monthly_price",
             message=f"monthly_price must be a number > 0{hint}")
    out["monthly_price"] = price
    if "new_customer_price" in chk.frame:
        new, bad, hint = chk.numbers("new_customer_price")
        chk.flag(bad | (new <= 0), kind="bad_price", column="new_customer_price",
                 message=f"new_customer_price must be a number > 0{hint}")
        out["new_customer_price"] = new
    else:
        out["new_customer_price"] = np.nan
    return out


def _direction_words(data: dict) -> dict[str, str]:
    """Cell value (lower case) -> outbound | inbound, with ``data.direction_values``
    (checked by the config: no word for both)."""
    words = {d: d for d in DIRECTIONS}
    for direction, values in (data.get("direction_values") or {}).items():
        words.update({str(v).strip().lower(): direction for v in values})
    return words


def _check_contacts(raw: pd.DataFrame, out: pd.DataFrame, chk: Checker,
                    words: dict[str, str]) -> pd.DataFrame:
    direction = cell_text(raw["direction"]).str.lower().map(words)
    accepted = ", ".join(DIRECTIONS)
    extra = [w for w in words if w not in DIRECTIONS]
    if extra:
        accepted += f" (or {', '.join(extra)}: data.direction_values)"
    chk.flag(direction.isna(), kind="bad_direction", column="direction",
             message=f"direction must be one of {accepted}")
    out["direction"] = direction
    for col in ("channel", "topic"):
        out[col] = cell_text(raw[col]) if col in raw else np.nan
    return out


def load_events_shape(data: dict, as_of: pd.Timestamp, start: pd.Timestamp | None,
                       ledger: Ledger, problems: list) -> StudyData:
    customers, known, dropped = _load_customers(data, as_of, start, ledger, problems)
    frames = {key: _load_events(data, key, customers, known, dropped, as_of, ledger, problems)
              for key in ("price_events", "contact_events")}
    roles = {"price": [], "contact": [], "controls": list(data["controls"]),
             "segments": list(data["segments"]), "satisfaction": data["satisfaction"],
             "exit_reason": "exit_reason", "contact_kind": data["contact_kind"],
             "units": data_units(data)}
    sources = {k: str(data[k]) for k in ("customers", "price_events", "contact_events")}
    return StudyData(format="events", as_of=as_of, customers=customers, roles=roles,
                     ledger=ledger, sources=sources, observation_start=start, **frames)
