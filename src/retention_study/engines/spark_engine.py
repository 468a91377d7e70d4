"""Apache Spark (pyspark): the same relational description as Spark SQL, for data past one machine.

Each step of :mod:`.relational` is transpiled by sqlglot to Spark SQL and cached as a
temporary view; the Cox steps (:mod:`.relational_cox`) are Spark jobs whose only inputs
from the driver are beta and the shift, sent as named query parameters inside the plan
(a few doubles: Spark ships them to every executor with the tasks, a broadcast in
effect), and whose only results are the per-slot sums (slots x (1 + p + p(p+1)/2)
doubles). The episodes never reach the driver unless :meth:`EngineTimeline.to_timeline`
is asked for them.

pyspark and a Java runtime are an optional extra (``make setup-spark``:
``pip install -e .[spark]`` and Debian's ``openjdk-17-jre-headless``).
"""

from __future__ import annotations

import pandas as pd

from retention_study.engines.base import Engine


def spark_available() -> tuple[bool, str]:
    """Whether pyspark imports and a Java runtime is on PATH (and why not)."""
    import shutil

    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False, "pyspark is not installed (make setup-spark)"
    if shutil.which("java") is None:
        return False, "no Java runtime on PATH (Debian: openjdk-17-jre-headless; make setup-spark)"
    return True, ""


def local_session(master: str = "local[2]", app: str = "retention-study", **conf):
    """A SparkSession for the study (small shuffles: the aggregates are per slot, not per row)."""
    import os
    import sys

    from pyspark.sql import SparkSession

    # Python workers run this interpreter (the venv with the study's packages), never
    # whatever `python3` the PATH finds first, unless the user chose one. PySpark reads
    # only the environment for this (not spark.pyspark.python), when the context starts.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master).appName(app)
               .config("spark.sql.shuffle.partitions", conf.pop("shuffle_partitions", 2))
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    for k, v in conf.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


class SparkEngine(Engine):
    """A SparkSession running the study's SQL.

    Parameters
    ----------
    session : SparkSession, optional
        An existing session (a cluster's, a notebook's); default :func:`local_session`.
    master : str
        Used when no session is given (``study.spark_master``).
    """

    dialect = "spark"
    name = "spark"

    def __init__(self, session=None, master: str = "local[2]") -> None:
        self.spark = session or local_session(master)
        self._cached: dict = {}

    def execute(self, sql: str) -> None:
        self.spark.sql(self.sql(sql)).collect()

    def materialise(self, name: str, sql: str) -> None:
        self._keep(name, self.spark.sql(self.sql(sql)))

    def _keep(self, name: str, df) -> None:
        """``df`` persisted as the view ``name``, the one it replaces unpersisted."""
        old = self._cached.pop(name, None)
        # cached lazily: filled by the first job that reads it, so no job of its own
        df = df.persist()
        df.createOrReplaceTempView(name)
        if old is not None:
            old.unpersist()
        self._cached[name] = df

    def fetch(self, sql: str, params=None) -> pd.DataFrame:
        query = self.sql(sql)
        df = self.spark.sql(query) if params is None else self.spark.sql(query, args=params)
        return df.toPandas()

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        from pyspark.sql import types as T

        schema = T.StructType([T.StructField(c, _spark_type(frame[c]), True)
                               for c in frame.columns])
        rows = [tuple(None if _missing(v) else _plain(v) for v in rec)
                for rec in frame.itertuples(index=False, name=None)]
        self._keep(name, self.spark.createDataFrame(rows, schema=schema))

    def drop(self, name: str) -> None:
        df = self._cached.pop(name, None)
        if df is not None:
            df.unpersist()
        self.spark.catalog.dropTempView(name)

    def register_files(self, customers: str, price_events: str | None,
                       contact_events: str | None, controls=(), numeric_controls=()) -> None:
        """Canonical shape A Parquet files (paths or directories) as the three input views.

        Read by the executors, never by the driver; like DuckDB's ``register_files`` this
        trusts files that already passed the data contract. ``seq`` is Spark's
        ``monotonically_increasing_id()`` (file order within a customer's rows).
        """
        def day(col: str) -> str:
            return f"DATEDIFF(CAST({col} AS DATE), DATE '1970-01-01')"

        self.spark.read.parquet(customers).createOrReplaceTempView("src_customers")
        extra = "".join(f", `{c}`" for c in controls)
        self._view("rs_customers", f"SELECT CAST(customer_id AS STRING) AS customer_id, "
                   f"{day('start_date')} AS start_day, {day('end_date')} AS end_day, "
                   f"{day('notice_date')} AS notice_day{extra} FROM src_customers")
        self._numeric = {c: c in set(numeric_controls) for c in controls}
        self._has = {"price": bool(price_events), "contact": bool(contact_events)}
        if price_events:
            self.spark.read.parquet(price_events).createOrReplaceTempView("src_price")
            self._view("rs_price", f"SELECT CAST(customer_id AS STRING) AS customer_id, "
                       f"{day('effective_date')} AS day, monotonically_increasing_id() AS seq, "
                       "CAST(monthly_price AS DOUBLE) AS monthly_price, "
                       "CASE WHEN isnan(CAST(new_customer_price AS DOUBLE)) THEN NULL "
                       "ELSE CAST(new_customer_price AS DOUBLE) END AS new_customer_price "
                       "FROM src_price")
        if contact_events:
            self.spark.read.parquet(contact_events).createOrReplaceTempView("src_contact")
            self._view("rs_contact", f"SELECT CAST(customer_id AS STRING) AS customer_id, "
                       f"{day('contact_date')} AS day, monotonically_increasing_id() AS seq, "
                       "direction = 'outbound' AS outbound FROM src_contact")
        self._empty_tables()

    def _view(self, name: str, spark_sql: str) -> None:
        self._keep(name, self.spark.sql(spark_sql))  # Spark SQL already: not transpiled

    def register_table(self, name: str, source: str) -> None:
        """A Spark table or a Parquet path as ``name`` (``data.format: spark`` inputs)."""
        if "/" in source or source.endswith(".parquet"):
            df = self.spark.read.parquet(source)
        else:
            df = self.spark.table(source)
        df.createOrReplaceTempView(name)


def _missing(v) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _plain(v):
    """numpy scalars as Python ones (Spark's row converter wants those)."""
    return v.item() if hasattr(v, "item") else v


def _spark_type(s: pd.Series):
    from pyspark.sql import types as T

    if pd.api.types.is_bool_dtype(s):
        return T.BooleanType()
    if pd.api.types.is_integer_dtype(s):
        return T.LongType()
    if pd.api.types.is_float_dtype(s):
        return T.DoubleType()
    return T.StringType()
