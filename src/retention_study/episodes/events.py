"""Dated events sorted once, and the vectorised "last event before" lookups.

One global sort of each event table by (customer, day); every "last event before"
and "events in a window" question is then an ``np.searchsorted`` on packed
(customer, day) keys (:class:`EventIndex`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retention_study.data.schema import CUSTOMER_ID, StudyData
from retention_study.episodes.grid import day_number

WINDOW_12M_DAYS = 365  # "the last 12 months": contacts 1 to 365 days before the reference day
_DAY_OFFSET = 1 << 20  # keeps day numbers (1970 = 0) positive in the packed keys
_DAY_BITS = 21


def gather(values: np.ndarray, pos: np.ndarray, default) -> np.ndarray:
    """``values[pos]`` where ``pos >= 0``, else ``default`` (also when ``values`` is empty)."""
    if not len(values):
        return np.broadcast_to(np.asarray(default), pos.shape).copy()
    return np.where(pos >= 0, values[np.maximum(pos, 0)], default)


def pack(cust: np.ndarray, day: np.ndarray) -> np.ndarray:
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
    ``pack(cust, 0)`` computed once for many queries on the same rows (it saves a
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
        key = pack(cust, day)
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
        keys = pack(cust, day) if base is None else base + day
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
    day = day_number(frame[date_col])
    keep = np.flatnonzero(c >= 0)  # events of customers outside the study
    order = keep[np.argsort(pack(c[keep], day[keep]), kind="stable")]
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


def subset_events(events: Events, keep: np.ndarray) -> Events:
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


def event_split_days(events: Events, params: dict):
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
