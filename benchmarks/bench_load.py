"""How long the data contract takes on a large simulated base and on the real tables.

Run from the project root: ``.venv/bin/python benchmarks/bench_load.py [n_customers]``.
Prints rows read and seconds per step; not a test.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from retention_study.config_file import load_config
from retention_study.data.load import load_study_data
from retention_study.data.simulate import write_simulation

ROOT = Path(__file__).resolve().parents[1]


def _timed(label: str, cfg: dict) -> None:
    t0 = time.perf_counter()
    data = load_study_data(cfg)
    rows = sum(data.ledger.inputs.values())
    print(f"{label:<28} {rows:>9,} rows in  {time.perf_counter() - t0:6.2f} s  "
          f"({data.n_customers:,} customers analysed)")


def main(n_customers: int = 50_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("csv", "parquet"):
            out = Path(tmp) / fmt
            write_simulation(out, n_customers=n_customers, seed=1, preset="both", fmt=fmt)
            overrides = [f"data.{k}={out / k}.{fmt}"
                         for k in ("customers", "price_events", "contact_events")]
            cfg = load_config(ROOT / "configs" / "example_events.yaml", overrides)
            _timed(f"events, {n_customers:,} customers, {fmt}", cfg)
    for name in ("ibm_telco", "bigml_telecom"):
        _timed(f"table, {name}", load_config(ROOT / "configs" / f"{name}.yaml"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
