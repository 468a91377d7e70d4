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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from retention_study.config import LOGGER_NAME
from retention_study.data.ledger import Ledger
from retention_study.data.schema import BLOCKS, CUSTOMER_ID, DAYS_PER_MONTH, StudyData, Timeline
from retention_study.errors import AnalysisError, ConfigError, DataContractError

log = logging.getLogger(LOGGER_NAME)

GRIDS = ("month", "week", "day")
WINDOW_12M_DAYS = 365  # "the last 12 months": contacts 1 to 365 days before the reference day
_EPOCH = np.datetime64("1970-01-01", "D")
_DAY_OFFSET = 1 << 20  # keeps day numbers (1970 = 0) positive in the packed keys
_DAY_BITS = 21


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
        rows = _rows(self.data, params, *self.prepared())
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


# --------------------------------------------------------------------------- time grid


def days_to_units(days: np.ndarray, grid: str) -> np.ndarray:
    """Round tenure days UP to the grid: the first grid point on or after each day.

    Examples
    --------
    >>> days_to_units(np.array([0, 1, 30, 31, 61]), "month").tolist()
    [0, 1, 1, 2, 3]
    >>> days_to_units(np.array([0, 1, 7, 8]), "week").tolist()
    [0, 1, 1, 2]
    """
    days = np.asarray(days, dtype=np.int64)
    if grid == "month":
        # floor(k * DPM) >= d  <=>  k * DPM >= d for whole d; DPM is a dyadic fraction,
        # so the division is exact whenever the result is a whole number.
        return np.ceil(days / DAYS_PER_MONTH).astype(np.int64)
    if grid == "week":
        return -(-days // 7)
    return days


def units_to_days(units: np.ndarray, grid: str) -> np.ndarray:
    """Tenure day on which each grid point falls (month k: ``floor(k * 365.25/12)``).

    Examples
    --------
    >>> units_to_days(np.array([0, 1, 2, 12]), "month").tolist()
    [0, 30, 60, 365]
    """
    units = np.asarray(units, dtype=np.int64)
    if grid == "month":
        return np.floor(units * DAYS_PER_MONTH).astype(np.int64)
    if grid == "week":
        return units * 7
    return units


def units_to_months(units: np.ndarray, grid: str) -> np.ndarray:
    """Tenure in months of each grid point (whole numbers on the month grid).

    Examples
    --------
    >>> units_to_months(np.array([0, 3]), "month").tolist()
    [0.0, 3.0]
    """
    units = np.asarray(units, dtype=np.int64)
    if grid == "month":
        return units.astype(np.float64)
    return units_to_days(units, grid) / DAYS_PER_MONTH


# --------------------------------------------------------------------------- event lookups


def _day_number(values: pd.Series | pd.Index) -> np.ndarray:
    """Dates as whole days since 1970 (int64); NaT becomes a very negative number."""
    arr = np.asarray(values, dtype="datetime64[ns]").astype("datetime64[D]")
    out = (arr - _EPOCH).astype(np.int64)
    out[np.isnat(arr)] = np.iinfo(np.int64).min // 4
    return out


def _gather(values: np.ndarray, pos: np.ndarray, default) -> np.ndarray:
    """``values[pos]`` where ``pos >= 0``, else ``default`` (also when ``values`` is empty)."""
    if not len(values):
        return np.broadcast_to(np.asarray(default), pos.shape).copy()
    return np.where(pos >= 0, values[np.maximum(pos, 0)], default)


def _pack(cust: np.ndarray, day: np.ndarray) -> np.ndarray:
    return (cust.astype(np.int64) << _DAY_BITS) + (day + _DAY_OFFSET)


class EventIndex:
    """Events of many customers sorted once by (customer, day), queried in bulk.

    Parameters
    ----------
    cust : ndarray of int
        Customer index (position in the sorted customer list) of each event.
    day : ndarray of int
        Day number of each event (days since 1970).
    values : dict of str -> ndarray, optional
        Per-event values carried along (reordered with the sort).
    presorted : bool
        The events are already sorted by (customer, day): skip the sort.

    Every query takes one customer index and one day per row; ``base``, when given, is
    ``_pack(cust, 0)`` computed once for many queries on the same rows (it saves a
    pass over all rows per query).

    Examples
    --------
    >>> ix = EventIndex(np.array([0, 0, 1]), np.array([10, 20, 5]))
    >>> ix.count_before(np.array([0, 0, 1]), np.array([10, 21, 6])).tolist()
    [0, 2, 1]
    """

    def __init__(self, cust: np.ndarray, day: np.ndarray, values: dict | None = None,
                 presorted: bool = False) -> None:
        cust, day = np.asarray(cust, dtype=np.int64), np.asarray(day, dtype=np.int64)
        key = _pack(cust, day)
        order = slice(None) if presorted else np.argsort(key, kind="stable")
        self.key = key if presorted else key[order]
        self.cust = cust if presorted else cust[order]
        self.day = day if presorted else day[order]
        self.values = {k: np.asarray(v)[order] for k, v in (values or {}).items()}
        self._bounds = np.zeros(1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.key)

    def _first(self, cust: np.ndarray) -> np.ndarray:
        """Position of each customer's first event (or of the next customer's: none)."""
        # One search per customer, not per row: rows outnumber customers many times.
        need = int(cust.max()) + 2 if len(cust) else 1
        if len(self._bounds) < need:
            self._bounds = np.searchsorted(self.cust, np.arange(need), "left")
        return self._bounds[cust]

    def _search(self, cust: np.ndarray, day: np.ndarray, base: np.ndarray | None) -> np.ndarray:
        keys = _pack(cust, day) if base is None else base + day
        return np.searchsorted(self.key, keys, "left")

    def position_before(self, cust: np.ndarray, ref_day: np.ndarray,
                        base: np.ndarray | None = None) -> np.ndarray:
        """Position of each customer's last event dated strictly before ``ref_day`` (-1: none)."""
        pos = self._search(cust, ref_day, base) - 1
        return np.where(pos >= self._first(cust), pos, -1)

    def count_before(self, cust: np.ndarray, ref_day: np.ndarray,
                     base: np.ndarray | None = None) -> np.ndarray:
        """Number of each customer's events dated strictly before ``ref_day``."""
        return self._search(cust, ref_day, base) - self._first(cust)

    def count_between(self, cust: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      base: np.ndarray | None = None) -> np.ndarray:
        """Number of each customer's events dated in ``[lo, hi)``."""
        return self._search(cust, hi, base) - self._search(cust, lo, base)

    def first_position(self, cust: np.ndarray) -> np.ndarray:
        """Position of each customer's first event (-1: the customer has none)."""
        first = self._first(cust)
        return np.where(first < self._bounds[cust + 1], first, -1)


# --------------------------------------------------------------------------- shape A


@dataclass
class Rows:
    """The intervals being built, one entry per episode row, plus the customer frame.

    ``cust`` indexes ``customers`` (sorted by customer_id); ``eval_day`` is the day the
    covariates describe (interval begin when guarded, the day after its end when
    naive) and ``ref_day = eval_day - lag_days`` the cut-off: only events dated
    strictly before it count.
    """

    customers: pd.DataFrame
    cust: np.ndarray
    start: np.ndarray  # tenure months
    stop: np.ndarray
    event: np.ndarray
    start_day: np.ndarray  # customer's start date (day number), per row
    eval_day: np.ndarray
    ref_day: np.ndarray
    cutoff_day: np.ndarray  # per customer: events on or after it never enter (guarded)
    events: Events | None = None

    @cached_property
    def base(self) -> np.ndarray:
        """``_pack(cust, 0)``: the rows' part of every event-index query key, packed once."""
        return _pack(self.cust, np.zeros(1, dtype=np.int64))


@dataclass
class Block:
    """Covariate columns of one block with their plain-words definitions."""

    columns: dict
    definitions: dict
    unmeasured: list
    bad_rows: dict  # reason -> boolean mask over rows; those customers are excluded


def exclude(data: StudyData, params: dict, table: str, reason: str, n: int,
            kind: str = "invalid") -> None:
    """Record an exclusion in ``params["excluded"]`` and, once, in the data's ledger.

    build_timeline runs several times on the same data (the naive analysis beside the
    guarded one, robustness grids and lags): only the first guarded build writes to the
    ledger, so its "rows analysed" stays that of the main analysis.
    """
    if not n:
        return
    params.setdefault("excluded", []).append(
        {"table": table, "reason": reason, "rows": int(n), "kind": kind})
    ledger: Ledger = data.ledger
    if params["notice_guard"] and not any(e.table == table and e.reason == reason
                                          for e in ledger.entries):
        ledger.exclude(table, reason, n, kind=kind)


def follow_up(data: StudyData, params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Entry, exit and event of every customer in tenure days.

    Guarded: the departure is the notice date when there is one, else end_date.
    Naive: end_date, or as_of for a customer who gave notice and is still served.
    Customers still there are censored at as_of; customers who joined before
    ``observation_start`` enter on it (their tenure clock is not reset).

    Returns
    -------
    spans : DataFrame
        ``customer_id``, ``start_day`` (day number), ``entry`` and ``exit`` (tenure
        days), ``event`` (0/1), ``cutoff_day`` (day number of the departure, or the
        day after as_of), sorted by customer_id; customers who left before
        observation_start are dropped (counted in the ledger).
    customers : DataFrame
        The matching rows of ``data.customers``, in the same order.
    """
    cust = data.customers.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
    frame, gone = _follow_up(data, params, cust)
    return frame[~gone].reset_index(drop=True), cust[~gone].reset_index(drop=True)


def _follow_up(data: StudyData, params: dict, cust: pd.DataFrame) -> tuple[pd.DataFrame,
                                                                          np.ndarray]:
    """:func:`follow_up` of customers sorted by id, before dropping the ones gone early.

    Returns the spans of every customer in ``cust`` and the mask of those who left
    before observation_start (counted in the ledger).
    """
    notice_guard = params["notice_guard"]
    as_of = _day_number(pd.Series([pd.Timestamp(data.as_of)]))[0]
    start = _day_number(cust["start_date"])
    end = _day_number(cust["end_date"])
    notice = (_day_number(cust["notice_date"]) if "notice_date" in cust
              else np.full(len(cust), np.iinfo(np.int64).min // 4))
    missing = np.iinfo(np.int64).min // 4
    has_end, has_notice = end != missing, notice != missing
    if notice_guard:
        depart = np.where(has_notice, notice, end)
        depart = np.where(has_notice & has_end, np.minimum(notice, end), depart)
        left = (has_notice | has_end) & (depart <= as_of)
    else:
        left = (has_notice & (notice <= as_of)) | (has_end & (end <= as_of))
        depart = np.where(has_end, np.minimum(end, as_of), as_of)
    exit_day = np.where(left, depart, as_of)
    entry = np.zeros(len(cust), dtype=np.int64)
    if data.observation_start is not None:
        obs = _day_number(pd.Series([pd.Timestamp(data.observation_start)]))[0]
        entry = np.maximum(obs - start, 0)
        gone = left & (exit_day < obs)
        exclude(data, params, "customers", "left before observation_start (not at risk in the "
                "study period)", int(gone.sum()), kind="out_of_scope")
    else:
        gone = np.zeros(len(cust), dtype=bool)
    frame = pd.DataFrame({
        CUSTOMER_ID: cust[CUSTOMER_ID].to_numpy(),
        "start_day": start,
        "entry": entry,
        "exit": exit_day - start,
        "event": left.astype(np.int8),
        "cutoff_day": np.where(left, depart, as_of + 1),
    })
    return frame, gone


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i, the integers lo[i]..hi[i]-1: returns (owner index, value)."""
    n = np.maximum(hi - lo, 0)
    owner = np.repeat(np.arange(len(lo)), n)
    ends = np.cumsum(n)
    value = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - n, n) + lo[owner]
    return owner, value


@dataclass
class Events:
    """Event tables mapped to customer positions and sorted once by (customer, day).

    ``price``: ``cust``, ``day``, ``price``, ``ncp`` (new-customer price carried forward
    within the customer; None when the data never has one), ``rose`` (the price went
    up from the customer's previous price). ``contact``: ``cust``, ``day``,
    ``outbound`` (bool). Either is None when the table is missing or empty.
    ``outside``: table name -> rows left out because their customer is not on the
    timeline (the ledger counts them).
    """

    price: dict | None
    contact: dict | None
    outside: dict = field(default_factory=dict)


def _sorted_events(frame: pd.DataFrame | None, date_col: str, ids: pd.Index) -> dict | None:
    if frame is None or not len(frame):
        return None
    c = ids.get_indexer(frame[CUSTOMER_ID])
    day = _day_number(frame[date_col])
    keep = np.flatnonzero(c >= 0)  # events of customers outside the study
    order = keep[np.argsort(_pack(c[keep], day[keep]), kind="stable")]
    return {"cust": c[order].astype(np.int64), "day": day[order], "_order": order,
            "_outside": len(c) - len(keep)}


def _ffill_within(cust: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Carry the last non-missing value forward within each customer's (sorted) run."""
    n = len(values)
    pos = np.where(np.isnan(values), -1, np.arange(n))
    last = np.maximum.accumulate(pos) if n else pos
    run_start = np.maximum.accumulate(np.where(np.r_[True, cust[1:] != cust[:-1]],
                                               np.arange(n), 0)) if n else pos
    ok = last >= run_start
    return np.where(ok, values[np.maximum(last, 0)], np.nan)


def prepare_events(data: StudyData, ids: pd.Index) -> Events:
    """Map and sort the price and contact events of the customers in ``ids`` once."""
    outside = {}
    price = _sorted_events(data.price_events, "effective_date", ids)
    if price is not None:
        outside["price_events"] = price.pop("_outside")
        pe, order = data.price_events, price.pop("_order")
        price["price"] = pe["monthly_price"].to_numpy(dtype=np.float64)[order]
        ncp = (pe["new_customer_price"].to_numpy(dtype=np.float64)[order]
               if "new_customer_price" in pe else np.full(len(order), np.nan))
        price["ncp"] = None if np.isnan(ncp).all() else _ffill_within(price["cust"], ncp)
        same = np.r_[False, price["cust"][1:] == price["cust"][:-1]]
        price["rose"] = same & (price["price"] > np.r_[np.inf, price["price"][:-1]])
    contact = _sorted_events(data.contact_events, "contact_date", ids)
    if contact is not None:
        outside["contact_events"] = contact.pop("_outside")
        order = contact.pop("_order")
        contact["outbound"] = (data.contact_events["direction"].to_numpy()[order] == "outbound")
    return Events(price, contact, outside)


def _subset_events(events: Events, keep: np.ndarray) -> Events:
    """The events of the customers ``keep`` marks, renumbered to their positions among them.

    Customers are dropped whole, so the order within each customer, its carried-forward
    new-customer prices and its price rises are those of the full tables.
    """
    new_pos = np.cumsum(keep) - 1
    outside = dict(events.outside)
    tables = {}
    for table, ev in (("price_events", events.price), ("contact_events", events.contact)):
        if ev is None:
            tables[table] = None
            continue
        inside = keep[ev["cust"]]
        sub = {k: (None if v is None else v[inside]) for k, v in ev.items()}
        sub["cust"] = new_pos[sub["cust"]]
        if sub.get("ncp") is not None and np.isnan(sub["ncp"]).all():
            sub["ncp"] = None  # as if the table never had one: only these customers count
        outside[table] = outside.get(table, 0) + int(len(inside) - np.count_nonzero(inside))
        tables[table] = sub
    return Events(tables["price_events"], tables["contact_events"], outside)


def _event_split_days(events: Events, params: dict):
    """Days where some covariate changes, as (customer index, absolute day number)."""
    lag, window = params["lag_days"], params["price_increase_window_days"]
    parts = []
    if events.contact is not None:
        c, day = events.contact["cust"], events.contact["day"]
        # a contact counts from the day after it, and drops out of the 12-month count
        parts += [(c, day + lag + 1), (c, day + lag + 1 + WINDOW_12M_DAYS)]
    if events.price is not None:
        c, day, rose = events.price["cust"], events.price["day"], events.price["rose"]
        parts += [(c, day + lag + 1), (c[rose], day[rose] + lag + 1 + window)]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def intervals(spans: pd.DataFrame, grid: str, split_cust=None, split_day=None):
    """Split each customer's follow-up into intervals on the grid.

    Boundaries: whole tenure months, plus the event-driven ``split_day`` points (absolute
    day numbers), all rounded up to the grid and kept strictly between entry and exit.

    Returns
    -------
    cust, begin_units, end_units : ndarray
    """
    entry_u = days_to_units(spans["entry"].to_numpy(), grid)
    exit_u = days_to_units(spans["exit"].to_numpy(), grid)
    if grid == "month":
        # every whole month between entry and exit is already a boundary, and every
        # event-driven split rounds up onto one: no sort needed
        cust, begin = _ranges(entry_u, exit_u)
        return cust, begin, begin + 1
    start = spans["start_day"].to_numpy()
    k_lo = days_to_units(spans["entry"].to_numpy(), "month")
    k_hi = days_to_units(spans["exit"].to_numpy(), "month")
    mc, mk = _ranges(k_lo, k_hi + 1)
    pts_c = [mc, np.arange(len(spans)), np.arange(len(spans))]
    pts_u = [days_to_units(units_to_days(mk, "month"), grid), entry_u, exit_u]
    if split_cust is not None and len(split_cust):
        rel = split_day - start[split_cust]
        pts_c.append(split_cust)
        pts_u.append(days_to_units(np.maximum(rel, 0), grid))
    c = np.concatenate(pts_c)
    u = np.concatenate(pts_u)
    inside = (u >= entry_u[c]) & (u <= exit_u[c])
    key = np.sort((c[inside].astype(np.int64) << 32) + u[inside])
    key = key[np.r_[True, key[1:] != key[:-1]]]  # sort + dedupe: faster than np.unique's hash
    c, u = key >> 32, key & 0xFFFFFFFF
    same = c[1:] == c[:-1]
    return c[:-1][same], u[:-1][same], u[1:][same]


def _rows(data: StudyData, params: dict, sorted_customers: pd.DataFrame,
          all_events: Events) -> Rows:
    """The intervals of the customers at risk, from customers sorted by id and their events."""
    grid, guard = params["grid"], params["notice_guard"]
    spans, gone = _follow_up(data, params, sorted_customers)
    no_time = days_to_units(spans["exit"].to_numpy(), grid) <= days_to_units(
        spans["entry"].to_numpy(), grid)
    exclude(data, params, "customers", "no time at risk on the time grid (joined on as_of, or "
            "left before the first grid point after entering)", int((no_time & ~gone).sum()),
            kind="out_of_scope")
    keep = ~gone & ~no_time
    spans = spans[keep].reset_index(drop=True)
    customers = sorted_customers[keep].reset_index(drop=True)
    events = _subset_events(all_events, keep)
    for table, n in events.outside.items():
        exclude(data, params, table, "customer not at risk on the timeline (see customers)", n,
                kind="out_of_scope")
    split_c, split_d = (None, None) if grid == "month" else _event_split_days(events, params)
    cust, b_u, e_u = intervals(spans, grid, split_c, split_d)
    start_day = spans["start_day"].to_numpy()[cust]
    exit_u = days_to_units(spans["exit"].to_numpy(), grid)[cust]
    event = (spans["event"].to_numpy()[cust] == 1) & (e_u == exit_u)
    if guard:
        eval_day = start_day + units_to_days(b_u, grid)
    else:
        # the naive look-ahead: what is known by the end of the interval
        eval_day = start_day + units_to_days(e_u, grid) + 1
    return Rows(customers=customers, cust=cust, start=units_to_months(b_u, grid),
                stop=units_to_months(e_u, grid), event=event.astype(np.int64),
                start_day=start_day, eval_day=eval_day,
                ref_day=eval_day - params["lag_days"],
                cutoff_day=spans["cutoff_day"].to_numpy(), events=events)


def _index(ev: dict, rows: Rows, guard: bool, mask=None, values: tuple = ()) -> EventIndex:
    """An EventIndex over prepared events (optionally a subset), guarded against leaks."""
    keep = np.ones(len(ev["day"]), dtype=bool) if mask is None else mask.copy()
    if guard:
        # belt and braces: nothing dated on or after the departure can enter
        keep &= ev["day"] < rows.cutoff_day[ev["cust"]]
    return EventIndex(ev["cust"][keep], ev["day"][keep], {v: ev[v][keep] for v in values},
                      presorted=True)


def price_block(data: StudyData, rows: Rows, params: dict) -> Block:
    """PRICE: loyalty penalty, a recent price increase, optionally the price level.

    The price of an interval is the latest price event dated before the reference
    day; before any (the first month: the sign-up price takes effect on start_date)
    the customer's first price, when it is dated on or before start_date.
    ``new_customer_price`` gaps are filled with the customer's last known value;
    customers with rows still missing it are excluded.

    Examples
    --------
    >>> build_timeline(example_data()).blocks["price"]
    ['loyalty_penalty', 'price_increase_recent']
    """
    ev = rows.events.price
    if ev is None:
        return Block({}, {}, ["price: no price events in the data"], {})
    guard = params["notice_guard"]
    ncp_known = ev["ncp"] is not None
    ix = _index(ev, rows, guard, values=("price",) + (("ncp",) if ncp_known else ()))
    if not len(ix):
        return Block({}, {}, ["price: no price events for the customers studied"], {})
    pos = ix.position_before(rows.cust, rows.ref_day, rows.base)
    first = ix.first_position(rows.cust)
    signup = (first >= 0) & (ix.day[np.maximum(first, 0)] <= rows.start_day)
    pos = np.where((pos < 0) & signup, first, pos)
    no_price = pos < 0
    price = ix.values["price"][np.maximum(pos, 0)]
    # The loader guarantees prices > 0; a StudyData built by hand may not, and a log
    # of 0 or NaN must not reach the model unnoticed.
    cols, defs, unmeasured, bad = {}, {}, [], {
        "no price on record at the start of an interval": no_price,
        "monthly price missing or not above 0": ~no_price & ~(price > 0)}
    if ncp_known:
        ncp = ix.values["ncp"][np.maximum(pos, 0)]
        bad["new-customer price unknown even after carrying the last known one forward"] = (
            ~no_price & ~(ncp > 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["loyalty_penalty"] = np.log(price / ncp)
        defs["loyalty_penalty"] = ("log of the customer's monthly price over the price a new "
                                   "customer paid for the same product (0 = same price, "
                                   "0.1 = about 10% more)")
    else:
        unmeasured.append("loyalty penalty: the data has no new-customer price, so the price "
                          "block uses the price level (log_price) instead")
    if params["include_price_level"] or not ncp_known:
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["log_price"] = np.log(price)
        defs["log_price"] = "log of the customer's monthly price (the price level)"
    inc = _index(ev, rows, guard, mask=ev["rose"])
    window = params["price_increase_window_days"]
    recent = inc.count_between(rows.cust, rows.ref_day - window, rows.ref_day, rows.base) > 0
    cols["price_increase_recent"] = recent.astype(np.int64)
    defs["price_increase_recent"] = (f"1 if the customer's price went up within the last "
                                     f"{params['price_increase_window_days']} days, else 0")
    return Block(cols, defs, unmeasured, bad)


def contact_block(data: StudyData, rows: Rows, params: dict) -> Block:
    """CONTACT: months since the supplier last reached out, outbound contacts in 12 months.

    ``months_since_contact = min(cap, (interval begin - last outbound contact) / month)``
    over contacts dated before the reference day; never contacted: months since
    start_date, capped.

    Examples
    --------
    >>> ep = build_timeline(example_data()).episodes
    >>> ep.loc[ep.customer_id == "a", "months_since_contact"].round(2).tolist()
    [0.0, 0.99, 1.97]
    """
    ev = rows.events.contact
    if ev is None or not ev["outbound"].any():
        return Block({}, {}, ["supplier contact: no outbound contacts in the data"], {})
    ix = _index(ev, rows, params["notice_guard"], mask=ev["outbound"])
    pos = ix.position_before(rows.cust, rows.ref_day, rows.base)
    last = _gather(ix.day, pos, rows.start_day)
    cap = params["contact_cap_months"]
    months = np.minimum(cap, (rows.eval_day - last) / DAYS_PER_MONTH)
    n12 = ix.count_between(rows.cust, rows.ref_day - WINDOW_12M_DAYS, rows.ref_day,
                           rows.base)
    return Block(
        {"months_since_contact": months, "outbound_12m": n12.astype(np.int64)},
        {"months_since_contact": (f"months since the supplier last contacted the customer "
                                  f"(since joining if never), capped at {cap:g}"),
         "outbound_12m": "contacts initiated by the supplier in the last 12 months"},
        [], {})


def service_block(data: StudyData, rows: Rows, params: dict) -> Block:
    """SERVICE: inbound contacts in the last 12 months (the customer reaching out).

    Examples
    --------
    >>> ep = build_timeline(example_data()).episodes
    >>> ep.loc[ep.customer_id == "c", "inbound_12m"].tolist()
    [0, 0, 1, 1]
    """
    ev = rows.events.contact
    if ev is None or ev["outbound"].all():
        return Block({}, {}, ["service: no inbound contacts in the data"], {})
    ix = _index(ev, rows, params["notice_guard"], mask=~ev["outbound"])
    n12 = ix.count_between(rows.cust, rows.ref_day - WINDOW_12M_DAYS, rows.ref_day,
                           rows.base)
    return Block({"inbound_12m": n12.astype(np.int64)},
                 {"inbound_12m": ("contacts the customer initiated in the last 12 months (a "
                                  "service signal, not the supplier's attention)")}, [], {})


def dummy_code(frame: pd.DataFrame, columns: list[str], table: str) -> tuple[dict, dict, dict]:
    """Numeric columns as they are, categoricals as 0/1 dummies without the most common level.

    Returns
    -------
    columns : dict of name -> ndarray (one value per row of ``frame``)
    definitions : dict of name -> str
    missing : dict of reason -> boolean mask of rows with a missing value

    Examples
    --------
    >>> f = pd.DataFrame({"plan": ["basic", "premium", "basic"], "age": [30, 40, 50]})
    >>> cols, defs, _ = dummy_code(f, ["plan", "age"], "customers")
    >>> sorted(cols), cols["plan[premium]"].tolist()
    (['age', 'plan[premium]'], [0, 1, 0])
    """
    out, defs, missing = {}, {}, {}
    for col in columns:
        if col not in frame:
            raise DataContractError(f"control column {col!r} is not in the data", file=table,
                                    column=col, kind="missing_column")
        s = frame[col]
        if s.isna().any():
            missing[f"missing value in {col}"] = s.isna().to_numpy()
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(np.float64).to_numpy()
            defs[col] = f"{col} as recorded"
            continue
        counts = s.astype("string").value_counts(sort=False)
        if counts.empty:
            continue
        # most common level is the reference; ties broken by name so the choice is stable
        ref = sorted(counts.index[counts == counts.max()])[0]
        for level in sorted(counts.index):
            if level != ref:
                name = f"{col}[{level}]"
                out[name] = (s.astype("string") == level).fillna(False).to_numpy().astype(
                    np.int64)
                defs[name] = f"1 if {col} is {level!r}, else 0 (reference: {ref!r})"
    return out, defs, missing


def controls_block(data: StudyData, rows: Rows, params: dict) -> Block:
    """CONTROLS: customer columns (``params["controls"]``) repeated on each of their rows.

    Examples
    --------
    >>> build_timeline(example_data()).blocks["controls"]
    ['plan[premium]']
    """
    # named by the file it came from, so an error says where to look
    source = data.sources.get("customers", "customers")
    cols, defs, missing = dummy_code(rows.customers, params["controls"], source)
    cols = {k: v[rows.cust] for k, v in cols.items()}
    bad = {k: v[rows.cust] for k, v in missing.items()}
    return Block(cols, defs, [], bad)


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


#: The function that builds each block of shape A, ``f(data, rows, params) -> Block``.
#: Replace an entry to try another definition of a block (e.g. a different price
#: measure) without touching the rest of the builder.
BLOCK_BUILDERS = {
    "price": price_block,
    "contact": contact_block,
    "service": service_block,
    "controls": controls_block,
}


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


# --------------------------------------------------------------------------- shape B


def table_block(table: pd.DataFrame, columns: list[str], what: str, note: str,
                source: str = "table") -> Block:
    """A block of a flat table: the mapped columns, dummy-coded where categorical."""
    cols, defs, missing = dummy_code(table, columns, source)
    defs = {k: f"{v} ({note})" if k in table else f"{v} ({what}: {note})" for k, v in defs.items()}
    return Block(cols, defs, [], missing)


def _recency_months(table: pd.DataFrame, columns: list[str], recency: dict,
                    cap: float) -> tuple[pd.DataFrame, list[str]]:
    """A table column that *is* time since the supplier's last contact (``data.units``)
    becomes ``months_since_contact``, capped like the event logs' measure."""
    col = recency["column"]
    months = np.minimum(cap, table[col].to_numpy(float) * recency["months_per_unit"])
    return (table.assign(months_since_contact=months),
            ["months_since_contact" if c == col else c for c in columns])


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
        table, contact_cols = _recency_months(table, contact_cols, recency,
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
