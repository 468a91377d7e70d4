"""``retention-study init FILE...``: a starter config guessed from a company's files.

One file (or several with the same columns) is a flat table (shape B); three files are
the event logs (shape A: customers, price events, contact events, told apart by their
columns). Every guess is written with a comment saying why, so that a user corrects
the config instead of writing it; the config is checked against the files it came
from before it is returned (:func:`starter_config` raises rather than hand back a
config that fails ``check``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from retention_study.config import LOGGER_NAME, resolve_config
from retention_study.data.cells import cell_text, normalise_tokens, read_dates, read_numbers
from retention_study.data.load import load_study_data
from retention_study.data.readers import FILE_COL, ROW_COL, read_frame
from retention_study.errors import ConfigError, DataContractError

log = logging.getLogger(LOGGER_NAME)

__all__ = ["starter_config", "write_starter_config"]

_ID = re.compile(r"(^|_|\b)(customer|cust|client|klant|account|subscriber)?.?(id|nr|number|no|key)$",
                 re.I)
_START = re.compile(r"start|begin|join|signup|sign_up|created|since|aanvang", re.I)
_END = re.compile(r"end|stop|cancel|termin|left|eind|churn.?date", re.I)
_NOTICE = re.compile(r"notice|opzeg", re.I)
_CHURN = re.compile(r"churn|left|exited|attrition|cancel|vertrok|opgezegd", re.I)
_REASON = re.compile(r"reason|reden|why", re.I)
_PRICE = re.compile(r"price|prijs|charge|fee|bill|amount|tarief|bedrag|cost", re.I)
_NEW_PRICE = re.compile(r"new|list|nieuw|acquisition", re.I)
_DURATION = re.compile(r"tenure|duration|length|lifetime|months|days|looptijd", re.I)
# "Total day calls" is usage; "Customer service calls" is contact.
_CONTACT = re.compile(r"contact|support|service.?call|customer.?call|visit|touch|since|complain",
                      re.I)
_INBOUND = re.compile(r"customer.*call|complain|inbound|service call|klacht", re.I)
_RECENCY = re.compile(r"since|recency|last", re.I)
_DIRECTION = re.compile(r"direction|richting|inbound|outbound|initiat", re.I)
_CHANNEL = re.compile(r"channel|kanaal|medium", re.I)
_TOPIC = re.compile(r"topic|subject|onderwerp|reason", re.I)
_SATISFACTION = re.compile(r"satisf|tevreden|nps|csat", re.I)
_SEGMENT = re.compile(r"contract|plan|tier|segment|region|product", re.I)
_YES = {"1", "yes", "true", "churned", "left", "ja", "y"}
_OUT_WORDS = re.compile(r"^(out|uit|outgoing|outbound|supplier|proactive)", re.I)
_IN_WORDS = re.compile(r"^(in|inc|incoming|inbound|customer|reactive)", re.I)
MAX_CONTROL_LEVELS = 10  # a guessed control: a few levels (the contract allows up to 100)


@dataclass
class _Column:
    """What a column looks like: enough to guess its role."""

    name: str
    blanks: int
    levels: int
    numeric: bool
    dates: bool
    unique: bool
    values: list = field(default_factory=list)  # up to 12 distinct values
    minimum: float | None = None
    flags: int = 0  # distinct values once TRUE/True/yes/1 are one token


def _profile(frame: pd.DataFrame) -> dict[str, _Column]:
    out = {}
    for name in [c for c in frame.columns if c not in (FILE_COL, ROW_COL)]:
        s = frame[name]
        txt = cell_text(s)
        filled = txt.dropna()
        num, bad = read_numbers(s)
        parsed, bad_date = read_dates(s) if not pd.api.types.is_numeric_dtype(s) else (None, None)
        is_num = bool(len(filled)) and not bad.any()
        is_date = (parsed is not None and bool(len(filled)) and not bad_date.any()
                   and not is_num)
        out[name] = _Column(name=name, blanks=int(txt.isna().sum()), levels=int(filled.nunique()),
                            numeric=is_num, dates=is_date,
                            unique=bool(len(filled)) and filled.is_unique and not txt.isna().any(),
                            values=list(pd.unique(filled))[:12],
                            minimum=float(num.min()) if is_num else None,
                            flags=int(normalise_tokens(filled).nunique()))
    return out


def _first(cols: dict[str, _Column], pattern: re.Pattern, test=lambda c: True,
           taken: Sequence[str] = ()) -> str | None:
    for c in cols.values():
        if c.name not in taken and pattern.search(c.name) and test(c):
            return c.name
    return None


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True,
                          width=1000).strip().removesuffix("...").strip()


@dataclass
class _Config:
    """Lines of the YAML being written, each key with the reason for its value."""

    lines: list = field(default_factory=list)
    values: dict = field(default_factory=dict)

    def key(self, name: str, value: Any, why: str = "", indent: int = 2) -> None:
        comment = f"  # {why}" if why else ""
        self.lines.append(f"{' ' * indent}{name}: {_yaml(value)}{comment}")
        self.values[name] = value

    def block(self, name: str, value: dict, why: str = "", indent: int = 2) -> None:
        """A mapping of mappings, one line per entry (data.columns)."""
        comment = f"  # {why}" if why else ""
        self.lines.append(f"{' ' * indent}{name}:{comment}")
        for key, inner in value.items():
            self.lines.append(f"{' ' * (indent + 2)}{key}:")
            for k, v in inner.items():
                self.lines.append(f"{' ' * (indent + 4)}{k}: {_yaml(v)}")
        self.values[name] = value

    def note(self, text: str, indent: int = 2) -> None:
        self.lines.append(f"{' ' * indent}# {text}")


def _controls(cols: dict[str, _Column], taken: Sequence[str]) -> tuple[list, list]:
    """Low-cardinality columns without gaps and with variance; the rest left out, why."""
    chosen, skipped = [], []
    for c in cols.values():
        if c.name in taken:
            continue
        if c.dates or c.unique:
            continue
        if c.blanks:
            skipped.append(f"{c.name} ({c.blanks} blank cells)")
        elif c.levels < 2:
            skipped.append(f"{c.name} (one value only)")
        elif c.numeric and c.levels > 2:
            if c.levels <= MAX_CONTROL_LEVELS:  # a number read as a level: a code or a count?
                skipped.append(f"{c.name} (a number with {c.levels} values: a code or a count?)")
        elif c.levels <= MAX_CONTROL_LEVELS:
            chosen.append(c.name)
        elif not c.numeric:
            skipped.append(f"{c.name} ({c.levels} distinct values)")
    return chosen, skipped


def _latest_date(frames: Sequence[pd.DataFrame], profiles: Sequence[dict]) -> str:
    latest = pd.Timestamp.now().normalize()
    found = []
    for frame, cols in zip(frames, profiles, strict=True):
        for c in cols.values():
            if c.dates:
                found.append(read_dates(frame[c.name])[0].max())
    found = [d for d in found if pd.notna(d)]
    return (max(found) if found else latest).date().isoformat()


# ---------------------------------------------------------------- shape B


def _table(paths: list[str], frame: pd.DataFrame, out: _Config) -> None:
    cols = _profile(frame)
    out.key("format", "table", "one row per customer (shape B)")
    out.key("path", paths[0] if len(paths) == 1 else paths)
    ident = _first(cols, _ID, lambda c: c.unique) or next(
        (c.name for c in cols.values() if c.unique and not c.numeric), None)
    out.key("id", ident, "unique in every row" if ident else "no unique column found: rows "
            "are numbered")
    duration = _first(cols, _DURATION, lambda c: c.numeric and not c.blanks and c.minimum >= 0)
    if duration is None:
        raise ConfigError("init: no duration column found (a number >= 0 without gaps named "
                          "like tenure, duration or months); write data.duration by hand")
    unit = "days" if re.search(r"day|dag", duration, re.I) else (
        "years" if re.search(r"year|jaar", duration, re.I) else "months")
    out.key("duration", duration, "time as a customer")
    out.key("duration_unit", unit, "guessed from the name: check it")
    event = _first(cols, _CHURN, lambda c: c.flags == 2 and not c.blanks, [duration])
    if event is None:
        raise ConfigError("init: no event column found (two values, named like churn or "
                          "left); write data.event by hand")
    values = [v for v in cols[event].values if normalise_tokens([v]).iat[0] in _YES]
    out.key("event", {"column": event, "values": values or cols[event].values[:1]},
            "the value(s) that mean the customer left")
    taken = [c for c in (ident, duration, event) if c]
    price = [c.name for c in cols.values() if c.name not in taken and _PRICE.search(c.name)
             and c.numeric and not c.blanks and c.minimum >= 0]
    left_out = [f"{c.name} ({c.blanks} blank cells)" for c in cols.values()
                if c.name not in taken and _PRICE.search(c.name) and c.numeric and c.blanks]
    out.key("price", price, "numbers named like price, charge or fee")
    if left_out:
        out.note(f"left out of price: {', '.join(left_out)}")
    taken += price
    contact = [c.name for c in cols.values() if c.name not in taken and _CONTACT.search(c.name)
               and not c.blanks and (c.numeric or c.levels <= MAX_CONTROL_LEVELS)]
    out.key("contact", contact, "named like contact, call or support: often a proxy, check it")
    inbound = any(_INBOUND.search(c) for c in contact)
    out.key("contact_kind", "inbound" if inbound else "outbound",
            "calls the customer made" if inbound else "who started the contact: check it")
    recency = [c for c in contact if _RECENCY.search(c) and cols[c].numeric]
    if recency:
        out.key("units", {recency[0]: "months"}, "time since the last contact: check the unit")
    taken += contact
    reason = _first(cols, _REASON, lambda c: not c.numeric, taken)
    out.key("exit_reason", reason, "stated reason" if reason else "")
    taken += [reason] if reason else []
    controls, skipped = _controls(cols, taken)
    out.key("controls", controls, f"attributes with at most {MAX_CONTROL_LEVELS} levels")
    if skipped:
        out.note(f"not controls: {', '.join(skipped)}")
    out.key("segments", [c for c in controls if _SEGMENT.search(c)][:2])
    out.key("as_of", pd.Timestamp.now().date().isoformat(),
            "the date the data was extracted: set it")


# ---------------------------------------------------------------- shape A


def _which(profiles: list[dict]) -> dict[str, int]:
    """Index of the customers, price and contact file among three."""
    def score(cols: dict, kind: str) -> int:
        names = " ".join(cols)
        if kind == "contact_events":
            return 2 * bool(_DIRECTION.search(names)) + any(
                {str(v).lower() for v in c.values} & {"inbound", "outbound", "in", "out"}
                for c in cols.values())
        if kind == "price_events":
            return 2 * any(_PRICE.search(c.name) and c.numeric for c in cols.values())
        return 2 * any(c.unique for c in cols.values()) + bool(_START.search(names))
    out, left = {}, list(range(3))
    for kind in ("contact_events", "price_events", "customers"):
        best = max(left, key=lambda i: score(profiles[i], kind))
        out[kind] = best
        left.remove(best)
    return out


def _direction_words(cols: dict[str, _Column], direction: str) -> dict | None:
    words = {"outbound": [], "inbound": []}
    for value in cols[direction].values:
        low = str(value).strip().lower()
        if low in words:
            continue
        if _OUT_WORDS.match(low):
            words["outbound"].append(str(value))
        elif _IN_WORDS.match(low):
            words["inbound"].append(str(value))
    return {k: v for k, v in words.items() if v} or None


def _events(paths: list[str], frames: list[pd.DataFrame], out: _Config) -> None:
    profiles = [_profile(f) for f in frames]
    which = _which(profiles)
    cust = profiles[which["customers"]]
    prices = profiles[which["price_events"]]
    contacts = profiles[which["contact_events"]]
    out.key("format", "events", "three event logs (shape A)")
    for key in ("customers", "price_events", "contact_events"):
        out.key(key, paths[which[key]], "told apart by their columns: check")
    ident = _first(cust, _ID, lambda c: c.unique) or next(
        (c.name for c in cust.values() if c.unique), None)
    dates = [c.name for c in cust.values() if c.dates]
    start = _first(cust, _START, lambda c: c.dates) or (dates[0] if dates else None)
    end = _first(cust, _END, lambda c: c.dates, [start]) or next(
        (d for d in dates if d != start), None)
    columns = {"customers": {"customer_id": ident, "start_date": start, "end_date": end,
                             "notice_date": _first(cust, _NOTICE, lambda c: c.dates),
                             "churned": _first(cust, _CHURN, lambda c: not c.dates
                                               and c.flags <= 2),
                             "exit_reason": _first(cust, _REASON, lambda c: not c.numeric)}}
    pdate = next((c.name for c in prices.values() if c.dates), None)
    price = _first(prices, _PRICE, lambda c: c.numeric and not _NEW_PRICE.search(c.name))
    columns["price_events"] = {
        "customer_id": ident if ident in prices else _first(prices, _ID),
        "effective_date": pdate, "monthly_price": price,
        "new_customer_price": _first(prices, _NEW_PRICE, lambda c: c.numeric, [price])}
    direction = _first(contacts, _DIRECTION) or next(
        (c.name for c in contacts.values()
         if {str(v).lower() for v in c.values} & {"inbound", "outbound"}), None)
    columns["contact_events"] = {
        "customer_id": ident if ident in contacts else _first(contacts, _ID),
        "contact_date": next((c.name for c in contacts.values() if c.dates), None),
        "direction": direction, "channel": _first(contacts, _CHANNEL),
        "topic": _first(contacts, _TOPIC)}
    missing = [f"{t}.{k}" for t, m in columns.items() for k, v in m.items()
               if v is None and k in ("customer_id", "start_date", "end_date", "effective_date",
                                      "monthly_price", "contact_date", "direction")]
    if missing:
        raise ConfigError(f"init: could not guess {', '.join(missing)}: write data.columns "
                          "by hand (see README, 'Your own data')")
    mapping = {t: {k: v for k, v in m.items() if v and v != k} for t, m in columns.items()}
    mapping = {t: m for t, m in mapping.items() if m}
    if mapping:
        out.block("columns", mapping, "our name: your column")
    else:
        out.key("columns", {}, "the files use the standard names")
    words = _direction_words(contacts, direction)
    if words:
        out.key("direction_values", words, "your words for outbound / inbound: check")
    taken = [v for v in columns["customers"].values() if v]
    satisfaction = _first(cust, _SATISFACTION, lambda c: c.numeric and not c.blanks, taken)
    out.key("satisfaction", satisfaction, "survey score" if satisfaction else "")
    taken += [satisfaction] if satisfaction else []
    controls, skipped = _controls(cust, taken)
    out.key("controls", controls, f"attributes with at most {MAX_CONTROL_LEVELS} levels")
    if skipped:
        out.note(f"not controls: {', '.join(skipped)}")
    out.key("segments", [c for c in controls if _SEGMENT.search(c)][:2])
    out.key("exit_reason", "exit_reason" if columns["customers"]["exit_reason"] else None)
    out.key("as_of", _latest_date(frames, profiles),
            "the latest date in the files: set the date the data was extracted")


# ---------------------------------------------------------------- entry points


def starter_config(paths: Sequence[str | Path]) -> str:
    """The YAML text of a starter config for ``paths``, checked against them.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("id,months,churn,plan\\nA,3,yes,a\\nB,5,no,b\\nC,2,no,a\\n")
    >>> text = starter_config([p])
    >>> "  duration: months  # time as a customer" in text.splitlines()
    True
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise ConfigError("init: name the data files (one table, or the three event logs)")
    frames = [read_frame(p) for p in paths]
    heads = [sorted(c for c in f.columns if c not in (FILE_COL, ROW_COL)) for f in frames]
    out = _Config(lines=[f"# Starter config written by `retention-study init` from "
                         f"{len(paths)} file(s).",
                         "# Every guess has a comment: read them, correct what is wrong, "
                         "then run `retention-study check` on this file.",
                         f"name: {_yaml(_name(paths))}", "data:"])
    if len(paths) == 3 and len({tuple(h) for h in heads}) == 3:
        _events(paths, frames, out)
    elif all(h == heads[0] for h in heads):
        _table(paths, pd.concat(frames, ignore_index=True), out)
    else:
        raise ConfigError("init: give one table (or several with the same columns) or the "
                          "three event-log files (customers, price events, contact events)")
    out.key("on_invalid", "error", "error | exclude (drop invalid rows, counted)")
    text = "\n".join(out.lines) + "\n"
    _check(text, paths)
    return text


def _name(paths: list[str]) -> str:
    stem = Path(paths[0]).stem.lower()
    slug = re.sub(r"[^a-z0-9_-]+", "_", stem).strip("_") or "study"
    return slug if len(paths) != 3 else (Path(paths[0]).resolve().parent.name.lower() or slug)


def _check(text: str, paths: list[str]) -> None:
    """The config must pass ``check`` on the files it was made from."""
    try:
        load_study_data(resolve_config(yaml.safe_load(text)))
    except DataContractError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"init: the guessed config does not pass check on "
                          f"{', '.join(paths)}: {first}; write the failing key by hand") from None


def write_starter_config(paths: Sequence[str | Path], out: str | Path | None = None,
                         force: bool = False) -> str:
    """Write the starter config to ``out`` (refusing to overwrite without ``force``),
    or return it for printing when ``out`` is None."""
    target = Path(out) if out is not None else None
    if target is not None and target.exists() and not force:
        raise ConfigError(f"init: {target} exists (use --force to overwrite)")
    text = starter_config(paths)
    if target is not None:
        target.write_text(text, encoding="utf-8")
        log.info("wrote %s", target)
    return text
