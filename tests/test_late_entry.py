"""Late entry the data imply: records that begin after many customers joined."""

from __future__ import annotations

import pandas as pd
import pytest

from retention_study.analysis.results import Results
from retention_study.data import late_entry
from retention_study.data.schema import StudyData
from retention_study.data.simulate import simulate
from retention_study.episodes.timeline import build_timeline
from retention_study.errors import ConfigError
from retention_study.present import wording


def test_cut_logs_imply_late_entry_from_their_first_date():
    data = late_entry._example()
    found = late_entry.detect(data)
    # logs begin 2024-01-01; the first departure two days later is the same cut
    assert found["implied"] == "2024-01-01"
    assert found["basis"] == ["the price and contact logs begin on"]
    assert found["customers_before"] == int((data.customers["start_date"]
                                             < pd.Timestamp("2023-12-01")).sum())
    out = late_entry.resolve(data)
    assert out.observation_start == pd.Timestamp("2024-01-01")
    assert out.late_entry["source"] == "detected"
    assert any("late entry" in e["reason"] for e in out.ledger.to_dict()["notes"])
    tl = build_timeline(out)
    early = out.customers.loc[out.customers["start_date"] < pd.Timestamp("2024-01-01"),
                              "customer_id"]
    first = tl.episodes.groupby("customer_id")["start"].min()
    early = early[early.isin(first.index)]
    assert len(early) > 20 and (first[early] > 0).all()  # late, at the tenure they reached


def test_complete_records_change_nothing():
    data = late_entry._example()
    # the same customers with a history from the day each joined, and early departures
    data.price_events["effective_date"] = data.customers["start_date"].to_numpy()
    data.contact_events["contact_date"] = data.customers["start_date"].to_numpy()
    first = data.customers["start_date"].nsmallest(4).index
    data.customers.loc[first, "end_date"] = data.customers.loc[first, "start_date"] \
        + pd.Timedelta(days=40)
    out = late_entry.resolve(data)
    assert out.observation_start is None and out.late_entry["implied"] is None
    assert not out.ledger.to_dict()["notes"]
    assert wording.late_entry_reading(Results.from_dict({"late_entry": out.late_entry})) is None


def test_observation_start_before_the_records_is_one_line_exit_2():
    data = late_entry._example()
    data.observation_start = pd.Timestamp("2022-01-01")
    with pytest.raises(ConfigError) as err:
        late_entry.resolve(data)
    msg = str(err.value)
    assert err.value.exit_status == 2 and "\n" not in msg
    assert "data.observation_start 2022-01-01" in msg and "2024-01-01" in msg
    # a configured start on or after the cut is consistent: kept as given, no note
    data.observation_start = pd.Timestamp("2024-03-01")
    out = late_entry.resolve(data)
    assert out.observation_start == pd.Timestamp("2024-03-01")
    assert out.late_entry["source"] == "config" and not out.ledger.to_dict()["notes"]


def test_simulated_world_with_cut_logs_gets_its_window_back():
    sim = simulate(1500, seed=5, preset="contact")
    obs = pd.Timestamp(sim.truth["observation_start"])
    prices = sim.price_events[sim.price_events["effective_date"] >= obs]
    contacts = sim.contact_events[sim.contact_events["contact_date"] >= obs]
    data = StudyData("events", pd.Timestamp(sim.truth["as_of"]), sim.customers.copy(),
                     prices.reset_index(drop=True), contacts.reset_index(drop=True))
    out = late_entry.resolve(data)
    assert out.late_entry["source"] == "detected"
    assert obs <= out.observation_start <= obs + pd.Timedelta(days=3)
    reading = wording.late_entry_reading(Results.from_dict({"late_entry": out.late_entry}))
    assert reading.startswith(f"The records begin on {out.observation_start.date()}")
    assert "late entry" in reading


def test_uncut_simulated_world_is_truncated_by_its_customers_file():
    # the simulator keeps every event but only customers still served on observation_start:
    # no departure is recorded before it, which is the cut
    sim = simulate(1500, seed=5, preset="contact")
    obs = pd.Timestamp(sim.truth["observation_start"])
    data = StudyData("events", pd.Timestamp(sim.truth["as_of"]), sim.customers.copy(),
                     sim.price_events, sim.contact_events)
    found = late_entry.detect(data)
    assert found["basis"] == ["the first recorded departure is on"]
    # notices up to 30 days before observation_start are in the extract (service ends later)
    assert obs - pd.Timedelta(days=31) <= pd.Timestamp(found["implied"]) <= obs


def test_detected_late_entry_gives_the_configured_answer():
    # issue 12: without observation_start, survivors counted from joining turned contact
    # worlds into 'both'; detected late entry gives what the configured start gives
    import numpy as np

    from retention_study.survival import CoxFitter

    sim = simulate(1500, seed=9, preset="contact")
    obs = pd.Timestamp(sim.truth["observation_start"])

    def fit(observation_start, detect=True):
        data = StudyData("events", pd.Timestamp(sim.truth["as_of"]), sim.customers.copy(),
                         sim.price_events, sim.contact_events, roles={"controls": ["plan"]},
                         observation_start=observation_start)
        tl = build_timeline(late_entry.resolve(data) if detect else data)
        return CoxFitter().fit(tl.episodes, tl.covariates), tl

    configured, tl_conf = fit(obs)
    detected, tl_det = fit(None)
    ignored, _ = fit(None, detect=False)
    v = configured.variance_matrix_.to_numpy()

    def distance(other):  # Mahalanobis distance of all coefficients from the configured fit
        d = (other.params_ - configured.params_).to_numpy()
        return float(d @ np.linalg.solve(v, d))

    # the detected start is the first notice (up to 30 days before obs, with service ending
    # after it): a few more departures, the same coefficients well within their error
    assert tl_det.n_departures >= tl_conf.n_departures
    assert distance(detected) < 0.5
    assert distance(ignored) > 3  # survivors counted from joining: a different answer
