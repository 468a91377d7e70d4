"""Tests of the report runner: run folders, manifest, latest, index, failures, grid.

The notebook runs use tests/fixtures/report/fixture_study.ipynb (a kernel start
is ~3 s each); the expected values come from the test data built here, not from
the runner.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retention_study import cli, runner
from retention_study.config import KERNEL_NAME
from retention_study.runner import checks, execute, folders, manifest, plan
from retention_study.runner import index as index_page

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_NB = ROOT / "tests" / "fixtures" / "report" / "fixture_study.ipynb"
REAL = ROOT / ".." / "shared" / "data" / "real"
N_CUSTOMERS = 40
# churned = every third customer: 0, 3, ..., 39 -> 14 departures (even -> fixture says "price")
N_DEPARTURES = len(range(0, N_CUSTOMERS, 3))


@pytest.fixture(scope="session")
def kernel():
    """The project kernel, registered as `make setup` does when missing."""
    if not execute.kernel_installed(KERNEL_NAME):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", sys.prefix,
                        "--name", KERNEL_NAME], check=True, capture_output=True)
    return KERNEL_NAME


def write_world(folder: Path, duplicate: bool = False) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"CUST-{i:04d}" for i in range(N_CUSTOMERS)]
    if duplicate:
        ids[5] = ids[4]
    pd.DataFrame({"customer_id": ids, "tenure_months": np.arange(N_CUSTOMERS) % 24 + 1,
                  "churned": (np.arange(N_CUSTOMERS) % 3 == 0).astype(int)}).to_csv(
        folder / "customers.csv", index=False)
    pd.DataFrame({"customer_id": ids[:2], "effective_date": ["2026-01-01"] * 2,
                  "monthly_price": [10.0, 12.0]}).to_csv(folder / "price.csv", index=False)
    pd.DataFrame({"customer_id": ids[:3], "contact_date": ["2026-02-01"] * 3,
                  "direction": ["outbound"] * 3}).to_csv(folder / "contact.csv", index=False)
    return {"customers": folder / "customers.csv", "price_events": folder / "price.csv",
            "contact_events": folder / "contact.csv"}


def write_config(folder: Path, name: str, files: dict[str, Path], **study) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"name": name,
           "data": {k: str(v) for k, v in files.items()} | {"as_of": "2026-06-30"},
           "study": {"min_departures": 5} | study,
           "report": {"timeout_per_cell": 120}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


class _Elements(HTMLParser):
    """Collect (tag, attrs) of every element and the text of <style> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def parse_html(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    return parser


# --------------------------------------------------------------------------- a run history


@pytest.fixture(scope="module")
def history(tmp_path_factory, kernel):
    """An ok run; then, as one parallel batch, bad data (2), too few departures (1),
    leaked IDs (1) and an external image (1); then a second ok run. One reports dir."""
    base = tmp_path_factory.mktemp("history")
    good = write_world(base / "good")
    dup = write_world(base / "dup", duplicate=True)
    out = base / "reports"
    runs = {"ok": runner.run_config(write_config(base, "demo", good), out_dir=out,
                                    notebook=FIXTURE_NB)}
    failing = {
        "bad_data": write_config(base / "dup", "demo", dup),
        "analysis": write_config(base / "few", "demo", good, min_departures=100),
        "leak": write_config(base, "leak-demo", good),
        "cdn": write_config(base, "cdn-demo", good),
    }
    outcomes = runner.run_many(list(failing.values()), out_dir=out, jobs=2,
                               notebook=FIXTURE_NB, progress=False)
    runs |= dict(zip(failing, outcomes, strict=True))
    latest_after_failures = folders.resolve_latest(out / "demo")
    runs["ok2"] = runner.run_config(write_config(base, "demo", good), out_dir=out,
                                    notebook=FIXTURE_NB)
    return {"out": out, "files": good, "runs": runs,
            "latest_after_failures": latest_after_failures}


def test_successful_run_folder_holds_every_artefact(history):
    ok = history["runs"]["ok"]
    assert ok.ok and ok.exit_status == 0
    assert ok.run_dir.parent == history["out"] / "demo"
    assert re.fullmatch(r"\d{8}T\d{6}Z", ok.run_dir.name)
    for name in ("report.html", "report.ipynb", "results.json", "manifest.json", "run.log"):
        assert (ok.run_dir / name).stat().st_size > 0, name
    results = json.loads((ok.run_dir / "results.json").read_text())
    assert results["n_departures"] == N_DEPARTURES
    assert ok.verdict == "price" == results["verdict"]
    assert str(ok.run_dir / "report.html") in ok.line()


def test_manifest_records_inputs_versions_git_and_steps(history):
    ok = history["runs"]["ok"]
    manifest = json.loads((ok.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["exit_status"] == 0
    inputs = {Path(i["path"]).name: i for i in manifest["inputs"]}
    assert set(inputs) == {"customers.csv", "price.csv", "contact.csv"}
    for key, path in history["files"].items():
        entry = inputs[path.name]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), key
    assert inputs["customers.csv"]["rows"] == N_CUSTOMERS
    assert inputs["price.csv"]["rows"] == 2 and inputs["contact.csv"]["rows"] == 3
    assert manifest["versions"]["pandas"] == pd.__version__
    assert manifest["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    # Others commit to this checkout while tests run: the recorded commit must be HEAD
    # or one of its ancestors, not necessarily HEAD itself.
    commit = manifest["git"]["commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    assert subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", commit,
                           "HEAD"]).returncode == 0
    params = manifest["parameters"]
    assert set(params) == {"name", "data", "study", "report", "results_path"}
    assert params["results_path"] == str(ok.run_dir / "results.json")
    assert params["study"]["min_departures"] == 5
    assert manifest["steps"]["execute"] > 0 and manifest["steps"]["render"] > 0
    assert manifest["steps"]["total"] >= manifest["steps"]["execute"]
    assert manifest["privacy_check"] == {"ids": N_CUSTOMERS, "ids_checked": N_CUSTOMERS,
                                         "leaked": 0}


def test_management_html_has_no_code_and_no_hidden_cells(history):
    text = (history["runs"]["ok"].run_dir / "report.html").read_text()
    page = parse_html(text)
    classes = set(" ".join(a.get("class", "") for _, a in page.elements).split())
    # markdown is rendered inside a jp-InputArea too; code would sit in an editor area
    code_areas = {"jp-InputArea-editor", "jp-CodeMirrorEditor", "highlight", "input_area",
                  "jp-InputPrompt", "jp-OutputPrompt"}
    assert not classes & code_areas
    for marker in ("source-code-marker-7f3a", "import pandas", "hidden output marker-b21c",
                   "Failure triggers",
                   "hidden cell marker-c93d", "results_path", "UserWarning"):
        assert marker not in text, marker
    assert "Verdict:" in text and f"{N_DEPARTURES} departures" in text


def test_management_html_is_self_contained_and_printable(history):
    text = (history["runs"]["ok"].run_dir / "report.html").read_text()
    page = parse_html(text)
    assert not [a for t, a in page.elements if t == "script"], "no scripts at all"
    for tag, attrs in page.elements:
        for key in ("src", "href"):
            value = attrs.get(key, "")
            assert not re.match(r"\s*(https?:)?//", value), (tag, key, value)
    css = "\n".join(page.styles)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", css)
    assert "@import" not in css
    imgs = [a["src"] for t, a in page.elements if t == "img"]
    assert len(imgs) == 1 and imgs[0].startswith("data:image/png;base64,")
    assert "@media print" in css and "break-inside: avoid" in css


def test_bad_data_fails_with_2_and_keeps_the_notebook(history):
    bad = history["runs"]["bad_data"]
    assert not bad.ok and bad.exit_status == 2
    assert bad.reason.startswith("DataContractError:") and "duplicate customer_id" in bad.reason
    assert "\n" not in bad.reason and "Traceback" not in bad.reason
    assert bad.run_dir.name.endswith("-FAILED") and bad.run_dir.is_dir()
    nb = (bad.run_dir / "report.ipynb").read_text()
    assert "An Exception was encountered" in nb  # papermill's banner
    assert not (bad.run_dir / "report.html").exists()
    manifest = json.loads((bad.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_status"] == 2
    assert "FAILED (exit 2)" in bad.line()


def test_analysis_failure_fails_with_1(history):
    failed = history["runs"]["analysis"]
    assert not failed.ok and failed.exit_status == 1
    assert failed.reason == (f"AnalysisError: only {N_DEPARTURES} departures, need 100")
    assert failed.run_dir.name.endswith("-FAILED")


def test_latest_only_moves_on_success(history):
    name_dir = history["out"] / "demo"
    assert history["latest_after_failures"] == history["runs"]["ok"].run_dir
    second = history["runs"]["ok2"]
    assert second.ok and second.run_dir != history["runs"]["ok"].run_dir
    assert (name_dir / "latest").is_symlink()
    assert folders.resolve_latest(name_dir) == second.run_dir
    assert (name_dir / "latest" / "report.html").is_file()
    # the leaking run never got a latest at all
    assert folders.resolve_latest(history["out"] / "leak-demo") is None


def test_leaked_customer_ids_fail_the_run(history):
    leak = history["runs"]["leak"]
    assert not leak.ok and leak.exit_status == 1
    assert "customer ID" in leak.reason
    assert not (leak.run_dir / "report.html").exists()
    manifest = json.loads((leak.run_dir / "manifest.json").read_text())
    assert manifest["privacy_check"]["leaked"] == 3  # customers.head(3)


def test_index_lists_every_run_with_status_and_verdict(history):
    text = (history["out"] / "index.html").read_text()
    page = parse_html(text)
    rows = [a for t, a in page.elements if t == "tr" and "run" in a.get("class", "").split()]
    statuses = sorted(a["class"].split()[1] for a in rows)
    assert statuses == ["failed"] * 4 + ["ok"] * 2
    ok = history["runs"]["ok"]
    links = {a["href"] for t, a in page.elements if t == "a"}
    assert f"demo/{ok.run_dir.name}/report.html" in links
    assert "duplicate customer_id" in text and ">price<" in text.replace("\n", "")
    assert "customers.csv" in text
    assert "Batch runs" in text and "0 of 4 ok" in text  # the parallel batch of failures


def test_html_that_fetches_from_the_internet_fails_the_run(history):
    cdn = history["runs"]["cdn"]
    assert not cdn.ok and cdn.exit_status == 1
    assert "https://example.com/x.png" in cdn.reason and "offline" in cdn.reason
    assert not (cdn.run_dir / "report.html").exists()
    assert folders.resolve_latest(history["out"] / "cdn-demo") is None


def test_the_rendered_report_fetches_nothing(history):
    text = (history["runs"]["ok"].run_dir / "report.html").read_text()
    assert checks.external_references(text) == []


@pytest.mark.parametrize("page", [
    '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex.js"></script>',
    '<link rel="stylesheet" href="http://fonts.example/css">',
    '<img src="//example.com/a.png">',
    '<style>@font-face { src: url("https://fonts.gstatic.com/x.woff2"); }</style>',
    "<style>@import 'https://example.com/a.css';</style>",
    '<div style="background: url(http://example.com/bg.png)"></div>',
    '<iframe src="https://example.com"></iframe>',
])
def test_external_references_finds_each_kind_of_fetch(page):
    assert len(checks.external_references(page)) == 1


def test_external_references_ignores_links_and_inline_data():
    page = ('<a href="https://example.com/paper">paper</a><img src="data:image/png;base64,AA">'
            '<style>.x { background: url(data:image/svg+xml;base64,AA) }</style>'
            '<a href="#section">x</a><p>see https://example.com</p>')
    assert checks.external_references(page) == []


# --------------------------------------------------------------------------- fail fast, no kernel


def test_config_errors_fail_fast_with_2(tmp_path):
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("name: x\nstudy:\n  alhpa: 0.1\n  alpha: 2\n")
    missing = write_config(tmp_path, "missing", {"customers": tmp_path / "nope.csv"})
    outcomes = runner.run_many([bad_key, tmp_path / "absent.yaml"], out_dir=tmp_path / "r",
                               notebook=FIXTURE_NB)
    assert [o.exit_status for o in outcomes] == [2, 2]
    assert "did you mean 'alpha'" in outcomes[0].reason
    assert "study.alpha must be a number in (0, 1)" in outcomes[0].reason
    assert "config file not found" in outcomes[1].reason
    # No kernel ran, but each refused config has a FAILED folder (named after the file:
    # its name key is not trusted) with a notice listing every problem, and the index
    # lists them (issue 15 point 10).
    for outcome, stem in zip(outcomes, ("bad", "absent"), strict=True):
        assert outcome.run_dir.parent == tmp_path / "r" / stem
        assert outcome.run_dir.name.endswith("-FAILED")
        assert not (outcome.run_dir / "report.ipynb").exists()
        notice = (outcome.run_dir / "failed.html").read_text()
        assert "No notebook ran" in notice
    notice = (outcomes[0].run_dir / "failed.html").read_text()
    assert "alhpa" in notice and "study.alpha must be a number" in notice
    index = (tmp_path / "r" / "index.html").read_text()
    assert "unknown key &#39;study.alhpa&#39;" in index and "study.alpha must be" in index
    assert not (tmp_path / "r" / "x").exists()
    gone = runner.run_config(missing, out_dir=tmp_path / "r", notebook=FIXTURE_NB)
    assert gone.exit_status == 2 and "nope.csv" in gone.reason
    assert "input file not found" in (gone.run_dir / "failed.html").read_text()
    no_nb = runner.run_config(bad_key, out_dir=tmp_path / "r",
                              notebook=tmp_path / "absent.ipynb")
    assert no_nb.exit_status == 2  # the config is checked first
    good = write_config(tmp_path, "good", write_world(tmp_path / "d"))
    no_nb = runner.run_config(good, out_dir=tmp_path / "r", notebook=tmp_path / "absent.ipynb")
    assert no_nb.exit_status == 1 and "notebook not found" in no_nb.reason
    assert not (tmp_path / "r" / "good").exists()


@pytest.fixture
def cli_logging():
    """cli.main configures the package logger; put it back for the other tests."""
    logger = logging.getLogger("retention_study")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def test_cli_prints_one_line_and_exits_2_on_bad_config(tmp_path, capsys, cli_logging):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    status = cli.main(["run", str(bad), "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and "not valid YAML" in err[0]


def test_cli_reports_a_notebook_failure_in_one_line(tmp_path, capsys, monkeypatch, kernel,
                                                    cli_logging):
    config = write_config(tmp_path, "demo", write_world(tmp_path / "dup", duplicate=True))
    monkeypatch.setattr(runner, "run_many", functools.partial(runner.run_many,
                                                              notebook=FIXTURE_NB))
    status = cli.main(["run", str(config), "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" not in err and "IPKernelApp" not in err
    reasons = [line for line in err.splitlines() if "duplicate customer_id" in line]
    assert len(reasons) == 1 and reasons[0].startswith("demo: FAILED (exit 2): ")


def test_bad_grid_option_is_a_config_error(tmp_path):
    outcomes = runner.run_many([tmp_path / "a.yaml"], grid=["study.lag_days"],
                               out_dir=tmp_path / "r")
    assert len(outcomes) == 1 and outcomes[0].exit_status == 2


# --------------------------------------------------------------------------- grid in parallel


def test_grid_runs_in_parallel_processes(tmp_path, kernel):
    files = write_world(tmp_path / "data")
    config = write_config(tmp_path, "demo", files)
    out = tmp_path / "reports"
    outcomes = runner.run_many([config], grid=["study.lag_days=0,30"], jobs=2, out_dir=out,
                               notebook=FIXTURE_NB, progress=False)
    assert [o.name for o in outcomes] == ["demo-0", "demo-30"]
    assert all(o.ok for o in outcomes)
    lags = [json.loads((o.run_dir / "results.json").read_text())["parameters"]["study"]["lag_days"]
            for o in outcomes]
    assert lags == [0, 30]
    manifests = [json.loads((o.run_dir / "manifest.json").read_text()) for o in outcomes]
    pids = {m["pid"] for m in manifests}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {m["batch"]["size"] for m in manifests} == {2}
    assert len({m["batch"]["id"] for m in manifests}) == 1
    index = (out / "index.html").read_text()
    assert "Batch runs" in index and "2 of 2 ok" in index
    assert "study.lag_days=30" in index


# --------------------------------------------------------------------------- helpers


def test_plan_runs_crosses_configs_and_grid():
    specs = plan.plan_runs([Path("a.yaml"), Path("b.yaml")], ["study.alpha=0.1"],
                             ["study.lag_days=0,30", "data.grid=month,week"])
    assert len(specs) == 8
    assert specs[0].overrides == ("study.alpha=0.1", "study.lag_days=0", "data.grid=month")
    assert specs[0].suffix == "0-month" and specs[-1].suffix == "30-week"
    assert {s.batch_size for s in specs} == {8}


def test_sha256_matches_the_published_test_vector(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    # FIPS 180-2 example
    assert manifest.sha256_file(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_count_rows_counts_records_not_lines(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id;note\n1;"two\nlines"\n2;x\n', encoding="utf-8")
    cfg = {"data": {"delimiter": None, "encoding": None, "table": None}}
    assert manifest.count_rows(path, cfg) == 2
    pq = tmp_path / "t.parquet"
    pd.DataFrame({"a": range(7)}).to_parquet(pq)
    assert manifest.count_rows(pq, cfg) == 7
    assert manifest.count_rows(tmp_path / "absent.csv", cfg) is None


# Row counts from the data README; the 80 % BigML file is said to hold 2,666 rows but
# holds 2,661 records (2,662 CRLF lines with the header), so it is counted with csv.
@pytest.mark.parametrize(("name", "rows"), [("ibm_telco_customer_churn.csv", 7043),
                                            ("telecom_churn_bigml_80.csv", None),
                                            ("telecom_churn_bigml_20.csv", 667)])
def test_count_rows_of_the_real_data(name, rows):
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    if rows is None:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = sum(1 for _ in csv.reader(fh)) - 1
    cfg = {"data": {"delimiter": None, "encoding": None, "table": None}}
    assert manifest.count_rows(path, cfg) == rows


def test_customer_ids_of_a_real_table_are_found_in_html():
    path = REAL / "ibm_telco_customer_churn.csv"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    cfg = {"data": {"format": "table", "path": str(path), "id": "customerID",
                    "delimiter": None, "encoding": None}}
    ids = checks.customer_ids(cfg)
    assert len(ids) == 7043 and "7590-VHVEG" in ids  # first row of the file
    page = "<table><tr><td>7590-VHVEG</td><td>29.85</td></tr></table>"
    assert checks.find_leaked_ids(page, checks.checkable_ids(ids)) == {"7590-VHVEG"}
    assert checks.find_leaked_ids("<p>7043 customers, 26.5% left</p>", ids) == set()


def test_find_leaked_ids_ignores_inline_images_and_substrings():
    ids = {"AB12CD", "C-017", "cust 9"}
    png = "data:image/png;base64,xxAB12CDxx/AB12CD+=="
    page = f'<img src="{png}"><p>C-0170 and C-017.</p><td>cust 9</td>'
    assert checks.find_leaked_ids(page, ids) == {"C-017", "cust 9"}
    assert checks.find_leaked_ids("<p>&lt;AB12CD&gt;</p>", ids) == {"AB12CD"}


def test_latest_falls_back_to_a_text_file_without_symlinks(tmp_path, monkeypatch):
    first, second = tmp_path / "n" / "20260101T000000Z", tmp_path / "n" / "20260201T000000Z"
    first.mkdir(parents=True)
    second.mkdir()

    def no_symlinks(*args, **kwargs):
        raise OSError("symlinks not supported here")

    folders.point_latest(first)
    assert (tmp_path / "n" / "latest").is_symlink()
    monkeypatch.setattr(os, "symlink", no_symlinks)
    folders.point_latest(second)
    latest = tmp_path / "n" / "latest"
    assert latest.is_file() and not latest.is_symlink()
    assert folders.resolve_latest(tmp_path / "n") == second


def test_index_of_an_empty_folder(tmp_path):
    page = index_page.write_index(tmp_path / "reports")
    assert "No runs yet" in page.read_text()


def test_a_cell_over_the_timeout_fails_the_run_with_1(tmp_path, kernel):
    config = write_config(tmp_path, "slow-demo", write_world(tmp_path / "data"))
    outcome = runner.run_config(config, ["report.timeout_per_cell=2"], out_dir=tmp_path / "r",
                                notebook=FIXTURE_NB)
    assert not outcome.ok and outcome.exit_status == 1
    assert "longer than 2 s" in outcome.reason
    # the step is named: the heading above the cell and the cell's first line
    # (under load the imports may be the cell that is stopped: any cell, but named)
    assert re.search(r"step 'Fixture study, cell \d+: \S.*' ran longer", outcome.reason)
    assert outcome.run_dir.name.endswith("-FAILED")
    assert (outcome.run_dir / "report.ipynb").is_file()
    assert folders.resolve_latest(tmp_path / "r" / "slow-demo") is None
