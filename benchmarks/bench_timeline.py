"""Time and peak memory of building episodes, and Cox fit times on them, per grid.

Usage: ``.venv/bin/python benchmarks/bench_timeline.py [N_CUSTOMERS] [N_DAY_GRID] [N_FIT]
[--numpy] [--no-fit]`` (defaults 1,000,000, 100,000 and 20,000: the first fit size).
The data set is simulated once (the project's simulator when importable, about 12
events per customer; ``--numpy`` or no simulator: a plain numpy generator of the same
shape with 15 events per customer) and
written to Parquet; every step then runs in a fresh subprocess so that its peak RSS (VmHWM)
is its own: reading the Parquet files is counted, simulating is not.

Cox fits (lifelines ``CoxTimeVaryingFitter`` and ``CoxPHFitter(entry_col="start")``)
are timed on growing subsamples of customers; a fit that would take longer than
5 minutes on the full episodes (extrapolated linearly in rows) is not run in full,
and the script says so. Prints figures and a grid recommendation; not a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BUILD_LIMIT_S, BUILD_LIMIT_GB, FIT_LIMIT_S = 60.0, 8.0, 300.0

STEP = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
from retention_study.data.schema import StudyData
from retention_study.episodes.timeline import build_timeline

folder, grid, n_fit, max_fit_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
meta = json.loads(open(f"{folder}/meta.json").read())
t0 = time.perf_counter()
frames = {k: pd.read_parquet(f"{folder}/{k}.parquet")
          for k in ("customers", "price_events", "contact_events")}
read_s = time.perf_counter() - t0
data = StudyData("events", pd.Timestamp(meta["as_of"]), frames["customers"],
                 frames["price_events"], frames["contact_events"],
                 roles={"controls": ["plan"]},
                 observation_start=pd.Timestamp(meta["observation_start"]))
t0 = time.perf_counter()
tl = build_timeline(data, grid=grid)
build_s = time.perf_counter() - t0
ep = tl.episodes
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would include the parent's peak
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")]
peak = (int(hwm[0].split()[1]) if hwm
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024 ** 2
out = {"grid": grid, "customers": tl.n_customers, "rows": len(ep), "departures": tl.n_departures,
       "event_times": int(ep.loc[ep.event == 1, "stop"].nunique()), "read_s": read_s,
       "build_s": build_s, "peak_gb": peak, "fits": []}
cols = ["customer_id", "start", "stop", "event", "loyalty_penalty", "price_increase_recent",
        "months_since_contact", "outbound_12m", "inbound_12m", *tl.blocks["controls"]]
ep = ep[cols]
del tl, data, frames
if n_fit:
    from lifelines import CoxPHFitter, CoxTimeVaryingFitter
    ids = ep["customer_id"].unique()
    rng = np.random.default_rng(0)
    for fitter in ("CoxPHFitter(entry_col)", "CoxTimeVaryingFitter"):
        size = min(n_fit, len(ids))
        while True:
            pick = ep[ep["customer_id"].isin(rng.choice(ids, size, replace=False))]
            t0 = time.perf_counter()
            if fitter == "CoxTimeVaryingFitter":
                CoxTimeVaryingFitter().fit(pick, id_col="customer_id", start_col="start",
                                           stop_col="stop", event_col="event")
            else:
                CoxPHFitter().fit(pick.drop(columns="customer_id"), "stop", "event",
                                  entry_col="start")
            took = time.perf_counter() - t0
            out["fits"].append({"fitter": fitter, "customers": int(size), "rows": len(pick),
                                "seconds": took})
            full_estimate = took * len(ep) / len(pick)
            if size == len(ids) or full_estimate > max_fit_s or took > max_fit_s / 4:
                out["fits"][-1]["full_estimate_s"] = full_estimate
                break
            size = min(len(ids), size * 4)
print(json.dumps(out))
"""


def _own_world(n: int, seed: int, as_of: str) -> dict:
    """Shape A data with ~15 events per customer (used when the simulator is missing)."""
    rng = np.random.default_rng(seed)
    end_day = np.datetime64(as_of, "D")
    start = end_day - rng.integers(0, 6 * 365, n).astype("timedelta64[D]")
    tenure = (end_day - start).astype(int)
    leave = rng.random(n) < 0.5
    notice = start + (rng.random(n) * tenure).astype("timedelta64[D]")
    ids = pd.Series(np.arange(n)).astype(str).str.zfill(7).radd("C").to_numpy()
    customers = pd.DataFrame({
        "customer_id": ids, "start_date": start.astype("datetime64[ns]"),
        "end_date": pd.NaT, "notice_date": np.where(leave, notice, np.datetime64("NaT"))
        .astype("datetime64[ns]"), "exit_reason": None,
        "plan": rng.choice(["basic", "standard", "premium"], n)})
    end = customers["notice_date"] + pd.Timedelta(days=30)
    customers["end_date"] = end.where(end <= pd.Timestamp(as_of))
    customers["churned"] = leave.astype(int)

    def events(k):
        who = rng.integers(0, n, k)
        return who, start[who] + (rng.random(k) * tenure[who]).astype("timedelta64[D]")

    who, day = events(10 * n)
    contacts = pd.DataFrame({"customer_id": ids[who], "contact_date": day.astype("datetime64[ns]"),
                             "direction": rng.choice(["outbound", "inbound"], len(who)),
                             "channel": "phone", "topic": None})
    who, day = events(4 * n)
    prices = pd.DataFrame({"customer_id": np.r_[ids, ids[who]],
                           "effective_date": np.r_[start, day].astype("datetime64[ns]"),
                           "monthly_price": rng.uniform(20, 40, n + len(who)),
                           "new_customer_price": rng.uniform(20, 30, n + len(who))})
    obs = str(np.datetime64(as_of, "D") - np.timedelta64(3 * 365, "D"))
    return {"customers": customers, "price_events": prices, "contact_events": contacts,
            "observation_start": obs}


def make_data(folder: Path, n: int, own: bool = False) -> str:
    """Write Shape A Parquet files and meta.json into ``folder``; return the source used."""
    as_of = "2026-06-30"
    try:
        from retention_study.data.simulate import simulate
    except ImportError:
        own = True
    if own:
        world, source = _own_world(n, 1, as_of), "the numpy generator of this script"
    else:
        sim = simulate(n, seed=1, preset="both", as_of=as_of)
        world = {"customers": sim.customers, "price_events": sim.price_events,
                 "contact_events": sim.contact_events,
                 "observation_start": sim.truth["observation_start"]}
        source = "retention_study.data.simulate (preset both)"
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("customers", "price_events", "contact_events"):
        world[key].to_parquet(folder / f"{key}.parquet", index=False)
    events = len(world["price_events"]) + len(world["contact_events"])
    (folder / "meta.json").write_text(json.dumps({
        "as_of": as_of, "observation_start": world["observation_start"], "events": events}))
    return source


def run_step(folder: Path, grid: str, n_fit: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", STEP, str(folder), grid, str(n_fit),
                           str(FIT_LIMIT_S)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"step grid={grid} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(res: dict) -> None:
    ok = res["build_s"] <= BUILD_LIMIT_S and res["peak_gb"] <= BUILD_LIMIT_GB
    print(f"  grid {res['grid']:<5} {res['customers']:>9,} customers -> {res['rows']:>11,} rows, "
          f"{res['departures']:,} departures at {res['event_times']:,} distinct times")
    print(f"    read Parquet {res['read_s']:5.1f} s, build {res['build_s']:6.1f} s, "
          f"peak RSS {res['peak_gb']:5.2f} GB (read + build)  "
          f"[{'within' if ok else 'OVER'} {BUILD_LIMIT_S:.0f} s / {BUILD_LIMIT_GB:.0f} GB]")
    for fit in res["fits"]:
        line = (f"    {fit['fitter']:<24} {fit['customers']:>9,} customers "
                f"({fit['rows']:>10,} rows): {fit['seconds']:7.1f} s")
        if "full_estimate_s" in fit and fit["customers"] < res["customers"]:
            line += (f"  -> SUBSAMPLE ONLY: full fit estimated at "
                     f"{fit['full_estimate_s'] / 60:.1f} min (not run: the estimate is over "
                     f"{FIT_LIMIT_S / 60:.0f} min or one more 4x step could be)")
        print(line)


def recommend(results: dict) -> None:
    def cost(grid):
        fits = [f for f in results[grid]["fits"] if f["fitter"].startswith("CoxPH")]
        if not fits:
            return None
        f = fits[-1]
        return f["seconds"] / f["rows"] * results[grid]["rows"]

    month, week = cost("month"), cost("week")
    print("\nrecommendation:")
    if month is None or week is None:
        print("  keep grid 'month' (fit times not measured)")
        return
    print(f"  estimated full CoxPHFitter fit: month {month / 60:.1f} min, week {week / 60:.1f} min "
          f"({results['week']['rows'] / results['month']['rows']:.1f}x the rows)")
    if week <= 1.2 * month:
        print("  'week' costs about the same as 'month': either is fine; keep 'month' as default")
    else:
        print("  keep 'month' as the default: whole tenure months give few distinct event times "
              "and the fastest fits; use 'week' or 'day' for a sensitivity check on a sample")


def main() -> None:
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    args = [int(a) for a in sys.argv[1:] if not a.startswith("--")]
    n, n_day, n_fit = (args + [1_000_000, 100_000, 20_000][len(args):])[:3]
    if "--no-fit" in flags:
        n_fit = 0
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for size, grids in ((n, ("month", "week")), (n_day, ("day",))):
            folder = Path(tmp) / str(size)
            t0 = time.perf_counter()
            source = make_data(folder, size, own="--numpy" in flags)
            meta = json.loads((folder / "meta.json").read_text())
            print(f"\n{size:,} customers, {meta['events']:,} events from {source} "
                  f"(generated in {time.perf_counter() - t0:.0f} s, not counted)")
            for grid in grids:
                results[grid] = run_step(folder, grid, n_fit)
                report(results[grid])
        recommend(results)


if __name__ == "__main__":
    main()
