"""The episode logic once, as SQL: one relational description run by DuckDB and Spark.

:class:`~retention_study.episodes.timeline.TimelineBuilder` (pandas/numpy) is the reference
builder; this module says the same thing as a sequence of ``SELECT`` statements written
in DuckDB's dialect and transpiled by `sqlglot <https://sqlglot.com>`_ for Spark SQL, so
the engines never hold a hand-kept copy each. The tests compare all three row for row.

Inputs are three relations with fixed names and canonical columns (the engines map a
:class:`~retention_study.data.schema.StudyData` or files onto them):

- ``rs_customers``: ``customer_id``, ``start_day``, ``end_day``, ``notice_day`` (whole days
  since 1970, NULL when absent), and the control columns as they came;
- ``rs_price``: ``customer_id``, ``day``, ``seq`` (input order, breaks same-day ties),
  ``monthly_price``, ``new_customer_price`` (NULL where unknown);
- ``rs_contact``: ``customer_id``, ``day``, ``seq``, ``outbound`` (boolean).

The logic (month grid, as in :mod:`retention_study.episodes.timeline`):

1. follow-up per customer (departure at the notice when guarded), tenure months
   ``ceil(days / (365.25/12))`` of entry and exit;
2. one row per tenure month ``b`` in ``[entry, exit)`` (``UNNEST(GENERATE_SERIES)``,
   Spark ``EXPLODE(SEQUENCE)``), its reference day ``start + floor(b * 365.25/12) - lag``;
3. the episode rows and the (guarded) events of each customer in one stream ordered by
   day; "the last price / outbound contact before the reference day" is a ``LAST_VALUE``
   / ``MAX`` over ``RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING`` and "contacts in
   the last 12 months" a ``SUM`` over ``RANGE BETWEEN 365 PRECEDING AND 1 PRECEDING``:
   one sort of (episodes + events) by customer and day, no per-row search;
4. customers with an unusable row are excluded whole, counted per reason like the
   pandas builder (the ledger entries are the same).

Only the month grid is described here; ``grid: week|day`` stays on the pandas engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from retention_study.engines.sql import literal, quote
from retention_study.episodes.events import WINDOW_12M_DAYS

DPM = "CAST(30.4375 AS DOUBLE)"  # 365.25 / 12, a dyadic fraction: exact in binary

#: The tables each step creates, in order (an engine materialises each before the next).
STEP_NAMES = ("rs_spans", "rs_kept", "rs_rows", "rs_price_f", "rs_price_day", "rs_price_first",
              "rs_contact_f", "rs_stream", "rs_flags", "rs_episodes_<n>")


@dataclass
class Facts:
    """What the data holds that decides which columns the episodes get (small queries).

    Attributes
    ----------
    has_price_table, has_contact_table : bool
        The table was given and is not empty.
    price_rows, outbound_rows, inbound_rows : int
        Rows of the studied customers (price: after the notice guard).
    ncp_known : bool
        Some studied customer has a new-customer price on record.
    controls : dict
        Control column -> ``("numeric", None)`` or ``("levels", [levels...], reference)``.
    """

    has_price_table: bool
    has_contact_table: bool
    price_rows: int = 0
    outbound_rows: int = 0
    inbound_rows: int = 0
    ncp_known: bool = False
    controls: dict = field(default_factory=dict)


@dataclass
class EpisodePlan:
    """The SQL steps of one build of the episodes (options as in ``build_timeline``)."""

    as_of_day: int
    observation_day: int | None
    lag_days: int
    notice_guard: bool
    contact_cap_months: float
    price_increase_window_days: int
    include_price_level: bool
    controls: list

    # ----------------------------------------------------------------- follow-up and rows
    def spans(self) -> str:
        """Follow-up per customer: entry/exit tenure days and months, departure, cut-off."""
        a = self.as_of_day
        if self.notice_guard:
            depart = ("CASE WHEN notice_day IS NOT NULL AND end_day IS NOT NULL "
                      "THEN LEAST(notice_day, end_day) WHEN notice_day IS NOT NULL "
                      "THEN notice_day ELSE end_day END")
            left = f"COALESCE(({depart}) <= {a}, FALSE)"
        else:
            depart = f"CASE WHEN end_day IS NOT NULL THEN LEAST(end_day, {a}) ELSE {a} END"
            left = (f"(COALESCE(notice_day <= {a}, FALSE) OR COALESCE(end_day <= {a}, FALSE))")
        obs = self.observation_day
        entry = "CAST(0 AS BIGINT)" if obs is None else f"GREATEST({obs} - start_day, 0)"
        return f"""
SELECT customer_id, start_day, entry, exit_day - start_day AS exit_rel, left_,
       CASE WHEN left_ THEN depart ELSE {a} + 1 END AS cutoff_day,
       CAST(CEIL(entry / {DPM}) AS BIGINT) AS entry_u,
       CAST(CEIL((exit_day - start_day) / {DPM}) AS BIGINT) AS exit_u,
       {"FALSE" if obs is None else f"(left_ AND exit_day < {obs})"} AS gone
FROM (SELECT *, CASE WHEN left_ THEN depart ELSE {a} END AS exit_day
      FROM (SELECT customer_id, start_day, {depart} AS depart, {left} AS left_,
                   {entry} AS entry
            FROM rs_customers) AS c0) AS c1"""

    @staticmethod
    def kept() -> str:
        """Customers with time at risk on the grid (not gone before observation_start)."""
        return ("SELECT customer_id, start_day, cutoff_day, left_, entry_u, exit_u FROM rs_spans "
                "WHERE NOT gone AND exit_u > entry_u")

    def rows(self) -> str:
        """One row per customer and tenure month at risk, with its reference day."""
        if self.notice_guard:
            eval_day = f"start_day + CAST(FLOOR(b * {DPM}) AS BIGINT)"
        else:  # the naive look-ahead: what is known by the end of the interval
            eval_day = f"start_day + CAST(FLOOR((b + 1) * {DPM}) AS BIGINT) + 1"
        return f"""
SELECT customer_id, b, start_day, {eval_day} AS eval_day,
       {eval_day} - {self.lag_days} AS ref_day,
       CASE WHEN left_ AND b + 1 = exit_u THEN 1 ELSE 0 END AS event
FROM (SELECT customer_id, start_day, left_, exit_u,
             UNNEST(GENERATE_SERIES(entry_u, exit_u - 1)) AS b FROM rs_kept) AS r"""

    # ----------------------------------------------------------------- events
    def price_f(self) -> str:
        """Studied customers' price events: new-customer price carried forward, rises, guard."""
        guard = "WHERE day < cutoff_day" if self.notice_guard else ""
        return f"""
SELECT customer_id, day, seq, price, ncp, rose FROM (
  SELECT p.customer_id, p.day, p.seq, p.monthly_price AS price, k.cutoff_day,
         LAST_VALUE(p.new_customer_price IGNORE NULLS) OVER (
           PARTITION BY p.customer_id ORDER BY p.day, p.seq
           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ncp,
         CASE WHEN p.monthly_price > LAG(p.monthly_price) OVER (
           PARTITION BY p.customer_id ORDER BY p.day, p.seq) THEN 1 ELSE 0 END AS rose
  FROM rs_price AS p JOIN rs_kept AS k ON p.customer_id = k.customer_id) AS p1 {guard}"""

    @staticmethod
    def price_day() -> str:
        """One price per customer and day (the day's last event), rises counted."""
        return ("SELECT customer_id, day, ARG_MAX(price, seq) AS price, ARG_MAX(ncp, seq) AS ncp, "
                "SUM(rose) AS rises FROM rs_price_f GROUP BY customer_id, day")

    @staticmethod
    def price_first() -> str:
        """Each customer's first price event (the sign-up price)."""
        return """
SELECT customer_id, day AS first_day, price AS first_price, ncp AS first_ncp FROM (
  SELECT customer_id, day, price, ncp,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY day, seq) AS rn
  FROM rs_price_f) AS f WHERE rn = 1"""

    def contact_f(self) -> str:
        """Studied customers' contacts (guarded: dated before the departure)."""
        guard = "AND c.day < k.cutoff_day" if self.notice_guard else ""
        return f"""
SELECT c.customer_id, c.day, CASE WHEN c.outbound THEN 1 ELSE 0 END AS outb
FROM rs_contact AS c JOIN rs_kept AS k ON c.customer_id = k.customer_id WHERE TRUE {guard}"""

    # ----------------------------------------------------------------- the stream
    def stream(self, facts: Facts) -> str:
        """Episode rows with what was known strictly before each reference day."""
        parts = ["""
SELECT customer_id, ref_day AS k, 0 AS kind, b, eval_day, start_day, event,
       CAST(NULL AS DOUBLE) AS price, CAST(NULL AS DOUBLE) AS ncp, 0 AS rises,
       0 AS outb, 0 AS inb, CAST(NULL AS BIGINT) AS out_day FROM rs_rows"""]
        if facts.price_rows:
            parts.append("""
SELECT customer_id, day, 1, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       0, price, ncp, rises, 0, 0, CAST(NULL AS BIGINT) FROM rs_price_day""")
        if facts.outbound_rows or facts.inbound_rows:
            parts.append("""
SELECT customer_id, day, 1, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       0, CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), 0, outb, 1 - outb,
       CASE WHEN outb = 1 THEN day END FROM rs_contact_f""")
        w = "PARTITION BY customer_id ORDER BY k"
        before = f"OVER ({w} RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        year = f"OVER ({w} RANGE BETWEEN {WINDOW_12M_DAYS} PRECEDING AND 1 PRECEDING)"
        recent = f"OVER ({w} RANGE BETWEEN {self.price_increase_window_days} PRECEDING " \
                 "AND 1 PRECEDING)"
        return f"""
SELECT customer_id, b, eval_day, start_day, event, last_price, last_ncp, rises_recent,
       last_out, out_12m, in_12m FROM (
  SELECT *,
         LAST_VALUE(price IGNORE NULLS) {before} AS last_price,
         LAST_VALUE(ncp IGNORE NULLS) {before} AS last_ncp,
         SUM(rises) {recent} AS rises_recent,
         MAX(out_day) {before} AS last_out,
         SUM(outb) {year} AS out_12m,
         SUM(inb) {year} AS in_12m
  FROM ({" UNION ALL ".join(parts)}) AS u) AS s WHERE kind = 0"""

    # ----------------------------------------------------------------- covariates
    def covariates(self, facts: Facts) -> tuple[list, dict, list, list]:
        """Columns (name, SQL expression over the stream), definitions, unmeasured, bad rows.

        Bad rows are ``(block, reason, SQL condition)``; the texts are those of
        :mod:`retention_study.episodes.timeline` (a test compares them).
        """
        cols, defs, unmeasured, bad = [], {}, [], []
        price = ("CASE WHEN last_price IS NOT NULL THEN last_price "
                 "WHEN first_day <= s.start_day THEN first_price END")
        ncp = ("CASE WHEN last_price IS NOT NULL THEN last_ncp "
               "WHEN first_day <= s.start_day THEN first_ncp END")
        if not facts.has_price_table:
            unmeasured.append("price: no price events in the data")
        elif not facts.price_rows:
            unmeasured.append("price: no price events for the customers studied")
        else:
            bad.append(("price", "no price on record at the start of an interval",
                        f"({price}) IS NULL"))
            bad.append(("price", "monthly price missing or not above 0",
                        f"({price}) IS NOT NULL AND NOT COALESCE(({price}) > 0, FALSE)"))
            if facts.ncp_known:
                bad.append(("price", "new-customer price unknown even after carrying the last "
                            "known one forward",
                            f"({price}) IS NOT NULL AND NOT COALESCE(({ncp}) > 0, FALSE)"))
                cols.append(("price", "loyalty_penalty",
                             f"CASE WHEN ({price}) > 0 AND ({ncp}) > 0 "
                             f"THEN LN(({price}) / ({ncp})) END"))
                defs["loyalty_penalty"] = (
                    "log of the customer's monthly price over the price a new customer paid "
                    "for the same product (0 = same price, 0.1 = about 10% more)")
            else:
                unmeasured.append("loyalty penalty: the data has no new-customer price, so the "
                                  "price block uses the price level (log_price) instead")
            if self.include_price_level or not facts.ncp_known:
                cols.append(("price", "log_price",
                             f"CASE WHEN ({price}) > 0 THEN LN({price}) END"))
                defs["log_price"] = "log of the customer's monthly price (the price level)"
            cols.append(("price", "price_increase_recent",
                         "CAST(CASE WHEN COALESCE(rises_recent, 0) > 0 THEN 1 ELSE 0 END "
                         "AS BIGINT)"))
            defs["price_increase_recent"] = (
                f"1 if the customer's price went up within the last "
                f"{self.price_increase_window_days} days, else 0")
        cap = float(self.contact_cap_months)
        if not facts.outbound_rows:
            unmeasured.append("supplier contact: no outbound contacts in the data")
        else:
            cols.append(("contact", "months_since_contact",
                         f"LEAST({literal(cap)}, "
                         f"CAST(eval_day - COALESCE(last_out, s.start_day) AS DOUBLE) / {DPM})"))
            cols.append(("contact", "outbound_12m", "CAST(COALESCE(out_12m, 0) AS BIGINT)"))
            defs["months_since_contact"] = (
                f"months since the supplier last contacted the customer (since joining if "
                f"never), capped at {cap:g}")
            defs["outbound_12m"] = "contacts initiated by the supplier in the last 12 months"
        if not facts.inbound_rows:
            unmeasured.append("service: no inbound contacts in the data")
        else:
            cols.append(("service", "inbound_12m", "CAST(COALESCE(in_12m, 0) AS BIGINT)"))
            defs["inbound_12m"] = ("contacts the customer initiated in the last 12 months (a "
                                   "service signal, not the supplier's attention)")
        for col in self.controls:
            kind = facts.controls[col]
            q = "c." + quote(col)
            if kind[0] == "numeric":
                bad.append(("controls", f"missing value in {col}",
                            f"({q} IS NULL OR ISNAN(CAST({q} AS DOUBLE)))"))
                cols.append(("controls", col, f"CAST({q} AS DOUBLE)"))
                defs[col] = f"{col} as recorded"
                continue
            levels, ref = kind[1], kind[2]
            if any(lv is None for lv in levels):
                raise ValueError("levels must not contain NULL")
            bad.append(("controls", f"missing value in {col}", f"{q} IS NULL"))
            for level in levels:
                if level != ref:
                    name = f"{col}[{level}]"
                    cols.append(("controls", name, f"CAST(CASE WHEN CAST({q} AS VARCHAR) = "
                                 f"{literal(level)} THEN 1 ELSE 0 END AS BIGINT)"))
                    defs[name] = f"1 if {col} is {level!r}, else 0 (reference: {ref!r})"
        return cols, defs, unmeasured, bad

    def flags(self, facts: Facts) -> tuple[str, list]:
        """Per customer, which exclusion reason (the first, in the builder's order) hits it."""
        _, _, _, bad = self.covariates(facts)
        if not bad:
            return "SELECT customer_id, 0 AS reason FROM rs_kept WHERE FALSE", []
        hits = ", ".join(f"MAX(CASE WHEN {cond} THEN 1 ELSE 0 END) AS h{i}"
                         for i, (_, _, cond) in enumerate(bad))
        first = " ".join(f"WHEN h{i} = 1 THEN {i + 1}" for i in range(len(bad)))
        return f"""
SELECT customer_id, CASE {first} ELSE 0 END AS reason FROM (
  SELECT s.customer_id, {hits}
  FROM rs_stream AS s LEFT JOIN rs_price_first AS pf ON s.customer_id = pf.customer_id
       JOIN rs_customers AS c ON s.customer_id = c.customer_id
  GROUP BY s.customer_id) AS h WHERE {" OR ".join(f"h{i} = 1" for i in range(len(bad)))}""", \
            [(block, reason) for block, reason, _ in bad]

    def episodes(self, facts: Facts, order: bool = True) -> str:
        """The episode rows of the customers kept: customer_id, start, stop, event, covariates."""
        cols, _, _, _ = self.covariates(facts)
        select = ",\n       ".join(f"{expr} AS {quote(name)}" for _, name, expr in cols)
        select = (",\n       " + select) if select else ""
        sort = "ORDER BY s.customer_id, s.b" if order else ""
        return f"""
SELECT s.customer_id, CAST(s.b AS DOUBLE) AS start, CAST(s.b + 1 AS DOUBLE) AS stop,
       CAST(s.event AS BIGINT) AS event{select}
FROM rs_stream AS s LEFT JOIN rs_price_first AS pf ON s.customer_id = pf.customer_id
     JOIN rs_customers AS c ON s.customer_id = c.customer_id
WHERE s.customer_id NOT IN (SELECT customer_id FROM rs_flags) {sort}"""

    # ----------------------------------------------------------------- facts and counts
    @staticmethod
    def fact_queries() -> dict:
        """Scalar queries deciding the columns (run after rs_price_f and rs_contact_f)."""
        return {
            "price_rows": "SELECT COUNT(*) FROM rs_price_f",
            "outbound_rows": "SELECT COUNT(*) FROM rs_contact AS c JOIN rs_kept AS k "
                             "ON c.customer_id = k.customer_id WHERE c.outbound",
            "inbound_rows": "SELECT COUNT(*) FROM rs_contact AS c JOIN rs_kept AS k "
                            "ON c.customer_id = k.customer_id WHERE NOT c.outbound",
            "ncp_known": "SELECT COUNT(*) FROM rs_price AS p JOIN rs_kept AS k "
                         "ON p.customer_id = k.customer_id WHERE p.new_customer_price IS NOT NULL",
        }

    @staticmethod
    def level_query(col: str) -> str:
        """Levels of a categorical control among the studied customers, with their counts."""
        q = quote(col)
        return (f"SELECT CAST(c.{q} AS VARCHAR) AS level, COUNT(*) AS n FROM rs_customers AS c "
                f"JOIN rs_kept AS k ON c.customer_id = k.customer_id "
                f"WHERE c.{q} IS NOT NULL GROUP BY CAST(c.{q} AS VARCHAR)")

    @staticmethod
    def exclusion_queries(has_price: bool, has_contact: bool) -> list:
        """``(table, reason, kind, SQL count)`` in the order the pandas builder records them
        (those before the flags; :meth:`dropped_event_queries` after)."""
        out = [
            ("customers", "left before observation_start (not at risk in the study period)",
             "out_of_scope", "SELECT COUNT(*) FROM rs_spans WHERE gone"),
            ("customers", "no time at risk on the time grid (joined on as_of, or left before the "
             "first grid point after entering)", "out_of_scope",
             "SELECT COUNT(*) FROM rs_spans WHERE NOT gone AND exit_u <= entry_u"),
        ]
        for table, present in (("price", has_price), ("contact", has_contact)):
            if present:
                out.append((f"{table}_events",
                            "customer not at risk on the timeline (see customers)",
                            "out_of_scope",
                            f"SELECT COUNT(*) FROM rs_{table} AS e WHERE e.customer_id NOT IN "
                            f"(SELECT customer_id FROM rs_kept)"))
        return out

    @staticmethod
    def dropped_event_queries(has_price: bool, has_contact: bool) -> list:
        out = []
        for table, present in (("price", has_price), ("contact", has_contact)):
            if present:
                out.append((f"{table}_events", "customer excluded on the timeline (see customers)",
                            "invalid",
                            f"SELECT COUNT(*) FROM rs_{table} AS e WHERE e.customer_id IN "
                            f"(SELECT customer_id FROM rs_flags)"))
        return out
