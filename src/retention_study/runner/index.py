"""The index page of a reports folder: every run, newest first, and each batch's summary.

Reads each run's ``manifest.json`` (written by the runner; its verdict and coverage
were read from the run's :class:`~retention_study.analysis.results.Results` when it ended).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from retention_study.config import LOGGER_NAME
from retention_study.runner.folders import FAILED_SUFFIX, reports_lock, resolve_latest
from retention_study.runner.render import FAILED_NOTICE, INDEX_TEMPLATE, templates

log = logging.getLogger(LOGGER_NAME)


def collect_runs(out_dir: Path) -> list[dict[str, Any]]:
    """Every run folder's manifest under ``out_dir``, newest first, with link paths."""
    runs = []
    for path in sorted(out_dir.glob("*/*/manifest.json")):
        run_dir = path.parent
        # Staging (.incomplete), `latest` and other hidden entries are not runs.
        if (run_dir.is_symlink() or run_dir.name == "latest"
                or run_dir.name.startswith(".") or run_dir.parent.name.startswith(".")):
            continue
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict):
            continue
        rel = run_dir.relative_to(out_dir).as_posix()
        manifest["dir"] = rel
        manifest["links"] = {f: f"{rel}/{f}" for f in
                             ("report.html", FAILED_NOTICE, "report.ipynb", "results.json",
                              "manifest.json", "run.log") if (run_dir / f).is_file()}
        manifest["is_latest"] = resolve_latest(run_dir.parent) == run_dir
        manifest.setdefault("verdict", None)
        manifest["problems"] = [str(p) for p in manifest.get("problems")
                                or str(manifest.get("reason") or "").splitlines()]
        if manifest.get("status") == "running" and run_dir.name.endswith(FAILED_SUFFIX):
            manifest["status"] = "failed"
        runs.append(manifest)
    runs.sort(key=lambda m: (str(m.get("started", "")), m["dir"]), reverse=True)
    return runs


def write_index(out_dir: Path) -> Path | None:
    """Write ``out_dir/index.html``: every run and a summary of each batch.

    Returns None (and logs why) when the folder cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> page = write_index(Path(tempfile.mkdtemp()))
    >>> "No runs yet" in page.read_text()
    True
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with reports_lock(out_dir):
            return _write_index(out_dir)
    except OSError as exc:
        log.warning("cannot write %s: %s", out_dir / "index.html", exc)
        return None


def _write_index(out_dir: Path) -> Path:
    runs = collect_runs(out_dir)
    batches: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        batch = run.get("batch") or {}
        if batch.get("id") and (batch.get("size") or 1) > 1:
            batches.setdefault(batch["id"], []).append(run)
    page = templates().get_template(INDEX_TEMPLATE).render(
        runs=runs, batches=sorted(batches.items(), reverse=True),
        data_names=lambda run: ", ".join(Path(i["path"]).name for i in run.get("inputs", [])),
    )
    target = out_dir / "index.html"
    tmp = out_dir / f".index-{os.getpid()}.html"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target
