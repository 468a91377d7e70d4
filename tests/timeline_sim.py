"""Simulated monthly Timelines with a known truth, for the model and verdict tests.

Each month a customer is contacted by the supplier with some probability (which resets
``months_since_contact``), may get a price increase (which raises ``loyalty_penalty``,
the log of price over the new-customer price, and sets ``price_increase_recent`` for two
months), calls in (``inbound_calls``) and leaves with a discrete hazard
``h0 * exp(log-HRs . x)``. Everything is vectorised over a customers x months grid.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from retention_study.data.schema import Timeline

PER_6M = 6.0
PER_10PCT = math.log(1.1)


def simulate_timeline(n=2000, months=24, hr_contact_6m=1.0, hr_price_10pct=1.0,
                      hr_increase=1.0, hr_age=1.3, base_hazard=0.03, correlated=0.0,
                      seed=0) -> Timeline:
    """A Timeline whose true business-unit hazard ratios are the arguments.

    ``correlated`` in [0, 1) makes customers who are rarely contacted also the ones whose
    price rises (a shared latent "neglect" score), so price and contact are confounded.
    """
    rng = np.random.default_rng(seed)
    neglect = rng.normal(size=n)
    age = rng.normal(size=n)
    p_contact = 1 / (1 + np.exp(-(-1.5 - 1.0 * correlated * neglect + 0.5 * rng.normal(size=n))))
    contacted = rng.random((n, months)) < p_contact[:, None]
    t = np.arange(months)
    last = np.where(contacted, t[None, :], -rng.integers(1, 12, size=n)[:, None])
    last = np.maximum.accumulate(last, axis=1)
    msc = np.minimum(t[None, :] - last, 24).astype(float)
    p_inc = 1 / (1 + np.exp(-(-2.5 + 1.5 * correlated * neglect)))
    increase = rng.random((n, months)) < p_inc[:, None]
    penalty = np.cumsum(increase * 0.05, axis=1) + rng.uniform(0, 0.2, size=n)[:, None]
    recent = increase | np.roll(increase, 1, axis=1) & (t[None, :] > 0)
    calls = rng.poisson(0.3, size=(n, months)).astype(float)
    eta = (math.log(hr_contact_6m) / PER_6M * msc + math.log(hr_price_10pct) / PER_10PCT * penalty
           + math.log(hr_increase) * recent + math.log(hr_age) * age[:, None] + 0.1 * calls)
    leaves = rng.random((n, months)) < 1 - np.exp(-base_hazard * np.exp(eta))
    observed = rng.integers(months // 2, months + 1, size=n)
    first_leave = np.where(leaves.any(axis=1), leaves.argmax(axis=1), months)
    last_month = np.minimum(first_leave, observed - 1)
    alive = t[None, :] <= last_month[:, None]
    cust, month = np.nonzero(alive)
    eps = pd.DataFrame({
        "customer_id": np.char.add("c", cust.astype(str)), "start": month.astype(float),
        "stop": month + 1.0,
        "event": ((month == first_leave[cust]) & (first_leave[cust] < observed[cust])).astype(int),
        "loyalty_penalty": penalty[cust, month], "price_increase_recent": recent[cust, month] * 1.0,
        "months_since_contact": msc[cust, month], "inbound_calls": calls[cust, month],
        "age": age[cust]})
    eps = eps.sort_values(["customer_id", "start"], kind="stable").reset_index(drop=True)
    blocks = {"price": ["loyalty_penalty", "price_increase_recent"],
              "contact": ["months_since_contact"], "service": ["inbound_calls"],
              "controls": ["age"]}
    return Timeline(eps, blocks, definitions={"months_since_contact": "months since contact"})
