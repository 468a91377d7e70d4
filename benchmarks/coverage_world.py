"""An independent customer world in continuous (daily) time, for the coverage benchmark.

Written apart from :mod:`retention_study.data.simulate`, which plants its hazard on the study's
own monthly grid: here everything happens on days. Outbound contacts arrive at a
customer-specific daily rate, prices rise on random days, and the daily hazard of giving
notice is ``h0 * HR_plan * HR_6m ** (days since contact / 182.6) * HR_10pct **
(log(price / new price) / log 1.1) * HR_inc ** (increase in the last 60 days)``, all read
from events dated before the day. Premium customers are contacted more and leave less
(plan confounds contact). Nothing is dated after a notice; the logs are complete.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from retention_study.data.schema import StudyData

PLANTED = {"months_since_contact": 1.5, "loyalty_penalty": 1.3, "price_increase_recent": 1.8}
DAYS_6M = 6 * 365.25 / 12
WINDOW = 60
CAP_DAYS = 24 * 365.25 / 12


def daily_world(n: int = 3000, seed: int = 0, years: float = 4.0,
                as_of: str = "2026-06-30") -> StudyData:
    """Customers joining over ``years`` before ``as_of``, simulated day by day."""
    rng = np.random.default_rng(seed)
    end = np.datetime64(as_of, "D")
    n_days = int(years * 365.25)
    first = end - n_days
    start = rng.integers(0, n_days - 30, n)
    premium = rng.random(n) < 0.3
    contact_rate = rng.gamma(2.0, (1 / 120) / 2.0, n) * np.where(premium, 2.0, 1.0)
    base = 0.0009 * np.where(premium, 0.7, 1.0)
    last_contact = start.astype(float)  # the welcome call on the first day
    price = np.full(n, 50.0)
    last_increase = np.full(n, -10_000.0)
    alive = np.ones(n, bool)
    notice = np.full(n, -1)
    prices, contacts = [(i, s, 50.0) for i, s in enumerate(start)], \
        [(i, s) for i, s in enumerate(start)]
    b = {k: math.log(v) for k, v in PLANTED.items()}
    for day in range(n_days + 1):
        on = alive & (start < day)  # at risk from the day after joining
        msc = np.minimum(day - last_contact, CAP_DAYS)
        recent = (day - last_increase) <= WINDOW
        eta = (b["months_since_contact"] * msc / DAYS_6M
               + b["loyalty_penalty"] * np.log(price / 50.0) / math.log(1.1)
               + b["price_increase_recent"] * recent)
        leave = on & (rng.random(n) < base * np.exp(eta))
        notice[leave] = day
        alive &= ~leave
        on &= ~leave
        # today's events count from tomorrow on
        called = on & (rng.random(n) < contact_rate)
        last_contact[called] = day
        contacts += [(i, day) for i in np.flatnonzero(called)]
        up = on & (rng.random(n) < 1 / 365)
        price[up] *= rng.uniform(1.05, 1.10, up.sum())
        last_increase[up] = day
        prices += [(i, day, p) for i, p in zip(np.flatnonzero(up), price[up], strict=True)]
    ids = np.array([f"D{i:06d}" for i in range(n)])
    date = (lambda d: first + np.asarray(d, dtype=np.int64))  # noqa: E731
    left = notice >= 0
    customers = pd.DataFrame({
        "customer_id": ids, "start_date": pd.to_datetime(date(start)),
        "end_date": pd.to_datetime(np.where(left, date(notice), np.datetime64("NaT"))),
        "notice_date": pd.to_datetime(np.where(left, date(notice), np.datetime64("NaT"))),
        "churned": left.astype(int), "exit_reason": None,
        "plan": np.where(premium, "premium", "basic")})
    p = np.array(prices, dtype=float)
    price_events = pd.DataFrame({"customer_id": ids[p[:, 0].astype(int)],
                                 "effective_date": pd.to_datetime(date(p[:, 1])),
                                 "monthly_price": p[:, 2], "new_customer_price": 50.0})
    c = np.array(contacts, dtype=np.int64)
    contact_events = pd.DataFrame({"customer_id": ids[c[:, 0]],
                                   "contact_date": pd.to_datetime(date(c[:, 1])),
                                   "direction": "outbound", "channel": "phone",
                                   "topic": "check-in"})
    return StudyData("events", pd.Timestamp(as_of), customers,
                     price_events.sort_values(["customer_id", "effective_date"],
                                              kind="stable").reset_index(drop=True),
                     contact_events.sort_values(["customer_id", "contact_date"],
                                                kind="stable").reset_index(drop=True),
                     roles={"controls": ["plan"]})
