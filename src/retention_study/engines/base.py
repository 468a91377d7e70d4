"""What every relational engine does with the one description in :mod:`.relational`.

An engine (:class:`~.duckdb_engine.DuckDBEngine`, :class:`~.spark_engine.SparkEngine`)
knows how to run a query in its dialect, materialise a result under a name, fetch a small
result and take in the study's input tables. :func:`build_episodes` runs the episode
steps on it and returns an :class:`EngineTimeline`: the episodes stay in the engine (a
table name), with the blocks, definitions and exclusions a
:class:`~retention_study.data.schema.Timeline` carries; :meth:`EngineTimeline.to_timeline`
brings them into pandas when the rest of the study needs them there.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retention_study.config import LOGGER_NAME
from retention_study.data.schema import BLOCKS, CUSTOMER_ID, StudyData, Timeline
from retention_study.engines.relational import EpisodePlan, Facts
from retention_study.engines.sql import transpile
from retention_study.episodes.followup import exclude
from retention_study.episodes.timeline import build_params
from retention_study.errors import AnalysisError, ConfigError, DataContractError

log = logging.getLogger(LOGGER_NAME)
_EPOCH = pd.Timestamp("1970-01-01")
#: Each build's episodes get their own name: a Spark session's views are shared by every
#: engine on it, and a second build must not replace the first one's episodes.
_BUILDS = itertools.count(1)


class Engine:
    """A relational engine: subclasses give ``dialect`` and the five primitives below."""

    dialect = "duckdb"
    name = "engine"

    def execute(self, sql: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def materialise(self, name: str, sql: str) -> None:  # pragma: no cover - abstract
        """Make ``name`` hold the result of ``sql`` (DuckDB dialect; transpiled here)."""
        raise NotImplementedError

    def fetch(self, sql: str, params=None) -> pd.DataFrame:  # pragma: no cover - abstract
        """A small result as a DataFrame (aggregates, never the episode table at scale)."""
        raise NotImplementedError

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:  # pragma: no cover
        raise NotImplementedError

    def drop(self, name: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def scalar(self, sql: str):
        return self.fetch(sql).iloc[0, 0]

    def sql(self, sql: str) -> str:
        return transpile(sql, self.dialect)

    # ----------------------------------------------------------------- inputs
    def register_study_data(self, data: StudyData, numeric_controls: dict | None = None) -> None:
        """The loaded (checked) shape A frames as ``rs_customers``, ``rs_price``, ``rs_contact``.

        Dates become whole days since 1970 here; the event tables get ``seq`` (their row
        order, which breaks same-day ties as the pandas builder's stable sort does).
        """
        if data.format != "events":
            raise ConfigError("study.engine duckdb/spark builds episodes of event logs "
                              "(data.format: events); a flat table uses study.engine: pandas")
        c = data.customers
        if c is None:
            raise DataContractError("shape A data has no customers table", file="customers",
                                    kind="missing_table")
        cust = pd.DataFrame({CUSTOMER_ID: c[CUSTOMER_ID].astype(str).to_numpy(),
                             "start_day": _days(c["start_date"]),
                             "end_day": _days(c["end_date"]),
                             "notice_day": (_days(c["notice_date"]) if "notice_date" in c
                                            else pd.array([None] * len(c), dtype="Int64"))})
        for col in data.roles.get("controls") or []:
            if col in c:
                cust[col] = c[col].to_numpy()
        self.register_frame("rs_customers", cust)
        self._numeric = {col: bool(pd.api.types.is_numeric_dtype(c[col])
                                   or pd.api.types.is_bool_dtype(c[col]))
                         for col in (data.roles.get("controls") or []) if col in c}
        pe = data.price_events
        if pe is not None and len(pe):
            ncp = (pe["new_customer_price"].astype(float) if "new_customer_price" in pe
                   else pd.Series(np.nan, index=pe.index))
            self.register_frame("rs_price", pd.DataFrame({
                CUSTOMER_ID: pe[CUSTOMER_ID].astype(str).to_numpy(),
                "day": _days(pe["effective_date"]), "seq": np.arange(len(pe), dtype=np.int64),
                "monthly_price": pe["monthly_price"].astype(float).to_numpy(),
                "new_customer_price": pd.array(ncp.to_numpy(), dtype="Float64")}))
            self._has = {"price": True}
        else:
            self._has = {"price": False}
        ce = data.contact_events
        if ce is not None and len(ce):
            self.register_frame("rs_contact", pd.DataFrame({
                CUSTOMER_ID: ce[CUSTOMER_ID].astype(str).to_numpy(),
                "day": _days(ce["contact_date"]), "seq": np.arange(len(ce), dtype=np.int64),
                "outbound": (ce["direction"] == "outbound").to_numpy()}))
            self._has["contact"] = True
        else:
            self._has["contact"] = False
        self._empty_tables()

    def _empty_tables(self) -> None:
        """Absent event tables as empty relations, so the one description still runs."""
        if not self._has["price"]:
            self.materialise("rs_price", "SELECT CAST(NULL AS VARCHAR) AS customer_id, "
                             "CAST(NULL AS BIGINT) AS day, CAST(NULL AS BIGINT) AS seq, "
                             "CAST(NULL AS DOUBLE) AS monthly_price, "
                             "CAST(NULL AS DOUBLE) AS new_customer_price WHERE FALSE")
        if not self._has["contact"]:
            self.materialise("rs_contact", "SELECT CAST(NULL AS VARCHAR) AS customer_id, "
                             "CAST(NULL AS BIGINT) AS day, CAST(NULL AS BIGINT) AS seq, "
                             "CAST(NULL AS BOOLEAN) AS outbound WHERE FALSE")


def _days(values: pd.Series) -> pd.array:
    """Dates as whole days since 1970 (nullable integers: NaT is NULL)."""
    ts = pd.to_datetime(values)
    days = (ts.dt.normalize() - _EPOCH).dt.days
    return pd.array(days.to_numpy(dtype="float64"), dtype="Float64").astype("Int64")


@dataclass
class EngineTimeline:
    """Episodes built by an engine: ``table`` names them there; the rest is a Timeline's."""

    engine: Engine
    table: str
    blocks: dict
    definitions: dict
    unmeasured: list
    params: dict
    n_rows: int
    n_departures: int
    n_customers: int

    @property
    def covariates(self) -> list[str]:
        return [c for b in BLOCKS for c in self.blocks.get(b, [])]

    def to_timeline(self) -> Timeline:
        """The episodes in pandas, as :func:`~retention_study.episodes.timeline.build_timeline` gives."""
        episodes = self.engine.fetch(f"SELECT * FROM {self.table} ORDER BY customer_id, start")
        episodes = _canonical_dtypes(episodes, self.covariates)
        return Timeline(episodes=episodes, blocks=self.blocks, definitions=self.definitions,
                        unmeasured=self.unmeasured, params=self.params)


def _canonical_dtypes(episodes: pd.DataFrame, covariates: list) -> pd.DataFrame:
    """The pandas builder's dtypes: object ids, float start/stop, int64 counts and flags."""
    out = episodes.reset_index(drop=True)
    out[CUSTOMER_ID] = out[CUSTOMER_ID].astype(object)
    for col in ("start", "stop"):
        out[col] = out[col].astype(np.float64)
    out["event"] = out["event"].astype(np.int64)
    for col in covariates:
        s = out[col]
        if pd.api.types.is_integer_dtype(s):
            out[col] = s.astype(np.int64)
        else:
            out[col] = s.astype(np.float64)
    return out


def build_episodes(engine: Engine, data: StudyData, *, lag_days: int = 0, grid: str = "month",
                   contact_cap_months: float = 24, price_increase_window_days: int = 60,
                   include_price_level: bool = False, notice_guard: bool = True,
                   controls: list | None = None, table: str | None = None,
                   order: bool = False) -> EngineTimeline:
    """Build the episodes of ``data`` (already registered on ``engine``) in the engine.

    The options are :func:`~retention_study.episodes.timeline.build_timeline`'s, checked by the
    same function; exclusions go to ``params["excluded"]`` and the data's ledger through
    the pandas builder's own recorder, so both engines leave the same ledger.
    """
    table = table or f"rs_episodes_{next(_BUILDS)}"
    params = build_params(data, lag_days=lag_days, grid=grid, contact_cap_months=contact_cap_months,
                          price_increase_window_days=price_increase_window_days,
                          include_price_level=include_price_level, notice_guard=notice_guard,
                          controls=controls)
    if grid != "month":
        raise ConfigError(f"study.engine {engine.name} builds episodes on the month grid only; "
                          f"study.grid {grid} needs study.engine: pandas")
    obs = data.observation_start
    plan = EpisodePlan(
        as_of_day=int((pd.Timestamp(data.as_of).normalize() - _EPOCH).days),
        observation_day=(None if obs is None
                         else int((pd.Timestamp(obs).normalize() - _EPOCH).days)),
        lag_days=params["lag_days"], notice_guard=params["notice_guard"],
        contact_cap_months=params["contact_cap_months"],
        price_increase_window_days=params["price_increase_window_days"],
        include_price_level=params["include_price_level"], controls=params["controls"])
    has = engine._has
    e = engine
    e.materialise("rs_spans", plan.spans())
    e.materialise("rs_kept", plan.kept())
    for tbl, reason, kind, q in plan.exclusion_queries(has["price"], has["contact"]):
        exclude(data, params, tbl, reason, int(e.scalar(q)), kind=kind)
    if not int(e.scalar("SELECT COUNT(*) FROM rs_kept")):
        raise AnalysisError("no customer has any time at risk: nothing to analyse (see the "
                            "data-quality ledger)")
    e.materialise("rs_rows", plan.rows())
    e.materialise("rs_price_f", plan.price_f())
    e.materialise("rs_price_day", plan.price_day())
    e.materialise("rs_price_first", plan.price_first())
    e.materialise("rs_contact_f", plan.contact_f())
    counts = {k: int(e.scalar(q)) for k, q in plan.fact_queries().items()}
    facts = Facts(has_price_table=has["price"], has_contact_table=has["contact"],
                  price_rows=counts["price_rows"], outbound_rows=counts["outbound_rows"],
                  inbound_rows=counts["inbound_rows"], ncp_known=counts["ncp_known"] > 0,
                  controls=_control_kinds(e, plan, data))
    e.materialise("rs_stream", plan.stream(facts))
    flags_sql, reasons = plan.flags(facts)
    e.materialise("rs_flags", flags_sql)
    if reasons:
        by_reason = e.fetch("SELECT reason, COUNT(*) AS n FROM rs_flags GROUP BY reason")
        n_by = dict(zip(by_reason["reason"].astype(int), by_reason["n"].astype(int),
                        strict=True))
        for i, (_block, reason) in enumerate(reasons, start=1):
            exclude(data, params, "customers", reason, n_by.get(i, 0))
    for tbl, reason, kind, q in plan.dropped_event_queries(has["price"], has["contact"]):
        exclude(data, params, tbl, reason, int(e.scalar(q)), kind=kind)
    e.materialise(table, plan.episodes(facts, order=order))
    cols, defs, unmeasured, _ = plan.covariates(facts)
    blocks = {b: [name for blk, name, _ in cols if blk == b] for b in BLOCKS}
    size = e.fetch(f"SELECT COUNT(*) AS n, SUM(event) AS d, COUNT(DISTINCT customer_id) AS c "
                   f"FROM {table}")
    for name in ("rs_stream", "rs_rows", "rs_price_day", "rs_contact_f"):
        e.drop(name)  # free the big intermediates (the episodes are all that is needed)
    params["n_rows"] = int(size["n"].iloc[0])
    log.info("timeline (%s): %d customers, %d rows, %d departures (grid %s, notice guard %s)",
             engine.name, int(size["c"].iloc[0]), params["n_rows"], int(size["d"].iloc[0] or 0),
             grid, notice_guard)
    return EngineTimeline(engine, table, blocks, defs, unmeasured, params, params["n_rows"],
                          int(size["d"].iloc[0] or 0), int(size["c"].iloc[0]))


def _control_kinds(engine: Engine, plan: EpisodePlan, data: StudyData) -> dict:
    """Numeric controls as they are; categorical ones with their levels and reference level
    (the most common among the studied customers, ties broken by name, as ``dummy_code``)."""
    out = {}
    numeric = getattr(engine, "_numeric", {})
    for col in plan.controls:
        if col not in numeric:
            source = data.sources.get("customers", "customers")
            raise DataContractError(f"control column {col!r} is not in the data", file=source,
                                    column=col, kind="missing_column")
        if numeric[col]:
            out[col] = ("numeric", None, None)
            continue
        levels = engine.fetch(plan.level_query(col))
        if levels.empty:
            out[col] = ("levels", [], None)
            continue
        counts = dict(zip(levels["level"].astype(str), levels["n"].astype(int), strict=True))
        top = max(counts.values())
        ref = sorted(k for k, v in counts.items() if v == top)[0]
        out[col] = ("levels", sorted(counts), ref)
    return out
