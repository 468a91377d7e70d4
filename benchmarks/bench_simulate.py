"""Time and peak memory of simulating and writing 1,000,000 customers; truth recovery.

Each timed step runs in a fresh subprocess so that ``ru_maxrss`` is the peak of that
step alone. Then, per preset, a Cox fit on the true panel of 20,000 customers prints
each planted log hazard ratio beside its estimate and standard error.
Usage: ``python benchmarks/bench_simulate.py [N_CUSTOMERS] [--no-recovery]``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

STEP = """
import resource, sys, time
from pathlib import Path
from retention_study.data.simulate import simulate, write_simulation
n, fmt, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
t = time.perf_counter()
if fmt == "none":
    sim = simulate(n, seed=1, preset="both")
    rows = len(sim.price_events) + len(sim.contact_events)
else:
    paths = write_simulation(out, n_customers=n, seed=1, preset="both", fmt=fmt)
    rows = sum(p.stat().st_size for p in paths) / 1e6
took = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
print(f"{fmt:8s} {took:7.1f} s  peak {peak:5.2f} GB  ({rows:,.0f} {'event rows' if fmt == 'none' else 'MB written'})")
"""


def recovery(n: int = 20_000) -> None:
    import numpy as np
    import pandas as pd
    from lifelines import CoxTimeVaryingFitter

    from retention_study.data.simulate import PRESETS, simulate

    scale = {"hr_no_contact_6m": ("months_since_contact", 6.0),
             "hr_price_gap_10pct": ("loyalty_penalty", np.log(1.1)),
             "hr_price_increase": ("price_increase_recent", 1.0)}
    print(f"recovery on the true panel, {n:,} customers: log HR true / estimate (SE)")
    for preset in PRESETS:
        sim = simulate(n, seed=2, preset=preset, keep_panel=True)
        p = sim.panel
        d = p[["customer_id", "start", "stop", "event"]].copy()
        for col, unit in scale.values():
            d[col] = p[col] / unit
        d = d.join(pd.get_dummies(p["plan"], drop_first=True, dtype=float))
        d = d.join(pd.get_dummies(p["satisfaction"].astype(str), prefix="sat",
                                  drop_first=True, dtype=float))
        s = CoxTimeVaryingFitter().fit(d, id_col="customer_id", start_col="start",
                                       stop_col="stop", event_col="event").summary
        cells = [f"{col} {np.log(sim.truth['effects'][k]):+.3f} / "
                 f"{s.loc[col, 'coef']:+.3f} ({s.loc[col, 'se(coef)']:.3f})"
                 for k, (col, _) in scale.items()]
        print(f"{preset:8s} " + "; ".join(cells))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    print(f"simulate {n:,} customers (preset both), limits: 60 s and 4 GB")
    for fmt in ("none", "parquet", "csv"):
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-c", STEP, str(n), fmt, out], check=True)
    if "--no-recovery" not in sys.argv:
        recovery()


if __name__ == "__main__":
    main()
