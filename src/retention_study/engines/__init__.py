"""Where the study's episodes are built: pandas (in memory), DuckDB (larger than memory), Spark.

``study.engine`` chooses: ``pandas`` (the default: :mod:`retention_study.episodes.timeline`),
``duckdb`` (:mod:`.duckdb_engine`, memory bounded by ``study.memory_limit``), ``spark``
(:mod:`.spark_engine`, ``study.spark_master``) or ``auto`` (duckdb when the episodes
would not fit the memory budget, else pandas). The episode logic is written once as SQL
(:mod:`.relational`, DuckDB dialect, transpiled by sqlglot for Spark);
:mod:`.relational_cox` evaluates each Newton step of the one Cox engine
(:class:`~retention_study.survival.CoxFitter`) as one aggregate query. Every engine gives
the same episodes, row for row (tests/test_engines.py).

Examples
--------
>>> from retention_study.episodes.timeline import example_data
>>> cfg = {"study": {"engine": "duckdb", "memory_limit": "1GB", "lag_days": 0, "grid": "month",
...        "contact_cap_months": 24, "price_increase_window_days": 60,
...        "include_price_level": False}}
>>> timeline(example_data(), cfg).episodes.shape
(15, 10)
>>> choose_engine(example_data(), {"study": {"engine": "auto"}})
'pandas'
"""

from __future__ import annotations

import logging
import os

from retention_study.config import LOGGER_NAME

log = logging.getLogger(LOGGER_NAME)

ENGINES = ("pandas", "duckdb", "spark", "auto")
#: Bytes per episode cell in pandas, and the columns of a typical episode table: the
#: estimate ``auto`` compares with the memory budget.
_BYTES_PER_CELL = 8
_TYPICAL_COLUMNS = 12
_AUTO_SHARE = 0.25  # of physical memory, when study.memory_limit is not set


def choose_engine(data, cfg: dict) -> str:
    """The engine a config asks for; ``auto`` decides by the estimated episode table size."""
    s = cfg["study"]
    engine = s.get("engine") or "pandas"
    if engine != "auto":
        return engine
    if data.format != "events" or s.get("grid", "month") != "month":
        return "pandas"
    need = _estimated_episode_bytes(data)
    budget = _budget_bytes(s.get("memory_limit"))
    choice = "duckdb" if need > budget else "pandas"
    log.info("engine auto: about %.1f GB of episodes against a %.1f GB budget: %s",
             need / 1e9, budget / 1e9, choice)
    return choice


def _estimated_episode_bytes(data) -> float:
    """Customer-months at risk (one episode row each on the month grid) x row width."""
    import pandas as pd

    c = data.customers
    end = c["end_date"].fillna(pd.Timestamp(data.as_of))
    months = ((end - c["start_date"]).dt.days.clip(lower=0) / 30.4375).sum()
    return float(months) * _TYPICAL_COLUMNS * _BYTES_PER_CELL * 3  # x3: copies while building


def _budget_bytes(memory_limit: str | None) -> float:
    if memory_limit:
        import re

        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT])(i?)B", memory_limit.strip(), re.IGNORECASE)
        if m:
            base = 1024 if m.group(3) else 1000
            return float(m.group(1)) * base ** ("KMGT".index(m.group(2).upper()) + 1)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * _AUTO_SHARE
    except (ValueError, OSError, AttributeError):
        return 4e9


def make_engine(name: str, cfg: dict):
    """A DuckDB or Spark engine configured from ``cfg["study"]``."""
    s = cfg["study"]
    if name == "duckdb":
        from retention_study.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(memory_limit=s.get("memory_limit"))
    if name == "spark":
        from retention_study.engines.spark_engine import SparkEngine, spark_available

        ok, why = spark_available()
        if not ok:
            from retention_study.errors import ConfigError

            raise ConfigError(f"study.engine spark: {why}")
        return SparkEngine(master=s.get("spark_master") or "local[2]")
    raise ValueError(f"no relational engine {name!r}")


def timeline(data, cfg: dict, **changes):
    """The run's episodes (a :class:`~retention_study.data.schema.Timeline`) on the chosen engine.

    ``changes`` override timeline options (as :func:`retention_study.episodes.timeline.timeline_options`).
    The DuckDB and Spark engines build the episodes in SQL and hand them to pandas for the
    steps after the fit; ``params["engine"]`` records the engine used (``auto`` resolved),
    which the report header names.
    """
    from retention_study.episodes.timeline import build_timeline, timeline_options

    name = choose_engine(data, cfg)
    opts = timeline_options(cfg, **changes)
    if name == "pandas":
        tl = build_timeline(data, **opts)
    else:
        from retention_study.engines.base import build_episodes

        engine = make_engine(name, cfg)
        engine.register_study_data(data)
        tl = build_episodes(engine, data, **opts).to_timeline()
    tl.params["engine"] = name
    return tl
