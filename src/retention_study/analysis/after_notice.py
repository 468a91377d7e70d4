"""What suppliers do around a customer's notice: contacts and price cuts after it.

A supplier that wakes up at the cancellation contacts customers or cuts their price
after they give notice rather than before; :func:`after_notice_shares` measures it
(claim 5 of ``CLAIMS.md`` reads it), with exact limits of the rate ratio
(:func:`rate_ratio`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.analysis.records import json_safe
from retention_study.data.schema import DAYS_PER_MONTH, StudyData


def rate_ratio(a: int, exposure_a: float, b: int, exposure_b: float,
               alpha: float = 0.05) -> dict:
    """Ratio of two Poisson rates (a / exposure_a over b / exposure_b), exact limits.

    Conditional on a + b, a is binomial; Clopper–Pearson limits of its proportion
    translate into limits of the ratio.

    Examples
    --------
    >>> r = rate_ratio(30, 10.0, 10, 10.0)
    >>> round(r["rate_ratio"], 2), r["lower"] > 1
    (3.0, True)
    """
    n = a + b
    scale = exposure_b / exposure_a
    lo = stats.beta.ppf(alpha / 2, a, b + 1) if a > 0 else 0.0
    hi = stats.beta.ppf(1 - alpha / 2, a + 1, b) if b > 0 else 1.0
    with np.errstate(divide="ignore"):
        odds = np.array([lo, hi]) / (1 - np.array([lo, hi]))
    est = (a / exposure_a) / (b / exposure_b) if b > 0 else np.inf
    return {"rate_ratio": float(est), "lower": float(odds[0] * scale),
            "upper": float(odds[1] * scale), "events": int(n)}


def _price_cuts(prices: pd.DataFrame) -> pd.DataFrame:
    """Price events below the customer's previous price (by date; ties in table order)."""
    # Integer customer codes and one stable sort: sorting millions of rows by id text
    # costs seconds, and only the order within each customer matters.
    code = pd.factorize(prices["customer_id"])[0]
    day = prices["effective_date"].to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
    day[np.isnat(prices["effective_date"].to_numpy(dtype="datetime64[ns]"))] = np.iinfo(
        np.int64).max  # undated last, as sort_values puts NaT
    order = np.lexsort((day, code))
    code, price = code[order], prices["monthly_price"].to_numpy(dtype=float)[order]
    same = np.r_[False, (code[1:] == code[:-1]) & (code[1:] >= 0)]
    drop = same & (price < np.r_[np.nan, price[:-1]])
    p = prices.iloc[order[drop]]
    return p[["customer_id", "effective_date"]].rename(columns={"effective_date": "date"})


def _around_notice(events: pd.DataFrame, customers: pd.DataFrame, as_of: pd.Timestamp,
                   alpha: float) -> dict:
    """Share of events on/after the customer's notice, and the rate after vs before it."""
    # Each event's customer looked up once (a hash of the ids), then plain array lookups.
    pos = pd.Index(customers["customer_id"]).get_indexer(events["customer_id"])
    notice_all = customers["notice_date"].to_numpy(dtype="datetime64[ns]")
    at = np.where(pos >= 0, notice_all[np.maximum(pos, 0)], np.datetime64("NaT"))
    date = events["date"].to_numpy(dtype="datetime64[ns]")
    after_all = pd.Series(date >= at, index=events.index)
    c = customers.dropna(subset=["notice_date"])
    end = c["end_date"].fillna(as_of).clip(lower=c["notice_date"])
    days_before = (c["notice_date"] - c["start_date"]).dt.days.clip(lower=0).sum()
    days_after = ((end - c["notice_date"]).dt.days + 1).sum()  # the notice day itself counts
    # as ``end`` above, for every customer (NaT without a notice: never used then)
    end_all = np.maximum(customers["end_date"].fillna(as_of).to_numpy(dtype="datetime64[ns]"),
                         notice_all)
    stop = np.where(pos >= 0, end_all[np.maximum(pos, 0)], np.datetime64("NaT"))
    noticer = ~np.isnat(at)  # the event's customer gave notice
    n_after = int((noticer & (date >= at) & (date <= stop)).sum())
    n_before = int((noticer & (date < at)).sum())
    out = {"total": int(len(events)), "after_notice": int(after_all.sum()),
           "share_after_notice": float(after_all.mean()) if len(events) else None,
           "before_notice_noticers": n_before, "after_notice_noticers": n_after,
           "rate_before_per_month": n_before / (days_before / DAYS_PER_MONTH) if days_before
           else None, "rate_after_per_month": n_after / (days_after / DAYS_PER_MONTH)}
    if n_after + n_before == 0 or days_before == 0:
        return {**out, "rate_ratio": None, "lower": None, "upper": None}
    return {**out, **rate_ratio(n_after, days_after, n_before, days_before, alpha)}


def after_notice_shares(data: StudyData, alpha: float = 0.05) -> dict:
    """How much supplier contact and price cutting happens after a customer's notice.

    For outbound contacts and price cuts (a price lower than the customer's previous
    one): the share of all of them dated on or after the customer's notice, and
    among customers who gave notice the rate per customer-month after the notice
    (to the end date, or as_of) against before it (from their start), with exact
    limits of the rate ratio. A ratio above 1 is a supplier waking up at the
    cancellation.

    Returns
    -------
    dict
        ``available`` (bool), ``why`` (when not), ``notices`` (customers with a
        notice date), ``outbound_contacts`` and ``price_cuts`` (each: total,
        after_notice, share_after_notice, rate_before_per_month, rate_after_per_month,
        rate_ratio, lower, upper; or None when the data has no such events).

    Examples
    --------
    >>> c = pd.DataFrame({"customer_id": ["a"], "start_date": [pd.Timestamp("2020-01-01")],
    ...                   "end_date": [pd.Timestamp("2020-12-31")],
    ...                   "notice_date": [pd.Timestamp("2020-12-01")]})
    >>> k = pd.DataFrame({"customer_id": ["a", "a"], "direction": "outbound",
    ...                   "contact_date": pd.to_datetime(["2020-06-01", "2020-12-05"])})
    >>> r = after_notice_shares(StudyData("events", pd.Timestamp("2021-01-01"), customers=c,
    ...                                   contact_events=k))
    >>> r["outbound_contacts"]["share_after_notice"]
    0.5
    """
    if data.format != "events":
        return {"available": False, "why": "a one-row-per-customer table has no dates of "
                "contacts, price changes or notices"}
    cust = data.customers
    if cust["notice_date"].isna().all():
        return {"available": False, "why": "the data records no notice dates"}
    out: dict = {"available": True, "notices": int(cust["notice_date"].notna().sum()),
                 "outbound_contacts": None, "price_cuts": None}
    if data.contact_events is not None and len(data.contact_events):
        k = data.contact_events
        k = k.loc[k["direction"] == "outbound", ["customer_id", "contact_date"]]
        out["outbound_contacts"] = _around_notice(k.rename(columns={"contact_date": "date"}),
                                                  cust, data.as_of, alpha)
    if data.price_events is not None and len(data.price_events):
        out["price_cuts"] = _around_notice(_price_cuts(data.price_events), cust, data.as_of,
                                           alpha)
    if out["outbound_contacts"] is None and out["price_cuts"] is None:
        return {"available": False, "why": "the data has neither contact nor price histories"}
    return json_safe(out)
