"""What if management pulled a lever? Departures and revenue under a contact or price policy.

The fitted final Cox model (price + contact + base) is used as the parametric g-formula
with deterministic covariate paths: every customer in the model keeps their own history
(start, plan, prices, contacts up to their departure), a lever rewrites that history
from the customer's entry into the study on, the episode builder recomputes every
measure along the new path, and the model turns each path into the probability of
leaving within the observation window. Summed over customers (standardisation), this
gives the expected departures as observed and under the lever.

Levers (:data:`LEVERS`):

- ``contact``: whenever a customer reaches ``contact_every_months`` months since the
  last outbound contact (or since joining), an outbound contact happens that day
  (:func:`retention_study.data.schema.contact_lever_days`); months since contact *and* the
  12-month contact count follow from the new path;
- ``price``: existing customers pay the new-customer price: no loyalty penalty, no
  recent increase (the price level, when modelled, becomes the new-customer price);
- ``both``: the two together.

A customer who left has no history after leaving. Their path beyond the departure is
continued deterministically: their own contact history (outbound and inbound) inside the
window is replayed, so a customer the supplier called every two months keeps being
called every two months (a neglected one keeps being neglected), and their prices take
the relative steps a comparable customer still served had from the departure on (same
start month and few-level controls such as plan; :func:`_continue_prices`), so the
natural course keeps the increases a leaver would have had. Events caused by the
departure (retention calls, win-back offers on or after the notice) are not part of any
path. The contact lever does not move prices: where extra calls would bring repricing
(the simulator's account managers move a contacted customer to a current deal), that
part of the contact lever's effect is not in the estimate.

The confidence interval is a customer-level bootstrap of the linearised estimate. The
estimate is a smooth function of customer weights ``w`` (all 1 in the data): the
coefficients (a weighted refit), the Breslow baseline (weighted) and the standardisation
(a weighted sum). Its first-order expansion in ``w`` is ``D(w) = D + sum_i (w_i - 1)
IF_i``, with each customer's influence ``IF_i`` on a regime's expected departures
computed once from the fit: their own chance of leaving, their score contribution
through the coefficients (``V @ U_i``, the one-step Newton update of a refit, Efron as
fitted), their departures and risk through the baseline hazard. Each resample
(multinomial customer counts, deterministic per seed) is then a weighted sum of
customers x regimes, never a pass over the episodes; the change is the ratio of the
resampled departures. To first order this is the refitting bootstrap (the tests check
the influences against derivatives of weighted refits, and the resamples against
refits); ``bootstrap_method`` in the records says so.

The interval is for the *expected* change: the change in these customers' chances of
leaving under the model, which is what a policy moves. One realised counterfactual (a
simulator's departures under the lever, or a future year's) adds the noise of who
happens to leave, about a point of departures at 10,000 customers; that is not in the
interval. The interval covers the estimation error of the model, not a wrong model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retention_study.analysis.models import FINAL_MODEL, BlockModels
from retention_study.analysis.records import to_records
from retention_study.data.schema import CUSTOMER_ID, StudyData, contact_lever_days
from retention_study.episodes.timeline import build_timeline
from retention_study.errors import AnalysisError

log = logging.getLogger("retention_study")

LEVERS = ("contact", "price", "both")
#: Fewer days than this between entry and departure: the history is too short to replay.
MIN_REPLAY_DAYS = 30
_MISSING = np.iinfo(np.int64).min // 4
_PRICE_COLS = ("loyalty_penalty", "price_increase_recent", "log_price")


def _days(values) -> np.ndarray:
    arr = np.asarray(values, dtype="datetime64[ns]").astype("datetime64[D]")
    out = arr.astype(np.int64)
    out[np.isnat(arr)] = _MISSING
    return out


def _dates(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")


@dataclass
class Paths:
    """The customers' follow-up as day numbers: entry into the study, departure, as_of."""

    ids: pd.Index
    start: np.ndarray
    entry: np.ndarray  # first day of the window (start, or observation_start if later)
    depart: np.ndarray  # departure day (notice, else end), _MISSING if still a customer
    as_of: int


def _paths(data: StudyData, ids: pd.Index) -> Paths:
    cust = data.customers.set_index(CUSTOMER_ID).loc[ids]
    start = _days(cust["start_date"])
    end = _days(cust["end_date"])
    notice = _days(cust["notice_date"]) if "notice_date" in cust else np.full(len(ids), _MISSING)
    depart = np.where(notice != _MISSING, notice, end)
    both = (notice != _MISSING) & (end != _MISSING)
    depart = np.where(both, np.minimum(notice, end), depart)
    as_of = int(_days([pd.Timestamp(data.as_of)])[0])
    depart = np.where(depart > as_of, _MISSING, depart)
    entry = start.copy()
    if data.observation_start is not None:
        entry = np.maximum(start, int(_days([pd.Timestamp(data.observation_start)])[0]))
    return Paths(ids, start, entry, depart, as_of)


def natural_course(data: StudyData, ids: pd.Index) -> StudyData:
    """The customers ``ids`` followed to as_of without leaving, on their own paths.

    Events dated on or after a customer's departure (caused by it) are dropped; a
    customer who left has their contacts inside the window replayed after the departure
    (period: the days from entry to departure, when at least :data:`MIN_REPLAY_DAYS`),
    and their prices follow the steps a comparable customer still served had from the
    departure on (:func:`_continue_prices`).
    """
    p = _paths(data, ids)
    left = p.depart != _MISSING
    cut = np.where(left, p.depart, p.as_of + 1)
    customers = data.customers.set_index(CUSTOMER_ID).loc[ids].rename_axis(CUSTOMER_ID)
    customers = customers.reset_index()
    customers["end_date"] = pd.NaT
    customers["notice_date"] = pd.NaT
    customers["churned"] = 0
    prices = _before(data.price_events, "effective_date", ids, cut)
    if prices is not None and len(prices):
        controls = list(data.roles.get("controls", []))
        prices = pd.concat([prices, _continue_prices(prices, customers, ids, p, controls)],
                           ignore_index=True)
    contacts = _before(data.contact_events, "contact_date", ids, cut)
    if contacts is not None and len(contacts):
        contacts = pd.concat([contacts, _replay(contacts, ids, p)], ignore_index=True)
    return StudyData("events", data.as_of, customers, prices, contacts, roles=dict(data.roles),
                     sources=dict(data.sources), observation_start=data.observation_start)


def _donors(customers: pd.DataFrame, p: Paths, controls) -> np.ndarray:
    """For each customer who left, a comparable customer still served on that day.

    Comparable: the same start month and the same values of the baseline controls with
    few levels (such as plan); where no such customer is still served on the departure
    day, the same start month, then the same start year, then anyone. Among the eligible
    one is picked by a fixed hash of the customer's position (deterministic, blind to
    how long the donor stays: no survivor selection). -1 for customers who stayed.
    """
    n = len(p.ids)
    left = p.depart != _MISSING
    gone = np.where(left, p.depart, p.as_of + 1)  # still served through as_of
    month = _dates(p.start).astype("datetime64[M]").astype(np.int64)
    traits = [c for c in controls if c in customers and customers[c].nunique() <= 12]
    codes = [pd.factorize(customers[c].astype(str))[0] for c in traits]
    levels = [[month, *codes], [month], [month // 12], []]
    donor = np.full(n, -1, dtype=np.int64)
    mix = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)
    for keys in levels:
        todo = np.flatnonzero(left & (donor < 0))
        if not len(todo):
            break
        group = np.zeros(n, dtype=np.int64)
        for k in keys:  # one integer per combination of the keys
            group = group * (int(k.max()) - int(k.min()) + 1) + (k - k.min())
        group = pd.factorize(group)[0].astype(np.int64)
        key = (group << 20) + gone  # day numbers < 2^20
        order = np.argsort(key, kind="stable")
        skey = key[order]
        lo = np.searchsorted(skey, (group[todo] << 20) + p.depart[todo], "right")
        hi = np.searchsorted(skey, (group[todo] + 1) << 20, "left")
        ok = hi > lo
        pick = lo[ok] + (mix[todo[ok]] % (hi[ok] - lo[ok]).astype(np.uint64)).astype(np.int64)
        donor[todo[ok]] = order[pick]
    return donor


def _continue_prices(prices: pd.DataFrame, customers: pd.DataFrame, ids: pd.Index,
                     p: Paths, controls) -> pd.DataFrame:
    """Price events continuing each leaver's prices after the departure, to as_of.

    A leaver follows the relative price steps (price and new-customer price) that a
    comparable customer (:func:`_donors`) had from the departure day on; when that
    customer left too, the steps continue with theirs, and so on, up to a customer
    served through as_of. ``prices`` are the events before each departure.
    """
    donor = _donors(customers, p, controls)
    leavers = np.flatnonzero(donor >= 0)
    if not len(leavers) or prices is None or not len(prices):
        return prices.iloc[:0] if prices is not None else None
    pos = ids.get_indexer(prices[CUSTOMER_ID]).astype(np.int64)
    day = _days(prices["effective_date"])
    order = np.lexsort((day, pos))
    pos, day = pos[order], day[order]
    price = prices["monthly_price"].to_numpy(float)[order]
    ncp = prices["new_customer_price"].to_numpy(float)[order]
    first = np.r_[True, pos[1:] != pos[:-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        step_p = np.where(first, 0.0, np.log(price) - np.log(np.r_[price[0], price[:-1]]))
        step_n = np.where(first, 0.0, np.log(ncp) - np.log(np.r_[ncp[0], ncp[:-1]]))
    key = (pos << 32) + day
    last = np.searchsorted(key, (leavers << 32) + p.depart[leavers], "left") - 1
    has = last >= 0
    has[has] = pos[last[has]] == leavers[has]
    leavers, last = leavers[has], last[has]
    # segments (leaver, source, from, to): follow the donors until one stayed
    seg_i, seg_s, seg_a, seg_b = [], [], [], []
    who, src, since = leavers, donor[leavers], p.depart[leavers]
    while len(who):
        until = np.where(p.depart[src] != _MISSING, p.depart[src], p.as_of + 1)
        seg_i.append(who), seg_s.append(src), seg_a.append(since), seg_b.append(until)
        more = p.depart[src] != _MISSING
        who, since, src = who[more], until[more], donor[src[more]]
    si, ss, sa, sb = (np.concatenate(v) for v in (seg_i, seg_s, seg_a, seg_b))
    a = np.searchsorted(key, (ss << 32) + sa, "left")
    b = np.searchsorted(key, (ss << 32) + sb, "left")
    count = b - a
    row = np.repeat(a, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count,
                                                                      count))
    cust = np.repeat(si, count)
    o = np.lexsort((day[row], cust))
    row, cust = row[o], cust[o]
    if not len(row):
        return prices.iloc[:0]
    start = np.r_[True, cust[1:] != cust[:-1]]
    grp = np.cumsum(start) - 1
    base = dict(zip(leavers, last, strict=True))
    base_row = np.array([base[c] for c in cust[start]])
    cum_p = _group_cumsum(step_p[row], grp)
    cum_n = _group_cumsum(step_n[row], grp)
    out = pd.DataFrame({CUSTOMER_ID: ids.to_numpy()[cust], "effective_date": _dates(day[row]),
                        "monthly_price": np.round(price[base_row][grp] * np.exp(cum_p), 2),
                        "new_customer_price": ncp[base_row][grp] * np.exp(cum_n)})
    # a step of 0 (the donor's own first price) is no event for the leaver
    return out[np.abs(step_p[row]) + np.nan_to_num(np.abs(step_n[row])) > 0]


def _group_cumsum(values: np.ndarray, grp: np.ndarray) -> np.ndarray:
    total = np.cumsum(values)
    first = np.r_[0, np.flatnonzero(np.diff(grp)) + 1]
    offset = np.repeat(total[first] - values[first], np.diff(np.r_[first, len(values)]))
    return total - offset


def _before(frame: pd.DataFrame | None, col: str, ids: pd.Index, cut: np.ndarray):
    if frame is None:
        return None
    pos = ids.get_indexer(frame[CUSTOMER_ID])
    day = _days(frame[col])
    keep = (pos >= 0) & (day < cut[np.maximum(pos, 0)])
    return frame.loc[keep].reset_index(drop=True)


def _replay(contacts: pd.DataFrame, ids: pd.Index, p: Paths) -> pd.DataFrame:
    pos = ids.get_indexer(contacts[CUSTOMER_ID])
    day = _days(contacts["contact_date"])
    left = p.depart[pos] != _MISSING
    period = np.where(left, p.depart[pos] - p.entry[pos], 0)
    ok = left & (period >= MIN_REPLAY_DAYS) & (day >= p.entry[pos])
    reps = np.where(ok, (p.as_of - day) // np.maximum(period, 1), 0)
    row = np.repeat(np.flatnonzero(ok), reps[ok])
    if not len(row):
        return contacts.iloc[:0]
    nth = np.arange(len(row)) - np.repeat(np.cumsum(reps[ok]) - reps[ok], reps[ok]) + 1
    out = contacts.iloc[row].reset_index(drop=True)
    out["contact_date"] = _dates(day[row] + nth * period[row])
    return out


def with_contact_lever(data: StudyData, months: float) -> StudyData:
    """``data`` (a natural course) plus the outbound contacts the contact lever makes.

    From each customer's entry on, a contact falls due ``contact_lever_days(months)``
    after the last outbound contact (or the start); an outbound contact before the due
    day restarts the clock, else the lever calls on the due day (up to as_of).
    """
    gap = contact_lever_days(months)
    ids = pd.Index(data.customers[CUSTOMER_ID])
    p = _paths(data, ids)
    ce = data.contact_events
    out = ce[ce["direction"] == "outbound"]
    c = ids.get_indexer(out[CUSTOMER_ID]).astype(np.int64)
    day = _days(out["contact_date"])
    order = np.lexsort((day, c))
    c, day = c[order], day[order]
    key = (c << 32) + day  # day numbers since 1970 are positive and fit in 32 bits
    n = len(ids)
    # last outbound contact before the entry day, else the start (the "since joining" rule)
    before = np.searchsorted(key, (np.arange(n) << 32) + p.entry, "left") - 1
    has = before >= 0
    has[has] = c[before[has]] == np.arange(n)[has]
    last = np.where(has, day[np.maximum(before, 0)], p.start)
    last = np.maximum(last, p.start)
    who = np.arange(n)
    forced_c, forced_d = [], []
    while len(who):
        due = np.maximum(last[who] + gap, p.entry[who])
        nxt = np.searchsorted(key, (who << 32) + last[who], "right")
        has = nxt < len(key)
        has[has] = c[nxt[has]] == who[has]
        nat = np.where(has, day[np.minimum(nxt, len(key) - 1)], np.iinfo(np.int64).max)
        natural = nat < due
        forced = ~natural & (due <= p.as_of)
        forced_c.append(who[forced])
        forced_d.append(due[forced])
        last[who] = np.where(natural, nat, np.where(forced, due, last[who]))
        who = who[natural | forced]
    fc, fd = np.concatenate(forced_c), np.concatenate(forced_d)
    extra = pd.DataFrame({CUSTOMER_ID: ids.to_numpy()[fc], "contact_date": _dates(fd),
                          "direction": "outbound", "channel": "lever", "topic": "lever"})
    contacts = pd.concat([ce, extra], ignore_index=True)
    return StudyData("events", data.as_of, data.customers, data.price_events, contacts,
                     roles=data.roles, sources=data.sources,
                     observation_start=data.observation_start)


def with_price_lever(episodes: pd.DataFrame) -> pd.DataFrame:
    """Episodes where everyone pays the new-customer price (no penalty, no increase)."""
    out = episodes.copy()
    if "log_price" in out and "loyalty_penalty" in out:
        out["log_price"] = out["log_price"] - out["loyalty_penalty"]
    for col in ("loyalty_penalty", "price_increase_recent"):
        if col in out:
            out[col] = 0.0
    return out


# --------------------------------------------------------------------------- the model

#: How the what-if CIs are computed (in every what-if record).
BOOTSTRAP_METHOD = ("customer bootstrap of the linearised estimate: coefficients by the "
                    "one-step Newton update of a refit, Breslow baseline and standardisation "
                    "to first order in the customer weights; an interval for the expected "
                    "change (outcome noise of one realised year not included)")


@dataclass
class _Fit:
    """The final model's rows (covariates centred), coefficients, and score contributions."""

    cols: list
    beta: np.ndarray
    variance: np.ndarray
    x: np.ndarray  # centred by ``mean``: exp(x @ beta) stays finite; hazards are unchanged
    start: np.ndarray
    stop: np.ndarray
    event: np.ndarray
    cust: np.ndarray  # customer position of each row
    ids: pd.Index
    mean: np.ndarray
    score: np.ndarray  # customers x covariates (Efron, as fitted)
    times: np.ndarray = field(default=None)

    def __post_init__(self):
        self.times = np.unique(self.stop[self.event == 1])
        self.t_of_event = np.searchsorted(self.times, self.stop[self.event == 1])
        self.lo = np.searchsorted(self.times, self.start, "right")
        self.hi = np.searchsorted(self.times, self.stop, "right")
        self.risk = np.exp(self.x @ self.beta)
        # rows at risk at times[k]: start < t_k <= stop, i.e. lo <= k < hi
        t = len(self.times)
        w = np.column_stack([self.risk, self.risk[:, None] * self.x])
        at_risk = np.column_stack([np.cumsum(np.bincount(self.lo, col, minlength=t + 1)
                                             - np.bincount(self.hi, col, minlength=t + 1))[:t]
                                   for col in w.T])
        self.s0, self.s1 = at_risk[:, 0], at_risk[:, 1:]
        d = np.bincount(self.t_of_event, minlength=t).astype(float)
        self.dl = np.divide(d, self.s0, out=np.zeros(t), where=self.s0 > 0)  # Breslow
        self.cum_l = np.r_[0.0, np.cumsum(self.dl)]


def _fit_of(block_models: BlockModels) -> _Fit:
    fit = block_models.fits[FINAL_MODEL]
    if fit.fitter is None:
        raise AnalysisError("the final model could not be fitted, so no what-if can be computed")
    eps = block_models.data_
    cols = list(fit.columns)
    ids = pd.Index(pd.unique(eps[CUSTOMER_ID]))
    x = eps[cols].to_numpy(float)
    mean = x.mean(axis=0)
    score = fit.fitter.score_residuals().reindex(ids, fill_value=0.0)[cols].to_numpy(float)
    return _Fit(cols, fit.fitter.params_.loc[cols].to_numpy(float),
                fit.fitter.variance_matrix_.loc[cols, cols].to_numpy(float), x - mean,
                eps["start"].to_numpy(float), eps["stop"].to_numpy(float),
                eps["event"].to_numpy(int), ids.get_indexer(eps[CUSTOMER_ID]), ids, mean,
                score)


@dataclass
class _Regime:
    """One covariate path for every customer: rows, covariates and the price paid."""

    x: np.ndarray
    cust: np.ndarray
    lo: np.ndarray  # index into the cumulative baseline at each row's start
    hi: np.ndarray
    length: np.ndarray
    price: np.ndarray | None
    served: np.ndarray | None = None  # see _served, computed once


def _regime(episodes: pd.DataFrame, f: _Fit) -> _Regime:
    cust = f.ids.get_indexer(episodes[CUSTOMER_ID])
    eps = episodes
    if (cust < 0).any():
        eps, cust = episodes[cust >= 0], cust[cust >= 0]
    missing = [c for c in f.cols if c not in eps]
    if missing:
        raise AnalysisError(f"the lever's path lacks the model's measures {missing}")
    price = np.exp(eps["log_price"].to_numpy(float)) if "log_price" in eps else None
    start, stop = eps["start"].to_numpy(float), eps["stop"].to_numpy(float)
    return _Regime(np.ascontiguousarray(eps[f.cols].to_numpy(float) - f.mean), cust,
                   np.searchsorted(f.times, start, "right"),
                   np.searchsorted(f.times, stop, "right"), stop - start, price)


def _influence(r: _Regime, f: _Fit) -> tuple[float, np.ndarray]:
    """Expected departures of regime ``r`` and each customer's influence on them.

    ``D(w) = sum_i w_i P_i(beta(w), L(w))`` with ``P_i = 1 - exp(-H_i)`` the chance of
    leaving in the window along the path. Its derivative in ``w_i`` at ``w = 1``:

    - ``P_i`` (the customer's own term);
    - ``(g - G) @ V @ U_i``: the coefficients move by ``V U_i`` (a refit's first order),
      ``g = dD/dbeta`` through the path's risk scores, ``G`` through the baseline's
      risk sets (``dL_k`` falls by ``dL_k S1_k / S0_k`` per unit of beta);
    - ``sum_k q_k (dN_ik - dL_k s0_ik)``, ``q_k = c_k / S0_k``: the customer's
      departures and time at risk through the Breslow increments ``dL_k = d_k / S0_k``,
      ``c_k = dD/dL_k = sum_j exp(-H_j) a_jk`` (``a_jk`` the risk of j's path at t_k).
    """
    n, t = len(f.ids), len(f.times)
    rr = np.exp(r.x @ f.beta)
    dlr = f.cum_l[r.hi] - f.cum_l[r.lo]
    big_h = np.bincount(r.cust, rr * dlr, minlength=n)
    surv = np.exp(-big_h)
    s = surv[r.cust] * rr
    g = (s * dlr) @ r.x
    c = np.cumsum(np.bincount(r.lo, s, minlength=t + 1) - np.bincount(r.hi, s, minlength=t + 1))
    q = np.divide(c[:t], f.s0, out=np.zeros(t), where=f.s0 > 0)
    big_g = (q * f.dl) @ f.s1
    cum_q = np.r_[0.0, np.cumsum(q * f.dl)]
    deaths = np.bincount(f.cust[f.event == 1], q[f.t_of_event], minlength=n)
    at_risk = np.bincount(f.cust, f.risk * (cum_q[f.hi] - cum_q[f.lo]), minlength=n)
    p_leave = -np.expm1(-big_h)
    return float(p_leave.sum()), p_leave + f.score @ (f.variance @ (g - big_g)) + deaths - at_risk


def _served(r: _Regime, f: _Fit) -> np.ndarray:
    """Expected months each row is served: its length x the chance of being a customer.

    Rows are sorted by customer and start, so survival to a row's start is exp(-hazard
    accumulated over the customer's earlier rows); within a row, the trapezoid.
    """
    if r.served is None:
        h = np.exp(r.x @ f.beta) * (f.cum_l[r.hi] - f.cum_l[r.lo])
        first = np.r_[True, r.cust[1:] != r.cust[:-1]]
        total = np.cumsum(h)
        before = total - h - np.maximum.accumulate(np.where(first, total - h, 0.0))
        r.served = r.length * np.exp(-before) * (1 + np.exp(-h)) / 2
    return r.served


def _money(observed: _Regime, lever: _Regime, f: _Fit) -> dict:
    """Months kept, and revenue: expected, kept (months retained x the price then paid)
    and the change (revenue under the lever minus as observed, discounts included)."""
    n = len(f.ids)
    s0, s1 = _served(observed, f), _served(lever, f)
    m0 = np.bincount(observed.cust, weights=s0, minlength=n)
    m1 = np.bincount(lever.cust, weights=s1, minlength=n)
    out = {"months_kept": float(m1.sum() - m0.sum())}
    if observed.price is None or lever.price is None:
        return {**out, "revenue_expected": float("nan"), "revenue_kept": float("nan"),
                "revenue_change": float("nan")}
    r0 = np.bincount(observed.cust, weights=s0 * observed.price, minlength=n)
    r1 = np.bincount(lever.cust, weights=s1 * lever.price, minlength=n)
    price1 = np.divide(r1, m1, out=np.zeros(n), where=m1 > 0)
    return {**out, "revenue_expected": float(r0.sum()),
            "revenue_kept": float((price1 * (m1 - m0)).sum()),
            "revenue_change": float(r1.sum() - r0.sum())}


# --------------------------------------------------------------------------- entry point


class WhatIf:
    """Expected departures in the observation window as observed and under each lever.

    Parameters
    ----------
    contact_every_months : float
        The contact lever: an outbound contact whenever a customer reaches this many
        months without one.
    bootstrap : int
        Customer-level bootstrap resamples of the CIs.
    seed : int
    alpha : float
        1 - coverage of the CIs.

    Attributes
    ----------
    summary : DataFrame
        One row per lever: lever, description, available, why, departures_observed,
        departures_expected (model, as observed), departures_under_lever, change
        (relative, negative = fewer departures) with change_ci_low / change_ci_high and
        the (1 - 2 alpha) interval change_eq_low / change_eq_high (for equivalence),
        customers_kept with its CI, months_kept, revenue_expected, revenue_kept
        (monthly price x months retained, at the price paid under the lever) and
        revenue_change (revenue under the lever minus as observed: what a price cut
        costs shows here).
        bootstrap_method says how the CIs were computed (:data:`BOOTSTRAP_METHOD`).
    draws : dict of str -> ndarray
        Bootstrap draws of each available lever's change (for comparisons).
    influence : DataFrame
        Each customer's influence on the expected departures of each regime (observed
        and each lever): the first-order change when their weight grows by one.

    Examples
    --------
    >>> from retention_study.data.simulate import simulate
    >>> from retention_study.data.schema import StudyData
    >>> from retention_study.episodes.timeline import build_timeline
    >>> sim = simulate(600, seed=2, preset="contact")
    >>> data = StudyData("events", pd.Timestamp("2026-06-30"), sim.customers,
    ...     sim.price_events, sim.contact_events, roles={"controls": ["plan"]},
    ...     observation_start=pd.Timestamp(sim.truth["observation_start"]))
    >>> tl = build_timeline(data)
    >>> wi = WhatIf(bootstrap=20).fit(data, tl, BlockModels(check_ph=False).fit(tl))
    >>> list(wi.summary["lever"])
    ['contact', 'price', 'both']
    """

    def __init__(self, contact_every_months: float = 6, bootstrap: int = 200,
                 seed: int = 20260630, alpha: float = 0.05):
        self.contact_every_months = float(contact_every_months)
        self.bootstrap = int(bootstrap)
        self.seed = seed
        self.alpha = alpha

    def fit(self, data: StudyData, timeline, block_models: BlockModels) -> WhatIf:
        """Standardise the final model of ``block_models`` over the customers' paths."""
        self.problems: list[str] = []
        self.draws: dict[str, np.ndarray] = {}
        self.why = ""
        why = self._unavailable(data, timeline, block_models)
        if why:
            self.summary = pd.DataFrame([{"lever": lv, "description": self.describe(lv),
                                          "available": False, "why": why} for lv in LEVERS])
            self.why = why
            return self
        f = _fit_of(block_models)
        paths = self._paths(data, timeline, f, block_models)
        rows = [self._lever(lv, paths, f, block_models) for lv in LEVERS]
        self.summary = pd.DataFrame(rows)
        return self

    def describe(self, lever: str) -> str:
        contact = (f"an outbound contact whenever a customer reaches "
                   f"{self.contact_every_months:g} months without one")
        price = "existing customers pay the new-customer price (no loyalty penalty, no increase)"
        return {"contact": contact, "price": price, "both": f"{contact}, and {price}"}[lever]

    def _unavailable(self, data, timeline, block_models) -> str:
        if data.format != "events":
            return ("a flat table has no dated history to rewrite, so the levers cannot be "
                    "simulated")
        if block_models.fits[FINAL_MODEL].fitter is None:
            return "the final model could not be fitted"
        if not timeline.params.get("notice_guard", True):
            return "what-ifs are computed on the guarded analysis only"
        return ""

    def _paths(self, data, timeline, f: _Fit, block_models) -> dict:
        """Episodes of each regime's path, built by the study's own episode builder."""
        opts = {k: timeline.params[k] for k in ("lag_days", "grid", "contact_cap_months",
                                                "price_increase_window_days")}
        opts["controls"] = list(timeline.params.get("controls", []))
        natural = natural_course(data, f.ids)
        keep = list(dict.fromkeys([CUSTOMER_ID, "start", "stop", *f.cols, *_PRICE_COLS]))

        def build(d):  # only the columns a regime needs: the price lever copies no more
            eps = build_timeline(d, include_price_level=True, **opts).episodes
            return eps[[c for c in keep if c in eps]]

        paths = {"observed": build(natural)}
        blocks = block_models.blocks
        if blocks.get("contact") and natural.contact_events is not None:
            paths["contact"] = build(with_contact_lever(natural, self.contact_every_months))
        if set(blocks.get("price", [])) & {"loyalty_penalty", "price_increase_recent"} and \
                "loyalty_penalty" in paths["observed"]:
            paths["price"] = with_price_lever(paths["observed"])
            if "contact" in paths:
                paths["both"] = with_price_lever(paths["contact"])
        return {k: _regime(v, f) for k, v in paths.items()}

    def _lever(self, lever: str, paths: dict, f: _Fit, block_models) -> dict:
        row = {"lever": lever, "description": self.describe(lever),
               "contact_every_months": (self.contact_every_months
                                        if lever in ("contact", "both") else None),
               "departures_observed": int(f.event.sum())}
        if lever not in paths:
            why = {"contact": "no outbound contact measure in the model",
                   "price": "no loyalty penalty or price increase in the model (the "
                            "new-customer price is not in the data)",
                   "both": "one of the two levers is not available"}[lever]
            return {**row, "available": False, "why": why}
        if not hasattr(self, "_boot"):
            self._boot = self._bootstrap(paths, f)
        est, boot = self._boot["observed"], self._boot[lever]
        change = boot[0] / est[0] - 1
        draws = boot[1:] / est[1:] - 1
        self.draws[lever] = draws
        kept_draws = est[1:] - boot[1:]
        q = [100 * self.alpha / 2, 100 * (1 - self.alpha / 2)]
        lo, hi = np.percentile(draws, q) if len(draws) else (np.nan, np.nan)
        # the (1 - 2 alpha) interval: inside +-margin it is a two one-sided test at alpha
        e_lo, e_hi = (np.percentile(draws, [100 * self.alpha, 100 * (1 - self.alpha)])
                      if len(draws) else (np.nan, np.nan))
        k_lo, k_hi = np.percentile(kept_draws, q) if len(kept_draws) else (np.nan, np.nan)
        return {**row, "available": True, "why": "", "bootstrap_method": BOOTSTRAP_METHOD,
                "departures_expected": float(est[0]), "departures_under_lever": float(boot[0]),
                "change": float(change), "change_ci_low": float(lo), "change_ci_high": float(hi),
                "change_eq_low": float(e_lo), "change_eq_high": float(e_hi),
                "customers_kept": float(est[0] - boot[0]), "customers_kept_ci_low": float(k_lo),
                "customers_kept_ci_high": float(k_hi),
                **_money(paths["observed"], paths[lever], f)}

    def _bootstrap(self, paths: dict, f: _Fit, cells: int = 4_000_000) -> dict:
        """Expected departures of each regime: [estimate, resample 1, ..., resample B].

        Each resample is the estimate plus ``(w - 1) @ IF`` (:func:`_influence`) for its
        multinomial customer counts ``w`` (n customers drawn with replacement), drawn a
        chunk at a time (at most ``cells`` weights in memory) from one generator seeded
        with ``seed``.
        """
        n = len(f.ids)
        names = list(paths)
        est, infl = zip(*(_influence(paths[k], f) for k in names), strict=True)
        infl = np.column_stack(infl)
        self.influence = pd.DataFrame(infl, index=f.ids.rename(CUSTOMER_ID), columns=names)
        rng = np.random.default_rng(self.seed)
        draws = np.empty((self.bootstrap, len(names)))
        chunk = int(np.clip(cells // max(n, 1), 1, 64))
        for lo in range(0, self.bootstrap, chunk):
            size = min(chunk, self.bootstrap - lo)
            # multinomial counts: n customers drawn with replacement (fast for large n)
            pick = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
            w = np.bincount(pick.ravel(), minlength=size * n).reshape(size, n)
            draws[lo:lo + size] = np.asarray(est) + (w - 1.0) @ infl
        return {k: np.r_[est[j], draws[:, j]] for j, k in enumerate(names)}

    def to_records(self) -> list[dict]:
        return to_records(self.summary)
