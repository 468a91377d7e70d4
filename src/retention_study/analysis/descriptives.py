"""Descriptive numbers that stay honest when exposures change over a customer's life.

Two families, each valid for its kind of exposure:

- **Rates from person-time** (:func:`rates_by_band`, :func:`contact_bands`,
  :func:`penalty_bands`) for time-varying exposures such as months since the last
  supplier contact. Every episode contributes its ``(stop - start) / 12`` customer-years
  to the band its covariate is in at that time, and a departure counts in the band of
  the episode it happens on. Exact (Garwood) Poisson confidence intervals.
- **Kaplan–Meier curves** (:func:`km_by_group`) for *baseline* characteristics only:
  plan, contract, start cohort. Splitting a survival curve by something measured later
  in a customer's life (e.g. "was ever contacted") credits the group with the time the
  customer had to survive to get there (immortal-time bias); :func:`km_by_group` refuses
  with :class:`ImmortalTimeError`.

How much more loyal customers pay than newcomers, by tenure, is
:class:`retention_study.analysis.loyalty.LoyaltyPenalty`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times
from scipy import stats

from retention_study.data.schema import DAYS_PER_MONTH, StudyData, Timeline
from retention_study.errors import AnalysisError

log = logging.getLogger("retention_study")

MONTHS_PER_YEAR = 12.0

#: Months-since-contact bands; the covariate is capped at 24, so "24+" also holds
#: customers the supplier never contacted.
CONTACT_BINS = [0.0, 3.0, 6.0, 12.0, 24.0, np.inf]
CONTACT_LABELS = ["0-3 months", "3-6 months", "6-12 months", "12-24 months", "24+ months"]

#: Loyalty-penalty bands in percent above the new-customer price. The covariate is
#: log(price / new-customer price), so the cut points are log(1 + pct / 100).
PENALTY_PCT_BINS = [0.0, 10.0, 20.0]
PENALTY_LABELS = ["at or below new-customer price", "0-10% above", "10-20% above", "20%+ above"]

#: Tenure bands (months) for the loyalty-penalty table.

#: Columns that describe how or when a customer left: never a grouping for survival.
OUTCOME_COLUMNS = frozenset(
    {"end_date", "notice_date", "churned", "exit_reason", "event", "duration_days",
     "stop", "start"}
)

#: Covariates the timeline builder derives over a customer's life.
KNOWN_TIME_VARYING = frozenset(
    {"months_since_contact", "loyalty_penalty", "price_increase_recent", "outbound_12m",
     "inbound_12m", "log_price", "monthly_price", "new_customer_price", "effective_date",
     "contact_date", "direction", "channel", "topic"}
)

_MAX_GROUPS = 12


class ImmortalTimeError(AnalysisError, ValueError):
    """A survival curve was asked to split customers by something measured after they joined.

    Examples
    --------
    >>> issubclass(ImmortalTimeError, ValueError)
    True
    """


# --------------------------------------------------------------------------- rates


def poisson_ci(events, exposure, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) confidence limits of a Poisson rate ``events / exposure``.

    Parameters
    ----------
    events : array-like of int
        Event counts.
    exposure : array-like of float
        Person-time in the unit the rate is wanted in. Zero exposure gives NaN limits.
    alpha : float
        1 - confidence level.

    Returns
    -------
    lower, upper : numpy.ndarray
        Rate limits; the lower limit is 0 when there are no events.

    Examples
    --------
    >>> lo, up = poisson_ci([0], [1.0])
    >>> float(lo[0]), round(float(up[0]), 3)
    (0.0, 3.689)
    """
    k = np.asarray(events, dtype=float)
    t = np.asarray(exposure, dtype=float)
    lower = np.where(k > 0, stats.chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)
    upper = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 0, lower / t, np.nan), np.where(t > 0, upper / t, np.nan)


def _episodes(timeline: Timeline | pd.DataFrame) -> pd.DataFrame:
    frame = timeline.episodes if isinstance(timeline, Timeline) else timeline
    if {"start", "stop", "event"} <= set(frame.columns):
        return frame
    if {"duration_days", "event"} <= set(frame.columns):
        # Shape B: one row per customer, followed from tenure 0.
        return frame.assign(start=0.0, stop=frame["duration_days"] / DAYS_PER_MONTH)
    raise AnalysisError("rates need episodes with start, stop and event columns "
                        "(or a table with duration_days and event)")


def rates_by_band(
    timeline: Timeline | pd.DataFrame,
    column: str,
    bins: Sequence[float],
    labels: Sequence[str] | None = None,
    *,
    right: bool = False,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Departures per 100 customer-years by band of a (possibly time-varying) covariate.

    Each episode's ``(stop - start) / 12`` customer-years go to the band its covariate
    is in; a departure counts in the band of the episode it happens on.

    Parameters
    ----------
    timeline : Timeline or DataFrame
        Episodes (``start``, ``stop`` in tenure months, ``event``) or a shape B table
        (``duration_days``, ``event``).
    column : str
        Covariate to band.
    bins : sequence of float
        Band edges (``pandas.cut``), e.g. ``[0, 3, 6, 12, 24, inf]``.
    labels : sequence of str, optional
        One label per band; default the interval text.
    right : bool
        Whether bands include their right edge (default: left edge, ``[0, 3)``).
    alpha : float
        1 - confidence level of the exact Poisson interval.

    Returns
    -------
    DataFrame
        One row per band, in band order, empty bands included: ``band``,
        ``customer_years``, ``departures``, ``rate_per_100``, ``lower``, ``upper``,
        ``customers`` (distinct customers with time in the band).

    Examples
    --------
    >>> ep = pd.DataFrame({"customer_id": ["a", "a", "b"], "start": [0, 6, 0],
    ...                    "stop": [6, 18, 12], "event": [0, 1, 0], "x": [1, 5, 1]})
    >>> r = rates_by_band(ep, "x", [0, 3, 10], ["low", "high"])
    >>> r["customer_years"].tolist(), r["departures"].tolist(), r["rate_per_100"].tolist()
    ([1.5, 1.0], [0, 1], [0.0, 100.0])
    """
    episodes = _episodes(timeline)
    if column not in episodes.columns:
        raise AnalysisError(f"rates by band: no column '{column}' in the episodes")
    band = pd.cut(episodes[column], bins=list(bins), labels=labels, right=right)
    unbanded = int(band.isna().sum())
    if unbanded:
        log.warning("rates by %s: %d episode(s) outside the bands or missing, left out",
                    column, unbanded)
    work = pd.DataFrame({
        "band": band,
        "years": (episodes["stop"] - episodes["start"]) / MONTHS_PER_YEAR,
        "event": episodes["event"],
        "customer_id": episodes.get("customer_id", pd.Series(episodes.index, episodes.index)),
    })
    grouped = work.groupby("band", observed=False)
    out = pd.DataFrame({
        "customer_years": grouped["years"].sum(),
        "departures": grouped["event"].sum().astype(int),
        "customers": _customers_per_band(work["customer_id"], band),
    })
    years = out["customer_years"].to_numpy(dtype=float)
    lower, upper = poisson_ci(out["departures"], years, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate_per_100"] = np.where(years > 0, 100 * out["departures"] / years, np.nan)
    out["lower"], out["upper"] = 100 * lower, 100 * upper
    out = out.reset_index()
    return out[["band", "customer_years", "departures", "rate_per_100", "lower", "upper",
                "customers"]]


def _customers_per_band(customer_id: pd.Series, band: pd.Series) -> np.ndarray:
    """Distinct customers with time in each band (a groupby nunique, in one scatter).

    Examples
    --------
    >>> band = pd.Series(pd.Categorical(["x", "x", "y", None], categories=["x", "y", "z"]))
    >>> _customers_per_band(pd.Series(["a", "a", "a", "b"]), band).tolist()
    [1, 1, 0]
    """
    cust = pd.factorize(customer_id)[0]
    codes = np.asarray(band.cat.codes)
    ok = (cust >= 0) & (codes >= 0)
    seen = np.zeros((int(cust.max()) + 1 if len(cust) else 0, len(band.cat.categories)),
                    dtype=bool)
    seen[cust[ok], codes[ok]] = True
    return seen.sum(axis=0).astype(int)


def contact_bands(timeline: Timeline | pd.DataFrame, column: str = "months_since_contact",
                  *, alpha: float = 0.05) -> pd.DataFrame:
    """Departure rates by months since the supplier last made contact (0-3, ..., 24+).

    Examples
    --------
    >>> ep = pd.DataFrame({"start": [0, 0], "stop": [12, 24], "event": [1, 0],
    ...                    "months_since_contact": [1.0, 24.0]})
    >>> contact_bands(ep)["departures"].tolist()
    [1, 0, 0, 0, 0]
    """
    return rates_by_band(timeline, column, CONTACT_BINS, CONTACT_LABELS, right=False,
                         alpha=alpha)


def penalty_bands(timeline: Timeline | pd.DataFrame, column: str = "loyalty_penalty",
                  *, alpha: float = 0.05) -> pd.DataFrame:
    """Departure rates by how far the price is above the new-customer price.

    ``column`` holds log(price / new-customer price); bands are at or below the
    new-customer price, 0-10%, 10-20% and 20%+ above (right edges included).

    Examples
    --------
    >>> ep = pd.DataFrame({"start": [0, 0], "stop": [12, 12], "event": [0, 1],
    ...                    "loyalty_penalty": [0.0, np.log(1.25)]})
    >>> penalty_bands(ep)["departures"].tolist()
    [0, 0, 0, 1]
    """
    # A tolerance so that a price exactly 10% above (log(1.1) computed from prices)
    # lands in "0-10%" whatever the rounding of the log.
    cuts = np.log(1 + np.asarray(PENALTY_PCT_BINS) / 100) + 1e-9
    edges = [-np.inf, *cuts, np.inf]
    return rates_by_band(timeline, column, edges, PENALTY_LABELS, right=True, alpha=alpha)


def _start_dates(data: StudyData) -> pd.Series:
    if data.format == "events":
        return data.customers["start_date"]
    # A snapshot table only has tenure at extraction: the start is as_of - tenure.
    return data.as_of - pd.to_timedelta(data.table["duration_days"], unit="D")


def cohort_column(data: StudyData, max_groups: int = 6) -> pd.Series:
    """Start cohort: the calendar year the customer joined, one value per customer.

    More than ``max_groups`` years are grouped into spans of equal width ("2016-2017"),
    so a survival plot by cohort stays readable. For a shape B table the start is
    derived as ``as_of - duration_days``.

    Examples
    --------
    >>> cust = pd.DataFrame({"customer_id": ["a", "b"],
    ...     "start_date": pd.to_datetime(["2021-03-01", "2023-07-15"])})
    >>> d = StudyData(format="events", as_of=pd.Timestamp("2026-06-30"), customers=cust)
    >>> cohort_column(d).tolist()
    [2021, 2023]
    >>> cust["start_date"] = pd.to_datetime(["2010-01-01", "2023-01-01"])
    >>> cohort_column(d, max_groups=3).tolist()
    ['2010-2014', '2020-2024']
    """
    years = _start_dates(data).dt.year
    first, last = int(years.min()), int(years.max())
    width = -(-(last - first + 1) // max_groups)  # ceiling division
    if width <= 1:
        return years.rename("cohort")
    lo = first + (years - first) // width * width
    return (lo.astype(str) + "-" + (lo + width - 1).astype(str)).rename("cohort")


def _baseline_frame(data: StudyData) -> pd.DataFrame:
    frame = data.customers if data.format == "events" else data.table
    if frame is None:
        raise AnalysisError(f"no {'customers' if data.format == 'events' else 'table'} "
                            "in the study data")
    return frame


def customer_durations(data: StudyData, *, observation_start=None) -> pd.DataFrame:
    """One row per customer: months at entry, months followed, departed or not.

    Shape A: followed from ``start_date`` to ``notice_date`` (else ``end_date``, else
    ``as_of``); ``event`` is ``churned``. Shape B: ``duration_days`` and ``event``.
    Customers who joined before ``observation_start`` enter late, at the tenure they
    had then; customers gone before it are left out (logged).

    Returns
    -------
    DataFrame
        ``customer_id``, ``entry``, ``duration`` (months since joining), ``event``,
        ``cohort`` and the customer's other columns.

    Examples
    --------
    >>> cust = pd.DataFrame({"customer_id": ["a"], "start_date": [pd.Timestamp("2025-01-01")],
    ...     "end_date": [pd.NaT], "notice_date": [pd.NaT], "churned": [0]})
    >>> d = StudyData(format="events", as_of=pd.Timestamp("2026-01-01"), customers=cust)
    >>> round(float(customer_durations(d)["duration"].iloc[0]), 1)
    12.0
    """
    frame = _baseline_frame(data)
    start = _start_dates(data)
    if data.format == "events":
        stop = frame["notice_date"].fillna(frame["end_date"]).fillna(data.as_of)
        duration = (stop.clip(upper=data.as_of) - start).dt.days / DAYS_PER_MONTH
        event = frame["churned"].astype(int)
    else:
        duration = frame["duration_days"] / DAYS_PER_MONTH
        event = frame["event"].astype(int)
    obs = observation_start if observation_start is not None else data.observation_start
    entry = pd.Series(0.0, index=frame.index)
    if obs is not None:
        entry = ((pd.Timestamp(obs) - start).dt.days / DAYS_PER_MONTH).clip(lower=0.0)
    out = frame.assign(entry=entry, duration=duration, event=event,
                       cohort=cohort_column(data))
    gone = out["duration"] <= out["entry"]
    if obs is not None and gone.any():
        log.info("Kaplan-Meier: %d customer(s) left before the observation start %s, "
                 "not in the curves", int(gone.sum()), pd.Timestamp(obs).date())
    return out.loc[~gone | (out["entry"] == 0)].reset_index(drop=True)


def _groupable(frame: pd.DataFrame) -> list[str]:
    """Baseline columns worth suggesting: few distinct values, not the key or outcome."""
    skip = OUTCOME_COLUMNS | {"customer_id", "start_date"}
    counts = frame.nunique()
    return sorted(str(c) for c in frame.columns
                  if c not in skip and counts[c] <= _MAX_GROUPS) + ["cohort"]


def _check_baseline(data: StudyData, by: str, timeline: Timeline | None) -> None:
    frame = _baseline_frame(data)
    baseline = set(frame.columns) | {"cohort"}
    if by in OUTCOME_COLUMNS:
        raise ImmortalTimeError(f"'{by}' describes how or when customers left; it cannot "
                                "split a survival curve")
    if by in baseline:
        if data.format == "table" and by in (data.roles.get("price", [])
                                              + data.roles.get("contact", [])):
            log.warning("Kaplan-Meier by %s: a snapshot table measures it at extraction, "
                        "not when the customer joined; read the curves with care", by)
        return
    dummy = re.fullmatch(r"(.+)\[.*\]", str(by))
    if dummy and dummy.group(1) in baseline:
        raise AnalysisError(f"Kaplan-Meier by '{by}': group by the column itself, "
                            f"'{dummy.group(1)}'")
    later = set(KNOWN_TIME_VARYING)
    for extra in (data.price_events, data.contact_events):
        if extra is not None:
            later |= set(extra.columns) - {"customer_id"}
    if timeline is not None:
        later |= set(timeline.covariates)
    if by in later:
        raise ImmortalTimeError(
            f"'{by}' changes over a customer's life; a Kaplan-Meier split by it credits "
            "groups with time customers had to survive first (immortal-time bias). "
            "Use rates_by_band on the timeline instead, or a baseline column: "
            + ", ".join(_groupable(frame)))
    raise AnalysisError(f"Kaplan-Meier by '{by}': no such customer column")


@dataclass
class KMResult:
    """Kaplan–Meier curves per group of a baseline column.

    Attributes
    ----------
    by : str
        The grouping column.
    fitters : dict of str -> lifelines.KaplanMeierFitter
        One fitted curve per group, in group order.
    durations : DataFrame
        The per-customer data the curves were fitted on (:func:`customer_durations`).
    alpha : float
        1 - confidence level of the curves and medians.
    """

    by: str
    fitters: dict = field(default_factory=dict)
    durations: pd.DataFrame = field(default_factory=pd.DataFrame)
    alpha: float = 0.05

    @property
    def summary(self) -> pd.DataFrame:
        """Customers, departures, median months as a customer (with CI) per group."""
        rows = []
        for label, kmf in self.fitters.items():
            ci = median_survival_times(kmf.confidence_interval_survival_function_)
            rows.append({"group": label, "customers": int(kmf.event_observed.size),
                         "departures": int(kmf.event_observed.sum()),
                         "median_months": float(kmf.median_survival_time_),
                         "median_lower": float(ci.iloc[0, 0]),
                         "median_upper": float(ci.iloc[0, 1])})
        columns = ["group", "customers", "departures", "median_months", "median_lower",
                   "median_upper"]
        return pd.DataFrame(rows, columns=columns)

    def survival_at(self, months: float) -> pd.Series:
        """Share still a customer at ``months`` tenure, per group."""
        return pd.Series({k: float(f.predict(months)) for k, f in self.fitters.items()},
                         name=f"survival_{months:g}m")

    def at_risk(self, times: Sequence[float] = (0, 12, 24, 36, 48, 60)) -> pd.DataFrame:
        """Customers still followed just after each time (entered at or before, not yet gone).

        Examples
        --------
        >>> r = KMResult(by="g", durations=pd.DataFrame({"g": ["x", "x"],
        ...     "entry": [0.0, 5.0], "duration": [3.0, 20.0]}))
        >>> r.at_risk([0, 6]).to_numpy().tolist()
        [[1, 1]]
        """
        d = self.durations
        t = np.asarray(list(times), dtype=float)
        inside = (d["entry"].to_numpy()[:, None] <= t) & (d["duration"].to_numpy()[:, None] > t)
        table = pd.DataFrame(inside.astype(int), columns=[f"{x:g}" for x in t])
        table = table.groupby(d[self.by].astype(str).to_numpy()).sum()
        keep = [str(k) for k in self.fitters] or list(table.index)
        return table.reindex(keep, fill_value=0).rename_axis(self.by)


def km_by_group(
    data: StudyData,
    by: str,
    *,
    observation_start=None,
    timeline: Timeline | None = None,
    alpha: float = 0.05,
) -> KMResult:
    """Kaplan–Meier survival per group of a *baseline* column, with late entry.

    Parameters
    ----------
    data : StudyData
        Shape A (customers) or shape B (table).
    by : str
        A customer/table column known when the customer joined (plan, contract) or
        ``"cohort"`` (start year). Missing values are left out (logged).
    observation_start : date-like, optional
        Overrides ``data.observation_start``: earlier joiners enter late.
    timeline : Timeline, optional
        Lets the guard recognise this study's time-varying covariates by name.
    alpha : float
        1 - confidence level.

    Raises
    ------
    ImmortalTimeError
        ``by`` is measured later in a customer's life (an episode covariate, a price
        or contact event field) or describes the departure itself.
    AnalysisError
        ``by`` is not a column, or has more than 12 groups (band it first).

    Examples
    --------
    >>> cust = pd.DataFrame({"customer_id": ["a", "b", "c"], "plan": ["x", "x", "y"],
    ...     "start_date": pd.to_datetime(["2024-01-01"] * 3),
    ...     "end_date": pd.to_datetime(["2025-01-01", None, None]),
    ...     "notice_date": pd.NaT, "churned": [1, 0, 0]})
    >>> d = StudyData(format="events", as_of=pd.Timestamp("2026-01-01"), customers=cust)
    >>> km_by_group(d, "plan").summary["departures"].tolist()
    [1, 0]
    """
    _check_baseline(data, by, timeline)
    durations = customer_durations(data, observation_start=observation_start)
    missing = durations[by].isna()
    if missing.any():
        log.warning("Kaplan-Meier by %s: %d customer(s) with no value left out", by,
                    int(missing.sum()))
        durations = durations.loc[~missing].reset_index(drop=True)
    groups = sorted(durations[by].unique(), key=str)
    if len(groups) > _MAX_GROUPS:
        raise AnalysisError(f"Kaplan-Meier by '{by}': {len(groups)} groups; band it into "
                            f"at most {_MAX_GROUPS} first")
    result = KMResult(by=by, durations=durations, alpha=alpha)
    for value in groups:
        part = durations.loc[durations[by] == value]
        kmf = KaplanMeierFitter(alpha=alpha, label=str(value))
        result.fitters[str(value)] = kmf.fit(part["duration"], part["event"],
                                             entry=part["entry"])
    return result


# -------------------------------------------------------------------------- log-rank

#: How the log-rank test treats customers who joined before the observation window.
ENTRY_RESPECTED = ("customers who joined before the observation window count from when "
                   "they entered it, as in the curves")


def logrank(durations, events, groups, entry=None) -> dict:
    """The K-group log-rank test with late entry: each customer is at risk on (entry, duration].

    lifelines' ``multivariate_logrank_test`` has no entry argument: with left truncation
    it would count customers at risk before they were observed, the bias the curves
    avoid. This is the same statistic (observed minus expected departures per group and
    their hypergeometric covariance at each departure time, chi-squared with K-1 df)
    over the late-entry risk sets; with no late entry it equals lifelines' test (tested).

    Returns
    -------
    dict
        ``statistic``, ``df``, ``p``, ``groups`` (number of groups), ``observed`` and
        ``expected`` departures per group.

    Examples
    --------
    >>> r = logrank([1, 2, 3, 4], [1, 1, 1, 0], ["a", "b", "a", "b"])
    >>> round(r["statistic"], 4), r["df"]
    (0.6154, 1)
    """
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=bool)
    g = np.asarray(pd.Series(groups).astype(str))
    start = np.zeros_like(t) if entry is None else np.asarray(entry, dtype=float)
    labels = sorted(set(g))
    times = np.unique(t[e])
    n_risk = np.empty((len(times), len(labels)))
    deaths = np.empty_like(n_risk)
    for j, label in enumerate(labels):  # a handful of groups, each vectorised over times
        mask = g == label
        stop_sorted, entry_sorted = np.sort(t[mask]), np.sort(start[mask])
        # at risk at time u: entered strictly before u and not yet gone before u
        n_risk[:, j] = (np.searchsorted(entry_sorted, times, side="left")
                        - np.searchsorted(stop_sorted, times, side="left"))
        event_times = np.sort(t[mask & e])
        deaths[:, j] = (np.searchsorted(event_times, times, side="right")
                        - np.searchsorted(event_times, times, side="left"))
    n, d = n_risk.sum(axis=1), deaths.sum(axis=1)
    ok = n > 0
    n_risk, deaths, n, d = n_risk[ok], deaths[ok], n[ok], d[ok]
    expected = n_risk * (d / n)[:, None]
    # Var_jk = sum_t d (n - d) / (n - 1) * (n_j / n) * (delta_jk - n_k / n)
    factor = np.where(n > 1, d * (n - d) / np.maximum(n - 1, 1), 0.0) / n ** 2
    var = (np.diag((n_risk * (n * factor)[:, None]).sum(axis=0))
           - (n_risk * factor[:, None]).T @ n_risk)
    observed, exp_sum = deaths.sum(axis=0), expected.sum(axis=0)
    u = (observed - exp_sum)[:-1]
    v = var[:-1, :-1]
    df = len(labels) - 1
    statistic = float(u @ np.linalg.pinv(v) @ u) if df > 0 else float("nan")
    p = float(stats.chi2.sf(statistic, df)) if df > 0 else float("nan")
    return {"statistic": statistic, "df": df, "p": p, "groups": len(labels),
            "observed": dict(zip(labels, observed.tolist(), strict=True)),
            "expected": dict(zip(labels, exp_sum.tolist(), strict=True))}


def km_logrank(result: KMResult, alpha: float | None = None) -> dict | None:
    """The log-rank test of a :class:`KMResult`'s groups, pairwise (Holm) beyond two.

    Examples
    --------
    >>> d = pd.DataFrame({"g": ["a", "b", "a", "b"], "entry": 0.0,
    ...                   "duration": [1.0, 2.0, 3.0, 4.0], "event": [1, 1, 1, 0]})
    >>> km_logrank(KMResult(by="g", durations=d, fitters={"a": 0, "b": 0}))["pairs"]
    []
    """
    from retention_study.analysis.compare import holm

    d = result.durations
    if d.empty or len(result.fitters) < 2:
        return None
    by = d[result.by].astype(str)
    overall = logrank(d["duration"], d["event"], by, d["entry"])
    pairs = []
    if overall["groups"] > 2:
        labels = sorted(set(by))
        raw = {}
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                part = by.isin([a, b]).to_numpy()
                raw[(a, b)] = logrank(d["duration"][part], d["event"][part], by[part],
                                      d["entry"][part])
        adjusted = holm({k: v["p"] for k, v in raw.items()})
        pairs = [{"a": a, "b": b, "statistic": r["statistic"], "p": r["p"],
                  "p_holm": adjusted[(a, b)]} for (a, b), r in raw.items()]
    late = bool((d["entry"] > 0).any())
    return {**overall, "pairs": pairs, "alpha": result.alpha if alpha is None else alpha,
            "entry": ENTRY_RESPECTED if late else "no customer entered late"}
