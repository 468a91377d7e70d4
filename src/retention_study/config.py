"""One place for paths, defaults and the run configuration: a typed, checked config.

A run config is YAML with three sections, ``data`` (what to read), ``study`` (how to
analyse) and ``report`` (how to render), plus ``name``. Each section is a dataclass
below; every key is one field with its default, its check and a line of help, so
adding a key is one line (and, where it relates to another key, a line in
``_relations``). :meth:`StudyConfig.from_dict` checks everything at once and raises a
:class:`~retention_study.errors.ConfigError` listing every problem, one line each
(exit status 2); :func:`~retention_study.config_file.check_columns` then compares the
column names the config mentions with the files' headers, reading nothing but the headers.

The sections travel to the study notebook as plain dicts (papermill parameters are
JSON): :meth:`StudyConfig.to_dict` writes them, :meth:`StudyConfig.from_dict` reads
them back. Dates stay ISO strings until
:func:`~retention_study.config_keys.parse_date` reads them: papermill
passes YAML dates as strings, so everything downstream parses them there, in one way.

The parts: :mod:`.config_keys` (the value checks and :func:`~.config_keys.key`),
:mod:`.config_file` (YAML, overrides, :func:`~.config_file.load_config`, headers) and
:mod:`.notebook` (the notebook's parameters).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retention_study.config_keys import (
    BadValue,
    boolean,
    column_map,
    columns,
    decimal_mark,
    delimiter,
    direction_words,
    encoding,
    event,
    integer,
    iso_date,
    key,
    levers,
    memory_size,
    number,
    one_of,
    optional,
    paths,
    reason_groups,
    suggest,
    text,
    thousands_mark,
    thresholds,
    units,
    where,
)
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
        raise BadValue(f"must be a plain name (no '/', '\\', '.' or '..'), not {value!r}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise BadValue(f"must not hold control characters, not {value!r}")
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
    except BadValue as exc:
        problems.append(f"{what} {exc}")
        return _BAD


def _unknown(given: Mapping[str, Any], known: list[str], prefix: str,
             problems: list[str]) -> None:
    for name in given:
        if name not in known:
            problems.append(f"unknown key '{prefix}{name}'{suggest(name, known)}")


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
