"""Batches: several configs and/or a parameter grid, ``jobs`` at a time in processes.

Each run gets its own folder; the index is written once, when the batch ends.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from retention_study.config import LOGGER_NAME, REPORTS_DIR, STUDY_NOTEBOOK
from retention_study.errors import ConfigError
from retention_study.runner.folders import safe_name
from retention_study.runner.index import write_index
from retention_study.runner.plan import RunSpec, plan_runs
from retention_study.runner.run import RunOutcome, run_config

log = logging.getLogger(LOGGER_NAME)
_UTC = dt.timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+


def run_many(
    configs: Sequence[Path],
    overrides: Sequence[str] = (),
    out_dir: Path = REPORTS_DIR,
    grid: Sequence[str] = (),
    jobs: int = 1,
    progress: bool | None = None,
    *,
    notebook: Path = STUDY_NOTEBOOK,
) -> list[RunOutcome]:
    """Run several configs and/or a parameter grid, ``jobs`` at a time in processes.

    Parameters
    ----------
    configs : sequence of Path
        YAML run configs.
    overrides : sequence of str
        ``key=value`` overrides applied to every run.
    out_dir : Path
        Reports folder (one run folder per run, one ``index.html``).
    grid : sequence of str
        ``key=v1,v2`` options: one run per combination of values, the run name
        suffixed with the values.
    jobs : int
        Parallel processes (progress bars are off when > 1).
    progress : bool or None
        Papermill progress bar; None = when stderr is a terminal.
    notebook : Path
        The notebook to execute.

    Returns
    -------
    list of RunOutcome
        In the order of the plan (configs outer, grid inner).

    Examples
    --------
    >>> outcomes = run_many([Path("configs/default.yaml")],  # doctest: +SKIP
    ...                     grid=["study.lag_days=0,30"], jobs=2)
    >>> [o.name for o in outcomes]  # doctest: +SKIP
    ['default-0', 'default-30']
    """
    out_dir = Path(out_dir)
    try:
        batch = dt.datetime.now(_UTC).strftime("%Y%m%dT%H%M%SZ")
        specs = plan_runs(configs, overrides, grid, batch=batch)
    except ConfigError as exc:
        return [RunOutcome("grid", False, exc.exit_status, reason=str(exc))]
    if progress is None:
        progress = sys.stderr.isatty()
    kwargs = {"out_dir": out_dir, "notebook": Path(notebook), "update_index": False,
              "progress": progress and jobs <= 1}
    log.debug("%d run(s), %d at a time", len(specs), max(1, min(jobs, len(specs))))
    if jobs <= 1 or len(specs) == 1:
        outcomes = [run_config(s.config, spec=s, **kwargs) for s in specs]
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(specs))) as pool:
            futures = [pool.submit(run_config, s.config, spec=s, **kwargs) for s in specs]
            outcomes = [_result(f, s) for f, s in zip(futures, specs, strict=True)]
    if any(o.run_dir is not None for o in outcomes):  # else nothing new (or no folder)
        write_index(out_dir)
    return outcomes


def _result(future: concurrent.futures.Future, spec: RunSpec) -> RunOutcome:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a dead worker fails its run, not the batch
        name = safe_name(f"{spec.config.stem}-{spec.suffix}" if spec.suffix else spec.config.stem)
        return RunOutcome(name, False, 1, reason=f"worker process failed: "
                          f"{type(exc).__name__}: {exc}")
