"""Shape B: one row per customer (a flat table) into the canonical table.

Duration, event and the mapped price, contact, control, segment and satisfaction
columns, checked by :class:`~.contract.Checker`; ``data.where`` filters rows.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from retention_study.data.cells import HELPER_COLUMNS, cell_text, closest, normalise_tokens, unique
from retention_study.data.contract import (
    Checker,
    apply_where,
    check_attributes,
    data_units,
    read_input,
)
from retention_study.data.ledger import Ledger
from retention_study.data.readers import FILE_COL
from retention_study.data.schema import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    DIRECTIONS,
    StudyData,
)
from retention_study.errors import ConfigError, DataContractError

UNIT_DAYS = {"days": 1.0, "months": DAYS_PER_MONTH, "years": DAYS_PER_YEAR}


# ---------------------------------------------------------------- shape B


def _read_table_files(data: dict) -> pd.DataFrame:
    """Read shape B's ``path`` (one file or a list with the same columns), concatenated."""
    paths = data["path"]
    if not paths:
        raise ConfigError("data.path is required when data.format is 'table'")
    paths = [paths] if isinstance(paths, str) else list(paths)
    frames = [read_input(data, str(p)) for p in paths]
    first = [c for c in frames[0].columns if c not in HELPER_COLUMNS]
    for frame in frames[1:]:
        cols = [c for c in frame.columns if c not in HELPER_COLUMNS]
        missing = [c for c in first if c not in cols]
        if missing:
            raise DataContractError(f"column '{missing[0]}' of {frames[0][FILE_COL].iat[0]} "
                                    "is missing here (concatenated files need the same columns)",
                                    file=str(frame[FILE_COL].iat[0]), column=missing[0],
                                    kind="missing_column")
    return pd.concat(frames, ignore_index=True)


def _table_mapping(data: dict) -> dict[str, Any]:
    """Check the column mapping itself (config errors, before any data is read)."""
    if not data["duration"]:
        raise ConfigError("data.duration is required when data.format is 'table'")
    event = data["event"]
    if not isinstance(event, dict) or not event.get("column") or event.get("values") is None:
        raise ConfigError("data.event must be a mapping {column: ..., values: [...]}")
    unknown = set(event) - {"column", "values"}
    if unknown:
        raise ConfigError(f"data.event: unknown key '{sorted(unknown)[0]}' (column, values)")
    if data["duration_unit"] not in UNIT_DAYS:
        raise ConfigError(f"data.duration_unit must be one of {', '.join(UNIT_DAYS)}, "
                          f"not {data['duration_unit']!r}")
    if data["contact_kind"] not in DIRECTIONS:
        raise ConfigError(f"data.contact_kind must be one of {', '.join(DIRECTIONS)}")
    values = event["values"]
    return {"column": event["column"], "values": values if isinstance(values, list) else [values]}


def _check_table_columns(chk: Checker, data: dict, event_col: str) -> None:
    keys = ["duration", "id", "satisfaction", "exit_reason"]
    mapped = [(f"data.{k}", data[k]) for k in keys if data[k]] + [("data.event", event_col)]
    mapped += [(f"data.{k}", c) for k in ("price", "contact", "controls", "segments")
               for c in data[k]]
    missing = [(key, col) for key, col in mapped if col not in chk.frame.columns]
    for key, col in missing:
        near = closest(str(col), chk.frame.columns)
        hint = f" (did you mean '{near}'?)" if near else ""
        chk.problem(f"{key} maps to a column that does not exist{hint}",
                    column=str(col), kind="unknown_column")
    if missing:
        chk.stop()


def _table_event(chk: Checker, column: str, values: list) -> pd.Series:
    tokens = normalise_tokens(chk.frame[column]).set_axis(chk.frame.index)
    chk.flag(tokens.isna(), kind="missing_values", column=column,
             message=f"missing values in event column {column}")
    wanted = normalise_tokens(values)
    present = set(tokens.dropna())
    unmatched = [v for v, t in zip(values, wanted, strict=True) if t not in present]
    if unmatched:
        present_values = sorted(map(str, pd.unique(cell_text(chk.frame[column]).dropna())))[:10]
        seen = " ".join(", ".join(present_values).split())  # one line, whatever the cells hold
        chk.problem(f"event value {unmatched[0]!r} matches no row (values present: {seen})",
                    column=column, kind="event_values_unmatched")
    return tokens.isin(set(wanted.dropna())).astype(int)


def _table_prices(chk: Checker, ledger: Ledger, columns: list[str]) -> None:
    for col in columns:
        num, bad, hint = chk.numbers(col)
        chk.flag(bad | (num < 0), kind="bad_price", column=col,
                 message=f"{col} must be a number >= 0{hint}")
        # A zero usage charge means no usage, not a broken price list: kept, but noted.
        ledger.note("table", f"{col} is 0", int(((num == 0) & ~chk.bad).sum()))


def _table_reserved(data: dict, event_col: str) -> dict[str, str]:
    out = {data["duration"]: "is the outcome (the duration)",
           event_col: "is the outcome (the event)"}
    if data["id"]:
        out[data["id"]] = "is the customer id (every customer its own level)"
    if data["exit_reason"]:
        out[data["exit_reason"]] = "is the stated exit reason, known only once a customer leaves"
    return out


def load_table_shape(data: dict, as_of: pd.Timestamp, ledger: Ledger,
                      problems: list) -> StudyData:
    mapping = _table_mapping(data)
    units = data_units(data)
    raw = _read_table_files(data)
    ledger.rows_in("table", len(raw))
    chk = Checker(raw, "table", data, ledger, problems)
    _check_table_columns(chk, data, mapping["column"])
    check_attributes(chk, data, _table_reserved(data, mapping["column"]),
                      ("contact", "controls", "segments"))
    apply_where(chk, data["where"])
    if data["id"]:
        ids = chk.check_ids(data["id"])
        chk.check_unique(ids, data["id"])
    else:
        ids = pd.Series(np.arange(1, len(raw) + 1).astype(str), index=raw.index)
    duration, bad, hint = chk.numbers(data["duration"])
    chk.flag(bad | duration.isna() | (duration < 0), kind="bad_duration", column=data["duration"],
             message=f"{data['duration']} must be a number >= 0{hint}")
    event = _table_event(chk, mapping["column"], mapping["values"])
    _table_prices(chk, ledger, data["price"])
    covariates = unique(data["price"] + data["contact"] + data["controls"] + data["segments"]
                         + ([data["satisfaction"]] if data["satisfaction"] else []))
    chk.check_missing(covariates)
    chk.check_finite(covariates)
    chk.flag(duration == 0, kind="out_of_scope", column=data["duration"],
             message=f"{data['duration']} is 0 (no time at risk)", out_of_scope=True)
    out = pd.DataFrame({"customer_id": ids, "duration_days": duration * UNIT_DAYS[
        data["duration_unit"]], "event": event}, index=raw.index)
    if data["exit_reason"]:
        out["exit_reason"] = cell_text(raw[data["exit_reason"]])
    for col in covariates:
        out[col] = chk.covariate(col)
    clean = out.loc[~chk.bad].reset_index(drop=True)
    if chk.clean and clean["event"].sum() == 0:
        chk.problem("no departures at all in the rows analysed", column=mapping["column"],
                    kind="no_departures")
    if chk.clean:
        chk.check_variance(clean, covariates)
    paths = data["path"] if isinstance(data["path"], list) else [data["path"]]
    roles = {**_table_roles(data), "units": units,
             "contact_recency": _contact_recency(chk, data, units)}
    return StudyData(format="table", as_of=as_of, table=clean, roles=roles, ledger=ledger,
                     sources={"table": ", ".join(str(p) for p in paths)})


_TIME_UNIT = re.compile(r"^(day|week|month|year)s?\b", re.I)
_MONTHS_PER = {"day": 1 / DAYS_PER_MONTH, "week": 7 / DAYS_PER_MONTH, "month": 1.0,
               "year": 12.0}


def _contact_recency(chk: Checker, data: dict, units: dict[str, str]) -> dict | None:
    """A contact column whose unit is a time (``data.units: {months_since_call: months}``)
    *is* time since the last contact: the timeline uses it as such.

    Examples
    --------
    >>> _TIME_UNIT.match("months since the last call").group(1)
    'month'
    """
    for col in data["contact"]:
        hit = _TIME_UNIT.match(units.get(col, "").strip())
        if not hit:
            continue
        num, bad, hint = chk.numbers(col)
        if bad.any() or (num < 0).any():
            chk.problem(f"data.units gives {col} in {units[col]}, time since the last contact, "
                        f"but it holds values that are not a number >= 0{hint}",
                        column=col, kind="bad_recency")
        return {"column": col, "unit": units[col],
                "months_per_unit": _MONTHS_PER[hit.group(1).lower()]}
    return None


def _table_roles(data: dict) -> dict[str, Any]:
    roles: dict[str, Any] = {k: list(data[k]) for k in ("price", "contact", "controls",
                                                        "segments")}
    roles.update(satisfaction=data["satisfaction"],
                 exit_reason="exit_reason" if data["exit_reason"] else None,
                 contact_kind=data["contact_kind"])
    return roles


def without_where_columns(data: dict) -> dict:
    """A segment's own column is constant inside it: it cannot be a control or a segment."""
    cols = set(data["where"])
    if not cols:
        return data
    data = dict(data)
    for key in ("controls", "segments"):
        data[key] = [c for c in data[key] if c not in cols]
    return data
