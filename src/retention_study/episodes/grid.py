"""The time grid: tenure in months, weeks or days, and calendar days as numbers.

Every boundary of an episode is rounded *up* to the grid (see :mod:`.timeline`); these
functions are the one conversion between days of tenure and grid units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention_study.data.schema import DAYS_PER_MONTH

GRIDS = ("month", "week", "day")
_EPOCH = np.datetime64("1970-01-01", "D")


# --------------------------------------------------------------------------- time grid


def days_to_units(days: np.ndarray, grid: str) -> np.ndarray:
    """Round tenure days UP to the grid: the first grid point on or after each day.

    Examples
    --------
    >>> days_to_units(np.array([0, 1, 30, 31, 61]), "month").tolist()
    [0, 1, 1, 2, 3]
    >>> days_to_units(np.array([0, 1, 7, 8]), "week").tolist()
    [0, 1, 1, 2]
    """
    days = np.asarray(days, dtype=np.int64)
    if grid == "month":
        # floor(k * DPM) >= d  <=>  k * DPM >= d for whole d; DPM is a dyadic fraction,
        # so the division is exact whenever the result is a whole number.
        return np.ceil(days / DAYS_PER_MONTH).astype(np.int64)
    if grid == "week":
        return -(-days // 7)
    return days


def units_to_days(units: np.ndarray, grid: str) -> np.ndarray:
    """Tenure day on which each grid point falls (month k: ``floor(k * 365.25/12)``).

    Examples
    --------
    >>> units_to_days(np.array([0, 1, 2, 12]), "month").tolist()
    [0, 30, 60, 365]
    """
    units = np.asarray(units, dtype=np.int64)
    if grid == "month":
        return np.floor(units * DAYS_PER_MONTH).astype(np.int64)
    if grid == "week":
        return units * 7
    return units


def units_to_months(units: np.ndarray, grid: str) -> np.ndarray:
    """Tenure in months of each grid point (whole numbers on the month grid).

    Examples
    --------
    >>> units_to_months(np.array([0, 3]), "month").tolist()
    [0.0, 3.0]
    """
    units = np.asarray(units, dtype=np.int64)
    if grid == "month":
        return units.astype(np.float64)
    return units_to_days(units, grid) / DAYS_PER_MONTH


# --------------------------------------------------------------------------- event lookups


def day_number(values: pd.Series | pd.Index) -> np.ndarray:
    """Dates as whole days since 1970 (int64); NaT becomes a very negative number."""
    arr = np.asarray(values, dtype="datetime64[ns]").astype("datetime64[D]")
    out = (arr - _EPOCH).astype(np.int64)
    out[np.isnat(arr)] = np.iinfo(np.int64).min // 4
    return out
