"""The one vocabulary of measures: what each covariate is called in front of a manager.

Every manager-facing word about a measure (its block, short label, unit, the business
unit its hazard ratio is read per, the direction the practitioners' claim expects,
whether it is a headline number) comes from here; narrative, plots, descriptives,
claims and reasons ask this module instead of keeping their own tables.

The episode builder's measures are listed in :data:`MEASURES`. Columns of a company's
own data (a flat table's ``MonthlyCharges``, a dummy such as ``TechSupport[Yes]``) get
their words from the column name, the config's ``data.units`` (e.g.
``{"MonthlyCharges": "EUR per month"}``) and, for dummies, the reference level.

Examples
--------
>>> MEASURES["months_since_contact"].label
'Time since our last contact'
>>> label("TechSupport[Yes]")
'tech support'
>>> level_word("PhoneService", "1.0"), level_word("plan", "basic")
('yes', 'basic')
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Plain names of the covariate blocks.
BLOCK_NAMES = {
    "price": "Price",
    "contact": "Supplier contact",
    "service": "Customer-initiated contact",
    "controls": "Other factors",
}


@dataclass(frozen=True)
class Measure:
    """One measure: how the report names it and reads its hazard ratio.

    ``direction`` is +1 when the practitioners' claim expects more of the measure to go
    with MORE departures (months without contact, paying above newcomers), -1 when it
    expects fewer (more outbound contacts), 0 when it makes no claim.
    """

    name: str
    block: str
    label: str
    unit: str
    business_unit: str
    phrase: str
    direction: int = 0
    headline: bool = False
    yes_no: bool = False


#: The episode builder's measures (``retention_study.episodes.timeline``), in headline order.
MEASURES = {m.name: m for m in (
    Measure("months_since_contact", "contact", "Time since our last contact", "months",
            "6 months without outbound contact", "for every 6 months without contact",
            direction=1, headline=True),
    Measure("outbound_12m", "contact", "Our contacts in the last year", "contacts",
            "1 more outbound contact in the last 12 months",
            "for each extra outbound contact in the last 12 months", direction=-1),
    Measure("loyalty_penalty", "price", "Price above the new-customer price",
            "% above the new-customer price", "+10% above the new-customer price",
            "for paying 10% more than new customers", direction=1, headline=True),
    Measure("log_price", "price", "Price level", "% of the price", "+10% price level",
            "for a 10% higher price", direction=1, headline=True),
    Measure("price_increase_recent", "price", "Recent price increase", "yes / no",
            "a recent price increase (vs none)", "after a recent price increase",
            direction=1, headline=True, yes_no=True),
    Measure("inbound_12m", "service", "Customer's own contacts in the last year", "contacts",
            "1 more contact by the customer in the last 12 months",
            "for each contact the customer made in the last 12 months"),
)}

#: Order in which the read-out lists effects: contact first, then price, as the verdict.
HEADLINE_ORDER = ("months_since_contact", "outbound_12m", "loyalty_penalty", "log_price",
                  "price_increase_recent")

_DUMMY = re.compile(r"^(?P<col>.+)\[(?P<level>.+)\]$")
_REFERENCE = re.compile(r"reference: '(?P<ref>[^']*)'")
_SD_UNIT = re.compile(r"^\+1 SD of (?P<col>.+) \((?P<sd>[-+0-9.eE]+) units\)$")
_COUNT_UNIT = re.compile(r"^\+1 (?P<col>.+)$")
_YES = {"1", "1.0", "true", "yes", "y", "t"}
_NO = {"0", "0.0", "false", "no", "n", "f"}
_WORDS = {"yes", "no"}  # already words: shown as the data writes them


def humanise(column: str) -> str:
    """A column name as words: 'MonthlyCharges' -> 'monthly charges', 'plan' -> 'plan'.

    Examples
    --------
    >>> humanise("MonthlyCharges"), humanise("Customer service calls"), humanise("SLA_level")
    ('monthly charges', 'customer service calls', 'SLA level')
    >>> humanise("Plan (2024)")
    'Plan (2024)'
    """
    if not re.fullmatch(r"[A-Za-z0-9_ ]+", str(column)):
        return str(column)  # not a plain name: shown exactly as the data has it
    text = str(column).replace("_", " ").strip()
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    words = [w if (w.isupper() and len(w) > 1) else w.lower() for w in text.split()]
    return " ".join(words) or str(column)


def flag_value(value) -> bool | None:
    """True / False for a flag token (1, 1.0, true, yes, y, t and their opposites), else None.

    Examples
    --------
    >>> flag_value("1.0"), flag_value("No"), flag_value("basic")
    (True, False, None)
    """
    token = str(value).strip().lower()
    return True if token in _YES else False if token in _NO else None


def level_word(column: str, value) -> str:
    """A level of a column as a word: 0/1 and true/false flags read 'no' / 'yes'.

    Words the data already uses ('Yes', 'No', 'One year') are kept as written.

    Examples
    --------
    >>> level_word("Partner", 0.0), level_word("x", True), level_word("Contract", "One year")
    ('no', 'yes', 'One year')
    >>> level_word("InternetService", "No")
    'No'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not recorded"
    flag = flag_value(value)
    if flag is None or str(value).strip().lower() in _WORDS:
        return str(value)
    return "yes" if flag else "no"


def is_yes_no(values: Iterable) -> bool:
    """All values are flag tokens (0/1, true/false, yes/no).

    Examples
    --------
    >>> is_yes_no(["0.0", "1.0"]), is_yes_no(["basic", "premium"])
    (True, False)
    """
    tokens = {str(v).strip().lower() for v in values}
    return bool(tokens) and tokens <= (_YES | _NO)


def label(name: str, definitions: Mapping[str, str] | None = None) -> str:
    """The short plain label of a measure or column (never a code name like ``X[Y]``).

    Examples
    --------
    >>> label("loyalty_penalty"), label("Contract[One year]"), label("PhoneService")
    ('Price above the new-customer price', 'contract: One year', 'phone service')
    """
    if name in MEASURES:
        return MEASURES[name].label
    dummy = _DUMMY.match(str(name))
    if dummy:
        # TechSupport[Yes] is "tech support"; Contract[One year] "contract: One year"
        if flag_value(dummy["level"]) is True:
            return humanise(dummy["col"])
        return f"{humanise(dummy['col'])}: {level_word(dummy['col'], dummy['level'])}"
    return humanise(name)


def reference_level(name: str, definitions: Mapping[str, str] | None) -> str | None:
    """The reference level of a dummy, read from the builder's definition."""
    found = _REFERENCE.search((definitions or {}).get(name, ""))
    return found["ref"] if found else None


def _unit_word(column: str, units: Mapping[str, str] | None) -> str:
    unit = (units or {}).get(column)
    return f" {unit}" if unit else ""


def phrase(row: Mapping, units: Mapping[str, str] | None = None,
           definitions: Mapping[str, str] | None = None) -> str:
    """What one step of a hazard ratio means, as it follows 'Customers left 1.4 times as often'.

    ``row`` is an effects row of :func:`retention_study.analysis.models.business_effects`
    (``covariate``, ``unit``, ``phrase``); its scale (the standard deviation of a
    snapshot column) is kept, only the words change.

    Examples
    --------
    >>> phrase({"covariate": "MonthlyCharges", "unit": "+1 SD of MonthlyCharges (30.1 units)"},
    ...        units={"MonthlyCharges": "EUR per month"})
    'for every 30.1 EUR per month more in monthly charges'
    >>> phrase({"covariate": "TechSupport[Yes]", "unit": "TechSupport[Yes] yes vs no"},
    ...        definitions={"TechSupport[Yes]": "1 if TechSupport is 'Yes', else 0 "
    ...                     "(reference: 'No')"})
    'with tech support (against customers without)'
    >>> phrase({"covariate": "Contract[Two year]", "unit": "Contract[Two year] yes vs no"},
    ...        definitions={"Contract[Two year]": "(reference: 'Month-to-month')"})
    "with contract 'Two year' (against 'Month-to-month')"
    """
    name = str(row.get("covariate", ""))
    if name in MEASURES:
        return MEASURES[name].phrase
    dummy = _DUMMY.match(name)
    unit = str(row.get("unit") or "")
    if dummy:
        col, level = dummy["col"], dummy["level"]
        ref = reference_level(name, definitions)
        if flag_value(level) is True and (ref is None or flag_value(ref) is False):
            return f"with {humanise(col)} (against customers without)"
        against = f" (against '{ref}')" if ref is not None else ""
        return f"with {humanise(col)} '{level}'{against}"
    sd = _SD_UNIT.match(unit)
    if sd:
        return (f"for every {float(sd['sd']):.3g}{_unit_word(name, units)} more in "
                f"{humanise(name)}")
    if unit.endswith(" yes vs no"):
        return f"with {humanise(name)} (against customers without)"
    if _COUNT_UNIT.match(unit):
        return f"for each 1{_unit_word(name, units)} more in {humanise(name)}"
    return str(row.get("phrase") or f"per {unit or humanise(name)}")


def business_unit(row: Mapping, units: Mapping[str, str] | None = None,
                  definitions: Mapping[str, str] | None = None) -> str:
    """The step a hazard ratio is read per, in words (axis and table labels).

    Examples
    --------
    >>> business_unit({"covariate": "MonthlyCharges",
    ...                "unit": "+1 SD of MonthlyCharges (30.1 units)"})
    '30.1 more'
    >>> business_unit({"covariate": "months_since_contact"})
    '6 months without outbound contact'
    """
    name = str(row.get("covariate", ""))
    if name in MEASURES:
        return MEASURES[name].business_unit
    unit = str(row.get("unit") or "")
    dummy = _DUMMY.match(name)
    if dummy or unit.endswith(" yes vs no"):
        ref = reference_level(name, definitions)
        return f"against '{ref}'" if ref and dummy and flag_value(ref) is not False \
            else "yes against no"
    sd = _SD_UNIT.match(unit)
    if sd:
        return f"{float(sd['sd']):.3g}{_unit_word(name, units)} more"
    if _COUNT_UNIT.match(unit):
        return f"1{_unit_word(name, units)} more"
    return unit


def block_of(name: str, blocks: Mapping[str, list] | None = None) -> str | None:
    """The block a measure belongs to: the builder's registry, else the run's blocks."""
    if name in MEASURES:
        return MEASURES[name].block
    for block, names in (blocks or {}).items():
        if name in names:
            return block
    return None


def is_headline(name: str, blocks: Mapping[str, list] | None = None) -> bool:
    """A headline number: a builder measure flagged so, or a price/contact column of a table.

    Examples
    --------
    >>> is_headline("outbound_12m"), is_headline("MonthlyCharges", {"price": ["MonthlyCharges"]})
    (False, True)
    """
    if name in MEASURES:
        return MEASURES[name].headline
    return block_of(name, blocks) in ("price", "contact")


def expected_direction(name: str) -> int:
    """+1 / -1 / 0: the direction of the hazard ratio the practitioners' claim expects."""
    return MEASURES[name].direction if name in MEASURES else 0


def lower_first(text: str) -> str:
    """'Time since our last contact' mid-sentence; acronyms ('SLA level') stay."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
