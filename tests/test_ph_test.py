"""The proportional-hazards check against R's cox.zph (survival 3.5, exact score test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention_study.analysis.models import fit_cox, ph_score_test, ph_test, ph_time_transform

HERE = Path(__file__).parent / "fixtures"
REF = pd.read_csv(HERE / "r_zph" / "zph_reference.csv")
COEF = pd.read_csv(HERE / "r_zph" / "coef_reference.csv")
DATA = {"monthly": pd.read_csv(HERE / "r_zph" / "monthly.csv"),
        "heart": pd.read_csv(HERE / "r_reference" / "heart.csv")}


@pytest.mark.parametrize("model", ["monthly", "heart"])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("transform", ["km", "rank", "identity"])
def test_score_test_matches_r_cox_zph(model, ties, transform):
    coef = COEF[(COEF["model"] == model) & (COEF["ties"] == ties)]
    ours = ph_score_test(DATA[model], list(coef["term"]), coef["coef"].to_numpy(), ties=ties,
                         transform=transform)
    r = REF[(REF["model"] == model) & (REF["ties"] == ties) & (REF["transform"] == transform)]
    merged = ours.merge(r, left_on="covariate", right_on="term", validate="1:1")
    assert len(merged) == len(coef) + 1  # every term and GLOBAL
    np.testing.assert_allclose(merged["statistic"], merged["chisq"], rtol=1e-6)
    np.testing.assert_allclose(merged["p_x"], merged["p_y"], rtol=1e-5, atol=1e-12)


def test_ph_test_uses_the_fit_and_its_rows():
    eps = DATA["monthly"].assign(customer_id=lambda d: d["id"].astype(str))
    fit = fit_cox(eps, ["flag", "x2"])
    # lifelines' Efron fit equals R's, so the test equals R's km row
    r_coef = COEF[(COEF["model"] == "monthly") & (COEF["ties"] == "efron")]["coef"].to_numpy()
    np.testing.assert_allclose(fit.fitter.params_.to_numpy(), r_coef, rtol=1e-5)
    out = ph_test(fit, eps)
    r = REF[(REF["model"] == "monthly") & (REF["ties"] == "efron") & (REF["transform"] == "km")
            & (REF["term"] != "GLOBAL")]
    assert out["covariate"].tolist() == ["flag", "x2"]
    np.testing.assert_allclose(out["statistic"], r["chisq"], rtol=1e-4)
    assert not out["fails"].any()
    # row order no longer matters (lifelines' rank transform depended on it)
    shuffled = eps.sample(frac=1.0, random_state=1).reset_index(drop=True)
    np.testing.assert_allclose(ph_test(fit, shuffled)["statistic"], out["statistic"])


def test_non_proportional_flag_is_caught():
    # the flag's effect vanishes after month 6: the test must reject
    rng = np.random.default_rng(2)
    rows = []
    for i in range(3000):
        flag = int(rng.random() < 0.3)
        for t in range(24):
            h = 0.03 * np.exp((1.2 if t < 6 else 0.0) * flag)
            ev = int(rng.random() < h)
            rows.append((i, t, t + 1, ev, flag))
            if ev:
                break
    eps = pd.DataFrame(rows, columns=["id", "start", "stop", "event", "flag"])
    fit = fit_cox(eps, ["flag"])
    assert ph_test(fit, eps).set_index("covariate").loc["flag", "fails"]


def test_km_transform_is_one_minus_left_continuous_km():
    eps = pd.DataFrame({"start": 0.0, "stop": [1.0, 2.0, 2.0, 3.0], "event": [1, 1, 0, 1]})
    # KM: S(1) = 3/4, S(2) = 3/4 * 2/3 = 1/2, S(3) = 0; g at each stop = 1 - S(t-)
    g = np.array([0.0, 0.25, 0.25, 0.5])
    np.testing.assert_allclose(ph_time_transform(eps, "km"), g - g[[0, 1, 3]].mean())
