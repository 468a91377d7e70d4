"""Time and peak memory of simulating and writing 1,000,000 customers.

Each step runs in a fresh subprocess so that ``ru_maxrss`` is the peak of that step
alone. Usage: ``python benchmarks/bench_simulate.py [N_CUSTOMERS]``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

STEP = """
import resource, sys, time
from pathlib import Path
from retention_study.simulate import simulate, write_simulation
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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"simulate {n:,} customers (preset both), limits: 60 s and 4 GB")
    for fmt in ("none", "parquet", "csv"):
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-c", STEP, str(n), fmt, out], check=True)


if __name__ == "__main__":
    main()
