"""Every notebook is reviewable (no outputs, one parameters cell, no defs) and runs.

The execution test runs each notebook with papermill on small data into a temporary
folder, with the project's kernel, and fails on any cell error.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import yaml

from retention_study.config import CONFIGS_DIR, KERNEL_NAME, NOTEBOOKS_DIR, resolve_config

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _code_cells(path: Path):
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for cell in _code_cells(path):
        assert not cell.get("outputs"), f"{path.name}: a code cell has outputs"
        assert cell.get("execution_count") is None, f"{path.name}: execution counts stored"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_with_commented_typed_defaults(path):
    cells = [c for c in _code_cells(path) if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged 'parameters'"
    src = cells[0].source
    tree = ast.parse(src)
    names = [t.id for node in tree.body if isinstance(node, ast.AnnAssign | ast.Assign)
             for t in ([node.target] if isinstance(node, ast.AnnAssign) else node.targets)]
    assert names, "the parameters cell assigns nothing"
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "retention_study.notebook":
            continue  # notebook_parameters: the defaults a partial papermill dict merges with
        assert isinstance(node, ast.AnnAssign), (
            f"{path.name}: parameter on line {node.lineno} has no type annotation")
    for line in src.splitlines():
        code = line.split("#")[0].strip()
        if code and code not in ("}", "{", "]", "[") and not code.endswith(("{", "[")):
            assert "#" in line, f"{path.name}: parameter line without a comment: {line!r}"
    assert "as_of" in src and "today(" not in src


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_definitions_in_notebooks(path):
    for cell in _code_cells(path):
        tree = ast.parse("\n".join(line for line in cell.source.splitlines()
                                   if not line.lstrip().startswith(("%", "!"))))
        defs = [n for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)]
        assert not defs, f"{path.name}: defines {defs[0].name}; move it into retention_study"


def _execute(path: Path, cfg: dict, out_dir: Path) -> dict:
    params = {k: cfg[k] for k in ("name", "data", "study", "report")}
    params["results_path"] = str(out_dir / "results.json")
    try:
        pm.execute_notebook(str(path), str(out_dir / path.name), parameters=params,
                            kernel_name=KERNEL_NAME, progress_bar=False, cwd=str(Path.cwd()))
    except pm.PapermillExecutionError as exc:
        pytest.fail(f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
    return json.loads((out_dir / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_small_simulated_data(path, small_sample, tmp_path):
    cfg = resolve_config(yaml.safe_load((CONFIGS_DIR / "default.yaml").read_text()))
    for key in ("customers", "price_events", "contact_events"):
        cfg["data"][key] = str(small_sample / f"{key}.csv")
    cfg["study"]["bootstrap"] = 50
    results = _execute(path, cfg, tmp_path)
    # the simulated world plants contact, not price (preset "contact"): the notebook's
    # verdict must find it, on the customers the loader kept
    assert results["verdict"] == "contact"
    assert results["n_customers"] == results["ledger"]["rows_analysed"]["customers"] > 1000


def _real_config(name: str) -> dict:
    from retention_study.config_file import load_config

    cfg = load_config(CONFIGS_DIR / f"{name}.yaml")
    cfg["study"]["bootstrap"] = 30
    return cfg


@pytest.mark.slow
def test_ibm_telco_report_knows_the_data(tmp_path):
    """IBM Telco: month-to-month contracts leave faster than two-year ones (a known fact)."""
    results = _execute(NOTEBOOKS_DIR / "study.ipynb", _real_config("ibm_telco"), tmp_path)
    assert results["format"] == "table"
    assert results["n_customers"] == 7043 - 11  # tenure-0 customers have no time at risk
    assert results["ledger"]["rows_in"]["table"] == 7043
    rates = {r["segment"]: r for r in results["segments"]["by_column"]["Contract"]["summary"]}
    assert rates["Month-to-month"]["lower"] > rates["Two year"]["upper"]
    km = {r["group"]: r for r in results["km"]["Contract"]}
    assert km["Month-to-month"]["departures"] > km["Two year"]["departures"]
    blocks = results["blocks"]
    assert blocks["price"] == ["MonthlyCharges"]
    assert any(c.startswith("TechSupport") for c in blocks["contact"])
    assert {c["claim"] for c in results["claims"]} == set(range(1, 8))


@pytest.mark.slow
def test_bigml_report_knows_the_data(tmp_path):
    """BigML: more customer-service calls go with more departures (a known fact)."""
    results = _execute(NOTEBOOKS_DIR / "study.ipynb", _real_config("bigml_telecom"), tmp_path)
    calls = next(e for e in results["effects"] if e["covariate"] == "Customer service calls")
    assert calls["lower"] > 1.0
    assert "customer-initiated" in results["definitions"]["Customer service calls"]
    assert results["ledger"]["rows_in"]["table"] == sum(
        sum(1 for _ in open(REAL / f, encoding="utf-8")) - 1
        for f in ("telecom_churn_bigml_80.csv", "telecom_churn_bigml_20.csv"))
