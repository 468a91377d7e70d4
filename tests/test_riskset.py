"""Tests of retention_study.riskset against R's survival::coxph and lifelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from retention_study.errors import AnalysisError
from retention_study.riskset import RiskSetCox

REF = Path(__file__).resolve().parent / "fixtures" / "r_reference"

# Start/stop rows with tied times and late entry; R's fits of them (both ties) are stored
# by tests/fixtures/r_reference/make_reference.R as models tied_breslow and tied_efron.
TIED = pd.DataFrame({
    "start": [0, 0, 2, 0, 1, 0, 3, 0, 0, 2, 0, 1, 0, 0, 4],
    "stop": [5, 3, 6, 2, 4, 5, 8, 7, 3, 5, 6, 9, 4, 2, 7],
    "event": [1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1],
    "x": [1.2, 0.5, -0.3, 2.0, 0.1, 0.8, -1.0, 0.0, 0.4, 1.5, -0.5, -0.2, 0.9, 0.3, -0.7],
    "g": [1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0],
}).astype(float)


def _r(model: str, quantity: str, term: str = "") -> float:
    ref = pd.read_csv(REF / "reference.csv", keep_default_na=False)
    hit = ref[(ref["model"] == model) & (ref["quantity"] == quantity) & (ref["term"] == term)]
    return float(hit["value"].iloc[0])


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_matches_r_coxph_with_ties_and_late_entry(ties):
    m = RiskSetCox(ridge=0.0, ties=ties).fit(TIED, ["x", "g"])
    model = f"tied_{ties}"
    assert m.params_.tolist() == pytest.approx([_r(model, "coef", "x"), _r(model, "coef", "g")],
                                               abs=1e-6)
    assert m.summary["se(coef)"].tolist() == pytest.approx(
        [_r(model, "se", "x"), _r(model, "se", "g")], abs=1e-6)
    assert m.log_likelihood_ == pytest.approx(_r(model, "loglik"), abs=1e-8)


def test_matches_lifelines_without_ties():
    rng = np.random.default_rng(1)
    n = 400
    x, g = rng.normal(size=n), (rng.random(n) < 0.4) * 1.0
    entry = np.where(rng.random(n) < 0.5, rng.uniform(0, 10, n), 0.0)
    t = entry + rng.exponential(20 / np.exp(0.4 * x + 0.3 * g))
    cens = entry + rng.uniform(5, 40, n)
    df = pd.DataFrame({"start": entry, "stop": np.minimum(t, cens),
                       "event": (t < cens).astype(int), "x": x, "g": g})
    ours = RiskSetCox(ridge=0.0).fit(df, ["x", "g"]).summary
    ref = CoxPHFitter().fit(df, "stop", "event", entry_col="start").summary
    assert ours["coef"].to_numpy() == pytest.approx(ref["coef"].to_numpy(), abs=1e-6)
    assert ours["se(coef)"].to_numpy() == pytest.approx(ref["se(coef)"].to_numpy(), abs=1e-6)


def test_segment_without_departures_stays_finite():
    df = TIED.assign(empty=(TIED["event"] == 0) * 1.0)  # only censored rows in this level
    s = RiskSetCox().fit(df, ["x", "empty"]).summary
    assert np.isfinite(s.loc["empty", "coef"]) and s.loc["empty", "exp(coef)"] < 0.1


def test_no_departures_is_an_analysis_error():
    with pytest.raises(AnalysisError, match="no departures"):
        RiskSetCox().fit(TIED.assign(event=0), ["x"])


@pytest.mark.parametrize("ties, model", [("breslow", "heart_breslow"), ("efron", "heart")])
def test_matches_r_coxph_on_the_heart_start_stop_data(ties, model):
    """Stanford heart data (late entry via transplant rows, tied times), stored R fits."""
    heart = pd.read_csv(REF / "heart.csv")
    cols = ["age", "year", "surgery", "transplant"]
    m = RiskSetCox(ridge=0.0, ties=ties).fit(heart, cols)
    for c in cols:
        assert m.params_[c] == pytest.approx(_r(model, "coef", c), rel=1e-6)
        assert m.summary.loc[c, "se(coef)"] == pytest.approx(_r(model, "se", c), rel=1e-6)
    assert m.log_likelihood_ == pytest.approx(_r(model, "loglik"), rel=1e-9)


def test_efron_matches_lifelines_with_ties_and_late_entry():
    m = RiskSetCox(ridge=0.0, ties="efron").fit(TIED, ["x", "g"])
    ref = CoxPHFitter().fit(TIED, "stop", "event", entry_col="start")  # Efron too
    assert m.params_.to_numpy() == pytest.approx(ref.params_[["x", "g"]].to_numpy(), abs=1e-5)
    assert m.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-8)


def test_without_covariates_gives_the_null_likelihood():
    heart = pd.read_csv(REF / "heart.csv")
    m = RiskSetCox(ties="efron").fit(heart, [])
    assert m.summary.empty
    assert m.log_likelihood_ == pytest.approx(_r("heart", "loglik_null"), rel=1e-9)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.drop(columns="g"), "absent"),
    (lambda d: d.assign(x=d["x"].where(d.index != 3)), "1 rows have a missing value"),
    (lambda d: d.assign(stop=d["stop"].where(d.index != 2, 2.0)), "1 rows end at or before"),
])
def test_bad_input_is_a_one_line_analysis_error(change, message):
    with pytest.raises(AnalysisError, match=message):
        RiskSetCox().fit(change(TIED), ["x", "g"])
