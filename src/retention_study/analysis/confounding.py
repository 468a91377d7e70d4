"""Confounding, said out loud: what the hazard ratios would need to be explained away.

Three things a manager should know before acting on an observational hazard ratio:

- :func:`confounder_scan`: for each customer column the models did *not* adjust for, how
  much adding it as a control moves each headline effect (a change-in-estimate scan). A
  column that moves one by more than :data:`SCAN_THRESHOLD` (the business-unit hazard
  ratio changes by more than 10%, up or down) is named in the summary, and
  ``data.controls: auto`` adds such baseline columns. The ratio scale is used because a
  relative change of a log hazard ratio near 0 is noise.
- :func:`e_value`: VanderWeele & Ding's E-value, the minimum strength of association (on
  the risk-ratio scale) an unmeasured factor would need with both the exposure and leaving
  to explain the effect away. A hazard ratio is first turned into an approximate risk ratio:
  unchanged when leaving is rare by the end of follow-up (< 15% of customers), else by the
  square-root transform ``RR = (1 - 0.5**sqrt(HR)) / (1 - 0.5**sqrt(1/HR))`` (VanderWeele
  2017, for a common outcome).
- :func:`experiment_plan`: the randomised test that would settle it, sized with Schoenfeld's
  formula for the log-rank test from the eligible customers per quarter and their
  departure rate in this data.

References: VanderWeele T.J., Ding P. (2017), Sensitivity analysis in observational research:
introducing the E-value, Ann Intern Med 167:268-274; Schoenfeld D.A. (1983), Sample-size
formula for the proportional-hazards regression model, Biometrics 39:499-503.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.config import LOGGER_NAME
from retention_study.data.schema import CUSTOMER_ID, DAYS_PER_MONTH
from retention_study.errors import AnalysisError

log = logging.getLogger(LOGGER_NAME)

#: A column that changes a headline business-unit hazard ratio by more than this is flagged.
SCAN_THRESHOLD = 0.10
#: Leaving by the end of follow-up is "common" above this share (VanderWeele & Ding).
COMMON_OUTCOME = 0.15
#: Columns of the customers file that are not baseline traits (dates, outcome, reasons).
NOT_CANDIDATES = {CUSTOMER_ID, "start_date", "end_date", "notice_date", "churned",
                  "exit_reason", "duration_days", "event"}
MAX_LEVELS = 30  # a column with more distinct text values is an identifier, not a trait
#: The randomised test: departures cut by 15%, 80% power, two-sided 5% test, 1:1.
EXPERIMENT = {"reduction": 0.15, "power": 0.80, "alpha": 0.05, "share_treated": 0.5}


# --------------------------------------------------------------------------- E-values


def risk_ratio_from_hr(hr: float, common: bool) -> float:
    """Approximate risk ratio of a hazard ratio (VanderWeele 2017).

    Examples
    --------
    >>> risk_ratio_from_hr(1.5, common=False)
    1.5
    >>> round(risk_ratio_from_hr(1.5, common=True), 4)
    1.3238
    """
    if not common:
        return float(hr)
    root = math.sqrt(hr)
    return (1 - 0.5 ** root) / (1 - 0.5 ** (1 / root))


def e_value_rr(rr: float) -> float:
    """E-value of a risk ratio: ``RR + sqrt(RR * (RR - 1))`` after flipping RR < 1.

    Examples
    --------
    >>> round(e_value_rr(1.5), 4)
    2.366
    >>> e_value_rr(1.0)
    1.0
    """
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = 1 / rr if rr < 1 else rr
    return float(rr + math.sqrt(rr * (rr - 1)))


def e_value(hr: float, lower: float, upper: float, common: bool) -> dict:
    """E-values of a hazard ratio and of its CI limit nearer 1 (1 when the CI spans 1).

    Examples
    --------
    >>> ev = e_value(1.5, 1.2, 1.9, common=False)
    >>> round(ev["point"], 3), round(ev["ci_limit"], 3)
    (2.366, 1.69)
    >>> e_value(1.1, 0.9, 1.3, common=False)["ci_limit"]
    1.0
    """
    point = e_value_rr(risk_ratio_from_hr(hr, common))
    if lower <= 1 <= upper:
        limit = 1.0
    else:
        near = lower if hr > 1 else upper
        limit = e_value_rr(risk_ratio_from_hr(near, common))
    return {"point": point, "ci_limit": limit,
            "transform": "square root (common outcome)" if common else "none (rare outcome)"}


def e_values(effects: pd.DataFrame, share_left: float) -> pd.DataFrame:
    """E-values of the price and contact effects (business-unit hazard ratios)."""
    common = share_left >= COMMON_OUTCOME
    rows = []
    for r in effects.itertuples():
        if r.block not in ("contact", "price") or not np.isfinite(r.hr):
            continue
        ev = e_value(float(r.hr), float(r.lower), float(r.upper), common)
        rows.append({"block": r.block, "covariate": r.covariate, "unit": r.unit,
                     "hr": float(r.hr), "lower": float(r.lower), "upper": float(r.upper),
                     "e_value": ev["point"], "e_value_ci": ev["ci_limit"],
                     "transform": ev["transform"]})
    return pd.DataFrame(rows, columns=["block", "covariate", "unit", "hr", "lower", "upper",
                                       "e_value", "e_value_ci", "transform"])


# --------------------------------------------------------------------------- confounder scan


def scan_candidates(data, controls: list) -> tuple[list, dict]:
    """Baseline customer columns the models did not adjust for, and those left out (why).

    A flat table keeps only the mapped columns, so there the candidates are the segment and
    satisfaction columns.
    """
    frame = data.customers if data.format == "events" else data.table
    roles = data.roles or {}
    used = set(controls) | set(roles.get("price") or []) | set(roles.get("contact") or [])
    skipped, out = {}, []
    for col in frame.columns:
        if col in NOT_CANDIDATES or col in used:
            continue
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            continue
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            levels = s.nunique(dropna=True)
            if levels > MAX_LEVELS:
                skipped[col] = f"{levels} distinct values: an identifier, not a trait"
                continue
        if s.nunique(dropna=True) < 2:
            skipped[col] = "the same value for every customer"
            continue
        out.append(col)
    return out, skipped


def _candidate_columns(frame: pd.DataFrame, col: str, ids: pd.Series) -> pd.DataFrame:
    """``col`` of the customers, dummy-coded, on the rows of ``ids`` (NaN where missing)."""
    from retention_study.episodes.blocks import dummy_code

    by_id = frame.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)
    values, _, missing = dummy_code(by_id.reset_index(), [col], "customers")
    coded = pd.DataFrame(values, index=by_id.index).astype(float)
    if missing:
        gap = np.any(np.column_stack(list(missing.values())), axis=1)
        coded.loc[gap] = np.nan
    return coded.reindex(ids.to_numpy()).reset_index(drop=True)


def _fit_effects(eps, columns: list, wanted: list, initial=None) -> dict:
    """Log hazard ratios (per unit) of ``wanted`` in an Efron Cox fit of ``columns``.

    ``eps`` is a DataFrame or a prepared :class:`~retention_study.survival.CoxData`.
    An empty dict when the fit fails (it is then left out of the scan, not guessed).
    """
    from retention_study.survival import CoxConvergenceError, CoxFitter, CoxSeparationError

    try:
        fit = CoxFitter(ties="efron").fit(eps, columns, initial=initial)
    except (CoxConvergenceError, CoxSeparationError, AnalysisError, np.linalg.LinAlgError):
        return {}
    return {c: float(fit.params_[c]) for c in wanted if c in fit.params_}


def with_columns(prepared, values: dict):
    """``prepared`` (a CoxData) with more covariate columns on the same rows, not re-indexed.

    The result is what :meth:`CoxData.from_frame <retention_study.survival.CoxData.from_frame>`
    gives for the same episodes with the extra columns (the risk-set index depends only
    on start, stop and event; :meth:`CoxData.with_columns` prepares each column as
    from_frame does), without sorting the rows again or copying the episode table.
    ``values`` maps each new name to one value per input row; the rows must have none
    missing. tests/test_confounding.py checks it against from_frame to the last bit.

    Examples
    --------
    >>> from retention_study.survival import CoxData
    >>> df = pd.DataFrame({"start": 0.0, "stop": [1.0, 2.0, 3.0], "event": [1, 1, 0],
    ...                    "x": [0.5, 1.0, 0.0]})
    >>> wider = with_columns(CoxData.from_frame(df, ["x"]), {"z": np.array([1.0, 0.0, 1.0])})
    >>> wider.columns, wider.x.shape
    (['x', 'z'], (3, 2))
    """
    return prepared.with_columns(values)


def _slim(eps: pd.DataFrame, columns: list) -> pd.DataFrame:
    """The columns a Cox fit of ``columns`` reads (not every column of the episodes)."""
    return eps[["start", "stop", "event", *columns]]


def confounder_scan(data, models, controls: list) -> dict:
    """Refit the final model with each candidate column added; how far each effect moves.

    Parameters
    ----------
    data : StudyData
    models : BlockModels
        Fitted; its final model's rows (``data_``) and columns are refitted.
    controls : list of str
        Customer columns already adjusted for.

    Returns
    -------
    dict
        ``rows``: one record per candidate and headline effect (``hr_before``, ``hr_after``,
        ``change``: ``hr_after / hr_before - 1``); ``flagged``: columns that move an effect
        by more than :data:`SCAN_THRESHOLD`; ``skipped``: columns not scanned, and why.
    """
    frame = data.customers if data.format == "events" else data.table
    eps = models.data_
    final = models.columns["both"]
    heads = models.effects[models.effects["block"].isin(["contact", "price"])]
    cols = list(heads["covariate"])
    candidates, skipped = scan_candidates(data, controls)
    main = models.fits["both"]
    prepared = models.cox_data_ if list(models.cox_data_.columns) == list(final) else None
    if not candidates:
        base = {}
    elif main.fitter is not None and main.penalizer == 0 and prepared is not None:
        # the final model is this very fit (same rows, columns, ties, start): reuse it
        base = {c: float(main.fitter.params_[c]) for c in cols if c in main.fitter.params_}
    else:
        base = _fit_effects(prepared if prepared is not None else _slim(eps, final),
                            final, cols)
    rows, flagged = [], []
    for col in candidates:
        added = _candidate_columns(frame, col, eps[CUSTOMER_ID])
        added = added.loc[:, added.std() > 0]
        if added.empty:
            skipped[col] = "no variation among the customers analysed"
            continue
        names = [f"scan:{c}" for c in added.columns]
        ok = added.notna().all(axis=1).to_numpy()
        before = base
        if ok.all() and prepared is not None:
            # same rows as the final model: its prepared rows, wider (no re-sort, no copy
            # of the episode table)
            work = with_columns(prepared, {n: added[c].to_numpy(float)
                                           for n, c in zip(names, added.columns, strict=True)})
        else:
            # compare on identical rows: the baseline is refitted on them too
            work = pd.concat([_slim(eps, final), added.set_axis(names, axis=1)], axis=1)
            if not ok.all():
                work = work.loc[ok].reset_index(drop=True)
                before = _fit_effects(work, final, cols)
        after = _fit_effects(work, final + names, cols)
        del work
        if not after:
            skipped[col] = "the model with it added could not be fitted"
            continue
        moved = False
        for c in cols:
            if c not in before or c not in after:
                continue
            scale = _scale(models, c)
            hr_before, hr_after = math.exp(before[c] * scale), math.exp(after[c] * scale)
            change = hr_after / hr_before - 1
            big = abs(change) > SCAN_THRESHOLD
            moved |= big
            rows.append({"column": col, "covariate": c, "hr_before": hr_before,
                         "hr_after": hr_after, "change": change, "flagged": big,
                         "rows_used": int(ok.sum())})
        if moved:
            flagged.append(col)
    log.info("confounder scan: %d columns, flagged %s", len(candidates), flagged)
    return {"rows": rows, "flagged": flagged, "skipped": skipped, "scanned": candidates,
            "threshold": SCAN_THRESHOLD}


def _scale(models, covariate: str) -> float:
    """Business-unit scale of a covariate: its HR per unit divided back out of the effect."""
    eff = models.effects.set_index("covariate")
    coef = float(models.fits["both"].fitter.params_[covariate])
    log_hr = math.log(float(eff.loc[covariate, "hr"]))
    return log_hr / coef if abs(coef) > 1e-12 else 1.0


# --------------------------------------------------------------------------- experiment


def schoenfeld_events(reduction: float = 0.15, power: float = 0.80, alpha: float = 0.05,
                      share_treated: float = 0.5) -> int:
    """Departures a two-arm log-rank test needs (Schoenfeld 1983).

    ``D = (z_{1-alpha/2} + z_power)^2 / (p (1 - p) log(HR)^2)`` with ``HR = 1 - reduction``.

    Examples
    --------
    >>> schoenfeld_events(0.15)
    1189
    """
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    p = share_treated
    return int(math.ceil(z ** 2 / (p * (1 - p) * math.log(1 - reduction) ** 2)))


def expected_events(months: float, per_month: float, rate: float, reduction: float) -> float:
    """Expected departures by ``months`` with steady enrolment, half treated.

    Customers enrol at ``per_month`` (half to each arm) and leave at a constant monthly
    hazard ``rate`` (control) or ``rate * (1 - reduction)`` (treated); each is followed
    until they leave or the test ends. A cohort enrolled ``s`` months in has had
    ``1 - exp(-h (M - s))`` of its customers leave, so ``E = sum_arms a/2 * (M - (1 -
    exp(-h M)) / h)``.

    Examples
    --------
    >>> round(expected_events(12, 100, 0.02, 0.15), 2)
    123.81
    """
    total = 0.0
    for h in (rate, rate * (1 - reduction)):
        total += per_month / 2 * (months - (1 - math.exp(-h * months)) / h)
    return total


def months_needed(events: int, per_month: float, rate: float, reduction: float,
                  horizon: float = 600.0) -> float | None:
    """Months until the expected departures reach ``events`` (None beyond ``horizon``)."""
    if per_month <= 0 or rate <= 0:
        return None
    if expected_events(horizon, per_month, rate, reduction) < events:
        return None
    lo, hi = 0.0, horizon
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expected_events(mid, per_month, rate, reduction) < events \
            else (lo, mid)
    return hi


def _calendar_days(timeline, data) -> tuple[np.ndarray, np.ndarray]:
    """Calendar day numbers of each episode's start and stop."""
    eps = timeline.episodes
    start_date = data.customers.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)["start_date"]
    origin = start_date.reindex(eps[CUSTOMER_ID].to_numpy())
    origin = (origin.to_numpy("datetime64[D]").astype(np.int64))
    return (origin + eps["start"].to_numpy(float) * DAYS_PER_MONTH,
            origin + eps["stop"].to_numpy(float) * DAYS_PER_MONTH)


def eligible_flow(timeline, data, measure: str, threshold: float,
                  window_days: int = 365) -> dict | None:
    """Customers who newly pass ``threshold`` of ``measure`` per quarter, and their departure rate.

    A customer becomes eligible on the first episode at or above the threshold after one
    below it (or on entering the study above it). The flow is counted over the last
    ``window_days`` before as_of (today's base, not the average of a growing history); the
    departure rate is departures per customer-month over every episode at or above the
    threshold.
    """
    eps = timeline.episodes
    if measure not in eps or data.format != "events":
        return None
    x = eps[measure].to_numpy(float)
    cust = eps[CUSTOMER_ID].to_numpy()
    above = x >= threshold - 1e-9
    first_row = np.r_[True, cust[1:] != cust[:-1]]
    prev_above = np.r_[False, above[:-1]] & ~first_row
    crossing = above & ~prev_above
    start_day, _ = _calendar_days(timeline, data)
    as_of = np.datetime64(pd.Timestamp(data.as_of).date(), "D").astype(np.int64)
    recent = crossing & (start_day > as_of - window_days) & (start_day <= as_of)
    months = (eps["stop"] - eps["start"]).to_numpy(float)
    exposure = float(months[above].sum())
    departures = int(eps["event"].to_numpy()[above].sum())
    if exposure <= 0:
        return None
    return {"per_quarter": float(recent.sum()) * 91.3 / window_days,
            "rate_per_month": departures / exposure, "departures": departures,
            "customer_months": exposure}


def experiment_plan(timeline, data, measure: str = "months_since_contact",
                    threshold: float = 6.0, **design) -> dict | None:
    """Size of the randomised test: eligible customers a quarter, departures and months needed.

    Examples
    --------
    >>> from retention_study.episodes.timeline import build_timeline, example_data
    >>> data = example_data()
    >>> plan = experiment_plan(build_timeline(data), data)
    >>> plan["departures_needed"]
    1189
    """
    opts = {**EXPERIMENT, **design}
    flow = eligible_flow(timeline, data, measure, threshold)
    if flow is None:
        return None
    need = schoenfeld_events(opts["reduction"], opts["power"], opts["alpha"],
                             opts["share_treated"])
    months = months_needed(need, flow["per_quarter"] / 3, flow["rate_per_month"],
                           opts["reduction"])
    return {"measure": measure, "threshold": threshold, **opts, **flow,
            "departures_needed": need,
            "months_needed": None if months is None else float(math.ceil(months))}


#: The tests a study can propose: (block, measure, threshold, what is done to whom).
EXPERIMENTS = (
    ("contact", "months_since_contact", 6.0,
     "contact a random half of the customers who pass 6 months without contact"),
    ("price", "loyalty_penalty", math.log(1.1),
     "offer a random half of the customers who come to pay 10% or more above the "
     "new-customer price that price"),
)


def assess(data, timeline, models, controls: list | None = None) -> dict:
    """The confounding section of ``results.json``: scan, E-values and the tests to run.

    Examples
    --------
    >>> from retention_study.analysis.models import BlockModels
    >>> from retention_study.episodes.timeline import build_timeline, example_data
    >>> data = example_data()
    >>> tl = build_timeline(data)
    >>> out = assess(data, tl, BlockModels(min_departures=1).fit(tl))
    >>> sorted(out)
    ['e_values', 'experiments', 'outcome_share', 'scan']
    """
    controls = list(controls if controls is not None else (data.roles.get("controls") or []))
    eps = models.data_
    n_cust = max(int(eps[CUSTOMER_ID].nunique()), 1)
    share = float(eps["event"].sum()) / n_cust
    scan = (confounder_scan(data, models, controls) if models.fits["both"].fitter is not None
            else {"rows": [], "flagged": [], "skipped": {}, "scanned": [],
                  "threshold": SCAN_THRESHOLD})
    experiments = []
    for block, measure, threshold, what in EXPERIMENTS:
        plan = experiment_plan(timeline, data, measure, threshold)
        if plan is not None:
            experiments.append({"block": block, "what": what, **plan})
    return {"scan": scan, "e_values": e_values(models.effects, share).to_dict("records"),
            "outcome_share": share, "experiments": experiments}
