"""One row per customer: follow-up, departure rates and Cox fits on that frame.

:func:`customer_frame` is each customer's duration and event (late entry kept);
segments, satisfaction, loyalty and reasons build on it.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from retention_study.analysis.descriptives import poisson_ci
from retention_study.data.schema import DAYS_PER_MONTH, StudyData
from retention_study.errors import AnalysisError
from retention_study.survival import CoxFitter

log = logging.getLogger("retention_study")


# --------------------------------------------------------------------------- customer frame
def in_months(delta: pd.Series) -> pd.Series:
    return delta.dt.days / DAYS_PER_MONTH


def exit_date(customers: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """The date a customer's time at risk ends: the notice if any, else the end, else as_of.

    The notice is the decision to leave, so a leaver's clock stops there, not at the
    later contract end.

    Examples
    --------
    >>> c = pd.DataFrame({"notice_date": [pd.NaT, pd.Timestamp("2020-03-01")],
    ...                   "end_date": [pd.NaT, pd.Timestamp("2020-04-01")]})
    >>> exit_date(c, pd.Timestamp("2021-01-01")).dt.strftime("%Y-%m").tolist()
    ['2021-01', '2020-03']
    """
    left = customers["notice_date"].fillna(customers["end_date"])
    return left.fillna(as_of)


def customer_frame(data: StudyData) -> pd.DataFrame:
    """One row per customer: ``entry``, ``duration`` (months), ``event`` plus its columns.

    Parameters
    ----------
    data : StudyData
        Either shape. Shape A times run from ``start_date`` to :func:`exit_date`; shape B
        uses ``duration_days`` and enters at 0.

    Returns
    -------
    DataFrame
        ``customer_id``, ``entry``, ``duration``, ``event`` and every other column of
        ``customers`` (shape A) or ``table`` (shape B). Customers with no time at risk
        after their entry are left out (logged).

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": ["a"], "duration_days": [365.25], "event": [1]})
    >>> customer_frame(StudyData(format="table", as_of=pd.Timestamp("2026-01-01"), table=t))[
    ...     ["entry", "duration"]].values.tolist()
    [[0.0, 12.0]]
    """
    if data.format == "table":
        frame = data.table.copy()
        frame["entry"] = 0.0
        frame["duration"] = frame["duration_days"] / DAYS_PER_MONTH
    else:
        frame = data.customers.copy()
        frame["duration"] = in_months(exit_date(frame, data.as_of) - frame["start_date"])
        frame["entry"] = 0.0
        if data.observation_start is not None:
            late = in_months(data.observation_start - frame["start_date"])
            frame["entry"] = late.clip(lower=0.0)
        frame["event"] = frame["churned"]
    frame["event"] = frame["event"].astype(int)
    keep = frame["duration"] > frame["entry"]
    if not keep.all():
        log.info("segments: %d customers without time at risk left out", int((~keep).sum()))
    return frame.loc[keep].reset_index(drop=True)


# --------------------------------------------------------------------------- rates
def poisson_rate(events, exposure, alpha: float = 0.05, per: float = 100.0) -> pd.DataFrame:
    """Events per ``per`` units of exposure with exact (Garwood) Poisson limits.

    Examples
    --------
    >>> r = poisson_rate([10], [200.0])
    >>> round(float(r["rate"].iloc[0]), 2), round(float(r["lower"].iloc[0]), 3)
    (5.0, 2.398)
    """
    d = np.asarray(events, dtype=float)
    t = np.asarray(exposure, dtype=float)
    lower, upper = poisson_ci(d, t, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({"rate": per * d / t, "lower": per * lower, "upper": per * upper})


def departure_rates(frame: pd.DataFrame, by: str, alpha: float = 0.05) -> pd.DataFrame:
    """Departures per 100 customer-years by the levels of column ``by``.

    Parameters
    ----------
    frame : DataFrame
        From :func:`customer_frame` (``entry``, ``duration`` in months, ``event``).
    by : str
        Segment column; missing values are left out.

    Examples
    --------
    >>> f = pd.DataFrame({"entry": 0.0, "duration": [12.0, 12.0, 24.0], "event": [1, 0, 1],
    ...                   "seg": ["a", "a", "b"]})
    >>> departure_rates(f, "seg")["rate"].tolist()
    [50.0, 50.0]
    """
    f = frame.dropna(subset=[by])
    years = (f["duration"] - f["entry"]) / 12.0
    grouped = pd.DataFrame({"segment": f[by].values, "customers": 1,
                            "departures": f["event"].values, "customer_years": years.values})
    grouped = grouped.groupby("segment", observed=True)
    out = grouped.sum().reset_index()
    rates = poisson_rate(out["departures"], out["customer_years"], alpha)
    return pd.concat([out, rates], axis=1)


# --------------------------------------------------------------------------- Cox helpers
# Breslow ties: breslow_expected relies on observed = expected at the Breslow MLE. A tiny
# ridge on the coefficients, RIDGE * n_rows / 2 * |beta|^2, keeps a segment without
# departures finite.
RIDGE = 1e-6


def ridge_penalizer(df: pd.DataFrame, covs, scale=None) -> np.ndarray:
    """CoxFitter penalizer per covariate giving ``RIDGE * n / 2 * |beta / scale|^2``.

    CoxFitter's (lifelines') penalizer multiplies (beta x SD)^2; dividing by the variance
    puts the ridge on the coefficients, per ``scale`` units of each covariate.
    """
    var = df[list(covs)].var().to_numpy(float)
    scale = np.ones(len(var)) if scale is None else np.asarray(scale, float)
    return np.where(var > 0, RIDGE * scale ** 2 / np.where(var > 0, var, 1.0), RIDGE)


def customer_cox(df: pd.DataFrame, alpha: float) -> CoxFitter:
    """Cox on a customer frame (entry, duration, event, then the covariates)."""
    covs = [c for c in df.columns if c not in ("entry", "duration", "event")]
    try:
        return CoxFitter(ties="breslow", penalizer=ridge_penalizer(df, covs), alpha=alpha).fit(
            df, covs, start_col="entry", stop_col="duration")
    except AnalysisError as exc:
        raise AnalysisError(f"Cox model by segment cannot be fitted ({exc})") from None


def hr_table(model) -> pd.DataFrame:
    """term, hr, lower, upper, p from a CoxFitter's (or lifelines model's) summary."""
    s = model.summary
    lo, hi = [c for c in s.columns if c.startswith("exp(coef) ")][:2]
    return pd.DataFrame({"term": s.index, "hr": s["exp(coef)"].values, "lower": s[lo].values,
                         "upper": s[hi].values, "p": s["p"].values})


def segment_hazard_ratios(frame: pd.DataFrame, by: str, reference=None,
                          alpha: float = 0.05) -> pd.DataFrame:
    """Hazard ratio of each level of ``by`` against a reference level (Cox, late entry).

    The reference defaults to the largest segment. Returns ``segment``, ``reference``,
    ``hr``, ``lower``, ``upper``, ``p``; the reference row has hr 1.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> seg = np.repeat(["a", "b"], 200)
    >>> t = rng.exponential(np.where(seg == "a", 10.0, 5.0))
    >>> f = pd.DataFrame({"entry": 0.0, "duration": t, "event": 1, "seg": seg})
    >>> bool(1.5 < segment_hazard_ratios(f, "seg", reference="a")["hr"].iloc[1] < 2.7)
    True
    """
    f = frame.dropna(subset=[by])
    if f.empty:
        raise AnalysisError(f"segment column {by} has no values")
    levels = f[by].astype(str)
    if reference is None or str(reference) not in set(levels):
        if reference is not None:
            log.info("segments: reference %r absent from %s; using the largest", reference, by)
        reference = levels.value_counts().idxmax()
    reference = str(reference)
    others = [lv for lv in sorted(levels.unique()) if lv != reference]
    if not others:
        raise AnalysisError(f"segment column {by} has a single level; nothing to compare")
    dummies = pd.DataFrame({lv: (levels == lv).astype(float).values for lv in others})
    df = pd.concat([f[["entry", "duration", "event"]].reset_index(drop=True), dummies], axis=1)
    table = hr_table(customer_cox(df, alpha)).rename(columns={"term": "segment"})
    ref_row = pd.DataFrame({"segment": [reference], "hr": [1.0], "lower": [np.nan],
                            "upper": [np.nan], "p": [np.nan]})
    out = pd.concat([ref_row, table], ignore_index=True)
    out.insert(1, "reference", reference)
    return out
