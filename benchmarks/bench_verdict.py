"""How often the verdict rule gets a simulated world right, over seeds.

Run from the repo root: ``.venv/bin/python benchmarks/bench_verdict.py [n_seeds] [n]``.
Prints, per world, the share of seeds giving each label (no cross-validation: the label
depends only on the likelihood-ratio tests and the equivalence check). The null world
shows the false-positive rate the Holm adjustment keeps near alpha.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from timeline_sim import simulate_timeline  # noqa: E402

from retention_study.compare import VERDICTS, decide_verdict  # noqa: E402
from retention_study.models import BlockModels  # noqa: E402

WORLDS = {
    "contact": dict(hr_contact_6m=1.3),
    "price": dict(hr_price_10pct=1.3),
    "both": dict(hr_contact_6m=1.3, hr_price_10pct=1.3),
    "neither": dict(),
    "contact (correlated)": dict(hr_contact_6m=1.3, correlated=0.8),
}


def main(n_seeds: int = 20, n: int = 3000) -> None:
    print(f"{n} customers, {n_seeds} seeds per world; share of each label")
    print(f"{'world':22s}" + "".join(f"{v:>14s}" for v in VERDICTS))
    for world, kw in WORLDS.items():
        labels = Counter(decide_verdict(BlockModels(check_ph=False).fit(
            simulate_timeline(n=n, seed=seed, **kw))).label for seed in range(n_seeds))
        print(f"{world:22s}" + "".join(f"{labels[v] / n_seeds:14.2f}" for v in VERDICTS))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
