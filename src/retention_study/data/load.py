"""The data contract: read a company's files (either shape), check them, return StudyData.

Nothing runs on bad data silently. Each problem is one
:class:`~retention_study.errors.DataContractError` naming the file, the column and
the first offending rows; all problems of a load are collected and raised together
(:class:`~retention_study.errors.DataContractErrors`, one line each), so that a user
fixes a file in one round trip. With ``data.on_invalid: exclude`` the offending rows
are dropped instead and counted by reason in the :class:`~retention_study.data.ledger.Ledger`.
Rows legitimately out of scope (joined after ``as_of``, no time at risk, left before
``observation_start``) are never errors; they are counted with ``kind="out_of_scope"``.

Order of checks, per table: cells that cannot be read (ids, dates, numbers, flags,
missing covariates) are checked on every row; then out-of-scope rows leave; then the
time logic (end before start, after as_of, ...) is checked on the rows in scope. A
row is counted once, under the first reason it fails.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from retention_study.config import AUTO_CONTROLS, LOGGER_NAME, parse_date
from retention_study.data import late_entry
from retention_study.data.ledger import Ledger
from retention_study.data.readers import FILE_COL, ROW_COL, read_frame
from retention_study.data.schema import (
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    DIRECTIONS,
    PRICE_COLUMNS,
    StudyData,
)
from retention_study.errors import ConfigError, DataContractError, DataContractErrors

log = logging.getLogger(LOGGER_NAME)

__all__ = ["load_study_data", "read_frame", "normalise_tokens", "coerce_covariate"]

_TRUE = {"true", "t", "yes", "y"}
_FALSE = {"false", "f", "no", "n"}
_UNIT_DAYS = {"days": 1.0, "months": DAYS_PER_MONTH, "years": DAYS_PER_YEAR}
_HELPERS = [FILE_COL, ROW_COL]
#: Beyond 2**53 a float no longer holds every integer: a value this large is a sentinel
#: ("1e308" for "unknown"), not a price, a duration or an attribute.
SENTINEL_ABS = 1e15
#: Cells that stand for "missing" in exports; as an id they would join unrelated rows.
PLACEHOLDER_IDS = frozenset({"na", "n/a", "#n/a", "nan", "nat", "<na>", "null", "none", "nil",
                             "inf", "-inf", "+inf"})
#: A control or segment with more levels is free text or an id, not a customer attribute.
MAX_LEVELS = 100
#: Problems listed per failed load (one line each); the rest are counted.
MAX_PROBLEMS = 20
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_DECIMAL_HINT = "; looks like decimal commas: set data.decimal: ','"


# ---------------------------------------------------------------- cell helpers


def _text(s: pd.Series) -> pd.Series:
    """Cells as stripped strings, blank or missing cells as NaN.

    A column of text (every CSV column) is stripped once per distinct value, and equal
    cells share one string object: an event table repeats each id, direction and topic
    millions of times. Mixed cells (7 and 7.0 are one value to a hash) go cell by cell.

    Examples
    --------
    >>> _text(pd.Series([" a", "", None, "a"])).tolist()
    ['a', nan, nan, 'a']
    """
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        codes, uniques = pd.factorize(s)
        stripped = _text(pd.Series(uniques, dtype=object).astype("string"))
        values = np.append(stripped.to_numpy(dtype=object), np.nan)  # code -1: missing
        return pd.Series(values[codes], index=s.index, name=s.name, dtype=object)
    out = s.astype("string").str.strip()
    return out.astype(object).where(out.fillna("").ne(""), np.nan)


def _id_text(s: pd.Series) -> pd.Series:
    """Ids as text; a native float id column (ints with a gap, as Parquet stores them)
    reads 7.0 as "7", so that it meets the "7" of another table.

    Examples
    --------
    >>> _id_text(pd.Series([7.0, None, 7.5])).tolist()
    ['7', nan, '7.5']
    """
    out = _text(s)
    if pd.api.types.is_float_dtype(s):
        whole = s.notna() & np.isfinite(s) & (np.floor(s) == s)
        out[whole] = s[whole].astype(np.int64).astype(str)
    return out


def _blank(s: pd.Series) -> pd.Series:
    return _text(s).isna()


def _numbers(s: pd.Series, decimal: str = ".", thousands: str | None = None
             ) -> tuple[pd.Series, pd.Series]:
    """Parse numbers; return (values, unreadable mask). Blank cells are NaN, not unreadable.

    ``decimal`` and ``thousands`` apply to text cells (CSV); native numbers are kept.

    Examples
    --------
    >>> _numbers(pd.Series(["1.234,5", "67,91", "x"]), ",", ".")[0].tolist()
    [1234.5, 67.91, nan]
    """
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype(float), pd.Series(False, index=s.index)
    txt = _text(s)
    clean = txt
    if thousands:
        clean = clean.str.replace(thousands, "", regex=False)
    if decimal and decimal != ".":
        clean = clean.str.replace(decimal, ".", regex=False)
    num = pd.to_numeric(clean, errors="coerce").astype(float)
    return num, txt.notna() & num.isna()


def _non_finite(num: pd.Series) -> pd.Series:
    """inf, -inf and sentinels such as 1e308: numbers no analysis can use."""
    return np.isinf(num) | (num.abs() >= SENTINEL_ABS)


def _decimal_hint(s: pd.Series, unreadable: pd.Series, decimal: str) -> str:
    """A hint when the unreadable cells of a numeric column look like ``67,91``."""
    if decimal == "," or not unreadable.any():
        return ""
    cells = _text(s[unreadable]).dropna().astype(str).head(1000)
    return _DECIMAL_HINT if len(cells) and cells.str.match(_DECIMAL_COMMA).mean() >= 0.5 else ""


def _dates(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO dates; return (midnight timestamps, unreadable mask)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
        # Parquet and databases hold dates pandas cannot (an open end as 9999-12-31):
        # unreadable, like the same text in a CSV, not an OutOfBoundsDatetime traceback.
        outside = out.notna() & ((out < pd.Timestamp.min) | (out > pd.Timestamp.max))
        out = out.where(~outside)
        return out.astype("datetime64[ns]").dt.normalize(), outside
    txt = _text(s)
    parsed = pd.to_datetime(txt.astype(str).where(txt.notna(), None), errors="coerce",
                            format="ISO8601")
    parsed = parsed.astype("datetime64[ns]").dt.normalize()
    return parsed, txt.notna() & parsed.isna()


def normalise_tokens(values: Iterable[Any]) -> pd.Series:
    """Canonical tokens for comparing flag values: ``TRUE``, ``True``, ``yes``, ``1`` agree.

    Booleans and yes/no words become ``"1"``/``"0"``, integral numbers lose their
    decimals, other text is stripped and lower-cased. Missing stays NaN.

    Examples
    --------
    >>> normalise_tokens(["TRUE", "True", True, "Yes", 1.0, " No ", "churned", None]).tolist()
    ['1', '1', '1', '1', '1', '0', 'churned', nan]
    """
    s = pd.Series(list(values), dtype=object)
    txt = _text(s)
    uniques = pd.unique(txt.dropna())
    mapping = {u: _token(u) for u in uniques}  # one call per distinct value, not per row
    return txt.map(mapping)


def _token(value: Any) -> str:
    low = str(value).strip().lower()
    if low in _TRUE:
        return "1"
    if low in _FALSE:
        return "0"
    try:
        num = float(low)
    except ValueError:
        return low
    return str(int(num)) if num.is_integer() else repr(num)


def coerce_covariate(s: pd.Series, decimal: str = ".", thousands: str | None = None
                     ) -> pd.Series:
    """Read a covariate robustly: numbers as float, yes/no-like flags as 0/1, else text.

    Examples
    --------
    >>> coerce_covariate(pd.Series(["Yes", "no", "YES", ""])).tolist()
    [1.0, 0.0, 1.0, nan]
    >>> coerce_covariate(pd.Series(["1.5", " 2"])).tolist()
    [1.5, 2.0]
    >>> coerce_covariate(pd.Series(["DSL", "Fiber optic"])).tolist()
    ['DSL', 'Fiber optic']
    """
    num, unreadable = _numbers(s, decimal, thousands)
    if not unreadable.any():
        return num
    tokens = normalise_tokens(s).set_axis(s.index)
    if tokens.dropna().isin(["0", "1"]).all():
        return pd.to_numeric(tokens, errors="coerce").astype(float)
    return _text(s)


def _closest(name: str, columns: Iterable[str]) -> str | None:
    columns = [c for c in columns if c not in _HELPERS]
    by_case = {c.lower(): c for c in columns}
    if name.lower() in by_case:
        return by_case[name.lower()]
    hits = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    return hits[0] if hits else None


# ---------------------------------------------------------------- the checker


class _Checker:
    """Flags offending rows of one table: record the problem, or drop and count them.

    Problems go to ``problems`` (shared by every table of a load) and are raised
    together at the end of the load, or sooner by :meth:`stop` when a later check
    cannot run (a required column is missing). ``names`` maps a canonical column to
    the file's own name (``data.columns``), so that messages name what the user sees.
    """

    def __init__(self, frame: pd.DataFrame, table: str, data: dict, ledger: Ledger,
                 problems: list, names: dict | None = None):
        self.frame = frame
        self.table = table
        self.exclude = data["on_invalid"] == "exclude"
        self.decimal = data.get("decimal") or "."
        self.thousands = data.get("thousands") or None
        self.ledger = ledger
        self.problems = problems
        self.names = names or {}
        self._first_problem = len(problems)
        self.bad = pd.Series(False, index=frame.index)
        self.scope = pd.Series(False, index=frame.index)
        self.where = str(frame[FILE_COL].iat[0])

    @property
    def clean(self) -> bool:
        """No problem found in this table so far (table-level checks are meaningful)."""
        return len(self.problems) == self._first_problem

    def name(self, column: str | None) -> str | None:
        return self.names.get(column, column) if column else column

    def flag(self, mask: pd.Series, *, kind: str, column: str | None, message: str,
             out_of_scope: bool = False, quiet: bool = False) -> None:
        """Rows failing a check; ``quiet``: a consequence of a problem already reported."""
        mask = mask.fillna(False).astype(bool) & ~self.bad
        if not mask.any():
            return
        n = int(mask.sum())
        if out_of_scope:
            log.debug("%s: %d rows out of scope: %s", self.table, n, message)
            self.ledger.exclude(self.table, message, n, kind="out_of_scope")
            self.scope |= mask
        elif not self.exclude:
            if not quiet:
                self.fail(mask, kind=kind, column=column, message=message)
        else:
            log.warning("%s: excluding %d rows: %s", self.table, n, message)
            self.ledger.exclude(self.table, message, n)
        self.bad |= mask

    def drop(self, mask: pd.Series, message: str) -> None:
        """Rows dropped whatever ``on_invalid`` says, because they change nothing."""
        mask = mask.fillna(False).astype(bool) & ~self.bad
        if mask.any():
            log.debug("%s: dropping %d rows: %s", self.table, int(mask.sum()), message)
            self.ledger.exclude(self.table, message, int(mask.sum()), kind="duplicate")
            self.bad |= mask

    def fail(self, mask: pd.Series, *, kind: str, column: str | None, message: str) -> None:
        hit = self.frame.loc[mask, [FILE_COL, ROW_COL]]
        file = str(hit[FILE_COL].iat[0])
        rows = hit.loc[hit[FILE_COL] == file, ROW_COL].astype(int).tolist()
        self.problems.append(DataContractError(message, file=file, column=self.name(column),
                                               rows=rows, kind=kind))

    def problem(self, message: str, *, kind: str, column: str | None = None) -> None:
        """A problem of the whole table or column (it fails even under exclude)."""
        self.problems.append(DataContractError(message, file=self.where,
                                               column=self.name(column), kind=kind))

    def column_error(self, message: str, *, kind: str, column: str | None = None):
        """A problem after which this table cannot be checked further."""
        self.problem(message, kind=kind, column=column)
        self.stop()

    def stop(self) -> None:
        """Raise what was found so far: the checks that follow cannot run."""
        raise_problems(self.problems)

    def require(self, columns: Iterable[str], what: str = "required column") -> list[str]:
        """Record each missing column; return them (the caller stops when any is)."""
        missing = [col for col in columns if col not in self.frame.columns]
        for col in missing:
            near = _closest(col, self.frame.columns)
            hint = f" (did you mean '{near}'?)" if near else ""
            shown = self.name(col)
            mapped = f" (data.columns.{self.table}.{col})" if shown != col else ""
            self.problem(f"{what} '{shown}'{mapped} not found{hint}", column=col,
                         kind="missing_column" if what.startswith("required")
                         else "unknown_column")
        return missing

    def numbers(self, column: str) -> tuple[pd.Series, pd.Series, str]:
        """(values, unreadable mask, hint) of a column; inf and sentinels flagged here."""
        num, bad = _numbers(self.frame[column], self.decimal, self.thousands)
        infinite = _non_finite(num)
        self.flag(infinite, kind="non_finite", column=column,
                  message=f"{column} must be a finite number (not inf or a sentinel "
                          "such as 1e308)")
        return num.where(~infinite), bad, _decimal_hint(self.frame[column], bad, self.decimal)

    def check_finite(self, columns: Iterable[str]) -> None:
        """Numeric covariates: inf or a sentinel cannot enter a model."""
        for col in columns:
            self.numbers(col)

    def covariate(self, column: str) -> pd.Series:
        return coerce_covariate(self.frame[column], self.decimal, self.thousands)

    def check_ids(self, column: str) -> pd.Series:
        ids = _id_text(self.frame[column])
        self.flag(ids.isna(), kind="missing_values", column=column,
                  message=f"missing {column}")
        self.flag(ids.str.lower().isin(PLACEHOLDER_IDS), kind="missing_values", column=column,
                  message=f"{column} is a placeholder for a missing value (NA, NULL, None, "
                          "nan), not an id")
        return ids

    def check_unique(self, ids: pd.Series, column: str) -> None:
        dup = ids.notna() & ids.duplicated(keep=False)
        self.flag(dup, kind="duplicate_id", column=column, message=f"duplicate {column}")

    def check_missing(self, columns: Iterable[str]) -> None:
        for col in columns:
            self.flag(_blank(self.frame[col]), kind="missing_values", column=col,
                      message=f"missing values in {col}")

    def check_variance(self, frame: pd.DataFrame, columns: Iterable[str]) -> None:
        for col in columns:
            values = frame[col].dropna()
            if values.nunique() < 2:
                only = values.iloc[0] if len(values) else "empty"
                self.problem(f"covariate has no variance (every row is {only})",
                             column=col, kind="no_variance")


def raise_problems(problems: list) -> None:
    """Raise the problems found (one: itself; several: :class:`DataContractErrors`)."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise DataContractErrors(problems, limit=MAX_PROBLEMS)


def _unusable(s: pd.Series, decimal: str = ".", thousands: str | None = None) -> str | None:
    """Why a column cannot be a control or segment (a date, free text), or None."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return "is a date column"
    if pd.api.types.is_numeric_dtype(s):
        return None
    txt = _text(s).dropna()
    if not len(txt) or not _numbers(txt, decimal, thousands)[1].any():
        return None
    levels = pd.unique(txt)
    sample = pd.Series(levels[:1000]).astype(str)
    # A date-like text column: most distinct values parse as ISO dates.
    dates = pd.to_datetime(sample, errors="coerce", format="ISO8601")
    if dates.notna().mean() >= 0.9:
        return "is a date column"
    if len(levels) > MAX_LEVELS:
        return (f"has {len(levels)} distinct values (free text or an id); a control or "
                f"segment may have at most {MAX_LEVELS}")
    return None


def _check_attributes(chk: _Checker, data: dict, reserved: dict[str, str],
                      keys: tuple[str, ...] = ("controls", "segments")) -> None:
    """A control or segment must be a customer attribute the study can compare by.

    A date (it hangs a model with one dummy per day), the id, the outcome or free
    text with thousands of levels is refused with the reason. (A table's contact
    columns too: they enter the model the same way.)
    """
    for key in keys:
        for col in _unique(list(data[key])):
            if col not in chk.frame.columns:
                continue  # reported by require
            why = reserved.get(col) or _unusable(chk.frame[col], chk.decimal, chk.thousands)
            if why:
                s = chk.frame[col]
                hint = _decimal_hint(s, _text(s).notna(), chk.decimal)
                what = ("a contact column must be a number or a few levels" if key == "contact"
                        else "a control or segment must be an attribute of the customer such "
                        "as plan or region")
                chk.problem(f"data.{key}: {col} {why}: {what}{hint}", column=col,
                            kind="unusable_attribute")


# ---------------------------------------------------------------- shape A

_EVENT_TABLES = {"customers": CUSTOMER_COLUMNS, "price_events": PRICE_COLUMNS,
                 "contact_events": CONTACT_COLUMNS}
_RESERVED_CUSTOMER = {
    "customer_id": "is the customer id (every customer its own level)",
    "start_date": "is a date column", "end_date": "is a date column",
    "notice_date": "is a date column", "churned": "is the outcome",
    "exit_reason": "is the stated exit reason, known only once a customer leaves",
}


def _read(data: dict, spec: str) -> pd.DataFrame:
    return read_frame(spec, table=data["table"], delimiter=data["delimiter"],
                      encoding=data["encoding"])


def _column_maps(data: dict) -> dict[str, dict[str, str]]:
    """``data.columns`` (checked by the config): {table: {canonical name: the file's}}."""
    return data.get("columns") or {}


def _read_mapped(data: dict, key: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read one event-log file and give its columns their canonical names."""
    raw = _read(data, data[key])
    mapping = _column_maps(data).get(key, {})
    where = str(raw[FILE_COL].iat[0])
    problems = []
    for canonical, column in mapping.items():
        if column not in raw.columns:
            near = _closest(column, raw.columns)
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
    chk = _Checker(raw, "customers", data, ledger, problems, names)
    controls = list(data["controls"])
    covariates = _unique(controls + list(data["segments"])
                         + ([data["satisfaction"]] if data["satisfaction"] else []))
    if (chk.require(["customer_id", "start_date", "end_date"])
            + chk.require(covariates, what="mapped column")):
        chk.stop()
    _check_attributes(chk, data, _RESERVED_CUSTOMER)
    ids = chk.check_ids("customer_id")
    chk.check_unique(ids, "customer_id")
    _apply_where(chk, data["where"])
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
    out["exit_reason"] = _text(raw["exit_reason"]) if "exit_reason" in raw else np.nan
    for col in covariates:
        out[col] = chk.covariate(col)
    clean = out.loc[~chk.bad]
    if chk.clean and clean["churned"].sum() == 0:
        chk.problem("no departures at all (no churned, end_date or notice_date in scope)",
                    column="churned", kind="no_departures")
    if chk.clean:
        chk.check_variance(clean, controls)
    others = [c for c in raw.columns if c not in CUSTOMER_COLUMNS and c not in _HELPERS]
    return (clean[CUSTOMER_COLUMNS + others].reset_index(drop=True),
            set(ids.dropna()), _drop_reasons(chk))


def _customer_dates(raw: pd.DataFrame, chk: _Checker) -> list[pd.Series]:
    """start_date, end_date, notice_date parsed (notice_date all NaT when absent)."""
    out = []
    for col in ("start_date", "end_date", "notice_date"):
        if col not in raw:
            out.append(pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"))
            continue
        parsed, bad = _dates(raw[col])
        chk.flag(bad, kind="bad_date", column=col, message=f"unreadable date in {col}")
        out.append(parsed)
    chk.flag(out[0].isna(), kind="bad_date", column="start_date", message="missing start_date")
    return out


def _check_customer_timing(chk: _Checker, s: pd.Series, e: pd.Series, n: pd.Series,
                           as_of: pd.Timestamp) -> None:
    chk.flag(e < s, kind="end_before_start", column="end_date",
             message="end_date before start_date")
    chk.flag(n < s, kind="notice_before_start", column="notice_date",
             message="notice_date before start_date")
    chk.flag(n > e, kind="notice_after_end", column="notice_date",
             message="notice_date after end_date")
    for col, d in (("end_date", e), ("notice_date", n)):
        chk.flag(d > as_of, kind="after_as_of", column=col, message=f"{col} after as_of")


def _churned(raw: pd.DataFrame, chk: _Checker) -> pd.Series:
    """The given churned flag as 0/1 (NaN where blank or absent: derived from the dates)."""
    if "churned" not in raw:
        return pd.Series(np.nan, index=raw.index)
    tokens = normalise_tokens(raw["churned"]).set_axis(raw.index)
    chk.flag(tokens.notna() & ~tokens.isin(["0", "1"]), kind="bad_churned", column="churned",
             message="churned must be 0/1")
    return pd.to_numeric(tokens.where(tokens.isin(["0", "1"])), errors="coerce")


def _drop_reasons(chk: _Checker) -> pd.DataFrame:
    """Each dropped customer row: its id and whether it was out of scope or invalid."""
    kind = np.where(chk.scope, "out_of_scope", "invalid")
    frame = pd.DataFrame({"customer_id": _id_text(chk.frame["customer_id"]), "kind": kind})
    return frame.loc[chk.bad]


def _load_events(data: dict, key: str, customers: pd.DataFrame, known: set,
                 dropped: pd.DataFrame, as_of: pd.Timestamp, ledger: Ledger,
                 problems: list) -> pd.DataFrame:
    date_col = "effective_date" if key == "price_events" else "contact_date"
    raw, names = _read_mapped(data, key)
    ledger.rows_in(key, len(raw))
    chk = _Checker(raw, key, data, ledger, problems, names)
    if chk.require(["customer_id", date_col] + (["monthly_price"] if key == "price_events"
                                                else ["direction"])):
        chk.stop()
    ids = chk.check_ids("customer_id")
    chk.flag(~ids.isin(known), kind="unknown_customer", column="customer_id",
             message="customer_id not in customers")
    # each event's row in the clean customers (-1: none), looked up once for every check
    pos = pd.Index(customers["customer_id"]).get_indexer(ids)
    _drop_with_customer(chk, ids, pos, dropped)
    dates, bad = _dates(raw[date_col])
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


def _check_repeats(chk: _Checker, raw: pd.DataFrame, out: pd.DataFrame, key: str) -> None:
    """Exact duplicate rows (a file appended twice) and two prices on one date."""
    cols = [c for c in raw.columns if c not in _HELPERS]
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


def _drop_with_customer(chk: _Checker, ids: pd.Series, pos: np.ndarray,
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


def _check_prices(out: pd.DataFrame, chk: _Checker) -> pd.DataFrame:
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


def _check_contacts(raw: pd.DataFrame, out: pd.DataFrame, chk: _Checker,
                    words: dict[str, str]) -> pd.DataFrame:
    direction = _text(raw["direction"]).str.lower().map(words)
    accepted = ", ".join(DIRECTIONS)
    extra = [w for w in words if w not in DIRECTIONS]
    if extra:
        accepted += f" (or {', '.join(extra)}: data.direction_values)"
    chk.flag(direction.isna(), kind="bad_direction", column="direction",
             message=f"direction must be one of {accepted}")
    out["direction"] = direction
    for col in ("channel", "topic"):
        out[col] = _text(raw[col]) if col in raw else np.nan
    return out


def _load_events_shape(data: dict, as_of: pd.Timestamp, start: pd.Timestamp | None,
                       ledger: Ledger, problems: list) -> StudyData:
    customers, known, dropped = _load_customers(data, as_of, start, ledger, problems)
    frames = {key: _load_events(data, key, customers, known, dropped, as_of, ledger, problems)
              for key in ("price_events", "contact_events")}
    roles = {"price": [], "contact": [], "controls": list(data["controls"]),
             "segments": list(data["segments"]), "satisfaction": data["satisfaction"],
             "exit_reason": "exit_reason", "contact_kind": data["contact_kind"],
             "units": _units(data)}
    sources = {k: str(data[k]) for k in ("customers", "price_events", "contact_events")}
    return StudyData(format="events", as_of=as_of, customers=customers, roles=roles,
                     ledger=ledger, sources=sources, observation_start=start, **frames)


def _units(data: dict) -> dict[str, str]:
    """``data.units`` (checked by the config): {column: unit in words}."""
    return dict(data.get("units") or {})


# ---------------------------------------------------------------- shape B


def _read_table_files(data: dict) -> pd.DataFrame:
    """Read shape B's ``path`` (one file or a list with the same columns), concatenated."""
    paths = data["path"]
    if not paths:
        raise ConfigError("data.path is required when data.format is 'table'")
    paths = [paths] if isinstance(paths, str) else list(paths)
    frames = [_read(data, str(p)) for p in paths]
    first = [c for c in frames[0].columns if c not in _HELPERS]
    for frame in frames[1:]:
        cols = [c for c in frame.columns if c not in _HELPERS]
        missing = [c for c in first if c not in cols]
        if missing:
            raise DataContractError(f"column '{missing[0]}' of {frames[0][FILE_COL].iat[0]} "
                                    "is missing here (concatenated files need the same columns)",
                                    file=str(frame[FILE_COL].iat[0]), column=missing[0],
                                    kind="missing_column")
    return pd.concat(frames, ignore_index=True)


def _table_mapping(data: dict) -> dict[str, Any]:
    """Check the column mapping itself (config errors, before any data is read)."""
    if not data["duration"]:
        raise ConfigError("data.duration is required when data.format is 'table'")
    event = data["event"]
    if not isinstance(event, dict) or not event.get("column") or event.get("values") is None:
        raise ConfigError("data.event must be a mapping {column: ..., values: [...]}")
    unknown = set(event) - {"column", "values"}
    if unknown:
        raise ConfigError(f"data.event: unknown key '{sorted(unknown)[0]}' (column, values)")
    if data["duration_unit"] not in _UNIT_DAYS:
        raise ConfigError(f"data.duration_unit must be one of {', '.join(_UNIT_DAYS)}, "
                          f"not {data['duration_unit']!r}")
    if data["contact_kind"] not in DIRECTIONS:
        raise ConfigError(f"data.contact_kind must be one of {', '.join(DIRECTIONS)}")
    values = event["values"]
    return {"column": event["column"], "values": values if isinstance(values, list) else [values]}


def _check_table_columns(chk: _Checker, data: dict, event_col: str) -> None:
    keys = ["duration", "id", "satisfaction", "exit_reason"]
    mapped = [(f"data.{k}", data[k]) for k in keys if data[k]] + [("data.event", event_col)]
    mapped += [(f"data.{k}", c) for k in ("price", "contact", "controls", "segments")
               for c in data[k]]
    missing = [(key, col) for key, col in mapped if col not in chk.frame.columns]
    for key, col in missing:
        near = _closest(str(col), chk.frame.columns)
        hint = f" (did you mean '{near}'?)" if near else ""
        chk.problem(f"{key} maps to a column that does not exist{hint}",
                    column=str(col), kind="unknown_column")
    if missing:
        chk.stop()


def _table_event(chk: _Checker, column: str, values: list) -> pd.Series:
    tokens = normalise_tokens(chk.frame[column]).set_axis(chk.frame.index)
    chk.flag(tokens.isna(), kind="missing_values", column=column,
             message=f"missing values in event column {column}")
    wanted = normalise_tokens(values)
    present = set(tokens.dropna())
    unmatched = [v for v, t in zip(values, wanted, strict=True) if t not in present]
    if unmatched:
        present_values = sorted(map(str, pd.unique(_text(chk.frame[column]).dropna())))[:10]
        seen = " ".join(", ".join(present_values).split())  # one line, whatever the cells hold
        chk.problem(f"event value {unmatched[0]!r} matches no row (values present: {seen})",
                    column=column, kind="event_values_unmatched")
    return tokens.isin(set(wanted.dropna())).astype(int)


def _table_prices(chk: _Checker, ledger: Ledger, columns: list[str]) -> None:
    for col in columns:
        num, bad, hint = chk.numbers(col)
        chk.flag(bad | (num < 0), kind="bad_price", column=col,
                 message=f"{col} must be a number >= 0{hint}")
        # A zero usage charge means no usage, not a broken price list: kept, but noted.
        ledger.note("table", f"{col} is 0", int(((num == 0) & ~chk.bad).sum()))


def _table_reserved(data: dict, event_col: str) -> dict[str, str]:
    out = {data["duration"]: "is the outcome (the duration)",
           event_col: "is the outcome (the event)"}
    if data["id"]:
        out[data["id"]] = "is the customer id (every customer its own level)"
    if data["exit_reason"]:
        out[data["exit_reason"]] = "is the stated exit reason, known only once a customer leaves"
    return out


def _load_table_shape(data: dict, as_of: pd.Timestamp, ledger: Ledger,
                      problems: list) -> StudyData:
    mapping = _table_mapping(data)
    units = _units(data)
    raw = _read_table_files(data)
    ledger.rows_in("table", len(raw))
    chk = _Checker(raw, "table", data, ledger, problems)
    _check_table_columns(chk, data, mapping["column"])
    _check_attributes(chk, data, _table_reserved(data, mapping["column"]),
                      ("contact", "controls", "segments"))
    _apply_where(chk, data["where"])
    if data["id"]:
        ids = chk.check_ids(data["id"])
        chk.check_unique(ids, data["id"])
    else:
        ids = pd.Series(np.arange(1, len(raw) + 1).astype(str), index=raw.index)
    duration, bad, hint = chk.numbers(data["duration"])
    chk.flag(bad | duration.isna() | (duration < 0), kind="bad_duration", column=data["duration"],
             message=f"{data['duration']} must be a number >= 0{hint}")
    event = _table_event(chk, mapping["column"], mapping["values"])
    _table_prices(chk, ledger, data["price"])
    covariates = _unique(data["price"] + data["contact"] + data["controls"] + data["segments"]
                         + ([data["satisfaction"]] if data["satisfaction"] else []))
    chk.check_missing(covariates)
    chk.check_finite(covariates)
    chk.flag(duration == 0, kind="out_of_scope", column=data["duration"],
             message=f"{data['duration']} is 0 (no time at risk)", out_of_scope=True)
    out = pd.DataFrame({"customer_id": ids, "duration_days": duration * _UNIT_DAYS[
        data["duration_unit"]], "event": event}, index=raw.index)
    if data["exit_reason"]:
        out["exit_reason"] = _text(raw[data["exit_reason"]])
    for col in covariates:
        out[col] = chk.covariate(col)
    clean = out.loc[~chk.bad].reset_index(drop=True)
    if chk.clean and clean["event"].sum() == 0:
        chk.problem("no departures at all in the rows analysed", column=mapping["column"],
                    kind="no_departures")
    if chk.clean:
        chk.check_variance(clean, covariates)
    paths = data["path"] if isinstance(data["path"], list) else [data["path"]]
    roles = {**_table_roles(data), "units": units,
             "contact_recency": _contact_recency(chk, data, units)}
    return StudyData(format="table", as_of=as_of, table=clean, roles=roles, ledger=ledger,
                     sources={"table": ", ".join(str(p) for p in paths)})


_TIME_UNIT = re.compile(r"^(day|week|month|year)s?\b", re.I)
_MONTHS_PER = {"day": 1 / DAYS_PER_MONTH, "week": 7 / DAYS_PER_MONTH, "month": 1.0,
               "year": 12.0}


def _contact_recency(chk: _Checker, data: dict, units: dict[str, str]) -> dict | None:
    """A contact column whose unit is a time (``data.units: {months_since_call: months}``)
    *is* time since the last contact: the timeline uses it as such.

    Examples
    --------
    >>> _TIME_UNIT.match("months since the last call").group(1)
    'month'
    """
    for col in data["contact"]:
        hit = _TIME_UNIT.match(units.get(col, "").strip())
        if not hit:
            continue
        num, bad, hint = chk.numbers(col)
        if bad.any() or (num < 0).any():
            chk.problem(f"data.units gives {col} in {units[col]}, time since the last contact, "
                        f"but it holds values that are not a number >= 0{hint}",
                        column=col, kind="bad_recency")
        return {"column": col, "unit": units[col],
                "months_per_unit": _MONTHS_PER[hit.group(1).lower()]}
    return None


def _table_roles(data: dict) -> dict[str, Any]:
    roles: dict[str, Any] = {k: list(data[k]) for k in ("price", "contact", "controls",
                                                        "segments")}
    roles.update(satisfaction=data["satisfaction"],
                 exit_reason="exit_reason" if data["exit_reason"] else None,
                 contact_kind=data["contact_kind"])
    return roles


def _apply_where(chk: _Checker, where: dict) -> None:
    """Keep one segment (``data.where``); the other customers are out of scope, counted."""
    if chk.require(list(where), what="data.where column"):
        chk.stop()
    for col, wanted in where.items():
        wanted = wanted if isinstance(wanted, list) else [wanted]
        values = [str(v) for v in wanted]
        cells = chk.frame[col]
        keep = _text(cells).isin(values)
        if pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells):
            # a Parquet/database float column holds 1.0, which "1" would never match
            keep |= cells.isin(pd.to_numeric(pd.Series(wanted), errors="coerce").dropna())
        chk.flag(~keep, kind="out_of_scope", column=col,
                 message=f"not in the segment studied ({col} = {', '.join(values)})",
                 out_of_scope=True)


def _without_where_columns(data: dict) -> dict:
    """A segment's own column is constant inside it: it cannot be a control or a segment."""
    cols = set(data["where"])
    if not cols:
        return data
    data = dict(data)
    for key in ("controls", "segments"):
        data[key] = [c for c in data[key] if c not in cols]
    return data


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------- entry point


def load_study_data(cfg: dict) -> StudyData:
    """Read, check and canonicalise the data a resolved config points at.

    Parameters
    ----------
    cfg : dict
        A resolved config (:func:`retention_study.config.load_config`); reads ``cfg["data"]``.

    Returns
    -------
    StudyData
        Canonical frames (see :mod:`retention_study.data.schema`) and the ledger of rows in,
        excluded per reason and analysed.

    Raises
    ------
    DataContractError
        The data breaks the contract (``kind`` says how; the message names the file,
        column and first rows); :class:`~retention_study.errors.DataContractErrors`
        when there are several (one line each, the first problem's attributes). With
        ``on_invalid: exclude`` row-level problems are counted in the ledger instead;
        table-level ones (a missing column, no departures, a covariate with no
        variance, a date or free-text control) always raise.
    ConfigError
        The data section of the config is incomplete (e.g. table mode without duration).

    Examples
    --------
    >>> import tempfile, os
    >>> from retention_study.config import resolve_config
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.csv")
    >>> _ = open(p, "w").write("months,left,plan\\n3,yes,a\\n0,no,b\\n5,no,b\\n")
    >>> cfg = resolve_config({"data": {"format": "table", "path": p, "duration": "months",
    ...                                "event": {"column": "left", "values": ["Yes"]},
    ...                                "controls": ["plan"]}})
    >>> data = load_study_data(cfg)
    >>> data.table["event"].tolist(), data.ledger.rows_analysed("table")
    ([1, 0], 2)
    """
    # controls: auto = none yet; pipeline.choose_controls adds what the confounder scan flags
    auto = cfg["data"]["controls"] == AUTO_CONTROLS
    data = _without_where_columns({**cfg["data"], "controls": []} if auto else cfg["data"])
    as_of = parse_date(data["as_of"], "data.as_of")
    ledger = Ledger()
    problems: list[DataContractError] = []
    if data["format"] == "table":
        study = _load_table_shape(data, as_of, ledger, problems)
    else:
        start = data.get("observation_start")
        start = parse_date(start, "data.observation_start") if start else None
        study = _load_events_shape(data, as_of, start, ledger, problems)
    raise_problems(problems)
    if study.format == "events":
        study = late_entry.resolve(study)  # records that begin late imply late entry
    study.roles["controls_auto"] = auto
    log.info("loaded %d customers (%s)", study.n_customers, study.format)
    return study
