"""Stated exit reasons: cumulative incidence, cause-specific models, stated vs revealed.

A departure's stated reason (free text or a category code) is mapped to a reason
group by regular expressions (``study.reason_groups``; :data:`DEFAULT_REASON_GROUPS`
when None). Departures are then competing risks: leaving over price removes a
customer from the risk of leaving over attention, so the share who left over each
reason by tenure is an Aalen–Johansen cumulative incidence, not one minus a
Kaplan–Meier curve per reason.

"Stated versus revealed" compares what leavers said with what the data shows
about them at their departure (their last episode row): e.g. whether customers
who said "price" had in fact gone longer without contact than those who stayed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.analysis.customers import customer_frame, hr_table, ridge_penalizer
from retention_study.analysis.reason_groups import (
    NOT_STATED,
    OTHER,
    map_reasons,
    reason_counts,
    recorded_categories,
)
from retention_study.analysis.records import json_safe, to_records
from retention_study.data.schema import StudyData, Timeline
from retention_study.errors import AnalysisError
from retention_study.survival import CoxFitter
from retention_study.survival.competing import aalen_johansen

log = logging.getLogger("retention_study")


class CumulativeIncidence:
    """Share of customers who left for each reason group by tenure (competing risks).

    Parameters
    ----------
    horizons : sequence of float
        Tenure months at which :attr:`summary` reads the curves.

    Attributes
    ----------
    cumulative_incidence_ : DataFrame
        Index tenure months, one column per reason group (step function).
    survival_ : Series
        All-cause share still a customer.
    summary : DataFrame
        Index group; departures and the cumulative incidence at each horizon
        (columns ``cif_12``, ``cif_24``, ...; NaN beyond the last observed time).

    Examples
    --------
    >>> ci = CumulativeIncidence(horizons=[2]).fit([1, 2, 2, 3], ["price", "price", "other", None])
    >>> ci.summary["cif_2"].round(2).tolist()
    [0.25, 0.5]
    """

    def __init__(self, horizons: Sequence[float] = (12, 24, 36, 60)) -> None:
        self.horizons = list(horizons)

    def fit(self, durations, causes, entry=None) -> CumulativeIncidence:
        self.cumulative_incidence_, self.survival_ = aalen_johansen(durations, causes, entry)
        cif = self.cumulative_incidence_
        last = float(np.max(np.asarray(durations, float)))
        table = pd.DataFrame(index=cif.columns)
        table.index.name = "group"
        e = 0.0 if entry is None else np.asarray(entry, float)
        at_risk = np.asarray(durations, float) > e  # as in aalen_johansen
        stated = pd.Series(causes, dtype=object).reset_index(drop=True)[at_risk]
        table["departures"] = stated.dropna().astype(str).value_counts()
        for h in self.horizons:
            # read the step function at h (the last jump at or before h)
            at = cif.loc[cif.index <= h].iloc[-1] if h <= last else np.nan
            table[f"cif_{h:g}"] = at
        self.summary = table
        return self

    def curve(self, step: float = 1.0) -> pd.DataFrame:
        """The curves read every ``step`` months (index ``time``), small enough for JSON."""
        cif = self.cumulative_incidence_
        grid = np.arange(0.0, cif.index.max() + step, step)
        read = cif.reindex(cif.index.union(grid)).ffill().loc[grid]
        read.index.name = "time"
        return read

    def to_dict(self) -> dict:
        """JSON-safe: horizons, summary, curve (monthly records: time and one key per group)."""
        return {"horizons": self.horizons, "summary": to_records(self.summary.reset_index()),
                "curve": to_records(self.curve().reset_index())}


# --------------------------------------------------------------------------- per customer
def customer_reasons(data: StudyData, groups: Mapping | None = None) -> pd.DataFrame:
    """:func:`~retention_study.analysis.customers.customer_frame` with the departure's reason group.

    Adds ``reason_group``: the group of a departure (``"not stated"`` without a
    reason) and NaN for customers who stayed, whatever their reason column says.

    Raises
    ------
    AnalysisError
        The data has no exit-reason column.
    """
    frame = customer_frame(data)
    if "exit_reason" not in frame.columns or frame["exit_reason"].isna().all():
        raise AnalysisError("the data records no stated exit reasons")
    mapped = map_reasons(frame["exit_reason"], groups)
    frame["reason_group"] = mapped["group"].where(frame["event"].to_numpy() == 1, np.nan).values
    frame["reason_matched"] = mapped["matched"].values
    return frame


# --------------------------------------------------------------------------- cause-specific Cox
class CauseSpecificCox:
    """One Cox model per reason group; departures for other reasons count as censored.

    Fitted on a Timeline's episodes (time-varying covariates, Efron ties,
    :class:`~retention_study.survival.CoxFitter`): a customer's departure, on its last
    row, is attributed to the customer's reason group.

    Parameters
    ----------
    covariates : list of str, optional
        Default: all of the Timeline's covariates.
    min_departures : int
        Groups with fewer departures are skipped (recorded in ``skipped``).

    Attributes
    ----------
    summary : DataFrame
        ``group``, ``covariate``, ``hr``, ``lower``, ``upper``, ``p``, ``departures``.
    skipped : dict
        Group -> why it was not modelled.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> x = rng.normal(size=300)
    >>> t_p, t_o = rng.exponential(10 / np.exp(0.8 * x)), rng.exponential(10, 300)
    >>> ep = pd.DataFrame({"customer_id": np.arange(300), "start": 0.0,
    ...                    "stop": np.minimum(t_p, t_o), "event": 1, "x": x})
    >>> grp = pd.Series(np.where(t_p < t_o, "price", "other"), index=np.arange(300))
    >>> tl = Timeline(episodes=ep, blocks={"price": ["x"]})
    >>> s = CauseSpecificCox(min_departures=5).fit(tl, grp).summary.set_index("group")
    >>> bool(s.loc["price", "hr"] > 1.6 and s.loc["other", "hr"] < 1.4)  # true HRs 2.23 and 1
    True
    """

    def __init__(self, covariates: Sequence[str] | None = None, min_departures: int = 10,
                 alpha: float = 0.05) -> None:
        self.covariates = covariates
        self.min_departures = min_departures
        self.alpha = alpha

    def fit(self, timeline: Timeline, groups: pd.Series) -> CauseSpecificCox:
        """``groups``: reason group per departed customer, indexed by customer_id."""
        covs = list(self.covariates or timeline.covariates)
        ep = timeline.episodes
        group = ep["customer_id"].map(groups).where(ep["event"] == 1)
        rows, self.skipped = [], {}
        # one copy of the columns the fits read, its event column rewritten per group (the
        # fitter keeps no reference to the frame), and the ridge from the same rows once
        df = ep[["start", "stop", *covs]].copy()
        penalizer = ridge_penalizer(df, covs)
        for name, n in group.value_counts().items():
            if n < self.min_departures:
                self.skipped[name] = f"{n} departures (< {self.min_departures})"
                continue
            # the group's departures are the events, other departures censored
            df["event"] = (group == name) * 1
            try:
                ctv = CoxFitter(ties="efron", penalizer=penalizer,
                                alpha=self.alpha).fit(df, covs)
            except AnalysisError as exc:
                self.skipped[name] = f"model did not converge ({exc})"
                continue
            rows.append(hr_table(ctv).rename(columns={"term": "covariate"}).assign(
                group=name, departures=int(n)))
        cols = ["group", "covariate", "hr", "lower", "upper", "p", "departures"]
        self.summary = pd.concat(rows, ignore_index=True)[cols] if rows else pd.DataFrame(
            columns=cols)
        return self

    def to_dict(self) -> dict:
        return {"summary": to_records(self.summary), "skipped": dict(self.skipped)}


# --------------------------------------------------------------------------- stated vs revealed
REVEALED_COLUMNS = ("months_since_contact", "loyalty_penalty", "price_increase_recent",
                    "outbound_12m", "inbound_12m")
STAYED = "stayed"


def stated_vs_revealed(timeline: Timeline, groups: pd.Series,
                       columns: Sequence[str] | None = None) -> pd.DataFrame:
    """What the data shows at departure for each stated reason, against stayers.

    Each customer's last episode row is read: for leavers the row of the departure,
    for stayers the row at as_of. Rows are reason groups plus ``"stayed"``.

    Parameters
    ----------
    timeline : Timeline
    groups : Series
        Reason group per departed customer, indexed by customer_id.
    columns : list of str, optional
        Default: those of :data:`REVEALED_COLUMNS` the Timeline has, else its price
        and contact block columns (shape B).

    Returns
    -------
    DataFrame
        ``group``, ``customers``, then per column ``<col>_mean``, ``<col>_median`` and
        ``<col>_p`` (Mann–Whitney test of the group against stayers; NaN for stayers);
        with ``loyalty_penalty``, also ``pct_above_new_price_median``.

    Examples
    --------
    >>> ep = pd.DataFrame({"customer_id": ["a", "a", "b", "c"], "start": [0, 1, 0, 0],
    ...                    "stop": [1, 2, 3, 4], "event": [0, 1, 1, 0],
    ...                    "months_since_contact": [0.0, 9.0, 4.0, 1.0]})
    >>> t = stated_vs_revealed(Timeline(ep, {}), pd.Series({"a": "price", "b": "price"}))
    >>> t.set_index("group")["months_since_contact_mean"].to_dict()
    {'price': 6.5, 'stayed': 1.0}
    """
    ep = timeline.episodes
    cols = [c for c in (columns or REVEALED_COLUMNS) if c in ep.columns]
    if not cols and columns is None:
        # a table's own price and contact columns stand in for the event-log measures
        cols = [c for b in ("price", "contact") for c in timeline.blocks.get(b, [])]
    last = ep.groupby("customer_id", sort=False).tail(1)
    label = last["customer_id"].map(groups).where(last["event"] == 1, STAYED)
    last = last.assign(group=label.fillna(NOT_STATED))
    g = last.groupby("group")
    table = pd.DataFrame({"customers": g.size()})
    for col in cols:
        table[f"{col}_mean"] = g[col].mean()
        table[f"{col}_median"] = g[col].median()
        table[f"{col}_p"] = _against_stayers(last, col)
    if "loyalty_penalty" in cols:
        # the Timeline's penalty is log(price / new-customer price): say it in percent
        table["pct_above_new_price_median"] = 100 * np.expm1(table["loyalty_penalty_median"])
    return table.reset_index()


def _against_stayers(last: pd.DataFrame, col: str) -> pd.Series:
    stayers = last.loc[last["group"] == STAYED, col]
    out = {}
    for name, values in last.groupby("group")[col]:  # a few groups, not customers
        if name == STAYED or len(values) < 2 or len(stayers) < 2:
            out[name] = np.nan
            continue
        out[name] = stats.mannwhitneyu(values, stayers, alternative="two-sided").pvalue
    return pd.Series(out, dtype=float)


# --------------------------------------------------------------------------- all of it
def analyse_reasons(data: StudyData, timeline: Timeline | None = None,
                    groups: Mapping | None = None, min_departures: int = 10,
                    alpha: float = 0.05) -> dict:
    """The ``reasons`` entry of results.json.

    Returns ``{"available": False, "why": ...}`` without stated reasons, else
    ``available``, ``counts`` (per group: departures, unmapped, wordings),
    ``unmapped`` (departures whose wording matched no pattern, counted as "other"),
    ``unmapped_examples``, ``cumulative_incidence``, ``cause_specific`` and
    ``stated_vs_revealed`` (the last two None without a Timeline).
    """
    try:
        frame = customer_reasons(data, groups)
    except AnalysisError as exc:
        return {"available": False, "why": str(exc)}
    leavers = frame[frame["event"] == 1]
    mapped = pd.DataFrame({"reason": leavers["exit_reason"], "group": leavers["reason_group"],
                           "matched": leavers["reason_matched"]})
    unmapped = mapped[(mapped["group"] == OTHER) & ~mapped["matched"]]
    if len(unmapped):
        log.info("reasons: %d departures with an unmapped reason counted as 'other'", len(unmapped))
    ci = CumulativeIncidence().fit(frame["duration"], frame["reason_group"], frame["entry"])
    out = {"available": True, "counts": to_records(reason_counts(mapped)),
           "categories": to_records(recorded_categories(mapped["reason"], groups)),
           "grouping": "built-in" if groups is None else "study.reason_groups",
           "unmapped": int(len(unmapped)),
           "unmapped_examples": unmapped["reason"].astype(str).value_counts().head(10).to_dict(),
           "cumulative_incidence": ci.to_dict(), "cause_specific": None,
           "stated_vs_revealed": None}
    if timeline is not None:
        by_id = frame.set_index(frame["customer_id"].astype(str))["reason_group"].dropna()
        csc = CauseSpecificCox(min_departures=min_departures, alpha=alpha).fit(timeline, by_id)
        out["cause_specific"] = csc.to_dict()
        out["stated_vs_revealed"] = to_records(stated_vs_revealed(timeline, by_id))
    return json_safe(out)
