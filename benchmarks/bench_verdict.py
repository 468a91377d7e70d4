"""How often the verdict gets a simulated world right, over seeds, and how often its CIs cover.

Run from the repo root::

    .venv/bin/python benchmarks/bench_verdict.py [n_seeds] [n_customers] [jobs] [rows.csv]

Each finished run is appended to ``rows.csv`` (default ``bench_verdict_rows.csv`` in the
working directory): the presets seed by seed, then the unseen worlds. A run cut short
resumes where it stopped, and ``--summary rows.csv`` prints the figures so far.

Part 1 (the study's rule, business scale): worlds from ``retention_study.data.simulate`` at
``n_customers`` (default 10,000), each seed simulated with the contact and the price
lever under common random numbers, so each seed's counterfactual truth is known (the
expected change, and the realised one). Per world it prints the share of seeds giving
each label, the accuracy, and how often the 95% CI of each lever's change covers the
simulated truth (with the mean half-width).
Besides the four presets it runs worlds the rule was not built on: contact that
*raises* departures (more calls, more leaving) and small effects (HR 1.05 per 6 months
and per +10%).

Part 2 (the fallback rule for flat tables: tests and hazard ratios only) on the
independent ``tests/timeline_sim.py`` generator, as before.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from timeline_sim import simulate_timeline  # noqa: E402

from retention_study.analysis.compare import VERDICTS, decide_verdict  # noqa: E402
from retention_study.analysis.models import BlockModels  # noqa: E402
from retention_study.analysis.whatif import WhatIf  # noqa: E402
from retention_study.data.schema import StudyData  # noqa: E402
from retention_study.data.simulate import simulate  # noqa: E402
from retention_study.episodes.timeline import build_timeline  # noqa: E402

#: world -> (preset, effect overrides, expected label, expected contact direction or None)
WORLDS = {
    "contact": ("contact", {}, "contact", "lowers departures"),
    "price": ("price", {}, "price", None),
    "both": ("both", {}, "both", "lowers departures"),
    "neither": ("neither", {}, "neither", None),
    "contact raises (unseen)": ("neither", {"hr_no_contact_6m": 1 / 1.5}, "contact",
                                "raises departures"),
    "small effects (unseen)": ("neither", {"hr_no_contact_6m": 1.05,
                                           "hr_price_gap_10pct": 1.05}, None, None),
}

TL_WORLDS = {
    "contact": dict(hr_contact_6m=1.3),
    "price": dict(hr_price_10pct=1.3),
    "both": dict(hr_contact_6m=1.3, hr_price_10pct=1.3),
    "neither": dict(),
    "contact (correlated)": dict(hr_contact_6m=1.3, correlated=0.8),
}


def one_run(world: str, seed: int, n: int) -> dict:
    preset, effects, _, _ = WORLDS[world]
    truth = {}
    for lever, spec in (("contact", ["contact:6"]), ("price", ["price"])):
        sim = simulate(n, seed=seed, preset=preset, levers=spec, **effects)
        truth[lever] = sim.truth["what_if"]
    # the model the simulator implies: plan and satisfaction (as levels) adjusted for, so
    # the figures measure the rule and its intervals, not an omitted confounder
    customers = sim.customers.assign(satisfaction=sim.customers["satisfaction"].astype(str))
    data = StudyData("events", pd.Timestamp(sim.truth["as_of"]), customers,
                     sim.price_events, sim.contact_events,
                     roles={"controls": ["plan", "satisfaction"]},
                     observation_start=pd.Timestamp(sim.truth["observation_start"]))
    tl = build_timeline(data)
    bm = BlockModels(check_ph=False).fit(tl)
    wi = WhatIf(bootstrap=200, seed=seed).fit(data, tl, bm)
    verdict = decide_verdict(bm, what_if=wi)
    s = wi.summary.set_index("lever")
    out = {"world": world, "seed": seed, "label": verdict.label,
           "direction": verdict.evidence["directions"]["contact"]}
    for lever in ("contact", "price"):
        lo, hi = s.loc[lever, "change_ci_low"], s.loc[lever, "change_ci_high"]
        expected, realised = (truth[lever][k] for k in ("change_expected", "change"))
        out[f"{lever}_covers"] = bool(lo <= expected <= hi)
        out[f"{lever}_covers_realised"] = bool(lo <= realised <= hi)
        out[f"{lever}_half_width"] = float(hi - lo) / 2
        out[f"{lever}_eq_half_width"] = float(s.loc[lever, "change_eq_high"]
                                              - s.loc[lever, "change_eq_low"]) / 2
        out[f"{lever}_truth"] = expected
        out[f"{lever}_truth_realised"] = realised
        out[f"{lever}_estimate"] = float(s.loc[lever, "change"])
    return out


def _run(args):
    return one_run(*args)


def business_scale(n_seeds: int, n: int, jobs: int, path: Path) -> None:
    print(f"Part 1: business-scale rule, simulate.py, {n:,} customers, {n_seeds} seeds per "
          "world (controls: plan, satisfaction; observation_start set)")
    # the four presets first, seed by seed, then the unseen worlds; runs already in
    # ``path`` (an earlier, interrupted run) are kept and not repeated
    presets = [w for w in WORLDS if "unseen" not in w]
    tasks = [(w, seed, n) for group in (presets, [w for w in WORLDS if w not in presets])
             for seed in range(1, n_seeds + 1) for w in group]
    done = set()
    if path.is_file():
        old = pd.read_csv(path)
        done = set(zip(old["world"], old["seed"], strict=True))
    tasks = [t for t in tasks if (t[0], t[1]) not in done]
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for row in pool.map(_run, tasks):
            pd.DataFrame([row]).to_csv(path, mode="a", header=not path.is_file(), index=False)
    print(f"({len(tasks)} runs in {time.time() - t0:.0f} s with {jobs} processes)")
    summarise(pd.read_csv(path))


def summarise(rows: pd.DataFrame) -> None:
    head = f"{'world':26s}" + "".join(f"{v:>13s}" for v in VERDICTS)
    print(head + f"{'accuracy':>10s}{'cover c':>9s}{'cover p':>9s}{'real c':>8s}{'real p':>8s}"
          f"{'hw c':>7s}{'hw p':>7s}{'eq p':>7s}{'bias c':>8s}{'bias p':>8s}{'se p':>7s}"
          f"{'seeds':>7s}")
    for world, (_, _, expected, direction) in WORLDS.items():
        r = rows[rows["world"] == world]
        if r.empty:
            continue
        labels = Counter(r["label"])
        right = r["label"] == expected
        if direction and expected:
            right &= r["direction"] == direction
        acc = f"{right.mean():10.2f}" if expected else f"{'-':>10s}"
        bias_p = r["price_estimate"] - r["price_truth"]
        print(f"{world:26s}" + "".join(f"{labels[v] / len(r):13.2f}" for v in VERDICTS) + acc
              + f"{r['contact_covers'].mean():9.2f}{r['price_covers'].mean():9.2f}"
              + f"{r['contact_covers_realised'].mean():8.2f}"
              + f"{r['price_covers_realised'].mean():8.2f}"
              + f"{r['contact_half_width'].mean():7.3f}{r['price_half_width'].mean():7.3f}"
              + f"{r['price_eq_half_width'].mean():7.3f}"
              + f"{(r['contact_estimate'] - r['contact_truth']).mean():+8.3f}"
              + f"{bias_p.mean():+8.3f}{bias_p.std() / max(len(r), 1) ** 0.5:7.3f}"
              + f"{len(r):7d}")
    print("accuracy = share of seeds with the planted label (and, where stated, the contact "
          "direction); cover = share of seeds whose 95% CI of the lever's change holds the "
          "simulated expected change (common random numbers, each customer's chance of "
          "leaving along their path summed); real = the same for the realised change (one "
          "draw of who leaves: outcome noise the CI is not for); hw = mean 95% CI "
          "half-width; eq p = mean half-width of the price lever's 90% (equivalence) "
          "interval, which 'neither' needs inside +-margin; bias = mean estimate minus "
          "expected truth; se p = standard error of the price bias over seeds")


def tests_only(n_seeds: int = 20, n: int = 3000) -> None:
    print(f"\nPart 2: fallback rule (tests and hazard ratios), tests/timeline_sim.py, {n:,} "
          f"customers, {n_seeds} seeds per world")
    print(f"{'world':22s}" + "".join(f"{v:>14s}" for v in VERDICTS))
    for world, kw in TL_WORLDS.items():
        labels = Counter(decide_verdict(BlockModels(check_ph=False).fit(
            simulate_timeline(n=n, seed=seed, **kw))).label for seed in range(n_seeds))
        print(f"{world:22s}" + "".join(f"{labels[v] / n_seeds:14.2f}" for v in VERDICTS))


def main(n_seeds: int = 20, n: int = 10_000, jobs: int = 2,
         path: str = "bench_verdict_rows.csv") -> None:
    business_scale(n_seeds, n, jobs, Path(path))
    tests_only(n_seeds)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        summarise(pd.read_csv(sys.argv[2]))
    else:
        args = sys.argv[1:]
        main(*[int(a) for a in args[:3]], *args[3:4])
