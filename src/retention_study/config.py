"""One place for paths, defaults and the run configuration: a typed, checked config.

A run config is YAML with three sections, ``data`` (what to read), ``study`` (how to
analyse) and ``report`` (how to render), plus ``name``. Each section is a dataclass
below; every key is one field with its default, its check and a line of help, so
adding a key is one line (and, where it relates to another key, a line in
``_relations``). :meth:`StudyConfig.from_dict` checks everything at once and raises a
:class:`~retention_study.errors.ConfigError` listing every problem, one line each
(exit status 2); :func:`check_columns` then compares the column names the config
mentions with the files' headers, reading nothing but the headers.

The sections travel to the study notebook as plain dicts (papermill parameters are
JSON): :meth:`StudyConfig.to_dict` writes them, :meth:`StudyConfig.from_dict` reads
them back. Dates stay ISO strings until :func:`parse_date` reads them: papermill
passes YAML dates as strings, so everything downstream parses them here, in one way.
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from retention_study.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parents[1]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
CONFIGS_DIR = PROJECT_ROOT / "configs"
REPORTS_DIR = Path("reports")
SAMPLE_DIR = Path("data/raw/sample")
STUDY_NOTEBOOK = NOTEBOOKS_DIR / "study.ipynb"
# The practitioners' claims the report checks: the team's shared copy when it is beside
# the checkout, else the copy shipped with the package (a fresh machine has no shared/).
_SHARED_CLAIMS = PROJECT_ROOT.parent / "shared" / "CLAIMS.md"
CLAIMS_FILE = _SHARED_CLAIMS if _SHARED_CLAIMS.is_file() else PACKAGE_DIR / "CLAIMS.md"
KERNEL_NAME = "retention-study"
LOGGER_NAME = "retention_study"

SECTIONS = ("data", "study", "report")


class _Bad(ValueError):
    """Internal: one key's value is wrong; the message completes 'KEY ...'."""


# --------------------------------------------------------------------------- checks
# Each check takes a value and returns it normalised (a column name given as a string
# becomes a one-item list, a YAML date an ISO string) or raises _Bad.


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"must be a non-empty text, not {value!r}")
    return value


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def _check(value: Any) -> Any:
        return None if value is None else check(value)
    return _check


def one_of(*choices: str) -> Callable[[Any], str]:
    def _check(value: Any) -> str:
        if value not in choices:
            raise _Bad(f"must be one of {', '.join(choices)}, not {value!r}")
        return value
    return _check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"must be true or false, not {value!r}")
    return value


def integer(low: int | None = None) -> Callable[[Any], int]:
    def _check(value: Any) -> int:
        # 30.0 is thirty days; 1.5 folds is not a number of folds.
        if not _is_number(value) or not math.isfinite(value) or value != int(value):
            raise _Bad(f"must be a whole number{_at_least(low)}, not {value!r}")
        if low is not None and value < low:
            raise _Bad(f"must be a whole number{_at_least(low)}, not {value!r}")
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
            raise _Bad(f"must be a finite number{span}, not {value!r}")
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            raise _Bad(f"must be a number{span}, not {value!r}")
        return value
    return _check


def columns(value: Any) -> list[str]:
    """A list of column names: one name may be given alone, null is none."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _Bad(f"must be a list of column names, not {value!r}")
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        raise _Bad(f"names column '{twice[0]}' twice")
    return list(value)


def paths(value: Any) -> str | list[str] | None:
    """One file (``FILE`` or ``FILE::TABLE``) or a list of files."""
    if value is None or isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip()
                                                 for v in value):
        return list(value)
    raise _Bad(f"must be a file path or a list of file paths, not {value!r}")


def iso_date(value: Any) -> str:
    try:
        return parse_date(value, "").date().isoformat()
    except ConfigError:
        raise _Bad(f"cannot read {value!r} as a date (use YYYY-MM-DD)") from None


def encoding(value: Any) -> str:
    try:
        codecs.lookup(text(value))
    except LookupError:
        raise _Bad(f"is not an encoding Python knows: {value!r}") from None
    return value


def delimiter(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1:
        raise _Bad(f"must be one character, not {value!r}")
    return value


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (
        isinstance(value, float) and not math.isfinite(value))


def where(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad("must be a mapping {column: value or [values]}")
    for col, wanted in value.items():
        items = wanted if isinstance(wanted, list) else [wanted]
        if not isinstance(col, str) or not items or not all(_scalar(v) for v in items):
            raise _Bad(f"{col}: must be a value or a list of values, not {wanted!r}")
    return dict(value)


def event(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad("must be a mapping {column: ..., values: [...]}")
    unknown = sorted(set(value) - {"column", "values"})
    if unknown:
        raise _Bad(f"unknown key '{unknown[0]}'{_suggest(unknown[0], ['column', 'values'])}")
    if not isinstance(value.get("column"), str) or not value["column"].strip():
        raise _Bad("needs 'column': the column that says whether the customer left")
    values = value.get("values")
    items = values if isinstance(values, list) else [values]
    if values is None or not items or not all(_scalar(v) for v in items):
        raise _Bad("needs 'values': the value(s) of that column meaning 'left'")
    return {"column": value["column"], "values": items}


def thresholds(value: Any) -> list[float]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(_is_number(v) and math.isfinite(v) for v in value)):
        raise _Bad(f"must be two numbers [unhappy_max, satisfied_max], not {value!r}")
    if not value[0] < value[1]:
        raise _Bad(f"must rise (unhappy up to the first, satisfied up to the second), "
                   f"not {value!r}")
    return list(value)


def reason_groups(value: Any) -> dict[str, list[str]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise _Bad("must map a group name to a list of patterns, e.g. {price: [price, cost]}")
    out = {}
    for name, patterns in value.items():
        items = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(items, list) or not items or not all(isinstance(p, str) for p in items):
            raise _Bad(f"{name}: must be a pattern or a list of patterns, not {patterns!r}")
        for pattern in items:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _Bad(f"{name}: bad pattern {pattern!r} ({exc})") from None
        out[str(name)] = list(items)
    return out


def levers(value: Any) -> dict[str, float]:
    """The what-if levers: ``{contact_every_months: N}`` (N >= 1 months)."""
    if not isinstance(value, dict) or set(value) - {"contact_every_months"}:
        raise _Bad(f"must be a mapping with the key contact_every_months, not {value!r}")
    months = value.get("contact_every_months", 6)
    if not _is_number(months) or not math.isfinite(months) or months < 1:
        raise _Bad(f"contact_every_months must be a number of months >= 1, not {months!r}")
    return {"contact_every_months": months}


def decimal_mark(value: Any) -> str:
    if value not in (".", ","):
        raise _Bad(f"must be '.' or ',', not {value!r}")
    return value


def thousands_mark(value: Any) -> str:
    if value not in (".", ",", " ", "'", "_"):
        raise _Bad(f"must be one of '.', ',', ' ', \"'\", '_' (or null), not {value!r}")
    return value


def column_map(value: Any) -> dict[str, dict[str, str]]:
    """``{customers|price_events|contact_events: {our column name: the file's}}``."""
    from retention_study.data.schema import EVENT_TABLE_COLUMNS

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad("must be a mapping {customers: {customer_id: ...}, price_events: {...}, "
                   "contact_events: {...}}")
    out = {}
    for table, mapping in value.items():
        if table not in EVENT_TABLE_COLUMNS:
            raise _Bad(f"unknown table '{table}'{_suggest(table, list(EVENT_TABLE_COLUMNS))} "
                       f"(one of {', '.join(EVENT_TABLE_COLUMNS)})")
        mapping = {} if mapping is None else mapping
        if not isinstance(mapping, dict):
            raise _Bad(f"{table} must be a mapping {{our column name: your column}}, "
                       f"not {mapping!r}")
        known = EVENT_TABLE_COLUMNS[table]
        for ours, theirs in mapping.items():
            if ours not in known:
                raise _Bad(f"{table}: unknown column '{ours}'{_suggest(ours, known)} (one of "
                           f"{', '.join(known)})")
            if not isinstance(theirs, str) or not theirs.strip():
                raise _Bad(f"{table}.{ours} must be a column name, not {theirs!r}")
        out[table] = {k: v.strip() for k, v in mapping.items()}
    return out


def direction_words(value: Any) -> dict[str, list[str]] | None:
    """``{outbound: [words], inbound: [words]}``: a company's words for the direction."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad("must be a mapping {outbound: [words], inbound: [words]}")
    out, seen = {}, {}
    for direction, words in value.items():
        if direction not in ("outbound", "inbound"):
            raise _Bad(f"unknown direction '{direction}' (outbound or inbound)")
        items = [words] if isinstance(words, str) else words
        if not isinstance(items, list) or not all(_scalar(w) for w in items):
            raise _Bad(f"{direction}: must be a word or a list of words, not {words!r}")
        for word in items:
            low = str(word).strip().lower()
            if seen.get(low, direction) != direction or low in ("outbound", "inbound") and \
                    low != direction:
                raise _Bad(f"'{word}' is given for both outbound and inbound")
            seen[low] = direction
        out[direction] = [str(w) for w in items]
    return out


def units(value: Any) -> dict[str, str]:
    """``{column: unit in words}``, e.g. ``{MonthlyCharges: EUR per month}``."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()):
        raise _Bad(f"must map a column to its unit in words, e.g. {{MonthlyCharges: EUR per "
                   f"month}}, not {value!r}")
    return {k: v.strip() for k, v in value.items()}


def memory_size(value: Any) -> str:
    """A memory size such as ``4GB`` or ``512MB``."""
    if not isinstance(value, str) or not re.fullmatch(
            r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value.strip(), re.IGNORECASE):
        raise _Bad(f"must be a memory size such as 4GB or 512MB, not {value!r}")
    return value.strip()


def key(default: Any, check: Callable[[Any], Any], doc: str = "") -> Any:
    """A config key: its default, its check and one line of help."""
    meta = {"check": check, "doc": doc}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- sections


#: ``data.controls: auto`` as the config holds it (a one-name list, like any single name).
AUTO_CONTROLS = ["auto"]


@dataclass
class DataConfig:
    """Section ``data``: what to read (README "The run config")."""

    format: str = key("events", one_of("events", "table"),
                      "events (Shape A event logs) | table (Shape B, one row per customer)")
    # Shape A (events)
    customers: str | None = key(str(SAMPLE_DIR / "customers.csv"), optional(text))
    price_events: str | None = key(str(SAMPLE_DIR / "price_events.csv"), optional(text))
    contact_events: str | None = key(str(SAMPLE_DIR / "contact_events.csv"), optional(text))
    # Shape B (table)
    path: str | list[str] | None = key(None, paths, "the table file, or a list of files")
    duration: str | None = key(None, optional(text), "tenure column")
    duration_unit: str = key("months", one_of("days", "months", "years"))
    event: dict | None = key(None, event, "{column: ..., values: [...]}: who left")
    id: str | None = key(None, optional(text), "customer key column of a table (optional)")
    price: list[str] = key([], columns)
    contact: list[str] = key([], columns)
    contact_kind: str = key("outbound", one_of("outbound", "inbound"),
                            "who initiated the table's contact columns")
    controls: list[str] = key([], columns, "customer columns to adjust for, or auto (the "
                              "baseline columns the confounder scan flags)")
    segments: list[str] = key([], columns, "columns to show rates and hazard ratios by")
    satisfaction: str | None = key(None, optional(text), "survey score column (e.g. 1-5)")
    exit_reason: str | None = key(None, optional(text), "stated exit reason column")
    # both shapes
    table: str | None = key(None, optional(text), "table name inside a DuckDB/SQLite file")
    delimiter: str | None = key(None, optional(delimiter), "CSV delimiter; sniffed when null")
    encoding: str | None = key(None, optional(encoding), "CSV encoding; sniffed when null")
    decimal: str = key(".", decimal_mark, "decimal mark of CSV numbers (',' for 67,91)")
    thousands: str | None = key(None, optional(thousands_mark),
                                "thousands separator of CSV numbers ('.' for 1.234,50)")
    columns: dict = key({}, column_map, "events: {table: {our column name: yours}}")
    direction_values: dict | None = key(None, direction_words,
                                        "events: {outbound: [words], inbound: [words]}")
    units: dict = key({}, units, "{column: unit in words}; a time unit on a table's "
                      "contact column makes it time since the last contact")
    as_of: str = key("2026-06-30", iso_date, "extraction date: later dates are errors")
    observation_start: str | None = key(None, optional(iso_date),
                                        "customers who joined earlier enter late")
    on_invalid: str = key("error", one_of("error", "exclude"))
    where: dict = key({}, where, "{column: value or [values]}: study one segment")


@dataclass
class StudySection:
    """Section ``study``: how to analyse."""

    alpha: float = key(0.05, number(0, 1, open_low=True, open_high=True),
                       "significance level of the verdict's tests")
    lag_days: int = key(0, integer(0), "covariates use information at least this old")
    grid: str = key("month", one_of("month", "week", "day"), "time resolution of episodes")
    contact_cap_months: float = key(24, number(1), "months since contact are capped here")
    price_increase_window_days: int = key(60, integer(1))
    include_price_level: bool = key(False, boolean)
    cv_folds: int = key(5, integer(2), "customer-level cross-validation folds")
    # HeadToHead needs at least one resample for the interval it reports.
    bootstrap: int = key(200, integer(1), "resamples for the CI of the CV difference")
    seed: int = key(20260630, integer(0))
    min_departures: int = key(20, integer(1), "fewer departures: the verdict is inconclusive")
    satisfaction_thresholds: list = key([2, 4], thresholds,
                                        "<=first unhappy, <=second satisfied, else delighted")
    reason_groups: dict | None = key(None, reason_groups,
                                     "{group: [patterns]}; null = the built-in mapping")
    equivalence_margin: float = key(0.05, number(0, 1, open_low=True, open_high=True),
                                    "a lever changing departures by less than this share "
                                    "does not matter (0.05 = 5%)")
    levers: dict = key({"contact_every_months": 6}, levers,
                       "the what-if contact policy: a contact every N months at most")
    engine: str = key("pandas", one_of("pandas", "duckdb", "spark", "auto"),
                      "where episodes are built: pandas | duckdb | spark | auto (duckdb when "
                      "the inputs exceed the memory budget); see docs/scale.md")
    memory_limit: str | None = key(None, optional(memory_size),
                                   "memory budget of the duckdb engine (e.g. 4GB; it spills "
                                   "to disk past it); null: DuckDB's default, 80% of RAM")
    spark_master: str = key("local[2]", text, "Spark master URL of the spark engine "
                            "(local[2], spark://host:7077, yarn)")


@dataclass
class ReportSection:
    """Section ``report``: how to render."""

    timeout_per_cell: float = key(1800, number(0, open_low=True),
                                  "seconds before a notebook cell is stopped")
    claims: str = key(str(CLAIMS_FILE), text, "the practitioners' claims file")


_SECTION_TYPES = {"data": DataConfig, "study": StudySection, "report": ReportSection}


def run_name(value: Any) -> str:
    """A run name is a folder name under ``<out>/``: never a path, '.', '..' or control text."""
    name = text(value)
    if name.strip() in (".", "..") or "/" in name or "\\" in name:
        raise _Bad(f"must be a plain name (no '/', '\\', '.' or '..'), not {value!r}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise _Bad(f"must not hold control characters, not {value!r}")
    return name


@dataclass
class StudyConfig:
    """A checked run config.

    Examples
    --------
    >>> cfg = StudyConfig.from_dict({"name": "x", "study": {"lag_days": 30}})
    >>> cfg.study.lag_days, cfg.data.format
    (30, 'events')
    >>> StudyConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> StudyConfig.from_dict({"study": {"alpha": 2, "cv_folds": 1.5}})
    Traceback (most recent call last):
    ...
    retention_study.errors.ConfigError: config: study.alpha must be a number in (0, 1), not 2
    config: study.cv_folds must be a whole number >= 2, not 1.5
    """

    name: str = key("default", run_name, "run label; reports go to <out>/<name>/")
    data: DataConfig = field(default_factory=DataConfig)
    study: StudySection = field(default_factory=StudySection)
    report: ReportSection = field(default_factory=ReportSection)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, where: str = "config") -> StudyConfig:
        """Check ``raw`` (missing keys take their defaults); every problem at once.

        Raises
        ------
        ConfigError
            One line per problem, each naming the key (``problems`` holds the list).
        """
        problems: list[str] = []
        raw = {} if raw is None else raw
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping at the top level")
        _unknown(raw, ["name", *SECTIONS], "", problems)
        name = _checked("name", raw.get("name", "default"), run_name, problems)
        sections = {}
        for sec in SECTIONS:
            given = raw.get(sec)
            if given is None:
                given = {}
            if not isinstance(given, Mapping):
                problems.append(f"{sec} must be a mapping of keys, not {given!r}")
                given = {}
            sections[sec] = _section(_SECTION_TYPES[sec], sec, given, problems)
        cfg = cls(name="default" if name is _BAD else name, **sections)
        if not problems:
            _relations(cfg, problems)
        if problems:
            raise ConfigError([f"{where}: {p}" for p in problems])
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dicts (the notebook's papermill parameters)."""
        return dataclasses.asdict(self)


def _section(cls: type, sec: str, given: Mapping[str, Any], problems: list[str]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _unknown(given, list(fields), f"{sec}.", problems)
    values = {}
    for name, f in fields.items():
        if name in given:
            values[name] = _checked(f"{sec}.{name}", given[name], f.metadata["check"], problems)
    # Keys with a problem keep their default so later checks see a whole section.
    return cls(**{k: v for k, v in values.items() if v is not _BAD})


_BAD = object()


def _checked(what: str, value: Any, check: Callable[[Any], Any], problems: list[str]) -> Any:
    try:
        return check(copy.deepcopy(value))
    except _Bad as exc:
        problems.append(f"{what} {exc}")
        return _BAD


def _suggest(name: Any, known: list[str]) -> str:
    """' (did you mean 'X'?)' for the closest known name, ignoring case; else ''."""
    lowered = {k.lower(): k for k in reversed(known)}
    hint = difflib.get_close_matches(str(name).lower(), list(lowered), n=1)
    return f" (did you mean '{lowered[hint[0]]}'?)" if hint else ""


def _unknown(given: Mapping[str, Any], known: list[str], prefix: str,
             problems: list[str]) -> None:
    for name in given:
        if name not in known:
            problems.append(f"unknown key '{prefix}{name}'{_suggest(name, known)}")


def _relations(cfg: StudyConfig, problems: list[str]) -> None:
    """Checks between keys (each key alone is already fine)."""
    d = cfg.data
    if d.observation_start is not None and d.observation_start >= d.as_of:
        problems.append(f"data.observation_start ({d.observation_start}) must be before "
                        f"data.as_of ({d.as_of})")
    if d.thousands is not None and d.thousands == d.decimal:
        problems.append(f"data.thousands ({d.thousands!r}) must differ from data.decimal")
    if d.format == "table":
        # Shape B names its columns through duration, event, price...: these would be ignored.
        for name in ("columns", "direction_values"):
            if getattr(d, name):
                problems.append(f"data.{name} applies to data.format 'events' only (a "
                                "table's columns are mapped by data.duration, data.event, "
                                "data.price, ...)")
    if d.format == "table":
        for name in ("path", "duration", "event"):
            if getattr(d, name) is None:
                problems.append(f"data.{name} is required when data.format is 'table'")
    else:
        for name in ("customers", "price_events", "contact_events"):
            if getattr(d, name) is None:
                problems.append(f"data.{name} is required when data.format is 'events'")
    engine = cfg.study.engine
    if engine in ("duckdb", "spark") and (d.format == "table" or cfg.study.grid != "month"):
        problems.append(f"study.engine {engine} builds event-log episodes on the month grid "
                        "(data.format events, study.grid month); use study.engine pandas or auto")


# --------------------------------------------------------------------------- the dict API


#: Defaults of every config key (plain dicts, derived from the dataclasses above).
DEFAULTS: dict[str, Any] = StudyConfig().to_dict()


def default_config() -> dict[str, Any]:
    """Return a deep copy of :data:`DEFAULTS`."""
    return copy.deepcopy(DEFAULTS)


def merge_sections(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, section by section (a partial section keeps the rest).

    Examples
    --------
    >>> merge_sections({"data": {"a": 1, "b": 2}}, {"data": {"b": 3}, "name": "x"})
    {'data': {'a': 1, 'b': 3}, 'name': 'x'}
    """
    out = copy.deepcopy(dict(base))
    for name, value in update.items():
        if name in SECTIONS and isinstance(value, Mapping) and isinstance(out.get(name),
                                                                          Mapping):
            out[name] = {**out[name], **copy.deepcopy(dict(value))}
        else:
            out[name] = copy.deepcopy(value)
    return out


def resolve_config(raw: dict[str, Any] | None, where: str = "config") -> dict[str, Any]:
    """Merge a raw mapping over the defaults and check it; returns plain dicts.

    Examples
    --------
    >>> cfg = resolve_config({"name": "x", "data": {"as_of": "2026-01-31"}})
    >>> cfg["data"]["as_of"], cfg["study"]["alpha"]
    ('2026-01-31', 0.05)
    """
    return StudyConfig.from_dict(raw, where).to_dict()


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


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``-p key=value`` (dotted keys, YAML values) into a path and a value.

    Examples
    --------
    >>> parse_override("study.lag_days=30")
    (['study', 'lag_days'], 30)
    """
    if "=" not in text:
        raise ConfigError(f"-p {text}: expected key=value")
    name, raw = text.split("=", 1)
    try:
        value = yaml.load(raw, Loader=_UniqueKeyLoader) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"-p {text}: the value is not valid YAML") from None
    except ConfigError as exc:
        raise ConfigError(f"-p {text}: {exc}") from None
    return name.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to a raw (unmerged) config mapping."""
    raw = copy.deepcopy(raw)
    for text_ in overrides:
        path, value = parse_override(text_)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"-p {text_}: '{part}' is not a section")
        node[path[-1]] = value
    return raw


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (the last one would win silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            name = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if name in seen:
                raise ConfigError(f"key '{name}' appears twice (lines {seen[name]} and {line})")
            seen[name] = line
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _UniqueKeyLoader.construct_mapping)


def read_yaml(path: Path) -> Any:
    """The YAML in ``path``; every way it can be unreadable is a ConfigError."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        content = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a YAML config is UTF-8 text)") from None
    try:
        return yaml.load(content, Loader=_UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None


def load_config(path: str | Path, overrides: list[str] | None = None,
                check_files: bool = True) -> dict[str, Any]:
    """Read a YAML run config, apply ``key=value`` overrides, merge defaults, check.

    With ``check_files`` the column names the config mentions are compared with the
    input files' headers (:func:`check_columns`). Relative data paths are kept
    relative to the working directory (run from the project root, as the README and
    the Makefile do).
    """
    path = Path(path)
    raw = read_yaml(path)
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw = apply_overrides(raw or {}, overrides or [])
    cfg = resolve_config(raw, where=str(path))
    if check_files:
        check_columns(cfg, where=str(path))
    return cfg


# --------------------------------------------------------------------------- headers


def mentioned_columns(cfg: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(file spec, config key, column) for every column the config names.

    Examples
    --------
    >>> cfg = resolve_config({"data": {"controls": ["plan"], "where": {"region": "n"}}})
    >>> [(k, c) for _, k, c in mentioned_columns(cfg)]
    [('data.controls', 'plan'), ('data.where', 'region')]
    """
    d = cfg["data"]
    # controls: auto names no column; the confounder scan picks them from the data
    named = [(f"data.{k}", c) for k in ("controls", "segments") for c in d[k]
             if not (k == "controls" and d[k] == AUTO_CONTROLS)]
    named += [(f"data.{k}", d[k]) for k in ("satisfaction", "exit_reason") if d[k]]
    named += [("data.where", c) for c in d["where"]]
    if d["format"] == "events":
        # Shape A's own columns (customer_id, dates...) are the data contract's to check.
        return [(str(d["customers"]), k, c) for k, c in named]
    named += [(f"data.{k}", c) for k in ("price", "contact") for c in d[k]]
    named += [(f"data.{k}", d[k]) for k in ("duration", "id") if d[k]]
    if d["event"]:
        named.append(("data.event.column", d["event"]["column"]))
    files = d["path"] if isinstance(d["path"], list) else [d["path"]]
    return [(str(f), k, c) for f in files for k, c in named]


def check_columns(cfg: Mapping[str, Any], where: str = "config") -> None:
    """Every column the config names exists in its file's header (only headers are read).

    A file that cannot be opened is left to the data contract (it names the file).

    Raises
    ------
    ConfigError
        One line per missing column, with the closest header name.
    """
    from retention_study.data.readers import read_header

    d = cfg["data"]
    problems, headers = [], {}
    for spec, name, column in mentioned_columns(cfg):
        if spec not in headers:
            headers[spec] = read_header(spec, table=d["table"], delimiter=d["delimiter"],
                                        encoding=d["encoding"])
        header = headers[spec]
        if header is not None and column not in header:
            problems.append(f"{where}: {name}: no column '{column}' in {spec}"
                            f"{_suggest(column, header)}")
    if problems:
        raise ConfigError(problems)


# --------------------------------------------------------------------------- the notebook


class Section(dict):
    """A config section in the notebook: a dict that also takes ``section.key = value``.

    ``papermill -p study.lag_days 30`` injects the line ``study.lag_days = 30``.

    Examples
    --------
    >>> study = Section({"lag_days": 0}); study.lag_days = 30; study
    {'lag_days': 30}
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


#: The notebook's own defaults (its parameters cell), which partial papermill dicts merge with.
NOTEBOOK_DEFAULTS: dict[str, dict[str, Any]] = {}


def notebook_parameters(section: str, values: dict[str, Any]) -> Section:
    """Remember ``values`` as the notebook's defaults of ``section``; return them as a Section.

    The notebook's parameters cell calls this, so that ``-y '{"data": {"on_invalid":
    "exclude"}}'`` (which papermill injects as a whole new dict) changes one key and
    keeps the notebook's other defaults (see :func:`notebook_config`).
    """
    if section not in SECTIONS:
        raise ConfigError(f"unknown config section '{section}'{_suggest(section, list(SECTIONS))}")
    NOTEBOOK_DEFAULTS[section] = copy.deepcopy(dict(values))
    return Section(values)


def notebook_config(name: str, data: Mapping | None, study: Mapping | None,
                    report: Mapping | None) -> dict[str, Any]:
    """The notebook's parameters merged over its own defaults, checked.

    Examples
    --------
    >>> _ = notebook_parameters("data", {"on_invalid": "error", "controls": ["plan"]})
    >>> cfg = notebook_config("x", {"on_invalid": "exclude"}, None, None)
    >>> cfg["data"]["on_invalid"], cfg["data"]["controls"]
    ('exclude', ['plan'])
    >>> NOTEBOOK_DEFAULTS.clear()
    """
    given = {"name": name, "data": data or {}, "study": study or {}, "report": report or {}}
    raw = merge_sections({k: v for k, v in NOTEBOOK_DEFAULTS.items()}, given)
    return resolve_config(raw, where="notebook parameters")
