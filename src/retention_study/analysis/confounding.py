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

from retention_study.analysis.experiment import EXPERIMENTS, experiment_plan
from retention_study.config import LOGGER_NAME
from retention_study.data.schema import CUSTOMER_ID
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
