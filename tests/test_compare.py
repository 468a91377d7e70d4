"""Tests of retention_study.analysis.compare: held-out scores against independent references and
the verdict rule on simulated worlds with a known truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index
from timeline_sim import simulate_timeline

from retention_study.analysis.compare import VERDICTS, HeadToHead, decide_verdict, held_out_scores
from retention_study.analysis.models import BlockModels
from retention_study.data.schema import Timeline
from retention_study.survival import log_partial_likelihood

REF = Path(__file__).resolve().parent / "fixtures" / "r_reference"


def _static(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "start": 0.0,
                         "stop": rng.exponential(np.exp(-x)), "event": rng.integers(0, 2, n),
                         "x": x})


def test_concordance_by_hand_with_time_varying_rows():
    # a leaves at 2 with score 3; at t=2 at risk: b's second row (score 1), c (score 5).
    # b leaves at 4 with score 1; at risk then: c (score 5). c is censored.
    df = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"],
                       "start": [0, 1, 0, 1, 0.0], "stop": [1, 2, 1, 4, 5.0],
                       "event": [0, 1, 0, 1, 0]})
    eta = np.array([9.0, 3.0, 9.0, 1.0, 5.0])  # first rows must not count at t=2
    s = held_out_scores(df, eta)
    assert s["concordant"].sum() == 1.0  # a beats b's current row only
    assert s["comparable"].sum() == 3.0
    # partial likelihood by hand (Breslow): log(e3 / (e3 + e1 + e5)) + log(e1 / (e1 + e5))
    e = np.exp
    hand = np.log(e(3) / (e(3) + e(1) + e(5))) + np.log(e(1) / (e(1) + e(5)))
    assert s["pl"].sum() == pytest.approx(hand, rel=1e-12)


def test_concordance_matches_lifelines_harrell_c_on_static_data():
    df = _static()
    eta = 0.8 * df["x"].to_numpy()
    s = held_out_scores(df, eta)
    ours = s["concordant"].sum() / s["comparable"].sum()
    ref = concordance_index(df["stop"], -eta, df["event"])
    assert ours == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("model, cols", [("lung", ["age", "sex", "ph_ecog"]),
                                         ("heart", ["age", "year", "surgery", "transplant"])])
def test_concordance_matches_r_survival_incl_start_stop(model, cols):
    """R's coxph concordance (stored by make_reference.R), static and counting-process."""
    ref = pd.read_csv(REF / "reference.csv", keep_default_na=False)

    def r(quantity, term=""):
        hit = ref[(ref["model"] == model) & (ref["quantity"] == quantity) & (ref["term"] == term)]
        return float(hit["value"].iloc[0])

    data = pd.read_csv(REF / f"{model}.csv")
    if model == "lung":
        data = data.rename(columns={"time": "stop"}).assign(start=0.0)
        data["customer_id"] = np.arange(len(data)).astype(str)
    else:
        data = data.rename(columns={"id": "customer_id"})
    eta = data[cols].to_numpy() @ np.array([r("coef", c) for c in cols])
    s = held_out_scores(data, eta)
    assert s["concordant"].sum() / s["comparable"].sum() == pytest.approx(r("concordance"),
                                                                          rel=1e-10)


def test_held_out_loglik_equals_breslow_partial_likelihood():
    tl = simulate_timeline(n=300, hr_contact_6m=1.5, seed=8)
    eps = tl.episodes
    beta = np.array([0.05, 0.3])
    eta = eps[["months_since_contact", "age"]].to_numpy() @ beta
    s = held_out_scores(eps, eta)
    ref = log_partial_likelihood(eps, ["months_since_contact", "age"], beta, ties="breslow")
    assert s["pl"].sum() == pytest.approx(ref, rel=1e-10)
    assert list(s.index) == sorted(eps["customer_id"].unique())


# ----------------------------------------------------------------- verdicts on known worlds

WORLDS = {
    "contact": dict(hr_contact_6m=1.6),
    "price": dict(hr_price_10pct=1.5, hr_increase=1.4),
    "both": dict(hr_contact_6m=1.5, hr_price_10pct=1.5),
    "contact_correlated": dict(hr_contact_6m=1.6, correlated=0.8),
    "price_correlated": dict(hr_price_10pct=1.5, correlated=0.8),
}


@pytest.fixture(scope="module")
def worlds():
    out = {}
    for name, kw in WORLDS.items():
        tl = simulate_timeline(n=2000, seed=21, **kw)
        bm = BlockModels().fit(tl)
        out[name] = (tl, bm, HeadToHead(k=3, bootstrap=200, seed=2).fit(tl, bm))
    return out


@pytest.mark.parametrize("world", list(WORLDS))
def test_verdict_matches_the_simulated_truth(worlds, world):
    _, bm, h2h = worlds[world]
    verdict = decide_verdict(bm, h2h)
    assert verdict.label == world.split("_")[0]
    assert verdict.label in VERDICTS
    json.dumps(verdict.to_dict(), allow_nan=False)


def test_contact_world_cross_validation_favours_contact(worlds):
    _, _, h2h = worlds["contact"]
    d = h2h.differences.set_index("metric")
    for metric in ("cv_loglik", "concordance"):
        assert 0 < d.loc[metric, "lower"] < d.loc[metric, "estimate"] < d.loc[metric, "upper"]
    s = h2h.summary.set_index("model")
    assert s.loc["contact", "concordance"] > s.loc["price", "concordance"]
    assert s.loc["contact", "cv_loglik"] == pytest.approx(h2h.scores["contact"]["pl"].sum())
    for m in s.index:
        lo, c, hi = s.loc[m, ["concordance_lower", "concordance", "concordance_upper"]]
        assert lo < c < hi
    assert s.loc["contact", "concordance_lower"] > s.loc["price", "concordance_upper"]


def test_price_world_cross_validation_favours_price(worlds):
    d = worlds["price"][2].differences.set_index("metric")
    assert d.loc["cv_loglik", "upper"] < 0


def test_sentence_numbers_are_the_computed_ones(worlds):
    _, bm, h2h = worlds["contact"]
    verdict = decide_verdict(bm, h2h)
    row = bm.effects.set_index("covariate").loc["months_since_contact"]
    expected = f"{row['hr']:.2f} times as often for every 6 months without contact " \
               f"(95% CI {row['lower']:.2f}\u2013{row['upper']:.2f})"
    assert expected in verdict.sentence
    p = bm.lr_tests.set_index("test").loc["contact | price", "p"]
    # Holm: smaller p x 2, stated with the evidence, not in the manager's sentence
    assert f"{2 * p:.2g} for contact given price" in verdict.evidence["statistics"]
    assert "Holm" not in verdict.sentence and "p =" not in verdict.sentence
    assert "Lack of contact explains departures better than price" in verdict.sentence


def test_both_says_which_explains_more(worlds):
    verdict = decide_verdict(worlds["both"][1], worlds["both"][2])
    assert verdict.evidence["explains_more"] in ("contact", "price", None)
    assert re.search(r"explains more\. ", verdict.sentence)
    # how it was decided is evidence for the methods, not words for the manager
    assert verdict.evidence["explains_more_how"].startswith("cross-validated")
    assert "cross-validated" not in verdict.sentence


def test_neither_needs_evidence_of_absence():
    tl = simulate_timeline(n=3000, seed=31)
    bm = BlockModels().fit(tl)
    assert decide_verdict(bm, alpha=0.05, margin=1.5).label == "neither"
    # the same data with a margin too tight for its CIs cannot claim absence
    tight = decide_verdict(bm, alpha=0.05, margin=1.01)
    assert tight.label == "inconclusive"
    assert "not ruled out" in tight.sentence


def test_unmeasured_contact_never_yields_neither_or_both():
    tl = simulate_timeline(n=800, seed=5)
    tl.blocks["contact"] = []
    bm = BlockModels().fit(tl)
    verdict = decide_verdict(bm, margin=5.0)
    assert verdict.label == "inconclusive"
    assert "Contact was not measured in this data." in verdict.sentence


def test_head_to_head_runs_on_a_one_row_per_customer_table():
    df = _static(n=400, seed=3).assign(y=lambda d: np.random.default_rng(1).normal(size=400))
    tl = Timeline(df, {"price": ["y"], "contact": ["x"], "service": [], "controls": []})
    bm = BlockModels().fit(tl)
    h2h = HeadToHead(k=5, bootstrap=100, seed=1).fit(tl, bm)
    s = h2h.summary.set_index("model")
    assert s.loc["controls", "concordance"] == pytest.approx(0.5)
    assert s.loc["contact", "concordance"] > 0.6
    json.dumps(h2h.to_dict(), allow_nan=False)


def test_proxy_measures_are_named_not_called_lack_of_contact():
    df = _static(n=400, seed=4).assign(y=lambda d: np.random.default_rng(2).normal(size=400))
    df["x"] = -df["x"]  # more of the contact column goes with fewer departures
    tl = Timeline(df, {"price": ["y"], "contact": ["x"], "service": [], "controls": []})
    verdict = decide_verdict(BlockModels().fit(tl))
    assert verdict.label == "contact"
    assert verdict.evidence["directions"]["contact"] == "lowers departures"
    assert "The contact measure (x) explains departures better than the price measure (y)" \
        in verdict.sentence
    assert "per SD of x" in verdict.sentence
    assert "MORE departures" not in verdict.sentence


def test_contact_that_goes_with_more_departures_never_explains_them():
    """More of the contact measure, more departures: said so, never 'explains departures'."""
    df = _static(n=400, seed=4).assign(y=lambda d: np.random.default_rng(2).normal(size=400))
    tl = Timeline(df, {"price": ["y"], "contact": ["x"], "service": [], "controls": []})
    verdict = decide_verdict(BlockModels().fit(tl))
    assert verdict.label == "contact"
    assert verdict.evidence["directions"]["contact"] == "raises departures"
    assert "explains departures" not in verdict.sentence
    assert "lack of contact" not in verdict.sentence.split("it is not evidence")[0]
    assert "in the opposite direction to the claim" in verdict.sentence
    assert "More contact goes with MORE departures" in verdict.sentence
    assert "reactive" in verdict.sentence


def test_months_without_contact_that_lower_departures_read_as_more_contact_more_leaving():
    """HR < 1 per month without contact: contact raises departures (the claim reversed)."""
    rng = np.random.default_rng(7)
    n = 1500
    msc = rng.uniform(0, 24, n)
    df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "start": 0.0,
                       "stop": rng.exponential(12 * np.exp(0.08 * msc)), "event": 1,
                       "months_since_contact": msc, "loyalty_penalty": rng.normal(0, .1, n)})
    tl = Timeline(df, {"price": ["loyalty_penalty"], "contact": ["months_since_contact"],
                       "service": [], "controls": []})
    verdict = decide_verdict(BlockModels().fit(tl))
    assert verdict.label == "contact"
    assert verdict.evidence["directions"]["contact"] == "raises departures"
    assert "Lack of contact explains" not in verdict.sentence
    assert "explains departures better" not in verdict.sentence
    assert "% less often for every 6 months without contact" in verdict.sentence


def test_a_block_whose_measures_are_each_unclear_is_not_said_to_explain():
    from retention_study.analysis.verdict import conclusion_sentence

    info = {"contact": {"name": "lack of contact", "direction": "no clear effect",
                        "carriers": []},
            "price": {"name": "price", "direction": "no clear effect", "carriers": []}}
    text = conclusion_sentence("contact", info, {"price": "price",
                                                 "contact": "lack of contact"}, None)
    assert "explains" not in text
    assert "none of its measures is clearly different from no effect" in text
    info["contact"].update(direction="mixed across its measures",
                           carriers=["months_since_contact", "outbound_12m"])
    text = conclusion_sentence("contact", info, {"price": "price",
                                                 "contact": "lack of contact"}, None)
    assert "explains" not in text and "opposite directions" in text


def test_tiny_data_cross_validation_reports_instead_of_crashing():
    df = _static(n=12, seed=5).assign(y=lambda d: np.linspace(0, 1, 12))
    df["event"] = 0
    df.loc[0, "event"] = 1  # one departure: the training folds around it have none
    tl = Timeline(df, {"price": ["y"], "contact": ["x"], "service": [], "controls": []})
    bm = BlockModels().fit(tl)
    assert any("Only 1 departure " in p for p in bm.problems)
    h2h = HeadToHead(k=5, bootstrap=20, seed=1).fit(tl, bm)
    assert any(re.search(r"\(in \d of 5 folds\)\.$", p) for p in h2h.problems)
    json.dumps(h2h.to_dict(), allow_nan=False)
    assert decide_verdict(bm, h2h).label == "inconclusive"


def test_holm_keeps_a_lone_borderline_block_from_deciding(worlds):
    import copy

    bm = copy.copy(worlds["contact"][1])
    bm.lr_tests = bm.lr_tests.copy()
    tests = bm.lr_tests.set_index("test").index
    bm.lr_tests["p"] = np.where(tests == "price | contact", 0.04,
                                np.where(tests == "contact | price", 0.5, bm.lr_tests["p"]))
    verdict = decide_verdict(bm, alpha=0.05)
    assert verdict.label != "price"
    assert verdict.evidence["p_price_given_contact_holm"] == pytest.approx(0.08)
    bm.lr_tests["p"] = np.where(tests == "price | contact", 0.02,
                                np.where(tests == "contact | price", 0.04, bm.lr_tests["p"]))
    assert decide_verdict(bm, alpha=0.05).label == "both"  # Holm: 0.04 and 0.04


def test_per_departure_loglik_divides_by_departures_in_each_resample(worlds):
    tl, _, h2h = worlds["contact"]
    s = h2h.summary.set_index("model")
    assert s.loc["contact", "cv_loglik_per_departure"] == pytest.approx(
        s.loc["contact", "cv_loglik"] / tl.n_departures, rel=1e-12)
    # every departure scoring -2 exactly: any resample of customers averages -2 per
    # departure, whatever number of departures it happens to draw
    n = 50
    scores = pd.DataFrame({"pl": np.where(np.arange(n) < 20, -2.0, 0.0), "concordant": 1.0,
                           "comparable": 2.0, "departures": (np.arange(n) < 20) * 1.0})
    boot = HeadToHead(bootstrap=100, seed=1)
    boot._weights = np.random.default_rng(0).multinomial(n, np.full(n, 1 / n), size=100)
    row = boot._row("x", scores)
    assert row["cv_loglik_per_departure_lower"] == pytest.approx(-2.0)
    assert row["cv_loglik_per_departure_upper"] == pytest.approx(-2.0)


def test_failed_final_model_gives_inconclusive_without_nan_in_the_sentence(worlds):
    import copy

    bm = copy.copy(worlds["contact"][1])
    bm.effects = bm.effects.iloc[0:0]  # what business_effects gives when the fit failed
    bm.lr_tests = bm.lr_tests.assign(p=np.nan)
    verdict = decide_verdict(bm)
    assert verdict.label == "inconclusive"
    assert "nan" not in verdict.sentence and "gave no hazard ratios" in verdict.sentence


@pytest.mark.parametrize("kw", [dict(k=1), dict(k=0), dict(k=2.5), dict(bootstrap=0)])
def test_bad_fold_or_bootstrap_counts_are_config_errors(kw):
    from retention_study.errors import ConfigError

    with pytest.raises(ConfigError, match="must be a whole number"):
        HeadToHead(**kw)


@pytest.mark.parametrize("stronger, kw", [
    ("contact", dict(hr_contact_6m=2.0, hr_price_10pct=1.3)),
    ("price", dict(hr_contact_6m=1.3, hr_price_10pct=2.0)),
])
def test_both_names_the_block_with_the_planted_larger_effect(stronger, kw):
    """Both blocks matter, one far more: the verdict must say which (cv log-likelihood)."""
    tl = simulate_timeline(n=2000, seed=21, **kw)
    bm = BlockModels(check_ph=False).fit(tl)
    verdict = decide_verdict(bm, HeadToHead(k=3, bootstrap=200, seed=2).fit(tl, bm))
    assert verdict.label == "both"
    assert verdict.evidence["explains_more"] == stronger


def test_one_step_bootstrap_tracks_refitting_each_resample():
    """The bootstrap's one-step Newton update against refitting every fold per resample."""
    from retention_study.analysis.compare import BOOTSTRAP_METHOD
    from retention_study.analysis.models import fit_cox

    tl = simulate_timeline(n=400, hr_contact_6m=1.5, seed=12)
    bm = BlockModels(check_ph=False).fit(tl)
    h2h = HeadToHead(k=3, bootstrap=12, seed=4).fit(tl, bm)
    assert h2h.to_dict()["bootstrap_method"] == BOOTSTRAP_METHOD
    eps = bm.data_
    rng = np.random.default_rng(4)
    customers = eps["customer_id"].unique()
    fold = pd.Series(rng.permutation(len(customers)) % 3, index=customers)
    row_fold = fold.loc[eps["customer_id"]].to_numpy()
    cols = bm.columns["contact"]
    order = np.unique(eps["customer_id"])  # the bootstrap weights follow sorted customers
    exact = []
    for w in h2h._weights:
        per_row = pd.Series(w, index=order).loc[eps["customer_id"]].to_numpy()
        eta = np.zeros(len(eps))
        for f in range(3):
            fit = fit_cox(bm.cox_data_, cols, weights=per_row * (row_fold != f))
            eta[row_fold == f] = eps.loc[row_fold == f, cols].to_numpy() @ fit.fitter.params_
        scores = held_out_scores(eps, eta, row_fold)
        exact.append(float(w @ scores["pl"].to_numpy()))
    exact = np.array(exact)
    fixed = h2h._weights @ h2h.scores["contact"]["pl"].to_numpy()
    approx = h2h._boot_pl["contact"]
    # the update captures most of what refitting changes; holding coefficients fixed does not
    assert np.abs(approx - exact).max() < 0.25 * np.abs(fixed - exact).max()
