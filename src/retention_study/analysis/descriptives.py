"""Descriptive numbers that stay honest when exposures change over a customer's life.

Two families, each valid for its kind of exposure:

- **Rates from person-time** (:func:`rates_by_band`, :func:`contact_bands`,
  :func:`penalty_bands`) for time-varying exposures such as months since the last
  supplier contact. Every episode contributes its ``(stop - start) / 12`` customer-years
  to the band its covariate is in at that time, and a departure counts in the band of
  the episode it happens on. Exact (Garwood) Poisson confidence intervals.
- **Kaplan–Meier curves** (:func:`~.km.km_by_group`, in :mod:`.km`) for *baseline* characteristics only:
  plan, contract, start cohort. Splitting a survival curve by something measured later
  in a customer's life (e.g. "was ever contacted") credits the group with the time the
  customer had to survive to get there (immortal-time bias); :func:`~.km.km_by_group`
  refuses with :class:`~.km.ImmortalTimeError`.

How much more loyal customers pay than newcomers, by tenure, is
:class:`retention_study.analysis.loyalty.LoyaltyPenalty`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.data.schema import DAYS_PER_MONTH, Timeline
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
