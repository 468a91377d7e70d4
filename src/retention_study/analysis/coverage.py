"""What a run covers: the facts of the report header, results.json's ``coverage`` and the index.

A reader must see at once which data a report is about (label, simulated or real),
the as-of date and observation window, how many customers and departures, which
segment and lag, the engine, the package version and when it ran.

Examples
--------
>>> source_kind({"format": "table", "path": "no/such/file.csv"})
'real'
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from retention_study import __version__

#: The simulator writes this file beside the data it makes (``retention-study simulate``).
TRUTH_FILE = "truth.json"
DEFAULT_ENGINE = "pandas"


def _data_files(data_cfg: dict) -> list[str]:
    keys = ("customers",) if data_cfg.get("format", "events") == "events" else ("path",)
    files = []
    for key in keys:
        value = data_cfg.get(key)
        files += [str(v) for v in value] if isinstance(value, list) else [str(value)] * bool(value)
    return [f.split("::", 1)[0] for f in files]


def source_kind(data_cfg: dict) -> str:
    """'simulated' when the config says so (``data.source``) or truth.json lies beside the data.

    Examples
    --------
    >>> source_kind({"source": "simulated"})
    'simulated'
    """
    stated = data_cfg.get("source")
    if stated in ("simulated", "real"):
        return stated
    files = _data_files(data_cfg)
    if files and all((Path(f).parent / TRUTH_FILE).is_file() for f in files):
        return "simulated"
    return "real"


def _date(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    try:
        return pd.Timestamp(value).date().isoformat()
    except (TypeError, ValueError):
        return str(value)


def run_coverage(cfg: dict, data, timeline, today: dt.date | None = None) -> dict:
    """The header facts of a run, JSON-safe.

    ``window_start`` is the observation start when set (earlier joiners enter late),
    else the first start date; a flat table without dates has none (tenure only).
    """
    d, s = cfg["data"], cfg["study"]
    start = _date(d.get("observation_start"))
    if start is None and getattr(data, "customers", None) is not None \
            and "start_date" in data.customers:
        start = _date(data.customers["start_date"].min())
    return {
        "label": d.get("label") or cfg["name"],
        "source": source_kind(d),
        "files": [Path(f).name for f in _data_files(d)],
        "format": data.format,
        "as_of": _date(d.get("as_of")),
        "window_start": start,
        "window_end": _date(d.get("as_of")),
        "customers": int(timeline.n_customers),
        "departures": int(timeline.n_departures),
        "segment": {str(k): v for k, v in (d.get("where") or {}).items()},
        "lag_days": int(s.get("lag_days", 0)),
        "engine": (getattr(timeline, "params", None) or {}).get("engine")
        or s.get("engine") or DEFAULT_ENGINE,
        "package_version": __version__,
        "run_date": (today or dt.datetime.now(dt.UTC).date()).isoformat(),
    }
