"""DuckDB (embedded): the episodes and the Cox steps in SQL, memory bounded, spilling to disk.

DuckDB runs the relational description (:mod:`.relational`) as it is written; every
intermediate is a DuckDB table, so nothing of the size of the episodes passes through
pandas. ``memory_limit`` (``study.memory_limit``, e.g. ``"4GB"``) caps DuckDB's buffer
manager; past it, sorts, joins and aggregates spill to ``temp_directory``.

Examples
--------
>>> from retention_study.engines.base import build_episodes
>>> from retention_study.episodes.timeline import example_data
>>> eng = DuckDBEngine(memory_limit="1GB")
>>> data = example_data()
>>> eng.register_study_data(data)
>>> tl = build_episodes(eng, data)
>>> tl.n_rows, tl.n_departures
(15, 2)
"""

from __future__ import annotations

import os
import tempfile

import pandas as pd

from retention_study.engines.base import Engine


class DuckDBEngine(Engine):
    """One DuckDB connection (in memory, or a database file for larger-than-memory work).

    Parameters
    ----------
    memory_limit : str, optional
        DuckDB's ``memory_limit`` ("4GB"); None leaves DuckDB's default (80% of RAM).
    database : str
        ``":memory:"`` or a file; either way DuckDB spills past the memory limit.
    threads : int, optional
    temp_directory : str, optional
        Where spilled data goes (default: a new folder under the system temp dir).
    """

    dialect = "duckdb"
    name = "duckdb"

    def __init__(self, memory_limit: str | None = None, database: str = ":memory:",
                 threads: int | None = None, temp_directory: str | None = None) -> None:
        import duckdb

        self.con = duckdb.connect(database)
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{_size(memory_limit)}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.temp_directory = temp_directory or tempfile.mkdtemp(prefix="retention-duckdb-")
        os.makedirs(self.temp_directory, exist_ok=True)
        self.con.execute(f"SET temp_directory = '{self.temp_directory}'")
        # insertion order is not needed by any step (every order is explicit): dropping
        # the guarantee lets DuckDB stream larger-than-memory results
        self.con.execute("SET preserve_insertion_order = false")
        self._views: dict = {}

    def register_files(self, customers: str, price_events: str | None,
                       contact_events: str | None, controls=(), numeric_controls=()) -> None:
        """Canonical shape A files (CSV or Parquet, globs allowed) as the three input views.

        Nothing is read into Python: the views convert dates to day numbers as DuckDB scans
        the files. This path trusts that the files already passed the data contract
        (``retention-study check`` on them, or files the simulator wrote): it is how the
        benchmarks put tens of millions of customers through the engine.
        ``seq``, the tie-break of same-day events, is the row's position in its file.
        """
        def scan(path: str) -> str:
            if path.endswith(".parquet") or path.endswith("*.parquet"):
                return f"read_parquet('{path}', file_row_number = true, filename = true)"
            return f"read_csv('{path}', header = true, auto_detect = true, filename = true)"

        def day(col: str) -> str:
            return f"DATE_DIFF('day', DATE '1970-01-01', CAST({col} AS DATE))"

        extra = "".join(f', "{c}"' for c in controls)
        self.con.execute(f"""CREATE OR REPLACE VIEW rs_customers AS
            SELECT CAST(customer_id AS VARCHAR) AS customer_id, {day('start_date')} AS start_day,
                   {day('end_date')} AS end_day, {day('notice_date')} AS notice_day{extra}
            FROM {scan(customers)}""")
        self._numeric = {c: c in set(numeric_controls) for c in controls}
        self._has = {"price": bool(price_events), "contact": bool(contact_events)}
        seq = "file_row_number" if (price_events or "").endswith("parquet") else \
            "ROW_NUMBER() OVER ()"
        if price_events:
            self.con.execute(f"""CREATE OR REPLACE VIEW rs_price AS
                SELECT CAST(customer_id AS VARCHAR) AS customer_id, {day('effective_date')} AS day,
                       {seq} AS seq, CAST(monthly_price AS DOUBLE) AS monthly_price,
                       CASE WHEN ISNAN(CAST(new_customer_price AS DOUBLE)) THEN NULL
                            ELSE CAST(new_customer_price AS DOUBLE) END AS new_customer_price
                FROM {scan(price_events)}""")
        seq = "file_row_number" if (contact_events or "").endswith("parquet") else \
            "ROW_NUMBER() OVER ()"
        if contact_events:
            self.con.execute(f"""CREATE OR REPLACE VIEW rs_contact AS
                SELECT CAST(customer_id AS VARCHAR) AS customer_id, {day('contact_date')} AS day,
                       {seq} AS seq, direction = 'outbound' AS outbound
                FROM {scan(contact_events)}""")
        self._empty_tables()

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def materialise(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")

    def fetch(self, sql: str, params=None) -> pd.DataFrame:
        return self.con.execute(sql, params).df() if params is not None else \
            self.con.execute(sql).df()

    def fetch_numpy(self, sql: str, params=None) -> dict:
        """A small result as numpy columns (no pandas round trip: the Newton steps)."""
        return self.con.execute(sql, params).fetchnumpy()

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        view = f"_frame_{name}"
        self.con.register(view, frame)
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {view}")
        self.con.unregister(view)

    def drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def peak_memory_bytes(self) -> int:
        """DuckDB's own count of the memory it holds now (buffer manager)."""
        row = self.con.execute("SELECT SUM(memory_usage_bytes) FROM duckdb_memory()").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        self.con.close()


def _size(value: str) -> str:
    """Check a memory size ("4GB", "512MB"); DuckDB would otherwise fail mid-run.

    Examples
    --------
    >>> _size("4GB")
    '4GB'
    """
    import re

    text = str(value).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text, re.IGNORECASE):
        raise ValueError(f"memory size must look like 4GB or 512MB, not {value!r}")
    return text
