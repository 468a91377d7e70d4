"""The covariate blocks of an episode table: price, contact, service, controls.

Each builder takes the rows being built and returns a :class:`Block` (columns,
plain-words definitions, what could not be measured, rows to exclude);
:data:`BLOCK_BUILDERS` is the registry :mod:`.timeline` runs; shape B's one-row-per-customer
columns come from :func:`table_block`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retention_study.data.schema import DAYS_PER_MONTH, StudyData
from retention_study.episodes.events import WINDOW_12M_DAYS, EventIndex, gather
from retention_study.episodes.followup import Rows
from retention_study.errors import DataContractError


@dataclass
class Block:
    """Covariate columns of one block with their plain-words definitions."""

    columns: dict
    definitions: dict
    unmeasured: list
    bad_rows: dict  # reason -> boolean mask over rows; those customers are excluded


def _index(ev: dict, rows: Rows, guard: bool, mask=None, values: tuple = ()) -> EventIndex:
    """An EventIndex over prepared events (optionally a subset), guarded against leaks."""
    keep = np.ones(len(ev["day"]), dtype=bool) if mask is None else mask.copy()
    if guard:
        # belt and braces: nothing dated on or after the departure can enter
        keep &= ev["day"] < rows.cutoff_day[ev["cust"]]
    return EventIndex(ev["cust"][keep], ev["day"][keep], {v: ev[v][keep] for v in values},
                      presorted=True)


def price_block(data: StudyData, rows: Rows, params: dict) -> Block:
    """PRICE: loyalty penalty, a recent price increase, optionally the price level.

    The price of an interval is the latest price event dated before the reference
    day; before any (the first month: the sign-up price takes effect on start_date)
    the customer's first price, when it is dated on or before start_date.
    ``new_customer_price`` gaps are filled with the customer's last known value;
    customers with rows still missing it are excluded.

    Examples
    --------
    >>> from retention_study.episodes.timeline import build_timeline, example_data
    >>> build_timeline(example_data()).blocks["price"]
    ['loyalty_penalty', 'price_increase_recent']
    """
    ev = rows.events.price
    if ev is None:
        return Block({}, {}, ["price: no price events in the data"], {})
    guard = params["notice_guard"]
    ncp_known = ev["ncp"] is not None
    ix = _index(ev, rows, guard, values=("price",) + (("ncp",) if ncp_known else ()))
    if not len(ix):
        return Block({}, {}, ["price: no price events for the customers studied"], {})
    pos = ix.position_before(rows.cust, rows.ref_day, rows.base)
    first = ix.first_position(rows.cust)
    signup = (first >= 0) & (ix.day[np.maximum(first, 0)] <= rows.start_day)
    pos = np.where((pos < 0) & signup, first, pos)
    no_price = pos < 0
    price = ix.values["price"][np.maximum(pos, 0)]
    # The loader guarantees prices > 0; a StudyData built by hand may not, and a log
    # of 0 or NaN must not reach the model unnoticed.
    cols, defs, unmeasured, bad = {}, {}, [], {
        "no price on record at the start of an interval": no_price,
        "monthly price missing or not above 0": ~no_price & ~(price > 0)}
    if ncp_known:
        ncp = ix.values["ncp"][np.maximum(pos, 0)]
        bad["new-customer price unknown even after carrying the last known one forward"] = (
            ~no_price & ~(ncp > 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["loyalty_penalty"] = np.log(price / ncp)
        defs["loyalty_penalty"] = ("log of the customer's monthly price over the price a new "
                                   "customer paid for the same product (0 = same price, "
                                   "0.1 = about 10% more)")
    else:
        unmeasured.append("loyalty penalty: the data has no new-customer price, so the price "
                          "block uses the price level (log_price) instead")
    if params["include_price_level"] or not ncp_known:
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["log_price"] = np.log(price)
        defs["log_price"] = "log of the customer's monthly price (the price level)"
    inc = _index(ev, rows, guard, mask=ev["rose"])
    window = params["price_increase_window_days"]
    recent = inc.count_between(rows.cust, rows.ref_day - window, rows.ref_day, rows.base) > 0
    cols["price_increase_recent"] = recent.astype(np.int64)
    defs["price_increase_recent"] = (f"1 if the customer's price went up within the last "
                                     f"{params['price_increase_window_days']} days, else 0")
    return Block(cols, defs, unmeasured, bad)


def contact_block(data: StudyData, rows: Rows, params: dict) -> Block:
    """CONTACT: months since the supplier last reached out, outbound contacts in 12 months.

    ``months_since_contact = min(cap, (interval begin - last outbound contact) / month)``
    over contacts dated before the reference day; never contacted: months since
    start_date, capped.

    Examples
    --------
    >>> from retention_study.episodes.timeline import build_timeline, example_data
    >>> ep = build_timeline(example_data()).episodes
    >>> ep.loc[ep.customer_id == "a", "months_since_contact"].round(2).tolist()
    [0.0, 0.99, 1.97]
    """
    ev = rows.events.contact
    if ev is None or not ev["outbound"].any():
        return Block({}, {}, ["supplier contact: no outbound contacts in the data"], {})
    ix = _index(ev, rows, params["notice_guard"], mask=ev["outbound"])
    pos = ix.position_before(rows.cust, rows.ref_day, rows.base)
    last = gather(ix.day, pos, rows.start_day)
    cap = params["contact_cap_months"]
    months = np.minimum(cap, (rows.eval_day - last) / DAYS_PER_MONTH)
    n12 = ix.count_between(rows.cust, rows.ref_day - WINDOW_12M_DAYS, rows.ref_day,
                           rows.base)
    return Block(
        {"months_since_contact": months, "outbound_12m": n12.astype(np.int64)},
        {"months_since_contact": (f"months since the supplier last contacted the customer "
                                  f"(since joining if never), capped at {cap:g}"),
         "outbound_12m": "contacts initiated by the supplier in the last 12 months"},
        [], {})


def service_block(data: StudyData, rows: Rows, params: dict) -> Block:
    """SERVICE: inbound contacts in the last 12 months (the customer reaching out).

    Examples
    --------
    >>> from retention_study.episodes.timeline import build_timeline, example_data
    >>> ep = build_timeline(example_data()).episodes
    >>> ep.loc[ep.customer_id == "c", "inbound_12m"].tolist()
    [0, 0, 1, 1]
    """
    ev = rows.events.contact
    if ev is None or ev["outbound"].all():
        return Block({}, {}, ["service: no inbound contacts in the data"], {})
    ix = _index(ev, rows, params["notice_guard"], mask=~ev["outbound"])
    n12 = ix.count_between(rows.cust, rows.ref_day - WINDOW_12M_DAYS, rows.ref_day,
                           rows.base)
    return Block({"inbound_12m": n12.astype(np.int64)},
                 {"inbound_12m": ("contacts the customer initiated in the last 12 months (a "
                                  "service signal, not the supplier's attention)")}, [], {})


def dummy_code(frame: pd.DataFrame, columns: list[str], table: str) -> tuple[dict, dict, dict]:
    """Numeric columns as they are, categoricals as 0/1 dummies without the most common level.

    Returns
    -------
    columns : dict of name -> ndarray (one value per row of ``frame``)
    definitions : dict of name -> str
    missing : dict of reason -> boolean mask of rows with a missing value

    Examples
    --------
    >>> f = pd.DataFrame({"plan": ["basic", "premium", "basic"], "age": [30, 40, 50]})
    >>> cols, defs, _ = dummy_code(f, ["plan", "age"], "customers")
    >>> sorted(cols), cols["plan[premium]"].tolist()
    (['age', 'plan[premium]'], [0, 1, 0])
    """
    out, defs, missing = {}, {}, {}
    for col in columns:
        if col not in frame:
            raise DataContractError(f"control column {col!r} is not in the data", file=table,
                                    column=col, kind="missing_column")
        s = frame[col]
        if s.isna().any():
            missing[f"missing value in {col}"] = s.isna().to_numpy()
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(np.float64).to_numpy()
            defs[col] = f"{col} as recorded"
            continue
        counts = s.astype("string").value_counts(sort=False)
        if counts.empty:
            continue
        # most common level is the reference; ties broken by name so the choice is stable
        ref = sorted(counts.index[counts == counts.max()])[0]
        for level in sorted(counts.index):
            if level != ref:
                name = f"{col}[{level}]"
                out[name] = (s.astype("string") == level).fillna(False).to_numpy().astype(
                    np.int64)
                defs[name] = f"1 if {col} is {level!r}, else 0 (reference: {ref!r})"
    return out, defs, missing


def controls_block(data: StudyData, rows: Rows, params: dict) -> Block:
    """CONTROLS: customer columns (``params["controls"]``) repeated on each of their rows.

    Examples
    --------
    >>> from retention_study.episodes.timeline import build_timeline, example_data
    >>> build_timeline(example_data()).blocks["controls"]
    ['plan[premium]']
    """
    # named by the file it came from, so an error says where to look
    source = data.sources.get("customers", "customers")
    cols, defs, missing = dummy_code(rows.customers, params["controls"], source)
    cols = {k: v[rows.cust] for k, v in cols.items()}
    bad = {k: v[rows.cust] for k, v in missing.items()}
    return Block(cols, defs, [], bad)


#: The function that builds each block of shape A, ``f(data, rows, params) -> Block``.
#: Replace an entry to try another definition of a block (e.g. a different price
#: measure) without touching the rest of the builder.
BLOCK_BUILDERS = {
    "price": price_block,
    "contact": contact_block,
    "service": service_block,
    "controls": controls_block,
}


# --------------------------------------------------------------------------- shape B


def table_block(table: pd.DataFrame, columns: list[str], what: str, note: str,
                source: str = "table") -> Block:
    """A block of a flat table: the mapped columns, dummy-coded where categorical."""
    cols, defs, missing = dummy_code(table, columns, source)
    defs = {k: f"{v} ({note})" if k in table else f"{v} ({what}: {note})" for k, v in defs.items()}
    return Block(cols, defs, [], missing)


def recency_months(table: pd.DataFrame, columns: list[str], recency: dict,
                    cap: float) -> tuple[pd.DataFrame, list[str]]:
    """A table column that *is* time since the supplier's last contact (``data.units``)
    becomes ``months_since_contact``, capped like the event logs' measure."""
    col = recency["column"]
    months = np.minimum(cap, table[col].to_numpy(float) * recency["months_per_unit"])
    return (table.assign(months_since_contact=months),
            ["months_since_contact" if c == col else c for c in columns])
