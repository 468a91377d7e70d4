"""The study's steps in order, as the study notebook calls them.

Each function is one step the notebook shows; this module only wires the step modules
together and assembles ``results.json``, it computes nothing of its own.

Examples
--------
>>> from retention_study.analysis.pipeline import config_from_parameters
>>> cfg = config_from_parameters("demo", {"as_of": "2026-06-30"}, {"lag_days": 30}, {})
>>> cfg["study"]["lag_days"]
30
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from retention_study import __version__
from retention_study.analysis.after_notice import after_notice_shares
from retention_study.analysis.claims import check_claims
from retention_study.analysis.compare import HeadToHead, Verdict, decide_verdict
from retention_study.analysis.confounding import assess as assess_confounding
from retention_study.analysis.confounding import confounder_scan
from retention_study.analysis.coverage import run_coverage
from retention_study.analysis.descriptives import contact_bands, penalty_bands
from retention_study.analysis.evidence import evidence_grade
from retention_study.analysis.km import KMResult, km_by_group, km_logrank
from retention_study.analysis.loyalty import LoyaltyPenalty
from retention_study.analysis.models import BlockModels
from retention_study.analysis.reasons import analyse_reasons
from retention_study.analysis.records import json_safe
from retention_study.analysis.records import to_records as _records
from retention_study.analysis.results import SCHEMA_VERSION, Claim, Results
from retention_study.analysis.segments import analyse_segments
from retention_study.analysis.whatif import WhatIf
from retention_study.config import LOGGER_NAME, PROJECT_ROOT
from retention_study.data.schema import StudyData, Timeline
from retention_study.episodes.timeline import TimelineBuilder, build_timeline, timeline_options
from retention_study.errors import AnalysisError
from retention_study.notebook import notebook_config

log = logging.getLogger(LOGGER_NAME)

#: Lags (days) of the sensitivity analysis: does the answer hold when covariates are older?
SENSITIVITY_LAGS = (0, 30, 60)


def config_from_parameters(name: str, data: dict, study: dict, report: dict) -> dict:
    """Turn the notebook's papermill parameters back into a checked config.

    Each section given merges with the notebook's own defaults (its parameters cell,
    :func:`retention_study.notebook.notebook_parameters`), then with the package's: a
    partial ``-y '{"data": {"on_invalid": "exclude"}}'`` changes that key only.
    Relative data paths are meant from the project root (where the CLI and the Makefile
    run). JupyterLab starts a kernel in the notebook's own folder, so a relative path
    that does not exist from there is read from the project root instead.
    """
    cfg = notebook_config(name, data, study, report)
    for key in ("customers", "price_events", "contact_events", "path"):
        value = cfg["data"].get(key)
        if isinstance(value, list):
            cfg["data"][key] = [_from_root(v) for v in value]
        elif value:
            cfg["data"][key] = _from_root(value)
    return cfg


def _from_root(spec: str) -> str:
    """``spec`` as given if it exists here (or is absolute), else under the project root."""
    file_part = str(spec).split("::", 1)[0]
    if Path(file_part).is_absolute() or Path(file_part).exists():
        return spec
    candidate = PROJECT_ROOT / file_part
    return str(PROJECT_ROOT / spec) if candidate.exists() else spec


def choose_controls(data: StudyData, cfg: dict) -> StudyData:
    """``data.controls: auto``: adjust for the baseline columns the confounder scan flags.

    The final model is fitted without controls, each customer column is added in turn
    (:func:`retention_study.analysis.confounding.confounder_scan`) and those that change a headline
    hazard ratio by more than 10% become the controls; ``roles["controls_auto"]`` records
    what was added. Any other config is returned unchanged.
    """
    if not data.roles.get("controls_auto"):
        return data
    tl = build_timeline(data, **timeline_options(cfg))
    step = fit_models(tl, cfg, cross_validate=False, check_ph=False)
    scan = confounder_scan(data, step.models, controls=[])
    data.roles["controls"] = list(scan["flagged"])
    data.roles["controls_auto"] = {"added": list(scan["flagged"]), "scanned": scan["scanned"]}
    log.info("controls: auto adds %s", scan["flagged"] or "nothing")
    return data


@dataclass
class ModelStep:
    """The block models, their head-to-head, the what-if levers and the verdict."""

    models: BlockModels
    head_to_head: HeadToHead | None
    verdict: Verdict
    problems: list = field(default_factory=list)
    what_if: WhatIf | None = None


def fit_models(timeline: Timeline, cfg: dict, *, cross_validate: bool = True,
               check_ph: bool = True, data: StudyData | None = None) -> ModelStep:
    """Fit the four block models, cross-validate price against contact, decide.

    A cross-validation that cannot run (too few customers or departures in a fold) is
    reported as a problem and the verdict falls back on the likelihood-ratio tests.
    With ``data`` (the study data the timeline was built from) the what-if levers are
    estimated and the verdict is decided on their business scale.
    """
    s = cfg["study"]
    models = BlockModels(alpha=s["alpha"], min_departures=s["min_departures"],
                         check_ph=check_ph).fit(timeline)
    h2h, problems = None, []
    if cross_validate:
        try:
            h2h = HeadToHead(k=s["cv_folds"], bootstrap=s["bootstrap"], seed=s["seed"],
                             alpha=s["alpha"]).fit(timeline, models)
        except (AnalysisError, ValueError, ZeroDivisionError) as exc:
            problems.append(f"cross-validation could not run: {exc}")
            log.warning("cross-validation skipped: %s", exc)
    what_if = _what_if(data, timeline, models, cfg, problems) if data is not None else None
    kind = cfg["data"]["contact_kind"] if cfg["data"]["format"] == "table" else "outbound"
    verdict = decide_verdict(models, h2h, alpha=s["alpha"], what_if=what_if,
                             equivalence_margin=s["equivalence_margin"], contact_kind=kind)
    return ModelStep(models, h2h, verdict, problems, what_if)


def _what_if(data: StudyData, timeline: Timeline, models: BlockModels, cfg: dict,
             problems: list) -> WhatIf | None:
    """The what-if levers; one that cannot be computed is a problem, not a failed run."""
    s = cfg["study"]
    try:
        return WhatIf(contact_every_months=s["levers"]["contact_every_months"],
                      bootstrap=s["bootstrap"], seed=s["seed"], alpha=s["alpha"]).fit(
            data, timeline, models)
    except (AnalysisError, ValueError, np.linalg.LinAlgError) as exc:
        problems.append(f"the what-if levers could not be computed: {exc}")
        log.warning("what-if skipped: %s", exc)
        return None


def _effects_row(step: ModelStep) -> list[dict]:
    return _records(step.models.effects)


def robustness(data: StudyData, cfg: dict, main: ModelStep | None = None) -> dict:
    """Lag sensitivity (0/30/60 days) and the naive analysis without the notice guard.

    Shape A only: a flat table has no dated events to lag and no notice to guard.
    Each variant is refitted on its own timeline (no cross-validation: the point is
    how the effects and the verdict move). ``main``, the run's own fit, stands in for
    the lag it was built with instead of being fitted a second time. One
    :class:`~retention_study.episodes.timeline.TimelineBuilder` builds every variant, so the
    event tables are sorted once and the lags share their intervals; each variant's
    episodes are freed before the next is built.
    """
    if data.format != "events":
        return {"available": False,
                "why": "a flat table has no dated events, so there is nothing to lag or guard"}
    lags, problems = [], []
    builder = TimelineBuilder(data)
    for lag in SENSITIVITY_LAGS:
        if main is not None and lag == int(cfg["study"]["lag_days"]):
            lags.append({"lag_days": lag, "verdict": main.verdict.label,
                         "effects": _effects_row(main)})
            continue
        try:
            step = fit_models(builder.build(**timeline_options(cfg, lag_days=lag)), cfg,
                              cross_validate=False, check_ph=False)
        except AnalysisError as exc:
            # One variant that cannot be fitted must not sink the main analysis.
            problems.append(f"lag {lag} days could not be analysed: {exc}")
            continue
        lags.append({"lag_days": lag, "verdict": step.verdict.label,
                     "effects": _effects_row(step)})
    try:
        naive_tl = builder.build(**timeline_options(cfg, notice_guard=False))
        naive = fit_models(naive_tl, cfg, cross_validate=False, check_ph=False)
    except AnalysisError as exc:
        problems.append(f"the naive analysis could not be run: {exc}")
        return {"available": bool(lags), "lags": lags, "naive": None, "problems": problems,
                "why": "the naive analysis could not be run"}
    return {"available": True, "lags": lags, "problems": problems,
            "naive": {"verdict": naive.verdict.label, "sentence": naive.verdict.sentence,
                      "effects": _effects_row(naive),
                      "n_departures": naive_tl.n_departures}}


@dataclass
class Descriptives:
    """Descriptive evidence: rates by band, Kaplan-Meier curves, segments, reasons."""

    contact_rates: pd.DataFrame | None
    penalty_rates: pd.DataFrame | None
    km: dict[str, KMResult]
    segments: dict
    reasons: dict
    loyalty: LoyaltyPenalty | None
    after_notice: dict | None
    notes: list = field(default_factory=list)


def _km_groups(data: StudyData) -> list[str]:
    """Baseline columns to draw Kaplan-Meier curves by (never a time-varying exposure)."""
    if data.format == "events":
        return [c for c in ("plan",) if c in data.customers.columns] + ["cohort"]
    return list(data.roles.get("controls", []))[:3]


def describe(data: StudyData, timeline: Timeline, step: ModelStep, cfg: dict) -> Descriptives:
    """Compute the descriptive evidence the report shows next to the models."""
    s, notes = cfg["study"], []
    cols = timeline.episodes.columns
    contact = contact_bands(timeline, alpha=s["alpha"]) if "months_since_contact" in cols else None
    penalty = penalty_bands(timeline, alpha=s["alpha"]) if "loyalty_penalty" in cols else None
    km = {}
    for by in _km_groups(data):
        try:
            km[by] = km_by_group(data, by, observation_start=data.observation_start,
                                 timeline=timeline, alpha=s["alpha"])
        except AnalysisError as exc:
            notes.append(f"Kaplan-Meier by {by} not shown: {exc}")
    loyalty = None
    if data.format == "events" and data.price_events["new_customer_price"].notna().any():
        hr = _loyalty_hr(step)
        try:
            loyalty = LoyaltyPenalty().fit(data, hazard_ratio=hr)
        except AnalysisError as exc:
            notes.append(f"loyalty penalty by tenure not shown: {exc}")
    segments = analyse_segments(data, thresholds=s["satisfaction_thresholds"], alpha=s["alpha"])
    reasons = analyse_reasons(data, timeline, groups=s["reason_groups"],
                              min_departures=max(5, s["min_departures"] // 2), alpha=s["alpha"])
    after = after_notice_shares(data, alpha=s["alpha"]) if data.format == "events" else None
    return Descriptives(contact, penalty, km, segments, reasons, loyalty, after, notes)


def _loyalty_hr(step: ModelStep) -> dict | None:
    eff = step.models.effects
    row = eff[eff["covariate"] == "loyalty_penalty"]
    if row.empty:
        return None
    r = row.iloc[0]
    return {"label": f"per {r['unit']}", "hr": float(r["hr"]), "lower": float(r["lower"]),
            "upper": float(r["upper"]), "p": float(r["p"])}


def _rates(frame: pd.DataFrame | None) -> list | None:
    return None if frame is None else _records(frame)


def confounding(data: StudyData, timeline: Timeline, step: ModelStep) -> dict:
    """The confounder scan, E-values and the randomised tests that would settle the result."""
    return assess_confounding(data, timeline, step.models, timeline.params.get("controls"))


def assemble_results(cfg: dict, data: StudyData, timeline: Timeline, step: ModelStep,
                     desc: Descriptives, robust: dict, confound: dict | None = None) -> Results:
    """Everything a run found (:class:`~retention_study.analysis.results.Results`): the verdict, its
    evidence, the ledger, parameters."""
    m = step.models.to_dict()
    lr = {r["test"]: r for r in m["lr_tests"]}
    results = {
        "schema_version": SCHEMA_VERSION,
        "name": cfg["name"], "package_version": __version__, "format": data.format,
        "coverage": run_coverage(cfg, data, timeline),
        "as_of": cfg["data"]["as_of"], "alpha": cfg["study"]["alpha"],
        "verdict": step.verdict.label, "verdict_sentence": step.verdict.sentence,
        "verdict_rule": step.verdict.rule, "verdict_evidence": step.verdict.evidence,
        "what_if": step.what_if.to_records() if step.what_if is not None else [],
        "n_customers": timeline.n_customers, "n_departures": timeline.n_departures,
        "n_episodes": int(len(timeline.episodes)),
        "customer_years": float(((timeline.episodes["stop"] - timeline.episodes["start"])
                                 .sum()) / 12.0),
        "effects": m["effects"], "hazard_ratios": m["summary"],
        "lr_tests": {"price_given_contact": lr.get("price | contact"),
                     "contact_given_price": lr.get("contact | price"), "all": m["lr_tests"]},
        "aic": m["aic"], "cv": step.head_to_head.to_dict() if step.head_to_head else None,
        "ph_check": {"tests": m["ph_check"], "remedy": m["ph_remedy"]},
        "rates_by_contact_band": _rates(desc.contact_rates),
        "rates_by_penalty_band": _rates(desc.penalty_rates),
        "km": {by: _records(r.summary) for by, r in desc.km.items()},
        "km_logrank": {by: km_logrank(r) for by, r in desc.km.items()},
        "segments": desc.segments, "reasons": desc.reasons,
        "loyalty": desc.loyalty.to_dict() if desc.loyalty is not None else None,
        "after_notice": desc.after_notice, "reversals": None,
        "robustness": robust,
        "naive": (robust.get("naive") or {}).get("effects"),
        "definitions": dict(timeline.definitions), "blocks": dict(timeline.blocks),
        "roles": dict(data.roles), "unmeasured": list(timeline.unmeasured),
        "problems": (list(m["problems"]) + step.problems + desc.notes
                     + list(robust.get("problems", []))),
        "ledger": data.ledger.to_dict(),
        "parameters": {k: cfg[k] for k in ("name", "data", "study")},
        "timeline_params": dict(timeline.params),
        "late_entry": dict(data.late_entry), "confounding": confound,
    }
    results = Results.from_dict(json_safe(results))
    results = replace(results, evidence_grade=evidence_grade(results))
    claims_path = Path(cfg["report"]["claims"])
    if not claims_path.is_file():
        return replace(results, problems=[*results.problems, f"claims file {claims_path} "
                                          "not found: claims not checked"])
    return replace(results, claims=[Claim(**row) for row in
                                    _records(check_claims(results, claims_path))])


def write_results(results: Results, path: str | Path | None) -> Path | None:
    """Write ``results.json`` (nothing when ``path`` is empty: an analyst exploring)."""
    if not path:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results.to_json(), encoding="utf-8")
    log.info("results written to %s", path)
    return path
