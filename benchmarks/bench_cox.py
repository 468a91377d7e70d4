"""One Cox fit on the episodes of simulated customers: the engine vs lifelines vs R.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_cox.py [--customers N] [--only engine,lifelines,ctv,r]
                                             [--table DIR]

Default 1,000,000 customers (the simulator's defaults: about 17M monthly episodes). The
script simulates the customers, builds the study's episodes (``build_timeline``,
default options) and writes the table once, as raw float64 columns (``<col>.f64``) that
both Python and base R read without parsing. Then each fitter runs in its own process,
one after the other, on the identical table with every covariate of the full model and
Efron ties (``--table DIR`` keeps the table in DIR and reuses it on the next run when it
holds one of the same size: building it for 1M customers takes about 4 minutes; the
figures of each fitter are kept there too, so a later ``--only engine`` prints beside the
earlier lifelines and R figures, each with the load average and time it was measured at):

- ``engine``: ``retention_study.survival.CoxFitter`` (the study's engine);
- ``lifelines``: ``CoxPHFitter().fit(..., entry_col="start")``, as the study used to;
- ``ctv``: lifelines ``CoxTimeVaryingFitter``;
- ``r``: ``survival::coxph(Surv(start, stop, event) ~ ., ties = "efron")`` through
  ``Rscript`` (Debian/Ubuntu: ``apt-get install r-cran-survival``); without Rscript the
  script says so and goes on.

It prints each fitter's seconds (the fit call; R's reading time separately) and CPU
seconds of the fit (user + sys: the fairer comparison on a shared machine), peak memory
(VmHWM of its process, reading the table included), the speed-up of the engine and max
|delta beta| against the engine. Target (issue 10): the engine >= 20x faster than
lifelines and R. lifelines and R need about 5 minutes and 13 GB each at 1M customers:
never run this beside another large job. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FITTERS = ("engine", "lifelines", "ctv", "r")
SPEEDUP_TARGET = 20.0

PY_FIT = r"""
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd
folder, which = Path(sys.argv[1]), sys.argv[2]
meta = json.loads((folder / "meta.json").read_text())
df = pd.DataFrame({c: np.fromfile(folder / f"{c}.f64") for c in meta["columns"]})
covs = meta["covariates"]
from lifelines import CoxPHFitter, CoxTimeVaryingFitter  # imports are not timed
from retention_study.survival import CoxFitter
t0, c0 = time.perf_counter(), time.process_time()
if which == "engine":
    fit = CoxFitter(ties="efron").fit(df, covs)
    beta, ll = fit.params_, fit.log_likelihood_
elif which == "lifelines":
    fit = CoxPHFitter().fit(df[["start", "stop", "event", *covs]], "stop", "event",
                            entry_col="start")
    beta, ll = fit.params_, fit.log_likelihood_
else:
    fit = CoxTimeVaryingFitter().fit(df[["id", "start", "stop", "event", *covs]], id_col="id",
                                     start_col="start", stop_col="stop", event_col="event")
    beta, ll = fit.params_, fit.log_likelihood_
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_gb": int(hwm[0].split()[1]) / 1024 ** 2,
                  "beta": {c: float(beta[c]) for c in covs}, "loglik": float(ll)}))
"""

R_FIT = r"""
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
meta <- strsplit(readLines(file.path(folder, "columns.txt")), " ")
cols <- meta[[1]]; covs <- meta[[2]]; n <- as.numeric(meta[[3]])
t0 <- proc.time()[["elapsed"]]
df <- data.frame(lapply(setNames(cols, cols), function(c)
  readBin(file.path(folder, paste0(c, ".f64")), "double", n = n)), check.names = FALSE)
t1 <- proc.time()[["elapsed"]]
c1 <- sum(proc.time()[c("user.self", "sys.self")])
form <- as.formula(paste("Surv(start, stop, event) ~", paste0("`", covs, "`", collapse = " + ")))
fit <- coxph(form, data = df, ties = "efron")
t2 <- proc.time()[["elapsed"]]
c2 <- sum(proc.time()[c("user.self", "sys.self")])
status <- readLines("/proc/self/status")
hwm <- as.numeric(gsub("[^0-9]", "", status[grepl("^VmHWM", status)]))
b <- coef(fit)
cat(sprintf('{"seconds": %.6f, "cpu_seconds": %.6f, "read_seconds": %.6f, "peak_gb": %.6f, "loglik": %.10f, "beta": {%s}}\n',
    t2 - t1, c2 - c1, t1 - t0, hwm / 1024^2, fit$loglik[2],
    paste(sprintf('"%s": %.12g', covs, b), collapse = ", ")))
"""


def write_table(n: int, folder: Path) -> dict:
    """Simulate ``n`` customers, build their episodes and write them as float64 columns."""
    from retention_study.config_file import load_config
    from retention_study.data.load import load_study_data
    from retention_study.data.simulate import write_simulation
    from retention_study.episodes.timeline import build_timeline

    raw = folder / "raw"
    write_simulation(raw, n_customers=n, seed=1)
    cfg = load_config(ROOT / "configs" / "default.yaml",
                      [f"data.{k}={raw / k}.csv"
                       for k in ("customers", "price_events", "contact_events")])
    t0 = time.perf_counter()
    data = load_study_data(cfg)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tl = build_timeline(data)
    build_s = time.perf_counter() - t0
    ep = tl.episodes
    covs = list(tl.covariates)
    ep = ep.assign(id=ep["customer_id"].factorize()[0].astype(float))
    columns = ["id", "start", "stop", "event", *covs]
    for c in columns:
        ep[c].to_numpy(dtype=np.float64).tofile(folder / f"{c}.f64")
    meta = {"simulated": n, "customers": tl.n_customers, "rows": len(ep), "departures": tl.n_departures,
            "event_times": int(ep.loc[ep["event"] == 1, "stop"].nunique()),
            "columns": columns, "covariates": covs, "load_s": load_s, "build_s": build_s}
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (folder / "columns.txt").write_text(f"{' '.join(columns)}\n{' '.join(covs)}\n{len(ep)}\n",
                                        encoding="utf-8")
    shutil.rmtree(raw)
    return meta


def reuse_table(n: int, folder: Path) -> dict | None:
    """The table kept in ``folder`` by an earlier run for ``n`` customers, else None."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("simulated") != n:
        return None
    return meta


def run_fitter(which: str, folder: Path) -> dict | str:
    """One fit in its own process: its figures, or why it did not run."""
    if which == "r":
        rscript = shutil.which("Rscript")
        if rscript is None:
            return ("R is missing: install it to compare (Debian/Ubuntu: "
                    "apt-get install r-cran-survival)")
        script = folder / "fit.R"
        script.write_text(R_FIT, encoding="utf-8")
        cmd = [rscript, str(script), str(folder)]
    else:
        cmd = [sys.executable, "-c", PY_FIT, str(folder), which]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_s"] = wall
    return out


def print_results(results: dict) -> None:
    """The fitters side by side: wall and CPU seconds, the engine's speed-up on each."""
    ref = results.get("engine")
    print(f"\n{'fitter':<11}{'fit s':>9}{'CPU s':>9}{'peak GB':>9}{'engine x':>10}"
          f"{'x (CPU)':>9}{'max |dbeta|':>13}{'loglik':>18}  load, measured")
    for w, r in results.items():
        if isinstance(r, str):
            print(f"{w:<11}{r}")
            continue
        speed = speed_cpu = dbeta = ""
        if isinstance(ref, dict) and w != "engine":
            speed = f"{r['seconds'] / ref['seconds']:.1f}"
            if r.get("cpu_seconds") and ref.get("cpu_seconds"):
                speed_cpu = f"{r['cpu_seconds'] / ref['cpu_seconds']:.1f}"
            dbeta = f"{max(abs(r['beta'][c] - ref['beta'][c]) for c in ref['beta']):.2e}"
        cpu = f"{r['cpu_seconds']:.1f}" if r.get("cpu_seconds") is not None else ""
        extra = f"  (reading {r['read_seconds']:.0f} s)" if "read_seconds" in r else ""
        print(f"{w:<11}{r['seconds']:9.1f}{cpu:>9}{r['peak_gb']:9.2f}{speed:>10}{speed_cpu:>9}"
              f"{dbeta:>13}{r['loglik']:18.4f}  {r.get('load', '?')}, "
              f"{r.get('measured', '?')}{extra}")
    if isinstance(ref, dict):
        for w in ("lifelines", "r"):
            r = results.get(w)
            if isinstance(r, dict):
                x = r["seconds"] / ref["seconds"]
                verdict = "met" if x >= SPEEDUP_TARGET else "NOT met"
                print(f"engine vs {w}: {x:.1f}x faster (target >= {SPEEDUP_TARGET:g}x: "
                      f"{verdict})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(FITTERS),
                        help="comma-separated subset of " + ", ".join(FITTERS))
    parser.add_argument("--table", type=Path, default=None,
                        help="keep the table in this folder and reuse it when it is there")
    args = parser.parse_args(argv)
    which = [w.strip() for w in args.only.split(",") if w.strip()]
    folder = args.table or Path(tempfile.mkdtemp(prefix="bench_cox_"))
    try:
        meta = reuse_table(args.customers, folder) if args.table else None
        if meta is None:
            folder.mkdir(parents=True, exist_ok=True)
            meta = write_table(args.customers, folder)
        else:
            print(f"reusing the table in {folder}")
        print(f"{meta['customers']:,} customers, {meta['rows']:,} episodes, "
              f"{meta['departures']:,} departures at {meta['event_times']} distinct times, "
              f"{len(meta['covariates'])} covariates (load {meta['load_s']:.0f} s, "
              f"episodes {meta['build_s']:.0f} s)")
        stored = folder / "results.json"
        results = {}
        if args.table and stored.exists():  # earlier runs on this table, shown unless rerun
            results = json.loads(stored.read_text(encoding="utf-8"))
        for w in which:
            load = Path("/proc/loadavg").read_text().split()[0] if Path(
                "/proc/loadavg").exists() else "?"
            out = run_fitter(w, folder)
            if isinstance(out, dict):
                out["load"] = load
                out["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            results[w] = out
            if args.table:
                stored.write_text(json.dumps(results, indent=1), encoding="utf-8")
        print_results({w: results[w] for w in FITTERS if w in results})
    finally:
        if args.table is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
