"""Issue 16 point 6: text from the data is never markup.

A small simulated customer base is given hostile column names, segment values and
exit reasons (`<script>`, `<img onerror>`, `"><svg onload>`); the real study notebook
runs on it and the management report, the index and a FAILED notice are parsed: the
hostile text must be shown literally and no element or event handler may come from
it. The same pages are then opened in headless Chromium (tests/test_browser.py's way)
to show nothing runs.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from retention_study import runner
from retention_study.config import STUDY_NOTEBOOK
from retention_study.runner import folders, render
from retention_study.runner import index as index_page

FIXTURE_NB = Path(__file__).resolve().parent / "fixtures" / "report" / "fixture_study.ipynb"

pytestmark = pytest.mark.slow

COLUMN = """Contract"><svg onload="document.title='pwned-column'">"""
SEGMENT = """"><svg onload="document.title='pwned-segment'">"""
IMAGE = """<img src=x onerror="document.title='pwned-image'">"""
SCRIPT = """<script>document.title='pwned-reason'</script>"""
LINK = "[click](javascript:document.title='pwned-link')"
HOSTILE = (COLUMN, SEGMENT, IMAGE, SCRIPT)


class Page(HTMLParser):
    """Elements, attributes and the visible text of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._script = tag == "script"

    def handle_endtag(self, tag):
        self._script = False

    def handle_data(self, data):
        (self.scripts if self._script else self.text).append(data)

    @property
    def visible(self) -> str:
        return "".join(self.text)


def assert_inert(page: Page, shown: tuple[str, ...]) -> None:
    handlers = [(tag, name) for tag, attrs in page.elements for name in attrs
                if name.lower().startswith("on")]
    assert handlers == []
    assert not any(tag == "svg" for tag, _ in page.elements)
    assert not any("pwned" in s for s in page.scripts)
    assert not any("javascript:" in attrs.get("href", "").lower() for _, attrs in page.elements)
    for text in shown:
        assert text in page.visible, f"not shown literally: {text!r}"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, small_sample):
    """The study notebook run on a sample whose text is hostile."""
    base = tmp_path_factory.mktemp("hostile")
    customers = pd.read_csv(small_sample / "customers.csv", dtype=str, keep_default_na=False)
    plans = {"basic": SEGMENT, "premium": IMAGE}
    customers["plan"] = customers["plan"].map(plans).fillna(customers["plan"])
    customers = customers.rename(columns={"plan": COLUMN})
    left = customers["end_date"] != ""
    reasons = [SCRIPT, LINK, "price"]
    customers.loc[left, "exit_reason"] = [reasons[i % 3] for i in range(int(left.sum()))]
    customers.to_csv(base / "customers.csv", index=False)
    for name in ("price_events.csv", "contact_events.csv"):
        shutil.copy(small_sample / name, base / name)
    cfg = {"name": "hostile",
           "data": {"customers": str(base / "customers.csv"),
                    "price_events": str(base / "price_events.csv"),
                    "contact_events": str(base / "contact_events.csv"),
                    "as_of": "2026-06-30", "controls": [COLUMN],
                    "segments": [COLUMN, "region"], "satisfaction": "satisfaction",
                    "exit_reason": "exit_reason"},
           "study": {"bootstrap": 20, "cv_folds": 3}}
    (base / "hostile.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    outcome = runner.run_config(base / "hostile.yaml", out_dir=base / "reports",
                                notebook=STUDY_NOTEBOOK, progress=False)
    assert outcome.ok, outcome.lines()
    return outcome


def test_the_management_report_shows_hostile_text_literally(hostile_run):
    text = (hostile_run.run_dir / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert_inert(page, (COLUMN, SEGMENT, IMAGE))
    # the report's own wording uses markdown, never a tag the escaping would show as text
    for tag in ("<small", "<b>", "<br", "<em>"):
        assert tag not in page.visible, tag
    # Stated reasons are shown by group; wherever a raw one appears, it is text.
    for marker in ("pwned-reason", "pwned-link"):
        assert text.count(marker) == page.visible.count(marker)


def test_markdown_from_the_data_cannot_make_links_or_tags():
    """The renderer's own rule, without a kernel: raw HTML and javascript: links are text."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "", outputs=[nbformat.v4.new_output("display_data", data={
            "text/markdown": f"### by {COLUMN}\n\n{SCRIPT} and {IMAGE} and {LINK}"})])])
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"md-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, str(folder / "x.ipynb"))
    body, _ = render.render_html(folder / "x.ipynb", folder / "x.html")
    page = Page(body)
    assert_inert(page, (COLUMN, SCRIPT, IMAGE))
    shutil.rmtree(folder)


def hostile_manifest(run_dir: Path, status: str) -> dict:
    return {"name": "hostile", "status": status, "started": "2026-07-01T02:30:00+00:00",
            "config": f"configs/{IMAGE}.yaml", "overrides": [f"data.where.plan={SEGMENT}"],
            "grid": {"data.where.plan": SEGMENT}, "batch": {"id": "b1", "size": 2},
            "exit_status": 2 if status == "failed" else 0,
            "reason": f"{SCRIPT}\n{COLUMN}" if status == "failed" else "",
            "verdict": SEGMENT if status == "ok" else None, "verdict_sentence": IMAGE,
            "inputs": [{"path": f"data/{IMAGE}.csv"}],
            "parameters": {"data": {"as_of": SCRIPT}}}


@pytest.fixture
def hostile_index(tmp_path) -> Path:
    out = tmp_path / "reports"
    for stamp, status in (("20260701T023000Z", "ok"), ("20260701T023001Z-FAILED", "failed")):
        run_dir = out / "hostile" / stamp
        run_dir.mkdir(parents=True)
        manifest = hostile_manifest(run_dir, status)
        (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        if status == "failed":
            manifest["problems"] = manifest["reason"].splitlines()
            render.write_failed_notice(run_dir, manifest)
    return index_page.write_index(out)


def test_the_index_and_the_failed_notice_show_hostile_text_literally(hostile_index):
    index = Page(hostile_index.read_text(encoding="utf-8"))
    assert_inert(index, (SCRIPT, COLUMN, SEGMENT, f"{IMAGE}.csv"))
    notice = next(hostile_index.parent.glob("hostile/*-FAILED/failed.html"))
    assert_inert(Page(notice.read_text(encoding="utf-8")), (SCRIPT, COLUMN, f"{IMAGE}.yaml"))


# --------------------------------------------------------------------------- in a browser


def titles_after_loading(pages: list[Path], tmp_path: Path) -> dict[str, str]:
    """Open each page in headless Chromium; return its document.title after load."""
    from test_browser import devtools_session

    with devtools_session(tmp_path / "profile") as tools:
        tools.send("Page.enable")
        titles = {}
        for page in pages:
            tools.send("Page.navigate", url=page.as_uri())
            tools.wait_for("Page.loadEventFired")
            tools.drain(1.0)  # handlers of images that fail to load run after the load event
            result = tools.send("Runtime.evaluate", expression="document.title",
                                returnByValue=True)
            titles[page.name] = result["result"]["value"]
        return titles


@pytest.mark.browser
def test_nothing_from_the_data_executes_in_a_browser(hostile_run, hostile_index, tmp_path):
    notice = next(hostile_index.parent.glob("hostile/*-FAILED/failed.html"))
    pages = [hostile_run.run_dir / "report.html", hostile_index, notice]
    titles = titles_after_loading(pages, tmp_path)
    assert len(titles) == 3
    assert not any("pwned" in t for t in titles.values()), titles
    assert html.unescape(titles["failed.html"]).startswith("hostile")


def test_a_page_that_would_run_code_fails_the_run(tmp_path):
    """The runner's backstop: whatever forgot to escape, such a page is never kept."""
    from test_report import write_config, write_world

    config = write_config(tmp_path, "unsafe-demo", write_world(tmp_path / "data"))
    outcome = runner.run_config(config, out_dir=tmp_path / "r", notebook=FIXTURE_NB,
                                progress=False)
    assert not outcome.ok and outcome.exit_status == 1
    assert "would run code (first: <p onclick>)" in outcome.reason
    assert not (outcome.run_dir / "report.html").exists()
    assert (outcome.run_dir / "report-not-inert.html").is_file()
    assert folders.resolve_latest(tmp_path / "r" / "unsafe-demo") is None
