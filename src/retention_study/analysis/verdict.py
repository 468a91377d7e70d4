"""The verdict: which lever matters, in which direction, and by how much.

:func:`decide_verdict` turns the block models, the head-to-head and (for dated event
logs) the what-if levers of :mod:`retention_study.analysis.whatif` into a label and a sentence
in which every number is computed. The decision is on the business scale - how many
departures a lever would change - with the likelihood-ratio tests, AIC and the
cross-validation as supporting evidence; a flat table, which has no history to
rewrite, falls back on the tests and the hazard ratios.

Every block's result carries its direction: for contact, what *more* contact goes
with; for price, what a *higher* price goes with (:data:`DIRECTIONS`). The sentence is
built from small functions (one per clause) so that other parts of the report can
reuse or extend them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retention_study.analysis.records import to_records

VERDICTS = ("price", "contact", "both", "neither", "inconclusive")
HEADLINE = {"contact": ["months_since_contact"],
            "price": ["loyalty_penalty", "log_price", "price_increase_recent"]}
#: What each block's direction is about: more contact, a higher price.
DIRECTIONS = ("raises departures", "lowers departures", "no clear effect",
              "mixed across its measures")
#: Measures whose hazard ratio above 1 means LESS of the block (months WITHOUT contact).
REVERSED = {"months_since_contact"}
#: Which lever moves each block, and whether the lever adds (+1) or takes away (-1) of it.
LEVER_OF = {"contact": ("contact", +1), "price": ("price", -1)}
HR_MARGIN = 1.1  # fallback (no what-if): equivalence margin of the headline hazard ratios


@dataclass
class Verdict:
    """The study's answer: a label, a sentence with its numbers, the evidence and the rule."""

    label: str
    sentence: str
    evidence: dict = field(default_factory=dict)
    rule: str = ""

    def to_dict(self) -> dict:
        return {"label": self.label, "sentence": self.sentence, "evidence": self.evidence,
                "rule": self.rule}


RULE = """Verdict rule (alpha = {alpha}, equivalence margin = {margin:.0%} of departures):
1. For dated event logs, each block's lever is simulated from the final model (see
   "What if"): contact = an outbound contact whenever a customer reaches the lever's
   months without one; price = existing customers pay the new-customer price. Each gives
   the relative change in expected departures with a {level}% bootstrap CI.
2. A block counts when its lever's change CI excludes 0, the block's likelihood-ratio
   test given the other block agrees (Holm-adjusted p < alpha: supporting evidence)
   and the change is not negligible (its {eq_level}% CI, a two one-sided test at alpha, is not
   inside +-margin). A negligible block has its {eq_level}% CI inside +-margin.
3. Both count -> "both", and the sentence says which lever changes more departures when
   the bootstrap CI of the difference of their absolute changes excludes 0.
   One counts -> that one. None counts -> "neither" when both blocks are negligible,
   else "inconclusive".
4. Each block's direction: for contact, what more contact goes with; for price, what a
   higher price goes with ("mixed" when its clearly non-zero measures disagree).
5. A flat table has no dated history to rewrite: steps 1-3 use the Holm-adjusted
   likelihood-ratio tests instead, and "neither" needs the headline hazard ratios' CIs
   inside [1/{hr_margin}, {hr_margin}]. Sensitivity refits (lags, no notice guard) use
   this step too."""


def holm(pvalues: dict) -> dict:
    """Holm step-down adjustment of a few p-values (NaN stays NaN).

    Examples
    --------
    >>> holm({"a": 0.01, "b": 0.04})
    {'a': 0.02, 'b': 0.04}
    >>> holm({"a": 0.03, "b": 0.02})
    {'a': 0.04, 'b': 0.04}
    """
    keys = [k for k, p in pvalues.items() if np.isfinite(p)]
    order = sorted(keys, key=lambda k: pvalues[k])
    m = len(order)
    out = {k: float("nan") for k in pvalues}
    running = 0.0
    for i, k in enumerate(order):  # at most a handful of tests
        running = max(running, min(1.0, (m - i) * pvalues[k]))
        out[k] = running
    return out


# --------------------------------------------------------------------------- directions


def measure_direction(row, alpha: float) -> str:
    """What more of the block goes with, by one measure ('no clear effect' if its CI spans 1).

    Examples
    --------
    >>> measure_direction({"covariate": "months_since_contact", "hr": 1.5, "lower": 1.3,
    ...                    "upper": 1.7, "p": 0.001}, 0.05)
    'lowers departures'
    >>> measure_direction({"covariate": "outbound_12m", "hr": 1.2, "lower": 1.1,
    ...                    "upper": 1.3, "p": 0.001}, 0.05)
    'raises departures'
    """
    if not (row["p"] < alpha) or row["lower"] <= 1.0 <= row["upper"]:
        return "no clear effect"
    up = row["hr"] > 1
    if row["covariate"] in REVERSED:
        up = not up
    return "raises departures" if up else "lowers departures"


def _lever_direction(block: str, change: float) -> str:
    """A lever's change read as the block's direction (the price lever lowers the price)."""
    sign = LEVER_OF[block][1] * np.sign(change)
    return "raises departures" if sign > 0 else "lowers departures"


def block_direction(effects: pd.DataFrame, block: str, alpha: float,
                    lever: dict | None = None) -> str:
    """One of :data:`DIRECTIONS` for a block: its measures and, when clear, its lever.

    Examples
    --------
    >>> eff = pd.DataFrame([{"block": "contact", "covariate": "months_since_contact",
    ...     "hr": 0.7, "lower": 0.6, "upper": 0.8, "p": 0.001}])
    >>> block_direction(eff, "contact", 0.05)
    'raises departures'
    """
    rows = effects[effects["block"] == block]
    clear = {measure_direction(r, alpha) for _, r in rows.iterrows()} - {"no clear effect"}
    if len(clear) > 1:
        return "mixed across its measures"
    if lever is not None and _excludes_zero(lever):
        return _lever_direction(block, lever["change"])
    return clear.pop() if clear else "no clear effect"


def carried_by(effects: pd.DataFrame, block: str, alpha: float) -> list[str]:
    """The measures that carry a block: those clearly different from no effect."""
    rows = effects[effects["block"] == block]
    return [r["covariate"] for _, r in rows.iterrows()
            if measure_direction(r, alpha) != "no clear effect"]


# --------------------------------------------------------------------------- levers


def _excludes_zero(lever: dict) -> bool:
    return bool(lever["change_ci_low"] > 0 or lever["change_ci_high"] < 0)


def lever_status(lever: dict | None, margin: float) -> str:
    """'clear', 'negligible', 'unclear' or 'unavailable' for one what-if record.

    Negligible is tested first: a change whose equivalence interval lies inside
    +-``margin`` is too small to matter even when it excludes 0 (size counts).

    Examples
    --------
    >>> lever_status({"available": True, "change": -0.2, "change_ci_low": -0.25,
    ...     "change_ci_high": -0.15, "change_eq_low": -0.24, "change_eq_high": -0.16}, 0.05)
    'clear'
    >>> lever_status({"available": True, "change": 0.01, "change_ci_low": 0.001,
    ...     "change_ci_high": 0.02, "change_eq_low": 0.002, "change_eq_high": 0.018}, 0.05)
    'negligible'
    """
    if not lever or not lever.get("available"):
        return "unavailable"
    if lever["change_eq_low"] >= -margin and lever["change_eq_high"] <= margin:
        return "negligible"
    return "clear" if _excludes_zero(lever) else "unclear"


def _lever_records(what_if) -> dict:
    if what_if is None:
        return {}
    return {r["lever"]: r for r in to_records(what_if.summary)}


def which_lever_more(what_if, alpha: float) -> dict:
    """Which lever changes more departures: the difference of absolute changes, with CI."""
    rec = _lever_records(what_if)
    draws = what_if.draws
    diff = np.abs(draws["contact"]) - np.abs(draws["price"])
    lo, hi = np.percentile(diff, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    est = abs(rec["contact"]["change"]) - abs(rec["price"]["change"])
    more = "contact" if lo > 0 else "price" if hi < 0 else None
    return {"more": more, "difference": float(est), "lower": float(lo), "upper": float(hi)}


# --------------------------------------------------------------------------- sentences


def _pct(x: float) -> str:
    return f"{abs(x) * 100:.0f}%" if abs(x) >= 0.01 else f"{abs(x) * 100:.1f}%"


def _signed_pct(x: float) -> str:
    text = f"{x * 100:+.0f}%" if abs(x) >= 0.01 else f"{x * 100:+.1f}%"
    return text.replace("-", "\u2212")


def _effect_text(row, alpha: float, level: int) -> str:
    """One measure with its effect, direction and unit (and 'not clear' when it spans 1)."""
    ci = f"{level}% CI {row['lower']:.2f}\u2013{row['upper']:.2f}"
    how = (f"{row['hr']:.2f} times as often" if row["hr"] >= 1
           else f"{(1 - row['hr']) * 100:.0f}% less often")
    text = f"customers left {how} {row['phrase']} ({ci})"
    if measure_direction(row, alpha) == "no clear effect":
        text += ", not clearly different from no effect"
    return text


def lever_sentence(block: str, lever: dict, status: str, margin: float, level: int,
                   confirmed: bool = True) -> str:
    """What the block's lever would do to departures, in plain words and numbers."""
    what = {"contact": "contacting every customer who reaches {m} without hearing from "
                       "the supplier",
            "price": "charging existing customers the new-customer price"}[block]
    what = what.format(m=_months(lever))
    # observational data: the lever's size is the model's, and holds only if the link
    # it found is cause and effect (the advice proposes the test that would settle it)
    what_cap = what[0].upper() + what[1:]
    ci = (f"{level}% CI {_signed_pct(lever['change_ci_low'])} to "
          f"{_signed_pct(lever['change_ci_high'])}")
    if status == "clear":
        verb = "cut" if lever["change"] < 0 else "raise"
        kept = abs(lever["customers_kept"])
        text = (f"If the link the model found is cause and effect, {what} would {verb} "
                f"departures in the period studied by about "
                f"{_pct(lever['change'])} ({ci}), about {kept:,.0f} customers "
                f"{'kept' if lever['change'] < 0 else 'lost'}")
        if not confirmed:
            return (f"{text}, but the {block} block's own test does not confirm a clear "
                    "effect, so this is not counted.")
        return text + "."
    if status == "negligible":
        return (f"{what_cap} would change departures by less than {_pct(margin)} "
                f"(estimate {_signed_pct(lever['change'])}, {ci}): too little to matter.")
    return (f"{what_cap} has no clear effect on departures (estimate "
            f"{_signed_pct(lever['change'])}, {ci}).")


def _months(lever: dict) -> str:
    return f"{float(lever.get('contact_every_months') or 6):g} months"


def measures_sentence(effects: pd.DataFrame, block: str, alpha: float, level: int,
                      counts: bool) -> str:
    """The measures that carry a block (all of them when none is clear on its own)."""
    rows = effects[effects["block"] == block]
    if rows.empty:
        return ""
    carriers = carried_by(effects, block, alpha)
    if not carriers:
        head = _headline(effects, block)
        picked = rows if counts else rows[rows["covariate"] == head["covariate"]]
    else:
        picked = rows[rows["covariate"].isin(carriers)]
    return "; ".join(_effect_text(r, alpha, level) for _, r in picked.iterrows())


def direction_sentence(block: str, direction: str, contact_kind: str = "outbound") -> str:
    """The plain reading of a direction that runs against the practitioners' claim.

    Contact the customer started (``contact_kind="inbound"``) is read as a symptom: it
    says nothing about the supplier's attention either way.
    """
    if block == "contact" and contact_kind == "inbound" and direction != "no clear effect":
        more = "more" if direction == "raises departures" else "less"
        return (f"These are contacts the customer started: customers who got in touch more "
                f"often left {more} often, which reads as a sign of how they fared (a "
                "symptom), not as the supplier's attention, so it says nothing about "
                "whether lack of contact drives departures.")
    if block == "contact" and direction == "raises departures":
        return ("More contact goes with MORE departures here, not fewer. That more likely "
                "means contact is reactive (the supplier calls customers already on their "
                "way out) or that the calls annoy; it is not evidence that lack of contact "
                "drives departures.")
    if block == "price" and direction == "lowers departures":
        return ("Higher prices go with FEWER departures here, the opposite of customers "
                "leaving over price; the price measure likely stands for something else "
                "(what customers buy, how long they have stayed).")
    return ""


def block_name(block: str, direction: str, carriers: list[str], names: dict) -> str:
    """'lack of contact' only when months without contact clearly go with more departures."""
    if block == "contact" and names["contact"] == "lack of contact":
        if direction == "lowers departures" and "months_since_contact" in carriers:
            return "lack of contact"
        return "contact"
    return names[block]


def conclusion_sentence(label: str, info: dict, names: dict, more: dict | None,
                        contact_kind: str = "outbound") -> str:
    """The one-line answer; a wrong direction or an unclear measure is never 'explains'."""
    if label == "both":
        text = (f"Both {info['price']['name']} and {info['contact']['name']} matter for "
                f"departures")
        if more and more.get("more"):
            other = "price" if more["more"] == "contact" else "contact"
            lo, hi = sorted((abs(more["lower"]), abs(more["upper"])))
            text += (f"; the {more['more']} lever changes more departures than the {other} "
                     f"lever, by {abs(more['difference']) * 100:.0f} percentage points "
                     f"(CI {lo * 100:.0f} to {hi * 100:.0f})")
        elif more is not None:
            text += "; neither lever clearly changes more departures than the other"
        return text + "."
    if label in ("price", "contact"):
        other = "price" if label == "contact" else "contact"
        b = info[label]
        linked = f"{_capital(b['name'])} is linked to departures more clearly than {names[other]}"
        if not b["carriers"]:
            return (f"{linked}, but none of its measures is clearly different from no effect "
                    "on its own.")
        if b["direction"] == "mixed across its measures":
            return f"{linked}, but its measures point in opposite directions."
        if label == "contact" and contact_kind == "inbound":
            return f"{linked}; it counts contacts the customer started, not the supplier's."
        if direction_sentence(label, b["direction"]):
            return f"{linked}, in the opposite direction to the claim."
        return f"{_capital(b['name'])} explains departures better than {names[other]}."
    if label == "neither":
        return (f"Neither {names['price']} nor {names['contact']} changes departures enough "
                f"to matter.")
    return (f"The data cannot tell whether {names['price']} or {names['contact']} explains "
            f"departures.")


# --------------------------------------------------------------------------- the rule


def _headline(effects: pd.DataFrame, block: str):
    rows = effects[effects["block"] == block]
    for name in HEADLINE[block]:
        if (rows["covariate"] == name).any():
            return rows[rows["covariate"] == name].iloc[0]
    return rows.iloc[0] if len(rows) else None


def _lr_p(block_models, test: str) -> float:
    row = block_models.lr_tests.set_index("test").loc[test]
    return float(row["p"])


#: AICs closer than this do not tell the price and contact models apart.
AIC_SEPARATION = 2.0


def better_by_aic(aic_price: float, aic_contact: float) -> str | None:
    """The block whose model has the lower AIC, or None when they are within 2.

    The one home of the rule "AICs within 2 do not separate"; the verdict decides with
    it and the report words it.

    Examples
    --------
    >>> better_by_aic(100.0, 90.0), better_by_aic(100.0, 98.5), better_by_aic(90.0, 100.0)
    ('contact', None, 'price')
    """
    gap = float(aic_price - aic_contact)
    if abs(gap) <= AIC_SEPARATION:
        return None
    return "contact" if gap > 0 else "price"


def _which_explains_more(head_to_head, block_models) -> tuple[str | None, str]:
    d = head_to_head.differences.set_index("metric").loc["cv_loglik"]
    cv = (f"cross-validated log-likelihood difference contact minus price {d['estimate']:.1f} "
          f"(CI {d['lower']:.1f} to {d['upper']:.1f})")
    if d["lower"] > 0:
        return "contact", cv
    if d["upper"] < 0:
        return "price", cv
    more, text = _aic_only(block_models)
    return more, f"{cv}; {text}"


def _aic_only(block_models):
    aic = block_models.aic.set_index("model")["aic"]
    gap = float(aic["price"] - aic["contact"])
    return better_by_aic(aic["price"], aic["contact"]), f"AIC price minus contact {gap:.1f}"


def _block_names(block_models) -> dict:
    """How the sentence names each block: the study's measures, or the proxy columns."""
    blocks = block_models.blocks
    names = {"price": "price", "contact": "lack of contact"}
    if blocks.get("contact") and "months_since_contact" not in blocks["contact"]:
        names["contact"] = "the contact measure (" + ", ".join(blocks["contact"]) + ")"
    proper = {"loyalty_penalty", "log_price", "price_increase_recent"}
    if blocks.get("price") and not proper & set(blocks["price"]):
        names["price"] = "the price measure (" + ", ".join(blocks["price"]) + ")"
    return names


def decide_verdict(block_models, head_to_head=None, alpha: float = 0.05,
                   margin: float = HR_MARGIN, *, what_if=None,
                   equivalence_margin: float = 0.05,
                   contact_kind: str = "outbound") -> Verdict:
    """Decide whether price, lack of contact, both or neither explains departures.

    The rule is :data:`RULE` (also returned as ``Verdict.rule``): with a fitted
    :class:`~retention_study.analysis.whatif.WhatIf` whose levers are available, the business
    scale (each lever's change in departures, ``equivalence_margin`` = the share of
    departures too small to matter) with the Holm-adjusted likelihood-ratio tests as
    supporting evidence; without one, the tests and the hazard ratios (``margin`` > 1 on
    the headline hazard ratios).

    Parameters
    ----------
    block_models : BlockModels
    head_to_head : HeadToHead, optional
        Cross-validation; "which explains more" in the fallback (else AIC).
    alpha : float
    margin : float
        Fallback equivalence margin of the headline hazard ratios.
    what_if : WhatIf, optional
    equivalence_margin : float
        Relative change in departures within which a lever does not matter (0.05 = 5%).
    contact_kind : {"outbound", "inbound"}
        Who started the contact the contact block measures (a flat table's mapping).

    Returns
    -------
    Verdict

    Examples
    --------
    >>> from retention_study.analysis.compare import _example_timeline
    >>> from retention_study.analysis.models import BlockModels
    >>> decide_verdict(BlockModels().fit(_example_timeline())).label
    'contact'
    """
    level = round(100 * (1 - block_models.alpha))
    raw = {"price": _lr_p(block_models, "price | contact"),
           "contact": _lr_p(block_models, "contact | price")}
    adjusted = holm(raw)
    sig = {b: bool(adjusted[b] < alpha) for b in ("price", "contact")}
    names = _block_names(block_models)
    measured = {b: bool(block_models.blocks.get(b)) for b in ("price", "contact")}
    eff = block_models.effects
    levers = _lever_records(what_if)
    use_levers = all(levers.get(b, {}).get("available") for b in ("contact", "price"))
    heads = {b: _headline(eff, b) for b in ("contact", "price")}
    evidence = {"p_price_given_contact": raw["price"], "p_contact_given_price": raw["contact"],
                "p_price_given_contact_holm": adjusted["price"],
                "p_contact_given_price_holm": adjusted["contact"],
                "alpha": alpha, "margin": margin, "equivalence_margin": equivalence_margin,
                "measured": measured, "basis": "what-if levers" if use_levers else "tests",
                "headline_effects": to_records(pd.DataFrame([r for r in heads.values()
                                                           if r is not None]))}
    info = {}
    for b in ("contact", "price"):
        lever = levers.get(b) if use_levers else None
        status = lever_status(lever, equivalence_margin) if lever else None
        # a lever's direction only when the block's own test confirms it
        confirmed = lever if status == "clear" and sig[b] else None
        direction = block_direction(eff, b, alpha, confirmed)
        carriers = carried_by(eff, b, alpha)
        info[b] = {"direction": direction, "carriers": carriers,
                   "name": block_name(b, direction, carriers, names),
                   "status": status, "lever": lever, "confirmed": sig[b]}
    if use_levers:
        label, more = _lever_label(info, sig, what_if, alpha, evidence)
    else:
        label, more = _test_label(info, sig, measured, heads, margin, block_models,
                                  head_to_head, evidence)
    evidence["directions"] = {b: i["direction"] for b, i in info.items()}
    evidence["carried_by"] = {b: i["carriers"] for b, i in info.items()}
    evidence["lever_status"] = {b: i["status"] for b, i in info.items()}
    evidence["contact_kind"] = contact_kind
    sentence = compose_sentence(label, info, names, more, eff, alpha, level,
                                equivalence_margin, measured, use_levers, evidence)
    rule = RULE.format(alpha=alpha, margin=equivalence_margin, level=level,
                       eq_level=round(100 * (1 - 2 * alpha)), hr_margin=margin)
    return Verdict(label, sentence, evidence, rule)


def _lever_label(info, sig, what_if, alpha, evidence):
    counts = {b: info[b]["status"] == "clear" and sig[b] for b in info}
    evidence["counts"] = counts
    if counts["contact"] and counts["price"]:
        more = which_lever_more(what_if, alpha)
        evidence["explains_more"] = more["more"]
        evidence["lever_difference"] = more
        return "both", more
    if counts["contact"] or counts["price"]:
        return ("contact" if counts["contact"] else "price"), None
    if all(info[b]["status"] == "negligible" for b in info):
        return "neither", None
    return "inconclusive", None


def _test_label(info, sig, measured, heads, margin, block_models, head_to_head, evidence):
    evidence["counts"] = dict(sig)
    if sig["price"] and sig["contact"]:
        more, how = (_which_explains_more(head_to_head, block_models) if head_to_head
                     else _aic_only(block_models))
        evidence["explains_more"] = more
        return "both", {"more": more, "how": how}
    if sig["price"] or sig["contact"]:
        return ("contact" if sig["contact"] else "price"), None
    rows = pd.DataFrame([r for r in heads.values() if r is not None])
    inside = bool(len(rows)) and bool(((rows["lower"] >= 1 / margin)
                                       & (rows["upper"] <= margin)).all())
    evidence["headlines_within_margin"] = inside
    return ("neither" if inside and all(measured.values()) else "inconclusive"), None


def compose_sentence(label, info, names, more, eff, alpha, level, margin, measured,
                     use_levers, evidence) -> str:
    """Answer first, then each block's business-scale finding, its direction and measures."""
    kind = evidence.get("contact_kind", "outbound")
    parts = [_conclusion(label, info, names, more, use_levers, margin, kind)]
    for b in ("contact", "price"):
        if use_levers:
            parts.append(lever_sentence(b, info[b]["lever"], info[b]["status"], margin, level,
                                        info[b]["confirmed"]))
        parts.append(direction_sentence(b, info[b]["direction"], kind))
        counts = bool(evidence.get("counts", {}).get(b))
        text = measures_sentence(eff, b, alpha, level, counts)
        if text:
            parts.append(_capital(text) + ".")
    if not use_levers:
        parts.append(_tests_clause(label, evidence, more, measured, eff))
    # the tests' statistics are for the methods section, not the manager's answer
    evidence["statistics"] = _statistics(evidence)
    return " ".join(p for p in parts if p)


def _conclusion(label, info, names, more, use_levers, margin, contact_kind) -> str:
    if label == "both" and not use_levers:
        who = {"contact": info["contact"]["name"], "price": info["price"]["name"],
               None: "neither clearly"}[more["more"]]
        return (f"Both {info['price']['name']} and {info['contact']['name']} explain "
                f"departures; {who} explains more.")
    if label == "neither" and use_levers:
        return (f"Neither {names['price']} nor {names['contact']} changes departures by more "
                f"than {_pct(margin)}: both levers' effects lie within \u00b1{_pct(margin)}.")
    return conclusion_sentence(label, info, names, more if use_levers else None, contact_kind)


def _statistics(evidence: dict) -> str:
    """The Holm-adjusted tests (and how 'which explains more' was decided), for the methods."""
    text = (f"likelihood-ratio p = {_p_text(evidence['p_contact_given_price_holm'])} for "
            f"contact given price, {_p_text(evidence['p_price_given_contact_holm'])} for "
            "price given contact, Holm-adjusted")
    how = evidence.get("explains_more_how")
    return f"{text}; {how}" if how else text


def _tests_clause(label, evidence, more, measured, eff) -> str:
    """The fallback's plain words (a flat table): what was not measured, or the margin."""
    if label == "both" and more:
        evidence["explains_more_how"] = more["how"]
    missing = [b for b, ok in measured.items() if not ok]
    if label in ("price", "contact"):
        other = "price" if label == "contact" else "contact"
        return f"{other.capitalize()} was not measured in this data." if missing else ""
    if label == "neither":
        m = evidence["margin"]
        return f"Both hazard ratios above lie within {1 / m:.2f}\u2013{m:.2f}."
    if label == "inconclusive":
        rows = pd.DataFrame(evidence["headline_effects"])
        if missing:
            verb = "were" if len(missing) > 1 else "was"
            return f"{_capital(' and '.join(missing))} {verb} not measured in this data."
        if len(rows) and rows[["lower", "upper"]].notna().all().all():
            widest = float(np.exp(np.abs(np.log(rows[["lower", "upper"]].to_numpy(float)))
                                  .max()))
            return f"Effects up to a hazard ratio of {widest:.2f} are not ruled out."
        return "The final model gave no hazard ratios."
    return ""


def _p_text(p: float) -> str:
    """A p-value for the sentence; a test that could not be run says so, not 'nan'."""
    return f"{p:.2g}" if p is not None and np.isfinite(p) else "not computed"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
