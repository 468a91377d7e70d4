"""Run folders: staging, publishing, ``latest`` and the reports folder's lock.

A run is written into OUT/.incomplete/<name>-<stamp>-<pid>/ and renamed into
OUT/<name>/<stamp>[-FAILED] when it ends: a run killed at any step leaves nothing
half-written under its name, and `latest` moves only after the rename. The rename,
`latest` and the index are updated under one lock per reports folder, so runs
started together get separate folders and a consistent `latest` and index.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retention_study.errors import ConfigError

FAILED_SUFFIX = "-FAILED"
STAGING_DIR = ".incomplete"
LOCK_FILE = ".lock"
_STAMP = "%Y%m%dT%H%M%SZ"


def safe_name(text: str) -> str:
    """A run name as a folder name: path-safe characters, never '.', '..' or hidden.

    Examples
    --------
    >>> safe_name("acme b2b"), safe_name(".."), safe_name("../etc/passwd")
    ('acme_b2b', 'none', 'etc_passwd')
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_.")
    return slug or "none"


def inside(folder: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``folder``, else ValueError (no run escapes OUT/<name>/).

    Examples
    --------
    >>> inside(Path("/r/demo"), Path("/r/demo/20260101T000000Z")).name
    '20260101T000000Z'
    >>> inside(Path("/r/demo"), Path("/r/demo/../x"))
    Traceback (most recent call last):
    ...
    ValueError: /r/demo/../x is outside /r/demo
    """
    if not path.resolve().is_relative_to(folder.resolve()) or path.resolve() == folder.resolve():
        raise ValueError(f"{path} is outside {folder}")
    return path


@contextmanager
def reports_lock(out_dir: Path) -> Iterator[None]:
    """Hold the reports folder's lock (moving runs in, ``latest``, the index)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: renames stay atomic, no lock
        yield
        return
    with (out_dir / LOCK_FILE).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_writable(out_dir: Path) -> None:
    """Make ``out_dir`` and its staging folder, or say in one line why they cannot be.

    Raises
    ------
    ConfigError
        The reports folder cannot be created or written (exit status 2: the user can
        fix it with ``--out`` or the folder's permissions).
    """
    try:
        (out_dir / STAGING_DIR).mkdir(parents=True, exist_ok=True)
        probe = out_dir / STAGING_DIR / f".probe-{os.getpid()}"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
        (out_dir / LOCK_FILE).touch()
    except OSError as exc:
        raise ConfigError(f"{out_dir}: cannot write reports there "
                          f"({exc.strerror or type(exc).__name__}); use --out") from None


def stage_dir(out_dir: Path, name: str, started: dt.datetime) -> Path:
    _remove_abandoned(out_dir / STAGING_DIR)
    stage = out_dir / STAGING_DIR / f"{name}-{started.strftime(_STAMP)}-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    return stage


def _remove_abandoned(staging: Path) -> None:
    """Staging folders of runs whose process is gone (killed): never shown, removed."""
    for folder in staging.glob("*-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def publish(stage: Path, out_dir: Path, name: str, started: dt.datetime, ok: bool,
             manifest: dict[str, Any]) -> Path:
    """Move a finished run from staging to ``OUT/<name>/<stamp>[-n][-FAILED]`` atomically."""
    base = out_dir / name
    stamp = started.strftime(_STAMP)
    with reports_lock(out_dir):
        base.mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):
            head = stamp if n == 1 else f"{stamp}-{n}"
            if not (base / head).exists() and not (base / (head + FAILED_SUFFIX)).exists():
                break
        final = base / (head if ok else head + FAILED_SUFFIX)
        inside(base, final)
        manifest["parameters"]["results_path"] = os.path.abspath(final / "results.json")
        write_json(stage / "manifest.json", manifest)
        os.rename(stage, final)
        if ok:
            point_latest(newest_ok_run(base) or final)
    return final


def newest_ok_run(name_dir: Path) -> Path | None:
    """The successful run of ``name_dir`` that started last (what ``latest`` shows)."""
    best, key = None, None
    for path in name_dir.glob("*/manifest.json"):
        run = path.parent
        if run.is_symlink() or run.name.startswith(".") or run.name.endswith(FAILED_SUFFIX):
            continue
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if manifest.get("status") != "ok":
            continue
        head, _, n = run.name.partition("-")
        candidate = (str(manifest.get("started", "")), head, int(n) if n.isdigit() else 1)
        if key is None or candidate > key:
            best, key = run, candidate
    return best


def point_latest(run_dir: Path) -> Path:
    """Point ``<name>/latest`` at ``run_dir`` (a relative symlink, else a text file)."""
    link = inside(run_dir.parent, run_dir.parent / "latest")
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run_dir.name, tmp, target_is_directory=True)
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        os.replace(tmp, link)
    except OSError:
        if link.is_symlink():
            link.unlink()
        tmp = run_dir.parent / f".latest-{os.getpid()}.txt"
        tmp.write_text(run_dir.name + "\n", encoding="utf-8")
        os.replace(tmp, link)
    return link


def resolve_latest(name_dir: Path) -> Path | None:
    """The run folder ``<name>/latest`` points at, whichever form it has."""
    link = name_dir / "latest"
    if link.is_symlink():
        return name_dir / os.readlink(link)
    if link.is_file():
        return name_dir / link.read_text(encoding="utf-8").strip()
    return None


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
