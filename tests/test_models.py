"""Tests of retention_study.analysis.models against independent references.

References: a partial likelihood written out by hand, R's survival::coxph (numbers stored by
tests/fixtures/r_reference/make_reference.R), textbook LR/AIC formulas and simulated data
with known hazard ratios.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxTimeVaryingFitter
from scipy import stats
from timeline_sim import simulate_timeline

from retention_study.analysis.models import (
    BlockModels,
    CoxFit,
    fit_cox,
    likelihood_ratio,
    split_episodes,
)
from retention_study.data.schema import Timeline
from retention_study.errors import AnalysisError
from retention_study.survival import log_partial_likelihood

REF = Path(__file__).resolve().parent / "fixtures" / "r_reference"


def _r(model: str, quantity: str, term: str = "") -> float:
    ref = pd.read_csv(REF / "reference.csv", keep_default_na=False)
    hit = ref[(ref["model"] == model) & (ref["quantity"] == quantity) & (ref["term"] == term)]
    return float(hit["value"].iloc[0])


# ----------------------------------------------------------------- (a) by hand

TINY = pd.DataFrame({"customer_id": list("ABCD"), "start": [0.0, 0.0, 0.0, 0.0],
                     "stop": [1.0, 2.0, 2.0, 3.0], "event": [1, 1, 1, 0],
                     "x": [1.0, 0.0, 2.0, 1.0]})


def _hand_efron(b: float) -> float:
    # t=1: A leaves; all four at risk.
    s1 = math.exp(b) + 1 + math.exp(2 * b) + math.exp(b)
    # t=2: B and C leave together; B, C, D at risk; Efron removes half the tied risk.
    s2 = 1 + math.exp(2 * b) + math.exp(b)
    tied = 1 + math.exp(2 * b)
    return (b - math.log(s1)) + (0 + 2 * b) - math.log(s2) - math.log(s2 - 0.5 * tied)


def _hand_breslow(b: float) -> float:
    s1 = math.exp(b) + 1 + math.exp(2 * b) + math.exp(b)
    s2 = 1 + math.exp(2 * b) + math.exp(b)
    return (b - math.log(s1)) + 2 * b - 2 * math.log(s2)


@pytest.mark.parametrize("b", [0.0, 0.5, -1.2])
def test_partial_likelihood_matches_hand_computation(b):
    assert log_partial_likelihood(TINY, ["x"], [b]) == pytest.approx(_hand_efron(b), rel=1e-12)
    assert log_partial_likelihood(TINY, ["x"], [b], ties="breslow") == pytest.approx(
        _hand_breslow(b), rel=1e-12)


def test_late_entry_leaves_the_risk_set_by_hand():
    late = TINY.assign(start=[0.0, 0.0, 0.0, 1.5])  # D enters after A's departure at t=1
    b = 0.7
    s1 = math.exp(b) + 1 + math.exp(2 * b)
    s2 = 1 + math.exp(2 * b) + math.exp(b)
    hand = (b - math.log(s1)) + 2 * b - math.log(s2) - math.log(s2 - 0.5 * (1 + math.exp(2 * b)))
    assert log_partial_likelihood(late, ["x"], [b]) == pytest.approx(hand, rel=1e-12)


def test_fitted_loglik_at_the_mle_matches_hand():
    fit = fit_cox(TINY, ["x"])
    b_hat = float(fit.fitter.params_["x"])
    assert fit.loglik == pytest.approx(_hand_efron(b_hat), rel=1e-12)
    # the MLE is where the hand likelihood is flat
    slope = (_hand_efron(b_hat + 1e-5) - _hand_efron(b_hat - 1e-5)) / 2e-5
    assert abs(slope) < 1e-6
    assert fit_cox(TINY, []).loglik == pytest.approx(_hand_efron(0.0), rel=1e-12)


# ----------------------------------------------------------------- (b) R survival::coxph


def test_static_fit_matches_r_coxph_on_lung():
    lung = pd.read_csv(REF / "lung.csv").assign(start=0.0).rename(columns={"time": "stop"})
    cols = ["age", "sex", "ph_ecog"]
    fit = fit_cox(lung, cols)
    for c in cols:
        assert fit.fitter.params_[c] == pytest.approx(_r("lung", "coef", c), rel=1e-4)
        assert fit.fitter.standard_errors_[c] == pytest.approx(_r("lung", "se", c), rel=1e-4)
    assert fit.loglik == pytest.approx(_r("lung", "loglik"), rel=1e-6)
    assert fit.aic == pytest.approx(_r("lung", "aic"), rel=1e-6)
    small = fit_cox(lung, ["age"])
    lr = likelihood_ratio(fit, small)
    ref = "lung_lr_sex_ecog_given_age"
    assert lr["statistic"] == pytest.approx(_r(ref, "lr_statistic"), rel=1e-4)
    assert lr["df"] == _r(ref, "lr_df")
    assert lr["p"] == pytest.approx(_r(ref, "lr_p"), rel=1e-3)


def test_start_stop_fit_matches_r_coxph_on_heart():
    heart = pd.read_csv(REF / "heart.csv")
    cols = ["age", "year", "surgery", "transplant"]
    fit = fit_cox(heart, cols)
    for c in cols:
        assert fit.fitter.params_[c] == pytest.approx(_r("heart", "coef", c), rel=1e-4)
        assert fit.fitter.standard_errors_[c] == pytest.approx(_r("heart", "se", c), rel=1e-4)
    assert fit.loglik == pytest.approx(_r("heart", "loglik"), rel=1e-6)
    assert log_partial_likelihood(heart, cols, fit.fitter.params_) == pytest.approx(
        _r("heart", "loglik"), rel=1e-6)
    assert log_partial_likelihood(heart, [], []) == pytest.approx(
        _r("heart", "loglik_null"), rel=1e-8)
    lr = likelihood_ratio(fit, fit_cox(heart, ["age", "year"]))
    ref = "heart_lr_surgery_transplant_given_age_year"
    assert lr["statistic"] == pytest.approx(_r(ref, "lr_statistic"), rel=1e-4)
    assert lr["p"] == pytest.approx(_r(ref, "lr_p"), rel=1e-3)


def test_entry_col_fit_agrees_with_time_varying_fitter():
    heart = pd.read_csv(REF / "heart.csv")
    cols = ["age", "year", "surgery", "transplant"]
    fit = fit_cox(heart, cols)
    ctv = CoxTimeVaryingFitter().fit(heart[["id", "start", "stop", "event", *cols]],
                                     id_col="id", start_col="start", stop_col="stop",
                                     event_col="event")
    # both stop at their own convergence tolerance, hence 1e-4 (they also match R to 1e-4)
    np.testing.assert_allclose(fit.fitter.params_[cols], ctv.params_[cols], rtol=1e-4)
    np.testing.assert_allclose(fit.fitter.standard_errors_[cols], ctv.standard_errors_[cols],
                               rtol=1e-4)
    assert fit.loglik == pytest.approx(ctv.log_likelihood_, rel=1e-7)


def test_entry_col_fit_agrees_with_lifelines_on_the_same_rows():
    from lifelines import CoxPHFitter

    heart = pd.read_csv(REF / "heart.csv")
    cols = ["age", "year", "surgery", "transplant"]
    fit = fit_cox(heart, cols)
    ref = CoxPHFitter().fit(heart[["start", "stop", "event", *cols]], "stop", "event",
                            entry_col="start")
    np.testing.assert_allclose(fit.fitter.params_[cols], ref.params_[cols], rtol=1e-4)
    assert fit.loglik == pytest.approx(ref.log_likelihood_, rel=1e-7)


# ----------------------------------------------------------------- (c) LR and AIC formulas


@pytest.fixture(scope="module")
def contact_world():
    tl = simulate_timeline(n=2000, hr_contact_6m=1.6, seed=11)
    return tl, BlockModels().fit(tl)


def test_lr_tests_and_aic_follow_the_formulas(contact_world):
    _, bm = contact_world
    ll = {m: f.loglik for m, f in bm.fits.items()}
    lr = bm.lr_tests.set_index("test")
    stat = 2 * (ll["both"] - ll["contact"])
    assert lr.loc["price | contact", "statistic"] == pytest.approx(stat, rel=1e-12)
    assert lr.loc["price | contact", "df"] == 2
    assert lr.loc["price | contact", "p"] == pytest.approx(stats.chi2.sf(stat, 2), rel=1e-9)
    assert lr.loc["contact | price", "statistic"] == pytest.approx(
        2 * (ll["both"] - ll["price"]), rel=1e-12)
    aic = bm.aic.set_index("model")["aic"]
    k = {m: len(c) for m, c in bm.columns.items()}
    for m in bm.fits:
        assert aic[m] == pytest.approx(-2 * ll[m] + 2 * k[m], rel=1e-12)
    assert k == {"controls": 2, "price": 4, "contact": 3, "both": 5}


def test_likelihood_ratio_by_hand():
    lr = likelihood_ratio(CoxFit("big", ["a", "b", "c"], -50.0), CoxFit("small", ["a"], -54.5))
    assert lr["statistic"] == pytest.approx(9.0)
    assert lr["p"] == pytest.approx(math.exp(-9.0 / 2), rel=1e-9)  # chi2 with 2 df


# ----------------------------------------------------------------- known truth


def test_recovers_the_simulated_hazard_ratio_in_business_units(contact_world):
    _, bm = contact_world
    eff = bm.effects.set_index("covariate")
    row = eff.loc["months_since_contact"]
    assert row["unit"] == "6 months without outbound contact"
    assert row["lower"] < 1.6 < row["upper"]
    assert eff.loc["loyalty_penalty", "lower"] < 1.0 < eff.loc["loyalty_penalty", "upper"]
    assert row["hr"] == pytest.approx(
        math.exp(6 * bm.fits["both"].fitter.params_["months_since_contact"]))


def test_models_use_identical_rows_and_nested_columns(contact_world):
    tl, bm = contact_world
    for f in bm.fits.values():
        if f.fitter is not None:
            assert f.fitter.n_events_ == tl.n_departures
            assert f.fitter.n_rows_ == len(tl.episodes)
            assert f.fitter.data_ is bm.cox_data_  # one prepared copy for all models
    assert set(bm.columns["controls"]) < set(bm.columns["price"]) < set(bm.columns["both"])
    assert "inbound_calls" in bm.columns["controls"]


def test_to_dict_is_json_safe(contact_world):
    import json

    _, bm = contact_world
    text = json.dumps(bm.to_dict(), allow_nan=False)
    assert "months_since_contact" in text


# ----------------------------------------------------------------- PH check


def _static_timeline(z, stop, event, block="contact"):
    eps = pd.DataFrame({"customer_id": [f"c{i:05d}" for i in range(len(z))], "start": 0.0,
                        "stop": stop, "event": event, "z": z, "age": np.zeros(len(z)) + 1})
    eps["age"] = np.random.default_rng(9).normal(size=len(z))
    blocks = {"price": [], "contact": [], "service": [], "controls": ["age"]}
    blocks[block] = ["z"]
    return Timeline(eps, blocks)


def test_ph_check_passes_under_proportional_hazards_and_flags_a_fading_effect():
    rng = np.random.default_rng(4)
    n = 1500
    z = rng.normal(size=n)
    t_ph = rng.exponential(1 / np.exp(0.8 * z))
    bm = BlockModels().fit(_static_timeline(z, t_ph, np.ones(n, int)))
    assert not bm.ph_check["fails"].any()
    assert bm.ph_remedy is None
    # effect +1.0 in the first time unit, -0.5 afterwards: not proportional
    early = rng.exponential(1 / np.exp(1.0 * z))
    late = 1 + rng.exponential(1 / np.exp(-0.5 * z))
    t = np.where(early < 1, early, late)
    bm = BlockModels().fit(_static_timeline(z, t, np.ones(n, int)))
    check = bm.ph_check.set_index("covariate")
    assert check.loc["z", "fails"]
    assert bm.ph_remedy["time_interactions"] == ["z"]
    inter = bm.ph_remedy["summary"].set_index("covariate").loc["z:log_t"]
    assert inter["coef"] < 0 and inter["p"] < 0.01
    assert any("Proportional hazards fails" in p for p in bm.problems)


def test_split_episodes_keeps_exposure_and_events():
    tl = simulate_timeline(n=200, seed=2)
    eps = tl.episodes.assign(start=lambda d: d["start"] * 0.5, stop=lambda d: d["stop"] * 0.5 + .2)
    split = split_episodes(eps, [0.3, 1.7, 4.05, 9.9])
    exposure = (eps["stop"] - eps["start"]).sum()
    assert (split["stop"] - split["start"]).sum() == pytest.approx(exposure)
    assert split["event"].sum() == eps["event"].sum()
    assert (split["stop"] > split["start"]).all()


# ----------------------------------------------------------------- failure modes


def test_zero_departures_raise_analysis_error():
    tl = simulate_timeline(n=100, seed=1)
    tl.episodes["event"] = 0
    with pytest.raises(AnalysisError, match="no customer left"):
        BlockModels().fit(tl)


def test_few_departures_empty_block_and_constant_column_are_problems():
    tl = simulate_timeline(n=150, months=12, base_hazard=0.01, seed=3)
    tl.blocks["price"] = []
    tl.episodes["inbound_calls"] = 0.0
    bm = BlockModels(min_departures=50).fit(tl)
    text = " ".join(bm.problems)
    assert "departures" in text and "No price measure" in text and "same value" in text
    assert np.isnan(bm.lr_tests.set_index("test").loc["price | contact", "p"])
    assert bm.fits["price"].loglik == pytest.approx(bm.fits["controls"].loglik)


def test_collinear_blocks_are_reported_not_crashed():
    tl = simulate_timeline(n=300, hr_contact_6m=1.5, seed=4)
    tl.episodes["price_copy"] = 2.0 * tl.episodes["months_since_contact"] + 1
    tl.blocks["price"] = ["price_copy"]
    bm = BlockModels().fit(tl)
    assert any("'price_copy' (price) duplicates 'months_since_contact'" in p
               for p in bm.problems)
    assert "price_copy" not in bm.columns["both"]


def test_separation_is_reported():
    rng = np.random.default_rng(5)
    n = 200
    flag = (np.arange(n) < 20).astype(float)
    stop = np.where(flag == 1, rng.uniform(0, 0.1, n), rng.uniform(1, 5, n))
    event = np.where(flag == 1, 1, rng.integers(0, 2, n))
    eps = pd.DataFrame({"customer_id": np.arange(n).astype(str), "start": 0.0, "stop": stop,
                        "event": event, "flag": flag, "age": rng.normal(size=n)})
    tl = Timeline(eps, {"price": ["flag"], "contact": [], "service": [], "controls": ["age"]})
    bm = BlockModels().fit(tl)
    assert any("separation" in p for p in bm.problems)


def test_ph_check_does_not_depend_on_row_order(contact_world):
    tl, bm = contact_world
    shuffled = Timeline(tl.episodes.sample(frac=1.0, random_state=3), tl.blocks)
    again = BlockModels().fit(shuffled)
    pd.testing.assert_frame_equal(again.ph_check, bm.ph_check)


def test_failing_binary_control_becomes_a_stratum():
    rng = np.random.default_rng(6)
    n = 1500
    g = (rng.random(n) < 0.5).astype(float)
    z = rng.normal(size=n)
    # group g=1 has 4x the hazard early and 1/4 later: not proportional
    early = rng.exponential(1 / (np.exp(0.5 * z) * np.where(g == 1, 4.0, 1.0)))
    late = 1 + rng.exponential(1 / (np.exp(0.5 * z) * np.where(g == 1, 0.25, 1.0)))
    eps = pd.DataFrame({"customer_id": np.arange(n).astype(str), "start": 0.0,
                        "stop": np.where(early < 1, early, late), "event": 1, "z": z, "g": g})
    tl = Timeline(eps, {"price": [], "contact": ["z"], "service": [], "controls": ["g"]})
    bm = BlockModels(check_ph=True).fit(tl)
    assert bm.ph_check.set_index("covariate").loc["g", "fails"]
    assert bm.ph_remedy["strata"] == ["g"]
    remedy = bm.ph_remedy["summary"].set_index("covariate")
    assert "g" not in remedy.index
    assert remedy.loc["z", "coef"] == pytest.approx(0.5, abs=0.15)
    assert BlockModels(check_ph=False).fit(tl).ph_remedy is None


def test_non_convergence_is_refitted_with_a_ridge_and_reported():
    lung = pd.read_csv(REF / "lung.csv").assign(start=0.0).rename(columns={"time": "stop"})
    lung["age_twin"] = lung["age"]  # singular information matrix without a penalty
    problems: list[str] = []
    fit = fit_cox(lung, ["age", "age_twin"], name="twin", problems=problems)
    assert fit.fitter is not None and fit.penalizer > 0
    assert any("twin model did not converge" in p for p in problems)
    # a ridge splits the shared effect evenly between the twins
    assert fit.fitter.params_["age"] == pytest.approx(fit.fitter.params_["age_twin"])


def test_missing_values_and_absent_columns_are_left_out_with_a_message():
    tl = simulate_timeline(n=300, hr_contact_6m=1.5, seed=7)
    tl.episodes.loc[:9, "age"] = np.nan
    tl.blocks["controls"] = ["age", "region_not_there"]
    bm = BlockModels().fit(tl)
    text = " ".join(bm.problems)
    assert "10 episodes with a missing covariate value" in text
    assert "region_not_there" in text
    assert len(bm.data_) == len(tl.episodes) - 10


def test_ph_check_close_to_lifelines_shortcut_on_untied_static_data():
    """Without late entry, ties or a changing risk-set variance the shortcut is close.

    The check is the exact score test of R's cox.zph (tests/test_ph_test.py compares it
    with R); lifelines' test on scaled residuals approximates it, well here.
    """
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    rng = np.random.default_rng(8)
    n = 600
    z, w = rng.normal(size=n), rng.normal(size=n)
    stop = np.where(rng.random(n) < 0.5, rng.exponential(1 / np.exp(0.7 * z)), 2.0 * rng.random(n))
    eps = pd.DataFrame({"customer_id": [f"c{i:04d}" for i in range(n)], "start": 0.0,
                        "stop": stop, "event": rng.integers(0, 2, n), "z": z, "w": w})
    tl = Timeline(eps, {"price": ["w"], "contact": ["z"], "service": [], "controls": []})
    ours = BlockModels().fit(tl).ph_check.set_index("covariate")
    cph = CoxPHFitter().fit(eps[["stop", "event", "z", "w"]], "stop", "event")
    ref = proportional_hazard_test(cph, eps[["stop", "event", "z", "w"]],
                                   time_transform="km").summary
    for c in ("z", "w"):
        assert ours.loc[c, "p"] == pytest.approx(ref.loc[c, "p"], abs=0.03)


@pytest.mark.parametrize("column, value", [("stop", None), ("stop", np.inf), ("start", np.nan)])
def test_broken_episode_times_are_an_analysis_error_not_four_failed_fits(column, value):
    tl = simulate_timeline(n=100, seed=1)
    eps = tl.episodes
    eps.loc[5, column] = eps.loc[5, "start"] if value is None else value  # None: zero length
    with pytest.raises(AnalysisError, match="1 episodes .* the timeline is broken"):
        BlockModels().fit(tl)


def test_infinite_and_text_covariates():
    tl = simulate_timeline(n=300, hr_contact_6m=1.5, seed=7)
    tl.episodes.loc[:3, "inbound_calls"] = np.inf
    bm = BlockModels().fit(tl)
    assert any("4 episodes with an infinite covariate value" in p for p in bm.problems)
    assert len(bm.data_) == len(tl.episodes) - 4
    tl.episodes["age"] = "old"
    with pytest.raises(AnalysisError, match=r"covariates \['age'\] are not numeric"):
        BlockModels().fit(tl)


def test_few_departures_counted_after_rows_with_missing_values_are_left_out():
    tl = simulate_timeline(n=300, hr_contact_6m=1.5, seed=7)
    eps = tl.episodes
    departed = eps.index[eps["event"] == 1]
    eps.loc[departed[5:], "age"] = np.nan  # 5 departures keep a full row
    bm = BlockModels(min_departures=10).fit(tl)
    assert any(p.startswith("Only 5 departures (fewer than 10)") for p in bm.problems)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_partial_likelihood_matches_r_with_ties_and_late_entry(ties):
    from test_survival_cox import TIED

    beta = [_r(f"tied_{ties}", "coef", c) for c in ("x", "g")]
    assert log_partial_likelihood(TIED, ["x", "g"], beta, ties=ties) == pytest.approx(
        _r(f"tied_{ties}", "loglik"), rel=1e-9)
    assert log_partial_likelihood(TIED, [], [], ties=ties) == pytest.approx(
        _r(f"tied_{ties}", "loglik_null"), rel=1e-9)


def test_business_units_of_unknown_columns():
    """Binary: yes vs no; a small count: per +1; anything else: per SD (unit named)."""
    from retention_study.analysis.models import _business_unit

    assert _business_unit("Partner", pd.Series([0.0, 1.0, 1.0]))[0] == 1.0
    scale, unit, _ = _business_unit("Customer service calls", pd.Series([0.0, 1, 3, 9]))
    assert (scale, unit) == (1.0, "+1 Customer service calls")
    charge = pd.Series([10.5, 20.25, 30.0])
    scale, unit, _ = _business_unit("Total day charge", charge)
    assert scale == pytest.approx(charge.std()) and unit.startswith("+1 SD of Total day charge")
