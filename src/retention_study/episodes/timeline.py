"""Episodes for the Cox models: start/stop rows per customer (shape A) or one row each (shape B).

Shape A follows each customer on a grid of TENURE months (month ``k`` begins on
``start_date + floor(k * 365.25/12)`` days) and also splits at every dated event, so
that recency measures change when they should. Every boundary is rounded *up* to
the time resolution (``grid``): ``"month"`` keeps only whole tenure months (few
distinct event times, fast fits), ``"week"`` whole weeks of tenure, ``"day"`` the day
after each event.

Days are right-closed: interval ``(k-1, k]`` holds tenure days ``floor((k-1)*DPM) + 1``
to ``floor(k*DPM)``, so a departure dated on the day month ``k`` begins ends
``(k-1, k]``, whose covariates are read on day ``floor((k-1)*DPM)``: a day earlier than
its first day at risk, never later (no leak). A customer who joins on ``as_of`` has no
time at risk.

The notice guard: a departure is dated at the notice (the decision), and covariates
of an interval use only what is dated strictly before the interval begins (less
``lag_days``), so retention calls and win-back discounts that *follow* a notice never
enter. ``notice_guard=False`` is the naive analysis shown beside it: departure at
end_date and covariates read at the end of each interval, the look-ahead a quick
analysis makes.

Everything is vectorised: one global sort of each event table by (customer, day) and
``np.searchsorted`` for every "last event before" and "events in a window" question.

This module is the entry point and the assembly; the parts are :mod:`.grid` (days and
grid units), :mod:`.events` (sorted events and their lookups), :mod:`.followup` (who is
at risk when, and who is left out) and :mod:`.blocks` (the covariate blocks).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from retention_study.config import LOGGER_NAME
from retention_study.data.schema import BLOCKS, CUSTOMER_ID, DAYS_PER_MONTH, StudyData, Timeline
from retention_study.episodes.blocks import BLOCK_BUILDERS, Block, recency_months, table_block
from retention_study.episodes.events import Events, prepare_events
from retention_study.episodes.followup import Rows, build_rows, exclude
from retention_study.episodes.grid import GRIDS
from retention_study.errors import AnalysisError, ConfigError, DataContractError

log = logging.getLogger(LOGGER_NAME)


# --------------------------------------------------------------------------- entry point


def timeline_options(cfg: dict, **changes: Any) -> dict:
    """The :func:`build_timeline` options a config asks for.

    Examples
    --------
    >>> from retention_study.config import resolve_config
    >>> cfg = resolve_config({"data": {"as_of": "2026-06-30"}, "study": {"lag_days": 30}})
    >>> timeline_options(cfg, notice_guard=False)["lag_days"]
    30
    """
    s = cfg["study"]
    opts = {"lag_days": int(s["lag_days"]), "grid": s["grid"],
            "contact_cap_months": float(s["contact_cap_months"]),
            "price_increase_window_days": int(s["price_increase_window_days"]),
            "include_price_level": bool(s["include_price_level"])}
    opts.update(changes)
    return opts


def build_timeline(
    data: StudyData,
    *,
    lag_days: int = 0,
    grid: str = "month",
    contact_cap_months: float = 24,
    price_increase_window_days: int = 60,
    include_price_level: bool = False,
    notice_guard: bool = True,
    controls: list[str] | None = None,
) -> Timeline:
    """Build the episodes a Cox model reads from a checked data set.

    Parameters
    ----------
    data : StudyData
        Output of the loader. ``format == "events"`` gives start/stop episodes,
        ``"table"`` one row per customer.
    lag_days : int
        Covariates use only events dated before ``interval begin - lag_days``.
    grid : {"month", "week", "day"}
        Time resolution: every boundary is rounded up to it (shape A only).
    contact_cap_months : float
        Cap of ``months_since_contact``.
    price_increase_window_days : int
        How long a price increase stays flagged in ``price_increase_recent``.
    include_price_level : bool
        Add ``log_price`` to the price block (always added when the loyalty penalty
        cannot be measured).
    notice_guard : bool
        True: departure at the notice, nothing on or after it enters. False: the naive
        analysis (departure at end_date, covariates read at interval ends).
    controls : list of str, optional
        Customer columns to adjust for; default ``data.roles["controls"]``.

    Returns
    -------
    Timeline

    Examples
    --------
    >>> import pandas as pd
    >>> from retention_study.data.schema import StudyData
    >>> d = pd.Timestamp
    >>> customers = pd.DataFrame({"customer_id": ["a"], "start_date": [d("2025-01-01")],
    ...     "end_date": [pd.NaT], "notice_date": [d("2025-03-10")], "churned": [1],
    ...     "exit_reason": [None]})
    >>> prices = pd.DataFrame({"customer_id": ["a"], "effective_date": [d("2025-01-01")],
    ...     "monthly_price": [30.0], "new_customer_price": [25.0]})
    >>> contacts = pd.DataFrame({"customer_id": ["a"], "contact_date": [d("2025-01-01")],
    ...     "direction": ["outbound"], "channel": ["phone"], "topic": ["welcome"]})
    >>> data = StudyData("events", d("2025-06-30"), customers, prices, contacts)
    >>> tl = build_timeline(data)
    >>> tl.episodes[["start", "stop", "event"]].values.tolist()
    [[0.0, 1.0, 0.0], [1.0, 2.0, 0.0], [2.0, 3.0, 1.0]]
    """
    return TimelineBuilder(data).build(
        lag_days=lag_days, grid=grid, contact_cap_months=contact_cap_months,
        price_increase_window_days=price_increase_window_days,
        include_price_level=include_price_level, notice_guard=notice_guard, controls=controls)


class TimelineBuilder:
    """Episodes of one data set under several options, sharing the work they have in common.

    The robustness analysis builds the same data's episodes at several lags and
    without the notice guard. A builder sorts the customers and maps and sorts the
    event tables once; on the month grid the intervals do not depend on the lag, so the
    rows of one (notice guard, grid) pair are also built once and only the covariates
    are recomputed for each lag. Each :meth:`build` gives the same Timeline as
    :func:`build_timeline` with the same options.

    Examples
    --------
    >>> builder = TimelineBuilder(example_data())
    >>> lagged = [builder.build(lag_days=lag).episodes for lag in (0, 30)]
    >>> lagged[1].equals(build_timeline(example_data(), lag_days=30).episodes)
    True
    """

    def __init__(self, data: StudyData) -> None:
        self.data = data
        self._prepared: tuple[pd.DataFrame, Events] | None = None
        # Only the last rows are kept: at a million customers one set is about 1 GB.
        self._rows: tuple[tuple, Rows, list] | None = None

    def build(self, *, lag_days: int = 0, grid: str = "month", contact_cap_months: float = 24,
              price_increase_window_days: int = 60, include_price_level: bool = False,
              notice_guard: bool = True, controls: list[str] | None = None) -> Timeline:
        """The Timeline of :func:`build_timeline` for these options (same parameters)."""
        data = self.data
        params = build_params(data, lag_days=lag_days, grid=grid,
                              contact_cap_months=contact_cap_months,
                              price_increase_window_days=price_increase_window_days,
                              include_price_level=include_price_level, notice_guard=notice_guard,
                              controls=controls)
        if data.format == "events":
            return _build_events(data, params, self)
        if data.format == "table":
            return _build_table(data, params)
        raise ConfigError(f"data.format must be 'events' or 'table', not {data.format!r}")

    def prepared(self) -> tuple[pd.DataFrame, Events]:
        """Customers sorted by id, and their events mapped to them and sorted (once)."""
        if self._prepared is None:
            if self.data.customers is None:
                raise DataContractError("shape A data has no customers table",
                                        file="customers", kind="missing_table")
            customers = self.data.customers.sort_values(CUSTOMER_ID, kind="stable")
            customers = customers.reset_index(drop=True)
            self._prepared = customers, prepare_events(self.data, pd.Index(customers[CUSTOMER_ID]))
        return self._prepared

    def rows(self, params: dict) -> Rows:
        """The intervals for ``params``, reused across lags where the grid allows."""
        # Off the month grid, event-driven split days move with the lag.
        key = (params["notice_guard"], params["grid"],
               None if params["grid"] == "month" else params["lag_days"])
        if self._rows is not None and self._rows[0] == key:
            _, rows, excluded = self._rows
            for e in excluded:  # the same exclusions, recorded in this build's params
                exclude(self.data, params, e["table"], e["reason"], e["rows"], e["kind"])
            return replace(rows, ref_day=rows.eval_day - params["lag_days"])
        self._rows = None  # free the previous rows before building new ones
        before = len(params["excluded"])
        rows = build_rows(self.data, params, *self.prepared())
        self._rows = key, rows, [dict(e) for e in params["excluded"][before:]]
        return rows


def build_params(data: StudyData, *, lag_days, grid, contact_cap_months,
                 price_increase_window_days, include_price_level, notice_guard, controls) -> dict:
    """Check the options of a build and turn them into the Timeline's ``params``."""
    if grid not in GRIDS:
        raise ConfigError(f"study.grid must be one of {', '.join(GRIDS)}, not {grid!r}")
    if lag_days is None or int(lag_days) != lag_days or lag_days < 0:
        raise ConfigError(f"study.lag_days must be a whole number of days >= 0, not {lag_days!r}")
    if price_increase_window_days < 1:
        raise ConfigError("study.price_increase_window_days must be at least 1")
    if contact_cap_months <= 0:
        raise ConfigError("study.contact_cap_months must be positive")
    params = {
        "format": data.format,
        "lag_days": int(lag_days),
        "grid": grid,
        "contact_cap_months": float(contact_cap_months),
        "price_increase_window_days": int(price_increase_window_days),
        "include_price_level": bool(include_price_level),
        "notice_guard": bool(notice_guard),
        "controls": list(controls if controls is not None
                         else (data.roles.get("controls") or [])),
        "excluded": [],
        "analysis": ("guarded: departure dated at the notice; covariates from events dated "
                     "before each interval" if notice_guard else
                     "naive: departure dated at the end of service; covariates from events "
                     "up to the end of each interval (post-notice events leak in)"),
        "as_of": str(pd.Timestamp(data.as_of).date()),
        "observation_start": (
            str(pd.Timestamp(data.observation_start).date())
            if data.observation_start is not None else None
        ),
    }
    return params


def example_data() -> StudyData:
    """Three hand-made customers in shape A, for examples and quick checks.

    ``a`` gives notice on 2025-03-10 and is called and offered a discount after it;
    ``b`` is still a customer (never contacted after the welcome call, price raised
    on 2025-04-01); ``c`` left on 2025-05-20 without a notice on record.

    Examples
    --------
    >>> example_data().customers["customer_id"].tolist()
    ['a', 'b', 'c']
    """
    d = pd.to_datetime
    customers = pd.DataFrame({
        "customer_id": ["a", "b", "c"],
        "start_date": d(["2025-01-01", "2024-11-15", "2025-02-01"]),
        "end_date": d([None, None, "2025-05-20"]),
        "notice_date": d(["2025-03-10", None, None]),
        "churned": [1, 0, 1], "exit_reason": ["price", None, None],
        "plan": ["basic", "premium", "basic"]})
    prices = pd.DataFrame({
        "customer_id": ["a", "a", "b", "b", "c"],
        "effective_date": d(["2025-01-01", "2025-03-12", "2024-11-15", "2025-04-01",
                             "2025-02-01"]),
        "monthly_price": [30.0, 25.0, 40.0, 44.0, 30.0],
        "new_customer_price": [25.0, 25.0, 35.0, 35.0, 25.0]})
    contacts = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "c"],
        "contact_date": d(["2025-01-01", "2025-03-11", "2024-11-15", "2025-02-01",
                           "2025-03-05"]),
        "direction": ["outbound", "outbound", "outbound", "outbound", "inbound"],
        "channel": "phone", "topic": ["welcome", "retention", "welcome", "welcome", "billing"]})
    return StudyData("events", pd.Timestamp("2025-06-30"), customers, prices, contacts,
                     roles={"controls": ["plan"]})


def _drop_bad(blocks: dict, rows: Rows, data: StudyData, params: dict, table: str) -> np.ndarray:
    """Customers with any unusable row are excluded whole (counted per reason)."""
    n_cust = len(rows.customers)
    drop = np.zeros(n_cust, dtype=bool)
    for block in blocks.values():
        for reason, mask in block.bad_rows.items():
            hit = np.zeros(n_cust, dtype=bool)
            hit[rows.cust[mask]] = True
            exclude(data, params, table, reason, int((hit & ~drop).sum()))
            drop |= hit
    return ~drop[rows.cust]


def _build_events(data: StudyData, params: dict, builder: TimelineBuilder) -> Timeline:
    rows = builder.rows(params)
    if not len(rows.customers):
        raise AnalysisError("no customer has any time at risk: nothing to analyse (see the "
                            "data-quality ledger)")
    blocks = {name: BLOCK_BUILDERS[name](data, rows, params) for name in BLOCKS}
    keep = _drop_bad(blocks, rows, data, params, "customers")
    _exclude_events_of_dropped(data, params, rows, keep)
    episodes = _assemble(rows, blocks, keep)
    params["n_rows"] = len(episodes)
    cust = rows.cust[keep]
    n_cust = int(len(cust) and 1 + np.count_nonzero(cust[1:] != cust[:-1]))
    log.info("timeline: %d customers, %d rows, %d departures (grid %s, notice guard %s)",
             n_cust, len(episodes), int(episodes["event"].sum()), params["grid"],
             params["notice_guard"])
    return _timeline(episodes, blocks, params)


def _exclude_events_of_dropped(data: StudyData, params: dict, rows: Rows, keep: np.ndarray) -> None:
    """Count the event rows of customers :func:`_drop_bad` excluded: they leave with them."""
    dropped = np.zeros(len(rows.customers), dtype=bool)
    dropped[rows.cust[~keep]] = True
    for table, ev in (("price_events", rows.events.price), ("contact_events", rows.events.contact)):
        if ev is not None:
            exclude(data, params, table, "customer excluded on the timeline (see customers)",
                    int(dropped[ev["cust"]].sum()))


def _assemble(rows: Rows, blocks: dict, keep: np.ndarray) -> pd.DataFrame:
    """The episode frame; each column is handed over once (no second copy of the rows)."""
    def take(values):
        return values if everyone else values[keep]

    everyone = bool(keep.all())
    episodes = pd.DataFrame({CUSTOMER_ID: rows.customers[CUSTOMER_ID].to_numpy()[take(rows.cust)]})
    for col in ("start", "stop", "event"):
        episodes[col] = take(getattr(rows, col))
    for name in BLOCKS:
        columns = blocks[name].columns
        for col in columns:
            episodes[col] = take(columns[col])
            columns[col] = None  # free it: only the names are needed from here on
    return episodes


def _timeline(episodes: pd.DataFrame, blocks: dict, params: dict) -> Timeline:
    return Timeline(
        episodes=episodes,
        blocks={name: list(blocks[name].columns) for name in BLOCKS},
        definitions={k: v for name in BLOCKS for k, v in blocks[name].definitions.items()},
        unmeasured=[u for name in BLOCKS for u in blocks[name].unmeasured],
        params=params,
    )


def _build_table(data: StudyData, params: dict) -> Timeline:
    table = data.table
    if table is None:
        raise DataContractError("shape B data has no table", file="table", kind="missing_table")
    roles = data.roles
    stop = table["duration_days"].to_numpy(dtype=np.float64) / DAYS_PER_MONTH
    no_time = ~(stop > 0)
    exclude(data, params, "table", "no time at risk (duration 0)", int(no_time.sum()),
            kind="out_of_scope")
    table = table[~no_time].reset_index(drop=True)
    if not len(table):
        raise AnalysisError("no customer has any time at risk: nothing to analyse")
    inbound = roles.get("contact_kind", "outbound") == "inbound"
    contact_note = ("customer-initiated contact, NOT the supplier reaching out" if inbound
                    else "contact by the supplier, measured once at the snapshot")
    contact_cols = list(roles.get("contact", []))
    recency = roles.get("contact_recency")
    if recency and not inbound:
        table, contact_cols = recency_months(table, contact_cols, recency,
                                              params["contact_cap_months"])
    blocks = {
        "price": table_block(table, list(roles.get("price", [])), "price",
                             "a price proxy, measured once at the snapshot"),
        "contact": table_block(table, contact_cols, "contact", contact_note),
        "service": Block({}, {}, [], {}),
        "controls": table_block(table, params["controls"], "control", "adjusted for",
                                data.sources.get("table", "table")),
    }
    if not blocks["price"].columns:
        blocks["price"].unmeasured.append("price: no price column mapped")
    if not blocks["contact"].columns:
        blocks["contact"].unmeasured.append("supplier contact: no contact column mapped")
    elif inbound:
        blocks["contact"].unmeasured.append(
            "supplier contact: the table records only contact the customer initiated; the "
            "supplier's own attention is not measured")
    if "months_since_contact" in blocks["contact"].definitions:
        blocks["contact"].definitions["months_since_contact"] = (
            f"months since the supplier last contacted the customer ({recency['column']} in "
            f"the table, in {recency['unit']}), capped at {params['contact_cap_months']:g}, "
            "measured once at the snapshot")
    blocks["service"].unmeasured.append("service: a flat table has no dated contact history")
    n = len(table)
    rows = Rows(customers=table, cust=np.arange(n), start=np.zeros(n), stop=stop[~no_time],
                event=table["event"].to_numpy(dtype=np.int64), start_day=np.zeros(n),
                eval_day=np.zeros(n), ref_day=np.zeros(n), cutoff_day=np.zeros(n))
    keep = _drop_bad(blocks, rows, data, params, "table")
    episodes = _assemble(rows, blocks, keep)
    episodes = episodes.sort_values([CUSTOMER_ID, "start"], kind="stable").reset_index(drop=True)
    params["n_rows"] = len(episodes)
    return _timeline(episodes, blocks, params)
