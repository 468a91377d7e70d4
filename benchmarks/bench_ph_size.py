"""Size of the proportional-hazards check where proportional hazards hold exactly.

Run from the repo root: ``.venv/bin/python benchmarks/bench_ph_size.py [n_seeds] [n]``.
Two monthly worlds where the Cox model's proportional hazards hold exactly:

- ``timeline_sim``: tests/timeline_sim.py (grouped-time hazards; every measure spread
  evenly over tenure);
- ``simulate``: the project's simulator (preset "price"), episodes built by the study,
  with plan and the satisfaction levels adjusted for (everything the hazard depends on).
  Annual price increases put the recent-increase flag at a few tenures only, so its
  variance in the risk set changes with tenure.

Each seed fits the final model and applies, per covariate, the study's check (the exact
score test of R's cox.zph, Kaplan-Meier and rank time transforms) and the shortcut it
replaced (scaled Schoenfeld residuals, rank transform: lifelines'
``proportional_hazard_test``). Prints the share of seeds rejecting at the 5% level (target 0.05).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from timeline_sim import simulate_timeline  # noqa: E402

from retention_study.analysis.models import fit_cox, ph_score_test  # noqa: E402
from retention_study.data.ledger import Ledger  # noqa: E402
from retention_study.data.schema import StudyData  # noqa: E402
from retention_study.data.simulate import simulate  # noqa: E402
from retention_study.episodes.timeline import build_timeline  # noqa: E402


def scaled_shortcut(fit, eps):
    """The check the study used before: scaled Schoenfeld residuals, rank transform.

    Each departure's residual is scaled by d x the variance matrix (the average-variance
    approximation of Grambsch and Therneau), as lifelines' ``proportional_hazard_test``
    does, with the engine's late-entry risk sets.
    """
    fitter = fit.fitter
    resid = fitter.schoenfeld_residuals(method="breslow")
    order = np.argsort(resid.pop("time").to_numpy(), kind="stable")
    resid = resid.to_numpy()[order]
    d = len(resid)
    scaled = d * resid @ fitter.variance_matrix_.to_numpy()
    rank = np.arange(1, d + 1, dtype=float)
    rank -= rank.mean()
    statistic = (rank @ scaled) ** 2 / (d * fitter.standard_errors_.to_numpy() ** 2
                                        * (rank @ rank))
    return pd.Series(stats.chi2.sf(statistic, 1), index=fitter.params_.index)


def sim_timeline(n: int, seed: int):
    """tests/timeline_sim.py's world with every effect planted."""
    tl = simulate_timeline(n=n, seed=seed, hr_contact_6m=1.3, hr_price_10pct=1.3,
                           hr_increase=1.8)
    return tl.episodes, tl.covariates


def project_timeline(n: int, seed: int):
    """The project's simulator, adjusted for all it plants (plan, satisfaction levels)."""
    sim = simulate(n, seed=seed, preset="price")
    customers = sim.customers.assign(satisfaction=sim.customers["satisfaction"].astype(str))
    data = StudyData("events", pd.Timestamp(sim.truth["as_of"]), customers, sim.price_events,
                     sim.contact_events, roles={"controls": ["plan", "satisfaction"]},
                     ledger=Ledger(),
                     observation_start=pd.Timestamp(sim.truth["observation_start"]))
    tl = build_timeline(data)
    return tl.episodes, tl.covariates


WORLDS = {"timeline_sim": sim_timeline, "simulate": project_timeline}


def main(n_seeds: int = 200, n: int = 3000) -> None:
    t0 = time.time()
    print(f"{n} customers, {n_seeds} seeds per world; proportional hazards hold; share "
          f"rejecting at 5% (se {math.sqrt(0.05 * 0.95 / n_seeds):.3f} at the target)")
    for world, make in WORLDS.items():
        tests = {"shortcut (rank)": [], "exact score (km)": [], "exact score (rank)": []}
        for seed in range(n_seeds):
            eps, cols = make(n, seed)
            fit = fit_cox(eps, cols)
            beta = fit.fitter.params_.reindex(cols).to_numpy()
            tests["shortcut (rank)"].append(scaled_shortcut(fit, eps).reindex(cols).to_numpy())
            for tr in ("km", "rank"):
                p = ph_score_test(eps, cols, beta, transform=tr).set_index("covariate")["p"]
                tests[f"exact score ({tr})"].append(p.reindex(cols).to_numpy())
        shown = [c for c in ("months_since_contact", "loyalty_penalty",
                             "price_increase_recent") if c in cols]
        idx = [cols.index(c) for c in shown]
        print(f"\n{world}: price_increase_recent is 1 on "
              f"{eps['price_increase_recent'].mean():.1%} of the rows")
        print(f"{'test':22s}" + "".join(f"{c:>24s}" for c in shown))
        for name, ps in tests.items():
            rate = (np.array(ps)[:, idx] < 0.05).mean(axis=0)
            print(f"{name:22s}" + "".join(f"{r:24.3f}" for r in rate))
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
