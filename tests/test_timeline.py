"""Episode builder: hand-built customers with known answers, and a slow reference.

The reference (``_reference``) rebuilds the episodes of a small random data set one
customer and one interval at a time, with calendar arithmetic straight from the
spec; the vectorised builder must agree with it row for row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from retention_study.data.schema import DAYS_PER_MONTH, StudyData
from retention_study.episodes.grid import days_to_units, units_to_days
from retention_study.episodes.timeline import TimelineBuilder, build_timeline, example_data
from retention_study.errors import ConfigError

D = pd.Timestamp
DPM = DAYS_PER_MONTH
ROOT_REAL = "../shared/data/real"


def _customers(rows):
    rows = [tuple(r) + (None,) * (4 - len(r)) if len(r) < 4 else r for r in rows]
    frame = pd.DataFrame(rows, columns=["customer_id", "start_date", "end_date", "notice_date",
                                        "plan"][: len(rows[0])])
    for col in ("start_date", "end_date", "notice_date"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col])
    if "end_date" not in frame:
        frame["end_date"] = pd.NaT
    if "notice_date" not in frame:
        frame["notice_date"] = pd.NaT
    frame["churned"] = (frame["end_date"].notna() | frame["notice_date"].notna()).astype(int)
    frame["exit_reason"] = np.nan
    return frame


def _prices(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "effective_date", "monthly_price",
                                        "new_customer_price"])
    frame["effective_date"] = pd.to_datetime(frame["effective_date"])
    return frame.astype({"monthly_price": float, "new_customer_price": float})


def _contacts(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "contact_date", "direction"])
    frame["contact_date"] = pd.to_datetime(frame["contact_date"])
    frame["channel"] = "phone"
    frame["topic"] = np.nan
    return frame


def _data(customers, prices=None, contacts=None, as_of="2024-03-31", obs=None, controls=()):
    prices = prices if prices is not None else [
        (c[0], c[1], 30.0, 25.0) for c in customers]
    contacts = contacts if contacts is not None else [
        ("nobody", "2020-01-01", "outbound"), ("nobody", "2020-01-01", "inbound")]
    return StudyData("events", D(as_of), _customers(customers), _prices(prices),
                     _contacts(contacts), roles={"controls": list(controls)},
                     observation_start=D(obs) if obs else None)


def _ep(data, **kw):
    return build_timeline(data, **kw).episodes


# --------------------------------------------------------------------------- grid and follow-up


def test_grid_rounding_matches_tenure_month_definition():
    k = np.arange(0, 200)
    month_start_days = np.floor(k * 365.25 / 12).astype(int)
    assert units_to_days(k, "month").tolist() == month_start_days.tolist()
    # a day on a month start stays; the day after goes to the next month
    assert days_to_units(month_start_days, "month").tolist() == k.tolist()
    assert days_to_units(month_start_days[1:] + 1, "month").tolist() == (k[1:] + 1).tolist()


def test_censored_at_as_of_split_monthly():
    # as_of 2024-04-15 is tenure day 105: between month 3 (day 91) and month 4 (day 121)
    ep = _ep(_data([("a", "2024-01-01")], as_of="2024-04-15"))
    assert ep[["start", "stop"]].values.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]
    assert ep["event"].tolist() == [0, 0, 0, 0]


def test_departure_dated_at_notice_and_naive_at_end():
    # notice on day 50 (month 1..2), service ends day 84 (month 2..3)
    data = _data([("a", "2024-01-01", "2024-03-25", "2024-02-20")])
    ep = _ep(data)
    assert ep[["start", "stop", "event"]].values.tolist() == [[0, 1, 0], [1, 2, 1]]
    naive = _ep(data, notice_guard=False)
    assert naive[["start", "stop", "event"]].values.tolist() == [[0, 1, 0], [1, 2, 0], [2, 3, 1]]


def test_notice_still_served_is_a_departure_at_notice_naive_at_as_of():
    data = _data([("a", "2024-01-01", None, "2024-02-20")], as_of="2024-04-15")
    assert _ep(data)["stop"].max() == 2 and _ep(data)["event"].sum() == 1
    naive = _ep(data, notice_guard=False)
    assert naive["stop"].max() == 4 and naive["event"].tolist()[-1] == 1


def test_day_grid_stop_is_departure_day():
    data = _data([("a", "2024-01-01", "2024-02-20")])
    ep = _ep(data, grid="day")
    assert ep["stop"].iloc[-1] * DPM == pytest.approx(50)
    # boundaries: day 1 (the sign-up price becomes known), month 1 (day 30)
    assert (ep["start"] * DPM).round(9).tolist() == [0, 1, 30]
    assert ep["event"].tolist() == [0, 0, 1]


def test_late_entry_start_and_clock_not_reset():
    # observation_start is tenure day 151 of customer a -> enters at month 5 (day 152)
    data = _data([("a", "2023-01-01"), ("b", "2023-01-01", "2023-03-01"),
                  ("c", "2023-07-01")], obs="2023-06-01", as_of="2023-09-01")
    ep = _ep(data)
    a = ep[ep.customer_id == "a"]
    assert a["start"].iloc[0] == 5 and a["stop"].iloc[-1] == 8  # day 243 -> month 8
    assert "b" not in set(ep.customer_id)  # left before the observation window
    assert ep[ep.customer_id == "c"]["start"].iloc[0] == 0
    reasons = [e.reason for e in data.ledger.entries]
    assert any("observation_start" in r for r in reasons)


def test_no_time_at_risk_dropped_and_counted():
    data = _data([("a", "2024-03-31"), ("b", "2024-01-01")])
    ep = _ep(data)
    assert set(ep.customer_id) == {"b"}
    entry = [e for e in data.ledger.entries if "no time at risk" in e.reason]
    assert entry and entry[0].rows == 1 and entry[0].table == "customers"


def test_day_grid_splits_the_day_after_each_event():
    contacts = [("a", "2024-01-10", "outbound")]
    ep = _ep(_data([("a", "2024-01-01")], contacts=contacts), grid="day")
    # the sign-up price (day 0) is known from day 1, the contact (day 9) from day 10
    assert (ep["start"] * DPM).round(9).tolist() == [0, 1, 10, 30, 60]
    week = _ep(_data([("a", "2024-01-01")], contacts=contacts), grid="week")
    # day 1 -> 7, day 10 -> 14, month starts 30 -> 35, 60 -> 63, exit day 90 -> 91
    assert (week["start"] * DPM).round(9).tolist() == [0, 7, 14, 35, 63]
    assert week["stop"].iloc[-1] * DPM == pytest.approx(91)


# --------------------------------------------------------------------------- covariates by hand


def test_months_since_contact_by_hand():
    contacts = [("a", "2024-01-10", "outbound"), ("a", "2024-01-20", "inbound")]
    data = _data([("a", "2024-01-01")], contacts=contacts)
    ep = _ep(data)  # month starts: days 0, 30, 60
    assert ep["months_since_contact"].tolist() == pytest.approx([0, 21 / DPM, 51 / DPM])
    assert ep["outbound_12m"].tolist() == [0, 1, 1]
    assert ep["inbound_12m"].tolist() == [0, 1, 1]
    capped = _ep(data, contact_cap_months=1)
    assert capped["months_since_contact"].tolist() == pytest.approx([0, 21 / DPM, 1])


def test_never_contacted_counts_from_start_and_caps():
    contacts = [("b", "2024-01-01", "outbound")]
    data = _data([("a", "2020-01-01"), ("b", "2024-01-01")], contacts=contacts,
                 as_of="2024-03-31")
    a = _ep(data)
    a = a[a.customer_id == "a"]
    assert a["months_since_contact"].iloc[0] == 0
    assert a["months_since_contact"].iloc[-1] == 24


def test_lag_delays_what_is_known():
    contacts = [("a", "2024-01-10", "outbound")]  # day 9
    data = _data([("a", "2024-01-01")], contacts=contacts)
    ep = _ep(data, lag_days=30)  # known only from begin day 40 on
    assert ep["months_since_contact"].tolist() == pytest.approx([0, 30 / DPM, 51 / DPM])
    assert ep["outbound_12m"].tolist() == [0, 0, 1]
    day = _ep(data, lag_days=30, grid="day")
    assert (day["start"] * DPM).round(9).tolist() == [0, 30, 31, 40, 60]


def test_contact_leaves_the_12_month_count_after_365_days():
    contacts = [("a", "2023-01-01", "outbound")]
    data = _data([("a", "2023-01-01")], contacts=contacts, as_of="2024-03-01")
    ep = _ep(data, grid="day")
    # the welcome call on start_date is known from day 1 and counts until day 366
    rows = ep.assign(b=(ep["start"] * DPM).round().astype(int))
    assert rows.loc[rows.b < 1, "outbound_12m"].eq(0).all()
    assert rows.loc[(rows.b >= 1) & (rows.b <= 365), "outbound_12m"].eq(1).all()
    assert rows.loc[rows.b >= 366, "outbound_12m"].eq(0).all()
    assert 366 in set(rows.b)


def test_price_increase_flagged_for_exactly_60_days():
    prices = [("a", "2024-01-01", 30, 25), ("a", "2024-02-10", 33, 25),  # +10% on day 40
              ("a", "2024-05-01", 20, 25)]  # a decrease (day 121) is not an increase
    data = _data([("a", "2024-01-01")], prices=prices, as_of="2024-08-31")
    ep = _ep(data, grid="day")
    flagged = ep["price_increase_recent"] == 1
    assert ((ep["stop"] - ep["start"])[flagged] * DPM).sum() == pytest.approx(60)
    assert (ep.loc[flagged, "start"] * DPM).min() == pytest.approx(41)
    short = _ep(data, grid="day", price_increase_window_days=10)
    assert ((short["stop"] - short["start"])[short["price_increase_recent"] == 1]
            * DPM).sum() == pytest.approx(10)
    month = _ep(data)  # month starts 30, 60, 91: begin day 60 is within 60 days of day 40
    assert month["price_increase_recent"].tolist()[:4] == [0, 0, 1, 1]


def test_loyalty_penalty_and_price_level():
    prices = [("a", "2024-01-01", 30, 30), ("a", "2024-02-10", 33, np.nan)]
    ep = _ep(_data([("a", "2024-01-01")], prices=prices), include_price_level=True)
    # first month: the sign-up price (dated on start_date) is known
    assert ep["loyalty_penalty"].tolist() == pytest.approx([0, 0, math.log(33 / 30)])
    assert ep["log_price"].tolist() == pytest.approx([math.log(30)] * 2 + [math.log(33)])


def test_new_customer_price_missing_entirely_uses_price_level():
    prices = [("a", "2024-01-01", 30, np.nan)]
    tl = build_timeline(_data([("a", "2024-01-01")], prices=prices))
    assert "loyalty_penalty" not in tl.episodes and tl.blocks["price"][0] == "log_price"
    assert any("new-customer price" in u for u in tl.unmeasured)


def test_new_customer_price_never_known_for_a_customer_excludes_it():
    prices = [("a", "2024-01-01", 30, np.nan), ("b", "2024-01-01", 30, 25)]
    data = _data([("a", "2024-01-01"), ("b", "2024-01-01")], prices=prices)
    ep = _ep(data)
    assert set(ep.customer_id) == {"b"}
    assert any("new-customer price" in e.reason and e.rows == 1 for e in data.ledger.entries)


def test_a_price_of_zero_excludes_the_customer_instead_of_a_nan_covariate():
    prices = [("a", "2024-01-01", 0, 25), ("b", "2024-01-01", 30, 25)]
    data = _data([("a", "2024-01-01"), ("b", "2024-01-01")], prices=prices)
    ep = _ep(data, include_price_level=True)
    assert set(ep.customer_id) == {"b"} and np.isfinite(ep["log_price"]).all()
    assert any("not above 0" in e.reason and e.rows == 1 for e in data.ledger.entries)


def test_dummy_coding_drops_most_common_level():
    customers = [("a", "2024-01-01", None, None, "basic"), ("b", "2024-01-01", None, None, "basic"),
                 ("c", "2024-01-01", None, None, "premium"),
                 ("d", "2024-01-01", None, None, "standard")]
    tl = build_timeline(_data(customers, controls=["plan"]))
    assert tl.blocks["controls"] == ["plan[premium]", "plan[standard]"]
    first = tl.episodes.groupby("customer_id").first()
    assert first["plan[premium]"].tolist() == [0, 0, 1, 0]
    assert first["plan[standard]"].tolist() == [0, 0, 0, 1]
    assert "reference: 'basic'" in tl.definitions["plan[premium]"]


def test_an_unknown_control_names_the_file_and_column():
    from retention_study.errors import DataContractError

    data = _data([("a", "2024-01-01")])
    data.sources = {"customers": "crm/customers.csv"}
    with pytest.raises(DataContractError) as info:
        build_timeline(data, controls=["plann"])
    assert str(info.value) == ("crm/customers.csv: column plann: control column 'plann' is "
                               "not in the data")


def test_bad_options_are_config_errors():
    data = _data([("a", "2024-01-01")])
    with pytest.raises(ConfigError, match="grid"):
        build_timeline(data, grid="hour")
    with pytest.raises(ConfigError, match="lag_days"):
        build_timeline(data, lag_days=-1)


# --------------------------------------------------------------------------- the notice guard


def _leaver(extra_contacts=(), extra_prices=()):
    contacts = [("a", "2024-01-01", "outbound"), ("a", "2024-01-20", "inbound")]
    contacts += list(extra_contacts)
    prices = [("a", "2024-01-01", 40, 30)] + list(extra_prices)
    # notice on day 50; the service ends on day 80
    return _data([("a", "2024-01-01", "2024-03-21", "2024-02-20")], prices=prices,
                 contacts=contacts, as_of="2024-06-30")


@pytest.mark.parametrize("grid", ["month", "week", "day"])
def test_notice_guard_keeps_post_notice_events_out(grid):
    retention_call = [("a", "2024-02-22", "outbound")]
    win_back = [("a", "2024-02-23", 28, 30)]
    with_after = _ep(_leaver(retention_call, win_back), grid=grid)
    without = _ep(_leaver(), grid=grid)
    pd.testing.assert_frame_equal(with_after, without)
    # naive: the retention call and the discount reach the last rows
    n_with = _ep(_leaver(retention_call, win_back), grid=grid, notice_guard=False)
    n_without = _ep(_leaver(), grid=grid, notice_guard=False)
    last_with, last_without = n_with.iloc[-1], n_without.iloc[-1]
    assert last_with["months_since_contact"] < last_without["months_since_contact"]
    assert last_with["outbound_12m"] == last_without["outbound_12m"] + 1
    assert last_with["loyalty_penalty"] < last_without["loyalty_penalty"]


def test_notice_guard_with_a_notice_on_a_month_start():
    # notice exactly on month 2 (day 60): the last interval is month 1..2
    data = _data([("a", "2024-01-01", "2024-04-01", "2024-03-01")],
                 contacts=[("a", "2024-03-01", "outbound")])
    ep = _ep(data)
    assert ep["stop"].max() == 2 and ep["outbound_12m"].max() == 0


def test_notice_on_a_month_start_ends_the_previous_month_without_a_leak():
    # Days are right-closed: interval (k-1, k] holds tenure days floor((k-1)DPM)+1 ..
    # floor(k DPM), so a notice on the day month 3 begins (day 91, 2024-04-01) ends
    # (2, 3]. Its covariates are read on day 60 (2024-03-01) from events dated strictly
    # before it: older than anything in the interval, so this is a one-day-earlier
    # reading, never a leak. (The simulator dates month k's notices on these same days,
    # floor(k DPM) + 1 .. floor((k+1) DPM): see
    # test_simulate.py::test_every_departure_meets_the_builders_row_for_its_month.)
    contacts = [("a", "2024-02-29", "outbound"), ("a", "2024-03-01", "outbound"),
                ("a", "2024-03-31", "outbound")]
    prices = [("a", "2024-01-01", 30, 30), ("a", "2024-03-01", 36, 30)]
    data = _data([("a", "2024-01-01", None, "2024-04-01")], prices=prices, contacts=contacts,
                 as_of="2024-06-30")
    last = _ep(data).iloc[-1]
    assert (last["start"], last["stop"], last["event"]) == (2, 3, 1)
    assert last["outbound_12m"] == 1  # day 59 only
    assert last["months_since_contact"] == pytest.approx(1 / DPM)
    assert last["loyalty_penalty"] == 0 and last["price_increase_recent"] == 0
    # one day later the notice is in month 3: (3, 4] reads everything dated before day 91
    later = _ep(_data([("a", "2024-01-01", None, "2024-04-02")], prices=prices,
                      contacts=contacts, as_of="2024-06-30")).iloc[-1]
    assert (later["start"], later["stop"], later["event"]) == (3, 4, 1)
    assert later["outbound_12m"] == 3 and later["price_increase_recent"] == 1


# --------------------------------------------------------------------------- reference


def _random_world(n, seed):
    rng = np.random.default_rng(seed)
    as_of = D("2025-06-30")
    start = as_of - pd.to_timedelta(rng.integers(0, 1500, n), unit="D")
    leave = rng.random(n) < 0.5
    notice = start + pd.to_timedelta(rng.integers(0, 1200, n), unit="D")
    notice = notice.where(leave & (notice <= as_of))
    end = notice + pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    end = end.where(end <= as_of)
    ids = [f"c{i:04d}" for i in range(n)]
    cust = pd.DataFrame({"customer_id": ids, "start_date": start, "end_date": end,
                         "notice_date": notice})
    cust.loc[::7, "notice_date"] = pd.NaT  # some leave without a notice on record
    cust["churned"] = (cust.end_date.notna() | cust.notice_date.notna()).astype(int)
    cust["exit_reason"] = np.nan
    cust["plan"] = rng.choice(["basic", "standard", "premium"], n, p=[0.5, 0.3, 0.2])
    cust["age"] = rng.integers(20, 80, n).astype(float)
    last = cust.end_date.fillna(as_of)

    def events(k):
        who = rng.integers(0, n, k)
        span = (last.to_numpy()[who] - start.to_numpy()[who]).astype("timedelta64[D]").astype(int)
        off = (rng.random(k) * (span + 1)).astype(int)
        return who, start.to_numpy()[who] + off.astype("timedelta64[D]")

    who, day = events(6 * n)
    contacts = pd.DataFrame({"customer_id": np.array(ids)[who], "contact_date": day,
                             "direction": rng.choice(["outbound", "inbound"], len(who)),
                             "channel": "phone", "topic": np.nan})
    who, day = events(3 * n)
    ncp = rng.uniform(20, 30, len(who)).round(2)
    ncp[rng.random(len(who)) < 0.2] = np.nan
    prices = pd.DataFrame({"customer_id": np.array(ids)[who], "effective_date": day,
                           "monthly_price": rng.uniform(20, 40, len(who)).round(2),
                           "new_customer_price": ncp})
    signup = pd.DataFrame({"customer_id": ids, "effective_date": start,
                           "monthly_price": 25.0, "new_customer_price": 25.0})
    prices = pd.concat([signup, prices], ignore_index=True).drop_duplicates(
        ["customer_id", "effective_date"])
    return StudyData("events", as_of, cust, prices, contacts,
                     roles={"controls": ["plan", "age"]}, observation_start=D("2023-01-01"))


def _month_start(s, k):
    return s + pd.Timedelta(days=math.floor(k * DPM))


def _round_up(s, d, grid):
    if grid == "day":
        return d
    if grid == "week":
        return s + pd.Timedelta(days=7 * math.ceil((d - s).days / 7))
    k = 0
    while _month_start(s, k) < d:
        k += 1
    return _month_start(s, k)


def _tenure(s, d, grid):
    if grid in ("day", "week"):
        return (d - s).days / DPM
    k = 0
    while _month_start(s, k) < d:
        k += 1
    return float(k)


def _reference(data, grid, lag, guard=True):
    """One customer at a time, straight from the spec."""
    out = []
    obs, as_of = data.observation_start, data.as_of
    plans = data.customers.plan
    levels = sorted(set(plans) - {plans.value_counts().idxmax()})
    for c in data.customers.itertuples():
        s = c.start_date
        dep = c.notice_date if pd.notna(c.notice_date) else c.end_date
        event = pd.notna(dep) and dep <= as_of
        if not guard:  # the naive analysis: departure when the service ends
            dep = c.end_date if pd.notna(c.end_date) else (as_of if event else pd.NaT)
        exit_ = dep if event else as_of
        if event and exit_ < obs:
            continue
        entry = max(obs, s)
        con = data.contact_events[data.contact_events.customer_id == c.customer_id]
        if event and guard:
            con = con[con.contact_date < dep]
        pr = data.price_events[data.price_events.customer_id == c.customer_id].sort_values(
            "effective_date")
        pts = {_month_start(s, k) for k in range(0, 60)}
        if grid != "month":
            for d in con.contact_date:
                pts |= {d + pd.Timedelta(days=lag + 1), d + pd.Timedelta(days=lag + 366)}
            rises = pr.monthly_price.diff() > 0
            for d, up in zip(pr.effective_date, rises, strict=True):
                pts |= {d + pd.Timedelta(days=lag + 1)}
                if up:  # the "recent increase" flag switches off 60 days later
                    pts |= {d + pd.Timedelta(days=lag + 61)}
        lo, hi = _round_up(s, entry, grid), _round_up(s, exit_, grid)
        if hi <= lo:
            continue
        bounds = sorted({_round_up(s, p, grid) for p in pts if lo < p < hi} | {lo, hi})
        for b, e in zip(bounds[:-1], bounds[1:], strict=False):
            t = b if guard else e + pd.Timedelta(days=1)  # naive: known by the interval's end
            r = t - pd.Timedelta(days=lag)
            known = con[con.contact_date < r]
            out_k = known[known.direction == "outbound"].contact_date
            last = out_k.max() if len(out_k) else s
            year_ago = r - pd.Timedelta(days=365)
            p_known = pr[pr.effective_date < r]
            if not len(p_known):
                p_known = pr.iloc[:1]
            ncp = pr[pr.effective_date <= p_known.effective_date.iloc[-1]].new_customer_price
            rose = pr.monthly_price.diff() > 0
            inc = pr[rose & (pr.effective_date >= r - pd.Timedelta(days=60))
                     & (pr.effective_date < r)]
            if event and guard:
                inc = inc[inc.effective_date < dep]
            out.append({
                "customer_id": c.customer_id, "start": _tenure(s, b, grid),
                "stop": _tenure(s, e, grid), "event": int(event and e == hi),
                "loyalty_penalty": math.log(p_known.monthly_price.iloc[-1]
                                            / ncp.ffill().iloc[-1]),
                "price_increase_recent": int(len(inc) > 0),
                "months_since_contact": min(24, (t - last).days / DPM),
                "outbound_12m": int((out_k >= year_ago).sum()),
                "inbound_12m": int((known[known.direction == "inbound"].contact_date
                                    >= year_ago).sum()),
                **{f"plan[{lv}]": int(c.plan == lv) for lv in levels},
                "age": c.age,
            })
    return pd.DataFrame(out)


@pytest.mark.parametrize("grid,lag,guard", [("month", 0, True), ("month", 20, True),
                                            ("day", 0, True), ("day", 15, True),
                                            ("week", 3, True), ("month", 0, False),
                                            ("day", 10, False)])
def test_matches_slow_reference(grid, lag, guard):
    data = _random_world(36, seed=3)
    ref = _reference(data, grid, lag, guard)
    ep = _ep(data, grid=grid, lag_days=lag, notice_guard=guard).reset_index(drop=True)
    ep = ep[ref.columns]
    assert ref["event"].sum() > 5 and (ref["start"] > 0).any()
    pd.testing.assert_frame_equal(ep[ref.columns], ref, check_dtype=False, atol=1e-9)


def test_one_builder_for_many_variants_matches_fresh_builds_and_the_reference():
    # The robustness analysis builds lags and the naive analysis with one builder, which
    # reuses the month grid's rows across lags: each must be what a fresh build gives.
    data, other = _random_world(36, seed=3), _random_world(36, seed=3)
    builder = TimelineBuilder(data)
    variants = [{"lag_days": 30}, {"lag_days": 60}, {"notice_guard": False},
                {"lag_days": 0}, {"grid": "day", "lag_days": 15}, {"grid": "day", "lag_days": 0},
                {"include_price_level": True}]
    for kw in variants:
        reused = builder.build(**kw)
        fresh = build_timeline(other, **kw)
        pd.testing.assert_frame_equal(reused.episodes, fresh.episodes, check_exact=True)
        assert reused.params == fresh.params and reused.blocks == fresh.blocks
    ref = _reference(data, "month", 60)
    ep = builder.build(lag_days=60).episodes.reset_index(drop=True)
    pd.testing.assert_frame_equal(ep[ref.columns], ref, check_dtype=False, atol=1e-9)
    assert data.ledger.to_dict() == other.ledger.to_dict()


def test_many_customers_without_a_loop():
    rng = np.random.default_rng(1)
    n = 50_000
    start = D("2020-01-01") + pd.to_timedelta(rng.integers(0, 1800, n), unit="D")
    cust = pd.DataFrame({"customer_id": [f"k{i}" for i in range(n)], "start_date": start,
                         "end_date": pd.NaT, "notice_date": pd.NaT, "churned": 0,
                         "exit_reason": np.nan})
    data = StudyData("events", D("2025-06-30"), cust, _prices([("k0", "2020-01-01", 30, 25)]),
                     _contacts([("k1", "2021-01-01", "outbound"),
                                ("k1", "2021-01-01", "inbound")]))
    data.price_events = pd.DataFrame({"customer_id": cust.customer_id, "effective_date": start,
                                      "monthly_price": 30.0, "new_customer_price": 25.0})
    ep = build_timeline(data, grid="week").episodes
    assert ep.customer_id.nunique() == n
    assert (ep["stop"] > ep["start"]).all()
    assert ep.groupby("customer_id", sort=False)["stop"].max().max() * DPM <= 2007 + 7


# --------------------------------------------------------------------------- Cox equivalence


def test_time_varying_and_entry_col_fits_agree():
    from lifelines import CoxPHFitter, CoxTimeVaryingFitter

    data = _random_world(300, seed=11)
    tl = build_timeline(data)
    cols = ["loyalty_penalty", "months_since_contact", "outbound_12m", "inbound_12m"]
    ep = tl.episodes[["customer_id", "start", "stop", "event", *cols]]
    ctv = CoxTimeVaryingFitter(penalizer=0.0).fit(ep, id_col="customer_id", start_col="start",
                                                  stop_col="stop", event_col="event")
    cph = CoxPHFitter().fit(ep.drop(columns="customer_id"), duration_col="stop",
                            event_col="event", entry_col="start")
    np.testing.assert_allclose(ctv.params_[cols].to_numpy(), cph.params_[cols].to_numpy(),
                               rtol=1e-4)


# --------------------------------------------------------------------------- shape B


def _ibm():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / ROOT_REAL / "ibm_telco_customer_churn.csv"
    if not path.is_file():
        pytest.skip("real data not present")
    raw = pd.read_csv(path)
    table = pd.DataFrame({"customer_id": raw.customerID, "duration_days": raw.tenure * DPM,
                          "event": (raw.Churn == "Yes").astype(int),
                          "MonthlyCharges": raw.MonthlyCharges, "TechSupport": raw.TechSupport,
                          "Contract": raw.Contract})
    return StudyData("table", D("2026-06-30"), table=table,
                     roles={"price": ["MonthlyCharges"], "contact": ["TechSupport"],
                            "controls": ["Contract"], "contact_kind": "outbound"})


def test_table_one_row_per_customer():
    data = _ibm()
    tl = build_timeline(data)
    ep = tl.episodes
    assert len(ep) == 7043 - 11  # tenure 0: no time at risk
    assert any(e.rows == 11 and e.table == "table" for e in data.ledger.entries)
    assert (ep.start == 0).all() and ep.event.sum() == 1869 - 0
    raw = data.table.set_index("customer_id")
    assert np.allclose(ep.set_index("customer_id").stop, raw.loc[ep.customer_id].duration_days
                       / DPM)
    assert tl.blocks["price"] == ["MonthlyCharges"]
    assert tl.blocks["controls"] == ["Contract[One year]", "Contract[Two year]"]
    assert set(tl.blocks["contact"]) == {"TechSupport[No internet service]", "TechSupport[Yes]"}
    assert "price proxy" in tl.definitions["MonthlyCharges"]


def test_table_inbound_contact_says_so():
    data = _ibm()
    data.roles["contact_kind"] = "inbound"
    tl = build_timeline(data)
    assert "customer-initiated" in tl.definitions["TechSupport[Yes]"]
    assert any("supplier" in u for u in tl.unmeasured)


# --------------------------------------------------------------------------- planted truth


def test_simulated_truth_recovered_only_with_the_guard():
    simulate = pytest.importorskip("retention_study.data.simulate").simulate
    from lifelines import CoxPHFitter

    sim = simulate(8000, seed=5, preset="both")
    data = StudyData("events", D(sim.truth["as_of"]), sim.customers, sim.price_events,
                     sim.contact_events, roles={"controls": ["plan"]},
                     observation_start=D(sim.truth["observation_start"]))
    truth = sim.truth["effects"]
    # log HR per unit of each covariate, from the planted hazard ratios
    planted = {"months_since_contact": math.log(truth["hr_no_contact_6m"]) / 6,
               "loyalty_penalty": math.log(truth["hr_price_gap_10pct"]) / math.log(1.1),
               "price_increase_recent": math.log(truth["hr_price_increase"])}
    fits = {}
    for guard in (True, False):
        tl = build_timeline(data, notice_guard=guard)
        cols = ["start", "stop", "event", *planted, *tl.blocks["controls"]]
        fits[guard] = CoxPHFitter().fit(tl.episodes[cols], "stop", "event",
                                        entry_col="start").summary
    guarded = fits[True]
    for name, beta in planted.items():
        assert abs(guarded.loc[name, "coef"] - beta) < 3 * guarded.loc[name, "se(coef)"], name
    # naive: the retention call right before leaving makes contact look protective
    assert fits[False].loc["months_since_contact", "coef"] < 0 < planted["months_since_contact"]


def test_example_data_by_hand():
    tl = build_timeline(example_data())
    ep = tl.episodes
    a = ep[ep.customer_id == "a"]
    # notice on 2025-03-10 (day 68): months 0..3, the retention call and the discount
    # that follow it never show
    assert a[["start", "stop", "event"]].values.tolist() == [[0, 1, 0], [1, 2, 0], [2, 3, 1]]
    assert a["loyalty_penalty"].tolist() == pytest.approx([math.log(30 / 25)] * 3)
    b = ep[ep.customer_id == "b"]
    # b: 44 from 2025-04-01 (tenure day 137); month 5 begins on day 152
    assert b.loc[b.start == 5, "price_increase_recent"].item() == 1
    assert b.loc[b.start == 7, "price_increase_recent"].item() == 0
    assert tl.params["controls"] == ["plan"] and tl.params["notice_guard"] is True


def test_missing_tables_are_unmeasured_and_nothing_at_risk_is_an_error():
    from retention_study.errors import AnalysisError

    data = example_data()
    data.price_events, data.contact_events = None, None
    tl = build_timeline(data, grid="week")
    assert tl.blocks["price"] == tl.blocks["contact"] == tl.blocks["service"] == []
    assert len(tl.unmeasured) == 3 and tl.n_customers == 3
    data.customers = data.customers.iloc[:0]
    with pytest.raises(AnalysisError, match="time at risk"):
        build_timeline(data)


def test_ledger_counts_the_main_analysis_once():
    # b left before observation_start; a joined on as_of (no time at risk)
    data = _data([("a", "2024-03-31"), ("b", "2023-01-01", "2023-03-01"),
                  ("c", "2023-01-01")], obs="2023-06-01")
    data.ledger.rows_in("customers", 3)
    data.ledger.rows_in("price_events", 3)
    naive = build_timeline(data, notice_guard=False)
    excluded = [e for e in naive.params["excluded"] if e["table"] == "customers"]
    assert data.ledger.entries == [] and len(excluded) == 2
    for grid in ("month", "week", "month"):
        build_timeline(data, grid=grid)
    assert [e.rows for e in data.ledger.entries if e.table == "customers"] == [1, 1]
    assert data.ledger.rows_analysed("customers") == 1
    # their sign-up prices leave with them, counted once too
    assert data.ledger.rows_analysed("price_events") == 1


def test_event_rows_of_excluded_customers_are_counted():
    # a: no time at risk (out of scope); b: missing plan (excluded); c: analysed
    customers = [("a", "2024-03-31", None, None, "basic"), ("b", "2024-01-01", None, None, None),
                 ("c", "2024-01-01", None, None, "basic")]
    contacts = [("a", "2024-03-31", "outbound"), ("b", "2024-01-05", "outbound"),
                ("b", "2024-01-06", "inbound"), ("c", "2024-01-05", "outbound"),
                ("x", "2024-01-05", "inbound")]  # x: not a customer at all
    data = _data(customers, contacts=contacts, controls=["plan"])
    assert set(_ep(data).customer_id) == {"c"}
    got = {(e.table, e.kind): e.rows for e in data.ledger.entries}
    assert got == {("customers", "out_of_scope"): 1, ("customers", "invalid"): 1,
                   ("price_events", "out_of_scope"): 1, ("price_events", "invalid"): 1,
                   ("contact_events", "out_of_scope"): 2, ("contact_events", "invalid"): 2}


def test_a_block_can_be_replaced(monkeypatch):
    import retention_study.episodes.blocks as module

    def flat_price(data, rows, params):
        return module.Block({"flat": np.ones(len(rows.cust))}, {"flat": "always 1"}, [], {})

    monkeypatch.setitem(module.BLOCK_BUILDERS, "price", flat_price)
    tl = build_timeline(example_data())
    assert tl.blocks["price"] == ["flat"] and (tl.episodes["flat"] == 1).all()
