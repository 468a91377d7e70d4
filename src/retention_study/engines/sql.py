"""SQL text helpers shared by the engines: dialects, identifiers, literals.

The relational description is written in DuckDB's dialect; :func:`transpile` turns it
into another engine's (sqlglot), :func:`quote` and :func:`literal` write names and
values into it safely.
"""

from __future__ import annotations

import sqlglot


def transpile(sql: str, dialect: str) -> str:
    """``sql`` (DuckDB dialect) in another engine's dialect.

    Examples
    --------
    >>> transpile("SELECT UNNEST(GENERATE_SERIES(a, b)) AS m FROM t", "spark")
    'SELECT EXPLODE(SEQUENCE(a, b)) AS m FROM t'
    """
    if dialect == "duckdb":
        return sql
    return sqlglot.transpile(sql, read="duckdb", write=dialect)[0]


def quote(name: str) -> str:
    """A column name as a quoted SQL identifier (names like ``plan[premium]`` are fine).

    Examples
    --------
    >>> quote('plan[premium]')
    '"plan[premium]"'
    """
    return '"' + str(name).replace('"', '""') + '"'


def literal(value) -> str:
    """A Python scalar as a SQL literal (text quoted; floats exactly, as doubles).

    Examples
    --------
    >>> literal("it's"), literal(3), literal(0.1)
    ("'it''s'", '3', 'CAST(0.1 AS DOUBLE)')
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST({value!r} AS DOUBLE)"
    return "'" + str(value).replace("'", "''") + "'"
