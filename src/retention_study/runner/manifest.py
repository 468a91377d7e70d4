"""The manifest of a run: what it is, its input files, package versions, git state.

Examples
--------
>>> input_specs({"data": {"format": "events", "customers": "c.csv",
...              "price_events": "p.csv", "contact_events": "e.csv"}})
['c.csv', 'p.csv', 'e.csv']
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from retention_study.config import KERNEL_NAME, LOGGER_NAME, PROJECT_ROOT
from retention_study.errors import DataContractError
from retention_study.runner.plan import RunSpec
from retention_study.runner.progress import bar

log = logging.getLogger(LOGGER_NAME)

#: Packages whose versions every manifest records.
VERSIONED_PACKAGES = (
    "retention-study", "pandas", "numpy", "scipy", "lifelines", "matplotlib", "seaborn",
    "pyarrow", "duckdb", "pyyaml", "papermill", "nbconvert", "nbformat", "ipykernel",
)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.txt"; _ = p.write_bytes(b"abc")
    >>> sha256_file(p)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def input_specs(cfg: dict[str, Any]) -> list[str]:
    """The input files of a config as the readers take them (``FILE::TABLE`` allowed).

    ``data.path`` may be one path or a list of paths (concatenated by the loader).

    Examples
    --------
    >>> input_specs({"data": {"format": "table", "path": ["a.csv", "b.csv"]}})
    ['a.csv', 'b.csv']
    """
    data = cfg["data"]
    if data["format"] == "events":
        values = [data.get(k) for k in ("customers", "price_events", "contact_events")]
    else:
        path = data.get("path")
        values = path if isinstance(path, (list, tuple)) else [path]
    return [str(v) for v in values if v]


def count_rows(spec: str, cfg: dict[str, Any]) -> int | None:
    """Data rows of a CSV/Parquet file or of a DuckDB/SQLite table, as the loader reads them.

    Returns None when the file cannot be read here (the notebook will say why).
    """
    from retention_study.data.readers import DB_SUFFIXES, read_frame, split_spec

    data = cfg["data"]
    path, table = split_spec(spec, data.get("table"))
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if path.suffix.lower() in DB_SUFFIXES and table:
            return _count_table(path, table)
        # Parsed records, not lines: quoted fields may hold newlines.
        return len(read_frame(spec, table=table, delimiter=data.get("delimiter"),
                              encoding=data.get("encoding")))
    except Exception as exc:  # noqa: BLE001 - a count is informative, never fatal
        log.debug("cannot count rows of %s: %s", spec, exc)
        return None


def _count_table(path: Path, table: str) -> int:
    quoted = '"' + table.replace('"', '""') + '"'
    if path.suffix.lower() == ".duckdb":
        import duckdb

        with duckdb.connect(str(path), read_only=True) as con:
            return int(con.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return int(con.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])


def describe_inputs(cfg: dict[str, Any], progress: bool = False) -> list[dict[str, Any]]:
    """Each input file with its size, sha256 and row count (a bar per file when ``progress``).

    Raises
    ------
    DataContractError
        If an input file does not exist (fail before starting a kernel).
    """
    from retention_study.data.readers import split_spec

    out = []
    specs = input_specs(cfg)
    with bar(len(specs), "Checking input files", progress, unit="file") as b:
        for spec in specs:
            path, table = split_spec(spec, cfg["data"].get("table"))
            if not path.is_file():
                raise DataContractError("input file not found", file=str(path),
                                        kind="missing_file")
            out.append({"path": str(path), "table": table, "bytes": path.stat().st_size,
                        "sha256": sha256_file(path), "rows": count_rows(spec, cfg)})
            b.update(1)
    return out


def package_versions() -> dict[str, str | None]:
    """Versions of Python and of the packages the study depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Commit and dirtiness of the project checkout (None outside a git repository)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def run_facts(cfg: dict[str, Any] | None, name: str, spec: RunSpec, notebook: Path | None,
              started: dt.datetime) -> dict[str, Any]:
    """What a run is: the facts the manifest, the index and a report header show.

    ``cfg`` is None for a run refused before it started (its config did not check).
    """
    parameters = {k: cfg[k] for k in ("name", "data", "study", "report")} if cfg else {}
    return {
        "name": name, "status": "running", "started": started.isoformat(timespec="seconds"),
        "config": str(spec.config), "overrides": list(spec.overrides),
        "grid": dict(spec.grid), "batch": {"id": spec.batch, "size": spec.batch_size},
        "notebook": str(notebook) if notebook else None, "kernel": KERNEL_NAME,
        "pid": os.getpid(), "parameters": parameters, "inputs": [],
        "versions": package_versions(), "git": git_state(), "steps": {},
    }
