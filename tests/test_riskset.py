"""Tests of retention_study.riskset against R's survival::coxph and lifelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from retention_study.errors import AnalysisError
from retention_study.riskset import RiskSetCox

# Start/stop rows with tied times and late entry. Reference: R 4 / survival 3.5.3,
# coxph(Surv(start, stop, event) ~ x + g, ties = "breslow"):
# coef 1.31968679, -0.09828685; se 0.69155012, 0.88420303; loglik -17.18162976.
TIED = pd.DataFrame({
    "start": [0, 0, 2, 0, 1, 0, 3, 0, 0, 2, 0, 1, 0, 0, 4],
    "stop": [5, 3, 6, 2, 4, 5, 8, 7, 3, 5, 6, 9, 4, 2, 7],
    "event": [1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1],
    "x": [1.2, 0.5, -0.3, 2.0, 0.1, 0.8, -1.0, 0.0, 0.4, 1.5, -0.5, -0.2, 0.9, 0.3, -0.7],
    "g": [1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0],
}).astype(float)


def test_matches_r_coxph_breslow_with_ties_and_late_entry():
    m = RiskSetCox(ridge=0.0).fit(TIED, ["x", "g"])
    assert m.params_.tolist() == pytest.approx([1.31968679, -0.09828685], abs=1e-6)
    assert m.summary["se(coef)"].tolist() == pytest.approx([0.69155012, 0.88420303], abs=1e-6)
    assert m.log_likelihood_ == pytest.approx(-17.18162976, abs=1e-6)


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
