"""The whole study through the CLI on simulated customers: wall time, peak memory, steps.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_scale.py [N ...] [--keep DIR]

Default sizes 100,000 and 1,000,000 customers (the simulator's defaults otherwise: about
17 episodes per customer). For each size it simulates the data (not timed), writes a run
config like ``configs/default.yaml`` pointing at it, and times ``retention-study run``
in a subprocess. It prints

- wall time and CPU time (user + sys of the whole process tree: on a shared machine the
  wall time is inflated, the CPU time much less);
- peak memory: the largest sum of RSS over the CLI process and all its descendants
  (the Jupyter kernel), sampled every 0.2 s;
- the runner's steps from ``manifest.json`` and each notebook cell's duration from the
  executed notebook (papermill's metadata), labelled by the cell's first line;
- the log-log slope of wall and CPU time between the smallest and largest size;
- the load average before and after each run (the machine is shared).

``--max-gb G`` stops a run whose process tree passes G GB of RSS (it is killed and reported
as such), so a run that would not fit cannot push a shared machine out of memory.

Targets (issue 10): 1M customers <= 5 min wall and <= 8 GB peak on 2 cores, 100k
<= 45 s, slope <= 1.1. Prints figures; not a test. Runs one study at a time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import TreeMemory  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("retention-study")
TARGETS = {100_000: (45.0, None), 1_000_000: (300.0, 8.0)}  # customers: (wall s, peak GB)
SLOPE_TARGET = 1.1


def _config(folder: Path, name: str) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
    cfg["name"] = name
    for key in ("customers", "price_events", "contact_events"):
        cfg["data"][key] = str(folder / f"{key}.csv")
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _cells(notebook: Path) -> list[tuple[str, float]]:
    """(first line of code, seconds) of every executed code cell that took >= 0.5 s."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        duration = (cell.get("metadata", {}).get("papermill", {}) or {}).get("duration")
        if cell["cell_type"] == "code" and duration and duration >= 0.5:
            source = "".join(cell["source"]).strip().splitlines()
            out.append(((source[0] if source else "")[:60], float(duration)))
    return out


def run_study(n: int, work: Path, max_gb: float | None = None) -> dict:
    """Simulate ``n`` customers into ``work`` and run the whole study on them."""
    data = work / f"sim{n}"
    t0 = time.perf_counter()
    subprocess.run([str(CLI), "simulate", "--out", str(data), "--customers", str(n)],
                   check=True, capture_output=True, cwd=ROOT)
    simulate_s = time.perf_counter() - t0
    config, out = _config(data, f"bench{n}"), work / f"reports{n}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(CLI), "run", str(config), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid, limit_gb=max_gb)
    memory.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    peak = memory.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    load = (load_before, os.getloadavg())
    if memory.killed:
        return {"customers": n, "killed": True, "wall_s": wall, "cpu_s": cpu,
                "peak_gb": peak, "load": load, "max_gb": max_gb}
    if proc.returncode != 0:
        raise SystemExit(f"run failed at {n:,} customers (exit {proc.returncode}):\n"
                         f"{stdout}{stderr[-3000:]}")
    run_dir = (out / f"bench{n}" / "latest").resolve()
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    return {"customers": n, "episodes": results.get("n_episodes"), "simulate_s": simulate_s,
            "wall_s": wall, "cpu_s": cpu, "peak_gb": peak, "steps": manifest.get("steps", {}),
            "cells": _cells(run_dir / "report.ipynb"), "verdict": results.get("verdict"),
            "load": load}


def _print(r: dict) -> None:
    wall_t, mem_t = TARGETS.get(r["customers"], (None, None))
    load = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(*r["load"], strict=True))
    if r.get("killed"):
        print(f"\n{r['customers']:,} customers: KILLED at {r['peak_gb']:.2f} GB RSS (--max-gb "
              f"{r['max_gb']:g}) after {r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU; "
              f"load average (1/5/15 min) before/after {load}")
        return
    print(f"\n{r['customers']:,} customers, {r['episodes']:,} episodes "
          f"(simulated in {r['simulate_s']:.0f} s), verdict {r['verdict']}")
    mark = "" if wall_t is None else f"  (target <= {wall_t:.0f} s: "
    mark += "" if wall_t is None else ("met)" if r["wall_s"] <= wall_t else "NOT met)")
    print(f"  wall {r['wall_s']:8.1f} s{mark}")
    print(f"  cpu  {r['cpu_s']:8.1f} s  (user + sys, whole process tree)")
    mark = "" if mem_t is None else (f"  (target <= {mem_t:.0f} GB: "
                                     + ("met)" if r["peak_gb"] <= mem_t else "NOT met)"))
    print(f"  peak {r['peak_gb']:8.2f} GB RSS of the process tree{mark}")
    print(f"  load average (1/5/15 min) before/after: {load}")
    print("  runner steps (manifest.json): " + ", ".join(
        f"{k} {v:.1f} s" for k, v in r["steps"].items()))
    print("  notebook cells >= 0.5 s:")
    for label, seconds in r["cells"]:
        print(f"    {seconds:8.1f} s  {label}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="keep the data and reports in this folder")
    parser.add_argument("--max-gb", type=float, help="kill a run whose process tree passes "
                        "this many GB of RSS")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = []
        for n in sorted(args.sizes):
            results.append(run_study(n, work, args.max_gb))
            _print(results[-1])
        results = [r for r in results if not r.get("killed")]
        if len(results) >= 2:
            a, b = results[0], results[-1]
            ratio = math.log(b["customers"] / a["customers"])
            for key in ("wall_s", "cpu_s"):
                slope = math.log(b[key] / a[key]) / ratio
                verdict = "met" if slope <= SLOPE_TARGET else "NOT met"
                print(f"\nlog-log slope of {key[:-2]} time, {a['customers']:,} -> "
                      f"{b['customers']:,}: {slope:.2f} (target <= {SLOPE_TARGET}: {verdict})")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
