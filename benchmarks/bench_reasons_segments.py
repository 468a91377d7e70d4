"""Reasons, segments, loyalty and after-notice on simulated and real data (prints figures).

Run from the project root: ``.venv/bin/python benchmarks/bench_reasons_segments.py [n]``.
Shape A: a simulated customer base (``simulate``) through the real Timeline, compared
with what the simulator planted. Shape B: the IBM Telco table, built by hand here
(not through the loader) with Contract as a segment.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from retention_study.analysis.after_notice import after_notice_shares
from retention_study.analysis.loyalty import LoyaltyPenalty
from retention_study.analysis.reasons import analyse_reasons, customer_reasons
from retention_study.analysis.segments import analyse_segments
from retention_study.data.schema import StudyData
from retention_study.data.simulate import simulate
from retention_study.episodes.timeline import build_timeline

ROOT = Path(__file__).resolve().parents[1]
IBM = ROOT / ".." / "shared" / "data" / "real" / "ibm_telco_customer_churn.csv"


def timed(what: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"{what:<34} {time.perf_counter() - t0:7.2f} s")
    return out


def shape_a(n: int) -> None:
    sim = simulate(n, seed=5, preset="both")
    data = StudyData("events", pd.Timestamp(sim.truth["as_of"]), customers=sim.customers,
                     price_events=sim.price_events, contact_events=sim.contact_events,
                     roles={"satisfaction": "satisfaction", "segments": ["plan"]},
                     observation_start=pd.Timestamp(sim.truth["observation_start"]))
    tl = timed("timeline", lambda: build_timeline(data))
    print(f"customers {tl.n_customers}, departures {tl.n_departures}, "
          f"episodes {len(tl.episodes)}")
    reasons = timed("analyse_reasons (with timeline)", lambda: analyse_reasons(data, tl))
    segs = timed("analyse_segments", lambda: analyse_segments(data))
    loyalty = timed("LoyaltyPenalty", lambda: LoyaltyPenalty().fit(data))
    after = timed("after_notice_shares", lambda: after_notice_shares(data))
    groups = customer_reasons(data)["reason_group"].value_counts(normalize=True)
    print("stated group shares (ours):", groups.round(3).to_dict())
    print("stated shares (simulator truth):", sim.truth.get("stated_reason_shares",
                                                            sim.truth.get("reasons")))
    print("unmapped:", reasons["unmapped"], reasons["unmapped_examples"])
    print(pd.DataFrame(reasons["cumulative_incidence"]["summary"]).to_string())
    print(pd.DataFrame(reasons["cause_specific"]["summary"]).round(3).to_string())
    print(pd.DataFrame(reasons["stated_vs_revealed"]).round(3).to_string())
    print(pd.DataFrame(segs["satisfaction"]["summary"]).round(3).to_string())
    print("per point:", segs["satisfaction"]["per_point"])
    print("satisfied excess:", segs["satisfaction"]["satisfied_excess"])
    print(loyalty.summary.round(2).to_string())
    for key in ("outbound_contacts", "price_cuts"):
        d = after[key]
        print(key, {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()})


def shape_b() -> None:
    raw = pd.read_csv(IBM)
    table = pd.DataFrame({"customer_id": raw["customerID"].astype(str),
                          "duration_days": raw["tenure"] * 365.25 / 12,
                          "event": (raw["Churn"] == "Yes").astype(int),
                          "Contract": raw["Contract"], "InternetService": raw["InternetService"]})
    data = StudyData("table", pd.Timestamp("2026-06-30"), table=table,
                     roles={"segments": ["Contract", "InternetService"]})
    segs = timed("IBM analyse_segments", lambda: analyse_segments(data))
    for col, res in segs["by_column"].items():
        print(col, "reference", res["reference"])
        print(pd.DataFrame(res["summary"]).round(3).to_string())
    print("IBM after notice:", after_notice_shares(data))


if __name__ == "__main__":
    shape_a(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
    shape_b()
