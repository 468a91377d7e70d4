"""Log-rank tests beside the Kaplan-Meier curves (issue 15, last bullet).

References: lifelines' multivariate_logrank_test and pairwise_logrank_test where no
customer enters late, and a hand-computed example where one does (lifelines' tests
have no entry argument).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import multivariate_logrank_test, pairwise_logrank_test

from retention_study.analysis.compare import holm
from retention_study.analysis.km import KMResult, km_logrank
from retention_study.present import narrative
from retention_study.survival.logrank import logrank


def _data(seed=1, n=300):
    rng = np.random.default_rng(seed)
    g = rng.choice(list("abc"), n)
    t = np.round(rng.exponential(10, n) * np.where(g == "a", 1.6, 1.0)) + 1
    e = rng.random(n) < 0.7
    return t, e, g


def test_equals_lifelines_without_late_entry():
    t, e, g = _data()
    ours = logrank(t, e, g)
    ref = multivariate_logrank_test(t, g, e)
    assert ours["df"] == 2
    assert ours["statistic"] == pytest.approx(ref.test_statistic, rel=1e-10)
    assert ours["p"] == pytest.approx(ref.p_value, rel=1e-8)


def test_pairwise_with_holm_equals_lifelines_then_holm():
    t, e, g = _data(seed=4)
    d = pd.DataFrame({"g": g, "entry": 0.0, "duration": t, "event": e.astype(int)})
    result = km_logrank(KMResult(by="g", durations=d, fitters=dict.fromkeys("abc")))
    ref = pairwise_logrank_test(t, g, e).summary
    raw = {(a, b): ref.loc[(a, b), "p"] for a, b in ref.index}
    adjusted = holm(raw)
    assert len(result["pairs"]) == 3
    for pair in result["pairs"]:
        key = (pair["a"], pair["b"])
        assert pair["p"] == pytest.approx(raw[key], rel=1e-8)
        assert pair["p_holm"] == pytest.approx(adjusted[key], rel=1e-8)
    assert result["entry"] == "no customer entered late"


def test_late_entry_respects_the_risk_set_by_hand():
    # a1 (0, 2] event, a2 (0, 6] censored, b1 (3, 4] event, b2 (0, 1] event.
    # t=1: n=3 (b1 not yet in), n_a=2, E_a=2/3, V=1*2/2*(2/3)(1/3)=2/9
    # t=2: n=2 (both a), E_a=1, V=0
    # t=4: n=2 (a2, b1), E_a=1/2, V=1/4;  O_a=1, O-E=-7/6, V=17/36 -> chi2 = 49/17
    t, e = [2, 6, 4, 1], [1, 0, 1, 1]
    g, entry = ["a", "a", "b", "b"], [0, 0, 3, 0]
    ours = logrank(t, e, g, entry)
    assert ours["statistic"] == pytest.approx(49 / 17, rel=1e-12)
    assert ours["expected"]["a"] == pytest.approx(13 / 6)
    ignoring = multivariate_logrank_test(t, g, e).test_statistic
    assert abs(ignoring - 49 / 17) > 0.1  # counting b1 before it entered changes the test


def test_reading_in_words_with_pairs_and_entry():
    t, e, g = _data(seed=2)
    d = pd.DataFrame({"g": g, "entry": np.where(np.arange(len(t)) % 5 == 0, 0.5, 0.0),
                      "duration": t, "event": e.astype(int)})
    result = km_logrank(KMResult(by="g", durations=d, fitters=dict.fromkeys("abc")))
    text = narrative.logrank_reading(result, "g")
    assert text.startswith("A log-rank test finds the curves by g ")
    assert "Holm-adjusted for 3 comparisons" in text
    assert "entered it, as in the curves" in text
    two = {"groups": 2, "statistic": 0.2, "df": 1, "p": 0.65, "alpha": 0.05, "pairs": [],
           "entry": "no customer entered late"}
    assert "are not clearly different" in narrative.logrank_reading(two, "plan")
    assert "Pair by pair" not in narrative.logrank_reading(two, "plan")
