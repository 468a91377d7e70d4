"""Price against contact, head to head, and the verdict in plain words.

:class:`HeadToHead` cross-validates the block models over customers: each fold's models
are fitted on the other customers and scored on the held-out customers' episodes by

- the **held-out partial log-likelihood**: for each held-out departure, log of its risk
  score over the sum of the risk scores of the held-out rows at risk then (Breslow ties);
- the **concordance**: for each held-out departure at time t, the share of held-out rows
  at risk at t (start < t <= stop, other departures at t excluded) whose risk score is
  lower than the departing row's (ties count 1/2). With time-varying covariates every
  comparison uses the covariate values of the rows current at t.

Scores are summed per customer; the difference "contact minus price" gets a percentile
bootstrap CI over customers (customers are the independent units; 5 folds are too few to
resample). Each resample also moves each fold's coefficients by a one-step Newton update
from the fold's fit (its variance matrix times the resample's change in the per-customer
score contributions) and the held-out log-likelihood with them (to second order), so the
CI of the log-likelihood covers both the held-out customers and the refit noise; the
concordance CI keeps each fold's coefficients fixed (ranks have no derivative).
``bootstrap_method`` in the results says so.

All fits are the engine's (:class:`retention_study.survival.CoxFitter`) on the block
models' prepared rows: a fold is the same rows with the held-out customers weighted 0,
started from the full-data fit, and the held-out scores of all folds come from one pass
of the engine's risk-set sums with the folds as strata.

:func:`~retention_study.analysis.verdict.decide_verdict` (re-exported here) turns the block models,
the head-to-head and the what-if levers into a label and a sentence in which every number
is computed.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from retention_study.analysis.models import MODELS, BlockModels, fit_cox
from retention_study.analysis.records import to_records

# The verdict rule lives in retention_study.analysis.verdict; these names stay importable from here.
from retention_study.analysis.verdict import HEADLINE, RULE, VERDICTS, Verdict, decide_verdict, holm
from retention_study.errors import ConfigError
from retention_study.survival import index_risk_sets, risk_set_sums

log = logging.getLogger("retention_study")


def _example_timeline(n: int = 600, seed: int = 0):
    """One row per customer; departures driven by months since contact only (docs)."""
    from retention_study.data.schema import Timeline

    rng = np.random.default_rng(seed)
    msc = rng.uniform(0, 24, n)
    df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "start": 0.0,
                       "stop": rng.exponential(12 / np.exp(0.1 * msc)), "event": 1,
                       "months_since_contact": msc, "loyalty_penalty": rng.normal(0, .1, n)})
    return Timeline(df, {"price": ["loyalty_penalty"], "contact": ["months_since_contact"],
                         "service": [], "controls": []})


BOOTSTRAP_METHOD = ("one-step Newton update of each fold's coefficients per resample "
                    "(held-out log-likelihood to second order); concordance with each fold's "
                    "coefficients held fixed")


def held_out_scores(eps: pd.DataFrame, eta: np.ndarray, fold: np.ndarray | None = None,
                    x: np.ndarray | None = None, codes=None):
    """Per-customer partial log-likelihood and concordance counts of risk scores ``eta``.

    Risk sets are the held-out rows of the same fold (``fold``; None = one fold).

    Parameters
    ----------
    eps : DataFrame
        Held-out rows: customer_id, start, stop, event.
    eta : ndarray
        Linear predictor (log risk score) of each row.
    fold : ndarray, optional
        Fold of each row; each fold's rows are scored among themselves.
    x : ndarray (rows, p), optional
        Covariates: also return each customer's derivative of ``pl`` in the coefficients
        (sum over its departures of x minus the risk-weighted mean x of its risk set).
    codes : (ndarray, ndarray), optional
        Each row's customer number and the sorted customer ids (computed if not given).

    Returns
    -------
    DataFrame
        Indexed by customer_id: ``pl`` (sum of the customer's departure terms, Breslow
        ties), ``concordant`` (pairs won + 1/2 ties), ``comparable`` (pairs) and
        ``departures``; with ``x`` a tuple (that frame, ndarray of derivatives, dict of
        the held-out information matrix by fold).

    Examples
    --------
    >>> df = pd.DataFrame({"customer_id": ["a", "b", "c"], "start": 0.0,
    ...                    "stop": [1.0, 2.0, 3.0], "event": [1, 1, 0]})
    >>> held_out_scores(df, np.array([2.0, 1.0, 0.0]))[["concordant", "comparable"]].sum()
    concordant    3.0
    comparable    3.0
    dtype: float64
    """
    start = eps["start"].to_numpy(float)
    stop = eps["stop"].to_numpy(float)
    event = eps["event"].to_numpy(int) == 1
    if codes is None:
        cust, cust_index = np.unique(eps["customer_id"].to_numpy(), return_inverse=True)
    else:
        cust_index, cust = codes
    index = index_risk_sets(start, stop, event, fold)
    rows = index.rows
    design = eta[rows, None] if x is None else np.column_stack([eta[rows], x[rows]])
    beta = np.zeros(design.shape[1])
    beta[0] = 1.0
    sums = risk_set_sums(index, design, beta, second=False)
    dead = np.flatnonzero(index.event_slot >= 0)
    slot = index.event_slot[dead]
    pl = np.zeros(len(eps))
    pl[rows[dead]] = eta[rows[dead]] - np.log(sums.s0[slot]) - sums.shift
    won, pairs = _concordance(index, eta[rows], len(eps))
    frame = pd.DataFrame({"pl": np.bincount(cust_index, pl, len(cust)),
                          "concordant": np.bincount(cust_index, won, len(cust)),
                          "comparable": np.bincount(cust_index, pairs, len(cust)),
                          "departures": np.bincount(cust_index, event, len(cust))}, index=cust)
    frame.index.name = "customer_id"
    if x is None:
        return frame
    grad = x[rows[dead]] - sums.s1[slot, 1:] / sums.s0[slot, None]
    owner = cust_index[rows[dead]]
    p = grad.shape[1]
    per_customer = np.column_stack([np.bincount(owner, grad[:, j], len(cust))
                                    for j in range(p)]) if p else np.zeros((len(cust), 0))
    # held-out information per fold (Breslow): second-order term of a coefficient move
    full = risk_set_sums(index, design, beta, second=True)
    mean = full.s1[:, 1:] / full.s0[:, None]
    per_slot = full.n_dead[:, None, None] * (full.s2[:, 1:, 1:] / full.s0[:, None, None]
                                             - mean[:, :, None] * mean[:, None, :])
    folds = np.unique(index.slot_stratum)
    info = {int(f): per_slot[index.slot_stratum == f].sum(axis=0) for f in folds}
    return frame, per_customer, info


def _concordance(index, eta: np.ndarray, n_rows: int):
    """Pairs won (+1/2 ties) and pairs compared per row, at each departure's risk set.

    On the grid each slot's risk set is a contiguous block of the index's rows (one sort
    per block); otherwise one vectorised pass over the rows per event time.
    """
    won = np.zeros(n_rows)
    pairs = np.zeros(n_rows)
    leaving_all = index.event_slot >= 0
    for k in range(index.n_slots):
        if index.grid:
            block = np.arange(index.bounds[k], index.bounds[k + 1])
        else:
            block = np.flatnonzero((index.first <= k) & (index.last >= k))
        leaving = leaving_all[block] & (index.event_slot[block] == k)
        others = np.sort(eta[block[~leaving]])
        mine = eta[block[leaving]]
        lo = np.searchsorted(others, mine, side="left")
        hi = np.searchsorted(others, mine, side="right")
        target = index.rows[block[leaving]]
        won[target] = lo + 0.5 * (hi - lo)
        pairs[target] = others.size
    return won, pairs


class HeadToHead:
    """Customer-level k-fold cross-validation of the block models.

    Parameters
    ----------
    k : int
        Folds (customers, not rows, are split, so no customer is on both sides).
    bootstrap : int
        Bootstrap resamples of customers for the CIs of the differences.
    seed : int
        Seed of the fold assignment and the bootstrap.
    alpha : float
        1 - coverage of the CIs.

    Attributes
    ----------
    summary : DataFrame
        model, cv_loglik (sum over held-out departures), cv_loglik_per_departure and
        concordance, the last two with bootstrap ``_lower``/``_upper`` bounds.
    differences : DataFrame
        metric, estimate (contact minus price), lower, upper. Positive favours contact.

    Examples
    --------
    >>> tl = _example_timeline()
    >>> h2h = HeadToHead(k=3, bootstrap=50, seed=1).fit(tl, BlockModels().fit(tl))
    >>> list(h2h.differences["metric"])
    ['cv_loglik', 'concordance']
    """

    def __init__(self, k: int = 5, bootstrap: int = 200, seed: int = 20260630,
                 alpha: float = 0.05):
        # the pipeline passes analysis.cv_folds / analysis.bootstrap straight from the config
        if not (isinstance(k, int | np.integer) and k >= 2):
            raise ConfigError(f"cv_folds must be a whole number of at least 2, not {k!r}")
        if not (isinstance(bootstrap, int | np.integer) and bootstrap >= 1):
            raise ConfigError(f"bootstrap must be a whole number of at least 1, not {bootstrap!r}")
        self.k = k
        self.bootstrap = bootstrap
        self.seed = seed
        self.alpha = alpha

    def fit(self, timeline, block_models: BlockModels) -> HeadToHead:
        """Cross-validate the four models of ``block_models`` on its own rows.

        ``timeline`` is the one the block models were fitted on; the rows themselves come
        from ``block_models.data_`` so that every model sees identical, sorted rows and
        the same usable columns.
        """
        eps = block_models.data_
        rng = np.random.default_rng(self.seed)
        # customers in order of appearance (the fold draw) and sorted (the score tables)
        appearance, customers = pd.factorize(eps["customer_id"])
        k = int(min(self.k, len(customers)))
        fold_of = rng.permutation(len(customers)) % k
        fold = fold_of[appearance]
        by_name = np.argsort(np.asarray(customers), kind="stable")
        rank = np.empty(len(customers), dtype=np.int64)
        rank[by_name] = np.arange(len(customers))
        self._codes = (rank[appearance], np.asarray(customers)[by_name])
        self._customer_fold = fold_of[by_name]
        self._fold_problems: list[str] = []
        n = len(customers)
        # Multinomial counts = resampling customers with replacement, as one matrix product
        # (float once: every product with them would otherwise convert a copy)
        self._weights = rng.multinomial(n, np.full(n, 1.0 / n), size=self.bootstrap).astype(float)
        self._boot_pl: dict = {}
        self.scores = {m: self._cross_validate(eps, fold, k, m, block_models) for m in MODELS}
        counts = pd.Series(self._fold_problems, dtype=object).value_counts(sort=False)
        self.problems = [f"{text[:-1]} (in {n} of {k} folds)." for text, n in counts.items()]
        if self.scores["controls"]["comparable"].sum() == 0:
            self.problems.append("No held-out departure had another customer at risk to be "
                                 "compared with; concordance is undefined.")
        self.summary = pd.DataFrame([self._row(m, s) for m, s in self.scores.items()])
        self.differences = self._differences()
        return self

    def _cross_validate(self, eps, fold, k, model, block_models) -> pd.DataFrame:
        """Fit each fold (held-out customers weighted 0), score the held-out rows at once.

        Also stores, per bootstrap resample, the held-out log-likelihood after a one-step
        Newton update of each fold's coefficients (``_boot_pl[model]``).
        """
        cols = block_models.columns[model]
        data = block_models.cox_data_
        full = block_models.fits[model].fitter
        initial = full.params_.to_numpy() if full is not None else None
        x = eps[cols].to_numpy(float) if cols else np.zeros((len(eps), 0))
        eta = np.zeros(len(eps))
        moves = []  # per fold: (fold, B x p coefficient moves)
        for f in range(k):
            test = fold == f
            if not cols:
                continue
            fit = fit_cox(data, cols, block_models.penalizer, f"{model} (cross-validation)",
                          self._fold_problems, weights=(~test) * 1.0, initial=initial)
            if fit.fitter is None:
                continue
            beta = fit.fitter.params_.to_numpy()
            eta[test] = x[test] @ beta
            # per-customer score contributions on the training rows (held out: 0)
            u = fit.fitter.score_residuals().reindex(self._codes[1], fill_value=0.0).to_numpy()
            # (W - 1) @ u without a B x customers temporary
            moved = self._weights @ u - u.sum(axis=0)
            delta = moved @ fit.fitter.variance_matrix_.to_numpy()
            moves.append((f, delta))
        scores, grad, info = held_out_scores(eps, eta, fold, x, codes=self._codes)
        boot = self._weights @ scores["pl"].to_numpy()
        if moves:
            for f, delta in moves:
                in_f = self._customer_fold == f
                # held-out log-likelihood at the moved coefficients, to second order
                boot = boot + np.einsum("bp,bp->b", self._weights @ (grad * in_f[:, None]),
                                        delta)
                h = info.get(f, np.zeros((len(cols), len(cols))))  # no held-out departure: 0
                boot = boot - 0.5 * np.einsum("bp,pq,bq->b", delta, h, delta)
        self._boot_pl[model] = boot
        return scores

    def _row(self, model, s) -> dict:
        pl, won, pairs, dep = (s[c].to_numpy() for c in ("pl", "concordant", "comparable",
                                                           "departures"))
        n_dep = max(dep.sum(), 1)
        # a ratio per resample: the number of departures drawn varies with the customers
        boot_pl = getattr(self, "_boot_pl", {}).get(model, self._weights @ pl) / np.maximum(
            self._weights @ dep, 1)
        boot_c = (self._weights @ won) / np.maximum(self._weights @ pairs, 1)
        lo, hi = self._percentiles(boot_pl)
        c_lo, c_hi = self._percentiles(boot_c)
        return {"model": model, "cv_loglik": float(pl.sum()),
                "cv_loglik_per_departure": float(pl.sum() / n_dep),
                "cv_loglik_per_departure_lower": lo, "cv_loglik_per_departure_upper": hi,
                "concordance": float(won.sum() / pairs.sum()) if pairs.sum() else float("nan"),
                "concordance_lower": c_lo, "concordance_upper": c_hi}

    def _percentiles(self, values) -> tuple[float, float]:
        q = [100 * self.alpha / 2, 100 * (1 - self.alpha / 2)]
        lo, hi = np.percentile(values, q)
        return float(lo), float(hi)

    def _differences(self) -> pd.DataFrame:
        con, pri = self.scores["contact"], self.scores["price"]
        d_pl = (con["pl"] - pri["pl"]).to_numpy()
        d_won = (con["concordant"] - pri["concordant"]).to_numpy()
        pairs = con["comparable"].to_numpy()
        boot_pl = self._boot_pl["contact"] - self._boot_pl["price"]
        boot_c = (self._weights @ d_won) / np.maximum(self._weights @ pairs, 1)
        rows = [("cv_loglik", d_pl.sum(), boot_pl),
                ("concordance", d_won.sum() / max(pairs.sum(), 1), boot_c)]
        return pd.DataFrame([{"metric": m, "estimate": float(est),
                              **dict(zip(("lower", "upper"), self._percentiles(b), strict=True))}
                             for m, est, b in rows])

    def to_dict(self) -> dict:
        return {"k": self.k, "bootstrap": self.bootstrap, "seed": self.seed,
                "bootstrap_method": BOOTSTRAP_METHOD,
                "summary": to_records(self.summary), "differences": to_records(self.differences),
                "problems": list(self.problems)}


__all__ = ["HEADLINE", "RULE", "VERDICTS", "HeadToHead", "Verdict", "decide_verdict",
           "held_out_scores", "holm"]
