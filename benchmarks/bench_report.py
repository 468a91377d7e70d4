"""Runner overhead outside the notebook: hashing, row counts, the ID leak scan.

Run from the project root: ``.venv/bin/python benchmarks/bench_report.py [n_customers]``.
Prints seconds per step on a simulated base and on the real IBM table; not a test.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from retention_study.config_file import load_config
from retention_study.data.simulate import write_simulation
from retention_study.runner import checks, manifest

ROOT = Path(__file__).resolve().parents[1]


def _step(label: str, fn):
    t0 = time.perf_counter()
    value = fn()
    print(f"  {label:<34} {time.perf_counter() - t0:7.2f} s")
    return value


def _measure(title: str, cfg: dict) -> None:
    print(title)
    inputs = _step("sha256 + row counts", lambda: manifest.describe_inputs(cfg))
    for item in inputs:
        print(f"    {Path(item['path']).name:<32} {item['rows']:>10,} rows "
              f"{item['bytes'] / 1e6:8.1f} MB")
    ids = _step("read customer IDs", lambda: checks.customer_ids(cfg))
    # A 2 MB page of numbers and one leaked ID at the very end.
    page = "<p>" + " ".join(str(i) for i in range(300_000)) + "</p>"
    page += f"<td>{sorted(ids)[-1]}</td>"
    leaked = _step(f"scan {len(page) / 1e6:.1f} MB HTML for {len(ids):,} IDs",
                   lambda: checks.find_leaked_ids(page, checks.checkable_ids(ids)))
    print(f"    leaked found: {len(leaked)} (expected 1)")


def main(n_customers: int = 200_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sim"
        write_simulation(out, n_customers=n_customers, seed=1, preset="both", fmt="csv")
        overrides = [f"data.{k}={out / k}.csv"
                     for k in ("customers", "price_events", "contact_events")]
        cfg = load_config(ROOT / "configs" / "example_events.yaml", overrides)
        _measure(f"events, {n_customers:,} simulated customers (CSV)", cfg)
    _measure("table, IBM telco", load_config(ROOT / "configs" / "ibm_telco.yaml"))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
