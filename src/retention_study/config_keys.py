"""The value checks of a run config's keys: each turns a YAML value into its type or says why not.

Each check takes a value and returns it normalised (a column name given as a string
becomes a one-item list, a YAML date an ISO string) or raises :class:`BadValue`, whose
message completes "KEY ...". :func:`key` declares a field of a config section with its
default, check and documentation (:mod:`retention_study.config`).
"""

from __future__ import annotations

import codecs
import copy
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import field
from typing import Any

import pandas as pd

from retention_study.errors import ConfigError


class BadValue(ValueError):
    """Internal: one key's value is wrong; the message completes 'KEY ...'."""


# --------------------------------------------------------------------------- checks
# Each check takes a value and returns it normalised (a column name given as a string
# becomes a one-item list, a YAML date an ISO string) or raises BadValue.


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadValue(f"must be a non-empty text, not {value!r}")
    return value


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def _check(value: Any) -> Any:
        return None if value is None else check(value)
    return _check


def one_of(*choices: str) -> Callable[[Any], str]:
    def _check(value: Any) -> str:
        if value not in choices:
            raise BadValue(f"must be one of {', '.join(choices)}, not {value!r}")
        return value
    return _check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadValue(f"must be true or false, not {value!r}")
    return value


def integer(low: int | None = None) -> Callable[[Any], int]:
    def _check(value: Any) -> int:
        # 30.0 is thirty days; 1.5 folds is not a number of folds.
        if not _is_number(value) or not math.isfinite(value) or value != int(value):
            raise BadValue(f"must be a whole number{_at_least(low)}, not {value!r}")
        if low is not None and value < low:
            raise BadValue(f"must be a whole number{_at_least(low)}, not {value!r}")
        return int(value)
    return _check


def _at_least(low: float | None) -> str:
    return "" if low is None else f" >= {low:g}"


def number(low: float | None = None, high: float | None = None, *,
           open_low: bool = False, open_high: bool = False) -> Callable[[Any], float]:
    lo_sym, hi_sym = ("(" if open_low else "["), (")" if open_high else "]")
    span = (f" in {lo_sym}{low:g}, {high:g}{hi_sym}" if low is not None and high is not None
            else f" {'>' if open_low else '>='} {low:g}" if low is not None else "")

    def _check(value: Any) -> float:
        if not _is_number(value) or not math.isfinite(value):
            raise BadValue(f"must be a finite number{span}, not {value!r}")
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            raise BadValue(f"must be a number{span}, not {value!r}")
        return value
    return _check


def columns(value: Any) -> list[str]:
    """A list of column names: one name may be given alone, null is none."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BadValue(f"must be a list of column names, not {value!r}")
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        raise BadValue(f"names column '{twice[0]}' twice")
    return list(value)


def paths(value: Any) -> str | list[str] | None:
    """One file (``FILE`` or ``FILE::TABLE``) or a list of files."""
    if value is None or isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip()
                                                 for v in value):
        return list(value)
    raise BadValue(f"must be a file path or a list of file paths, not {value!r}")


def iso_date(value: Any) -> str:
    try:
        return parse_date(value, "").date().isoformat()
    except ConfigError:
        raise BadValue(f"cannot read {value!r} as a date (use YYYY-MM-DD)") from None


def encoding(value: Any) -> str:
    try:
        codecs.lookup(text(value))
    except LookupError:
        raise BadValue(f"is not an encoding Python knows: {value!r}") from None
    return value


def delimiter(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1:
        raise BadValue(f"must be one character, not {value!r}")
    return value


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (
        isinstance(value, float) and not math.isfinite(value))


def where(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadValue("must be a mapping {column: value or [values]}")
    for col, wanted in value.items():
        items = wanted if isinstance(wanted, list) else [wanted]
        if not isinstance(col, str) or not items or not all(_scalar(v) for v in items):
            raise BadValue(f"{col}: must be a value or a list of values, not {wanted!r}")
    return dict(value)


def event(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadValue("must be a mapping {column: ..., values: [...]}")
    unknown = sorted(set(value) - {"column", "values"})
    if unknown:
        raise BadValue(f"unknown key '{unknown[0]}'{suggest(unknown[0], ['column', 'values'])}")
    if not isinstance(value.get("column"), str) or not value["column"].strip():
        raise BadValue("needs 'column': the column that says whether the customer left")
    values = value.get("values")
    items = values if isinstance(values, list) else [values]
    if values is None or not items or not all(_scalar(v) for v in items):
        raise BadValue("needs 'values': the value(s) of that column meaning 'left'")
    return {"column": value["column"], "values": items}


def thresholds(value: Any) -> list[float]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(_is_number(v) and math.isfinite(v) for v in value)):
        raise BadValue(f"must be two numbers [unhappy_max, satisfied_max], not {value!r}")
    if not value[0] < value[1]:
        raise BadValue(f"must rise (unhappy up to the first, satisfied up to the second), "
                   f"not {value!r}")
    return list(value)


def reason_groups(value: Any) -> dict[str, list[str]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise BadValue("must map a group name to a list of patterns, e.g. {price: [price, cost]}")
    out = {}
    for name, patterns in value.items():
        items = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(items, list) or not items or not all(isinstance(p, str) for p in items):
            raise BadValue(f"{name}: must be a pattern or a list of patterns, not {patterns!r}")
        for pattern in items:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise BadValue(f"{name}: bad pattern {pattern!r} ({exc})") from None
        out[str(name)] = list(items)
    return out


def levers(value: Any) -> dict[str, float]:
    """The what-if levers: ``{contact_every_months: N}`` (N >= 1 months)."""
    if not isinstance(value, dict) or set(value) - {"contact_every_months"}:
        raise BadValue(f"must be a mapping with the key contact_every_months, not {value!r}")
    months = value.get("contact_every_months", 6)
    if not _is_number(months) or not math.isfinite(months) or months < 1:
        raise BadValue(f"contact_every_months must be a number of months >= 1, not {months!r}")
    return {"contact_every_months": months}


def decimal_mark(value: Any) -> str:
    if value not in (".", ","):
        raise BadValue(f"must be '.' or ',', not {value!r}")
    return value


def thousands_mark(value: Any) -> str:
    if value not in (".", ",", " ", "'", "_"):
        raise BadValue(f"must be one of '.', ',', ' ', \"'\", '_' (or null), not {value!r}")
    return value


def column_map(value: Any) -> dict[str, dict[str, str]]:
    """``{customers|price_events|contact_events: {our column name: the file's}}``."""
    from retention_study.data.schema import EVENT_TABLE_COLUMNS

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadValue("must be a mapping {customers: {customer_id: ...}, price_events: {...}, "
                   "contact_events: {...}}")
    out = {}
    for table, mapping in value.items():
        if table not in EVENT_TABLE_COLUMNS:
            raise BadValue(f"unknown table '{table}'{suggest(table, list(EVENT_TABLE_COLUMNS))} "
                       f"(one of {', '.join(EVENT_TABLE_COLUMNS)})")
        mapping = {} if mapping is None else mapping
        if not isinstance(mapping, dict):
            raise BadValue(f"{table} must be a mapping {{our column name: your column}}, "
                       f"not {mapping!r}")
        known = EVENT_TABLE_COLUMNS[table]
        for ours, theirs in mapping.items():
            if ours not in known:
                raise BadValue(f"{table}: unknown column '{ours}'{suggest(ours, known)} (one of "
                           f"{', '.join(known)})")
            if not isinstance(theirs, str) or not theirs.strip():
                raise BadValue(f"{table}.{ours} must be a column name, not {theirs!r}")
        out[table] = {k: v.strip() for k, v in mapping.items()}
    return out


def direction_words(value: Any) -> dict[str, list[str]] | None:
    """``{outbound: [words], inbound: [words]}``: a company's words for the direction."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadValue("must be a mapping {outbound: [words], inbound: [words]}")
    out, seen = {}, {}
    for direction, words in value.items():
        if direction not in ("outbound", "inbound"):
            raise BadValue(f"unknown direction '{direction}' (outbound or inbound)")
        items = [words] if isinstance(words, str) else words
        if not isinstance(items, list) or not all(_scalar(w) for w in items):
            raise BadValue(f"{direction}: must be a word or a list of words, not {words!r}")
        for word in items:
            low = str(word).strip().lower()
            if seen.get(low, direction) != direction or low in ("outbound", "inbound") and \
                    low != direction:
                raise BadValue(f"'{word}' is given for both outbound and inbound")
            seen[low] = direction
        out[direction] = [str(w) for w in items]
    return out


def units(value: Any) -> dict[str, str]:
    """``{column: unit in words}``, e.g. ``{MonthlyCharges: EUR per month}``."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()):
        raise BadValue(f"must map a column to its unit in words, e.g. {{MonthlyCharges: EUR per "
                   f"month}}, not {value!r}")
    return {k: v.strip() for k, v in value.items()}


def memory_size(value: Any) -> str:
    """A memory size such as ``4GB`` or ``512MB``."""
    if not isinstance(value, str) or not re.fullmatch(
            r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value.strip(), re.IGNORECASE):
        raise BadValue(f"must be a memory size such as 4GB or 512MB, not {value!r}")
    return value.strip()


def key(default: Any, check: Callable[[Any], Any], doc: str = "") -> Any:
    """A config key: its default, its check and one line of help."""
    meta = {"check": check, "doc": doc}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def suggest(name: Any, known: list[str]) -> str:
    """' (did you mean 'X'?)' for the closest known name, ignoring case; else ''."""
    lowered = {k.lower(): k for k in reversed(known)}
    hint = difflib.get_close_matches(str(name).lower(), list(lowered), n=1)
    return f" (did you mean '{lowered[hint[0]]}'?)" if hint else ""


def parse_date(value: Any, what: str) -> pd.Timestamp:
    """Parse a config date (ISO string or date) into a Timestamp.

    Examples
    --------
    >>> parse_date("2026-06-30", "data.as_of")
    Timestamp('2026-06-30 00:00:00')
    """
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{what}: cannot read {value!r} as a date (use YYYY-MM-DD)")
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError, OverflowError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise ConfigError(f"{what}: cannot read {value!r} as a date (use YYYY-MM-DD)")
    return ts.normalize()
