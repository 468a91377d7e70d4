"""Timing of the descriptives on a large simulated episode table (prints its figures).

Run from the project root: ``.venv/bin/python benchmarks/bench_descriptives.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from retention_study.analysis.descriptives import contact_bands, penalty_bands
from retention_study.analysis.km import km_by_group
from retention_study.data.schema import StudyData


def episodes(n_customers: int, per_customer: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_customers * per_customer
    start = np.tile(np.arange(per_customer, dtype=float), n_customers)
    return pd.DataFrame({
        "customer_id": np.repeat(np.arange(n_customers), per_customer).astype(str),
        "start": start, "stop": start + 1.0,
        "event": (rng.random(n) < 0.01).astype(int),
        "months_since_contact": rng.uniform(0, 24, n),
        "loyalty_penalty": rng.normal(0.05, 0.1, n),
    })


def customers(n: int, seed: int = 2) -> StudyData:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3650, n), unit="D")
    end = start + pd.to_timedelta(rng.integers(30, 3000, n), unit="D")
    left = end < pd.Timestamp("2026-06-30")
    frame = pd.DataFrame({"customer_id": np.arange(n).astype(str), "start_date": start,
                          "end_date": end.where(left), "notice_date": pd.NaT,
                          "churned": left.astype(int), "exit_reason": np.nan,
                          "plan": rng.choice(["basic", "plus", "premium"], n)})
    return StudyData(format="events", as_of=pd.Timestamp("2026-06-30"), customers=frame,
                     observation_start=pd.Timestamp("2018-01-01"))


def timed(label: str, fn) -> None:
    t0 = time.perf_counter()
    fn()
    print(f"{label:<45} {time.perf_counter() - t0:6.2f} s")


if __name__ == "__main__":
    ep = episodes(50_000, 40)  # 2 million episodes
    print(f"episodes: {len(ep):,}")
    timed("contact_bands", lambda: contact_bands(ep))
    timed("penalty_bands", lambda: penalty_bands(ep))
    data = customers(200_000)
    timed("km_by_group(plan), 200k customers, late entry", lambda: km_by_group(data, "plan"))
    timed("km_by_group(cohort)", lambda: km_by_group(data, "cohort"))
