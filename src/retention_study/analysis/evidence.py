"""Grades of evidence, and advice graded by them.

The same hazard ratio means different things depending on what was measured:

- ``dated``: dated event logs with the notice guard: every price change and outbound
  contact has a date and nothing on or after a customer's notice counts. The strongest
  grade an observational study reaches, still not a tested cause;
- ``snapshot``: snapshot proxies in a flat table: a column read once (a bill, an add-on),
  with no dates, so what came first is unknown;
- ``inbound``: contact the customer started ("the customer called us"): it shows who is
  unhappy, not whether the supplier's attention keeps customers.

The headline states the grade; a snapshot or inbound grade never gives a bare "The
answer: contact." None of these grades is an experiment, so the advice proposes a
randomised test (sized by :func:`retention_study.analysis.experiment.experiment_plan`), never a
routine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retention_study.analysis.results import Results

GRADES = {
    "dated": ("dated records, observational",
              "Dated event logs: every price change and outbound contact has a date, each "
              "departure is dated at the notice and nothing on or after a notice counts. "
              "This is the strongest evidence an observational study gives, but it is still "
              "an association adjusted for the measured controls, not a tested cause."),
    "snapshot": ("snapshot proxies, a pointer rather than proof",
                 "Snapshot proxies: price and contact are columns read once in a flat table, "
                 "without dates, so the data cannot say what came first, when a price "
                 "changed or when someone last got in touch."),
    "inbound": ("customer-initiated contact, a pointer rather than proof",
                "Customer-initiated contact: the contact measure counts contacts the customer "
                "started (questions, complaints), which show who is unhappy, not whether the "
                "supplier's attention keeps customers."),
}


def evidence_grade(results: Results) -> dict:
    """The grade of a run's evidence: ``grade``, ``label`` (for the headline) and ``why``.

    Examples
    --------
    >>> from retention_study.analysis.results import Results
    >>> evidence_grade(Results(format="events", timeline_params={"notice_guard": True}))["grade"]
    'dated'
    >>> evidence_grade(Results(format="table", roles={"contact_kind": "inbound"}))["grade"]
    'inbound'
    """
    if results.format == "table":
        inbound = results.roles.get("contact_kind") == "inbound"
        grade = "inbound" if inbound else "snapshot"
    else:
        grade = "dated"
    label, why = GRADES[grade]
    return {"grade": grade, "label": label, "why": why}


def answer_heading(results: Results) -> str:
    """The bold start of the answer paragraph, with the grade of the evidence.

    Examples
    --------
    >>> from retention_study.analysis.results import Results
    >>> answer_heading(Results(verdict="contact", format="events"))
    '**The answer: contact** (evidence: dated records, observational).'
    >>> answer_heading(Results(verdict="contact", format="table"))
    '**What the data suggests: contact** (evidence: snapshot proxies, a pointer rather than proof).'
    """
    grade = evidence_grade(results)
    lead = "The answer" if grade["grade"] == "dated" else "What the data suggests"
    return f"**{lead}: {results.verdict}** (evidence: {grade['label']})."


def experiment_sentence(plan: dict | None, what: str) -> str | None:
    """The randomised test that would settle an observational result, with its numbers.

    ``what`` names the treatment and the eligible customers, e.g. "contact a random half of
    the customers who pass 6 months without contact".

    Examples
    --------
    >>> plan = {"per_quarter": 812.4, "reduction": 0.15, "power": 0.8,
    ...         "departures_needed": 1189, "months_needed": 31.0, "rate_per_month": 0.03}
    >>> experiment_sentence(plan, "contact a random half of them")[:60]
    'To settle it, contact a random half of them: with about 812 '
    """
    if not plan:
        return None
    text = (f"To settle it, {what}: with about {plan['per_quarter']:,.0f} such customers a "
            f"quarter, a {plan['reduction']:.0%} drop in their departures would be detected "
            f"with {plan['power']:.0%} power")
    if plan.get("months_needed") is None:
        return text + (" only after more than 50 years, so this test is not practical at the "
                       "current size; pool it with other business units or test a larger "
                       "change.")
    return text + (f" within {plan['months_needed']:.0f} months "
                   f"({plan['departures_needed']:,} departures needed).")
