"""Plain words from the numbers: every sentence of the report is built from results.json.

Each function takes the run's :class:`~retention_study.analysis.results.Results` (what
:func:`retention_study.analysis.pipeline.assemble_results` returns and results.json holds) and
returns Markdown. Nothing here is fixed text about the data: when a number is
missing the sentence says that it could not be measured.

Examples
--------
>>> hr_text({"hr": 1.6, "lower": 1.5, "upper": 1.72})
'1.60 (95% CI 1.50–1.72)'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from retention_study.analysis.evidence import answer_heading, evidence_grade, experiment_sentence
from retention_study.analysis.results import RateBand, Results
from retention_study.analysis.verdict import better_by_aic
from retention_study.episodes import measures
from retention_study.present import wording

QUESTION = ("Do customers leave because of the price they pay, or because nobody "
            "from the company pays attention to them?")

# Every result here is observational (nothing was randomised), so the advice is a test to
# run before a routine is built on it; the test and its size follow (see _tests_to_run).
ACTIONS = {
    "contact": ("Test scheduled contact before rolling it out: departures rise once customers "
                "pass {band} without hearing from you, but that is an association, not a "
                "tested cause."),
    "price": ("Test closing the gap between what loyal and new customers pay before doing it "
              "for everyone: departures go with paying more than newcomers, but that is an "
              "association, not a tested cause."),
    "both": ("Test both levers before rolling either out: departures go with customers "
             "drifting out of touch and with loyal customers paying more than newcomers, but "
             "these are associations, not tested causes."),
    "neither": ("Neither lever moved departures in this data: look elsewhere (service "
                "quality, competition, product fit) before spending on contact programmes "
                "or price cuts."),
    "inconclusive": ("The data cannot yet tell: keep a dated record of every outbound "
                     "contact and every price change (with the new-customer price), and "
                     "run the study again when more departures are on record."),
}


def hr_text(row: dict | None, level: int = 95) -> str:
    """'1.60 (95% CI 1.50–1.72)' for a dict with hr, lower, upper."""
    if not row or row.get("hr") is None:
        return "not measured"
    return f"{row['hr']:.2f} ({level}% CI {row['lower']:.2f}\u2013{row['upper']:.2f})"


def _level(results: Results) -> int:
    return int(round(100 * (1 - float(results.alpha))))


def _headline_effects(results: Results) -> list[dict]:
    """The contact effect first, then the price effects, as the verdict reads them.

    Each row's ``phrase`` is the measure vocabulary's (:mod:`retention_study.episodes.measures`),
    so no code name or 'per SD' reaches the page.
    """
    order = list(measures.HEADLINE_ORDER)
    units, defs = wording.units_of(results), results.definitions
    effects = [{**e, "phrase": measures.phrase(e, units, defs)}
               for e in results.effects if e.get("block") in ("contact", "price")]
    return sorted(effects, key=lambda e: order.index(e["covariate"])
                  if e["covariate"] in order else len(order))


def _times(hr: float) -> str:
    if hr >= 1:
        return f"{hr:.2f} times as often"
    return f"{(1 - hr) * 100:.0f}% less often"


def effect_sentence(row: dict, level: int = 95) -> str:
    """'Customers left 1.60 times as often for every 6 months without contact (95% CI ...).'

    An interval that contains 1 is said to be indistinguishable from no effect, so a
    direction ("less often") is never read as a finding on its own.

    Examples
    --------
    >>> effect_sentence({"covariate": "x", "phrase": "per unit", "hr": 0.78, "lower": 0.41,
    ...                  "upper": 1.48, "p": 0.45}).endswith("not clearly different from no effect.")
    True
    """
    ci = f"{level}% CI {row['lower']:.2f}\u2013{row['upper']:.2f}"
    phrase = row.get("phrase") or f"per {row.get('unit', row['covariate'])}"
    text = f"Customers left {_times(row['hr'])} {phrase} ({ci}, {_p_phrase(row['p'])})"
    return text + (", not clearly different from no effect." if _spans_one(row) else ".")


def _spans_one(row: dict) -> bool:
    """The interval includes 1 (no effect), or is missing."""
    lower, upper = row.get("lower"), row.get("upper")
    if lower is None or upper is None or math.isnan(lower) or math.isnan(upper):
        return True
    return lower <= 1.0 <= upper


def _p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _p_phrase(p: float | None) -> str:
    """'p < 0.001' or 'p = 0.034'."""
    text = _p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _worst_best_band(rates: list[RateBand] | None) -> tuple[RateBand, RateBand] | None:
    rows = [r for r in rates or [] if r.customer_years and r.customer_years > 0]
    if len(rows) < 2:
        return None
    return rows[0], rows[-1]


def report_header(results: Results) -> str:
    """What the report covers, above the summary: data, source, dates, counts, run facts.

    Examples
    --------
    >>> text = report_header(Results.from_dict({"coverage": {"label": "acme", "source": "real", "as_of":
    ...     "2026-06-30", "window_start": "2023-06-30", "window_end": "2026-06-30",
    ...     "customers": 10, "departures": 3, "segment": {"plan": "basic"}, "lag_days": 30,
    ...     "engine": "pandas", "package_version": "0.1.0", "run_date": "2026-07-01"}}))
    >>> text.splitlines()[0][:60]
    '**Data:** acme (real data) · **as of** 2026-06-30 · **observ'
    >>> text.splitlines()[-1]
    '*Engine pandas · retention-study 0.1.0 · run on 2026-07-01*'
    """
    c = results.coverage or {}
    if not c:
        return ""
    source = "simulated data" if c.get("source") == "simulated" else "real data"
    window = (f"{c['window_start']} to {c['window_end']}" if c.get("window_start")
              else f"up to {c.get('window_end')} (tenure only, no calendar dates)")
    segment = ", ".join(f"{measures.humanise(k)} = {', '.join(map(str, v)) if isinstance(v, list) else v}"
                        for k, v in (c.get("segment") or {}).items()) or "all customers"
    facts = [f"**Data:** {c.get('label')} ({source})", f"**as of** {c.get('as_of')}",
             f"**observed** {window}",
             f"**{c.get('customers', 0):,}** customers, **{c.get('departures', 0):,}** departures",
             f"**segment:** {segment}", f"**lag:** {c.get('lag_days', 0)} days"]
    return (" \u00b7 ".join(facts) + "\n\n"
            f"*Engine {c.get('engine')} \u00b7 retention-study "
            f"{c.get('package_version')} \u00b7 run on {c.get('run_date')}*")


def executive_summary(results: Results) -> str:
    """The first screen: question, verdict, three to five key numbers, what to do."""
    level = _level(results)
    lines = ["## Summary", "", f"**The question.** {QUESTION}", "",
             f"{answer_heading(results)} "
             f"{wording.plain_text(results.verdict_sentence, results)}", "",
             "**Key numbers**", ""]
    lines.append(f"- {results.n_customers:,} customers followed for "
                 f"{results.customer_years:,.0f} customer-years; "
                 f"{results.n_departures:,} of them left (or gave notice).")
    blocks = results.blocks
    rows = [r for r in _headline_effects(results) if measures.is_headline(r["covariate"], blocks)]
    for row in (rows or _headline_effects(results))[:3]:
        lines.append(f"- {effect_sentence(row, level)}")
    bands = _worst_best_band(results.rates_by_contact_band)
    if bands:
        first, last = bands
        # the measure counts from joining when a customer was never contacted
        lines.append(f"- Departures per 100 customer-years: {first.rate_per_100:.1f} among "
                     f"customers contacted in the last {first.band}, {last.rate_per_100:.1f} "
                     f"among those last contacted (or, if never, joined) {last.band} ago.")
    loyalty = results.loyalty or {}
    share = _loyal_share(loyalty)
    if share:
        lines.append(f"- {share}")
    what_if = what_if_lines(results)
    if what_if:
        lines += ["", "**What if** (expected departures in the period studied, from the "
                  "fitted model; valid only if its links are cause and effect)", ""] + [
                      f"- {t}" for t in what_if]
    notes = [n for n in (proxy_reading(results), direction_note(results),
                         confounding_note(results)) if n]
    if notes:
        lines += ["", "**Read with care.** " + " ".join(notes)]
    lines += ["", "**What management could do.** " + _action(results), ""]
    return "\n".join(lines)


def _money(x: float) -> str:
    return f"{x:,.0f}"


def what_if_line(rec: dict, level: int = 95) -> str:
    """One lever in plain words: departures, the change with its CI, customers and money.

    Examples
    --------
    >>> what_if_line({"lever": "price", "available": True, "description": "existing "
    ...     "customers pay the new-customer price", "departures_expected": 1000.0,
    ...     "departures_under_lever": 800.0, "change": -0.2, "change_ci_low": -0.25,
    ...     "change_ci_high": -0.15, "customers_kept": 200.0, "revenue_kept": 5000.0,
    ...     "revenue_change": -30000.0})[:60]
    'Price lever (existing customers pay the new-customer price):'
    """
    name = f"{rec['lever'].capitalize()} lever ({rec.get('description', rec['lever'])})"
    if not rec.get("available"):
        return f"{name}: not estimated ({str(rec.get('why') or 'not available').rstrip('.')})."
    change, lo, hi = (rec[k] * 100 for k in ("change", "change_ci_low", "change_ci_high"))
    kept = rec["customers_kept"]
    text = (f"{name}: {rec['departures_under_lever']:,.0f} departures instead of "
            f"{rec['departures_expected']:,.0f} ({change:+.0f}%, {level}% CI {lo:+.0f}% to "
            f"{hi:+.0f}%), {abs(kept):,.0f} customers {'kept' if kept >= 0 else 'lost'}")
    revenue = rec.get("revenue_kept")
    if revenue is not None and not (isinstance(revenue, float) and math.isnan(revenue)):
        text += f", revenue from the months they stay {_money(revenue)}"
        net = rec.get("revenue_change")
        if net is not None and abs(net - revenue) > 0.05 * max(abs(revenue), 1.0):
            text += f" (net of the lower prices: {_money(net)})"
    return text + "."


def what_if_lines(results: Results) -> list[str]:
    """The what-if levers of ``results.what_if``; nothing when none was estimated."""
    records = results.what_if
    if not any(r.get("available") for r in records):
        return []
    level = _level(results)
    return [what_if_line(r, level) for r in records]


def proxy_reading(results: Results) -> str | None:
    """What 'price' and 'contact' stood for when they are snapshot columns of a flat table.

    Examples
    --------
    >>> r = Results.from_dict({"format": "table", "roles": {"price": ["MonthlyCharges"],
    ...      "contact": ["TechSupport"], "controls": ["Contract"], "contact_kind": "outbound"}})
    >>> proxy_reading(r).split(":")[0]
    "'Price' here is MonthlyCharges and 'contact' is TechSupport"
    """
    if results.format != "table":
        return None
    roles = results.roles
    price = ", ".join(roles.get("price") or []) or "nothing"
    contact = ", ".join(roles.get("contact") or []) or "nothing"
    recency = roles.get("contact_recency")
    if recency and roles.get("contact_kind") != "inbound":
        text = (f"'Price' here is {price} and 'contact' is {contact}: single columns of a "
                "snapshot, not dated histories, so they say nothing about when a price "
                f"changed; time since the last contact is {recency['column']} as the table "
                f"records it ({recency['unit']}).")
    else:
        text = (f"'Price' here is {price} and 'contact' is {contact}: single columns of a "
                "snapshot, not dated histories, so they say nothing about when a price "
                "changed or when someone last got in touch, and time since contact cannot "
                "be measured.")
    controls = roles.get("controls") or []
    if controls:
        text += (f" A bill depends on what the customer buys, so the models adjust for "
                 f"{', '.join(controls)}; the price effect is what remains beyond that.")
    if roles.get("contact_kind") == "inbound":
        text += (" The contact column counts contacts the customer started (questions, "
                 "complaints), not the supplier reaching out: an effect there says unhappy "
                 "customers call before they leave, not that the supplier's silence drives "
                 "them away.")
    return text


def direction_note(results: Results) -> str | None:
    """Warn when a price measure clearly goes with FEWER departures.

    "Customers leave over price" predicts the opposite, so a verdict that price
    "explains" departures must not be read as support for it.

    Examples
    --------
    >>> direction_note(Results.from_dict({"alpha": 0.05, "effects": [{"block": "price", "covariate": "Bill",
    ...     "unit": "+1 SD of Bill (3 units)", "hr": 0.5, "lower": 0.4, "upper": 0.6,
    ...     "p": 0.001}]}))[:32]
    'Higher values of bill went with '
    """
    alpha = float(results.alpha)
    rows = [e for e in results.effects if e.get("block") == "price"
            and e.get("upper") is not None and e["upper"] < 1 and e["p"] < alpha]
    if not rows:
        return None
    units = ", ".join(measures.label(str(e["covariate"])) for e in rows)
    return (f"Higher values of {units} went with fewer departures, the opposite of customers "
            "leaving over price. The price measure here likely stands for something else "
            "(what the customer buys, how long they have stayed), so 'price explains "
            "departures' does not mean customers left because they paid too much.")


def _loyal_share(loyalty: dict) -> str | None:
    rows = loyalty.get("summary") or []
    if not rows:
        return None
    last = rows[-1]
    share = last.get("share_paying_more")
    if share is None:
        return None
    return (f"{share * 100:.0f}% of customers in their {last.get('band', 'longest')} tenure "
            f"band pay more than a new customer would "
            f"({last.get('mean_pct_above', float('nan')):.0f}% more on average).")


#: The contact action when contact is a snapshot column: nothing says *when* to call.
SNAPSHOT_CONTACT_ACTION = (
    "Treat contact as a lever to test, not a proven one: here {contact} {goes} "
    "departures, but a single snapshot cannot say when contact should happen or whether it "
    "causes customers to stay. Keep a dated record of every outbound contact and try "
    "scheduled contact on part of the customers to see whether it keeps them.")


def _contact_direction(results: Results) -> str:
    """'goes with fewer' / 'goes with more' from the clearest contact effect, else 'explains'."""
    clear = [e for e in results.effects if e.get("block") == "contact"
             and e.get("hr") is not None and not _spans_one(e)]
    if not clear:
        return "explains"
    hr = min(clear, key=lambda e: e.get("p") if e.get("p") is not None else 1.0)["hr"]
    return "goes with fewer" if hr < 1 else "goes with more"


BACKWARDS_CONTACT_ACTION = (
    "Do not scale up contact on this evidence: here more supplier contact goes with more "
    "departures, not fewer. That usually means contacts are reactions to customers already "
    "on their way out; check how contacts are triggered before drawing a lesson from them.")


def _contact_backwards(results: Results) -> bool:
    """A clear contact effect says attention goes with MORE departures.

    Examples
    --------
    >>> _contact_backwards(Results.from_dict({"effects": [{"covariate": "months_since_contact", "hr": 0.5,
    ...                                  "lower": 0.4, "upper": 0.6}]}))
    True
    """
    for e in results.effects:
        # +1: a ratio above 1 means less attention goes with leaving; -1: more contact does
        name = e.get("covariate")
        sign = measures.expected_direction(name) if measures.block_of(name) == "contact" else 0
        if sign and e.get("hr") is not None and not _spans_one(e):
            return (e["hr"] < 1) == (sign > 0)
    return False


def _action(results: Results) -> str:
    """What management could do; the timing advice only where time since contact was measured.

    Examples
    --------
    >>> _action(Results.from_dict({"verdict": "contact", "roles": {"contact": ["TechSupport"]}}))[:34]
    'Treat contact as a lever to test, '
    """
    verdict = results.verdict
    if results.format == "table" and verdict in ("contact", "price", "both"):
        return _table_action(results)
    if verdict in ("contact", "both") and _contact_backwards(results):
        return BACKWARDS_CONTACT_ACTION
    measured = any(e.get("covariate") == "months_since_contact"
                   for e in results.effects)
    if verdict == "contact" and not measured:
        contact = ", ".join(results.roles.get("contact") or []) or "contact"
        return SNAPSHOT_CONTACT_ACTION.format(contact=contact, goes=_contact_direction(results))
    text = ACTIONS.get(verdict, ACTIONS["inconclusive"])
    text = text.format(band=_risk_threshold(results.rates_by_contact_band))
    return " ".join([text, *_tests_to_run(results, verdict)])


def _tests_to_run(results: Results, verdict: str) -> list[str]:
    """The randomised test of each lever the verdict points at, with its size."""
    blocks = {"contact": ["contact"], "price": ["price"], "both": ["contact", "price"]}
    plans = {e["block"]: e for e in (results.confounding or {}).get("experiments") or []}
    out = []
    for block in blocks.get(verdict, []):
        plan = plans.get(block)
        sentence = experiment_sentence(plan, plan["what"]) if plan else None
        if sentence:
            out.append(sentence)
    return out


INBOUND_CONTACT_ACTION = (
    "Treat a customer's repeated calls as an early warning: here {contact} {goes} "
    "departures. These are contacts the customer started, so follow up on them quickly "
    "and find out what made customers call.")
TABLE_PRICE_ACTION = (
    "Check whether the customers with the highest {price} pay more than they need to "
    "against current offers; a snapshot cannot say whether the bill itself drives "
    "departures, so try a price review on part of them first.")


def _table_action(results: Results) -> str:
    """Actions for a flat table: proxies, so tests to run rather than levers to pull.

    Examples
    --------
    >>> r = Results.from_dict({"verdict": "contact", "format": "table", "effects": [],
    ...      "roles": {"contact": ["Calls"], "contact_kind": "inbound"}})
    >>> _table_action(r)[:46]
    "Treat a customer's repeated calls as an early "
    """
    verdict, roles = results.verdict, results.roles
    parts = []
    if verdict in ("contact", "both"):
        contact = ", ".join(roles.get("contact") or []) or "contact"
        template = (INBOUND_CONTACT_ACTION if roles.get("contact_kind") == "inbound"
                    else SNAPSHOT_CONTACT_ACTION)
        parts.append(template.format(contact=contact, goes=_contact_direction(results)))
    if verdict in ("price", "both"):
        if direction_note(results):
            parts.append("No price action follows: higher bills here go with staying.")
        else:
            price = ", ".join(roles.get("price") or []) or "bills"
            parts.append(TABLE_PRICE_ACTION.format(price=price))
    return " ".join(parts)


def _risk_threshold(bands: list[RateBand] | None) -> str:
    """Where departures start to rise: the lower edge of the first band clearly above the first.

    Examples
    --------
    >>> _risk_threshold([RateBand("0-3 months", 50.0, 5, 10.0, 8.0, 12.0, 40),
    ...                  RateBand("3-6 months", 50.0, 5, 11.0, 9.0, 13.0, 40),
    ...                  RateBand("6-12 months", 50.0, 10, 20.0, 15.0, 25.0, 40)])
    '6 months'
    """
    rows = [r for r in bands or [] if r.rate_per_100 is not None and r.lower is not None]
    if len(rows) < 2:
        return "several months"
    base = rows[0]
    for r in rows[1:]:
        if r.lower > base.upper:
            edge = str(r.band).split("-")[0].rstrip("+").split()[0]
            return f"{edge} months"
    return "several months"


def rates_reading(rates: list[RateBand] | None, what: str) -> str:
    """One paragraph reading out departure rates by band (lowest and highest)."""
    rows = [r for r in rates or [] if r.rate_per_100 is not None and r.customer_years]
    if not rows:
        return f"Departure rates by {what} could not be measured in this data."
    lo = min(rows, key=lambda r: r.rate_per_100)
    hi = max(rows, key=lambda r: r.rate_per_100)
    text = (f"By {what}, departures ranged from {lo.rate_per_100:.1f} per 100 customer-years "
            f"({lo.band}; CI {lo.lower:.1f}\u2013{lo.upper:.1f}) to {hi.rate_per_100:.1f} "
            f"({hi.band}; CI {hi.lower:.1f}\u2013{hi.upper:.1f}).")
    if hi.lower > lo.upper:
        text += " The intervals do not overlap: the difference is larger than chance."
    else:
        text += " The intervals overlap, so this picture alone does not settle it."
    text += (" Each customer's time counts in the band they were in at that moment. These "
             "are raw rates, not adjusted for tenure, plan or the other measure; the hazard "
             "ratios under 'Price and contact, each adjusted for the other' are.")
    return text


def forest_reading(results: Results) -> str:
    """Read the adjusted hazard ratios out, strongest first."""
    level = _level(results)
    rows = _headline_effects(results)
    if not rows:
        return "No price or contact measure could be estimated."
    sentences = [effect_sentence(r, level) for r in rows]
    return ("All effects come from one model that holds the other block and the controls "
            "fixed. " + " ".join(sentences) + " A ratio of 1 means no difference.")


def _num(value: float, digits: int = 3) -> str:
    """A rounded number without a minus sign on zero ('-0.000' reads as a finding).

    Examples
    --------
    >>> _num(-0.0002), _num(-0.0125)
    ('0.000', '-0.013')
    """
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def comparison_reading(results: Results) -> str:
    """The head-to-head: LR tests, AIC, cross-validation."""
    lr = results.lr_tests
    alpha = float(results.alpha)
    parts = []
    for test, added, known in ((lr.contact_given_price, "contact", "price"),
                               (lr.price_given_contact, "price", "contact")):
        if test and test.p is not None:
            verb = "improves it" if test.p < alpha else "does not clearly improve it"
            parts.append(f"Adding {added} to a model that already knows {known} {verb} "
                         f"(likelihood-ratio \u03c7\u00b2 = {test.statistic:.1f}, "
                         f"{test.df:.0f} df, {_p_phrase(test.p)}).")
    aic = {r.model: r.aic for r in results.aic}
    if aic.get("price") is not None and aic.get("contact") is not None:
        better = better_by_aic(aic["price"], aic["contact"])  # the verdict's own rule
        reading = (f"the {better} model fits better" if better
                   else "the two fit about equally well (less than 2 apart)")
        parts.append(f"AIC (lower is better): price model {aic['price']:.1f}, contact model "
                     f"{aic['contact']:.1f}; {reading}.")
    cv = results.cv
    if cv:
        d = {r["metric"]: r for r in cv["differences"]}
        c = d.get("concordance")
        ll = d.get("cv_loglik")
        if ll and ll.get("estimate") is not None:
            parts.append(f"On customers held out of the fit ({cv['k']}-fold cross-validation), "
                         f"the contact model's log-likelihood minus the price model's is "
                         f"{_num(ll['estimate'], 1)} (CI {_num(ll['lower'], 1)} to "
                         f"{_num(ll['upper'], 1)}; positive favours contact)"
                         + (", no clear difference." if ll["lower"] <= 0 <= ll["upper"]
                            else "."))
        if c and c.get("estimate") is not None:
            parts.append(f"Concordance difference (contact minus price): {_num(c['estimate'])} "
                         f"(CI {_num(c['lower'])} to {_num(c['upper'])}).")
    return " ".join(parts) or "The models could not be compared."


#: What a Kaplan-Meier grouping is, by how the column was recorded.
KM_AT_JOINING = ("the year the customer joined, known from the start, so the curves compare "
                 "like with like")
KM_SNAPSHOT = ("as recorded in the data at the snapshot, not necessarily when the customer "
               "joined: customers may have changed it since, so the curves describe the "
               "groups as they are now rather than compare customers from their first day")


def km_reading(km_summary: list[dict], by: str, logrank: dict | None = None) -> str:
    """Median time as a customer per group, what the grouping is, and the log-rank test.

    A column of a customer table is a snapshot (a current bill, TechSupport), never
    called a fact known at joining; only the joining cohort is. Flag levels read yes/no.

    Examples
    --------
    >>> text = km_reading([{"group": "1.0", "customers": 5, "departures": 2,
    ...                     "median_months": None}], "PhoneService")
    >>> "yes: 5 customers" in text, "known when the customer joined" in text
    (True, False)
    """
    rows = [r for r in km_summary if r.get("customers")]
    name = "cohort" if by == "cohort" else measures.humanise(by)
    if not rows:
        return f"No Kaplan–Meier curve by {name}."
    bits = []
    for r in rows:
        med = r.get("median_months")
        med_text = (f"half had left after {med:.0f} months" if med is not None
                    and math.isfinite(med) else "more than half were still customers")
        bits.append(f"{measures.level_word(by, r['group'])}: {r['customers']:,} customers, "
                    f"{r['departures']:,} left, {med_text}")
    what = KM_AT_JOINING if by == "cohort" else KM_SNAPSHOT
    text = (f"By {name} ({what}): " + "; ".join(bits)
            + ". The table under the plot counts customers still followed.")
    test = logrank_reading(logrank, by)
    return f"{text} {test}" if test else text


def logrank_reading(logrank: dict | None, by: str) -> str:
    """The log-rank test beside a Kaplan-Meier comparison, in words.

    Examples
    --------
    >>> logrank_reading({"groups": 2, "statistic": 9.1, "df": 1, "p": 0.0026,
    ...                  "alpha": 0.05, "entry": "late entry respected", "pairs": []}, "plan")[:60]
    'A log-rank test finds the curves by plan differ (χ² = 9.1, 1'
    """
    if not logrank or logrank.get("p") is None:
        return ""
    alpha = float(logrank.get("alpha", 0.05))
    name = "cohort" if by == "cohort" else measures.humanise(by)
    verdict = ("differ" if logrank["p"] < alpha
               else "are not clearly different")
    text = (f"A log-rank test finds the curves by {name} {verdict} (χ² = "
            f"{logrank['statistic']:.1f}, {logrank['df']:.0f} df, {_p_phrase(logrank['p'])}; "
            f"{logrank.get('entry', '')}).").replace("; )", ")")
    pairs = logrank.get("pairs") or []
    if pairs:
        apart = [f"{measures.level_word(by, p['a'])} and {measures.level_word(by, p['b'])}"
                 for p in pairs if p.get("p_holm") is not None and p["p_holm"] < alpha]
        if not apart:
            found = "no pair clearly differs."
        elif len(apart) <= 3:
            found = "; ".join(apart) + " differ."
        else:  # many groups: the count, the list is in results.json
            found = f"{len(apart)} of the {len(pairs)} pairs differ."
        text += f" Pair by pair (Holm-adjusted for {len(pairs)} comparisons): {found}"
    return text


def claims_table(results: Results) -> pd.DataFrame:
    """The claims-checked table for display, code names put into words."""
    rows = results.claims

    def plain(text):
        return wording.plain_text(str(text), results)
    return pd.DataFrame([{"Claim": f"{r.claim}. {r.title}", "Finding": r.status,
                          "Deciding number": plain(r.number), "Why": plain(r.why)}
                         for r in rows])


def _meaning(name: str, definition: str) -> str:
    """A builder definition without its coding ('1 if X is 'Y', else 0 (reference: 'Z')').

    Examples
    --------
    >>> _meaning("TechSupport[Yes]", "1 if TechSupport is 'Yes', else 0 (reference: 'No') "
    ...          "(contact: contact by the supplier, measured once at the snapshot)")
    "customers whose tech support is 'Yes', compared with 'No' (contact: contact by the supplier, measured once at the snapshot)"
    """
    coded = re.match(r"^1 if (?P<col>.+?) is '(?P<level>[^']*)', else 0 \(reference: "
                     r"'(?P<ref>[^']*)'\)(?P<rest>.*)$", definition)
    if coded:
        return (f"customers whose {measures.humanise(coded['col'])} is '{coded['level']}', "
                f"compared with '{coded['ref']}'{coded['rest']}")
    return definition.replace(f"{name} as recorded", f"{measures.humanise(name)} as recorded")


def definitions_table(results: Results) -> pd.DataFrame:
    """What each price / contact / service measure meant in this data; controls on one row.

    A long list of dummy-coded controls is one line ("adjusted for: contract, ..."), so
    the methods section stays short on paper.
    """
    blocks = results.blocks
    defs = results.definitions
    rows = [{"Stands for": measures.BLOCK_NAMES[block],
             "Measure": measures.label(col, defs),
             "Meaning in this data": _meaning(col, defs.get(col, col))}
            for block in ("price", "contact", "service")
            for col in blocks.get(block, [])]
    controls = blocks.get("controls") or []
    if controls:
        columns = list(dict.fromkeys(measures.humanise(re.sub(r"\[.*\]$", "", c))
                                     for c in controls))
        rows.append({"Stands for": measures.BLOCK_NAMES["controls"],
                     "Measure": ", ".join(columns),
                     "Meaning in this data": "adjusted for, so the price and contact effects "
                                             "are compared within the same groups"})
    return pd.DataFrame(rows)


def ledger_table(results: Results) -> pd.DataFrame:
    """The data-quality ledger: rows in, out by reason, analysed."""
    led = results.ledger
    rows = []
    for table, n in (led.get("rows_in") or {}).items():
        rows.append({"Table": table, "Step": "rows in", "Rows": n})
        for e in led.get("excluded", []):
            if e["table"] == table:
                kind = "out of scope" if e["kind"] == "out_of_scope" else "excluded"
                reason = wording.plain_text(str(e["reason"]), results)
                rows.append({"Table": table, "Step": f"{kind}: {reason}", "Rows": -e["rows"]})
        for e in led.get("notes", []):
            if e["table"] == table:
                rows.append({"Table": table, "Step": f"note: {e['reason']}", "Rows": e["rows"]})
        rows.append({"Table": table, "Step": "rows analysed",
                     "Rows": (led.get("rows_analysed") or {}).get(table)})
    return pd.DataFrame(rows)


def guard_reading(results: Results) -> str:
    """Why the notice guard matters: guarded against naive, side by side."""
    robust = results.robustness
    if not robust.get("available") or not robust.get("naive"):
        why = robust.get("why")
        if not why:
            return "No robustness analysis was possible."
        return f"No guard or lag check was possible: {why.rstrip('.')}."
    naive = robust["naive"]
    guarded = {e["covariate"]: e for e in results.effects}
    bits = []
    for e in naive["effects"]:
        g = guarded.get(e["covariate"])
        if g and e.get("block") in ("contact", "price"):
            # point estimates only: the guarded intervals are in the lag table below
            bits.append(f"{measures.label(e['covariate'])[:1].lower()}"
                        f"{measures.label(e['covariate'])[1:]} {g['hr']:.2f} against "
                        f"{e['hr']:.2f}")
    text = ("Customers often get a retention call and a discount right after they give "
            "notice. Those are consequences of the decision to leave, not its causes, so the "
            "study dates each departure at the notice and ignores everything on or after it. "
            + _guard_verdict(naive["verdict"], results.verdict, _flips(naive, guarded)))
    if bits:
        text += " Hazard ratios with the guard against without: " + "; ".join(bits) + "."
    return text


def _flips(naive: dict, guarded: dict) -> list[str]:
    """Measures whose clear effect points the other way without the guard."""
    out = []
    for e in naive["effects"]:
        g = guarded.get(e["covariate"])
        if g and e.get("block") in ("contact", "price") and not _spans_one(e) \
                and not _spans_one(g) and (e["hr"] > 1) != (g["hr"] > 1):
            out.append(f"{g.get('unit', e['covariate'])} (hazard ratio {g['hr']:.2f} with the "
                       f"guard, {e['hr']:.2f} without)")
    return out


def _guard_verdict(naive: str, guarded: str, flips: list[str]) -> str:
    """The verdict with and without the guard; the same label is no 'instead of' itself.

    Examples
    --------
    >>> _guard_verdict("both", "both", ["6 months (hazard ratio 1.52 with the guard, 0.45 "
    ...                 "without)"])[:64]
    'Without that guard the verdict would still read **both**, but th'
    """
    if naive != guarded:
        text = (f"Without that guard the verdict would have been **{naive}** instead of "
                f"**{guarded}**.")
        return text + (" The direction flips for " + "; ".join(flips) + "." if flips else "")
    if flips:
        return (f"Without that guard the verdict would still read **{guarded}**, but the "
                f"direction of the effect flips for " + "; ".join(flips) + ": the same "
                "label for opposite reasons.")
    return f"Without that guard the verdict would also be **{guarded}**."


def lag_table(results: Results) -> pd.DataFrame:
    """Lag sensitivity: the headline hazard ratios and the verdict at each lag."""
    robust = results.robustness
    rows = []
    for lag in robust.get("lags", []):
        row = {"Lag (days)": lag["lag_days"], "Verdict": lag["verdict"]}
        for e in lag["effects"]:
            if e.get("block") in ("contact", "price"):
                row[f"Hazard ratio: {measures.label(e['covariate'])}"] = hr_text(e)
        rows.append(row)
    return pd.DataFrame(rows)


def ph_reading(results: Results) -> str:
    """The proportional-hazards check in plain words."""
    ph = results.ph_check
    tests = ph.get("tests") or []
    alpha = float(results.alpha)
    failing = [t for t in tests if t.get("p") is not None and t["p"] < alpha]
    if not tests:
        return "The proportional-hazards check could not be run."
    if not failing:
        return ("The model assumes each effect is the same early and late in a customer's "
                "life. The check (a score test on Schoenfeld residuals, as R's cox.zph) found no departure from that "
                f"assumption at the {alpha:g} level for any measure.")
    names = ", ".join(measures.label(str(t.get("covariate")), results.definitions)
                      for t in failing)
    text = (f"The check (a score test on Schoenfeld residuals, as R's cox.zph) found that the effect of {names} "
            "changes with tenure, so the single hazard ratio is an average over a customer's "
            "life.")
    remedy = ph.get("remedy")
    if remedy:
        what = str(remedy.get("description", remedy.get("what", "")))
        text += f" {wording.plain_text(what, results)}".rstrip()
    return text


def ph_remedy_table(results: Results) -> pd.DataFrame:
    """The refit that allows for a failed PH check, for the price and contact measures.

    Rows are the price and contact covariates of the refit (and their ``:log_t``
    interaction terms: the change of the log hazard ratio per unit of log tenure).

    Examples
    --------
    >>> r = Results.from_dict({"alpha": 0.05, "blocks": {"contact": ["c"], "price": []},
    ...      "ph_check": {"remedy": {"summary": [
    ...          {"covariate": "c", "coef": 0.0, "se": 0.1, "p": 1.0},
    ...          {"covariate": "c:log_t", "coef": 0.1, "se": 0.05, "p": 0.04},
    ...          {"covariate": "plan[x]", "coef": 1.0, "se": 0.1, "p": 0.0}]}}})
    >>> ph_remedy_table(r)["Measure"].tolist()
    ['c', 'c (change with tenure)']
    """
    remedy = results.ph_check.get("remedy") or {}
    rows = remedy.get("summary") or []
    blocks = results.blocks
    wanted = set(blocks.get("price", [])) | set(blocks.get("contact", []))
    z = _z(results)
    out = []
    for r in rows:
        base = str(r["covariate"]).split(":")[0]
        if base not in wanted or r.get("coef") is None or r.get("se") is None:
            continue
        name = measures.label(base, results.definitions)
        if str(r["covariate"]).endswith(":log_t"):
            name += " (change with tenure)"
        out.append({"Measure": name, "Hazard ratio": math.exp(r["coef"]),
                    "CI low": math.exp(r["coef"] - z * r["se"]),
                    "CI high": math.exp(r["coef"] + z * r["se"]), "p": r["p"]})
    return pd.DataFrame(out)


def _z(results: Results) -> float:
    from scipy import stats

    return float(stats.norm.ppf(1 - float(results.alpha) / 2))


LIMITS = ("Contact was not randomised: customers whom account managers call more may "
          "differ in ways the data does not show, so the hazard ratios are associations "
          "adjusted for the measured controls, not proof of cause.")
REASONS_LIMIT = "Stated exit reasons are what customers said, not necessarily why they left."


def limits_reading(results: Results) -> str:
    """Limits, including what could not be measured and every problem met.

    Examples
    --------
    >>> "Stated exit reasons" in limits_reading(Results.from_dict({"reasons": {"available": False}}))
    False
    """
    items = [LIMITS]
    if results.reasons.get("available"):
        items[0] += " " + REASONS_LIMIT
    items += [f"Not measured: {wording.plain_text(str(u), results)}"
              for u in results.unmeasured]
    # a failed proportional-hazards check is said, with its refit, in its own section
    shown = "Proportional hazards fails for" if results.ph_check.get(
        "remedy") else None
    items += [f"Check that did not pass: {wording.plain_text(str(p), results)}"
              for p in results.problems
              if not (shown and str(p).startswith(shown))]
    if shown and any(str(p).startswith(shown) for p in results.problems):
        items.append("Check that did not pass: proportional hazards (see "
                     "'Proportional-hazards check').")
    return "\n".join(f"- {i}" for i in items)


def bullet(items: Iterable[str]) -> str:
    """A Markdown bullet list."""
    return "\n".join(f"- {i}" for i in items)


def frame(records: list[dict] | None) -> pd.DataFrame:
    """A results.json table (list of records) back into a DataFrame."""
    return pd.DataFrame(records or [])


def table(df: pd.DataFrame, digits: int = 2):
    """An HTML table for the report: no index, numbers rounded, empty cells blank."""
    from IPython.display import HTML

    if df is None or df.empty:
        return HTML("<p><em>Nothing to show.</em></p>")
    shown = df.copy()
    for col in shown.select_dtypes("number").columns:
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:,.{digits}f}"
                                    if not float(v).is_integer() else f"{int(v):,}")
    return HTML(shown.fillna("").to_html(index=False, border=0, classes="rs-table",
                                         escape=True))


def reasons_reading(results: Results) -> str:
    """Stated reasons: how many gave which, and what the data says about the 'price' leavers."""
    r = results.reasons
    if not r.get("available"):
        return f"Stated exit reasons could not be analysed: {r.get('why', 'no reason column')}."
    counts = {c["group"]: c["departures"] for c in r.get("counts") or []}
    total = sum(counts.values())
    if not total:
        return "No departure came with a stated reason."
    shares = ", ".join(f"{g} {n / total:.0%}" for g, n in sorted(counts.items(),
                                                                   key=lambda kv: -kv[1]))
    text = f"Of {total:,} departures with a stated reason: {shares}."
    mapping = ("the built-in keywords" if r.get("grouping", "built-in") == "built-in"
               else "the keywords of the run config (study.reason_groups)")
    text += (f" Recorded reasons were grouped by {mapping}; the table below shows each "
             "recorded reason, the group it was counted in and the keyword that decided it.")
    if r.get("unmapped"):
        text += (f" {r['unmapped']:,} departures gave a reason that matched no keyword and "
                 "count as 'other' (their own rows in the table; study.reason_groups "
                 "changes the grouping).")
    rows = {row.get("group"): row for row in r.get("stated_vs_revealed") or []}
    price, stayed = rows.get("price"), rows.get("stayed")
    if price and stayed and price.get("months_since_contact_mean") is not None:
        text += (f" Customers who said they left over price had gone "
                 f"{price['months_since_contact_mean']:.1f} months without outbound contact "
                 f"when they left, against {stayed['months_since_contact_mean']:.1f} for "
                 f"customers who stayed (at their last observation; rank test "
                 f"{_p_phrase(price.get('months_since_contact_p'))}). This raw comparison "
                 "does not hold tenure fixed; the claims table's check of 'Ask why they "
                 "leave' uses a model that does.")
    return text


def reason_categories_table(results: Results) -> pd.DataFrame:
    """Stated reasons as recorded: each category, its count, its group and why.

    Examples
    --------
    >>> r = Results.from_dict({"reasons": {"available": True, "categories": [{"recorded": "Attitude",
    ...      "departures": 3, "group": "attention", "why": "keyword 'Attitude' (attention)"}]}})
    >>> reason_categories_table(r).columns.tolist()
    ['Recorded reason', 'Departures', 'Counted as', 'Why']
    """
    df = frame(results.reasons.get("categories"))
    if df.empty:
        return df
    return pd.DataFrame({"Recorded reason": df["recorded"], "Departures": df["departures"],
                         "Counted as": df["group"], "Why": df["why"]})


def stated_vs_revealed_table(results: Results) -> pd.DataFrame:
    """Stated reason groups against the measured price and contact at the departure."""
    df = frame(results.reasons.get("stated_vs_revealed"))
    if df.empty:
        return df
    out = pd.DataFrame({"Stated reason": df["group"], "Customers": df["customers"]})
    if "months_since_contact_mean" in df:
        out["Months since last outbound contact (mean)"] = df["months_since_contact_mean"]
    if "loyalty_penalty_mean" in df:
        out["% above new-customer price (mean)"] = (np.exp(df["loyalty_penalty_mean"]) - 1) * 100
    if "log_price_mean" in df:
        out["Price level (mean log)"] = df["log_price_mean"]
    return out


def segments_reading(results: Results) -> str:
    """Satisfaction segments and the 'satisfied customers slip away' claim."""
    seg = results.segments
    sat = seg.get("satisfaction")
    parts = []
    if sat:
        rows = {r["segment"]: r for r in sat.get("summary") or []}
        rates = "; ".join(f"{k} {v['rate']:.1f} per 100 customer-years"
                          for k, v in rows.items() if v.get("rate") is not None)
        parts.append(f"Departure rates by satisfaction: {rates}.")
        s = rows.get("satisfied")
        if s and s.get("oe") is not None:
            ci = {"lower": s["oe_lower"], "upper": s["oe_upper"]}
            parts.append(f"Merely satisfied customers left {s['oe']:.2f} times as often as a "
                         f"smooth trend in the score predicts (their departures against the "
                         f"number the trend expects; {_level(results)}% CI "
                         f"{s['oe_lower']:.2f}\u2013{s['oe_upper']:.2f})"
                         + (", not clearly different from the trend." if _spans_one(ci)
                            else "."))
    for col, res in (seg.get("by_column") or {}).items():
        rows = [r for r in res.get("summary") or [] if r.get("rate") is not None]
        if rows:
            hi = max(rows, key=lambda r: r["rate"])
            lo = min(rows, key=lambda r: r["rate"])
            parts.append(f"By {measures.humanise(col)}: from {lo['rate']:.1f} "
                         f"({measures.level_word(col, lo['segment'])}) to {hi['rate']:.1f} "
                         f"({measures.level_word(col, hi['segment'])}) departures per 100 "
                         "customer-years.")
    for col, why in (seg.get("skipped") or {}).items():
        parts.append(f"{measures.humanise(col)} not analysed: {why}.")
    return " ".join(parts) or "No satisfaction score or segment column in this data."


def loyalty_reading(results: Results) -> str:
    """The loyalty penalty by tenure and its hazard ratio."""
    loyalty = results.loyalty
    if not loyalty:
        return ("What new customers pay is not in this data, so the loyalty penalty could "
                "not be measured.")
    rows = loyalty.get("summary") or []
    text = ""
    if rows:
        first, last = rows[0], rows[-1]
        text = (f"In their {first['band']}, customers paid on average "
                f"{first['mean_pct_above']:.0f}% more than a new customer; in the "
                f"{last['band']} band, {last['mean_pct_above']:.0f}% more, and "
                f"{last['share_paying_more']:.0%} of them paid more.")
    hr = loyalty.get("hazard_ratio")
    if hr and hr.get("hr") is not None:
        row = {**hr, "covariate": "loyalty_penalty", "phrase": hr.get("label")}
        sentence = effect_sentence(row, _level(results))
        text += " With the other factors held fixed, " + sentence[0].lower() + sentence[1:]
    return text.strip()


# --------------------------------------------------------------------------- confounding


def confounding_note(results: Results) -> str | None:
    """Summary warning: customer columns that move a headline effect when adjusted for.

    Examples
    --------
    >>> r = Results.from_dict({"confounding": {"scan": {"flagged": ["plan"], "threshold": 0.1, "rows": [
    ...     {"column": "plan", "covariate": "loyalty_penalty", "hr_before": 1.3,
    ...      "hr_after": 1.05, "change": -0.81, "flagged": True}]}},
    ...      "effects": [{"covariate": "loyalty_penalty", "unit": "+10% above price"}]})
    >>> confounding_note(r)[:60]
    'Adjusting for plan, which the models did not, moves the effe'
    """
    scan = (results.confounding or {}).get("scan") or {}
    flagged = scan.get("flagged") or []
    if not flagged:
        return None
    bits = []
    for col in flagged:
        rows = [r for r in scan.get("rows") or [] if r["column"] == col and r["flagged"]]
        worst = max(rows, key=lambda r: abs(r["change"]))
        bits.append(f"Adjusting for {col}, which the models did not, moves the effect of "
                    f"{effect_words(results, worst['covariate'])} from "
                    f"{worst['hr_before']:.2f} to {worst['hr_after']:.2f}")
    names = ", ".join(flagged)
    return ("; ".join(bits) + f". Add {names} to data.controls (or set data.controls: auto) "
            "and read the answer again before acting on it.")


def confounding_reading(results: Results) -> str:
    """Evidence section: how robust the effects are to confounding, in plain words.

    Examples
    --------
    >>> confounding_reading(Results.from_dict({}))
    'The confounding checks could not be run.'
    """
    conf = results.confounding
    if not conf:
        return "The confounding checks could not be run."
    scan = conf.get("scan") or {}
    threshold = float(scan.get("threshold", 0.1))
    parts = [auto_controls_sentence(results)] if auto_controls_sentence(results) else []
    scanned = scan.get("scanned") or []
    flagged = scan.get("flagged") or []
    if scanned:
        found = (f"{', '.join(flagged)} changed at least one hazard ratio by more than "
                 f"{threshold:.0%}." if flagged else
                 f"None changed a hazard ratio by more than {threshold:.0%}.")
        parts.append(f"Each customer column the models did not adjust for ({', '.join(scanned)}) "
                     f"was added to the final model in turn. {found}")
    else:
        parts.append("No other customer column was available to check for confounding.")
    for col, why in (scan.get("skipped") or {}).items():
        parts.append(f"{col} was not checked ({why}).")
    evs = [e for e in conf.get("e_values") or [] if e.get("e_value_ci") and e["e_value_ci"] > 1]
    if evs:
        top = max(evs, key=lambda e: e["e_value_ci"])
        parts.append(
            f"E-value: to explain away the effect of {effect_words(results, top['covariate'])}"
            f" (hazard ratio "
            f"{top['hr']:.2f}), an unmeasured factor would have to go with both that exposure "
            f"and leaving about {top['e_value']:.2f}-fold (risk-ratio scale), and "
            f"{top['e_value_ci']:.2f}-fold to bring the end of its interval nearer 1 to no "
            "effect. The smaller these numbers, the less it would take.")
    return " ".join(parts)


def auto_controls_sentence(results: Results) -> str | None:
    """Which columns ``data.controls: auto`` added (None when controls were listed).

    Examples
    --------
    >>> auto_controls_sentence(Results.from_dict({"roles": {"controls_auto": {"added": ["plan"],
    ...                                                     "scanned": ["plan", "region"]}}}))[:40]
    'data.controls is auto: plan was added as'
    >>> auto_controls_sentence(Results.from_dict({"roles": {"controls_auto": False}})) is None
    True
    """
    auto = results.roles.get("controls_auto")
    if not isinstance(auto, dict):
        return None
    added, scanned = auto.get("added") or [], auto.get("scanned") or []
    if not added:
        return (f"data.controls is auto: no column was added, as none of "
                f"{', '.join(scanned) or 'the customer columns'} changed a headline hazard "
                "ratio by more than 10% when added to the model without controls.")
    verb = "was" if len(added) == 1 else "were"
    return (f"data.controls is auto: {', '.join(added)} {verb} added as control"
            f"{'s' * (len(added) > 1)}, since adding {'it' if len(added) == 1 else 'each'} to "
            "the model without controls changed a headline hazard ratio by more than 10%.")


def grid_reading(results: Results) -> str | None:
    """Methods: what the monthly grid does to short-lived measures (issue: CI coverage).

    Examples
    --------
    >>> grid_reading(Results.from_dict({"format": "events", "timeline_params": {"grid": "month"}}))[:40]
    'Time runs on a grid of tenure months: ea'
    >>> grid_reading(Results.from_dict({"format": "events", "timeline_params": {"grid": "day"}})) is None
    True
    """
    params = results.timeline_params
    if results.format != "events" or params.get("grid") != "month":
        return None
    return ("Time runs on a grid of tenure months: each measure is read at the start of a "
            "tenure month, so a contact or price change in the middle of a month counts from "
            "the next month on. Where such events fall inside months this blurs the "
            "short-lived measures (a recent price increase most, then months since contact): "
            "their effects are understated and their intervals cover the true value less "
            "often than stated (see benchmarks/README.md). study.grid: day reads them on "
            "the day, at several times the computing time.")


def satisfaction_reading(results: Results) -> str | None:
    """Methods: a survey score that is shown by segment but not adjusted for.

    Examples
    --------
    >>> satisfaction_reading(Results.from_dict({"roles": {"satisfaction": "score", "controls": ["plan"]}}))[:36]
    'The survey score (score) is shown by'
    >>> satisfaction_reading(Results.from_dict({"roles": {"satisfaction": "score", "controls": ["score"]}})) is None
    True
    """
    roles = results.roles
    col = roles.get("satisfaction")
    if not col or col in (roles.get("controls") or []):
        return None
    return (f"The survey score ({col}) is shown by segment but not adjusted for. A strong "
            "factor left out of a Cox model pulls the other hazard ratios towards 1 and "
            "narrows their intervals around the wrong value, even when it is unrelated to "
            "price or contact (in the project's simulator, adjusting for the score's levels "
            "is what brings the months-since-contact interval to its stated coverage; see "
            "benchmarks/README.md). If the score was taken before the period studied, add it "
            "to data.controls; a numeric score enters as one slope per point, so a score "
            "whose effect is not a straight line is better recoded as labels.")


def effect_words(results: Results, covariate: str) -> str:
    """A covariate as the manager reads it: the vocabulary's label and its step.

    Examples
    --------
    >>> effect_words(Results.from_dict({"effects": [{"covariate": "MonthlyCharges",
    ...     "unit": "+1 SD of MonthlyCharges (30.1 units)"}]}), "MonthlyCharges")
    'monthly charges (30.1 more)'
    >>> effect_words(Results.from_dict({}), "months_since_contact")
    '6 months without outbound contact'
    """
    if covariate in measures.MEASURES:
        # the study's own measures: their step says what they are ("6 months without ...")
        return measures.MEASURES[covariate].business_unit
    defs = results.definitions
    row = next((e for e in results.effects if e.get("covariate") == covariate),
               {"covariate": covariate})
    step = measures.business_unit(row, wording.units_of(results), defs)
    name = measures.lower_first(measures.label(covariate, defs))
    return f"{name} ({step})" if step else name


def e_value_table(results: Results) -> pd.DataFrame:
    """E-values of the headline effects, for the methods section."""
    rows = (results.confounding or {}).get("e_values") or []
    return pd.DataFrame([{"Measure": effect_words(results, r["covariate"]), "Hazard ratio": r["hr"],
                          "E-value (estimate)": r["e_value"],
                          "E-value (CI limit nearer 1)": r["e_value_ci"],
                          "Risk-ratio approximation": r["transform"]} for r in rows])


def scan_table(results: Results) -> pd.DataFrame:
    """The confounder scan: each unadjusted column and how far it moves each effect."""
    rows = ((results.confounding or {}).get("scan") or {}).get("rows") or []
    return pd.DataFrame([{"Column added": r["column"],
                          "Effect": effect_words(results, r["covariate"]),
                          "HR before": r["hr_before"], "HR after": r["hr_after"],
                          "Change of HR (%)": 100 * r["change"],
                          "Over the threshold": "yes" if r["flagged"] else "no"}
                         for r in rows])


def evidence_methods(results: Results) -> str:
    """Methods: the grade of the evidence, the verdict's test statistics, late entry."""
    grade = results.evidence_grade or evidence_grade(results)
    parts = [f"Grade of evidence: {grade['why']}"]
    statistics = results.verdict_evidence.get("statistics")
    if statistics:
        parts.append(f"The verdict's tests: {statistics}.")
    for extra in (wording.late_entry_reading(results), grid_reading(results),
                  satisfaction_reading(results)):
        if extra:
            parts.append(extra)
    conf = results.confounding or {}
    if conf.get("e_values"):
        parts.append(f"E-values (VanderWeele & Ding 2017) use the risk-ratio approximation "
                     f"'{conf['e_values'][0]['transform']}': {conf['outcome_share']:.0%} of "
                     "the customers left during follow-up (common from 15% on).")
    return " ".join(parts)


def figure_alt(what: str, reading: str, limit: int = 400) -> str:
    """A figure's alt text: what it shows, then the first sentence of its reading.

    Examples
    --------
    >>> figure_alt("Bar chart of departures by band", "Rates rose from 5 to 9. More text.")
    'Bar chart of departures by band. Rates rose from 5 to 9.'
    """
    plain = re.sub(r"[*_`#]", "", reading or "").strip()
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", plain, maxsplit=1)[0] if plain else ""
    text = f"{what.rstrip('.')}. {first}".strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"
