"""E-values, the confounder scan and the size of the test that would settle it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from retention_study.analysis import confounding as cf
from retention_study.analysis import experiment as ex
from retention_study.analysis.models import BlockModels
from retention_study.analysis.results import Results
from retention_study.data.schema import StudyData
from retention_study.episodes.timeline import build_timeline
from retention_study.present import narrative

# ------------------------------------------------------------------ E-values (hand-computed)

def test_e_value_matches_vanderweele_ding_example():
    # VanderWeele & Ding (2017), breastfeeding example: RR 3.9 (CI 1.8-8.7) -> E-values
    # 7.26 and 3.0. A rare outcome keeps the ratio as it is.
    ev = cf.e_value(3.9, 1.8, 8.7, common=False)
    assert ev["point"] == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert round(ev["point"], 2) == 7.26 and ev["ci_limit"] == pytest.approx(3.0)


def test_e_value_of_a_protective_effect_uses_its_upper_limit():
    ev = cf.e_value(0.8, 0.7, 0.9, common=False)
    # 1/0.9 = 1.1111; 1.1111 + sqrt(1.1111 * 0.1111) = 1.1111 + 0.3514
    assert ev["ci_limit"] == pytest.approx(1.4625, abs=1e-4)
    assert ev["point"] == pytest.approx(1.25 + math.sqrt(1.25 * 0.25))
    assert cf.e_value(0.8, 0.6, 1.05, common=False)["ci_limit"] == 1.0  # CI spans 1


def test_common_outcome_uses_the_square_root_transform():
    # HR 1.5: sqrt = 1.2247449; 0.5**1.2247449 = exp(-0.8489285) = 0.4278732;
    # 0.5**(1/1.2247449) = exp(-0.5659523) = 0.5678192; RR = 0.5721268 / 0.4321808 = 1.3238139
    # E = 1.3238139 + sqrt(1.3238139 * 0.3238139) = 1.3238139 + 0.6547302 = 1.9785441
    ev = cf.e_value(1.5, 1.2, 1.9, common=True)
    assert ev["point"] == pytest.approx(1.9785441, abs=1e-5)
    assert ev["transform"].startswith("square root")
    table = cf.e_values(pd.DataFrame([{"block": "contact", "covariate": "x", "unit": "u",
                                       "hr": 1.5, "lower": 1.2, "upper": 1.9}]), share_left=0.1)
    assert table.loc[0, "transform"].startswith("none")  # 10% left: rare


# ------------------------------------------------------------------ power (hand-computed)

def test_schoenfeld_events_by_hand():
    # (1.959964 + 0.841621)^2 / (0.25 * log(0.85)^2) = 7.848879 / 0.0066031 = 1188.7
    assert ex.schoenfeld_events(0.15) == 1189
    # the textbook case: halving the hazard needs 66 events at 80% power
    assert ex.schoenfeld_events(0.5) == 66


def test_months_needed_agrees_with_a_month_by_month_count():
    per_month, rate, cut = 300.0, 0.03, 0.15
    months = ex.months_needed(1189, per_month, rate, cut)
    # independent: enrol in 1/100-month slices and add up each slice's expected departures
    def expected(m):
        total, dt = 0.0, 0.01
        for s in np.arange(0, m, dt) + dt / 2:
            for h in (rate, rate * (1 - cut)):
                total += per_month * dt / 2 * (1 - math.exp(-h * (m - s)))
        return total
    assert expected(months) == pytest.approx(1189, rel=1e-3)
    assert expected(months - 1) < 1189
    assert ex.months_needed(1189, 0.1, 0.001, cut) is None  # never within 50 years


def _flow_world():
    """Two customers on a monthly grid with known months since contact."""
    rows = []
    for cid, msc, event in (("a", [4, 5, 6, 7, 8], 1), ("b", [5, 6, 0, 1], 0)):
        for k, m in enumerate(msc):
            rows.append({"customer_id": cid, "start": float(k), "stop": float(k + 1),
                         "event": int(event and k == len(msc) - 1),
                         "months_since_contact": float(m)})
    eps = pd.DataFrame(rows)
    customers = pd.DataFrame({"customer_id": ["a", "b"],
                              "start_date": pd.to_datetime(["2025-12-01", "2026-01-01"])})
    data = StudyData("events", pd.Timestamp("2026-06-30"), customers=customers)
    from retention_study.data.schema import Timeline
    return Timeline(eps, {"contact": ["months_since_contact"]}), data


def test_eligible_flow_by_hand():
    tl, data = _flow_world()
    flow = ex.eligible_flow(tl, data, "months_since_contact", 6.0)
    # a passes 6 months in its third month, b in its second: 2 in the last 365 days
    assert flow["per_quarter"] == pytest.approx(2 * 91.3 / 365)
    # months at >= 6: a's 3 (one departure) + b's 1
    assert flow["rate_per_month"] == pytest.approx(1 / 4)


# ------------------------------------------------------------------ the scan

def _confounded_table(n=1500, seed=3):
    """z raises both x (the 'contact' proxy) and leaving; w is noise; x has no effect."""
    rng = np.random.default_rng(seed)
    z = rng.binomial(1, 0.5, n)
    x = rng.normal(size=n) + 1.2 * z
    t = rng.exponential(1 / (0.05 * np.exp(0.9 * z)))
    c = rng.uniform(0, 40, n)
    table = pd.DataFrame({"customer_id": np.arange(n).astype(str),
                          "duration_days": np.minimum(t, c) * 30.4375,
                          "event": (t <= c).astype(int), "x": x, "p": rng.normal(size=n),
                          "z": np.where(z == 1, "yes", "no"), "w": rng.normal(size=n)})
    roles = {"price": ["p"], "contact": ["x"], "controls": [], "segments": ["z", "w"],
             "contact_kind": "outbound"}
    return StudyData("table", pd.Timestamp("2026-06-30"), table=table, roles=roles)


def test_scan_flags_the_confounder_and_not_the_noise():
    data = _confounded_table()
    tl = build_timeline(data)
    bm = BlockModels().fit(tl)
    scan = cf.confounder_scan(data, bm, controls=[])
    assert scan["scanned"] == ["z", "w"] and scan["flagged"] == ["z"]
    rows = pd.DataFrame(scan["rows"]).set_index(["column", "covariate"])
    # adjusting for z pulls the spurious x effect towards 1
    assert rows.loc[("z", "x"), "hr_before"] > 1.2 > rows.loc[("z", "x"), "hr_after"]
    assert abs(rows.loc[("w", "x"), "change"]) < cf.SCAN_THRESHOLD
    # the effect before equals the main fit's business-unit HR
    eff = bm.effects.set_index("covariate").loc["x", "hr"]
    assert rows.loc[("z", "x"), "hr_before"] == pytest.approx(eff)
    note = narrative.confounding_note(Results.from_dict({"confounding": {"scan": scan}, "effects":
                                       bm.effects.to_dict("records")}))
    assert note.startswith("Adjusting for z, which the models did not")
    assert "Adjusting for w" not in note and "Add z to data.controls" in note
    # with z a control, nothing is left to flag and no warning appears
    scan2 = cf.confounder_scan(data, BlockModels().fit(build_timeline(data, controls=["z"])),
                               controls=["z"])
    assert scan2["flagged"] == [] and narrative.confounding_note(
        Results.from_dict({"confounding": {"scan": scan2}})) is None


def test_wider_prepared_rows_equal_a_fresh_preparation_to_the_last_bit():
    # The scan widens the final model's prepared rows instead of preparing the whole
    # episode table again: same index, same centred columns, same fit.
    from retention_study.survival import CoxData, CoxFitter

    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"start": rng.integers(0, 5, n).astype(float), "event": rng.binomial(1, .4, n),
                       "a": rng.normal(size=n), "b": rng.normal(size=n),
                       "z": rng.binomial(1, 0.3, n).astype(float)})
    df["stop"] = df["start"] + rng.integers(1, 6, n)
    narrow = CoxData.from_frame(df, ["a", "b"])
    wide = cf.with_columns(narrow, {"z": df["z"].to_numpy()})
    fresh = CoxData.from_frame(df, ["a", "b", "z"])
    assert wide.columns == fresh.columns
    assert np.array_equal(wide.x, fresh.x) and np.array_equal(wide.sd, fresh.sd)
    assert np.array_equal(wide.index.rows, fresh.index.rows)
    one = CoxFitter().fit(wide, ["a", "b", "z"])
    two = CoxFitter().fit(df, ["a", "b", "z"])
    assert np.array_equal(one.params_.to_numpy(), two.params_.to_numpy())
    assert one.log_likelihood_ == two.log_likelihood_


def test_scan_reuses_the_final_fit_and_gives_what_refitting_gives():
    # the old scan refitted the final model from the whole episode table for "before"
    # and fitted each candidate on a copy of it: the same numbers, bit for bit
    from retention_study.survival import CoxFitter

    data = _confounded_table()
    bm = BlockModels().fit(build_timeline(data))
    scan = cf.confounder_scan(data, bm, controls=[])
    rows = pd.DataFrame(scan["rows"]).set_index(["column", "covariate"])
    final = bm.columns["both"]
    before = CoxFitter().fit(bm.data_, final).params_
    added = cf._candidate_columns(data.table, "z", bm.data_["customer_id"])
    work = pd.concat([bm.data_, added.set_axis([f"scan:{c}" for c in added.columns],
                                                axis=1)], axis=1)
    after = CoxFitter().fit(work, final + [f"scan:{c}" for c in added.columns]).params_
    scale = cf._scale(bm, "x")
    assert rows.loc[("z", "x"), "hr_before"] == math.exp(before["x"] * scale)
    assert rows.loc[("z", "x"), "hr_after"] == math.exp(after["x"] * scale)


def test_identifier_like_columns_are_not_scanned():
    data = _confounded_table(n=200)
    data.table["account"] = [f"A{i}" for i in range(200)]
    cols, skipped = cf.scan_candidates(data, controls=[])
    assert "account" not in cols and "distinct values" in skipped["account"]


def test_controls_auto_adds_what_the_scan_flags(tmp_path):
    from retention_study.analysis.pipeline import choose_controls
    from retention_study.config import resolve_config
    from retention_study.config_file import check_columns
    from retention_study.data.load import load_study_data

    table = _confounded_table().table
    table["months"] = table.pop("duration_days") / 30.4375
    table["p"] = 50 + 5 * table["p"]  # a price must be a positive amount
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    data_cfg = {"format": "table", "path": str(path), "duration": "months",
                "event": {"column": "event", "values": [1]}, "price": ["p"],
                "contact": ["x"], "segments": ["z", "w"], "controls": "auto"}
    cfg = resolve_config({"data": data_cfg, "study": {"bootstrap": 10}})
    check_columns(cfg)  # 'auto' is not a column the header must have
    data = choose_controls(load_study_data(cfg), cfg)
    assert data.roles["controls"] == ["z"]
    assert data.roles["controls_auto"] == {"added": ["z"], "scanned": ["z", "w"]}
    text = narrative.auto_controls_sentence(Results.from_dict({"roles": data.roles}))
    assert text.startswith("data.controls is auto: z was added as control,")
    # listed controls: nothing is chosen and nothing is said about auto
    cfg = resolve_config({"data": {**data_cfg, "controls": ["w"]}})
    data = choose_controls(load_study_data(cfg), cfg)
    assert data.roles["controls"] == ["w"] and data.roles["controls_auto"] is False
    assert narrative.auto_controls_sentence(Results.from_dict({"roles": data.roles})) is None
