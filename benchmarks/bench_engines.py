"""The study's heavy steps on each engine: episodes and the four block Cox fits.

    bench_engines.py [--customers N] [--engines pandas,duckdb,spark] [--memory-limit 4GB]
                     [--data DIR] [--keep]

One simulated world (Parquet; above 1M customers written in parts of 1M, each part its own
seed and id prefix) is run through each engine in its own process: pandas (the data
contract, ``build_timeline``, ``BlockModels``), DuckDB and Spark (``register_files``, the
episodes in SQL, the four block models by :class:`RelationalCoxFitter`, one aggregate
query per Newton evaluation). Printed per engine: seconds per step, peak RSS of the
process tree (the JVM included for Spark), episodes, departures, the column sums of the
episode table and each model's coefficients; then the largest differences between
engines (episodes: column sums; models: coefficients).

What is not here: the cross-validation, bootstrap, what-if levers and descriptive steps
of the study run on pandas after the episodes (docs/scale.md says what that costs).
Run heavy sizes under ``flock /work/coord/big.lock``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import TreeMemory  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PART = 1_000_000
AS_OF = "2026-06-30"
OBS = "2023-06-30"
CONTROLS = ["plan"]


def simulate_world(n: int, folder: Path) -> dict:
    """Parquet files of ``n`` simulated customers (parts of 1M: memory stays ~3 GB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from retention_study.data.simulate import simulate

    names = ("customers", "price_events", "contact_events")
    if n <= PART:
        paths = {k: folder / f"{k}.parquet" for k in names}
        if not all(p.exists() for p in paths.values()):
            folder.mkdir(parents=True, exist_ok=True)
            sim = simulate(n, 20260630, "contact", AS_OF)
            for k in names:
                pq.write_table(pa.Table.from_pandas(getattr(sim, k), preserve_index=False),
                               paths[k])
        return {k: str(v) for k, v in paths.items()}
    for k in names:
        (folder / k).mkdir(parents=True, exist_ok=True)
    for part in range(-(-n // PART)):
        size = min(PART, n - part * PART)
        if all((folder / k / f"part-{part:03d}.parquet").exists() for k in names):
            continue
        sim = simulate(size, 20260630 + part, "contact", AS_OF)
        for k in names:
            frame = getattr(sim, k)
            frame["customer_id"] = f"P{part:03d}-" + frame["customer_id"].astype(str)
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                           folder / k / f"part-{part:03d}.parquet")
        del sim
    return {k: str(folder / k / "*.parquet") for k in names}


def _model_columns(blocks: dict) -> dict:
    from retention_study.analysis.models import BASE_BLOCKS, MODELS

    return {name: [c for b in (*BASE_BLOCKS, *extra) for c in blocks[b]]
            for name, extra in MODELS.items()}


def worker(engine: str, files: dict, memory_limit: str | None, work: Path) -> dict:
    """One engine's run, in this process; returns the figures as a dict."""

    mem = TreeMemory(every=0.25)
    mem.start()
    steps, out = {}, {"engine": engine}
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        steps[name] = round(now - t, 1)
        t = now

    if engine == "pandas":
        from retention_study.analysis.models import BlockModels
        from retention_study.config import resolve_config
        from retention_study.data.load import load_study_data
        from retention_study.episodes.timeline import build_timeline

        cfg = resolve_config({"data": {**files, "controls": CONTROLS, "as_of": AS_OF,
                                       "observation_start": OBS}})
        data = load_study_data(cfg)
        lap("imports + load + data contract")
        tl = build_timeline(data)
        lap("episodes")
        eps = tl.episodes
        out["sums"] = {c: float(eps[c].sum()) for c in ["start", "event", *tl.covariates]}
        out["rows"], out["departures"] = len(eps), int(eps["event"].sum())
        cols = _model_columns(tl.blocks)
        bm = BlockModels(check_ph=False).fit(tl)
        lap("four block Cox fits")
        out["coef"] = {m: bm.fits[m].fitter.params_.tolist() for m in cols if cols[m]}
    else:
        from retention_study.data.schema import StudyData
        from retention_study.engines.base import build_episodes
        from retention_study.engines.relational_cox import RelationalCoxData, RelationalCoxFitter

        if engine == "duckdb":
            from retention_study.engines.duckdb_engine import DuckDBEngine

            eng = DuckDBEngine(memory_limit=memory_limit, database=str(work / "bench.duckdb"),
                               temp_directory=str(work / "spill"))
        else:
            from retention_study.engines.spark_engine import SparkEngine, local_session

            eng = SparkEngine(local_session("local[2]", **{
                "spark.driver.memory": memory_limit.replace("GB", "g") if memory_limit
                else "4g", "spark.local.dir": str(work / "spark-tmp"),
                "shuffle_partitions": 8}))
            eng.spark.sparkContext.setLogLevel("ERROR")
        lap("imports + engine start")
        eng.register_files(files["customers"], files["price_events"], files["contact_events"],
                           controls=CONTROLS)
        import pandas as pd

        data = StudyData("events", pd.Timestamp(AS_OF), roles={"controls": CONTROLS},
                         observation_start=pd.Timestamp(OBS))
        etl = build_episodes(eng, data)
        lap("episodes")
        cov = etl.covariates
        sums = eng.fetch("SELECT " + ", ".join(
            f'SUM(CAST("{c}" AS DOUBLE)) AS "{c}"' for c in ["start", "event", *cov])
            + f" FROM {etl.table}")
        out["sums"] = {c: float(sums[c].iloc[0]) for c in ["start", "event", *cov]}
        out["rows"], out["departures"] = etl.n_rows, etl.n_departures
        lap("episode column sums")
        cols = _model_columns(etl.blocks)
        rd = RelationalCoxData(eng, etl.table, cols["both"])
        lap("Cox: slots and centred rows")
        out["coef"], out["evaluations"] = {}, {}
        for m, c in cols.items():
            if not c:
                continue
            before = rd.queries
            fit = RelationalCoxFitter().fit(rd, c)
            out["coef"][m] = fit.params_.tolist()
            out["evaluations"][m] = (rd.queries - before) // 2
            lap(f"Cox fit {m}")
        if engine == "duckdb":
            size = sum(p.stat().st_size for p in work.glob("bench.duckdb*"))
            out["database_gb"] = round(size / 1e9, 2)
    import resource

    out["steps"] = steps
    out["total_s"] = round(sum(steps.values()), 1)
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    out["cpu_s"] = round(sum(r.ru_utime + r.ru_stime for r in ru), 1)
    out["peak_gb"] = round(mem.stop(), 2)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--engines", default="pandas,duckdb,spark")
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--data", type=Path, default=None, help="world folder (made if missing)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--files", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.files), args.memory_limit,
                                args.work)))
        return
    folder = args.data or Path(tempfile.gettempdir()) / f"bench_engines_{args.customers}"
    t0 = time.perf_counter()
    files = simulate_world(args.customers, folder)
    print(f"world: {args.customers:,} customers in {folder} ({time.perf_counter() - t0:.0f} s "
          "to simulate, or found)", flush=True)
    results = []
    for engine in args.engines.split(","):
        work = Path(tempfile.mkdtemp(prefix=f"bench_{engine}_", dir=folder))
        cmd = [sys.executable, __file__, "--worker", engine, "--files", json.dumps(files),
               "--work", str(work)] + (["--memory-limit", args.memory_limit]
                                       if args.memory_limit else [])
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if run.returncode:
            print(f"== {engine}: FAILED\n{run.stderr[-3000:]}", flush=True)
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"== {engine}: {r['rows']:,} episodes, {r['departures']:,} departures, "
              f"{r['total_s']} s wall, {r['cpu_s']} s CPU (this process; a JVM's is not counted), "
              f"peak {r['peak_gb']} GB"
              + (f", database {r['database_gb']} GB" if "database_gb" in r else ""))
        for step, sec in r["steps"].items():
            print(f"   {step:32s} {sec:8.1f} s")
        if "evaluations" in r:
            print(f"   likelihood evaluations per fit: {r['evaluations']}")
        print(flush=True)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    if len(results) > 1:
        import numpy as np

        ref = results[0]
        for r in results[1:]:
            dsum = max(abs(r["sums"][k] - v) / max(abs(v), 1.0) for k, v in ref["sums"].items())
            dcoef = max(float(np.max(np.abs(np.subtract(r["coef"][m], ref["coef"][m]))))
                        for m in ref["coef"])
            print(f"{r['engine']} vs {ref['engine']}: episodes {r['rows'] - ref['rows']:+d} rows, "
                  f"largest relative difference of a column sum {dsum:.1e}; largest "
                  f"|coefficient difference| {dcoef:.1e}")


if __name__ == "__main__":
    main()
