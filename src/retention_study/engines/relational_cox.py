"""The Cox engine's Newton steps evaluated where the episodes live (DuckDB, Spark).

:class:`~retention_study.survival.CoxFitter` spends each step in
:func:`~retention_study.survival.riskset.risk_set_sums`: per event-time slot, the sums of
w, w*x and w*x*x' over the risk set and over the rows departing there (w = exp(x'beta)).
Here that is one aggregate query over the engine's episode table, with beta (and the
shift that keeps exp() in range) as query parameters::

    SELECT last_slot, SUM(w), SUM(w*x_a), SUM(w*x_a*x_b) FROM rows GROUP BY last_slot

and the same over the departing rows (the tied groups Efron needs; kept apart once, a few
% of the rows)

(plus, when a row is at risk at several event times, the rows subtracted again below
their first slot and a running sum over the slots in numpy, as the pandas path does).
Only O(slots x p^2) numbers come back per step: on the month grid about 120 x 36. The
Newton loop, step halving, separation and convergence checks are CoxFitter's own
(:class:`RelationalCoxFitter` subclasses it); only the source of the sums differs.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from retention_study.engines.duckdb_engine import DuckDBEngine
>>> from retention_study.survival import CoxFitter
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=500)
>>> df = pd.DataFrame({"start": 0.0, "stop": np.ceil(rng.exponential(5 / np.exp(0.5 * x))),
...                    "event": 1, "x": x})
>>> eng = DuckDBEngine()
>>> eng.register_frame("eps", df)
>>> fit = RelationalCoxFitter().fit(RelationalCoxData(eng, "eps", ["x"]), ["x"])
>>> bool(abs(fit.params_["x"] - CoxFitter().fit(df, ["x"]).params_["x"]) < 1e-10)
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention_study.errors import AnalysisError
from retention_study.survival import CoxFitter
from retention_study.survival.riskset import RiskSetSums


class RelationalCoxData:
    """Episodes in an engine, prepared once for any number of fits (the CoxData of SQL).

    Slots are numbered once (the distinct event times, fetched: they are few), each row
    gets its first and last slot and its covariates centred on the rows at risk, in one
    table ``rows_table`` of the engine. ``sd`` and ``n_rows`` are over all input rows,
    as :class:`~retention_study.survival.CoxData` has them.
    """

    def __init__(self, engine, table: str, covariates, start_col: str = "start",
                 stop_col: str = "stop", event_col: str = "event",
                 rows_table: str | None = None) -> None:
        from retention_study.engines.sql import quote

        rows_table = rows_table or f"{table}_cox"  # one per episode table (shared sessions)
        self.engine, self.table, self.rows_table = engine, table, rows_table
        self.columns = list(covariates)
        p = len(self.columns)
        s, t, ev = quote(start_col), quote(stop_col), quote(event_col)
        q = [quote(c) for c in self.columns]
        stats = engine.fetch(
            f"SELECT COUNT(*) AS n, SUM(CASE WHEN {ev} = 1 THEN 1 ELSE 0 END) AS d"
            + "".join(f", STDDEV_SAMP({c}) AS sd{j}" for j, c in enumerate(q))
            + f" FROM {table}")
        self.n_rows = int(stats["n"].iloc[0])
        if not int(stats["d"].iloc[0] or 0):
            raise AnalysisError("Cox model: no departures")
        self.sd = np.array([float(stats[f"sd{j}"].iloc[0]) for j in range(p)])
        times = engine.fetch(f"SELECT DISTINCT {t} AS t FROM {table} WHERE {ev} = 1")["t"]
        self.times = np.sort(times.to_numpy(float))
        values = engine.fetch(f"SELECT DISTINCT v FROM (SELECT {s} AS v FROM {table} "
                              f"UNION SELECT {t} FROM {table}) AS u")["v"].to_numpy(float)
        engine.register_frame(f"{rows_table}_slots", pd.DataFrame({
            "v": values, "n": np.searchsorted(self.times, values, side="right")}))
        joined = (f"FROM {table} AS e JOIN {rows_table}_slots AS ms ON e.{s} = ms.v "
                  f"JOIN {rows_table}_slots AS me ON e.{t} = me.v WHERE ms.n <= me.n - 1")
        means = engine.fetch("SELECT COUNT(*) AS n" + "".join(
            f", AVG(CAST(e.{c} AS DOUBLE)) AS m{j}" for j, c in enumerate(q)) + " " + joined)
        self.mean = np.array([float(means[f"m{j}"].iloc[0]) for j in range(p)])
        from retention_study.engines.sql import literal

        engine.materialise(rows_table, "SELECT ms.n AS first_slot, me.n - 1 AS last_slot, "
                           f"e.{ev} = 1 AS ev" + "".join(
                               f", CAST(e.{c} AS DOUBLE) - {literal(float(self.mean[j]))} AS x{j}"
                               for j, c in enumerate(q)) + " " + joined)
        info = engine.fetch(
            "SELECT COUNT(*) AS n, SUM(CASE WHEN first_slot <> last_slot THEN 1 ELSE 0 END) "
            "AS spans, SUM(CASE WHEN ev THEN 1 ELSE 0 END) AS d"
            + "".join(f", SUM(CASE WHEN ev THEN x{j} ELSE 0 END) AS xs{j}" for j in range(p))
            + f" FROM {rows_table}")
        # the departing rows (a few % of all) once more on their own: the tied-group sums
        # then scan them only, not every row at risk
        engine.materialise(rows_table + "_dead", f"SELECT * FROM {rows_table} WHERE ev")
        self.n_kept = int(info["n"].iloc[0])
        self.grid = int(info["spans"].iloc[0] or 0) == 0
        self.n_events = int(info["d"].iloc[0] or 0)
        self.xsum_dead = np.array([float(info[f"xs{j}"].iloc[0]) for j in range(p)])
        self.strata = None
        self.id_col = None
        self.queries = 0  # queries over all rows (two per evaluation: the max, the sums)

    def risk_set_sums(self, columns, beta: np.ndarray, second: bool = True) -> RiskSetSums:
        """:func:`~retention_study.survival.riskset.risk_set_sums` of ``columns`` at ``beta``.

        Three queries: the largest x'beta, one GROUP BY slot over the rows at risk, one over
        the departing rows (a few % of the rows)."""
        pos = [self.columns.index(c) for c in columns]
        p = len(pos)
        k = len(self.times)
        eta = " + ".join(f"x{j} * $b{i}" for i, j in enumerate(pos)) or "0.0"
        params = {f"b{i}": float(b) for i, b in enumerate(beta)}
        shift = self.engine.fetch(f"SELECT MAX({eta}) AS m FROM {self.rows_table}",
                                  params=params or None)["m"].iloc[0]
        shift = float(shift) if shift is not None and np.isfinite(shift) else 0.0
        params["shift"] = shift
        xs = [f"x{j}" for j in pos]
        pairs = [(a, b) for a in range(p) for b in range(a, p)] if second else []
        terms = ["w", *[f"w * {xs[a]}" for a in range(p)],
                 *[f"w * {xs[a]} * {xs[b]}" for a, b in pairs]]
        risk = ", ".join(f"SUM(sg * {t}) AS r{i}" for i, t in enumerate(terms))
        dead = ", ".join(f"SUM({t}) AS d{i}" for i, t in enumerate(terms))
        cols = ", ".join(xs)
        cols = (", " + cols) if cols else ""
        inner = (f"SELECT last_slot AS slot, 1.0 AS sg, EXP({eta} - $shift) AS w{cols} "
                 f"FROM {self.rows_table}")
        if not self.grid:  # rows at risk at several slots: taken off again below the first
            inner += (f" UNION ALL SELECT first_slot - 1 AS slot, -1.0 AS sg, "
                      f"EXP({eta} - $shift) AS w{cols} FROM {self.rows_table} "
                      f"WHERE first_slot > 0")
        res = self.engine.fetch(f"SELECT slot, {risk} FROM ({inner}) AS u GROUP BY slot",
                                params=params)
        died = self.engine.fetch(
            f"SELECT slot, {dead}, COUNT(*) AS nd FROM (SELECT last_slot AS slot, "
            f"EXP({eta} - $shift) AS w{cols} FROM {self.rows_table}_dead) AS u GROUP BY slot",
            params=params)
        self.queries += 2
        self.queries += 1  # the tied-group query is over the departing rows only
        slot = res["slot"].to_numpy(np.int64)
        inside = slot >= 0
        slot, res = slot[inside], res[inside]
        nt = len(terms)
        r = np.zeros((k, nt))
        d = np.zeros((k, nt))
        r[slot] = res[[f"r{i}" for i in range(nt)]].to_numpy(float)
        dslot = died["slot"].to_numpy(np.int64)
        d[dslot] = died[[f"d{i}" for i in range(nt)]].to_numpy(float)
        n_dead = np.zeros(k)
        n_dead[dslot] = died["nd"].to_numpy(float)
        if not self.grid:
            r = np.cumsum(r[::-1], axis=0)[::-1]
        s0, s1 = r[:, 0], r[:, 1:1 + p]
        e0, e1 = d[:, 0], d[:, 1:1 + p]
        s2 = e2 = None
        if second:
            s2, e2 = np.zeros((k, p, p)), np.zeros((k, p, p))
            for i, (a, b) in enumerate(pairs):
                s2[:, a, b] = s2[:, b, a] = r[:, 1 + p + i]
                e2[:, a, b] = e2[:, b, a] = d[:, 1 + p + i]
        return RiskSetSums(s0, s1, s2, e0, e1, e2, n_dead, n_dead.copy(), shift)


class RelationalCoxFitter(CoxFitter):
    """:class:`~retention_study.survival.CoxFitter` whose per-step sums are engine queries.

    Same parameters, attributes and Newton loop; fits a :class:`RelationalCoxData`
    (no strata, case weights or residuals: those stay with the pandas engine).
    """

    def fit(self, df, covariates, start_col: str = "start", stop_col: str = "stop",
            event_col: str = "event", strata=None, id_col: str | None = None,
            weights=None, initial=None) -> RelationalCoxFitter:
        if not isinstance(df, RelationalCoxData):
            return super().fit(df, covariates, start_col, stop_col, event_col, strata, id_col,
                               weights, initial)
        if strata or weights is not None or id_col:
            raise NotImplementedError("relational Cox fits take no strata, weights or id")
        data = df
        covariates = list(covariates)
        self.data_ = data
        self._weights = None
        self.columns_ = covariates
        self.n_events_ = data.n_events
        self.n_rows_ = data.n_rows
        pos = [data.columns.index(c) for c in covariates]
        xsum_dead = data.xsum_dead[pos]
        sd = data.sd[pos]
        pen = np.broadcast_to(np.asarray(self.penalizer, float), (len(covariates),))
        self._penalized_fit = bool(np.any(pen > 0))
        ridge = pen * data.n_rows * sd ** 2
        beta0 = (np.zeros(len(covariates)) if initial is None
                 else np.asarray(initial, float).reshape(-1).copy())
        beta, ll, info = self._newton(None, None, beta0, xsum_dead, ridge)
        self._finish(beta, ll, info)
        return self

    def _risk_set_sums(self, x, index, beta, need_info: bool):
        if not isinstance(getattr(self, "data_", None), RelationalCoxData):
            return super()._risk_set_sums(x, index, beta, need_info)
        return self.data_.risk_set_sums(self.columns_, beta, second=need_info)
