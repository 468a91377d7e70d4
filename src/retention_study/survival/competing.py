"""Competing risks: cumulative incidence per cause (Aalen-Johansen), ties exact.

lifelines' AalenJohansenFitter jitters tied times, which on a monthly grid (most
departures tied) moves the curves; this estimator handles ties exactly.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger("retention_study")


# --------------------------------------------------------------------------- Aalen–Johansen
def aalen_johansen(durations, causes, entry=None) -> tuple[pd.DataFrame, pd.Series]:
    """Cumulative incidence per cause with tied times handled exactly (no jitter).

    At each distinct departure time t with n at risk and d_k departures of cause k,
    CIF_k rises by S(t-) d_k / n, where S is the all-cause Kaplan–Meier survival.

    Parameters
    ----------
    durations : array-like of float
        Exit time (departure or censoring).
    causes : array-like
        Cause label of a departure; None/NaN = censored.
    entry : array-like of float, optional
        Late-entry time; a customer is at risk on (entry, duration].

    Returns
    -------
    cif : DataFrame
        Index time (0 and each departure time), one column per cause.
    survival : Series
        All-cause survival S(t) on the same index.

    Examples
    --------
    >>> cif, s = aalen_johansen([1, 2, 2, 3], ["a", "a", "b", None])
    >>> cif.round(3).values.tolist()  # S(2-)=3/4, n(2)=3: each cause +1/4
    [[0.0, 0.0], [0.25, 0.0], [0.5, 0.25]]
    """
    t = np.asarray(durations, float)
    c = pd.Series(causes, dtype=object).reset_index(drop=True)
    e = np.zeros_like(t) if entry is None else np.asarray(entry, float)
    valid = t > e
    if not valid.all():
        # no time at risk (e.g. tenure 0): such a departure has no risk set to belong to
        log.info("aalen_johansen: %d rows without time at risk left out", int((~valid).sum()))
        t, e, c = t[valid], e[valid], c[valid].reset_index(drop=True)
    dep = c.notna().to_numpy()
    times = np.unique(t[dep])
    labels = sorted(c[dep].astype(str).unique())
    at_risk = (len(t) - np.searchsorted(np.sort(t), times, "left")) - (
        len(e) - np.searchsorted(np.sort(e), times, "left"))
    counts = pd.crosstab(t[dep], c[dep].astype(str).to_numpy()).reindex(
        index=times, columns=labels, fill_value=0).to_numpy(float)
    total = counts.sum(axis=1)
    surv = np.cumprod(1.0 - total / at_risk)
    surv_before = np.concatenate([[1.0], surv[:-1]])
    cif = np.cumsum(surv_before[:, None] * counts / at_risk[:, None], axis=0)
    index = pd.Index(np.concatenate([[0.0], times]), name="time")
    cif = pd.DataFrame(np.vstack([np.zeros(len(labels)), cif]), index=index, columns=labels)
    return cif, pd.Series(np.concatenate([[1.0], surv]), index=index, name="survival")
