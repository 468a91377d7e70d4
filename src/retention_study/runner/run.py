"""One run, start to end: config, inputs, notebook, page, checks, folder.

:func:`run_config` never raises for a failed run: the :class:`RunOutcome` carries
the exit status (2 bad data or config, 1 an analysis failure) and every problem.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retention_study.analysis.results import Results
from retention_study.config import KERNEL_NAME, LOGGER_NAME, REPORTS_DIR, STUDY_NOTEBOOK
from retention_study.config_file import load_config
from retention_study.errors import ConfigError, RetentionStudyError
from retention_study.runner.checks import check_page
from retention_study.runner.execute import RunFailed, execute_notebook, kernel_installed
from retention_study.runner.folders import check_writable, publish, safe_name, stage_dir, write_json
from retention_study.runner.index import write_index
from retention_study.runner.manifest import describe_inputs, run_facts
from retention_study.runner.plan import RunSpec
from retention_study.runner.progress import bar
from retention_study.runner.render import render_html, write_failed_notice

log = logging.getLogger(LOGGER_NAME)
_UTC = dt.timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+


@dataclass
class RunOutcome:
    """What one run produced; the CLI prints :meth:`line` and exits with ``exit_status``.

    Examples
    --------
    >>> RunOutcome("demo", ok=False, exit_status=2, reason="c.csv: bad date").line()
    'demo: FAILED (exit 2): c.csv: bad date'
    """

    name: str
    ok: bool
    exit_status: int = 0
    run_dir: Path | None = None
    reason: str = ""
    verdict: str | None = None

    def line(self) -> str:
        """One line: where the report is, or why there is none (the first problem)."""
        return self.lines()[0]

    def lines(self) -> list[str]:
        """One line per problem (a config may have several), each naming the run.

        Examples
        --------
        >>> RunOutcome("demo", ok=False, exit_status=2, reason="a\\nb").lines()
        ['demo: FAILED (exit 2): a', 'demo: FAILED (exit 2): b']
        """
        if self.ok:
            verdict = f" ({self.verdict})" if self.verdict else ""
            return [f"{self.name}: {self.run_dir / 'report.html'}{verdict}"]
        where = f" [{self.run_dir}]" if self.run_dir else ""
        return [f"{self.name}: FAILED (exit {self.exit_status}): {problem}{where}"
                for problem in self.reason.splitlines() or [""]]


@dataclass
class _RunLog:
    """``run.log`` of one run plus step timings; lines also go to the package logger."""

    path: Path
    name: str
    steps: dict[str, float] = field(default_factory=dict)

    def write(self, message: str, level: int = logging.INFO, echo: bool = True) -> None:
        stamp = dt.datetime.now(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {logging.getLevelName(level)} {message}\n")
        if echo:
            log.log(level, "%s: %s", self.name, message)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        self.write(f"{name} ...", logging.DEBUG)
        try:
            yield
        finally:
            self.steps[name] = round(time.perf_counter() - t0, 3)
            self.write(f"{name} took {self.steps[name]:.1f} s", logging.DEBUG)


def run_config(
    config: Path,
    overrides: Sequence[str] = (),
    out_dir: Path = REPORTS_DIR,
    *,
    notebook: Path = STUDY_NOTEBOOK,
    progress: bool | None = None,
    spec: RunSpec | None = None,
    update_index: bool = True,
) -> RunOutcome:
    """Run the study for one config into a new run folder.

    Parameters
    ----------
    config : Path
        YAML run config.
    overrides : sequence of str
        ``key=value`` overrides (``-p``).
    out_dir : Path
        Reports folder; the run goes to ``out_dir/<name>/<timestamp>/``.
    notebook : Path
        The notebook to execute (tests pass a small fixture).
    progress : bool or None
        Papermill progress bar; None = when stderr is a terminal.
    spec : RunSpec, optional
        Set by :func:`run_many` for grid and batch runs (overrides ``overrides``).
    update_index : bool
        Rewrite ``out_dir/index.html`` afterwards.

    Returns
    -------
    RunOutcome
        Never raises for a failed run: the outcome carries the exit status. A config
        error leaves a failed run folder with every problem (the index lists it) and
        starts no kernel.

    Examples
    --------
    >>> outcome = run_config(Path("configs/default.yaml"))  # doctest: +SKIP
    >>> outcome.ok, outcome.line()  # doctest: +SKIP
    (True, 'default: reports/default/20260701T060000Z/report.html (contact)')
    """
    spec = spec or RunSpec(Path(config), tuple(overrides))
    out_dir = Path(out_dir)
    fallback = safe_name(f"{spec.config.stem}-{spec.suffix}" if spec.suffix else spec.config.stem)
    try:
        check_writable(out_dir)
    except ConfigError as exc:
        return RunOutcome(fallback, False, exc.exit_status, reason=str(exc))
    try:
        cfg = load_config(spec.config, list(spec.overrides))
    except RetentionStudyError as exc:  # before any kernel: the index still lists it
        outcome = _failed_before_start(out_dir, fallback, spec, exc.exit_status, str(exc))
    else:
        if spec.suffix:
            cfg["name"] = f"{cfg['name']}-{spec.suffix}"
        outcome = _start(cfg, spec, out_dir, Path(notebook), progress)
    if update_index and outcome.run_dir is not None:
        write_index(out_dir)
    return outcome


def _start(cfg: dict[str, Any], spec: RunSpec, out_dir: Path, notebook: Path,
           progress: bool | None) -> RunOutcome:
    name = safe_name(cfg["name"])
    if not notebook.is_file():
        return RunOutcome(name, False, 1, reason=f"study notebook not found: {notebook}")
    if not kernel_installed(KERNEL_NAME):
        return RunOutcome(name, False, 1, reason=f"Jupyter kernel '{KERNEL_NAME}' is not "
                          "installed (run `make setup`)")
    if progress is None:
        progress = sys.stderr.isatty()
    return _run(cfg, name, spec, out_dir, notebook, progress)


def _failed_before_start(out_dir: Path, name: str, spec: RunSpec, status: int,
                         reason: str) -> RunOutcome:
    """A run refused before it started (bad config): a FAILED folder the index shows."""
    started = dt.datetime.now(_UTC)
    manifest = run_facts(None, name, spec, None, started)
    manifest.update(status="failed", exit_status=status, reason=reason,
                    problems=reason.splitlines(),
                    finished=dt.datetime.now(_UTC).isoformat(timespec="seconds"))
    try:
        stage = stage_dir(out_dir, name, started)
        (stage / "run.log").write_text(f"{started:%Y-%m-%dT%H:%M:%SZ} ERROR FAILED (exit "
                                       f"{status}): {reason}\n", encoding="utf-8")
        write_failed_notice(stage, manifest)
        final = publish(stage, out_dir, name, started, False, manifest)
    except OSError as exc:
        log.debug("cannot keep a folder for the failed run %s: %s", name, exc)
        return RunOutcome(name, False, status, reason=reason)
    return RunOutcome(name, False, status, final, reason)


def _run(cfg: dict[str, Any], name: str, spec: RunSpec, out_dir: Path, notebook: Path,
         progress: bool) -> RunOutcome:
    started = dt.datetime.now(_UTC)
    stage = stage_dir(out_dir, name, started)
    rlog = _RunLog(stage / "run.log", name)
    manifest = run_facts(cfg, name, spec, notebook, started)
    manifest["steps"] = rlog.steps
    # Absolute: the notebook may change its working directory.
    manifest["parameters"]["results_path"] = os.path.abspath(stage / "results.json")
    rlog.write(f"run {name} from {spec.config} {' '.join(spec.overrides)}".rstrip())
    t0 = time.perf_counter()
    try:
        results = _steps(cfg, name, notebook, stage, rlog, manifest, progress)
    except (RunFailed, RetentionStudyError) as exc:
        reason = exc.reason if isinstance(exc, RunFailed) else str(exc)
        return _finish_failed(stage, out_dir, rlog, manifest, exc.exit_status, reason, t0)
    except Exception as exc:  # noqa: BLE001 - a scheduled run must end in a marked folder
        first = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {first[0] if first else ''}"
        return _finish_failed(stage, out_dir, rlog, manifest, 1, reason, t0)
    return _finish_ok(stage, out_dir, rlog, manifest, results, t0)


def _steps(cfg: dict[str, Any], name: str, notebook: Path, run_dir: Path, rlog: _RunLog,
           manifest: dict[str, Any], progress: bool) -> Results:
    with rlog.step("inputs"):
        manifest["inputs"] = describe_inputs(cfg, progress)
    write_json(run_dir / "manifest.json", manifest)
    with rlog.step("execute"):
        execute_notebook(notebook, run_dir / "report.ipynb", manifest["parameters"],
                         cfg["report"]["timeout_per_cell"], progress)
    with bar(2, "Rendering and checking the report", progress) as b:
        with rlog.step("render"):
            page, stderr = render_html(run_dir / "report.ipynb", run_dir / "report.html",
                                       title=f"{name}: retention study",
                                       source_dir=notebook.resolve().parent)
        b.update(1)
        for text in stderr:
            rlog.write("notebook stderr: " + text.rstrip(), logging.DEBUG)
        with rlog.step("checks"):
            check_page(page, cfg, run_dir, manifest)
        b.update(1)
    if not (run_dir / "results.json").is_file():
        raise RunFailed(1, "the notebook wrote no results.json (parameter results_path)")
    return Results.read(run_dir / "results.json")  # a results.json it cannot read fails


def _finish_ok(stage: Path, out_dir: Path, rlog: _RunLog, manifest: dict[str, Any],
               results: Results, t0: float) -> RunOutcome:
    verdict = results.verdict
    manifest.update(status="ok", exit_status=0, verdict=verdict,
                    verdict_sentence=results.verdict_sentence, coverage=results.coverage,
                    finished=dt.datetime.now(_UTC).isoformat(timespec="seconds"))
    manifest["steps"]["total"] = round(time.perf_counter() - t0, 3)
    rlog.write("ok")
    run_dir = publish(stage, out_dir, manifest["name"], _started(manifest), True, manifest)
    log.info("%s: ok: %s", manifest["name"], run_dir / "report.html")
    return RunOutcome(manifest["name"], True, 0, run_dir, verdict=verdict)


def _started(manifest: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(manifest["started"])


def _finish_failed(stage: Path, out_dir: Path, rlog: _RunLog, manifest: dict[str, Any],
                   status: int, reason: str, t0: float) -> RunOutcome:
    manifest.update(status="failed", exit_status=status, reason=reason,
                    problems=reason.splitlines(),
                    finished=dt.datetime.now(_UTC).isoformat(timespec="seconds"))
    manifest["steps"]["total"] = round(time.perf_counter() - t0, 3)
    # The reason reaches stderr once, from the CLI; the log line only announces it.
    rlog.write(f"FAILED (exit {status}): {reason}", logging.ERROR, echo=False)
    write_failed_notice(stage, manifest)
    failed_dir = publish(stage, out_dir, manifest["name"], _started(manifest), False, manifest)
    log.info("%s: failed (exit %d): %s", manifest["name"], status, failed_dir)
    return RunOutcome(manifest["name"], False, status, failed_dir, reason)
