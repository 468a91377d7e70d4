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
resample). The fitted coefficients are held fixed in the bootstrap - refitting B x k
times would be too slow - so the CI covers the sampling of held-out customers, not the
refit noise, and is a little narrow.

:func:`~retention_study.verdict.decide_verdict` (re-exported here) turns the block models,
the head-to-head and the what-if levers into a label and a sentence in which every number
is computed.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from retention_study.errors import ConfigError
from retention_study.models import MODELS, BlockModels, fit_cox
from retention_study.records import to_records

# The verdict rule lives in retention_study.verdict; these names stay importable from here.
from retention_study.verdict import HEADLINE, RULE, VERDICTS, Verdict, decide_verdict, holm

log = logging.getLogger("retention_study")


def _example_timeline(n: int = 600, seed: int = 0):
    """One row per customer; departures driven by months since contact only (docs)."""
    from retention_study.schema import Timeline

    rng = np.random.default_rng(seed)
    msc = rng.uniform(0, 24, n)
    df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "start": 0.0,
                       "stop": rng.exponential(12 / np.exp(0.1 * msc)), "event": 1,
                       "months_since_contact": msc, "loyalty_penalty": rng.normal(0, .1, n)})
    return Timeline(df, {"price": ["loyalty_penalty"], "contact": ["months_since_contact"],
                         "service": [], "controls": []})


def held_out_scores(eps: pd.DataFrame, eta: np.ndarray) -> pd.DataFrame:
    """Per-customer partial log-likelihood and concordance counts of risk scores ``eta``.

    Parameters
    ----------
    eps : DataFrame
        Held-out rows: customer_id, start, stop, event.
    eta : ndarray
        Linear predictor (log risk score) of each row.

    Returns
    -------
    DataFrame
        Indexed by customer_id: ``pl`` (sum of the customer's departure terms),
        ``concordant`` (pairs won + 1/2 ties), ``comparable`` (pairs) and ``departures``.

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
    cust, cust_index = np.unique(eps["customer_id"].to_numpy(), return_inverse=True)
    pl = np.zeros(len(eps))
    won = np.zeros(len(eps))
    pairs = np.zeros(len(eps))
    eta = eta - eta.max()  # guards exp() against overflow; cancels in every ratio
    risk = np.exp(eta)
    # One pass per distinct departure time (tens to hundreds), vectorised over rows.
    for t in np.unique(stop[event]):
        at_risk = (start < t) & (stop >= t)
        leaving = at_risk & event & (stop == t)
        pl[leaving] = eta[leaving] - np.log(risk[at_risk].sum())
        others = np.sort(eta[at_risk & ~leaving])
        lo = np.searchsorted(others, eta[leaving], side="left")
        hi = np.searchsorted(others, eta[leaving], side="right")
        won[leaving] = lo + 0.5 * (hi - lo)
        pairs[leaving] = others.size
    frame = pd.DataFrame({"pl": np.bincount(cust_index, pl, len(cust)),
                          "concordant": np.bincount(cust_index, won, len(cust)),
                          "comparable": np.bincount(cust_index, pairs, len(cust)),
                          "departures": np.bincount(cust_index, event, len(cust))}, index=cust)
    frame.index.name = "customer_id"
    return frame


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
        customers = eps["customer_id"].unique()
        k = int(min(self.k, len(customers)))
        fold_of = pd.Series(rng.permutation(len(customers)) % k, index=customers)
        fold = fold_of.loc[eps["customer_id"]].to_numpy()
        self._fold_problems: list[str] = []
        self.scores = {m: self._cross_validate(eps, fold, k, m, block_models) for m in MODELS}
        counts = pd.Series(self._fold_problems, dtype=object).value_counts(sort=False)
        self.problems = [f"{text[:-1]} (in {n} of {k} folds)." for text, n in counts.items()]
        if self.scores["controls"]["comparable"].sum() == 0:
            self.problems.append("No held-out departure had another customer at risk to be "
                                 "compared with; concordance is undefined.")
        n = len(customers)
        # Multinomial counts = resampling customers with replacement, as one matrix product.
        self._weights = rng.multinomial(n, np.full(n, 1.0 / n), size=self.bootstrap)
        self.summary = pd.DataFrame([self._row(m, s) for m, s in self.scores.items()])
        self.differences = self._differences()
        return self

    def _cross_validate(self, eps, fold, k, model, block_models) -> pd.DataFrame:
        cols = block_models.columns[model]
        parts = []
        for f in range(k):
            train, test = eps[fold != f], eps[fold == f]
            eta = np.zeros(len(test))
            if cols:
                fit = fit_cox(train, cols, block_models.penalizer,
                              f"{model} (cross-validation)", self._fold_problems)
                if fit.fitter is not None:
                    eta = test[cols].to_numpy(float) @ fit.fitter.params_.to_numpy()
            parts.append(held_out_scores(test, eta))
        return pd.concat(parts).sort_index()

    def _row(self, model, s) -> dict:
        pl, won, pairs, dep = (s[c].to_numpy() for c in ("pl", "concordant", "comparable",
                                                           "departures"))
        n_dep = max(dep.sum(), 1)
        # a ratio per resample: the number of departures drawn varies with the customers
        boot_pl = (self._weights @ pl) / np.maximum(self._weights @ dep, 1)
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
        boot_pl = self._weights @ d_pl
        boot_c = (self._weights @ d_won) / np.maximum(self._weights @ pairs, 1)
        rows = [("cv_loglik", d_pl.sum(), boot_pl),
                ("concordance", d_won.sum() / max(pairs.sum(), 1), boot_c)]
        return pd.DataFrame([{"metric": m, "estimate": float(est),
                              **dict(zip(("lower", "upper"), self._percentiles(b), strict=True))}
                             for m, est, b in rows])

    def to_dict(self) -> dict:
        return {"k": self.k, "bootstrap": self.bootstrap, "seed": self.seed,
                "summary": to_records(self.summary), "differences": to_records(self.differences),
                "problems": list(self.problems)}


__all__ = ["HEADLINE", "RULE", "VERDICTS", "HeadToHead", "Verdict", "decide_verdict",
           "held_out_scores", "holm"]
