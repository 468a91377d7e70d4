"""The data contract's checker: every problem one line naming file, column and rows.

:class:`Checker` collects the problems of one table (or drops the offending rows into
the ledger with ``on_invalid: exclude``); :func:`raise_problems` raises them together.
Also what both shapes share: reading an input (:func:`read_input`), ``data.where``
(:func:`apply_where`) and ``data.units``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from retention_study.config import LOGGER_NAME
from retention_study.data.cells import (
    PLACEHOLDER_IDS,
    cell_text,
    closest,
    coerce_covariate,
    decimal_hint,
    id_text,
    is_blank,
    non_finite,
    read_numbers,
    unique,
)
from retention_study.data.ledger import Ledger
from retention_study.data.readers import FILE_COL, ROW_COL, read_frame
from retention_study.errors import DataContractError, DataContractErrors

log = logging.getLogger(LOGGER_NAME)
#: A control or segment with more levels is free text or an id, not a customer attribute.
MAX_LEVELS = 100
#: Problems listed per failed load (one line each); the rest are counted.
MAX_PROBLEMS = 20


# ---------------------------------------------------------------- the checker


class Checker:
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
            near = closest(col, self.frame.columns)
            hint = f" (did you mean '{near}'?)" if near else ""
            shown = self.name(col)
            mapped = f" (data.columns.{self.table}.{col})" if shown != col else ""
            self.problem(f"{what} '{shown}'{mapped} not found{hint}", column=col,
                         kind="missing_column" if what.startswith("required")
                         else "unknown_column")
        return missing

    def numbers(self, column: str) -> tuple[pd.Series, pd.Series, str]:
        """(values, unreadable mask, hint) of a column; inf and sentinels flagged here."""
        num, bad = read_numbers(self.frame[column], self.decimal, self.thousands)
        infinite = non_finite(num)
        self.flag(infinite, kind="non_finite", column=column,
                  message=f"{column} must be a finite number (not inf or a sentinel "
                          "such as 1e308)")
        return num.where(~infinite), bad, decimal_hint(self.frame[column], bad, self.decimal)

    def check_finite(self, columns: Iterable[str]) -> None:
        """Numeric covariates: inf or a sentinel cannot enter a model."""
        for col in columns:
            self.numbers(col)

    def covariate(self, column: str) -> pd.Series:
        return coerce_covariate(self.frame[column], self.decimal, self.thousands)

    def check_ids(self, column: str) -> pd.Series:
        ids = id_text(self.frame[column])
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
            self.flag(is_blank(self.frame[col]), kind="missing_values", column=col,
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
    txt = cell_text(s).dropna()
    if not len(txt) or not read_numbers(txt, decimal, thousands)[1].any():
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


def check_attributes(chk: Checker, data: dict, reserved: dict[str, str],
                      keys: tuple[str, ...] = ("controls", "segments")) -> None:
    """A control or segment must be a customer attribute the study can compare by.

    A date (it hangs a model with one dummy per day), the id, the outcome or free
    text with thousands of levels is refused with the reason. (A table's contact
    columns too: they enter the model the same way.)
    """
    for key in keys:
        for col in unique(list(data[key])):
            if col not in chk.frame.columns:
                continue  # reported by require
            why = reserved.get(col) or _unusable(chk.frame[col], chk.decimal, chk.thousands)
            if why:
                s = chk.frame[col]
                hint = decimal_hint(s, cell_text(s).notna(), chk.decimal)
                what = ("a contact column must be a number or a few levels" if key == "contact"
                        else "a control or segment must be an attribute of the customer such "
                        "as plan or region")
                chk.problem(f"data.{key}: {col} {why}: {what}{hint}", column=col,
                            kind="unusable_attribute")


def read_input(data: dict, spec: str) -> pd.DataFrame:
    return read_frame(spec, table=data["table"], delimiter=data["delimiter"],
                      encoding=data["encoding"])


def data_units(data: dict) -> dict[str, str]:
    """``data.units`` (checked by the config): {column: unit in words}."""
    return dict(data.get("units") or {})


def apply_where(chk: Checker, where: dict) -> None:
    """Keep one segment (``data.where``); the other customers are out of scope, counted."""
    if chk.require(list(where), what="data.where column"):
        chk.stop()
    for col, wanted in where.items():
        wanted = wanted if isinstance(wanted, list) else [wanted]
        values = [str(v) for v in wanted]
        cells = chk.frame[col]
        keep = cell_text(cells).isin(values)
        if pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells):
            # a Parquet/database float column holds 1.0, which "1" would never match
            keep |= cells.isin(pd.to_numeric(pd.Series(wanted), errors="coerce").dropna())
        chk.flag(~keep, kind="out_of_scope", column=col,
                 message=f"not in the segment studied ({col} = {', '.join(values)})",
                 out_of_scope=True)
