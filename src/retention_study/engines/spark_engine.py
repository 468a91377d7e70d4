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
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master).appName(app)
               .config("spark.sql.shuffle.partitions", conf.pop("shuffle_partitions", 4))
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "false"))
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
        df = self.spark.sql(self.sql(sql))
        old = self._cached.pop(name, None)
        df = df.persist()
        df.createOrReplaceTempView(name)
        df.count()  # materialise now: later steps read it, and its source may be replaced
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
        df = self.spark.createDataFrame(rows, schema=schema)
        old = self._cached.pop(name, None)
        df = df.persist()
        df.createOrReplaceTempView(name)
        df.count()
        if old is not None:
            old.unpersist()
        self._cached[name] = df

    def drop(self, name: str) -> None:
        df = self._cached.pop(name, None)
        if df is not None:
            df.unpersist()
        self.spark.catalog.dropTempView(name)

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
