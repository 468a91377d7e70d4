"""The experiment that would settle it: how many departures, customers and months a test needs.

An observational hazard ratio cannot rule out confounding; a randomised test of the
lever can. :func:`experiment_plan` sizes one (Schoenfeld's events for a given reduction
and power) from the study's own departure rate and flow of eligible customers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.data.schema import CUSTOMER_ID, DAYS_PER_MONTH

#: The randomised test: departures cut by 15%, 80% power, two-sided 5% test, 1:1.
EXPERIMENT = {"reduction": 0.15, "power": 0.80, "alpha": 0.05, "share_treated": 0.5}


# --------------------------------------------------------------------------- experiment


def schoenfeld_events(reduction: float = 0.15, power: float = 0.80, alpha: float = 0.05,
                      share_treated: float = 0.5) -> int:
    """Departures a two-arm log-rank test needs (Schoenfeld 1983).

    ``D = (z_{1-alpha/2} + z_power)^2 / (p (1 - p) log(HR)^2)`` with ``HR = 1 - reduction``.

    Examples
    --------
    >>> schoenfeld_events(0.15)
    1189
    """
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    p = share_treated
    return int(math.ceil(z ** 2 / (p * (1 - p) * math.log(1 - reduction) ** 2)))


def expected_events(months: float, per_month: float, rate: float, reduction: float) -> float:
    """Expected departures by ``months`` with steady enrolment, half treated.

    Customers enrol at ``per_month`` (half to each arm) and leave at a constant monthly
    hazard ``rate`` (control) or ``rate * (1 - reduction)`` (treated); each is followed
    until they leave or the test ends. A cohort enrolled ``s`` months in has had
    ``1 - exp(-h (M - s))`` of its customers leave, so ``E = sum_arms a/2 * (M - (1 -
    exp(-h M)) / h)``.

    Examples
    --------
    >>> round(expected_events(12, 100, 0.02, 0.15), 2)
    123.81
    """
    total = 0.0
    for h in (rate, rate * (1 - reduction)):
        total += per_month / 2 * (months - (1 - math.exp(-h * months)) / h)
    return total


def months_needed(events: int, per_month: float, rate: float, reduction: float,
                  horizon: float = 600.0) -> float | None:
    """Months until the expected departures reach ``events`` (None beyond ``horizon``)."""
    if per_month <= 0 or rate <= 0:
        return None
    if expected_events(horizon, per_month, rate, reduction) < events:
        return None
    lo, hi = 0.0, horizon
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expected_events(mid, per_month, rate, reduction) < events \
            else (lo, mid)
    return hi


def _calendar_days(timeline, data) -> tuple[np.ndarray, np.ndarray]:
    """Calendar day numbers of each episode's start and stop."""
    eps = timeline.episodes
    start_date = data.customers.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)["start_date"]
    origin = start_date.reindex(eps[CUSTOMER_ID].to_numpy())
    origin = (origin.to_numpy("datetime64[D]").astype(np.int64))
    return (origin + eps["start"].to_numpy(float) * DAYS_PER_MONTH,
            origin + eps["stop"].to_numpy(float) * DAYS_PER_MONTH)


def eligible_flow(timeline, data, measure: str, threshold: float,
                  window_days: int = 365) -> dict | None:
    """Customers who newly pass ``threshold`` of ``measure`` per quarter, and their departure rate.

    A customer becomes eligible on the first episode at or above the threshold after one
    below it (or on entering the study above it). The flow is counted over the last
    ``window_days`` before as_of (today's base, not the average of a growing history); the
    departure rate is departures per customer-month over every episode at or above the
    threshold.
    """
    eps = timeline.episodes
    if measure not in eps or data.format != "events":
        return None
    x = eps[measure].to_numpy(float)
    cust = eps[CUSTOMER_ID].to_numpy()
    above = x >= threshold - 1e-9
    first_row = np.r_[True, cust[1:] != cust[:-1]]
    prev_above = np.r_[False, above[:-1]] & ~first_row
    crossing = above & ~prev_above
    start_day, _ = _calendar_days(timeline, data)
    as_of = np.datetime64(pd.Timestamp(data.as_of).date(), "D").astype(np.int64)
    recent = crossing & (start_day > as_of - window_days) & (start_day <= as_of)
    months = (eps["stop"] - eps["start"]).to_numpy(float)
    exposure = float(months[above].sum())
    departures = int(eps["event"].to_numpy()[above].sum())
    if exposure <= 0:
        return None
    return {"per_quarter": float(recent.sum()) * 91.3 / window_days,
            "rate_per_month": departures / exposure, "departures": departures,
            "customer_months": exposure}


def experiment_plan(timeline, data, measure: str = "months_since_contact",
                    threshold: float = 6.0, **design) -> dict | None:
    """Size of the randomised test: eligible customers a quarter, departures and months needed.

    Examples
    --------
    >>> from retention_study.episodes.timeline import build_timeline, example_data
    >>> data = example_data()
    >>> plan = experiment_plan(build_timeline(data), data)
    >>> plan["departures_needed"]
    1189
    """
    opts = {**EXPERIMENT, **design}
    flow = eligible_flow(timeline, data, measure, threshold)
    if flow is None:
        return None
    need = schoenfeld_events(opts["reduction"], opts["power"], opts["alpha"],
                             opts["share_treated"])
    months = months_needed(need, flow["per_quarter"] / 3, flow["rate_per_month"],
                           opts["reduction"])
    return {"measure": measure, "threshold": threshold, **opts, **flow,
            "departures_needed": need,
            "months_needed": None if months is None else float(math.ceil(months))}


#: The tests a study can propose: (block, measure, threshold, what is done to whom).
EXPERIMENTS = (
    ("contact", "months_since_contact", 6.0,
     "contact a random half of the customers who pass 6 months without contact"),
    ("price", "loyalty_penalty", math.log(1.1),
     "offer a random half of the customers who come to pay 10% or more above the "
     "new-customer price that price"),
)
