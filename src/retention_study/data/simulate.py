"""A simulated customer base with a known truth: the project's sample data and its proof.

:func:`simulate` plants chosen effects of contact and price on the departure hazard and
writes the Shape A event logs (see :mod:`retention_study.data.schema`) a company would hand
over, together with the traps practitioners describe and that can fool an analysis:

- new customers pay a promotional price; loyal customers drift above the new-customer
  price (promo roll-off after 12 months, annual increases): the loyalty penalty;
- account managers contact customers at different rates, some customers are never
  contacted after the welcome call, and premium customers both pay more (larger annual
  increases) and get more attention, so price and contact are correlated;
- inbound contacts (questions, complaints, billing) that are not the supplier's
  attention and that follow price increases;
- notices some days before the service ends, then a retention call and often a
  win-back discount: contact and price changes *caused* by the decision to leave;
- stated exit reasons that over-state price compared with the planted truth;
- a satisfaction score (1-5) where merely satisfied customers leave more than their
  score suggests;
- a baseline hazard that falls with tenure, and customers who joined before the
  extraction window (``observation_start``), so the study must handle late entry.

The hazard lives on a customer-month grid of *tenure* with the exact definitions the
episode builder uses (tenure month ``k`` begins on ``start_date + floor(k * 365.25/12)``
days; covariates of month ``k`` use only events dated strictly before that day)::

    hazard = baseline(k) * hr_plan * hr_satisfaction
             * hr_no_contact_6m ** (months_since_contact / 6)
             * hr_price_gap_10pct ** (loyalty_penalty / log(1.1))
             * hr_price_increase ** price_increase_recent

Days are right-closed, as the builder counts them: a departure drawn from month ``k``'s
hazard is dated on tenure days ``floor(k * 365.25/12) + 1`` to ``floor((k + 1) * 365.25/12)``,
so the builder files every notice in interval ``(k, k+1]`` with month ``k``'s covariates
(a notice dated on the day month ``k`` begins would meet month ``k-1``'s and dilute the
planted effects). Routine events are dated from the day a month begins, so they reach
the covariates of the next month, never their own.

Month 0 is the exception the definitions cannot cover (nothing is dated before the
start): the welcome call and the first price event are on ``start_date`` and month 0
uses ``months_since_contact = 0``, ``loyalty_penalty = 0`` (the first price *is* the
new-customer price) and ``price_increase_recent = 0``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from retention_study.config import DEFAULTS, LOGGER_NAME
from retention_study.config_keys import parse_date
from retention_study.data.schema import (
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    DAYS_PER_MONTH,
    PRICE_COLUMNS,
    contact_lever_days,
)
from retention_study.errors import ConfigError

log = logging.getLogger(LOGGER_NAME)

#: Planted hazard ratios per preset.
PRESETS: dict[str, dict[str, float]] = {
    "contact": {"hr_no_contact_6m": 1.5, "hr_price_gap_10pct": 1.0, "hr_price_increase": 1.0},
    "price": {"hr_no_contact_6m": 1.0, "hr_price_gap_10pct": 1.3, "hr_price_increase": 1.8},
    "both": {"hr_no_contact_6m": 1.5, "hr_price_gap_10pct": 1.3, "hr_price_increase": 1.8},
    "neither": {"hr_no_contact_6m": 1.0, "hr_price_gap_10pct": 1.0, "hr_price_increase": 1.0},
}
EFFECTS = ("hr_no_contact_6m", "hr_price_gap_10pct", "hr_price_increase")

# The study's own defaults: the planted covariates are the ones a default run measures.
CONTACT_CAP_MONTHS = DEFAULTS["study"]["contact_cap_months"]
PRICE_INCREASE_WINDOW_DAYS = DEFAULTS["study"]["price_increase_window_days"]
NOTICE_PERIOD_DAYS = 30
HISTORY_YEARS = 10  # customers joined up to this long before as_of
WINDOW_YEARS = 3  # observation_start = as_of - WINDOW_YEARS

PLANS = ("basic", "standard", "premium")
PLAN_SHARE = (0.45, 0.35, 0.20)
PLAN_LIST_PRICE = (30.0, 50.0, 90.0)  # list price at the start of the history
PLAN_HR = (1.15, 1.0, 0.85)
PLAN_CONTACT_RATE = (0.06, 0.12, 0.30)  # outbound contacts per month before the AM factor
PLAN_ANNUAL_INCREASE = ((0.02, 0.06), (0.03, 0.07), (0.04, 0.09))  # uniform bounds
NEGLECTED_SHARE = (0.20, 0.10, 0.03)  # never contacted after the welcome call
REGIONS = ("North", "East", "South", "West", "Central")
N_ACCOUNT_MANAGERS = 30

SATISFACTION_SHARE = (0.07, 0.13, 0.30, 0.33, 0.17)
# Merely satisfied (3-4) leave more than their score suggests; unhappy (1-2) stay out
# of inertia; delighted (5) rarely leave.
SATISFACTION_HR = (1.20, 1.10, 1.50, 1.40, 0.50)

BASELINE_RATE = 0.022  # monthly hazard in tenure month 0 ...
BASELINE_SHAPE = -0.30  # ... falling as (1 + k) ** shape
REPRICE_ON_CONTACT = 0.15  # an outbound contact moves the customer to a current deal
INBOUND_RATE = 0.04
RETENTION_CALL_SHARE = 0.9
WINBACK_SHARE = 0.6
CANCELLATION_CALL_SHARE = 0.7
STATED_MISSING_SHARE = 0.10

# Worded so that retention_study.analysis.reasons' default groups read them as STATED_GROUPS.
STATED_REASONS = (
    "Price too high", "Found a cheaper offer", "Felt ignored",
    "No longer needed", "Moved away", "Other",
)
#: Which stated reasons count as which group in truth.json.
STATED_GROUPS = {
    "price": ["Price too high", "Found a cheaper offer"],
    "contact": ["Felt ignored"],
    "other": ["No longer needed", "Moved away", "Other"],
}
TRUE_REASONS = ("price", "contact", "other")
# P(stated reason | true reason): people name price even when it was not the cause.
STATED_GIVEN_TRUE = np.array([
    [0.60, 0.25, 0.00, 0.05, 0.05, 0.05],  # true price
    [0.30, 0.20, 0.20, 0.20, 0.00, 0.10],  # true contact
    [0.25, 0.15, 0.05, 0.20, 0.20, 0.15],  # true other
])

DEFINITIONS = {
    "tenure_month": "tenure month k of a customer begins on start_date + floor(k * 365.25/12) "
                    "days; covariates of month k use only events dated strictly before it",
    "months_since_contact": f"min({CONTACT_CAP_MONTHS}, days since the last outbound contact "
                            "(the welcome call on start_date counts) / (365.25/12)); 0 in "
                            "month 0",
    "loyalty_penalty": "log(monthly_price / new_customer_price) of the latest price event "
                       "with effective_date before the month begins; 0 in month 0",
    "price_increase_recent": f"1 if a price event dated in [begin - {PRICE_INCREASE_WINDOW_DAYS}"
                             " days, begin) raised the price above the previous one",
    "departure": "dated at notice_date (the decision); end_date = notice_date + 30 days; "
                 "days are right-closed: a notice drawn in month k falls on tenure days "
                 "floor(k * 365.25/12) + 1 to floor((k + 1) * 365.25/12)",
    "late_entry": "customers whose service ended before observation_start are not in the "
                  "extract; those who joined earlier enter the study late",
}

_OUT, _IN = 0, 1
_CONTACT_TOPICS = ("welcome", "check-in", "retention", "question", "complaint", "billing",
                   "cancellation")
_WELCOME, _CHECKIN, _RETENTION, _QUESTION, _COMPLAINT, _BILLING, _CANCEL = range(7)
_CHANNELS = ("phone", "email", "visit", "chat")


@dataclass
class Simulation:
    """A simulated data set and what was planted in it.

    Attributes
    ----------
    customers, price_events, contact_events : DataFrame
        Shape A frames with the canonical columns of :mod:`retention_study.data.schema`
        (customers also carry plan, region, account_manager and satisfaction).
    truth : dict
        Planted effects, preset, seed, as_of, observation_start, definitions, true vs
        stated exit-reason shares and counts (what ``truth.json`` holds).
    panel : DataFrame or None
        The internal customer-month panel (one row per customer and tenure month at
        risk, inside the window): ``customer_id``, ``month``, ``start``, ``stop`` (tenure
        months, ``start`` > month on a late entrant's first row), ``event``, the true
        covariates and plan/satisfaction, for reference fits. None unless asked for.
    """

    customers: pd.DataFrame
    price_events: pd.DataFrame
    contact_events: pd.DataFrame
    truth: dict
    panel: pd.DataFrame | None = None


def resolve_effects(preset: str, **effects: float | None) -> dict[str, float]:
    """The planted hazard ratios: a preset's, overridden by any effect given.

    Examples
    --------
    >>> resolve_effects("contact", hr_price_gap_10pct=1.2)["hr_price_gap_10pct"]
    1.2
    >>> resolve_effects("neither")["hr_no_contact_6m"]
    1.0
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown simulation preset {preset!r}; valid: {', '.join(PRESETS)}")
    unknown = set(effects) - set(EFFECTS)
    if unknown:
        raise ConfigError(f"unknown effect(s) {sorted(unknown)}; valid: {', '.join(EFFECTS)}")
    out = dict(PRESETS[preset])
    for name, value in effects.items():
        if value is None:
            continue
        if not np.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} must be a hazard ratio > 0, not {value!r}")
        out[name] = float(value)
    return out


# --------------------------------------------------------------------------- prices


def _new_customer_prices(rng: np.random.Generator, first_month: int, n_months: int):
    """Plan x calendar-month new-customer (promo) price, with step changes.

    The list price rises each January by 2-6 %; the promo discount changes by quarter
    (campaigns), so the new-customer price moves in steps, up and down.
    """
    years = np.arange(n_months) // 12 + (first_month // 12)
    n_years = int(years.max() - years.min() + 1)
    rises = 1 + rng.uniform(0.02, 0.06, size=(len(PLANS), n_years))
    list_price = np.array(PLAN_LIST_PRICE)[:, None] * np.cumprod(rises, axis=1)
    list_by_month = list_price[:, years - years.min()]
    quarters = (np.arange(n_months) + first_month) // 3
    q_index = quarters - quarters.min()
    promo = rng.choice([0.75, 0.80, 0.85], size=(len(PLANS), int(q_index.max()) + 1))
    return np.round(list_by_month * promo[:, q_index], 2), np.round(list_by_month, 2)


class _PriceBook:
    """Look up the new-customer and list price of a plan on a day (int days since epoch)."""

    def __init__(self, rng: np.random.Generator, first_day: int, last_day: int) -> None:
        self.first_month = _month_of(np.array([first_day]))[0]
        n_months = int(_month_of(np.array([last_day + 400]))[0] - self.first_month + 1)
        self.ncp, self.list = _new_customer_prices(rng, int(self.first_month), n_months)

    def lookup(self, table: np.ndarray, plan: np.ndarray, day: np.ndarray) -> np.ndarray:
        return table[plan, _month_of(day) - self.first_month]

    def new_customer(self, plan: np.ndarray, day: np.ndarray) -> np.ndarray:
        return self.lookup(self.ncp, plan, day)

    def list_price(self, plan: np.ndarray, day: np.ndarray) -> np.ndarray:
        return self.lookup(self.list, plan, day)


def _month_of(day: np.ndarray) -> np.ndarray:
    """Calendar month index (months since 1970-01) of int days since epoch."""
    return day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


# --------------------------------------------------------------------------- the world


@dataclass
class _Pool:
    """Per-customer attributes and running state, arrays over the simulated pool."""

    start: np.ndarray
    plan: np.ndarray
    region: np.ndarray
    am: np.ndarray
    satisfaction: np.ndarray
    contact_rate: np.ndarray
    static_hr: np.ndarray
    increase_lo: np.ndarray
    increase_hi: np.ndarray
    # running state
    last_out: np.ndarray
    price: np.ndarray
    price_ncp: np.ndarray
    last_increase: np.ndarray
    notice: np.ndarray
    true_reason: np.ndarray


def _draw_pool(rng: np.random.Generator, m: int, as_of: int, book: _PriceBook) -> _Pool:
    first = as_of - int(round(HISTORY_YEARS * 365.25))
    start = rng.integers(first, as_of + 1, size=m)
    plan = rng.choice(len(PLANS), size=m, p=PLAN_SHARE).astype(np.int8)
    am = rng.integers(0, N_ACCOUNT_MANAGERS, size=m).astype(np.int16)
    am_factor = np.exp(rng.normal(0.0, 0.5, size=N_ACCOUNT_MANAGERS) - 0.125)
    neglected = rng.random(m) < np.array(NEGLECTED_SHARE)[plan]
    rate = np.array(PLAN_CONTACT_RATE)[plan] * am_factor[am]
    rate = np.where(neglected, 0.0, np.minimum(rate, 0.9))
    sat = rng.choice(5, size=m, p=SATISFACTION_SHARE).astype(np.int8) + 1
    static_hr = np.array(PLAN_HR)[plan] * np.array(SATISFACTION_HR)[sat - 1]
    bounds = np.array(PLAN_ANNUAL_INCREASE)[plan]
    first_price = book.new_customer(plan, start)
    return _Pool(
        start=start, plan=plan, region=rng.integers(0, len(REGIONS), size=m).astype(np.int8),
        am=am, satisfaction=sat, contact_rate=rate, static_hr=static_hr,
        increase_lo=bounds[:, 0], increase_hi=bounds[:, 1],
        last_out=start.copy(), price=first_price.copy(), price_ncp=first_price.copy(),
        last_increase=np.full(m, np.iinfo(np.int64).min // 2), notice=np.full(m, -1),
        true_reason=np.full(m, -1, dtype=np.int8),
    )


class _Events:
    """Event arrays collected month by month, concatenated once at the end."""

    def __init__(self) -> None:
        self.contacts: list[tuple[np.ndarray, ...]] = []
        self.prices: list[tuple[np.ndarray, ...]] = []
        self.panel: list[tuple[np.ndarray, ...]] = []

    def contact(self, idx, day, direction: int, topic, channel) -> None:
        """``topic`` is one code for all rows or an array of codes."""
        n = len(idx)
        topic = np.full(n, topic, np.int8) if np.isscalar(topic) else topic
        self.contacts.append((idx, day, np.full(n, direction, np.int8), topic, channel))

    def price(self, idx, day, price, ncp) -> None:
        self.prices.append((idx, day, price, ncp))


_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a well-mixed 64-bit hash of each (uint64) key."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Draws:
    """The month loop's random draws, from the generator's stream or keyed by customer.

    Without ``key`` every call takes the next numbers of ``rng`` (the original data for
    a seed, byte for byte). With ``key`` (common random numbers) the draw of a customer
    in tenure month ``k`` at the ``site``-th call of that month is a hash of (key,
    customer, k, site): it does not depend on who else is still a customer, so a world
    under a lever and the world without it share every draw of the same customer.
    """

    def __init__(self, rng: np.random.Generator, key: int | None = None) -> None:
        self.rng = rng
        self.key = None if key is None else np.uint64(key & _MASK64)
        self.k = 0
        self.site = 0

    def month(self, k: int) -> None:
        self.k, self.site = int(k), 0

    def _u(self, who: np.ndarray) -> np.ndarray:
        self.site += 1
        tag = np.uint64((self.k << 8) + self.site)
        with np.errstate(over="ignore"):
            x = (_splitmix64(np.asarray(who, np.uint64) ^ self.key)
                 + tag * np.uint64(0xD1B54A32D192ED03))
        return (_splitmix64(x) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def random(self, who: np.ndarray) -> np.ndarray:
        return self.rng.random(len(who)) if self.key is None else self._u(who)

    def integers(self, who: np.ndarray, lo: int, hi: int) -> np.ndarray:
        if self.key is None:
            return self.rng.integers(lo, hi, size=len(who))
        return lo + np.floor(self._u(who) * (hi - lo)).astype(np.int64)

    def uniform(self, who: np.ndarray, lo, hi, sized: bool = True) -> np.ndarray:
        if self.key is None:
            return self.rng.uniform(lo, hi, len(who)) if sized else self.rng.uniform(lo, hi)
        return lo + self._u(who) * (np.asarray(hi) - np.asarray(lo))

    def choice(self, who: np.ndarray, options: list) -> np.ndarray:
        if self.key is None:
            return self.rng.choice(options, size=len(who))
        pick = np.minimum((self._u(who) * len(options)).astype(np.int64), len(options) - 1)
        return np.asarray(options)[pick]


@dataclass
class Lever:
    """What management would change from ``window_start`` (a day number) on.

    ``contact_days``: an outbound contact whenever a customer reaches that many days
    since the last one (or since joining); ``price``: every customer pays the
    new-customer price (no loyalty penalty, no recent increase). ``record`` keeps, per
    pool customer, what the truth needs: departure in the window, months served in it
    and the revenue (monthly price x months) earned in it. ``stay``: nobody leaves
    from ``window_start`` on (each customer's path as if they stayed, what a g-formula
    standardises over); ``cumhaz`` then sums each customer's hazard in the window, so
    ``1 - exp(-cumhaz)`` is their chance of leaving in it given that path.
    """

    window_start: int
    contact_days: int | None = None
    price: bool = False
    stay: bool = False

    def start(self, m: int) -> None:
        self.departed = np.zeros(m, dtype=bool)
        self.months = np.zeros(m)
        self.revenue = np.zeros(m)
        self.cumhaz = np.zeros(m)

    def record(self, pool, active, begin, length, as_of, leaves, notice, hazard) -> None:
        inside = begin >= self.window_start
        a = active[inside]
        # the chance of a notice by as_of in this month is 1 - exp(-hazard x the share
        # of the month before as_of): summed, the expected departures of a stayer's path
        share = np.clip((as_of - begin) / length, 0.0, 1.0)
        self.cumhaz[a] += (hazard * share)[inside]
        end = np.minimum(begin + length, as_of + 1)
        end = np.where(leaves, notice, end)[inside]
        months = (end - begin[inside]) / length[inside]
        price = pool.price_ncp[a] if self.price else pool.price[a]
        self.months[a] += months
        self.revenue[a] += months * price
        self.departed[a[leaves[inside]]] = True


def _lever_contacts(pool, ev, idx, begin, day, out, cutoff, lever: Lever) -> None:
    """The contact lever's calls this month: due ``contact_days`` after the last contact.

    A routine contact before the due day restarts the clock; the lever never calls
    before ``window_start`` nor on or after the cutoff (a notice, the month's end).
    Forced calls draw no random numbers, so common random numbers stay aligned.
    """
    due = np.maximum(np.maximum(pool.last_out[idx] + lever.contact_days, lever.window_start),
                     begin)
    due = np.where(out & (day < due), day + lever.contact_days, due)
    forced = due < cutoff
    f = idx[forced]
    ev.contact(f, due[forced], _OUT, _CHECKIN, np.zeros(len(f), np.int8))
    pool.last_out[f] = due[forced]


def _channels(draws: _Draws, who: np.ndarray, plan: np.ndarray, inbound: bool) -> np.ndarray:
    u = draws.random(who)
    if inbound:  # phone, email or chat
        return np.where(u < 0.5, 0, np.where(u < 0.8, 1, 3)).astype(np.int8)
    visit = np.where(plan == 2, 0.35, 0.05)  # account managers visit premium customers
    return np.where(u < visit, 2, np.where(u < visit + 0.55, 0, 1)).astype(np.int8)


def _baseline(k: int) -> float:
    return BASELINE_RATE * (1 + k) ** BASELINE_SHAPE


def _covariates(pool: _Pool, idx: np.ndarray, begin: np.ndarray, k: int):
    if k == 0:
        zeros = np.zeros(len(idx))
        return zeros, zeros.copy(), zeros.copy()
    msc = np.minimum(CONTACT_CAP_MONTHS, (begin - pool.last_out[idx]) / DAYS_PER_MONTH)
    gap = np.log(pool.price[idx] / pool.price_ncp[idx])
    recent = (pool.last_increase[idx] >= begin - PRICE_INCREASE_WINDOW_DAYS).astype(float)
    return msc, gap, recent


def _attribute_reason(draws, who, log_contact, log_price) -> np.ndarray:
    """Draw a departure's true reason from the hazard's attributable fractions.

    The share ``1 - 1/HR`` of the hazard is due to the covariates (those raising it); it
    is split between contact and price in proportion to their log hazard ratios.
    """
    lc, lp = np.maximum(log_contact, 0), np.maximum(log_price, 0)
    total = lc + lp
    excess = 1 - np.exp(-total)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_contact = np.where(total > 0, excess * lc / total, 0.0)
    p_price = excess - p_contact
    u = draws.random(who)
    return np.where(u < p_price, 0, np.where(u < p_price + p_contact, 1, 2)).astype(np.int8)


def _simulate_month(draws, pool, ev, book, effects, k, active, as_of, keep_panel,
                    lever: Lever | None = None) -> np.ndarray:
    """Simulate tenure month ``k`` for the customers ``active``; return those still at risk."""
    begin = pool.start[active] + int(np.floor(k * DAYS_PER_MONTH))
    length = pool.start[active] + int(np.floor((k + 1) * DAYS_PER_MONTH)) - begin
    msc, gap, recent = _covariates(pool, active, begin, k)
    if lever is not None and lever.price:  # in the window everyone pays the new-customer price
        inside = begin >= lever.window_start
        gap, recent = np.where(inside, 0.0, gap), np.where(inside, 0.0, recent)
    log_contact = np.log(effects["hr_no_contact_6m"]) * msc / 6
    log_price = (np.log(effects["hr_price_gap_10pct"]) * gap / np.log(1.1)
                 + np.log(effects["hr_price_increase"]) * recent)
    hazard = _baseline(k) * pool.static_hr[active] * np.exp(log_contact + log_price)
    p_leave = -np.expm1(-hazard)
    draws.month(k)
    u = draws.random(active)
    # Constant hazard within the month: the notice falls where the exponential puts it,
    # on days begin + 1 .. begin + length. Right-closed like the builder's intervals: a
    # notice on day `begin` would be filed under month k-1 and meet its covariates.
    frac = -np.log1p(-np.minimum(u, p_leave)) / hazard
    notice = begin + 1 + np.minimum(frac * length, length - 1).astype(np.int64)
    leaves = (u < p_leave) & (notice <= as_of)
    if lever is not None and lever.stay:
        leaves &= begin < lever.window_start
    # Routine events of the month; a leaver's routine stops at the notice.
    cutoff = np.where(leaves, notice, np.minimum(begin + length, as_of + 1))
    _routine_contacts(draws, pool, ev, book, active, begin, length, cutoff, recent, k, lever)
    _routine_prices(draws, pool, ev, book, active, begin, length, cutoff, k)
    if lever is not None:
        lever.record(pool, active, begin, length, as_of, leaves, notice, hazard)
    if keep_panel:
        ev.panel.append((active, np.full(len(active), k, np.int16), begin, msc, gap, recent,
                         leaves, notice))
    gone = active[leaves]
    pool.notice[gone] = notice[leaves]
    pool.true_reason[gone] = _attribute_reason(draws, gone, log_contact[leaves],
                                               log_price[leaves])
    _departure_events(draws, pool, ev, book, gone, as_of)
    nxt = begin + length
    return active[~leaves & (nxt <= as_of)]


def _routine_contacts(draws, pool, ev, book, idx, begin, length, cutoff, recent, k,
                      lever=None) -> None:
    day = begin + (draws.random(idx) * length).astype(np.int64)
    out = (draws.random(idx) < pool.contact_rate[idx]) & (day < cutoff)
    if k == 0:  # the welcome call on start_date
        ev.contact(idx, begin, _OUT, _WELCOME, _channels(draws, idx, pool.plan[idx], False))
    o = idx[out]
    ev.contact(o, day[out], _OUT, _CHECKIN, _channels(draws, o, pool.plan[o], False))
    if lever is not None and lever.contact_days:
        _lever_contacts(pool, ev, idx, begin, day, out, cutoff, lever)
    pool.last_out[o] = np.maximum(pool.last_out[o], day[out])
    # A recent price increase and low satisfaction make customers call in.
    rate = INBOUND_RATE * (1 + 2 * recent) * np.where(pool.satisfaction[idx] <= 2, 2.0, 1.0)
    day_in = begin + (draws.random(idx) * length).astype(np.int64)
    inb = (draws.random(idx) < rate) & (day_in < cutoff)
    i = idx[inb]
    topic = draws.choice(i, [_QUESTION, _COMPLAINT, _BILLING]).astype(np.int8)
    ev.contact(i, day_in[inb], _IN, topic, _channels(draws, i, pool.plan[i], True))
    # The account manager sometimes moves a contacted customer to a current deal.
    deal = out & (draws.random(idx) < REPRICE_ON_CONTACT) & (k % 12 != 0)
    d = idx[deal]
    ncp = book.new_customer(pool.plan[d], day[deal])
    _set_price(pool, ev, d, day[deal], np.round(ncp * draws.uniform(d, 1.0, 1.15), 2), ncp)


def _routine_prices(draws, pool, ev, book, idx, begin, length, cutoff, k) -> None:
    if k == 0:
        ev.price(idx, begin, pool.price[idx], pool.price_ncp[idx])
    if k < 12 or k % 12:
        return
    day = begin + (draws.random(idx) * length).astype(np.int64)
    ok = day < cutoff
    i, day = idx[ok], day[ok]
    plan = pool.plan[i]
    if k == 12:  # the promotion ends: back to (at least) the list price
        new = np.maximum(pool.price[i], book.list_price(plan, day))
    else:  # annual increase, larger for premium customers
        new = pool.price[i] * (1 + draws.uniform(i, pool.increase_lo[i], pool.increase_hi[i],
                                                 sized=False))
    _set_price(pool, ev, i, day, np.round(new, 2), book.new_customer(plan, day))


def _set_price(pool, ev, idx, day, new, ncp) -> None:
    rose = new > pool.price[idx]
    pool.last_increase[idx[rose]] = day[rose]
    pool.price[idx] = new
    pool.price_ncp[idx] = ncp
    ev.price(idx, day, new, ncp)


def _departure_events(draws, pool, ev, book, gone, as_of) -> None:
    """Cancellation call, retention call and win-back offer: caused by the decision."""
    notice = pool.notice[gone]
    end = notice + NOTICE_PERIOD_DAYS
    last = np.minimum(end, as_of)
    cancel = draws.random(gone) < CANCELLATION_CALL_SHARE
    ev.contact(gone[cancel], notice[cancel], _IN, _CANCEL,
               _channels(draws, gone[cancel], pool.plan[gone[cancel]], True))
    call_day = notice + draws.integers(gone, 1, 6)
    call = (draws.random(gone) < RETENTION_CALL_SHARE) & (call_day <= last)
    c = gone[call]
    ev.contact(c, call_day[call], _OUT, _RETENTION, np.zeros(len(c), np.int8))
    offer_day = call_day + draws.integers(gone, 0, 5)
    offer = call & (draws.random(gone) < WINBACK_SHARE) & (offer_day <= last)
    o = gone[offer]
    price = np.round(pool.price[o] * draws.uniform(o, 0.80, 0.90), 2)
    ev.price(o, offer_day[offer], price, book.new_customer(pool.plan[o], offer_day[offer]))


def _run_pool(rng, m: int, as_of: int, effects: dict, keep_panel: bool,
              lever: Lever | None = None, crn_key: int | None = None):
    first_day = as_of - int(round(HISTORY_YEARS * 365.25))
    book = _PriceBook(rng, first_day, as_of)
    pool = _draw_pool(rng, m, as_of, book)
    ev = _Events()
    draws = _Draws(rng, crn_key)
    if lever is not None:
        lever.start(m)
    active = np.flatnonzero(pool.start <= as_of)
    k = 0
    while len(active):
        active = _simulate_month(draws, pool, ev, book, effects, k, active, as_of, keep_panel,
                                 lever)
        k += 1
    return pool, ev


# --------------------------------------------------------------------------- assembly


def _extract(pool: _Pool, n: int, obs_start: int) -> np.ndarray | None:
    """Pool positions of the first ``n`` customers still served on observation_start."""
    end = pool.notice + NOTICE_PERIOD_DAYS
    keep = np.flatnonzero((pool.notice < 0) | (end >= obs_start))
    return keep[:n] if len(keep) >= n else None


def _days_to_ts(days: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    out = days.astype("datetime64[D]").astype("datetime64[ns]")
    if missing is not None:
        out[missing] = np.datetime64("NaT")
    return out


def _ids(n: int) -> np.ndarray:
    width = max(6, len(str(n)))
    return pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width).radd("C").to_numpy()


def _customers_frame(rng, pool, pos, as_of, with_satisfaction) -> pd.DataFrame:
    n = len(pos)
    notice = pool.notice[pos]
    churned = notice >= 0
    end = notice + NOTICE_PERIOD_DAYS
    true = pool.true_reason[pos]
    stated = np.full(n, None, dtype=object)
    u = rng.random(n)
    cum = np.cumsum(STATED_GIVEN_TRUE, axis=1)[np.maximum(true, 0)]
    choice = (u[:, None] >= cum).sum(axis=1).clip(0, len(STATED_REASONS) - 1)
    told = churned & (rng.random(n) >= STATED_MISSING_SHARE)
    stated[told] = np.array(STATED_REASONS, dtype=object)[choice[told]]
    frame = pd.DataFrame({
        "customer_id": _ids(n),
        "start_date": _days_to_ts(pool.start[pos]),
        "end_date": _days_to_ts(end, ~churned | (end > as_of)),
        "notice_date": _days_to_ts(notice, ~churned),
        "churned": churned.astype(np.int64),
        "exit_reason": stated,
        "plan": np.array(PLANS, dtype=object)[pool.plan[pos]],
        "region": np.array(REGIONS, dtype=object)[pool.region[pos]],
        "account_manager": pd.Series(pool.am[pos] + 1).astype(str).str.zfill(2).radd("AM")
        .to_numpy(),
    })
    if with_satisfaction:
        frame["satisfaction"] = pool.satisfaction[pos].astype(np.int64)
    return frame[CUSTOMER_COLUMNS + [c for c in frame.columns if c not in CUSTOMER_COLUMNS]]


def _event_order(parts, pos_of: np.ndarray):
    """Concatenate event arrays, keep extracted customers, sort by customer and date."""
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)] if parts else None
    where = pos_of[cols[0]]
    keep = where >= 0
    cols = [c[keep] for c in cols]
    where = where[keep]
    order = np.lexsort((cols[1], where))
    return where[order], [c[order] for c in cols[1:]]


def _price_frame(ev, pos_of, ids) -> pd.DataFrame:
    where, (day, price, ncp) = _event_order(ev.prices, pos_of)
    return pd.DataFrame({"customer_id": ids[where], "effective_date": _days_to_ts(day),
                         "monthly_price": price.astype(float),
                         "new_customer_price": ncp.astype(float)})[PRICE_COLUMNS]


def _contact_frame(ev, pos_of, ids) -> pd.DataFrame:
    where, (day, direction, topic, channel) = _event_order(ev.contacts, pos_of)
    return pd.DataFrame({
        "customer_id": ids[where], "contact_date": _days_to_ts(day),
        "direction": np.array(["outbound", "inbound"], dtype=object)[direction],
        "channel": np.array(_CHANNELS, dtype=object)[channel],
        "topic": np.array(_CONTACT_TOPICS, dtype=object)[topic],
    })[CONTACT_COLUMNS]


def _panel_frame(pool, ev, pos_of, ids, as_of, obs_start) -> pd.DataFrame:
    idx, month, begin, msc, gap, recent, event, notice = (np.concatenate(c)
                                                          for c in zip(*ev.panel, strict=True))
    where = pos_of[idx]
    keep = where >= 0
    idx, month, msc, gap, recent, event, notice, where = (
        a[keep] for a in (idx, month, msc, gap, recent, event, notice, where))
    start_day = pool.start[idx]
    # Right-closed days, as the builder counts them: tenure day d ends at time d / DPM, a
    # late entrant is at risk after its observation_start day (a notice on it: no time at
    # risk) and everyone is censored at the end of as_of.
    entry = np.maximum(0.0, (obs_start - start_day) / DAYS_PER_MONTH)
    full = np.minimum(month + 1.0, (as_of - start_day) / DAYS_PER_MONTH)
    stop = np.where(event, (notice - start_day) / DAYS_PER_MONTH, full)
    begin_t = np.maximum(month.astype(float), entry)
    at_risk = stop > begin_t
    panel = pd.DataFrame({
        "customer_id": ids[where], "month": month.astype(np.int64), "start": begin_t,
        "stop": stop, "event": event.astype(np.int64), "months_since_contact": msc,
        "loyalty_penalty": gap, "price_increase_recent": recent,
        "plan": np.array(PLANS, dtype=object)[pool.plan[idx]],
        "satisfaction": pool.satisfaction[idx].astype(np.int64),
    })[at_risk]
    return panel.sort_values(["customer_id", "month"], kind="stable").reset_index(drop=True)


def _shares(values: pd.Series, groups: dict[str, list[str]] | None = None) -> dict:
    if groups is not None:
        lookup = {v: g for g, vs in groups.items() for v in vs}
        values = values.map(lookup)
    values = values.dropna()
    counts = values.value_counts()
    keys = list(groups) if groups is not None else list(TRUE_REASONS)
    total = max(int(counts.sum()), 1)
    return {k: round(float(counts.get(k, 0)) / total, 4) for k in keys}


def _truth(pool, pos, customers, prices, contacts, effects, preset, seed, as_of, obs_start):
    churned = customers["churned"].to_numpy() == 1
    true = pd.Series(np.array(TRUE_REASONS, dtype=object)[pool.true_reason[pos][churned]])
    notice = customers["notice_date"]
    obs = pd.Timestamp(np.datetime64(obs_start, "D"))
    n_late = int((customers["start_date"] < obs).sum())
    return {
        "preset": preset,
        "seed": int(seed),
        "as_of": str(np.datetime64(as_of, "D")),
        "observation_start": str(np.datetime64(obs_start, "D")),
        "effects": {k: float(v) for k, v in effects.items()},
        # log hazard ratio per unit of each covariate (month, log price ratio, 0/1)
        "coefficients": {
            "months_since_contact": float(np.log(effects["hr_no_contact_6m"]) / 6),
            "loyalty_penalty": float(np.log(effects["hr_price_gap_10pct"]) / np.log(1.1)),
            "price_increase_recent": float(np.log(effects["hr_price_increase"])),
        },
        "other_hazard_ratios": {
            "plan": dict(zip(PLANS, PLAN_HR, strict=True)),
            "satisfaction": {str(s + 1): hr for s, hr in enumerate(SATISFACTION_HR)},
            "inbound_contact": 1.0,
            "region": 1.0,
        },
        "baseline": f"{BASELINE_RATE} * (1 + tenure_month) ** {BASELINE_SHAPE} per month",
        "covariates": DEFINITIONS,
        "contact_cap_months": CONTACT_CAP_MONTHS,
        "price_increase_window_days": PRICE_INCREASE_WINDOW_DAYS,
        "notice_period_days": NOTICE_PERIOD_DAYS,
        "exit_reasons": {
            "true_reason": "drawn per departure from its hazard: the share 1 - 1/HR due to "
                           "the covariates that raised it, split between contact and price "
                           "by their log hazard ratios; the rest is 'other'",
            "true_share": _shares(true),
            "stated_share": _shares(customers["exit_reason"], STATED_GROUPS),
            "stated_groups": STATED_GROUPS,
            "stated_missing": int(customers["exit_reason"].isna().sum() - (~churned).sum()),
        },
        "counts": {
            "customers": len(customers),
            "churned": int(churned.sum()),
            "departures_in_window": int((notice >= obs).sum()),
            "notice_before_observation_start": int((notice < obs).sum()),
            "late_entrants": n_late,
            "still_serving_notice_on_as_of": int((churned & customers["end_date"].isna()).sum()),
            "price_events": len(prices),
            "contact_events": len(contacts),
            "retention_calls": int((contacts["topic"] == "retention").sum()),
            "winback_offers": int(_n_winbacks(customers, prices)),
        },
    }


def parse_levers(specs, window_start: int) -> Lever | None:
    """``["contact:6", "price"]`` as a :class:`Lever` acting from ``window_start``.

    Examples
    --------
    >>> lv = parse_levers(["contact:6", "price"], 0)
    >>> lv.contact_days, lv.price
    (183, True)
    >>> parse_levers([], 0) is None
    True
    """
    if isinstance(specs, str):
        specs = [specs]
    if not specs:
        return None
    lever = Lever(window_start)
    for spec in specs:
        name, _, arg = str(spec).strip().partition(":")
        if name == "price" and not arg:
            lever.price = True
        elif name == "contact":
            try:
                months = float(arg or 6)
            except ValueError:
                months = float("nan")
            if not (np.isfinite(months) and months >= 1):
                raise ConfigError(f"lever {spec!r}: months between contacts must be a number "
                                  "of at least 1 (e.g. contact:6)")
            lever.contact_days = contact_lever_days(months)
        else:
            raise ConfigError(f"unknown lever {spec!r}; valid: contact:MONTHS, price")
    return lever


def _what_if_truth(factual: Lever, lever: Lever, pos: np.ndarray, specs,
                   factual_stay: Lever, lever_stay: Lever) -> dict:
    """Both worlds' departures, months and revenue in the window, for the extract.

    ``departures_*`` are the realised counts (one draw of who leaves); ``expected_*``
    the sums of each customer's chance of leaving along their path (the worlds run
    again with nobody leaving in the window), ``change_expected`` their relative change:
    the quantity a what-if CI is for, without the noise of one realised year.
    """
    e0 = float(-np.expm1(-factual_stay.cumhaz[pos]).sum())
    e1 = float(-np.expm1(-lever_stay.cumhaz[pos]).sum())
    d0, d1 = int(factual.departed[pos].sum()), int(lever.departed[pos].sum())
    m0, m1 = factual.months[pos], lever.months[pos]
    r0, r1 = factual.revenue[pos], lever.revenue[pos]
    price1 = np.divide(r1, m1, out=np.zeros_like(r1), where=m1 > 0)
    return {
        "levers": [str(s) for s in ([specs] if isinstance(specs, str) else specs)],
        "contact_every_days": lever.contact_days, "price": lever.price,
        "departures_factual": d0, "departures_under_lever": d1,
        "change": (d1 - d0) / d0 if d0 else float("nan"),
        "expected_factual": e0, "expected_under_lever": e1,
        "change_expected": e1 / e0 - 1 if e0 else float("nan"),
        "customers_kept": d0 - d1,
        "months_factual": float(m0.sum()), "months_under_lever": float(m1.sum()),
        "revenue_factual": float(r0.sum()), "revenue_under_lever": float(r1.sum()),
        "revenue_kept": float((price1 * (m1 - m0)).sum()),
        "window": "tenure months beginning on or after observation_start, to as_of",
    }


def _n_winbacks(customers: pd.DataFrame, prices: pd.DataFrame) -> int:
    notice = prices["customer_id"].map(customers.set_index("customer_id")["notice_date"])
    return int((prices["effective_date"] > notice).sum())


def simulate(
    n_customers: int,
    seed: int,
    preset: str = "both",
    as_of: str = "2026-06-30",
    *,
    keep_panel: bool = False,
    satisfaction: bool = True,
    levers: tuple[str, ...] | list[str] = (),
    **effects: float | None,
) -> Simulation:
    """Simulate a customer base with planted effects of contact and price on departures.

    Parameters
    ----------
    n_customers : int
        Customers in the extract (served on or after ``observation_start``).
    seed : int
        Seed of the random generator; the same seed gives the same data.
    preset : {"contact", "price", "both", "neither"}
        Planted hazard ratios (see :data:`PRESETS`).
    as_of : str
        Extraction date (ISO); nothing is dated later.
    keep_panel : bool
        Also return the true customer-month panel (large for big ``n_customers``).
    satisfaction : bool
        Include the 1-5 satisfaction score column.
    levers : sequence of str, optional
        ``"contact:6"`` (an outbound contact whenever a customer reaches 6 months without
        one) and/or ``"price"`` (everyone pays the new-customer price), both acting from
        ``observation_start``. The world is then simulated twice with common random
        numbers (every draw keyed by customer, month and call: the same customer gets
        the same draws in both worlds), the returned data are the world without the
        lever, and ``truth["what_if"]`` holds both worlds' departures, months and revenue
        in the window: the counterfactual truth a what-if estimate must cover. With
        common random numbers the data differ from those of the same seed without levers.
    **effects : float, optional
        ``hr_no_contact_6m``, ``hr_price_gap_10pct``, ``hr_price_increase`` overriding
        the preset (1 = no effect).

    Returns
    -------
    Simulation

    Examples
    --------
    >>> sim = simulate(200, seed=1, preset="contact")
    >>> len(sim.customers), sim.truth["effects"]["hr_no_contact_6m"]
    (200, 1.5)
    """
    effects = resolve_effects(preset, **effects)
    if int(n_customers) < 1:
        raise ConfigError(f"n_customers must be at least 1, not {n_customers!r}")
    n = int(n_customers)
    as_of_day = int(parse_date(as_of, "as_of").to_datetime64().astype("datetime64[D]")
                    .astype(np.int64))
    obs_start = as_of_day - int(round(WINDOW_YEARS * 365.25))
    lever = parse_levers(levers, obs_start)
    crn_key = None if lever is None else int(seed) * 0x2545F4914F6CDD1D + 0x51ED27
    factual = None if lever is None else Lever(obs_start)
    m = int(n * 1.9) + 50  # about half the customers who ever joined are still served
    while True:
        rng = np.random.default_rng([int(seed), m])
        pool, ev = _run_pool(rng, m, as_of_day, effects, keep_panel, factual, crn_key)
        pos = _extract(pool, n, obs_start)
        if pos is not None:
            break
        m = int(m * 1.5)
    what_if = None
    if lever is not None:
        # the same pool and draws, the lever acting from observation_start: the same
        # customers are in the extract (nothing before the window changes)
        _run_pool(np.random.default_rng([int(seed), m]), m, as_of_day, effects, False, lever,
                  crn_key)
        # and both worlds once more with nobody leaving in the window: each customer's
        # chance of leaving along the path they would have had, the expected departures
        stays = [Lever(obs_start, stay=True), replace(lever, stay=True)]
        for world in stays:
            _run_pool(np.random.default_rng([int(seed), m]), m, as_of_day, effects, False,
                      world, crn_key)
        what_if = _what_if_truth(factual, lever, pos, levers, *stays)
    pos_of = np.full(m, -1, dtype=np.int64)
    pos_of[pos] = np.arange(n)
    customers = _customers_frame(rng, pool, pos, as_of_day, satisfaction)
    ids = customers["customer_id"].to_numpy()
    prices = _price_frame(ev, pos_of, ids)
    contacts = _contact_frame(ev, pos_of, ids)
    panel = _panel_frame(pool, ev, pos_of, ids, as_of_day, obs_start) if keep_panel else None
    truth = _truth(pool, pos, customers, prices, contacts, effects, preset, seed, as_of_day,
                   obs_start)
    if what_if is not None:
        truth["what_if"] = what_if
    log.info("simulated %d customers (%d departures), preset %s", n,
             truth["counts"]["churned"], preset)
    return Simulation(customers, prices, contacts, truth, panel)


def _write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    # pyarrow writes a million customers' events several times faster than pandas.
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, path, compression="snappy")
        return
    # Dates as YYYY-MM-DD; no quoting: the simulated strings hold no comma or quote.
    columns = [pc.cast(c, pa.date32()) if pa.types.is_timestamp(c.type) else c
               for c in table.columns]
    with open(path, "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode("utf-8"))
        pacsv.write_csv(pa.table(columns, names=table.column_names), sink,
                        pacsv.WriteOptions(include_header=False, quoting_style="none"))


def write_simulation(
    out_dir: Path,
    *,
    n_customers: int,
    seed: int,
    preset: str = "both",
    fmt: str = "csv",
    as_of: str = "2026-06-30",
    hr_no_contact_6m: float | None = None,
    hr_price_gap_10pct: float | None = None,
    hr_price_increase: float | None = None,
    levers: tuple[str, ...] | list[str] = (),
) -> list[Path]:
    """Simulate and write ``customers``, ``price_events``, ``contact_events`` and truth.json.

    The same arguments give byte-identical files.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_simulation(Path(tempfile.mkdtemp()), n_customers=100, seed=3)
    >>> [p.name for p in paths]
    ['customers.csv', 'price_events.csv', 'contact_events.csv', 'truth.json']
    """
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"unknown format {fmt!r}; valid: csv, parquet")
    sim = simulate(n_customers, seed, preset, as_of, hr_no_contact_6m=hr_no_contact_6m,
                   hr_price_gap_10pct=hr_price_gap_10pct, hr_price_increase=hr_price_increase,
                   levers=levers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("customers", "price_events", "contact_events"):
        path = out_dir / f"{name}.{fmt}"
        _write_frame(getattr(sim, name), path, fmt)
        paths.append(path)
    truth = out_dir / "truth.json"
    truth.write_text(json.dumps(sim.truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    paths.append(truth)
    log.info("wrote %s", ", ".join(p.name for p in paths))
    return paths
