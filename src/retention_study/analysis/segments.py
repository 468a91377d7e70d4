"""Departure rates and hazard ratios by segment, with the satisfaction claim beside them.

Everything here works on one row per customer (:func:`customer_frame`): satisfaction
scores and segment columns do not change over a customer's life in either data shape,
so the start/stop episodes of a :class:`~retention_study.data.schema.Timeline` are not needed.

Time is tenure in months; rates are per 100 customer-years. Customers who joined
before ``observation_start`` enter late (left truncation) and only their observed
time counts. The parts: :mod:`.customers` (the frame, rates, Cox fits on it),
:mod:`.satisfaction` (the satisfaction claim), :mod:`.loyalty` (the loyalty penalty);
their figures are in :mod:`retention_study.present.plots`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from retention_study.analysis.customers import (
    customer_frame,
    departure_rates,
    segment_hazard_ratios,
)
from retention_study.analysis.records import to_records
from retention_study.analysis.satisfaction import SatisfactionAnalysis
from retention_study.data.schema import StudyData
from retention_study.errors import AnalysisError

log = logging.getLogger("retention_study")


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
