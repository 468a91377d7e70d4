"""The satisfaction claim: do unhappy customers leave more than the model expects?

Customers are grouped by their satisfaction score (:func:`satisfaction_segment`);
observed departures per group are set against those a Cox model without satisfaction
expects (:func:`breslow_expected`), so that the groups' other differences are allowed for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from retention_study.analysis.customers import (
    customer_cox,
    departure_rates,
    hr_table,
    poisson_rate,
    segment_hazard_ratios,
)
from retention_study.analysis.records import json_safe, to_records
from retention_study.errors import AnalysisError

SATISFACTION_LEVELS = ("unhappy", "satisfied", "delighted")


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
        linear = customer_cox(base.assign(score=f["_score"]), self.alpha)
        self.per_point = hr_table(linear).iloc[0].drop("term").to_dict()
        excess = base.assign(score=f["_score"], satisfied=(f["segment"] == "satisfied") * 1.0)
        self.satisfied_excess = hr_table(customer_cox(excess, self.alpha)).iloc[1].drop("term").to_dict()
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
