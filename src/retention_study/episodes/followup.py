"""Follow-up: each customer's entry, exit and event, and the intervals on the grid.

The one place that decides when a customer is at risk (late entry at
``observation_start``, the notice guard's departure date, no time at risk on the grid)
and records who is left out, by reason (:func:`exclude`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from retention_study.data.ledger import Ledger
from retention_study.data.schema import CUSTOMER_ID, StudyData
from retention_study.episodes.events import Events, event_split_days, pack, subset_events
from retention_study.episodes.grid import day_number, days_to_units, units_to_days, units_to_months


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
        """``pack(cust, 0)``: the rows' part of every event-index query key, packed once."""
        return pack(self.cust, np.zeros(1, dtype=np.int64))


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
    as_of = day_number(pd.Series([pd.Timestamp(data.as_of)]))[0]
    start = day_number(cust["start_date"])
    end = day_number(cust["end_date"])
    notice = (day_number(cust["notice_date"]) if "notice_date" in cust
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
        obs = day_number(pd.Series([pd.Timestamp(data.observation_start)]))[0]
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


def build_rows(data: StudyData, params: dict, sorted_customers: pd.DataFrame,
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
    events = subset_events(all_events, keep)
    for table, n in events.outside.items():
        exclude(data, params, table, "customer not at risk on the timeline (see customers)", n,
                kind="out_of_scope")
    split_c, split_d = (None, None) if grid == "month" else event_split_days(events, params)
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
