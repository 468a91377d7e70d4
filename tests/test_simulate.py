"""The simulator: planted effects are recoverable, every trap is present, files are stable.

References are independent of the simulator's code: a lifelines Cox fit on the true
customer-month panel (recovery within 3 standard errors: a correct simulator fails one
of these checks with probability < 0.3 % each, a wrong sign or a mis-scaled effect
fails by many SE), a per-customer loop re-deriving the covariates from the written
event logs with the written-down definitions, hand-checkable properties of the traps,
and the project's loader (the data contract).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxTimeVaryingFitter

from retention_study import cli
from retention_study.data.simulate import STATED_GROUPS, simulate, write_simulation
from retention_study.errors import ConfigError

DPM = 365.25 / 12
AS_OF = pd.Timestamp("2026-06-30")
EFFECT_COLUMNS = {  # panel column, its scale per planted hazard ratio, truth key
    "hr_no_contact_6m": ("months_since_contact", 6.0),
    "hr_price_gap_10pct": ("loyalty_penalty", np.log(1.1)),
    "hr_price_increase": ("price_increase_recent", 1.0),
}


@pytest.fixture(scope="module")
def both():
    return simulate(4000, seed=11, preset="both", keep_panel=True)


@pytest.fixture(scope="module")
def neither():
    # Twice the customers of "both": with no planted effect about half as many leave, and
    # price_increase_recent is informed by few of them (at a given tenure nearly everyone
    # shares the annual increase). At 4,000 its SE was 0.25-0.37 over seeds 11-22, half
    # of them above the 0.3 power bound; at 8,000 it is 0.18-0.25.
    return simulate(8000, seed=12, preset="neither", keep_panel=True)


def _reference_fit(panel: pd.DataFrame) -> pd.DataFrame:
    """Cox fit on the true panel with each effect on its planted scale (coef = log HR)."""
    d = panel[["customer_id", "start", "stop", "event"]].copy()
    for col, scale in EFFECT_COLUMNS.values():
        d[col] = panel[col] / scale
    d = d.join(pd.get_dummies(panel["plan"], prefix="plan", drop_first=True, dtype=float))
    sat = pd.get_dummies(panel["satisfaction"].astype(str), prefix="sat", drop_first=True,
                         dtype=float)
    d = d.join(sat)
    fit = CoxTimeVaryingFitter().fit(d, id_col="customer_id", start_col="start",
                                     stop_col="stop", event_col="event")
    return fit.summary


@pytest.mark.parametrize("world", ["both", "neither"])
def test_planted_effects_are_recovered_within_3_se(world, request):
    sim = request.getfixturevalue(world)
    summary = _reference_fit(sim.panel)
    for key, (col, _) in EFFECT_COLUMNS.items():
        truth = np.log(sim.truth["effects"][key])
        est, se = summary.loc[col, "coef"], summary.loc[col, "se(coef)"]
        assert abs(est - truth) < 3 * se, (key, est, truth, se)
        assert se < 0.3  # the test has power: a 1.8 HR (log 0.59) lies 2 SE from none


def test_effects_of_both_are_clearly_nonzero(both):
    summary = _reference_fit(both.panel)
    z = summary["coef"] / summary["se(coef)"]
    assert z["months_since_contact"] > 5 and z["loyalty_penalty"] > 5


def _covariates_from_logs(sim, customer_ids) -> pd.DataFrame:
    """Re-derive each tenure month's covariates from the event logs, one customer at a time."""
    rows = []
    cust = sim.customers.set_index("customer_id")
    for cid in customer_ids:
        start = cust.loc[cid, "start_date"]
        out = sim.contact_events.query("customer_id == @cid and direction == 'outbound'")
        prices = sim.price_events.query("customer_id == @cid").sort_values("effective_date")
        for month in sim.panel.loc[sim.panel["customer_id"] == cid, "month"]:
            if month == 0:
                rows.append((cid, month, 0.0, 0.0, 0.0))
                continue
            begin = start + pd.Timedelta(days=int(np.floor(month * DPM)))
            last = out.loc[out["contact_date"] < begin, "contact_date"].max()
            msc = min(24.0, (begin - last).days / DPM)
            before = prices[prices["effective_date"] < begin]
            gap = np.log(before["monthly_price"].iloc[-1] / before["new_customer_price"].iloc[-1])
            rose = before["monthly_price"].diff() > 0
            window = before["effective_date"] >= begin - pd.Timedelta(days=60)
            rows.append((cid, month, msc, gap, float((rose & window).any())))
    return pd.DataFrame(rows, columns=["customer_id", "month", "months_since_contact",
                                       "loyalty_penalty", "price_increase_recent"])


def test_panel_covariates_follow_the_written_definitions(both):
    ids = both.customers["customer_id"].iloc[:120]
    ref = _covariates_from_logs(both, ids)
    got = both.panel[both.panel["customer_id"].isin(ids)].reset_index(drop=True)
    assert len(ref) == len(got) > 1000
    for col in ("months_since_contact", "loyalty_penalty", "price_increase_recent"):
        np.testing.assert_allclose(got[col], ref[col], atol=1e-9, err_msg=col)


def test_panel_events_and_late_entry_match_the_customers(both):
    c = both.customers.set_index("customer_id")
    p = both.panel
    obs = pd.Timestamp(both.truth["observation_start"])
    events = p.loc[p["event"] == 1, "customer_id"]
    assert events.is_unique
    # Right-closed days: a late entrant is at risk after the observation_start day, so a
    # notice on that day has no time at risk (as in the builder).
    in_window = c.index[(c["notice_date"] > obs)]
    assert set(events) == set(in_window)
    first = p.groupby("customer_id").first()
    entry = ((obs - c.loc[first.index, "start_date"]).dt.days / DPM).clip(lower=0)
    np.testing.assert_allclose(first["start"], np.maximum(first["month"], entry))


# ------------------------------------------------------------------ the traps


def test_every_retention_call_follows_a_notice(both):
    calls = both.contact_events.query("topic == 'retention'")
    notice = calls["customer_id"].map(both.customers.set_index("customer_id")["notice_date"])
    assert len(calls) > 100
    assert notice.notna().all()
    lag = (calls["contact_date"] - notice).dt.days
    assert lag.between(1, 5).all()
    assert (calls["direction"] == "outbound").all()


def test_winback_discounts_come_only_after_a_notice(both):
    prices = both.price_events.sort_values(["customer_id", "effective_date"], kind="stable")
    notice = prices["customer_id"].map(both.customers.set_index("customer_id")["notice_date"])
    previous = prices.groupby("customer_id")["monthly_price"].shift()
    after = prices["effective_date"] > notice
    assert after.sum() > 100
    cut = prices["monthly_price"][after] / previous[after]
    assert cut.between(0.79, 0.91).all()  # a 10-20 % win-back cut, nothing else after notice
    # Every churned customer's retention call and offer are dated after the decision.
    churned = both.customers["churned"] == 1
    assert after.sum() < churned.sum()


def test_loyal_customers_pay_above_the_new_customer_price(both):
    p = both.panel
    early = p.loc[p["month"].between(1, 11), "loyalty_penalty"].mean()
    loyal = p.loc[p["month"] > 12, "loyalty_penalty"].mean()
    assert abs(early) < 0.05  # still on the promotional price
    assert loyal > 0.15  # promo roll-off and annual increases: about +16 % or more


def test_premium_pays_more_and_gets_more_attention(both):
    c = both.customers
    tenure_m = ((c["end_date"].fillna(AS_OF) - c["start_date"]).dt.days / DPM).clip(lower=1)
    out = both.contact_events.query("direction == 'outbound' and topic == 'check-in'")
    per_month = out.groupby("customer_id").size().reindex(c["customer_id"], fill_value=0)
    rate = pd.Series(per_month.to_numpy() / tenure_m.to_numpy()).groupby(c["plan"]).mean()
    price = both.price_events.groupby(
        both.price_events["customer_id"].map(c.set_index("customer_id")["plan"])
    )["monthly_price"].mean()
    for series in (rate, price):
        assert series["basic"] < series["standard"] < series["premium"], series


def test_some_customers_are_never_contacted_after_the_welcome(both):
    c = both.customers.set_index("customer_id")
    out = both.contact_events.query("direction == 'outbound' and topic != 'welcome'")
    long = c.index[(AS_OF - c["start_date"]).dt.days > 2 * 365]
    never = long.difference(out["customer_id"].unique())
    assert len(never) > 0.03 * len(long)
    welcomed = both.contact_events.query("topic == 'welcome'")["customer_id"]
    assert welcomed.is_unique and len(welcomed) == len(c)


def test_inbound_contacts_exist_and_follow_price_increases(both):
    ce = both.contact_events
    inbound = ce[ce["direction"] == "inbound"]
    assert set(inbound["topic"]) >= {"question", "complaint", "billing", "cancellation"}
    assert not set(inbound["topic"]) & {"welcome", "check-in", "retention"}
    # ... and follow price increases: customer-months within 60 days of an increase draw
    # about three times the calls of the others (planted: rate x (1 + 2 x recent)).
    calls = inbound[inbound["topic"] != "cancellation"]
    start = calls["customer_id"].map(both.customers.set_index("customer_id")["start_date"])
    day = (calls["contact_date"] - start).dt.days.to_numpy()
    month = np.ceil((day + 1) / DPM).astype(int) - 1  # floor(k DPM) <= day < floor((k+1) DPM)
    n = pd.DataFrame({"customer_id": calls["customer_id"].to_numpy(), "month": month})
    panel = both.panel.set_index(["customer_id", "month"])
    per_month = n.value_counts().reindex(panel.index, fill_value=0)
    rate = per_month.groupby(panel["price_increase_recent"].to_numpy()).mean()
    assert rate[1.0] > 2 * rate[0.0], rate


def test_stated_reasons_overstate_price(both):
    c = both.customers
    group = c["exit_reason"].map({r: g for g, rs in STATED_GROUPS.items() for r in rs})
    stated_price = (group == "price").sum() / group.notna().sum()
    truth = both.truth["exit_reasons"]
    assert stated_price == pytest.approx(truth["stated_share"]["price"], abs=1e-4)
    assert stated_price > truth["true_share"]["price"] + 0.1
    assert c.loc[c["churned"] == 0, "exit_reason"].isna().all()


def test_merely_satisfied_leave_more_than_unhappy_and_delighted(both):
    p = both.panel
    band = pd.cut(p["satisfaction"], [0, 2, 4, 5], labels=["unhappy", "satisfied", "delighted"])
    exposure = p["stop"] - p["start"]
    rate = p["event"].groupby(band, observed=True).sum() / exposure.groupby(
        band, observed=True).sum()
    assert rate["satisfied"] > 1.1 * rate["unhappy"] > 1.1 * rate["delighted"]


def test_baseline_departure_rate_falls_with_tenure(neither):
    p = neither.panel
    exposure = p["stop"] - p["start"]
    early = p["month"] < 6
    late = p["month"] >= 36
    rate_early = p.loc[early, "event"].sum() / exposure[early].sum()
    rate_late = p.loc[late, "event"].sum() / exposure[late].sum()
    assert rate_early > 1.3 * rate_late


def test_late_entrants_and_notice_periods(both):
    c = both.customers
    obs = pd.Timestamp(both.truth["observation_start"])
    assert both.truth["observation_start"] == "2023-06-30"
    assert (c["start_date"] < obs).mean() > 0.2  # many joined before the window
    assert not (c["end_date"] < obs).any()  # those who had left are not in the extract
    ended = c["end_date"].notna()
    assert ((c.loc[ended, "end_date"] - c.loc[ended, "notice_date"]).dt.days == 30).all()
    serving = (c["churned"] == 1) & c["end_date"].isna()
    assert serving.sum() > 0 and (c.loc[serving, "notice_date"] > AS_OF - pd.Timedelta(30, "D")
                                  ).all()


# ------------------------------------------------------------------ contract and files


def test_frames_keep_the_data_contract(both):
    c, pe, ce = both.customers, both.price_events, both.contact_events
    assert len(c) == 4000 and c["customer_id"].is_unique
    assert set(c["plan"]) == {"basic", "standard", "premium"}
    assert c["satisfaction"].between(1, 5).all()
    assert (c["churned"] == c["notice_date"].notna()).all()
    for frame, col in ((pe, "effective_date"), (ce, "contact_date")):
        day = frame[col]
        start = frame["customer_id"].map(c.set_index("customer_id")["start_date"])
        end = frame["customer_id"].map(c.set_index("customer_id")["end_date"])
        assert (day <= AS_OF).all() and (day >= start).all()
        assert not (day > end).any()
    assert (pe["monthly_price"] > 0).all() and (pe["new_customer_price"] > 0).all()
    assert set(ce["direction"]) == {"outbound", "inbound"}


def test_written_files_pass_the_loader(tmp_path):
    from retention_study.config import resolve_config
    from retention_study.data.load import load_study_data

    write_simulation(tmp_path, n_customers=500, seed=3, preset="both")
    truth = json.loads((tmp_path / "truth.json").read_text())
    cfg = resolve_config({"data": {
        "customers": str(tmp_path / "customers.csv"),
        "price_events": str(tmp_path / "price_events.csv"),
        "contact_events": str(tmp_path / "contact_events.csv"),
        "observation_start": truth["observation_start"],
        "controls": ["plan"], "satisfaction": "satisfaction", "exit_reason": "exit_reason",
    }})
    data = load_study_data(cfg)
    invalid = [e for e in data.ledger.entries if e.kind == "invalid"]
    assert invalid == []
    # The only exclusions: decisions taken before the window (notice before it, end after).
    assert data.n_customers == 500 - truth["counts"]["notice_before_observation_start"]


def test_timeline_builder_reads_the_true_covariates(both):
    """The study's episode builder, on the simulated logs, sees the planted covariates."""
    from retention_study.data.schema import StudyData
    from retention_study.episodes.timeline import build_timeline

    data = StudyData("events", AS_OF, both.customers, both.price_events, both.contact_events,
                     observation_start=pd.Timestamp(both.truth["observation_start"]),
                     roles={"controls": []})
    ep = build_timeline(data).episodes
    ep = ep.assign(month=np.floor(ep["start"] + 1e-9).astype(int))
    merged = both.panel.merge(ep, on=["customer_id", "month"], suffixes=("", "_tl"))
    assert len(merged) > 0.9 * len(both.panel)
    for col in ("months_since_contact", "loyalty_penalty", "price_increase_recent"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_tl"], atol=1e-9, err_msg=col)


def test_every_departure_meets_the_builders_row_for_its_month(both):
    """Simulator and builder agree on every departure: same interval, same covariates.

    A notice drawn from month k's hazard is dated on tenure days floor(k DPM) + 1 ..
    floor((k+1) DPM), which the builder's right-closed days file in (k, k+1] with month
    k's covariates. The only departures the builder cannot see are those in a late
    entrant's first, partial month (it rounds entry up to a whole month).
    """
    from retention_study.data.schema import StudyData
    from retention_study.episodes.timeline import build_timeline

    covariates = ["months_since_contact", "loyalty_penalty", "price_increase_recent"]
    data = StudyData("events", AS_OF, both.customers, both.price_events, both.contact_events,
                     observation_start=pd.Timestamp(both.truth["observation_start"]),
                     roles={"controls": []})
    ep = build_timeline(data).episodes
    built = ep.loc[ep["event"] == 1].set_index("customer_id").sort_index()
    true = both.panel.loc[both.panel["event"] == 1].set_index("customer_id").sort_index()
    # From the written dates alone: each notice lies in its month's right-closed days.
    c = both.customers.set_index("customer_id").loc[true.index]
    day = (c["notice_date"] - c["start_date"]).dt.days.to_numpy()
    k = true["month"].to_numpy()
    assert ((day > np.floor(k * DPM)) & (day <= np.floor((k + 1) * DPM))).all()
    whole = true[true["start"] == true["month"]]
    assert len(whole) > 0.97 * len(true) > 500
    assert built.index.equals(whole.index)  # no departure lost or added, none moved
    np.testing.assert_array_equal(built["start"], whole["month"])
    np.testing.assert_array_equal(built["stop"], whole["month"] + 1)
    for col in covariates:
        np.testing.assert_allclose(built[col], whole[col], atol=1e-9, err_msg=col)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_same_bytes_other_seed_other_data(tmp_path, fmt):
    a, b, c = (write_simulation(tmp_path / name, n_customers=300, seed=seed, fmt=fmt)
               for name, seed in (("a", 5), ("b", 5), ("c", 6)))
    assert [p.name for p in a] == [f"customers.{fmt}", f"price_events.{fmt}",
                                   f"contact_events.{fmt}", "truth.json"]
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    differ = _digest(tmp_path / "a")[f"customers.{fmt}"] != _digest(tmp_path / "c")[
        f"customers.{fmt}"]
    assert differ


def test_csv_and_parquet_hold_the_same_data(tmp_path):
    write_simulation(tmp_path / "c", n_customers=200, seed=9, fmt="csv")
    write_simulation(tmp_path / "p", n_customers=200, seed=9, fmt="parquet")
    for name, dates in (("customers", ["start_date", "end_date", "notice_date"]),
                        ("price_events", ["effective_date"]),
                        ("contact_events", ["contact_date"])):
        csv = pd.read_csv(tmp_path / "c" / f"{name}.csv", parse_dates=dates)
        parquet = pd.read_parquet(tmp_path / "p" / f"{name}.parquet")
        for col in dates:
            parquet[col] = parquet[col].astype("datetime64[ns]")
            csv[col] = csv[col].astype("datetime64[ns]")
        pd.testing.assert_frame_equal(csv.fillna(np.nan), parquet.fillna(np.nan),
                                      check_dtype=False)


def test_effect_options_override_the_preset_and_reach_truth(tmp_path):
    sim = simulate(50, seed=1, preset="neither", hr_price_increase=2.5)
    assert sim.truth["effects"] == {"hr_no_contact_6m": 1.0, "hr_price_gap_10pct": 1.0,
                                    "hr_price_increase": 2.5}
    assert sim.truth["coefficients"]["price_increase_recent"] == pytest.approx(np.log(2.5))


def test_unknown_preset_and_bad_effects_are_config_errors():
    with pytest.raises(ConfigError, match="contact, price, both, neither"):
        simulate(10, seed=1, preset="cheap")
    with pytest.raises(ConfigError, match="hr_no_contact_6m"):
        simulate(10, seed=1, hr_no_contact_6m=0)
    with pytest.raises(ConfigError):
        simulate(0, seed=1)


def test_cli_writes_the_files(tmp_path, capsys):
    status = cli.main(["simulate", "--out", str(tmp_path), "--customers", "120", "--seed", "4",
                       "--preset", "price", "--hr-price-gap", "1.5"])
    assert status == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["effects"]["hr_price_gap_10pct"] == 1.5 and truth["preset"] == "price"
    assert len(pd.read_csv(tmp_path / "customers.csv")) == 120
    assert cli.main(["simulate", "--out", str(tmp_path), "--preset", "nope"]) == 2


def test_account_managers_contact_at_different_rates(both):
    c = both.customers
    months = ((c["end_date"].fillna(AS_OF) - c["start_date"]).dt.days / DPM).clip(lower=1)
    checkins = both.contact_events.query("topic == 'check-in'").groupby("customer_id").size()
    calls = c["customer_id"].map(checkins).fillna(0)
    per_am = calls.groupby(c["account_manager"]).sum() / months.groupby(c["account_manager"]).sum()
    # Poisson noise on ~130 customers x ~30 months per manager is a few percent; a
    # manager-level spread (log-sd 0.5) makes the busiest several times the quietest.
    assert per_am.max() > 2 * per_am.min()
