"""The study on the simulator's four presets at 20,000 customers: verdicts and the naive trap.

Run from the repo root: ``.venv/bin/python benchmarks/bench_presets.py [n_customers] [seed]``.
For each preset it writes the simulated files, runs the real pipeline (loader, episode
builder, block models with cross-validation, verdict) and the naive analysis without the
notice guard, and prints the planted hazard ratios, the estimated ones, both verdicts and
the time taken. A verdict that does not match the planted truth is marked MISMATCH.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from retention_study.analysis import pipeline
from retention_study.config import resolve_config
from retention_study.data.load import load_study_data
from retention_study.data.simulate import PRESETS, write_simulation
from retention_study.episodes.timeline import build_timeline, timeline_options

HEADLINE = ("months_since_contact", "loyalty_penalty", "price_increase_recent")


def _hrs(step) -> str:
    eff = step.models.effects.set_index("covariate")
    return "  ".join(f"{c}={eff.loc[c, 'hr']:.2f} ({eff.loc[c, 'lower']:.2f}-"
                     f"{eff.loc[c, 'upper']:.2f})" for c in HEADLINE if c in eff.index)


def run(preset: str, n: int, seed: int, folder: Path) -> bool:
    started = time.perf_counter()
    write_simulation(folder, n_customers=n, seed=seed, preset=preset)
    cfg = resolve_config({"data": {
        **{k: str(folder / f"{k}.csv") for k in ("customers", "price_events", "contact_events")},
        "observation_start": "2023-06-30", "controls": ["plan"]}})
    data = load_study_data(cfg)
    step = pipeline.fit_models(build_timeline(data, **timeline_options(cfg)), cfg)
    naive_tl = build_timeline(data, **timeline_options(cfg, notice_guard=False))
    naive = pipeline.fit_models(naive_tl, cfg, cross_validate=False, check_ph=False)
    ok = step.verdict.label == preset
    planted = ", ".join(f"{k}={v}" for k, v in PRESETS[preset].items())
    print(f"\n== preset {preset} ({planted}); {time.perf_counter() - started:.0f} s")
    print(f"   guarded verdict: {step.verdict.label:13s} {'ok' if ok else 'MISMATCH'}")
    print(f"   guarded HRs:     {_hrs(step)}")
    print(f"   naive verdict:   {naive.verdict.label:13s} (no notice guard)")
    print(f"   naive HRs:       {_hrs(naive)}")
    return ok


def main(n: int = 20_000, seed: int = 1) -> int:
    print(f"{n:,} customers per preset, seed {seed}")
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(p, n, seed, Path(tmp) / p) for p in ("contact", "price", "both", "neither")]
    print(f"\n{sum(results)}/4 verdicts match the planted truth")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
