"""Departure rates and hazard ratios by segment, the satisfaction claim and the loyalty penalty.

Everything here works on one row per customer (:func:`customer_frame`): satisfaction
scores and segment columns do not change over a customer's life in either data shape,
so the start/stop episodes of a :class:`~retention_study.data.schema.Timeline` are not needed.

Time is tenure in months; rates are per 100 customer-years. Customers who joined
before ``observation_start`` enter late (left truncation) and only their observed
time counts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.analysis.descriptives import poisson_ci
from retention_study.analysis.records import json_safe, to_records
from retention_study.data.schema import DAYS_PER_MONTH, StudyData
from retention_study.errors import AnalysisError
from retention_study.survival import CoxFitter

log = logging.getLogger("retention_study")

SATISFACTION_LEVELS = ("unhappy", "satisfied", "delighted")
TENURE_BANDS_MONTHS = (0, 12, 24, 36, 60, np.inf)


# --------------------------------------------------------------------------- customer frame
def _months(delta: pd.Series) -> pd.Series:
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
        frame["duration"] = _months(exit_date(frame, data.as_of) - frame["start_date"])
        frame["entry"] = 0.0
        if data.observation_start is not None:
            late = _months(data.observation_start - frame["start_date"])
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


def _cox(df: pd.DataFrame, alpha: float) -> CoxFitter:
    """Cox on a customer frame (entry, duration, event, then the covariates)."""
    covs = [c for c in df.columns if c not in ("entry", "duration", "event")]
    try:
        return CoxFitter(ties="breslow", penalizer=ridge_penalizer(df, covs), alpha=alpha).fit(
            df, covs, start_col="entry", stop_col="duration")
    except AnalysisError as exc:
        raise AnalysisError(f"Cox model by segment cannot be fitted ({exc})") from None


def _hr_table(model) -> pd.DataFrame:
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
    table = _hr_table(_cox(df, alpha)).rename(columns={"term": "segment"})
    ref_row = pd.DataFrame({"segment": [reference], "hr": [1.0], "lower": [np.nan],
                            "upper": [np.nan], "p": [np.nan]})
    out = pd.concat([ref_row, table], ignore_index=True)
    out.insert(1, "reference", reference)
    return out


# --------------------------------------------------------------------------- satisfaction
def satisfaction_segment(scores, thresholds: Sequence[float] = (2, 4)) -> pd.Series:
    """Unhappy (<= low), satisfied (<= high), delighted (above) from a survey score.

    Examples
    --------
    >>> satisfaction_segment([1, 2, 3, 4, 5, None]).tolist()
    ['unhappy', 'unhappy', 'satisfied', 'satisfied', 'delighted', nan]
    """
    low, high = (float(x) for x in thresholds)
    if low >= high:
        raise AnalysisError(f"satisfaction thresholds must rise, got {list(thresholds)}")
    s = pd.to_numeric(pd.Series(scores), errors="coerce")
    cut = pd.cut(s, [-np.inf, low, high, np.inf], labels=list(SATISFACTION_LEVELS))
    return cut.astype(object).where(s.notna(), np.nan)


def breslow_expected(frame: pd.DataFrame, risk_score: np.ndarray) -> np.ndarray:
    """Expected departures per customer under a Cox model (Breslow, late entry allowed).

    ``risk_score`` is exp(beta'x) per row. With ties, all departures at a time share
    that time's risk set.

    Examples
    --------
    >>> f = pd.DataFrame({"entry": 0.0, "duration": [1.0, 2.0], "event": [1, 1]})
    >>> breslow_expected(f, np.ones(2)).tolist()  # H0(1)=1/2, H0(2)=1/2+1
    [0.5, 1.5]
    """
    entry, stop = frame["entry"].to_numpy(float), frame["duration"].to_numpy(float)
    w = np.asarray(risk_score, float)
    times = np.unique(stop[frame["event"].to_numpy() == 1])
    deaths = np.bincount(np.searchsorted(times, stop[frame["event"].to_numpy() == 1]),
                         minlength=len(times))
    # at risk at t: stop >= t minus entry >= t (counting weights from the right)
    order_s, order_e = np.argsort(stop), np.argsort(entry)
    cum_s = np.concatenate([np.cumsum(w[order_s][::-1])[::-1], [0.0]])
    cum_e = np.concatenate([np.cumsum(w[order_e][::-1])[::-1], [0.0]])
    at_risk = (cum_s[np.searchsorted(stop[order_s], times, "left")]
               - cum_e[np.searchsorted(entry[order_e], times, "left")])
    h0 = np.concatenate([[0.0], np.cumsum(deaths / at_risk)])
    idx_stop = np.searchsorted(times, stop, "right")
    idx_entry = np.searchsorted(times, entry, "right")
    return w * (h0[idx_stop] - h0[idx_entry])


def _oe(observed: pd.Series, expected: pd.Series, alpha: float) -> pd.DataFrame:
    ci = poisson_rate(observed, expected, alpha, per=1.0)
    return pd.DataFrame({"observed": observed.values, "expected": expected.values,
                         "oe": ci["rate"].values, "oe_lower": ci["lower"].values,
                         "oe_upper": ci["upper"].values})


class SatisfactionAnalysis:
    """Departure rates, hazard ratios and the "satisfied slip away" check by survey score.

    The claim is that merely satisfied customers leave *faster than their score
    suggests*. We fit a Cox model with the score as a straight line and compare each
    segment's observed departures with those the line expects (O/E, exact Poisson
    limits): O/E above 1 for "satisfied" means they leave more than the trend
    predicts. ``satisfied_excess`` is the same question as a hazard ratio: an
    indicator for "satisfied" added to the linear-score model.

    Parameters
    ----------
    thresholds : (low, high)
        Score <= low is unhappy, <= high satisfied, above is delighted.
    reference : str
        Reference segment of the hazard ratios ("satisfied": the other two are
        compared with it, so the claim predicts HRs below 1).
    alpha : float

    Attributes
    ----------
    summary : DataFrame
        One row per segment: customers, departures, customer_years, rate, lower, upper
        (per 100 customer-years), hr, hr_lower, hr_upper, p, observed, expected, oe,
        oe_lower, oe_upper.
    per_point : dict
        Hazard ratio per score point of the linear model (hr, lower, upper, p).
    satisfied_excess : dict
        HR of "satisfied" over and above the linear trend (hr, lower, upper, p).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> score = rng.integers(1, 6, 600)
    >>> t = rng.exponential(np.where((score >= 3) & (score <= 4), 10.0, 30.0))
    >>> f = pd.DataFrame({"entry": 0.0, "duration": np.minimum(t, 36), "event": (t < 36) * 1,
    ...                   "score": score})
    >>> sa = SatisfactionAnalysis().fit(f, "score")
    >>> bool(sa.summary.loc["satisfied", "oe_lower"] > 1)
    True
    """

    def __init__(self, thresholds: Sequence[float] = (2, 4), reference: str = "satisfied",
                 alpha: float = 0.05) -> None:
        self.thresholds = [float(x) for x in thresholds]
        self.reference = reference
        self.alpha = alpha

    def fit(self, frame: pd.DataFrame, score_col: str) -> SatisfactionAnalysis:
        """Fit on a :func:`customer_frame`; rows without a score are left out."""
        f = frame.assign(_score=pd.to_numeric(frame[score_col], errors="coerce"))
        f = f.dropna(subset=["_score"]).reset_index(drop=True)
        if f.empty:
            raise AnalysisError(f"satisfaction column {score_col} holds no numeric scores")
        f["segment"] = satisfaction_segment(f["_score"], self.thresholds).values
        self.column = score_col
        self.n_left_out = int(len(frame) - len(f))
        rates = departure_rates(f, "segment", self.alpha).set_index("segment")
        hrs = segment_hazard_ratios(f, "segment", self.reference, self.alpha)
        self.reference = hrs["reference"].iloc[0]
        hrs = hrs.set_index("segment")[["hr", "lower", "upper", "p"]]
        hrs = hrs.add_prefix("hr_").rename(columns={"hr_hr": "hr"})
        self.summary = rates.join(hrs).join(self._observed_expected(f))
        self.summary = self.summary.reindex([s for s in SATISFACTION_LEVELS if s in rates.index])
        self.summary.index.name = "segment"
        return self

    def _observed_expected(self, f: pd.DataFrame) -> pd.DataFrame:
        base = f[["entry", "duration", "event"]]
        linear = _cox(base.assign(score=f["_score"]), self.alpha)
        self.per_point = _hr_table(linear).iloc[0].drop("term").to_dict()
        excess = base.assign(score=f["_score"], satisfied=(f["segment"] == "satisfied") * 1.0)
        self.satisfied_excess = _hr_table(_cox(excess, self.alpha)).iloc[1].drop("term").to_dict()
        beta = float(linear.params_["score"])
        expected = breslow_expected(f, np.exp(beta * (f["_score"] - f["_score"].mean())))
        g = pd.DataFrame({"segment": f["segment"], "o": f["event"], "e": expected})
        sums = g.groupby("segment").sum()
        return _oe(sums["o"], sums["e"], self.alpha).set_index(sums.index)

    def to_dict(self) -> dict:
        """JSON-safe result: column, thresholds, reference, summary, per_point, satisfied_excess."""
        return {"column": self.column, "thresholds": self.thresholds, "reference": self.reference,
                "n_left_out": self.n_left_out,
                "summary": to_records(self.summary.reset_index()),
                "per_point": json_safe(self.per_point),
                "satisfied_excess": json_safe(self.satisfied_excess)}


class SegmentAnalysis:
    """Departure rates and hazard ratios by the levels of one categorical column.

    Attributes
    ----------
    summary : DataFrame
        Index segment; customers, departures, customer_years, rate, lower, upper,
        hr, hr_lower, hr_upper, p (reference level has hr 1).

    Examples
    --------
    >>> f = pd.DataFrame({"entry": 0.0, "duration": [5.0, 8, 3, 9, 4, 12],
    ...                   "event": [1, 0, 1, 1, 1, 0], "plan": list("aababb")})
    >>> SegmentAnalysis(reference="a").fit(f, "plan").summary["departures"].tolist()
    [2, 2]
    """

    def __init__(self, reference=None, alpha: float = 0.05) -> None:
        self.reference = reference
        self.alpha = alpha

    def fit(self, frame: pd.DataFrame, column: str) -> SegmentAnalysis:
        self.column = column
        rates = departure_rates(frame, column, self.alpha)
        rates["segment"] = rates["segment"].astype(str)
        hrs = segment_hazard_ratios(frame, column, self.reference, self.alpha)
        self.reference = hrs["reference"].iloc[0]
        hrs = hrs.drop(columns="reference").set_index("segment")
        hrs = hrs.add_prefix("hr_").rename(columns={"hr_hr": "hr"})
        self.summary = rates.set_index("segment").join(hrs)
        return self

    def to_dict(self) -> dict:
        return {"column": self.column, "reference": self.reference,
                "summary": to_records(self.summary.reset_index())}


def analyse_segments(data: StudyData, thresholds: Sequence[float] = (2, 4),
                     alpha: float = 0.05) -> dict:
    """Run the satisfaction and categorical-segment analyses the data allows.

    Returns the ``segments`` entry of results.json: ``{"satisfaction": dict or None,
    "by_column": {column: dict}, "skipped": {column: reason}}``.
    """
    frame = customer_frame(data)
    out: dict = {"satisfaction": None, "by_column": {}, "skipped": {}}
    score = data.roles.get("satisfaction")
    if score:
        try:
            out["satisfaction"] = SatisfactionAnalysis(thresholds, alpha=alpha).fit(
                frame, score).to_dict()
        except AnalysisError as exc:
            out["skipped"][score] = str(exc)
    for col in data.roles.get("segments", []):
        try:
            out["by_column"][col] = SegmentAnalysis(alpha=alpha).fit(frame, col).to_dict()
        except AnalysisError as exc:
            log.warning("segments: %s skipped: %s", col, exc)
            out["skipped"][col] = str(exc)
    return out


# --------------------------------------------------------------------------- loyalty penalty
def _tenure_snapshots(customers: pd.DataFrame, as_of: pd.Timestamp, step: float) -> pd.DataFrame:
    """Every ``step`` months of each customer's tenure up to its exit, as dated rows.

    ``_row`` is the position of the snapshot's customer in ``customers``.
    """
    span = _months(exit_date(customers, as_of) - customers["start_date"]).clip(lower=0)
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


def plot_loyalty(result: LoyaltyPenalty, ax=None):
    """Bar chart of the mean and median % above the new-customer price by tenure band.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> snaps = pd.DataFrame({"customer_id": ["a", "b"], "tenure": [0.0, 30.0],
    ...                       "pct_above": [0.0, 30.0]})
    >>> plot_loyalty(LoyaltyPenalty().fit(snaps)).get_ylabel()
    '% above the new-customer price'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.4, 1.9))
    s = result.summary
    x = np.arange(len(s))
    ax.bar(x - 0.2, s["mean_pct_above"], width=0.4, label="mean")
    ax.bar(x + 0.2, s["median_pct_above"], width=0.4, label="median")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, s.index, rotation=0)
    ax.set_xlabel("tenure")
    ax.set_ylabel("% above the new-customer price")
    ax.legend(frameon=False)
    return ax


def plot_departure_rates(table: pd.DataFrame, ax=None):
    """Departure rate per 100 customer-years with its limits, one point per segment.

    ``table`` is a ``summary`` of :class:`SatisfactionAnalysis` or :class:`SegmentAnalysis`,
    or the same read back from results.json (a ``segment`` column instead of the index).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> t = pd.DataFrame({"rate": [5.0, 8.0], "lower": [3.0, 6.0], "upper": [7.0, 11.0]},
    ...                  index=pd.Index(["a", "b"], name="segment"))
    >>> plot_departure_rates(t).get_xlabel()
    'departures per 100 customer-years'
    """
    import matplotlib.pyplot as plt

    if "segment" in getattr(table, "columns", []):
        table = table.set_index("segment")  # records read back from results.json
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 0.6 + 0.3 * len(table)))
    y = np.arange(len(table))
    err = [table["rate"] - table["lower"], table["upper"] - table["rate"]]
    ax.errorbar(table["rate"], y, xerr=err, fmt="o", capsize=3)
    ax.set_yticks(y, [str(i) for i in table.index])
    ax.set_xlabel("departures per 100 customer-years")
    return ax
