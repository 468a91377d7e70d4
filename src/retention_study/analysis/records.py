"""Tables and scalars as plain JSON-safe Python (numpy scalars unwrapped, NaN/inf as None).

The one home of this conversion for results.json (models, compare, segments, reasons,
claims and pipeline use it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def plain(value):
    """A numpy scalar as the Python one; NaN and inf as None; anything else unchanged.

    Examples
    --------
    >>> plain(np.int64(3)), plain(np.float32(0.5)), plain(float("nan")), plain(np.bool_(1))
    (3, 0.5, None, True)
    """
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value


def to_records(frame: pd.DataFrame) -> list[dict]:
    """A DataFrame as a list of dicts of :func:`plain` values (its index is dropped).

    Examples
    --------
    >>> to_records(pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan]}))
    [{'a': 1, 'b': 0.5}, {'a': 2, 'b': None}]
    """
    return [{k: plain(v) for k, v in rec.items()} for rec in frame.to_dict(orient="records")]


def json_safe(value):
    """:func:`plain` through nested dicts, lists and Series; timestamps as ISO strings.

    Examples
    --------
    >>> json_safe({"a": [np.float64(1.5), float("inf")], 2: pd.Timestamp("2026-06-30")})
    {'a': [1.5, None], '2': '2026-06-30T00:00:00'}
    """
    if isinstance(value, pd.Series):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return plain(value)
