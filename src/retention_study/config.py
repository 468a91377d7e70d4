"""One place for paths, defaults and the run configuration.

A run config is YAML with three sections, ``data`` (what to read), ``study`` (how to
analyse) and ``report`` (how to render), plus ``name``. Its keys become the study
notebook's papermill parameters (``name``, ``data``, ``study``, ``report``). Dates
stay ISO strings until :func:`parse_date` reads them: papermill passes YAML dates
as strings, so everything downstream parses them here, in one way.
"""

from __future__ import annotations

import copy
import difflib
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

#: Defaults of every config key. A key not listed here is a config error (typos).
DEFAULTS: dict[str, Any] = {
    "name": "default",
    "data": {
        "format": "events",  # events | table
        # Shape A (events)
        "customers": str(SAMPLE_DIR / "customers.csv"),
        "price_events": str(SAMPLE_DIR / "price_events.csv"),
        "contact_events": str(SAMPLE_DIR / "contact_events.csv"),
        # Shape B (table)
        "path": None,
        "duration": None,
        "duration_unit": "months",  # days | months | years
        "event": None,  # {column: ..., values: [...]}
        "id": None,  # customer key column of a table (optional)
        "price": [],
        "contact": [],
        "contact_kind": "outbound",  # outbound | inbound: who initiated the table's contact columns
        "controls": [],
        "segments": [],
        "satisfaction": None,  # survey score column (e.g. 1-5)
        "exit_reason": None,
        # both shapes
        "table": None,  # table name inside a DuckDB/SQLite file
        "delimiter": None,  # CSV delimiter; sniffed when None
        "encoding": None,  # CSV encoding; sniffed when None
        "as_of": "2026-06-30",
        "observation_start": None,  # customers who joined earlier enter late
        "on_invalid": "error",  # error | exclude
        "where": {},  # {column: value or [values]}: study one segment (e.g. one plan)
    },
    "study": {
        "alpha": 0.05,
        "lag_days": 0,
        "grid": "month",  # month | week | day: time resolution of episodes
        "contact_cap_months": 24,
        "price_increase_window_days": 60,
        "include_price_level": False,
        "cv_folds": 5,
        "bootstrap": 200,
        "seed": 20260630,
        "min_departures": 20,
        "satisfaction_thresholds": [2, 4],  # <=2 unhappy, <=4 satisfied, else delighted
        "reason_groups": None,  # None = default mapping in retention_study.reasons
    },
    "report": {
        "timeout_per_cell": 1800,
        "claims": str(CLAIMS_FILE),
    },
}

_LIST_KEYS = {"price", "contact", "controls", "segments"}


def default_config() -> dict[str, Any]:
    """Return a deep copy of :data:`DEFAULTS`."""
    return copy.deepcopy(DEFAULTS)


def _merge(base: dict[str, Any], update: dict[str, Any], where: str) -> None:
    for key, value in update.items():
        if key not in base:
            hint = difflib.get_close_matches(key, list(base), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{where}: unknown key '{key}'{suggestion}")
        if isinstance(base[key], dict) and key in ("data", "study", "report"):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{key}' must be a mapping")
            _merge(base[key], value, f"{where}: {key}")
        else:
            base[key] = value


def _normalise(cfg: dict[str, Any]) -> dict[str, Any]:
    data = cfg["data"]
    if data.get("where") is None:
        data["where"] = {}
    if not isinstance(data["where"], dict):
        raise ConfigError("data.where must be a mapping {column: value or [values]}")
    for key in _LIST_KEYS:
        value = data.get(key)
        if value is None:
            data[key] = []
        elif isinstance(value, str):
            data[key] = [value]
    # YAML may hand us datetime.date objects; papermill only passes strings, so
    # keep ISO strings everywhere and parse in one place (parse_date).
    for key in ("as_of", "observation_start"):
        if data.get(key) is not None:
            data[key] = parse_date(data[key], f"data.{key}").date().isoformat()
    if data["format"] not in ("events", "table"):
        raise ConfigError(f"data.format must be 'events' or 'table', not {data['format']!r}")
    if data["on_invalid"] not in ("error", "exclude"):
        raise ConfigError(f"data.on_invalid must be 'error' or 'exclude', not {data['on_invalid']!r}")
    if data["as_of"] is None:
        raise ConfigError("data.as_of is required: the date the data was extracted")
    return cfg


def parse_date(value: Any, what: str) -> pd.Timestamp:
    """Parse a config date (ISO string or date) into a Timestamp.

    Examples
    --------
    >>> parse_date("2026-06-30", "data.as_of")
    Timestamp('2026-06-30 00:00:00')
    """
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError):
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
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else None
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to a raw (unmerged) config mapping."""
    raw = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"-p {text}: '{part}' is not a section")
        node[path[-1]] = value
    return raw


def resolve_config(raw: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Merge a raw mapping over the defaults and check it.

    Examples
    --------
    >>> cfg = resolve_config({"name": "x", "data": {"as_of": "2026-01-31"}})
    >>> cfg["data"]["as_of"], cfg["study"]["alpha"]
    ('2026-01-31', 0.05)
    """
    cfg = default_config()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    _merge(cfg, raw, where)
    return _normalise(cfg)


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a YAML run config, apply ``key=value`` overrides, merge defaults.

    Relative data paths are kept relative to the working directory (run from the
    project root, as the README and the Makefile do).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    raw = apply_overrides(raw or {}, overrides or [])
    return resolve_config(raw, where=str(path))

