"""What-if levers against hand-made paths and the simulator's counterfactual truth.

The simulator runs the same world twice with common random numbers (every draw keyed by
customer, month and call), once as it happened and once under the lever acting from
observation_start, so the departures it reports under the lever are the counterfactual
truth for the very customers the study sees. The study's estimate never sees that
second world: its CI must cover the truth.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retention_study.analysis.models import BlockModels
from retention_study.analysis.whatif import (
    WhatIf,
    natural_course,
    with_contact_lever,
    with_price_lever,
)
from retention_study.data.schema import StudyData, contact_lever_days
from retention_study.data.simulate import simulate
from retention_study.episodes.timeline import build_timeline
from retention_study.errors import ConfigError

N = 3000


def _data(sim) -> StudyData:
    return StudyData("events", pd.Timestamp(sim.truth["as_of"]), sim.customers,
                     sim.price_events, sim.contact_events, roles={"controls": ["plan"]},
                     observation_start=pd.Timestamp(sim.truth["observation_start"]))


@pytest.fixture(scope="module")
def contact_world():
    truth = {lv: simulate(N, seed=4, preset="contact", levers=spec).truth["what_if"]
             for lv, spec in (("contact", ["contact:6"]), ("price", ["price"]))}
    sim = simulate(N, seed=4, preset="contact", levers=["contact:6"])
    data = _data(sim)
    tl = build_timeline(data)
    bm = BlockModels(check_ph=False).fit(tl)
    return truth, WhatIf(bootstrap=100, seed=3).fit(data, tl, bm)


def test_simulated_levers_share_every_draw_with_the_world_without_them():
    """No effect planted: under common random numbers a lever changes nothing at all."""
    for spec in (["contact:6"], ["price"], ["contact:3", "price"]):
        w = simulate(800, seed=2, preset="neither", levers=spec).truth["what_if"]
        assert w["departures_under_lever"] == w["departures_factual"] > 0
        assert w["change"] == 0.0 and w["change_expected"] == 0.0
        # the expected departures (nobody leaving, chances summed) match the realised
        # count within its noise
        assert abs(w["expected_factual"] - w["departures_factual"]) < 4 * np.sqrt(
            w["departures_factual"])
    # with an effect, the same seed moves departures the planted way
    c = simulate(800, seed=2, preset="contact", levers=["contact:6"]).truth["what_if"]
    p = simulate(800, seed=2, preset="price", levers=["price"]).truth["what_if"]
    assert c["departures_under_lever"] < c["departures_factual"]
    assert p["departures_under_lever"] < p["departures_factual"]
    assert c["revenue_kept"] > 0 and p["revenue_under_lever"] > 0


def test_simulated_lever_data_are_the_factual_world_and_a_bad_lever_is_a_config_error():
    a = simulate(300, seed=5, preset="contact", levers=["contact:6"])
    b = simulate(300, seed=5, preset="contact", levers=["price"])
    # the data handed over are the world without the lever, whichever lever is asked
    pd.testing.assert_frame_equal(a.contact_events, b.contact_events)
    assert "lever" not in set(a.contact_events["topic"])
    for bad in (["contact:0.5"], ["discount"], ["contact:x"]):
        with pytest.raises(ConfigError, match="lever"):
            simulate(50, seed=1, levers=bad)


def test_contact_lever_calls_when_due_and_a_natural_contact_restarts_the_clock():
    d = pd.Timestamp
    customers = pd.DataFrame({"customer_id": ["a", "b"], "start_date": [d("2025-01-01")] * 2,
                              "end_date": [pd.NaT] * 2, "notice_date": [pd.NaT] * 2,
                              "churned": [0, 0], "exit_reason": [None] * 2})
    prices = pd.DataFrame({"customer_id": ["a", "b"], "effective_date": [d("2025-01-01")] * 2,
                           "monthly_price": [30.0, 30.0], "new_customer_price": [25.0, 25.0]})
    contacts = pd.DataFrame({"customer_id": ["a", "b", "b"],
                             "contact_date": [d("2025-03-01"), d("2025-03-01"),
                                              d("2025-07-01")],
                             "direction": ["outbound", "outbound", "outbound"],
                             "channel": "phone", "topic": "check-in"})
    data = StudyData("events", d("2026-01-01"), customers, prices, contacts)
    lever = with_contact_lever(data, 6).contact_events
    added = lever[lever["topic"] == "lever"].set_index("customer_id")["contact_date"]
    gap = pd.Timedelta(days=contact_lever_days(6))
    assert contact_lever_days(6) == 183
    assert added.loc["a"] == d("2025-03-01") + gap  # then + 183 days is after as_of
    assert added.loc["b"] == d("2025-07-01") + gap  # July restarted b's clock
    assert len(added) == 2


def test_natural_course_drops_what_the_departure_caused_and_replays_the_history():
    d = pd.Timestamp
    customers = pd.DataFrame({"customer_id": ["a"], "start_date": [d("2025-01-01")],
                              "end_date": [pd.NaT], "notice_date": [d("2025-05-01")],
                              "churned": [1], "exit_reason": [None]})
    prices = pd.DataFrame({"customer_id": ["a", "a"],
                           "effective_date": [d("2025-01-01"), d("2025-05-03")],
                           "monthly_price": [30.0, 20.0], "new_customer_price": [25.0, 25.0]})
    contacts = pd.DataFrame({"customer_id": ["a", "a"],
                             "contact_date": [d("2025-02-01"), d("2025-05-02")],
                             "direction": ["outbound", "outbound"], "channel": "phone",
                             "topic": ["check-in", "retention"]})
    data = StudyData("events", d("2026-01-01"), customers, prices, contacts)
    nat = natural_course(data, pd.Index(["a"]))
    assert nat.customers["churned"].tolist() == [0]
    assert nat.price_events["monthly_price"].tolist() == [30.0]  # no win-back discount
    days = sorted(nat.contact_events["contact_date"])
    period = d("2025-05-01") - d("2025-01-01")  # 120 days from entry to the notice
    assert days == [d("2025-02-01") + k * period for k in range(3)]  # no retention call
    eps = build_timeline(nat).episodes
    assert eps["event"].sum() == 0 and eps["stop"].max() == 12


def test_a_leavers_prices_follow_a_comparable_customer_still_served():
    """After the departure a leaver's prices take the relative steps of a customer of the
    same start month (and plan) who was still served then; one of another plan is not
    the donor, and a donor who left too hands over to their own donor."""
    d = pd.Timestamp
    nat = pd.NaT
    customers = pd.DataFrame({
        "customer_id": ["a", "b", "c", "e"],
        "start_date": [d("2025-01-01"), d("2025-01-20"), d("2025-01-10"), d("2025-01-05")],
        "end_date": [nat] * 4, "notice_date": [d("2025-05-01"), nat, nat, d("2025-08-01")],
        "churned": [1, 0, 0, 1], "exit_reason": [None] * 4,
        "plan": ["basic", "basic", "premium", "basic"]})
    prices = pd.DataFrame({
        "customer_id": ["a", "a", "b", "b", "b", "c", "c", "e", "e", "e"],
        "effective_date": [d("2025-01-01"), d("2025-03-01"), d("2025-01-20"), d("2025-09-01"),
                           d("2026-01-01"), d("2025-01-10"), d("2025-06-01"), d("2025-01-05"),
                           d("2025-06-01"), d("2025-08-02")],
        "monthly_price": [20.0, 22.0, 30.0, 33.0, 36.3, 50.0, 75.0, 40.0, 44.0, 30.0],
        "new_customer_price": [18.0, 18.0, 25.0, 25.0, 27.5, 40.0, 40.0, 25.0, 25.0, 25.0]})
    data = StudyData("events", d("2026-03-01"), customers, prices, None,
                     roles={"controls": ["plan"]})
    nat = natural_course(data, pd.Index(customers["customer_id"])).price_events
    nat = nat.sort_values(["customer_id", "effective_date"]).set_index(
        ["customer_id", "effective_date"])
    # a (basic, left 1 May): its donor is e (basic, same start month, still served then;
    # the fixed hash's pick between e and b), +10% on 1 June; e left on 1 August, so from
    # there a follows e's donor b: +10% on 1 Sep 2025 and +10% (new-customer price too)
    # on 1 Jan 2026. The premium customer c (+50% in June) is followed by nobody, and e's
    # win-back price after its notice is no step.
    assert nat.loc["a", "monthly_price"].tolist() == [20.0, 22.0, 24.2, 26.62, 29.28]
    assert list(nat.loc["a"].index) == [d("2025-01-01"), d("2025-03-01"), d("2025-06-01"),
                                        d("2025-09-01"), d("2026-01-01")]
    np.testing.assert_allclose(nat.loc["a", "new_customer_price"], [18, 18, 18, 18, 19.8])
    assert nat.loc["e", "monthly_price"].tolist() == [40.0, 44.0, 48.4, 53.24]
    # stayers keep exactly their own prices
    for who in ("b", "c"):
        own = prices[prices["customer_id"] == who]
        assert nat.loc[who, "monthly_price"].tolist() == own["monthly_price"].tolist()


def test_price_lever_takes_away_penalty_and_increase_but_keeps_the_new_customer_price():
    eps = pd.DataFrame({"loyalty_penalty": [0.2, 0.0], "price_increase_recent": [1, 0],
                        "log_price": [np.log(36.0), np.log(30.0)]})
    out = with_price_lever(eps)
    assert out["loyalty_penalty"].tolist() == [0.0, 0.0]
    assert out["price_increase_recent"].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(np.exp(out["log_price"]), [36.0 / np.exp(0.2), 30.0])


def test_the_ci_of_each_lever_covers_the_simulated_counterfactual_truth(contact_world):
    truth, wi = contact_world
    s = wi.summary.set_index("lever")
    for lever in ("contact", "price"):
        row, true = s.loc[lever], truth[lever]
        for kind in ("change_expected", "change"):  # expected, and the realised year
            assert row["change_ci_low"] <= true[kind] <= row["change_ci_high"], (
                lever, kind, row["change_ci_low"], row["change"], row["change_ci_high"],
                true[kind])
        assert row["change_ci_low"] <= row["change_eq_low"] <= row["change"] \
            <= row["change_eq_high"] <= row["change_ci_high"]
    # the planted contact effect: the lever clearly cuts departures, price does nothing
    assert s.loc["contact", "change_ci_high"] < -0.1
    assert true_kept(truth["contact"]) == pytest.approx(s.loc["contact", "customers_kept"],
                                                        rel=0.35)
    assert s.loc["contact", "revenue_kept"] == pytest.approx(truth["contact"]["revenue_kept"],
                                                             rel=0.35)
    # the model's departures as observed match the count it was fitted on
    assert s.loc["contact", "departures_expected"] == pytest.approx(
        truth["contact"]["departures_factual"], rel=0.05)


def true_kept(truth: dict) -> int:
    return truth["departures_factual"] - truth["departures_under_lever"]


def test_what_if_records_are_json_safe_and_complete(contact_world):
    _, wi = contact_world
    records = wi.to_records()
    json.dumps(records, allow_nan=False)
    need = {"lever", "departures_expected", "departures_under_lever", "change",
            "change_ci_low", "change_ci_high", "customers_kept", "revenue_kept"}
    assert [r["lever"] for r in records] == ["contact", "price", "both"]
    for r in records:
        assert need <= set(r) and r["available"]


def test_a_flat_table_has_no_levers_and_says_why():
    from retention_study.analysis.compare import _example_timeline

    tl = _example_timeline()
    data = StudyData("table", pd.Timestamp("2026-06-30"))
    wi = WhatIf(bootstrap=5).fit(data, tl, BlockModels().fit(tl))
    assert not wi.summary["available"].any()
    assert "flat table" in wi.why


def test_equivalence_margin_and_levers_are_checked_config_keys():
    from retention_study.config import resolve_config

    cfg = resolve_config({"study": {"equivalence_margin": 0.1,
                                    "levers": {"contact_every_months": 3}}})
    assert cfg["study"]["equivalence_margin"] == 0.1
    assert cfg["study"]["levers"] == {"contact_every_months": 3}
    assert resolve_config({})["study"]["levers"] == {"contact_every_months": 6}
    for bad in ({"equivalence_margin": 5}, {"equivalence_margin": "5%"},
                {"levers": {"contact_every_months": 0}}, {"levers": {"discount": 1}},
                {"levers": 6}):
        with pytest.raises(ConfigError, match="equivalence_margin|levers"):
            resolve_config({"study": bad})


def test_the_margin_reaches_the_rule(contact_world):
    """The same levers: a margin wider than the price lever's interval makes it negligible."""
    from retention_study.analysis.verdict import lever_status

    _, wi = contact_world
    price = wi.summary.set_index("lever").loc["price"].to_dict()
    widest = max(abs(price["change_eq_low"]), abs(price["change_eq_high"]))
    assert lever_status(price, widest + 0.01) == "negligible"
    assert lever_status(price, widest / 2) != "negligible"


def test_cli_simulate_with_levers_writes_the_counterfactual_truth(tmp_path):
    from retention_study import cli

    assert cli.main(["simulate", "--out", str(tmp_path), "--customers", "200", "--seed", "3",
                     "--preset", "neither", "--lever", "contact:6", "--lever", "price"]) == 0
    truth = json.loads((tmp_path / "truth.json").read_text())["what_if"]
    assert truth["levers"] == ["contact:6", "price"] and truth["change"] == 0.0
    assert cli.main(["simulate", "--out", str(tmp_path), "--lever", "discount"]) == 2


# ----------------------------------------------------------------- the bootstrap's algebra


def _reference_departures(eps, cols, regimes, w, beta0):
    """Expected departures of each regime computed directly for customer weights ``w``.

    The final model refitted with the weights (the engine, Efron, to convergence), the
    weighted Breslow baseline one event time at a time, and the weighted standardisation
    ``sum_i w_i (1 - exp(-H_i))`` row by row: no influence, no linearisation.
    """
    from retention_study.survival import CoxFitter

    ids = pd.Index(pd.unique(eps["customer_id"]))
    w_row = w[ids.get_indexer(eps["customer_id"])]
    beta = CoxFitter(ties="efron").fit(eps, cols, weights=w_row, initial=beta0) \
        .params_[cols].to_numpy()
    start, stop, event = (eps[c].to_numpy(float) for c in ("start", "stop", "event"))
    risk = np.exp(eps[cols].to_numpy(float) @ beta)
    times = np.unique(stop[event == 1])
    dl = [w_row[(stop == t) & (event == 1)].sum()
          / (w_row * risk)[(start < t) & (stop >= t)].sum() for t in times]
    out = {}
    for name, r in regimes.items():
        rs, rt = r["start"].to_numpy(float), r["stop"].to_numpy(float)
        h = np.zeros(len(r))
        for t, d in zip(times, dl, strict=True):
            h += d * ((rs < t) & (rt >= t))
        h *= np.exp(r[cols].to_numpy(float) @ beta)
        big_h = pd.Series(h).groupby(ids.get_indexer(r["customer_id"])).sum()
        out[name] = float((w[big_h.index] * -np.expm1(-big_h.to_numpy())).sum())
    return out


@pytest.fixture(scope="module")
def small_world():
    sim = simulate(700, seed=11, preset="both")
    data = _data(sim)
    tl = build_timeline(data)
    bm = BlockModels(check_ph=False).fit(tl)
    wi = WhatIf(bootstrap=40, seed=5).fit(data, tl, bm)
    opts = {k: tl.params[k] for k in ("lag_days", "grid", "contact_cap_months",
                                      "price_increase_window_days")}
    opts["controls"] = list(tl.params.get("controls", []))
    ids = pd.Index(wi.influence.index)
    nat = natural_course(data, ids)
    observed = build_timeline(nat, include_price_level=True, **opts).episodes
    contact = build_timeline(with_contact_lever(nat, 6), include_price_level=True,
                             **opts).episodes
    regimes = {"observed": observed, "contact": contact, "price": with_price_lever(observed),
               "both": with_price_lever(contact)}
    from retention_study.analysis.models import FINAL_MODEL

    fit = bm.fits[FINAL_MODEL]
    return wi, bm.data_, list(fit.columns), fit.fitter.params_[fit.columns].to_numpy(), regimes


def test_each_customers_influence_is_the_derivative_of_a_weighted_refit(small_world):
    """The fast bootstrap's influences equal d/dw of the direct computation, any direction."""
    wi, eps, cols, beta, regimes = small_world
    assert list(wi.influence.columns) == list(regimes)
    n = len(wi.influence)
    s = wi.summary.set_index("lever")
    direct = _reference_departures(eps, cols, regimes, np.ones(n), beta)
    assert direct["observed"] == pytest.approx(s.loc["contact", "departures_expected"], rel=1e-9)
    for lever in ("contact", "price", "both"):
        assert direct[lever] == pytest.approx(s.loc[lever, "departures_under_lever"], rel=1e-9)
    rng = np.random.default_rng(0)
    eps_w = 1e-4
    for v in (rng.normal(size=n), rng.multinomial(n, np.full(n, 1 / n)) - 1.0):
        up = _reference_departures(eps, cols, regimes, 1 + eps_w * v, beta)
        down = _reference_departures(eps, cols, regimes, 1 - eps_w * v, beta)
        for name in regimes:
            numeric = (up[name] - down[name]) / (2 * eps_w)
            fast = float(v @ wi.influence[name].to_numpy())
            assert fast == pytest.approx(numeric, rel=1e-5, abs=1e-6), name


def test_the_linearised_resamples_follow_refitted_ones(small_world):
    """At real bootstrap weights (not a small step), resample by resample, the fast change
    tracks the one a full refit gives, with the same spread: the linearisation changes
    the interval by a few percent at 700 customers (less with more)."""
    wi, eps, cols, beta, regimes = small_world
    n = len(wi.influence)
    infl = wi.influence.to_numpy()
    rng = np.random.default_rng(1)
    est = _reference_departures(eps, cols, regimes, np.ones(n), beta)
    est = np.array([est[k] for k in regimes])
    fast, ref = [], []
    for _ in range(12):
        w = rng.multinomial(n, np.full(n, 1 / n)).astype(float)
        d = _reference_departures(eps, cols, regimes, w, beta)
        f = est + (w - 1) @ infl
        fast.append(f[1:] / f[0] - 1)
        ref.append(np.array([d[k] for k in list(regimes)[1:]]) / d["observed"] - 1)
    fast, ref = np.array(fast), np.array(ref)
    for j in range(3):
        assert np.corrcoef(fast[:, j], ref[:, j])[0, 1] > 0.95
        assert 0.8 < fast[:, j].std() / ref[:, j].std() < 1.25


def test_the_bootstrap_is_deterministic_per_seed_and_says_how_it_was_done(small_world):
    wi = small_world[0]
    assert all(r["bootstrap_method"].startswith("customer bootstrap of the linearised")
               for r in wi.to_records())
    assert len(wi.draws["contact"]) == 40
    assert not wi.influence.isna().any().any()
