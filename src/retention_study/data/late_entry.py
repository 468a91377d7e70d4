"""Left truncation the data imply: when the records begin later than many customers joined.

An extract often holds only what a system kept: the price and contact logs begin on the
day it went live, and the customers file lists only those still served on (or after) some
date, so nobody who left earlier is in it. Customers who joined before that date are then
survivors: counting their tenure from joining credits them with months in which, by
construction, they could not have left (immortal time), and makes whatever goes with
long tenure look protective.

:func:`detect` reads two dates from the data: the first dated price or contact event
(``logs_first``), and the first departure in the customers file (``departures_first``).
A date is a cut when more than :data:`MIN_SHARE` of customers (and at least
:data:`MIN_CUSTOMERS`) joined more than :data:`GAP_DAYS` before it. :func:`resolve` then
uses the later cut as ``observation_start`` (late entry: those customers enter the study on
that day at the tenure they had reached), or stops with one line (exit status 2) when a
configured ``observation_start`` is earlier than the records allow.

Late entry is valid whenever entry does not depend on the covariates; using it when the
extract was in fact complete only costs the at-risk time before the cut.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd

from retention_study.config import LOGGER_NAME
from retention_study.errors import ConfigError

log = logging.getLogger(LOGGER_NAME)

GAP_DAYS = 31  # a customer who joined within a month of the cut is not its evidence
MIN_SHARE = 0.05
MIN_CUSTOMERS = 10


def _first(frame: pd.DataFrame | None, column: str) -> pd.Timestamp | None:
    if frame is None or column not in frame or not frame[column].notna().any():
        return None
    return pd.Timestamp(frame[column].min()).normalize()


def _joined_before(customers: pd.DataFrame, day: pd.Timestamp | None) -> int:
    if day is None:
        return 0
    return int((customers["start_date"] < day - pd.Timedelta(days=GAP_DAYS)).sum())


def _iso(day: pd.Timestamp | None) -> str | None:
    return None if day is None else str(day.date())


def _is_cut(customers: pd.DataFrame, day: pd.Timestamp | None) -> bool:
    n = _joined_before(customers, day)
    return n >= MIN_CUSTOMERS and n >= MIN_SHARE * len(customers)


def detect(data) -> dict:
    """Where the records of a Shape A data set begin, and whether that is a cut.

    Returns
    -------
    dict
        ``logs_first``, ``departures_first`` (ISO dates or None), ``implied`` (the later
        date that is a cut, or None), ``customers_before`` (customers who joined more than
        a month before ``implied``), ``basis`` (which records imply it).

    Examples
    --------
    >>> from retention_study.episodes.timeline import example_data
    >>> detect(example_data())["implied"] is None
    True
    """
    customers = data.customers
    logs = [d for d in (_first(data.price_events, "effective_date"),
                        _first(data.contact_events, "contact_date")) if d is not None]
    logs_first = min(logs) if logs else None
    departed = pd.concat([customers.get("notice_date", pd.Series(dtype="datetime64[ns]")),
                          customers["end_date"]]).dropna()
    departures_first = pd.Timestamp(departed.min()).normalize() if len(departed) else None
    cuts = {"the price and contact logs begin on": logs_first,
            "the first recorded departure is on": departures_first}
    cuts = {why: day for why, day in cuts.items() if _is_cut(customers, day)}
    implied, basis = None, []
    if cuts:
        # the later cut binds, except that a first departure within a month after the logs
        # begin is the same cut, seen through the first customer to leave after it
        logs_cut = cuts.get("the price and contact logs begin on")
        implied = max(cuts.values())
        if logs_cut is not None and implied <= logs_cut + pd.Timedelta(days=GAP_DAYS):
            implied = logs_cut
        basis = [w for w, d in cuts.items() if d == implied]
    return {"logs_first": _iso(logs_first), "departures_first": _iso(departures_first),
            "implied": _iso(implied), "customers_before": _joined_before(customers, implied),
            "basis": basis}


def resolve(data):
    """Apply the implied late entry to a Shape A data set (returns a new StudyData).

    - ``observation_start`` not set and the records are cut: it becomes the cut date
      (``late_entry["source"] == "detected"``), noted in the ledger.
    - ``observation_start`` set more than a month before the cut: :class:`ConfigError`
      (exit status 2), since the history of the customers between the two is missing.
    - otherwise the data set is returned with ``late_entry`` filled in and unchanged.
    """
    if data.format != "events":
        return data
    found = detect(data)
    configured = data.observation_start
    info = {**found, "observation_start": None if configured is None
            else str(pd.Timestamp(configured).date()),
            "source": "config" if configured is not None else None}
    implied = pd.Timestamp(found["implied"]) if found["implied"] else None
    if implied is None:
        return replace(data, late_entry=info)
    if configured is None:
        info.update(observation_start=found["implied"], source="detected")
        data.ledger.note("customers", f"joined before {found['implied']} "
                         f"({' and '.join(found['basis'])} that day): late entry from it",
                         found["customers_before"])
        log.info("late entry from %s (detected: %s)", found["implied"], found["basis"])
        return replace(data, observation_start=implied, late_entry=info)
    if configured < implied - pd.Timedelta(days=GAP_DAYS):
        raise ConfigError(
            f"data.observation_start {info['observation_start']} is earlier than the records "
            f"allow: {' and '.join(found['basis'])} {found['implied']} "
            f"({found['customers_before']:,} customers joined before); set "
            f"data.observation_start to {found['implied']} or later, or leave it out")
    return replace(data, late_entry=info)


def _example(n: int = 40, seed: int = 0):
    """A small cut extract for tests: logs and departures begin on 2024-01-01."""
    from retention_study.data.schema import StudyData

    rng = np.random.default_rng(seed)
    start = pd.Series(pd.Timestamp("2020-01-01")
                      + pd.to_timedelta(rng.integers(0, 1800, n), unit="D"))
    cut = pd.Timestamp("2024-01-01")
    first = start.where(start > cut, cut)
    end = pd.Series(pd.NaT, index=range(n))
    end[: n // 4] = first[: n // 4] + pd.to_timedelta(rng.integers(2, 300, n // 4), unit="D")
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "start_date": start,
                              "end_date": end, "notice_date": pd.NaT, "churned": end.notna()
                              .astype(int), "exit_reason": None})
    prices = pd.DataFrame({"customer_id": customers["customer_id"], "effective_date": first,
                           "monthly_price": 30.0, "new_customer_price": 30.0})
    contacts = pd.DataFrame({"customer_id": customers["customer_id"], "contact_date": first,
                             "direction": "outbound", "channel": "phone", "topic": "x"})
    return StudyData("events", pd.Timestamp("2025-06-30"), customers, prices, contacts)
