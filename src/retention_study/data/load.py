"""The data contract: read a company's files (either shape), check them, return StudyData.

Nothing runs on bad data silently. Each problem is one
:class:`~retention_study.errors.DataContractError` naming the file, the column and
the first offending rows; all problems of a load are collected and raised together
(:class:`~retention_study.errors.DataContractErrors`, one line each), so that a user
fixes a file in one round trip. With ``data.on_invalid: exclude`` the offending rows
are dropped instead and counted by reason in the :class:`~retention_study.data.ledger.Ledger`.
Rows legitimately out of scope (joined after ``as_of``, no time at risk, left before
``observation_start``) are never errors; they are counted with ``kind="out_of_scope"``.

Order of checks, per table: cells that cannot be read (ids, dates, numbers, flags,
missing covariates) are checked on every row; then out-of-scope rows leave; then the
time logic (end before start, after as_of, ...) is checked on the rows in scope. A
row is counted once, under the first reason it fails.

This module is the entry point (:func:`load_study_data`); the parts are :mod:`.cells`
(reading cells), :mod:`.contract` (the checker), :mod:`.events_shape` (shape A) and
:mod:`.table_shape` (shape B).
"""

from __future__ import annotations

import logging

from retention_study.config import AUTO_CONTROLS, LOGGER_NAME
from retention_study.config_keys import parse_date
from retention_study.data import late_entry
from retention_study.data.contract import raise_problems
from retention_study.data.events_shape import load_events_shape
from retention_study.data.ledger import Ledger
from retention_study.data.schema import (
    StudyData,
)
from retention_study.data.table_shape import load_table_shape, without_where_columns
from retention_study.errors import DataContractError

log = logging.getLogger(LOGGER_NAME)

__all__ = ["load_study_data"]


# ---------------------------------------------------------------- entry point


def load_study_data(cfg: dict) -> StudyData:
    """Read, check and canonicalise the data a resolved config points at.

    Parameters
    ----------
    cfg : dict
        A resolved config (:func:`retention_study.config_file.load_config`); reads ``cfg["data"]``.

    Returns
    -------
    StudyData
        Canonical frames (see :mod:`retention_study.data.schema`) and the ledger of rows in,
        excluded per reason and analysed.

    Raises
    ------
    DataContractError
        The data breaks the contract (``kind`` says how; the message names the file,
        column and first rows); :class:`~retention_study.errors.DataContractErrors`
        when there are several (one line each, the first problem's attributes). With
        ``on_invalid: exclude`` row-level problems are counted in the ledger instead;
        table-level ones (a missing column, no departures, a covariate with no
        variance, a date or free-text control) always raise.
    ConfigError
        The data section of the config is incomplete (e.g. table mode without duration).

    Examples
    --------
    >>> import tempfile, os
    >>> from retention_study.config import resolve_config
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.csv")
    >>> _ = open(p, "w").write("months,left,plan\\n3,yes,a\\n0,no,b\\n5,no,b\\n")
    >>> cfg = resolve_config({"data": {"format": "table", "path": p, "duration": "months",
    ...                                "event": {"column": "left", "values": ["Yes"]},
    ...                                "controls": ["plan"]}})
    >>> data = load_study_data(cfg)
    >>> data.table["event"].tolist(), data.ledger.rows_analysed("table")
    ([1, 0], 2)
    """
    # controls: auto = none yet; pipeline.choose_controls adds what the confounder scan flags
    auto = cfg["data"]["controls"] == AUTO_CONTROLS
    data = without_where_columns({**cfg["data"], "controls": []} if auto else cfg["data"])
    as_of = parse_date(data["as_of"], "data.as_of")
    ledger = Ledger()
    problems: list[DataContractError] = []
    if data["format"] == "table":
        study = load_table_shape(data, as_of, ledger, problems)
    else:
        start = data.get("observation_start")
        start = parse_date(start, "data.observation_start") if start else None
        study = load_events_shape(data, as_of, start, ledger, problems)
    raise_problems(problems)
    if study.format == "events":
        study = late_entry.resolve(study)  # records that begin late imply late entry
    study.roles["controls_auto"] = auto
    log.info("loaded %d customers (%s)", study.n_customers, study.format)
    return study
