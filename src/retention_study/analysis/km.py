"""Kaplan-Meier curves by a baseline group, with late entry, and their log-rank test.

Only for columns fixed at sign-up (a plan, a region, a cohort): grouping by a
measure that changes over a customer's life would credit the group with time
before the customer joined it (immortal time; :class:`ImmortalTimeError`).
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

from retention_study.data.schema import DAYS_PER_MONTH, StudyData, Timeline
from retention_study.errors import AnalysisError
from retention_study.survival.logrank import logrank

log = logging.getLogger("retention_study")

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
