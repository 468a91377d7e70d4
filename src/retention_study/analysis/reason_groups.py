"""Stated exit reasons mapped to reason groups (price, competitor, attention, other).

Free text is matched against :data:`DEFAULT_REASON_GROUPS` (or a config's own groups)
in order, the first group with a match winning; a file's own reason codes are listed
with the group each falls in (:func:`recorded_categories`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

from retention_study.errors import ConfigError

#: Reason group -> regular expressions (case-insensitive), tried in this order; the
#: first group with a match wins, so "cheaper offer from a competitor" counts as price.
DEFAULT_REASON_GROUPS: dict[str, list[str]] = {
    "price": [
        r"pri[cj]s", r"pric(e|es|ing)\b", r"expensive", r"too dear", r"\bcost", r"cheaper",
        r"goedkoper", r"te duur", r"\bduur(der)?\b", r"tarie[fv]", r"korting", r"discount",
        r"charge", r"\bbill", r"\bfees?\b", r"afford", r"money", r"\bgeld\b", r"verhoging",
        r"bespar", r"saving",
    ],
    "competitor": [
        r"competit", r"concurrent", r"switch", r"overgestapt", r"overstap",
        r"(other|another|new) (provider|supplier|company|vendor)",
        r"andere (aanbieder|leverancier|partij)", r"better (offer|deal|device)",
        r"beter(e)? (aanbod|aanbieding)",
    ],
    "attention": [
        r"attention", r"aandacht", r"no ?one (called|contacted|reached)", r"nobody",
        r"never (heard|called|contacted)", r"service", r"support", r"\bcontact",
        r"bereikba", r"klantenservice", r"ignored", r"not? appreciat", r"waardering",
        r"(niet|nooit) (gebeld|benaderd|gehoord)", r"complain", r"klacht", r"rude",
        r"onvriendelijk", r"attitude", r"wachttijd", r"waiting", r"expertise",
        r"relatie", r"relationship",
    ],
    "other": [
        r"moved", r"move[ds]? (away|abroad)", r"relocat", r"verhuis", r"deceased",
        r"overleden", r"no longer need", r"niet meer nodig", r"bankrupt", r"faillis",
        r"closed", r"gestopt", r"retire", r"pensioen",
        # an explicit "other" / "don't know" is a stated reason, not an unmapped one
        r"^\W*(other|others|overig(e)?|anders|unknown|onbekend|n/?a)\W*$",
        r"don'?t know", r"weet (ik )?niet",
    ],
}
NOT_STATED = "not stated"
OTHER = "other"


# --------------------------------------------------------------------------- mapping
def _compile(groups: Mapping[str, Sequence[str]]) -> list[tuple[str, re.Pattern]]:
    if not isinstance(groups, Mapping) or not groups:
        raise ConfigError("study.reason_groups must map a group name to a list of patterns")
    out = []
    for name, patterns in groups.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        try:
            out.append((str(name), re.compile("|".join(f"(?:{p})" for p in patterns), re.I)))
        except re.error as exc:
            raise ConfigError(f"study.reason_groups.{name}: bad pattern ({exc})") from None
    return out


def map_reasons(reasons, groups: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Map raw exit reasons to reason groups.

    Parameters
    ----------
    reasons : array-like of str
        Free text or category codes; missing = not stated.
    groups : mapping, optional
        Group -> regular expressions (case-insensitive), tried in order.
        None uses :data:`DEFAULT_REASON_GROUPS`.

    Returns
    -------
    DataFrame
        ``reason`` (the raw text), ``group`` (a group name, ``"other"`` when nothing
        matched, ``"not stated"`` when missing) and ``matched`` (bool: a pattern matched).

    Examples
    --------
    >>> map_reasons(["Te duur!", "no one called me", "Moved abroad", "xyz", None])["group"].tolist()
    ['price', 'attention', 'other', 'other', 'not stated']
    """
    compiled = _compile(DEFAULT_REASON_GROUPS if groups is None else groups)
    raw = pd.Series(reasons, dtype=object).reset_index(drop=True)
    text = raw.where(raw.notna(), "").astype(str).str.strip()
    unique = pd.Series(text.unique())
    # match each distinct wording once, not once per customer
    found = pd.Series(pd.NA, index=unique.index, dtype=object)
    for name, pattern in compiled:
        hit = found.isna() & unique.map(lambda s, p=pattern: p.search(s) is not None)
        found[hit] = name
    lookup = dict(zip(unique, found, strict=True))
    group = text.map(lookup)
    matched = group.notna()
    group = group.where(matched, OTHER).where(text != "", NOT_STATED)
    return pd.DataFrame({"reason": raw, "group": group.astype(str), "matched": matched.values})


def reason_counts(mapped: pd.DataFrame) -> pd.DataFrame:
    """Departures per group and raw wording, with the unmapped ones flagged.

    Examples
    --------
    >>> counts = reason_counts(map_reasons(["price", "Price", "abc"]))
    >>> counts.set_index("group")["departures"].to_dict()
    {'other': 1, 'price': 2}
    """
    stated = mapped[mapped["group"] != NOT_STATED]
    g = stated.assign(unmapped=~stated["matched"]).groupby("group")
    return pd.DataFrame({"departures": g.size(), "unmapped": g["unmapped"].sum().astype(int),
                         "wordings": g["reason"].nunique()}).reset_index()


#: Most recorded categories listed one per row; the rest are summed on one row.
MAX_CATEGORIES = 15


def _first_match(text: str, groups: Mapping[str, Sequence[str]]) -> tuple[str, str] | None:
    """(group, matched words) of the first pattern, in the mapping's order, that matches."""
    for name, patterns in groups.items():
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            hit = re.search(pattern, text, re.I)
            if hit:
                return str(name), hit.group(0).strip() or pattern
    return None


def recorded_categories(reasons, groups: Mapping[str, Sequence[str]] | None = None,
                        limit: int = MAX_CATEGORIES) -> pd.DataFrame:
    """Each recorded reason as written, its count, the group it went to and why.

    The grouping (:func:`map_reasons`) is shown, not hidden: a category that matched a
    keyword names it ("'attitude' matched attention"); one that matched nothing is its
    own row, counted as "other". Beyond ``limit`` wordings the rest are one row.

    Examples
    --------
    >>> t = recorded_categories(["Attitude", "Dissatisfaction", "Price", "Price", None])
    >>> t[["recorded", "departures", "group"]].values.tolist()
    [['Price', 2, 'price'], ['Attitude', 1, 'attention'], ['Dissatisfaction', 1, 'other']]
    >>> t["why"].tolist()[1:]
    ["keyword 'Attitude' (attention)", 'no keyword matched: counted as other']
    """
    groups = DEFAULT_REASON_GROUPS if groups is None else groups
    _compile(groups)  # same errors as the mapping itself
    raw = pd.Series(reasons, dtype=object)
    text = raw[raw.notna()].astype(str).str.strip()
    counts = text[text != ""].value_counts()
    rows = []
    for wording, n in counts.items():
        found = _first_match(wording, groups)
        rows.append({"recorded": wording, "departures": int(n),
                     "group": found[0] if found else OTHER,
                     "why": (f"keyword '{found[1]}' ({found[0]})" if found
                             else f"no keyword matched: counted as {OTHER}"),
                     "matched": found is not None})
    frame = pd.DataFrame(rows, columns=["recorded", "departures", "group", "why", "matched"])
    frame = frame.sort_values(["departures", "recorded"], ascending=[False, True],
                              kind="stable").reset_index(drop=True)
    if len(frame) > limit:
        rest = frame.iloc[limit:]
        frame = pd.concat([frame.iloc[:limit], pd.DataFrame([{
            "recorded": f"{len(rest)} other wordings", "departures": int(rest["departures"].sum()),
            "group": "several", "why": "see report.ipynb for every wording",
            "matched": bool(rest["matched"].all())}])], ignore_index=True)
    return frame.drop(columns="matched")
