"""A run's code names and recorded facts put into the report's words.

The words of each measure live in :mod:`retention_study.episodes.measures`; this module
applies them to a run's :class:`~retention_study.analysis.results.Results` (its covariate
names, units and definitions), so the vocabulary itself needs no results.
"""

from __future__ import annotations

import re

from retention_study.analysis.results import Results
from retention_study.episodes.measures import label, lower_first, phrase


def code_names(results: Results) -> list[str]:
    """Every covariate name a run produced, longest first (for :func:`plain_text`)."""
    names = set(results.definitions)
    for cols in results.blocks.values():
        names.update(cols)
    names.update(str(e.get("covariate")) for e in results.effects)
    return sorted((n for n in names if n), key=len, reverse=True)


#: Internal pointers that mean nothing on paper, and what to say instead.
POINTERS = {
    "; see the refit in ph_remedy": "; the refit that allows for this is under "
                                    "'Proportional-hazards check'",
    "see the refit in ph_remedy": "the refit is under 'Proportional-hazards check'",
    " x log(tenure) interactions": " allowed to change with tenure",
    "observation_start": "the start of the observation window",
    "as_of": "the as-of date",
    " x log(tenure)": " (change with tenure)",
}


def plain_text(text: str, results: Results) -> str:
    """``text`` with the run's code names and internal pointers put into words.

    Effects' raw phrases ("per SD of MonthlyCharges (30.1 units)") become the
    vocabulary's phrases; covariate names ("TechSupport[Yes]", "loyalty_penalty") their
    labels.

    Examples
    --------
    >>> from retention_study.analysis.results import Results
    >>> r = Results(blocks={"contact": ["TechSupport[Yes]"]})
    >>> plain_text("effect of TechSupport[Yes]; see the refit in ph_remedy.", r)
    "effect of tech support; the refit that allows for this is under 'Proportional-hazards check'."
    """
    if not text:
        return text
    units = units_of(results)
    defs = results.definitions
    for row in results.effects:
        raw = row.get("phrase")
        if raw:
            text = text.replace(str(raw), phrase(row, units, defs))
    for old, new in POINTERS.items():
        text = text.replace(old, new)
    for name in code_names(results):
        if name in text and name != label(name):
            text = re.sub(rf"(?<![\w\[]){re.escape(name)}(?![\w\]])",
                          lambda _m, n=name: lower_first(label(n, defs)), text)
    return text


def units_of(results: Results) -> dict:
    """The ``data.units`` of a run's parameters (column -> unit words), empty when unset."""
    data = results.parameters.get("data") or {}
    return dict(data.get("units") or {})


def late_entry_reading(results: Results) -> str | None:
    """Methods sentence: where the study began following customers, and why.

    Examples
    --------
    >>> from retention_study.analysis.results import Results
    >>> late_entry_reading(Results(late_entry={"source": "detected", "observation_start":
    ...     "2023-06-30", "basis": ["the first recorded departure is on"],
    ...     "customers_before": 120}))[:49]
    'The records begin on 2023-06-30 (the first record'
    >>> late_entry_reading(Results(late_entry={"source": None})) is None
    True
    """
    info = results.late_entry
    start = info.get("observation_start")
    if not start:
        return None
    if info.get("source") == "detected":
        why = " and ".join(info.get("basis") or []) or "the records begin then"
        return (f"The records begin on {start} ({why} that day), although "
                f"{int(info.get('customers_before') or 0):,} customers joined earlier. "
                "Those customers are followed from that day on, at the tenure they had "
                "reached (late entry), so that months in which they could not have been "
                "seen leaving are not counted. Their contact and price history before that "
                "day is not in the records.")
    return (f"Customers who joined before {start} (data.observation_start) are followed from "
            "that day on, at the tenure they had reached (late entry).")
