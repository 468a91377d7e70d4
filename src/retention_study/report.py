"""Run the study notebook into report folders: ``retention-study run``.

One run executes the study notebook with papermill and leaves a folder
``OUT/<name>/<timestamp>/`` holding

- ``report.html``: the management report (no code, self-contained, printable);
- ``report.ipynb``: the executed notebook, for analysts;
- ``results.json``: written by the notebook itself (parameter ``results_path``);
- ``manifest.json``: parameters, input files (sha256, rows), package versions,
  git commit, the duration of each step and the run's status;
- ``run.log``: what the runner did, with the notebook's stderr.

``OUT/<name>/latest`` points at the newest successful run and ``OUT/index.html``
lists every run. A failed run keeps its notebook (with papermill's error banner)
and ``failed.html`` (every problem) in a folder ``<timestamp>-FAILED``; ``latest``
is never moved to it. A run is staged in ``OUT/.incomplete/`` and renamed into
place when it ends (see "run folders" below).

Cell tags understood by the management HTML: ``remove-cell`` drops a cell,
``remove-output`` drops its outputs (code and prompts are never shown; the
``parameters`` cells are dropped). Output on stderr (warnings) goes to
``run.log``, not to management.

Three checks fail a run (exit 1) after rendering: a management page showing any
customer ID of the input data (the page is deleted), a page holding anything that
would run code (scripts, event handlers, ``javascript:`` links: text from the data
that escaped escaping), and a page that would fetch anything from the internet
(scripts, styles, fonts, images).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import html
import itertools
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path
from typing import Any

from retention_study.config import (
    KERNEL_NAME,
    LOGGER_NAME,
    PACKAGE_DIR,
    PROJECT_ROOT,
    REPORTS_DIR,
    STUDY_NOTEBOOK,
    load_config,
)
from retention_study.errors import ConfigError, DataContractError, RetentionStudyError
from retention_study.progress import bar, papermill_bar

log = logging.getLogger(LOGGER_NAME)
_UTC = dt.timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+

TEMPLATES_DIR = PACKAGE_DIR / "templates"
MANAGEMENT_TEMPLATE = "management.html.j2"
INDEX_TEMPLATE = "index.html.j2"
FAILED_SUFFIX = "-FAILED"
#: Cell tags for the management HTML (nbconvert's TagRemovePreprocessor).
REMOVE_CELL_TAGS = frozenset({"remove-cell", "remove_cell", "parameters", "injected-parameters"})
REMOVE_OUTPUT_TAGS = frozenset({"remove-output", "remove_output"})
#: Exceptions raised in the notebook that mean "bad input": exit status 2.
BAD_INPUT_ERRORS = frozenset({"DataContractError", "ConfigError"})
VERSIONED_PACKAGES = (
    "retention-study", "pandas", "numpy", "scipy", "lifelines", "matplotlib", "seaborn",
    "pyarrow", "duckdb", "pyyaml", "papermill", "nbconvert", "nbformat", "ipykernel",
)


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


class _RunFailed(Exception):
    """Internal: a step failed; carries the exit status and the one-line reason."""

    def __init__(self, exit_status: int, reason: str) -> None:
        super().__init__(reason)
        self.exit_status = exit_status
        self.reason = reason


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


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class RunSpec:
    """One planned run: a config file, its overrides and the grid values it stands for."""

    config: Path
    overrides: tuple[str, ...] = ()
    grid: tuple[tuple[str, str], ...] = ()
    batch: str | None = None
    batch_size: int = 1

    @property
    def suffix(self) -> str:
        return "-".join(_slug(v) for _, v in self.grid)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "none"


def parse_grid(grid: Sequence[str]) -> list[list[tuple[str, str]]]:
    """Read ``--grid key=v1,v2`` options into one list of (key, value) per option.

    Examples
    --------
    >>> parse_grid(["study.lag_days=0,30"])
    [[('study.lag_days', '0'), ('study.lag_days', '30')]]
    """
    axes = []
    for text in grid:
        key, sep, values = text.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not items:
            raise ConfigError(f"--grid {text}: expected key=value1,value2,...")
        axes.append([(key.strip(), v) for v in items])
    return axes


def plan_runs(
    configs: Sequence[Path], overrides: Sequence[str] = (), grid: Sequence[str] = (),
    batch: str | None = None,
) -> list[RunSpec]:
    """Every (config, grid point) pair, in order.

    Examples
    --------
    >>> specs = plan_runs([Path("a.yaml")], grid=["study.lag_days=0,30"])
    >>> [s.overrides for s in specs]
    [('study.lag_days=0',), ('study.lag_days=30',)]
    """
    points = list(itertools.product(*parse_grid(grid))) if grid else [()]
    pairs = [(Path(c), p) for c in configs for p in points]
    return [
        RunSpec(c, tuple(overrides) + tuple(f"{k}={v}" for k, v in p), tuple(p), batch,
                len(pairs))
        for c, p in pairs
    ]


# --------------------------------------------------------------------------- manifest


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
    from retention_study.readers import DB_SUFFIXES, read_frame, split_spec

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
    from retention_study.readers import split_spec

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


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- execution


def _kernel_installed(kernel_name: str) -> bool:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return False
    return True


def execute_notebook(
    notebook: Path, output: Path, parameters: dict[str, Any], timeout: float | None,
    progress: bool, kernel_name: str = KERNEL_NAME,
) -> None:
    """Run ``notebook`` with papermill into ``output``.

    Raises
    ------
    _RunFailed
        With exit status 2 when the notebook raised DataContractError or
        ConfigError, else 1; the reason is the exception's message.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        pm.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name=kernel_name,
            execution_timeout=timeout, progress_bar=papermill_bar(progress), log_output=False,
            cwd=str(Path.cwd()),
            # The kernel's own start-up warnings (TCP transport) would reach cron's mail.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as exc:
        status = 2 if exc.ename in BAD_INPUT_ERRORS else 1
        message = str(exc.evalue).strip().splitlines()
        reason = f"{exc.ename}: {message[0] if message else ''}".rstrip(": ")
        raise _RunFailed(status, reason) from None
    except TimeoutError:
        raise _RunFailed(1, f"the notebook step '{running_step(output)}' ran longer than "
                            f"{timeout:g} s (report.timeout_per_cell)") from None
    except Exception as exc:  # noqa: BLE001 - kernel deaths etc.: one line for cron
        first = str(exc).strip().splitlines()
        raise _RunFailed(1, f"{type(exc).__name__}: {first[0] if first else ''}") from None


def running_step(executed: Path) -> str:
    """The step a stopped notebook was in: the heading above the cell that was running.

    Papermill stamps each cell's start time in the output notebook as it goes (and
    marks every status 'completed' when it stops), so the cell that was stopped is
    the last one with a start time. The step is named by the closest markdown
    heading above it and its first line of code, as an analyst finds it in
    ``report.ipynb``.
    """
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # noqa: BLE001 - naming the step must not hide the timeout
        return "unknown"
    heading, running = None, None
    for number, cell in enumerate(nb.cells, start=1):
        if not cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            break
        if cell.cell_type == "markdown":
            lines = [ln.lstrip("#").strip() for ln in cell.source.splitlines()
                     if ln.startswith("#")]
            heading = lines[0] if lines else heading
        else:
            running = number, cell, heading
    if running is None:
        return "unknown"
    number, cell, heading = running
    code = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    return f"{heading or 'notebook'}, cell {number}: {code[:60]}"


def render_html(executed: Path, target: Path, title: str | None = None,
                source_dir: Path | None = None) -> tuple[str, list[str]]:
    """Render the management HTML of an executed notebook; returns (html, stderr texts).

    Code, prompts and cells tagged ``remove-cell`` are dropped; outputs of cells
    tagged ``remove-output`` too; stderr streams are returned (for the log)
    instead of shown. Images, including markdown images relative to
    ``source_dir`` (the source notebook's folder), are embedded.
    """
    import nbformat
    from traitlets.config import Config

    nb = nbformat.read(str(executed), as_version=4)
    stderr = _pop_stderr(nb)
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
    config.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
    exporter = _safe_html_exporter()(
        config=config, template_name="lab", template_file=MANAGEMENT_TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES_DIR)], extra_template_paths=[str(TEMPLATES_DIR)],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
        embed_images=True,
    )
    meta = {"name": title or target.stem, "path": str(source_dir or executed.parent)}
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": meta})
    target.write_text(body, encoding="utf-8")
    return body, stderr


def _safe_html_exporter() -> type:
    """nbconvert's HTMLExporter whose markdown never becomes markup it was not written as.

    The narrative's markdown quotes the data (segment values, column names, stated
    exit reasons); nbconvert renders markdown with raw HTML passed through and
    ``javascript:`` links allowed. Here raw HTML in markdown is shown as text and
    harmful link protocols are dropped, for markdown outputs and cells alike: a
    CRM export's ``<svg onload=...>`` reads as what it is.
    """
    from jinja2 import pass_context
    from mistune.renderers.html import HTMLRenderer
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class TextOnlyRenderer(IPythonRenderer):
        # nbconvert's renderer re-parses raw HTML to embed its images before escaping it:
        # the text would come out rewritten (attributes reordered, tags closed).
        def block_html(self, html: str) -> str:
            return HTMLRenderer.block_html(self, html)

        def inline_html(self, html: str) -> str:
            return HTMLRenderer.inline_html(self, html)

    class SafeMarkdownHTMLExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context: Any, source: str) -> str:
            cell = context.get("cell", {})
            path = context.get("resources", {}).get("metadata", {}).get("path", "")
            renderer = TextOnlyRenderer(
                escape=True, allow_harmful_protocols=False,
                attachments=cell.get("attachments", {}), embed_images=self.embed_images,
                path=path, anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    return SafeMarkdownHTMLExporter


def _pop_stderr(nb: Any) -> list[str]:
    texts = []
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        texts += [o.get("text", "") for o in outputs if o.get("name") == "stderr"]
        if outputs:
            cell["outputs"] = [o for o in outputs if o.get("name") != "stderr"]
    return texts


# --------------------------------------------------------------------------- privacy check

_TOKEN = re.compile(r"[^\s<>\"'=;,()\[\]{}|/\\:&*]+")
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+", re.IGNORECASE)


def customer_ids(cfg: dict[str, Any]) -> set[str]:
    """The customer keys of the input data (empty when a table has no ``data.id``)."""
    from retention_study.readers import read_frame

    data = cfg["data"]
    if data["format"] == "events":
        specs, column = [str(data["customers"])], "customer_id"
    elif data.get("id"):
        specs, column = input_specs(cfg), data["id"]
    else:
        return set()
    ids: set[str] = set()
    for spec in specs:
        frame = read_frame(spec, table=data.get("table"), delimiter=data.get("delimiter"),
                           encoding=data.get("encoding"))
        if column in frame.columns:
            ids |= set(frame[column].dropna().astype(str).str.strip())
    return ids - {""}


def checkable_ids(ids: set[str]) -> set[str]:
    """IDs distinctive enough to search for.

    Short all-digit keys ("17") cannot be told apart from counts and years in a
    report, so only keys with a non-digit or at least 6 characters are checked.

    Examples
    --------
    >>> sorted(checkable_ids({"17", "2024", "C-017", "1234567"}))
    ['1234567', 'C-017']
    """
    return {i for i in ids if len(i) >= 6 or not i.isdigit()}


def find_leaked_ids(page: str, ids: set[str]) -> set[str]:
    """Customer IDs that occur as whole tokens in an HTML page (inline images ignored).

    Examples
    --------
    >>> sorted(find_leaked_ids("<td>C-017</td><td>C-0170x</td>", {"C-017", "C-99"}))
    ['C-017']
    """
    text = html.unescape(_DATA_URI.sub(" ", page))
    tokens = set(_TOKEN.findall(text))
    tokens |= {t.strip(".!?%") for t in tokens}
    leaked = ids & tokens
    # Keys that contain a separator character are not single tokens: search them as text.
    odd = {i for i in ids - leaked if _TOKEN.fullmatch(i) is None}
    return leaked | {i for i in odd if i in text}


_REMOTE = re.compile(r"^\s*(?:https?:|ftp:)?//", re.IGNORECASE)
_CSS_REMOTE = re.compile(r"url\(\s*['\"]?\s*((?:https?:)?//[^)'\"\s]*)|@import\s+['\"]([^'\"]+)",
                         re.IGNORECASE)
#: Attributes a browser fetches on load (links in <a href> are only followed on a click).
_FETCHED = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src",
            "audio": "src", "embed": "src", "track": "src", "input": "src", "object": "data",
            "link": "href"}


class _Fetches(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        key = _FETCHED.get(tag)
        if key and _REMOTE.match(values.get(key) or ""):
            self.urls.append(values[key] or "")
        if tag == "img" and _REMOTE.search(values.get("srcset") or ""):
            self.urls.append(values["srcset"] or "")
        self._css(values.get("style") or "")
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self._css(data)

    def _css(self, text: str) -> None:
        self.urls += [a or b for a, b in _CSS_REMOTE.findall(text)]


def external_references(page: str) -> list[str]:
    """URLs an HTML page would fetch from the network when opened (scripts, styles, images...).

    Examples
    --------
    >>> external_references('<a href="https://x.org">ok</a><img src="data:image/png;base64,">')
    []
    >>> external_references('<script src="https://cdn.x/require.js"></script>')
    ['https://cdn.x/require.js']
    """
    parser = _Fetches()
    parser.feed(page)
    parser.close()
    return parser.urls


#: Elements and attributes that would run code or embed another document in a reader's browser.
_ACTIVE_TAGS = frozenset({"script", "iframe", "object", "embed", "frame", "frameset", "applet",
                          "base", "form"})
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "xlink:href", "data"})


class _Active(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _ACTIVE_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            elif name in _URL_ATTRS and re.match(r"\s*(javascript|vbscript):", value or "", re.I):
                self.found.append(f"<{tag} {name}={(value or '')[:30]}>")


def active_markup(page: str) -> list[str]:
    """Elements and attributes of a page that would run code when opened (none expected).

    The management report is static: it has no script of its own, so any of these
    came from the data through a path that forgot to escape it.

    Examples
    --------
    >>> active_markup('<p>&lt;script&gt;</p><img src="data:image/png;base64,">')
    []
    >>> active_markup('<p>x<svg onload="alert(1)"></svg><a href="javascript:go()">y</a></p>')
    ['<svg onload>', '<a href=javascript:go()>']
    """
    parser = _Active()
    parser.feed(page)
    parser.close()
    return parser.found


def _check_inert(page: str, run_dir: Path) -> None:
    active = active_markup(page)
    if active:
        # Like a leak: this page must not be mailed around; analysts have report.ipynb.
        (run_dir / "report.html").rename(run_dir / "report-not-inert.html")
        raise _RunFailed(1, f"the management HTML holds {len(active)} element(s) that would "
                            f"run code (first: {active[0]}); text from the data must be "
                            "escaped")


# --------------------------------------------------------------------------- run folders
# A run is written into OUT/.incomplete/<name>-<stamp>-<pid>/ and renamed into
# OUT/<name>/<stamp>[-FAILED] when it ends: a run killed at any step leaves nothing
# half-written under its name, and `latest` moves only after the rename. The rename,
# `latest` and the index are updated under one lock per reports folder, so runs
# started together get separate folders and a consistent `latest` and index.

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


_slug = safe_name  # grid values become name suffixes with the same rule


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


def _stage_dir(out_dir: Path, name: str, started: dt.datetime) -> Path:
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


def _publish(stage: Path, out_dir: Path, name: str, started: dt.datetime, ok: bool,
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
        _write_json(stage / "manifest.json", manifest)
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


def read_coverage(results_path: Path) -> dict[str, Any] | None:
    """The ``coverage`` record of a results.json (what the run covers), None where absent.

    Examples
    --------
    >>> read_coverage(Path("no/such/results.json")) is None
    True
    """
    try:
        coverage = json.loads(results_path.read_text(encoding="utf-8")).get("coverage")
    except (OSError, ValueError, AttributeError):
        return None
    return coverage if isinstance(coverage, dict) else None


def read_verdict(results_path: Path) -> tuple[str | None, str | None]:
    """The verdict label and sentence of a results.json (None where absent).

    Examples
    --------
    >>> read_verdict(Path("no/such/results.json"))
    (None, None)
    """
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(results, dict):
        return None, None
    verdict, sentence = results.get("verdict"), results.get("verdict_sentence")
    if isinstance(verdict, dict):
        verdict = verdict.get("label") or verdict.get("text")
    return (None if verdict is None else str(verdict),
            None if sentence is None else str(sentence))


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
    if not _kernel_installed(KERNEL_NAME):
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
        stage = _stage_dir(out_dir, name, started)
        (stage / "run.log").write_text(f"{started:%Y-%m-%dT%H:%M:%SZ} ERROR FAILED (exit "
                                       f"{status}): {reason}\n", encoding="utf-8")
        write_failed_notice(stage, manifest)
        final = _publish(stage, out_dir, name, started, False, manifest)
    except OSError as exc:
        log.debug("cannot keep a folder for the failed run %s: %s", name, exc)
        return RunOutcome(name, False, status, reason=reason)
    return RunOutcome(name, False, status, final, reason)


def _run(cfg: dict[str, Any], name: str, spec: RunSpec, out_dir: Path, notebook: Path,
         progress: bool) -> RunOutcome:
    started = dt.datetime.now(_UTC)
    stage = _stage_dir(out_dir, name, started)
    rlog = _RunLog(stage / "run.log", name)
    manifest = run_facts(cfg, name, spec, notebook, started)
    manifest["steps"] = rlog.steps
    # Absolute: the notebook may change its working directory.
    manifest["parameters"]["results_path"] = os.path.abspath(stage / "results.json")
    rlog.write(f"run {name} from {spec.config} {' '.join(spec.overrides)}".rstrip())
    t0 = time.perf_counter()
    try:
        _steps(cfg, name, notebook, stage, rlog, manifest, progress)
    except (_RunFailed, RetentionStudyError) as exc:
        reason = exc.reason if isinstance(exc, _RunFailed) else str(exc)
        return _finish_failed(stage, out_dir, rlog, manifest, exc.exit_status, reason, t0)
    except Exception as exc:  # noqa: BLE001 - a scheduled run must end in a marked folder
        first = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {first[0] if first else ''}"
        return _finish_failed(stage, out_dir, rlog, manifest, 1, reason, t0)
    return _finish_ok(stage, out_dir, rlog, manifest, t0)


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


def _steps(cfg: dict[str, Any], name: str, notebook: Path, run_dir: Path, rlog: _RunLog,
           manifest: dict[str, Any], progress: bool) -> None:
    with rlog.step("inputs"):
        manifest["inputs"] = describe_inputs(cfg, progress)
    _write_json(run_dir / "manifest.json", manifest)
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
            # Privacy first: a page that leaks IDs is deleted whatever else is wrong with it.
            _check_privacy(page, cfg, run_dir, manifest)
            _check_inert(page, run_dir)
            _check_offline(page, run_dir)
        b.update(1)
    if not (run_dir / "results.json").is_file():
        raise _RunFailed(1, "the notebook wrote no results.json (parameter results_path)")


def _finish_ok(stage: Path, out_dir: Path, rlog: _RunLog, manifest: dict[str, Any],
               t0: float) -> RunOutcome:
    verdict, sentence = read_verdict(stage / "results.json")
    manifest["coverage"] = read_coverage(stage / "results.json")
    manifest.update(status="ok", exit_status=0, verdict=verdict, verdict_sentence=sentence,
                    finished=dt.datetime.now(_UTC).isoformat(timespec="seconds"))
    manifest["steps"]["total"] = round(time.perf_counter() - t0, 3)
    rlog.write("ok")
    run_dir = _publish(stage, out_dir, manifest["name"], _started(manifest), True, manifest)
    log.info("%s: ok: %s", manifest["name"], run_dir / "report.html")
    return RunOutcome(manifest["name"], True, 0, run_dir, verdict=verdict)


def _started(manifest: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(manifest["started"])


def _check_offline(page: str, run_dir: Path) -> None:
    remote = external_references(page)
    if remote:
        (run_dir / "report.html").rename(run_dir / "report-not-offline.html")
        raise _RunFailed(1, f"the management HTML loads {len(remote)} resource(s) from the "
                            f"internet (first: {remote[0][:80]}); it must work offline")


def _check_privacy(page: str, cfg: dict[str, Any], run_dir: Path,
                   manifest: dict[str, Any]) -> None:
    ids = customer_ids(cfg)
    checked = checkable_ids(ids)
    leaked = find_leaked_ids(page, checked)
    manifest["privacy_check"] = {"ids": len(ids), "ids_checked": len(checked),
                                 "leaked": len(leaked)}
    if leaked:
        # The page must not survive to be mailed around; analysts have report.ipynb.
        (run_dir / "report.html").unlink()
        raise _RunFailed(1, f"the management HTML showed {len(leaked)} customer ID(s) "
                            "from the input data; report.html was deleted")


def _finish_failed(stage: Path, out_dir: Path, rlog: _RunLog, manifest: dict[str, Any],
                   status: int, reason: str, t0: float) -> RunOutcome:
    manifest.update(status="failed", exit_status=status, reason=reason,
                    problems=reason.splitlines(),
                    finished=dt.datetime.now(_UTC).isoformat(timespec="seconds"))
    manifest["steps"]["total"] = round(time.perf_counter() - t0, 3)
    # The reason reaches stderr once, from the CLI; the log line only announces it.
    rlog.write(f"FAILED (exit {status}): {reason}", logging.ERROR, echo=False)
    write_failed_notice(stage, manifest)
    failed_dir = _publish(stage, out_dir, manifest["name"], _started(manifest), False, manifest)
    log.info("%s: failed (exit %d): %s", manifest["name"], status, failed_dir)
    return RunOutcome(manifest["name"], False, status, failed_dir, reason)


FAILED_NOTICE = "failed.html"
FAILED_TEMPLATE = "failed.html.j2"


def _templates() -> Any:
    import jinja2

    # Autoescape: run names, file names and error messages come from the data and the config.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                              autoescape=True)


def write_failed_notice(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """``failed.html`` in a failed run's folder: what failed and every problem, in plain words."""
    page = _templates().get_template(FAILED_TEMPLATE).render(
        run=manifest, notebook=(run_dir / "report.ipynb").is_file())
    target = run_dir / FAILED_NOTICE
    target.write_text(page, encoding="utf-8")
    return target


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
        name = _slug(f"{spec.config.stem}-{spec.suffix}" if spec.suffix else spec.config.stem)
        return RunOutcome(name, False, 1, reason=f"worker process failed: "
                          f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- index page


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
    page = _templates().get_template(INDEX_TEMPLATE).render(
        runs=runs, batches=sorted(batches.items(), reverse=True),
        data_names=lambda run: ", ".join(Path(i["path"]).name for i in run.get("inputs", [])),
    )
    target = out_dir / "index.html"
    tmp = out_dir / f".index-{os.getpid()}.html"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target
