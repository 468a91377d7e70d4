"""Reading cells as the user typed them: ids, numbers, dates, flags and covariates.

Each helper returns the parsed values and says which cells could not be read, so the
contract (:mod:`.contract`) can name the rows; nothing is coerced silently.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from retention_study.data.readers import FILE_COL, ROW_COL

_TRUE = {"true", "t", "yes", "y"}
_FALSE = {"false", "f", "no", "n"}
HELPER_COLUMNS = [FILE_COL, ROW_COL]
#: Beyond 2**53 a float no longer holds every integer: a value this large is a sentinel
#: ("1e308" for "unknown"), not a price, a duration or an attribute.
SENTINEL_ABS = 1e15
#: Cells that stand for "missing" in exports; as an id they would join unrelated rows.
PLACEHOLDER_IDS = frozenset({"na", "n/a", "#n/a", "nan", "nat", "<na>", "null", "none", "nil",
                             "inf", "-inf", "+inf"})
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_DECIMAL_HINT = "; looks like decimal commas: set data.decimal: ','"


# ---------------------------------------------------------------- cell helpers


def cell_text(s: pd.Series) -> pd.Series:
    """Cells as stripped strings, blank or missing cells as NaN.

    A column of text (every CSV column) is stripped once per distinct value, and equal
    cells share one string object: an event table repeats each id, direction and topic
    millions of times. Mixed cells (7 and 7.0 are one value to a hash) go cell by cell.

    Examples
    --------
    >>> cell_text(pd.Series([" a", "", None, "a"])).tolist()
    ['a', nan, nan, 'a']
    """
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        codes, uniques = pd.factorize(s)
        stripped = cell_text(pd.Series(uniques, dtype=object).astype("string"))
        values = np.append(stripped.to_numpy(dtype=object), np.nan)  # code -1: missing
        return pd.Series(values[codes], index=s.index, name=s.name, dtype=object)
    out = s.astype("string").str.strip()
    return out.astype(object).where(out.fillna("").ne(""), np.nan)


def id_text(s: pd.Series) -> pd.Series:
    """Ids as text; a native float id column (ints with a gap, as Parquet stores them)
    reads 7.0 as "7", so that it meets the "7" of another table.

    Examples
    --------
    >>> id_text(pd.Series([7.0, None, 7.5])).tolist()
    ['7', nan, '7.5']
    """
    out = cell_text(s)
    if pd.api.types.is_float_dtype(s):
        whole = s.notna() & np.isfinite(s) & (np.floor(s) == s)
        out[whole] = s[whole].astype(np.int64).astype(str)
    return out


def is_blank(s: pd.Series) -> pd.Series:
    return cell_text(s).isna()


def read_numbers(s: pd.Series, decimal: str = ".", thousands: str | None = None
             ) -> tuple[pd.Series, pd.Series]:
    """Parse numbers; return (values, unreadable mask). Blank cells are NaN, not unreadable.

    ``decimal`` and ``thousands`` apply to text cells (CSV); native numbers are kept.

    Examples
    --------
    >>> read_numbers(pd.Series(["1.234,5", "67,91", "x"]), ",", ".")[0].tolist()
    [1234.5, 67.91, nan]
    """
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype(float), pd.Series(False, index=s.index)
    txt = cell_text(s)
    clean = txt
    if thousands:
        clean = clean.str.replace(thousands, "", regex=False)
    if decimal and decimal != ".":
        clean = clean.str.replace(decimal, ".", regex=False)
    num = pd.to_numeric(clean, errors="coerce").astype(float)
    return num, txt.notna() & num.isna()


def non_finite(num: pd.Series) -> pd.Series:
    """inf, -inf and sentinels such as 1e308: numbers no analysis can use."""
    return np.isinf(num) | (num.abs() >= SENTINEL_ABS)


def decimal_hint(s: pd.Series, unreadable: pd.Series, decimal: str) -> str:
    """A hint when the unreadable cells of a numeric column look like ``67,91``."""
    if decimal == "," or not unreadable.any():
        return ""
    cells = cell_text(s[unreadable]).dropna().astype(str).head(1000)
    return _DECIMAL_HINT if len(cells) and cells.str.match(_DECIMAL_COMMA).mean() >= 0.5 else ""


def read_dates(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO dates; return (midnight timestamps, unreadable mask)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
        # Parquet and databases hold dates pandas cannot (an open end as 9999-12-31):
        # unreadable, like the same text in a CSV, not an OutOfBoundsDatetime traceback.
        outside = out.notna() & ((out < pd.Timestamp.min) | (out > pd.Timestamp.max))
        out = out.where(~outside)
        return out.astype("datetime64[ns]").dt.normalize(), outside
    txt = cell_text(s)
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
    txt = cell_text(s)
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
    num, unreadable = read_numbers(s, decimal, thousands)
    if not unreadable.any():
        return num
    tokens = normalise_tokens(s).set_axis(s.index)
    if tokens.dropna().isin(["0", "1"]).all():
        return pd.to_numeric(tokens, errors="coerce").astype(float)
    return cell_text(s)


def closest(name: str, columns: Iterable[str]) -> str | None:
    columns = [c for c in columns if c not in HELPER_COLUMNS]
    by_case = {c.lower(): c for c in columns}
    if name.lower() in by_case:
        return by_case[name.lower()]
    hits = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    return hits[0] if hits else None


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
