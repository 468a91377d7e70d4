"""How often the 95% CIs of the headline hazard ratios cover the planted ones, over seeds.

Run from the repo root: ``.venv/bin/python benchmarks/bench_coverage.py [n_seeds] [n]``.
Two kinds of world, every effect planted (1.5 per 6 months without contact, 1.3 per +10%
above the new-customer price, 1.8 after a recent increase):

- ``simulate``: the project's simulator (preset "both"), which plants its hazard on the
  study's own monthly grid; fitted adjusting for plan only (the default config) and for
  plan + the satisfaction levels it also plants;
- ``daily``: an independent world (benchmarks/coverage_world.py) whose contacts, price
  changes and hazard live on days, fitted on the month, week and day grids.

For each, the study's episodes (default options) and the final Cox model; prints per
measure the mean hazard ratio, the coverage of the 95% CI (target 0.93-0.97) and its
binomial standard error.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from coverage_world import PLANTED, daily_world  # noqa: E402

from retention_study.analysis.models import fit_cox  # noqa: E402
from retention_study.data.ledger import Ledger  # noqa: E402
from retention_study.data.schema import StudyData  # noqa: E402
from retention_study.data.simulate import PRESETS, simulate  # noqa: E402
from retention_study.episodes.timeline import build_timeline  # noqa: E402

SCALE = {"months_since_contact": 6.0, "loyalty_penalty": math.log(1.1),
         "price_increase_recent": 1.0}
SIM_PLANTED = {"months_since_contact": PRESETS["both"]["hr_no_contact_6m"],
               "loyalty_penalty": PRESETS["both"]["hr_price_gap_10pct"],
               "price_increase_recent": PRESETS["both"]["hr_price_increase"]}


def _fit(data: StudyData, grid: str, planted: dict) -> dict:
    tl = build_timeline(data, grid=grid)
    cols = [c for b in ("service", "controls", "price", "contact") for c in tl.blocks[b]]
    s = fit_cox(tl.episodes, cols).fitter.summary
    out = {}
    for col, scale in SCALE.items():
        b, se = s.loc[col, "coef"] * scale, s.loc[col, "se(coef)"] * scale
        out[col] = (b, abs(b - math.log(planted[col])) <= 1.959964 * se)
    return out


def simulated(seed: int, n: int, controls: list) -> dict:
    sim = simulate(n, seed=seed, preset="both")
    customers = sim.customers.assign(satisfaction_level=sim.customers["satisfaction"].astype(str))
    data = StudyData("events", pd.Timestamp(sim.truth["as_of"]), customers, sim.price_events,
                     sim.contact_events, roles={"controls": controls}, ledger=Ledger(),
                     observation_start=pd.Timestamp(sim.truth["observation_start"]))
    return _fit(data, "month", SIM_PLANTED)


def daily(seed: int, n: int, grid: str) -> dict:
    data = copy.copy(daily_world(n, seed=seed))
    data.ledger = Ledger()
    return _fit(data, grid, PLANTED)


VARIANTS = {
    "simulate, plan (default config)": lambda s, n: simulated(s, n, ["plan"]),
    "simulate, plan + satisfaction": lambda s, n: simulated(s, n, ["plan", "satisfaction_level"]),
    "daily world, grid month": lambda s, n: daily(s, n, "month"),
    "daily world, grid week": lambda s, n: daily(s, n, "week"),
    "daily world, grid day": lambda s, n: daily(s, n, "day"),
}


def main(n_seeds: int = 40, n: int = 3000) -> None:
    t0 = time.time()
    print(f"{n} customers, {n_seeds} seeds per world; 95% CI coverage of the planted HR")
    print(f"{'world':34s}{'measure':24s}{'mean HR':>9s}{'planted':>9s}{'coverage':>10s}"
          f"{'(se)':>7s}")
    for name, run in VARIANTS.items():
        runs = [run(seed, n) for seed in range(n_seeds)]
        for col in SCALE:
            est = np.array([r[col][0] for r in runs])
            cov = float(np.mean([r[col][1] for r in runs]))
            planted = (SIM_PLANTED if name.startswith("simulate") else PLANTED)[col]
            print(f"{name:34s}{col:24s}{math.exp(est.mean()):9.3f}{planted:9.2f}{cov:10.2f}"
                  f"{math.sqrt(cov * (1 - cov) / n_seeds):7.2f}", flush=True)
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
