"""The loyalty penalty: what long-standing customers pay above a new customer, and its effect.

Snapshots of each customer's price gap every few months of tenure
(:func:`price_gap_snapshots`), its trend with tenure (:class:`LoyaltyPenalty`) and the
hazard ratio of the penalty on the episodes (:func:`loyalty_hazard_ratio`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.analysis.customers import exit_date, in_months, ridge_penalizer
from retention_study.analysis.records import json_safe, to_records
from retention_study.data.schema import DAYS_PER_MONTH, StudyData
from retention_study.errors import AnalysisError
from retention_study.survival import CoxFitter

TENURE_BANDS_MONTHS = (0, 12, 24, 36, 60, np.inf)


# --------------------------------------------------------------------------- loyalty penalty
def _tenure_snapshots(customers: pd.DataFrame, as_of: pd.Timestamp, step: float) -> pd.DataFrame:
    """Every ``step`` months of each customer's tenure up to its exit, as dated rows.

    ``_row`` is the position of the snapshot's customer in ``customers``.
    """
    span = in_months(exit_date(customers, as_of) - customers["start_date"]).clip(lower=0)
    n = (np.floor(span / step) + 1).astype(int).to_numpy()
    rows = np.repeat(np.arange(len(customers)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    tenure = k * step
    start = customers["start_date"].to_numpy()[rows]
    date = pd.to_datetime(start) + pd.to_timedelta(np.round(tenure * DAYS_PER_MONTH), unit="D")
    return pd.DataFrame({"customer_id": customers["customer_id"].to_numpy()[rows],
                         "tenure": tenure, "date": date, "_row": rows})


def price_gap_snapshots(data: StudyData, step_months: float = 6.0) -> pd.DataFrame:
    """The price in force against the new-customer price, every ``step_months`` of tenure.

    Returns ``customer_id``, ``tenure`` (months), ``date``, ``monthly_price``,
    ``new_customer_price``, ``pct_above`` (100 * (price / new-customer price - 1)).
    Snapshots before a customer's first price or without a new-customer price are
    left out.

    Examples
    --------
    >>> c = pd.DataFrame({"customer_id": ["a"], "start_date": [pd.Timestamp("2020-01-01")],
    ...                   "end_date": [pd.NaT], "notice_date": [pd.NaT]})
    >>> p = pd.DataFrame({"customer_id": ["a", "a"], "effective_date": pd.to_datetime(
    ...     ["2020-01-01", "2020-09-01"]), "monthly_price": [10.0, 12.0],
    ...     "new_customer_price": [10.0, 10.0]})
    >>> d = StudyData(format="events", as_of=pd.Timestamp("2021-01-01"), customers=c,
    ...               price_events=p)
    >>> price_gap_snapshots(d)["pct_above"].round(1).tolist()
    [0.0, 0.0, 20.0]
    """
    if data.format != "events" or data.price_events is None:
        raise AnalysisError("the loyalty penalty needs price events (shape A)")
    # An as-of join by customer in arrays: customers as integer codes in id order and
    # dates as ranks, packed into one sorted key (pandas' merge_asof by id text and the
    # sort by id cost ~15 s at a million customers; the rows and values are the same).
    ids = pd.Index(data.customers["customer_id"]).unique().sort_values()
    code = ids.get_indexer(data.customers["customer_id"])
    by_id = np.argsort(code, kind="stable")
    snaps = _tenure_snapshots(data.customers.iloc[by_id], data.as_of, step_months)
    s_code = code[by_id][snaps.pop("_row").to_numpy()]  # snapshots by id, then tenure
    prices = data.price_events.dropna(subset=["effective_date"])
    p_code = ids.get_indexer(prices["customer_id"])
    s_date = snaps["date"].to_numpy(dtype="datetime64[ns]")
    p_date = prices["effective_date"].to_numpy(dtype="datetime64[ns]")
    _, rank = np.unique(np.concatenate([s_date, p_date]), return_inverse=True)
    s_key = (s_code.astype(np.int64) << 32) + rank[:len(s_date)]
    p_key = (p_code.astype(np.int64) << 32) + rank[len(s_date):]
    order = np.argsort(p_key, kind="stable")  # the last of same-day prices wins, in table order
    p_key = p_key[order]
    pos = np.searchsorted(p_key, s_key, "right") - 1  # the last price on or before
    if len(p_key):
        found = (pos >= 0) & ((p_key[np.maximum(pos, 0)] >> 32) == (s_key >> 32))
        take = order[np.maximum(pos, 0)]
    else:
        found, take = np.zeros(len(pos), dtype=bool), np.zeros(len(pos), dtype=np.int64)
    for col in ("monthly_price", "new_customer_price"):
        values = prices[col].to_numpy(dtype=float)
        snaps[col] = np.where(found, values[take] if len(values) else np.nan, np.nan)
    merged = snaps.dropna(subset=["monthly_price", "new_customer_price"]).reset_index(drop=True)
    merged["pct_above"] = 100.0 * (merged["monthly_price"] / merged["new_customer_price"] - 1.0)
    return merged


def _band_labels(edges: Sequence[float]) -> list[str]:
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        closed = f"{lo / 12:g}-{hi / 12:g} years" if np.isfinite(hi) else f"{lo / 12:g}+ years"
        labels.append(closed)
    return labels


class LoyaltyPenalty:
    """How much more existing customers pay than new customers, by tenure band.

    Parameters
    ----------
    bands : sequence of float
        Tenure band edges in months (last may be inf); bands are [lo, hi).
    step_months : float
        Snapshot spacing: each customer counts once per ``step_months`` of tenure,
        so long-standing customers weigh by their time, not by how often prices moved.

    Attributes
    ----------
    summary : DataFrame
        Index band; snapshots, customers, mean_pct_above, median_pct_above,
        share_paying_more (price above the new-customer price by more than 0.5%).
    hazard_ratio : dict or None
        The loyalty penalty's hazard ratio (``label``, hr, lower, upper, p), from the
        models (pass it to :meth:`fit`) or :func:`loyalty_hazard_ratio`.

    Examples
    --------
    >>> snaps = pd.DataFrame({"customer_id": ["a", "a", "b"], "tenure": [0.0, 18.0, 30.0],
    ...                       "pct_above": [0.0, 10.0, 30.0]})
    >>> LoyaltyPenalty().fit(snaps).summary["mean_pct_above"].tolist()
    [0.0, 10.0, 30.0]
    """

    def __init__(self, bands: Sequence[float] = TENURE_BANDS_MONTHS, step_months: float = 6.0):
        self.bands = list(bands)
        self.step_months = step_months

    def fit(self, data: StudyData | pd.DataFrame,
            hazard_ratio: dict | None = None) -> LoyaltyPenalty:
        """Fit on a StudyData (shape A) or on :func:`price_gap_snapshots` output."""
        if isinstance(data, pd.DataFrame):
            snaps = data
        else:
            snaps = price_gap_snapshots(data, self.step_months)
        if snaps.empty:
            raise AnalysisError("no price snapshot has a new-customer price")
        labels = _band_labels(self.bands)
        band = pd.cut(snaps["tenure"], self.bands, right=False, labels=labels)
        g = snaps.assign(band=band, more=(snaps["pct_above"] > 0.5) * 1.0).groupby(
            "band", observed=True)
        self.summary = pd.DataFrame({
            "snapshots": g.size(), "customers": g["customer_id"].nunique(),
            "mean_pct_above": g["pct_above"].mean(), "median_pct_above": g["pct_above"].median(),
            "share_paying_more": g["more"].mean()})
        self.summary.index = self.summary.index.astype(str)
        self.hazard_ratio = hazard_ratio
        return self

    @property
    def trend(self) -> float:
        """Mean % above the new-customer price in the longest band minus the first band."""
        m = self.summary["mean_pct_above"]
        return float(m.iloc[-1] - m.iloc[0])

    def to_dict(self) -> dict:
        """JSON-safe: summary, trend (pct points, last band minus first), hazard_ratio."""
        return {"summary": to_records(self.summary.reset_index()), "trend": json_safe(self.trend),
                "hazard_ratio": json_safe(self.hazard_ratio) if self.hazard_ratio else None}


def loyalty_hazard_ratio(episodes: pd.DataFrame, covariate: str = "loyalty_penalty",
                         controls: Sequence[str] = (), pct: float = 10.0,
                         alpha: float = 0.05) -> dict:
    """Hazard ratio per ``pct`` % above the new-customer price, on start/stop episodes.

    The Timeline's ``loyalty_penalty`` is log(price / new-customer price), so the
    effect is scaled to a step of log(1 + pct/100). A simple time-varying Cox model of
    the penalty with optional controls, for when the main models did not report it.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> x = np.log(rng.uniform(1.0, 1.4, 400))
    >>> t = rng.exponential(20 / 1.35 ** (x / np.log(1.1)))  # HR 1.35 per 10% above
    >>> ep = pd.DataFrame({"customer_id": range(400), "start": 0.0, "stop": t + 0.01,
    ...                    "event": 1, "loyalty_penalty": x})
    >>> bool(1.15 < loyalty_hazard_ratio(ep)["hr"] < 1.6)
    True
    """
    # fitted on the episodes as they are (no copy) and read per pct step; the ridge is on
    # the coefficient per step, as if the covariate had been divided by the step
    covs = [covariate, *controls]
    step = np.log1p(pct / 100.0)
    pen = ridge_penalizer(episodes, covs, [step] + [1.0] * len(controls))
    ctv = CoxFitter(ties="breslow", penalizer=pen, alpha=alpha).fit(episodes, covs)
    coef, se = ctv.params_[covariate] * step, ctv.standard_errors_[covariate] * step
    z = stats.norm.ppf(1 - alpha / 2)
    row = {"hr": np.exp(coef), "lower": np.exp(coef - z * se), "upper": np.exp(coef + z * se),
           "p": ctv.summary.loc[covariate, "p"]}
    return {"label": f"per {pct:g}% above the new-customer price", **json_safe(row)}
