"""Canonical column names and the in-memory data set every later step reads.

``load`` turns a company's files (either shape) into a :class:`StudyData` whose
frames use these names and dtypes, whatever the files called them.

Shape A (``format == "events"``):

- ``customers``: ``customer_id`` (str, unique), ``start_date``, ``end_date`` (NaT =
  still a customer), ``notice_date`` (NaT = none), ``churned`` (int 0/1: left or gave
  notice by as_of), ``exit_reason`` (str or NaN), then any other columns as they came.
- ``price_events``: ``customer_id``, ``effective_date``, ``monthly_price`` (float > 0),
  ``new_customer_price`` (float, NaN where unknown).
- ``contact_events``: ``customer_id``, ``contact_date``, ``direction``
  ("outbound" | "inbound"), ``channel``, ``topic`` (str or NaN).

All dates are ``datetime64[ns]`` normalised to midnight.

Shape B (``format == "table"``): ``table`` has ``customer_id`` (str), ``duration_days``
(float >= 0), ``event`` (int 0/1), ``exit_reason`` (str or NaN, when mapped) and the
mapped price, contact, control, segment and satisfaction columns under their original
names (listed in ``roles``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from retention_study.data.ledger import Ledger

CUSTOMER_ID = "customer_id"
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25

CUSTOMER_COLUMNS = ["customer_id", "start_date", "end_date", "notice_date", "churned", "exit_reason"]
PRICE_COLUMNS = ["customer_id", "effective_date", "monthly_price", "new_customer_price"]
CONTACT_COLUMNS = ["customer_id", "contact_date", "direction", "channel", "topic"]
DIRECTIONS = ("outbound", "inbound")
#: The event-log files and their canonical columns (``data.columns`` maps a file's own names).
EVENT_TABLE_COLUMNS = {"customers": CUSTOMER_COLUMNS, "price_events": PRICE_COLUMNS,
                       "contact_events": CONTACT_COLUMNS}


@dataclass
class StudyData:
    """A checked data set, ready for the timeline (shape A) or the models (shape B).

    Attributes
    ----------
    format : {"events", "table"}
    as_of : pandas.Timestamp
        Extraction date; nothing in the data is later.
    customers, price_events, contact_events : DataFrame or None
        Shape A frames (see module docstring).
    table : DataFrame or None
        Shape B frame.
    roles : dict
        What each column stood for: keys ``price``, ``contact``, ``controls``,
        ``segments`` (lists of column names), ``satisfaction``, ``exit_reason``
        (column name or None), ``contact_kind`` ("outbound" | "inbound").
    ledger : Ledger
        Rows in, excluded per reason, analysed.
    sources : dict
        Table name -> file path (or ``file::table``) it was read from.
    observation_start : pandas.Timestamp or None
        Customers who joined earlier enter the study late (left truncation).
    late_entry : dict
        Where the records begin and where ``observation_start`` came from (config, or
        detected from the data); see :mod:`retention_study.data.late_entry`.
    """

    format: str
    as_of: pd.Timestamp
    customers: pd.DataFrame | None = None
    price_events: pd.DataFrame | None = None
    contact_events: pd.DataFrame | None = None
    table: pd.DataFrame | None = None
    roles: dict = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    sources: dict = field(default_factory=dict)
    observation_start: pd.Timestamp | None = None
    late_entry: dict = field(default_factory=dict)

    @property
    def n_customers(self) -> int:
        frame = self.customers if self.format == "events" else self.table
        return 0 if frame is None else len(frame)


#: The blocks a model compares. Every covariate column of a Timeline belongs to one.
BLOCKS = ("price", "contact", "service", "controls")


@dataclass
class Timeline:
    """Start/stop episodes ready for a Cox model (shape A), or one row per customer (shape B).

    Attributes
    ----------
    episodes : DataFrame
        ``customer_id``, ``start``, ``stop`` (tenure in months since the customer's start;
        ``start`` > 0 on a customer's first row means late entry), ``event`` (0/1, only on a
        customer's last row), then numeric covariate columns (categoricals already
        dummy-coded, no missing values). Sorted by customer_id, start.
    blocks : dict of str -> list of str
        Covariate columns per block: ``price``, ``contact``, ``service`` (inbound
        contact: the customer reaching out, not the supplier's attention), ``controls``.
        A block may be empty (not measurable in this data).
    definitions : dict of str -> str
        Plain-words meaning of each covariate, for the report ("months since the
        supplier last contacted the customer, capped at 24").
    unmeasured : list of str
        What could not be measured in this data, in plain words.
    params : dict
        The options the timeline was built with (lag_days, grid, notice_guard, ...).
    """

    episodes: pd.DataFrame
    blocks: dict
    definitions: dict = field(default_factory=dict)
    unmeasured: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    @property
    def covariates(self) -> list[str]:
        return [c for b in BLOCKS for c in self.blocks.get(b, [])]

    @property
    def n_customers(self) -> int:
        return int(self.episodes["customer_id"].nunique())

    @property
    def n_departures(self) -> int:
        return int(self.episodes["event"].sum())


def contact_lever_days(months: float) -> int:
    """Days after the last outbound contact at which the contact lever calls.

    One definition for the study's what-if (:mod:`retention_study.analysis.whatif`) and the
    simulator's counterfactual world, so the two levers are the same lever.

    Examples
    --------
    >>> contact_lever_days(6)
    183
    """
    return int(round(float(months) * DAYS_PER_MONTH))
