"""Fit times of BlockModels + HeadToHead on ~20k customers of simulated monthly episodes.

Run from the repo root: ``.venv/bin/python benchmarks/bench_models.py [n_customers]``.
Prints the sizes, the time of each step and the verdict (the truth is contact-only).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from timeline_sim import simulate_timeline  # noqa: E402

from retention_study.analysis.compare import HeadToHead, decide_verdict  # noqa: E402
from retention_study.analysis.models import BlockModels  # noqa: E402


def main(n: int = 20_000) -> None:
    t0 = time.perf_counter()
    tl = simulate_timeline(n=n, months=36, hr_contact_6m=1.4, seed=7)
    t1 = time.perf_counter()
    bm = BlockModels().fit(tl)
    t2 = time.perf_counter()
    h2h = HeadToHead(k=5, bootstrap=200, seed=1).fit(tl, bm)
    t3 = time.perf_counter()
    verdict = decide_verdict(bm, h2h)
    t4 = time.perf_counter()
    print(f"customers {tl.n_customers}, episodes {len(tl.episodes)}, "
          f"departures {tl.n_departures}")
    print(f"simulate        {t1 - t0:7.2f} s")
    print(f"BlockModels.fit {t2 - t1:7.2f} s  (4 models + PH check)")
    print(f"HeadToHead.fit  {t3 - t2:7.2f} s  (5 folds x 4 models, 200 bootstrap)")
    print(f"decide_verdict  {t4 - t3:7.2f} s")
    print(f"verdict: {verdict.label}: {verdict.sentence}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
