"""The four nested Cox models of the study and what they say in business units.

All four models are fitted on identical rows (the same episodes, the same customers):

- ``controls``: the service block (inbound contacts) and the controls - the base;
- ``price``: base + the price block;
- ``contact``: base + the contact block (the supplier's outbound attention);
- ``both``: base + price + contact - the final model.

Start/stop episodes are fitted with the study's Cox engine,
:class:`retention_study.survival.CoxFitter` (Efron ties, as R's ``coxph`` and lifelines
default to), on one prepared copy of the episodes shared by all models; segments and
reasons use the same engine. Its numbers are checked against R and lifelines in
tests/test_survival_cox.py; ``fit.fitter.to_lifelines(...)`` gives an analyst the model as
a lifelines ``CoxPHFitter``.
Problems the data cause (no departures in a block, collinear blocks, non-convergence,
separation, too few departures) become plain-words entries of ``problems``;
:class:`~retention_study.errors.AnalysisError` is raised only when nothing can be said.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.analysis.records import to_records
from retention_study.data.schema import Timeline
from retention_study.errors import AnalysisError
from retention_study.survival import (
    CoxConvergenceError,
    CoxData,
    CoxFitter,
    CoxSeparationError,
    index_risk_sets,
    risk_set_sums,
)

log = logging.getLogger("retention_study")

MODELS = {
    "controls": (),
    "price": ("price",),
    "contact": ("contact",),
    "both": ("price", "contact"),
}
BASE_BLOCKS = ("service", "controls")
FINAL_MODEL = "both"
# Business units of the covariates the episode builder names (scale of the coefficient,
# unit in words, phrase used in the verdict sentence).
BUSINESS_UNITS = {
    "months_since_contact": (6.0, "6 months without outbound contact",
                             "for every 6 months without contact"),
    "loyalty_penalty": (math.log(1.1), "+10% above the new-customer price",
                        "for paying 10% more than new customers"),
    "log_price": (math.log(1.1), "+10% price level", "for a 10% higher price"),
    "price_increase_recent": (1.0, "a recent price increase (vs none)",
                              "after a recent price increase"),
    # Counts are read per contact, not per SD: "one more call" is what a manager can plan.
    "outbound_12m": (1.0, "1 more outbound contact in the last 12 months",
                     "for each extra outbound contact in the last 12 months"),
    "inbound_12m": (1.0, "1 more contact by the customer in the last 12 months",
                    "for each contact the customer made in the last 12 months"),
}
COLLINEAR_TOL = 1e-6  # share of a column's variance left after regressing on the others
MAX_STRATA = 2  # binary controls stratified on when they break proportional hazards


@dataclass
class CoxFit:
    """One fitted model: its covariates, log partial likelihood and the Cox fitter.

    ``fitter`` (a :class:`~retention_study.survival.CoxFitter`) is None when the model has
    no covariates (the null model) or failed.
    """

    name: str
    columns: list
    loglik: float
    fitter: CoxFitter | None = None
    penalizer: float = 0.0

    @property
    def n_params(self) -> int:
        return len(self.columns)

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params


# --------------------------------------------------------------------------- data checks


def _prepare(timeline: Timeline) -> pd.DataFrame:
    eps = timeline.episodes
    missing = [c for c in ("customer_id", "start", "stop", "event") if c not in eps]
    if missing:
        raise AnalysisError(f"the timeline lacks the columns {missing}; cannot fit models")
    times = eps[["start", "stop", "event"]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    broken = ~np.isfinite(times).all(axis=1) | (times[:, 1] <= times[:, 0])
    if broken.any():
        # lifelines would fail on every model and say "no convergence"; name the cause
        first = eps["customer_id"].iloc[int(np.argmax(broken))]
        raise AnalysisError(f"{int(broken.sum())} episodes have a missing or infinite start, "
                            f"stop or event, or stop at or before start (first: customer "
                            f"{first}); the timeline is broken, cannot fit models")
    # Row order matters for the rank time transform of the PH test: fix it here. The
    # episode builder already gives this order; a stable sort would then only copy.
    if not _sorted_by_customer(eps):
        eps = eps.sort_values(["customer_id", "start"], kind="stable").reset_index(drop=True)
    elif not isinstance(eps.index, pd.RangeIndex) or eps.index.start != 0 or \
            eps.index.step != 1:
        eps = eps.reset_index(drop=True)
    if int(eps["event"].sum()) == 0:
        raise AnalysisError("no customer left during the study period, so nothing can be "
                            "said about why customers leave")
    return eps


def _sorted_by_customer(eps: pd.DataFrame) -> bool:
    """Whether the rows are in (customer_id, start) order already (what the sort would give).

    Examples
    --------
    >>> _sorted_by_customer(pd.DataFrame({"customer_id": ["a", "a", "b"], "start": [0, 1, 0]}))
    True
    >>> _sorted_by_customer(pd.DataFrame({"customer_id": ["a", "b", "a"], "start": [0, 0, 1]}))
    False
    """
    ids = eps["customer_id"]
    try:
        if not ids.is_monotonic_increasing:
            return False
    except TypeError:  # ids of mixed types: let the sort decide (and raise) as before
        return False
    if ids.hasnans:
        return False
    codes = pd.factorize(ids)[0]
    start = eps["start"].to_numpy(float)
    same = codes[1:] == codes[:-1]
    # ties in start within a customer keep their order under a stable sort too
    return bool(np.all(start[1:][same] >= start[:-1][same]))


def _drop_missing(eps: pd.DataFrame, blocks: dict, problems: list) -> pd.DataFrame:
    """Leave out rows with a missing or infinite covariate, counted in ``problems``.

    The Timeline contract says there are none; a ledger is not at hand here, so the count
    goes to the models' problems (and from there to the report).
    """
    cols = [c for b in blocks.values() for c in b]
    absent = [c for c in cols if c not in eps]
    if absent:
        problems.append(f"Columns named in the blocks but absent from the episodes: {absent}; "
                        "left out.")
    present = [c for c in cols if c in eps]
    text = [c for c in present if not pd.api.types.is_numeric_dtype(eps[c])]
    if text:
        raise AnalysisError(f"covariates {text} are not numeric (categoricals must be "
                            "dummy-coded in the timeline); cannot fit models")
    values = eps[present].to_numpy(float)
    missing = np.isnan(values).any(axis=1)
    infinite = np.isinf(values).any(axis=1) & ~missing
    bad = missing | infinite
    if not bad.any():
        return eps
    if missing.any():
        problems.append(f"{int(missing.sum())} episodes with a missing covariate value were "
                        "left out of all models.")
    if infinite.any():
        problems.append(f"{int(infinite.sum())} episodes with an infinite covariate value "
                        "were left out of all models.")
    kept = eps.loc[~bad].reset_index(drop=True)
    if int(kept["event"].sum()) == 0:
        raise AnalysisError("no departure left once episodes with missing covariates are "
                            "left out; nothing can be said about why customers leave")
    return kept


def _drop_unusable(eps: pd.DataFrame, blocks: dict, problems: list) -> dict:
    """Remove constant and collinear columns, saying why; returns the usable blocks.

    A column is collinear when regressing it on the columns kept before it (and a
    constant) leaves less than ``COLLINEAR_TOL`` of its variance. That share comes from
    the covariance matrix of all columns (one pass over the rows; the regression on the
    kept columns is the Schur complement), not from a least-squares fit per column.
    """
    usable = {b: [c for c in blocks.get(b, []) if c in eps] for b in ("controls", "service",
                                                                        "contact", "price")}
    names = list(dict.fromkeys(c for cols in usable.values() for c in cols))
    cov = _covariance(eps, names)
    pos = {c: i for i, c in enumerate(names)}
    kept: list = []
    for block, cols in usable.items():
        keep = []
        for col in cols:
            x = eps[col].to_numpy(float)
            if np.nanstd(x) == 0:
                problems.append(f"'{col}' ({block}) has the same value for every row; left out.")
                continue
            j, ks = pos[col], [pos[c] for c in kept]
            explained = (cov[j, ks] @ np.linalg.solve(cov[np.ix_(ks, ks)], cov[ks, j])
                         if ks else 0.0)
            left = (cov[j, j] - explained) / cov[j, j]
            if left < COLLINEAR_TOL:
                problems.append(f"'{col}' ({block}) {_explained_by(x, eps, kept)} in these "
                                "data, so its effect cannot be separated; left out.")
                continue
            keep.append(col)
            kept.append(col)
        if cols and not keep:
            problems.append(f"No usable {block} measure remains after removing the columns "
                            "above; models with that block equal the model without it.")
        usable[block] = keep
    for block in ("price", "contact"):
        if not blocks.get(block):
            problems.append(f"No {block} measure in this data; the {block} block is empty and "
                            f"nothing can be said about {block}.")
    _warn_correlated(eps, usable, problems)
    return usable


def _covariance(eps: pd.DataFrame, names: list, chunk: int = 1 << 18) -> np.ndarray:
    """Population covariance matrix of ``names`` (centred first, summed in row chunks)."""
    mean = np.array([eps[c].to_numpy(float).mean() for c in names])
    cov = np.zeros((len(names), len(names)))
    for lo in range(0, len(eps), chunk):
        part = eps[names].iloc[lo:lo + chunk].to_numpy(float) - mean
        cov += part.T @ part
    return cov / max(len(eps), 1)


def _explained_by(x: np.ndarray, eps: pd.DataFrame, kept: list) -> str:
    """Plain words for what a collinear column duplicates (one column, or several)."""
    if not kept:
        return "is constant"
    corr = eps[kept].corrwith(pd.Series(x, index=eps.index)).abs()
    if corr.max() > 1 - 1e-9:
        return f"duplicates '{corr.idxmax()}'"
    names = ", ".join(kept[:3]) + (f" and {len(kept) - 3} more" if len(kept) > 3 else "")
    return f"is a combination of other columns ({names})"


def _warn_correlated(eps: pd.DataFrame, usable: dict, problems: list) -> None:
    if not usable["price"] or not usable["contact"]:
        return
    corr = eps[usable["price"] + usable["contact"]].corr().loc[usable["price"], usable["contact"]]
    worst = float(corr.abs().to_numpy().max())
    if worst > 0.9:
        problems.append(f"Price and contact measures move together (correlation {worst:.2f}); "
                        "the data can hardly tell their effects apart.")


# --------------------------------------------------------------------------- fitting


def fit_cox(eps, columns: list, penalizer: float = 0.0, name: str = "model",
            problems: list | None = None, strata: list | None = None,
            weights: np.ndarray | None = None, initial=None) -> CoxFit:
    """Fit one Cox model on start/stop rows; problems are appended, not raised.

    ``eps`` is a DataFrame or a :class:`~retention_study.survival.CoxData` prepared once
    for several models (no copy of the episode table per model). ``weights`` (0/1 per
    row) fits a cross-validation fold on the same prepared rows; ``initial`` starts
    Newton-Raphson there (e.g. at the full-data fit). A model that does not converge or
    shows separation is refitted with a small ridge penalty, and says so.

    Examples
    --------
    >>> df = pd.DataFrame({"start": 0, "stop": [5, 3, 9, 2, 7, 4], "event": [1, 0, 1, 1, 0, 1],
    ...                    "x": [0.1, 0.5, -0.3, 0.9, -0.8, 0.0]})
    >>> fit = fit_cox(df, ["x"])
    >>> fit.n_params
    1
    """
    problems = problems if problems is not None else []
    id_col = "customer_id" if isinstance(eps, pd.DataFrame) and "customer_id" in eps else None
    failure = None
    for pen in dict.fromkeys([penalizer, max(penalizer, 0.01), max(penalizer, 0.1)]):
        try:
            fitter = CoxFitter(ties="efron", penalizer=pen).fit(
                eps, list(columns), strata=strata, id_col=id_col, weights=weights,
                initial=initial if pen == penalizer else None)
        except (CoxConvergenceError, CoxSeparationError) as exc:
            log.debug("%s did not converge with penalizer %s: %s", name, pen, exc)
            failure = failure or exc
            continue
        except AnalysisError as exc:  # e.g. a cross-validation fold without departures
            problems.append(f"The {name} model could not be fitted ({exc}).")
            return CoxFit(name, list(columns), float("nan"))
        if not columns:
            return CoxFit(name, [], float(fitter.log_likelihood_))
        if pen != penalizer:
            problems.append(_refit_text(name, failure, pen))
        return CoxFit(name, list(columns), float(fitter.log_likelihood_), fitter, pen)
    problems.append(f"The {name} model could not be fitted (no convergence even with a ridge "
                    "penalty); its results are missing.")
    return CoxFit(name, list(columns), float("nan"))


def _refit_text(name: str, failure: Exception, pen: float) -> str:
    if isinstance(failure, CoxSeparationError):
        which = ", ".join(failure.columns) or "one or more covariates"
        return (f"The {name} model shows signs of separation in {which} (some value almost "
                "perfectly predicts leaving or staying); it was refitted with a small ridge "
                f"penalty ({pen}), so its estimate there is shrunk and unreliable.")
    return (f"The {name} model did not converge; it was refitted with a small ridge penalty "
            f"({pen}), so its effects are slightly shrunk.")


def likelihood_ratio(big: CoxFit, small: CoxFit) -> dict:
    """Likelihood-ratio test of the covariates ``big`` adds to ``small``.

    Examples
    --------
    >>> lr = likelihood_ratio(CoxFit("b", ["x", "y"], -100.0), CoxFit("s", ["x"], -103.0))
    >>> lr["statistic"], lr["df"], round(lr["p"], 4)
    (6.0, 1, 0.0143)
    """
    df = big.n_params - small.n_params
    stat = 2.0 * (big.loglik - small.loglik)
    if df <= 0 or not np.isfinite(stat):
        return {"statistic": float("nan"), "df": int(df), "p": float("nan")}
    stat = max(stat, 0.0)
    return {"statistic": float(stat), "df": int(df), "p": float(stats.chi2.sf(stat, df))}


# --------------------------------------------------------------------------- diagnostics


def ph_time_transform(eps: pd.DataFrame, transform: str = "km") -> np.ndarray:
    """g(t) of every row's stop time, centred on the departures' mean (as R's cox.zph).

    ``km``: 1 - the left-continuous Kaplan-Meier estimate of the rows (late entry
    respected); ``rank``: rank of stop among all rows (ties averaged); ``identity``: stop;
    ``log``: log(stop).

    Examples
    --------
    >>> eps = pd.DataFrame({"start": 0.0, "stop": [1.0, 2.0, 3.0], "event": [1, 1, 1]})
    >>> ph_time_transform(eps, "identity").tolist()
    [-1.0, 0.0, 1.0]
    """
    stop = eps["stop"].to_numpy(float)
    event = eps["event"].to_numpy(int) == 1
    if transform == "identity":
        g = stop.copy()
    elif transform == "log":
        g = np.log(stop)
    elif transform == "rank":
        g = stats.rankdata(stop)
    elif transform == "km":
        index = index_risk_sets(eps["start"].to_numpy(float), stop, event)
        sums = risk_set_sums(index, np.zeros((len(index.rows), 0)), np.zeros(0), second=False)
        surv = np.cumprod(1 - sums.n_dead / sums.s0)  # s0 = rows at risk (w = 1)
        before = np.searchsorted(index.times, stop, side="left")  # event times strictly before
        g = 1 - np.r_[1.0, surv][before]
    else:
        raise ValueError(f"unknown time transform {transform!r}")
    return g - g[event].mean()


def ph_score_test(eps: pd.DataFrame, columns: list, beta, ties: str = "efron",
                  transform: str = "km") -> pd.DataFrame:
    """Grambsch-Therneau score test of proportional hazards with the exact information.

    For each covariate j the score test of adding ``x_j * g(t)`` to the fitted model, as
    R's ``survival::cox.zph`` (version 3) computes it: the score of the new term is the
    g-weighted sum of Schoenfeld residuals, and its variance uses the risk-set covariance
    *at each departure time* (with Efron's weights for tied departures), not the average
    over time that the scaled-residual shortcut (lifelines' ``proportional_hazard_test``)
    assumes. For a 0/1 flag whose share of the risk set changes with tenure the shortcut
    misstates that variance and rejects too often where proportional hazards hold
    (benchmarks/bench_ph_size.py); this test keeps its size.

    Parameters
    ----------
    eps : DataFrame
        ``start``, ``stop``, ``event`` and the ``columns``: the rows the model was fitted on.
    columns : list of str
    beta : array-like
        The fitted coefficients (the score of beta is taken as 0 at the estimate, as R does).
    ties : {"efron", "breslow"}
        The tie method of the fit.
    transform : {"km", "rank", "identity", "log"}

    Returns
    -------
    DataFrame
        ``covariate``, ``statistic`` (chi-square, 1 df; ``GLOBAL`` has len(columns) df),
        ``df``, ``p``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"start": 0.0, "stop": rng.exponential(1, 200).round(1) + 0.1,
    ...                    "event": 1, "x": rng.normal(size=200)})
    >>> out = ph_score_test(df, ["x"], [0.0])
    >>> out["covariate"].tolist(), bool((out["p"] > 0).all())
    (['x', 'GLOBAL'], True)
    """
    columns = list(columns)
    event = eps["event"].to_numpy(int) == 1
    index = index_risk_sets(eps["start"].to_numpy(float), eps["stop"].to_numpy(float), event)
    x = eps[columns].to_numpy(float).reshape(len(eps), -1)[index.rows]
    p = x.shape[1]
    s = risk_set_sums(index, x, np.asarray(beta, float).reshape(-1))
    k = index.n_slots
    g_row = ph_time_transform(eps, transform)[index.rows]
    dead = np.flatnonzero(index.event_slot >= 0)
    dead = dead[np.argsort(index.event_slot[dead], kind="stable")]
    slot = index.event_slot[dead]  # one entry per departure, grouped by event time
    d = np.bincount(slot, minlength=k)
    g = g_row[dead]  # the same for every departure of a slot
    # Efron: the l-th of d tied departures sees l/d of the tied group removed
    tied = np.arange(len(dead)) - np.repeat(np.cumsum(d) - d, d)
    a = tied / d[slot] if ties == "efron" else np.zeros(len(dead))
    denom = s.s0[slot] - a * s.e0[slot]
    xbar = (s.s1[slot] - a[:, None] * s.e1[slot]) / denom[:, None]
    u_gamma = (g[:, None] * (x[dead] - xbar)).sum(axis=0)

    def information(w: np.ndarray) -> np.ndarray:
        """sum over departures of w * (Efron) risk-set covariance, without slots x p^2 rows."""
        c = np.bincount(slot, weights=w / denom, minlength=k)
        e = np.bincount(slot, weights=w * a / denom, minlength=k)
        return (np.einsum("k,kij->ij", c, s.s2) - np.einsum("k,kij->ij", e, s.e2)
                - (xbar * w[:, None]).T @ xbar)

    i_bb, i_bg, i_gg = information(np.ones_like(g)), information(g), information(g * g)
    imat = np.block([[i_bb, i_bg], [i_bg.T, i_gg]])
    rows = []
    for j, col in enumerate(columns):
        kk = np.r_[np.arange(p), p + j]
        u = np.r_[np.zeros(p), u_gamma[j]]
        stat = float(u @ np.linalg.solve(imat[np.ix_(kk, kk)], u))
        rows.append({"covariate": col, "statistic": stat, "df": 1,
                     "p": float(stats.chi2.sf(stat, 1))})
    u = np.r_[np.zeros(p), u_gamma]
    stat = float(u @ np.linalg.solve(imat, u))
    rows.append({"covariate": "GLOBAL", "statistic": stat, "df": p,
                 "p": float(stats.chi2.sf(stat, p))})
    return pd.DataFrame(rows)


def ph_test(fit: CoxFit, eps: pd.DataFrame, alpha: float = 0.05,
            transform: str = "km") -> pd.DataFrame:
    """Proportional-hazards test of a fitted model per covariate (see :func:`ph_score_test`).

    The exact score test of R's ``cox.zph`` with its default Kaplan-Meier time transform
    and the fit's ties; ``eps`` must be the rows the model was fitted on. Row order does
    not matter.
    """
    beta = fit.fitter.params_.reindex(fit.columns).to_numpy()
    ties = getattr(fit.fitter, "ties", "efron")
    out = ph_score_test(eps, fit.columns, beta, ties=ties, transform=transform)
    out = out[out["covariate"] != "GLOBAL"][["covariate", "statistic", "p"]]
    out = out.reset_index(drop=True)
    out["fails"] = out["p"] < alpha
    return out


def split_episodes(eps: pd.DataFrame, cuts) -> pd.DataFrame:
    """Split start/stop rows at the given times (events stay on the last piece).

    Examples
    --------
    >>> df = pd.DataFrame({"customer_id": ["a"], "start": [0.0], "stop": [5.0], "event": [1]})
    >>> split_episodes(df, [2.0, 4.0])[["start", "stop", "event"]].values.tolist()
    [[0.0, 2.0, 0.0], [2.0, 4.0, 0.0], [4.0, 5.0, 1.0]]
    """
    cuts = np.unique(np.asarray(cuts, float))
    start = eps["start"].to_numpy(float)
    stop = eps["stop"].to_numpy(float)
    inside = (cuts[None, :] > start[:, None]) & (cuts[None, :] < stop[:, None])
    n_pieces = inside.sum(axis=1) + 1
    out = eps.loc[eps.index.repeat(n_pieces)].reset_index(drop=True)
    row = np.repeat(np.arange(len(eps)), n_pieces)
    piece = np.arange(len(out)) - np.repeat(np.cumsum(n_pieces) - n_pieces, n_pieces)
    n_cuts = n_pieces - 1
    cut_values = cuts[np.nonzero(inside)[1]]  # row-major: each row's cuts in order
    first_cut = np.repeat(np.cumsum(n_cuts) - n_cuts, n_pieces) + piece
    padded = np.append(cut_values, np.nan)  # keeps indices valid where no cut applies
    out["start"] = np.where(piece == 0, start[row], padded[np.maximum(first_cut - 1, 0)])
    out["stop"] = np.where(piece == n_cuts[row], stop[row],
                           padded[np.minimum(first_cut, len(cut_values))])
    last = piece == n_pieces[row] - 1
    out["event"] = np.where(last, out["event"].to_numpy(), 0).astype(float)
    return out


def _exp(value: float) -> float:
    """exp that gives inf instead of raising, for separated fits."""
    return math.exp(min(value, 700.0))


def _business_unit(col: str, x: pd.Series) -> tuple[float, str, str]:
    """Scale, unit and phrase of a covariate (known names, else per unit or per SD)."""
    if col in BUSINESS_UNITS:
        return BUSINESS_UNITS[col]
    values = np.unique(x.to_numpy(float))
    if set(values) <= {0.0, 1.0}:
        return 1.0, f"{col} yes vs no", f"with {col} (vs without)"
    # A small count (calls, visits) reads best per one more; an SD of a count is jargon.
    if np.all(values == np.round(values)) and values.max() - values.min() <= 20:
        return 1.0, f"+1 {col}", f"per +1 {col}"
    sd = float(x.std())
    return sd, f"+1 SD of {col} ({sd:.3g} units)", f"per SD of {col} ({sd:.3g} units)"


def business_effects(fit: CoxFit, eps: pd.DataFrame, blocks: dict, alpha: float = 0.05,
                     definitions: dict | None = None) -> pd.DataFrame:
    """Hazard ratios of the price and contact covariates in business units, with CIs.

    The coefficient and its standard error are multiplied by the unit's scale (e.g. x6 for
    ``months_since_contact``: per 6 months without contact), so the CI is exact on the
    log scale.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=300)
    >>> df = pd.DataFrame({"start": 0.0, "stop": rng.exponential(np.exp(-0.5 * x)),
    ...                    "event": 1, "months_since_contact": x})
    >>> eff = business_effects(fit_cox(df, ["months_since_contact"]), df,
    ...                        {"contact": ["months_since_contact"]})
    >>> eff.loc[0, "unit"]
    '6 months without outbound contact'
    """
    cols = ["block", "covariate", "label", "unit", "phrase", "hr", "lower", "upper", "p"]
    if fit.fitter is None:
        return pd.DataFrame(columns=cols)
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for block in ("contact", "price", "service"):
        for col in blocks.get(block, []):
            if col not in fit.fitter.params_.index:
                continue
            scale, unit, phrase = _business_unit(col, eps[col])
            coef = fit.fitter.params_[col] * scale
            se = fit.fitter.standard_errors_[col] * scale
            label = (definitions or {}).get(col, col)
            rows.append({"block": block, "covariate": col, "label": label, "unit": unit,
                         "phrase": phrase, "hr": _exp(coef), "lower": _exp(coef - z * se),
                         "upper": _exp(coef + z * se),
                         "p": float(fit.fitter.summary.loc[col, "p"])})
    return pd.DataFrame(rows, columns=cols)


class BlockModels:
    """Fit the four block models on identical rows and test the blocks against each other.

    Parameters
    ----------
    alpha : float
        Significance level of the tests and 1 - coverage of the CIs.
    penalizer : float
        Ridge penalty of the Cox fits (0 = plain partial likelihood).
    min_departures : int
        Fewer departures than this adds a problem (estimates are fragile).
    check_ph : bool
        Run the proportional-hazards check (and its refit when it fails). Sensitivity
        refits that only need effects and the verdict can skip it.

    Attributes
    ----------
    fits : dict of str -> CoxFit
        ``controls``, ``price``, ``contact``, ``both``; ``fits[m].fitter`` is the
        :class:`~retention_study.survival.CoxFitter` (None for a model without covariates);
        ``fits["both"].fitter.to_lifelines(bm.data_, sample=...)`` refits the final model
        with lifelines for its print_summary and plots.
    summary : DataFrame
        model, covariate, coef, se, hr, hr_lower, hr_upper, p.
    lr_tests : DataFrame
        test, big, small, statistic, df, p (``price | contact`` and ``contact | price``,
        plus each block against the base).
    aic : DataFrame
        model, loglik, n_params, aic.
    effects : DataFrame
        Business-unit hazard ratios of the final model (see :func:`business_effects`).
    ph_check : DataFrame
        Proportional-hazards test of the final model per covariate.
    ph_remedy : dict or None
        When the PH check fails: what was done and the refitted coefficients.
    problems : list of str
        Plain-words warnings about the data and the fits.
    columns : dict of str -> list of str
        Covariates of each model (after removing constant and collinear columns).
    blocks : dict of str -> list of str
        The usable columns per block.
    data_ : DataFrame
        The episodes all four models were fitted on, sorted by customer_id and start.
    cox_data_ : CoxData
        The same rows prepared for the engine (shared by the models and the CV folds).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> n = 400
    >>> df = pd.DataFrame({"customer_id": np.arange(n).astype(str), "start": 0.0,
    ...                    "age": rng.normal(size=n), "months_since_contact": rng.normal(size=n),
    ...                    "loyalty_penalty": rng.normal(size=n)})
    >>> df["stop"] = rng.exponential(np.exp(-0.3 * df["months_since_contact"]))
    >>> df["event"] = 1
    >>> tl = Timeline(df, {"price": ["loyalty_penalty"], "contact": ["months_since_contact"],
    ...                    "service": [], "controls": ["age"]})
    >>> bm = BlockModels().fit(tl)
    >>> sorted(bm.fits)
    ['both', 'contact', 'controls', 'price']
    """

    def __init__(self, alpha: float = 0.05, penalizer: float = 0.0, min_departures: int = 20,
                 check_ph: bool = True):
        self.alpha = alpha
        self.penalizer = penalizer
        self.min_departures = min_departures
        self.check_ph = check_ph

    def fit(self, timeline: Timeline) -> BlockModels:
        self.problems: list[str] = []
        self.data_ = _prepare(timeline)
        self.definitions = dict(timeline.definitions)
        self.data_ = _drop_missing(self.data_, timeline.blocks, self.problems)
        n_dep = int(self.data_["event"].sum())  # the departures the models see
        if n_dep < self.min_departures:
            self.problems.append(f"Only {n_dep} departure{'s' * (n_dep != 1)} (fewer than "
                                 f"{self.min_departures}): estimates are fragile and tests "
                                 "have little power.")
        self.blocks = _drop_unusable(self.data_, timeline.blocks, self.problems)
        base = [c for b in BASE_BLOCKS for c in self.blocks[b]]
        self.columns = {m: base + [c for b in extra for c in self.blocks[b]]
                        for m, extra in MODELS.items()}
        # one prepared copy of the rows (risk sets indexed once) for all four models
        self.cox_data_ = CoxData.from_frame(self.data_, self.columns[FINAL_MODEL],
                                            id_col="customer_id")
        self.fits = {m: fit_cox(self.cox_data_, cols, self.penalizer, m, self.problems)
                     for m, cols in self.columns.items()}
        self.summary = self._summary()
        self.lr_tests = self._lr_tests()
        self.aic = pd.DataFrame([{"model": m, "loglik": f.loglik, "n_params": f.n_params,
                                  "aic": f.aic} for m, f in self.fits.items()])
        final = self.fits[FINAL_MODEL]
        self.effects = business_effects(final, self.data_, self.blocks, self.alpha,
                                        self.definitions)
        self.ph_check, self.ph_remedy = (self._check_ph(final) if self.check_ph
                                         else (pd.DataFrame(columns=["covariate", "statistic",
                                                                     "p", "fails"]), None))
        log.info("block models fitted on %d rows, %d departures", len(self.data_), n_dep)
        return self

    def _summary(self) -> pd.DataFrame:
        z = stats.norm.ppf(1 - self.alpha / 2)
        frames = []
        np_exp = np.vectorize(_exp)
        for m, f in self.fits.items():
            if f.fitter is None:
                continue
            s = f.fitter.summary
            frames.append(pd.DataFrame({
                "model": m, "covariate": s.index, "coef": s["coef"].to_numpy(),
                "se": s["se(coef)"].to_numpy(), "hr": np_exp(s["coef"].to_numpy()),
                "hr_lower": np_exp((s["coef"] - z * s["se(coef)"]).to_numpy()),
                "hr_upper": np_exp((s["coef"] + z * s["se(coef)"]).to_numpy()),
                "p": s["p"].to_numpy()}))
        cols = ["model", "covariate", "coef", "se", "hr", "hr_lower", "hr_upper", "p"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

    def _lr_tests(self) -> pd.DataFrame:
        pairs = [("price | contact", "both", "contact"), ("contact | price", "both", "price"),
                 ("price | base", "price", "controls"), ("contact | base", "contact", "controls")]
        rows = [{"test": t, "big": b, "small": s, **likelihood_ratio(self.fits[b], self.fits[s])}
                for t, b, s in pairs]
        return pd.DataFrame(rows)

    def _check_ph(self, final: CoxFit):
        empty = pd.DataFrame(columns=["covariate", "statistic", "p", "fails"])
        if final.fitter is None:
            return empty, None
        try:
            check = ph_test(final, self.data_, self.alpha)
        except (ValueError, np.linalg.LinAlgError, KeyError) as exc:
            self.problems.append(f"The proportional-hazards check could not be computed ({exc}).")
            return empty, None
        failing = list(check.loc[check["fails"], "covariate"])
        if not failing:
            return check, None
        self.problems.append("Proportional hazards fails for " + ", ".join(failing) + " (the "
                             "effect changes with tenure); see the refit in ph_remedy.")
        return check, self._ph_remedy(final, check.loc[check["fails"]])

    def _ph_remedy(self, final: CoxFit, failing: pd.DataFrame) -> dict:
        """Refit with failing price/contact/service covariates x log(t), strata on controls.

        The interactions show how the effects the verdict rests on change with tenure. The
        worst ``MAX_STRATA`` failing binary controls become strata (each doubles the strata
        and halves the departures in each); other failing controls stay as they are (an
        average effect over tenure) and are named. Episodes are split at the event-time
        quintiles first, so log(t) of a piece's stop approximates log(t) within it.
        """
        eps = self.data_
        worst = list(failing.sort_values("statistic", ascending=False)["covariate"])
        timed = [c for c in worst if c not in self.blocks["controls"]]
        binary = [c for c in worst if c in self.blocks["controls"]
                  and set(np.unique(eps[c])) <= {0.0, 1.0}]
        strata = binary[:MAX_STRATA]
        left = [c for c in worst if c not in timed and c not in strata]
        if not timed and not strata:
            return {"description": "Only controls fail and none can be stratified on; "
                    "they stay averaged over tenure: " + ", ".join(left) + ".",
                    "strata": [], "time_interactions": [], "unadjusted": left, "summary": None}
        split, extra = _with_time_interactions(eps, timed)
        cols = [c for c in final.columns if c not in strata] + extra
        fit = fit_cox(split, cols, self.penalizer, "time-interaction", self.problems,
                      strata=strata or None)
        how = ["stratified on " + ", ".join(strata)] if strata else []
        if timed:
            how.append("with " + ", ".join(timed) + " x log(tenure) interactions")
        text = "Final model refitted " + " and ".join(how) + "."
        if left:
            text += " Still averaged over tenure: " + ", ".join(left) + "."
        return {"description": text, "strata": strata, "time_interactions": timed,
                "unadjusted": left, "summary": _coef_table(fit)}

    def to_dict(self) -> dict:
        """JSON-safe results (NaN becomes None)."""
        remedy = None
        if self.ph_remedy is not None:
            remedy = {k: v for k, v in self.ph_remedy.items() if k != "summary"}
            table = self.ph_remedy["summary"]
            remedy["summary"] = to_records(table) if table is not None else None
        return {"alpha": self.alpha, "penalizer": self.penalizer,
                "n_rows": int(len(self.data_)), "n_customers": int(self.data_["customer_id"]
                                                                   .nunique()),
                "n_departures": int(self.data_["event"].sum()),
                "columns": self.columns, "summary": to_records(self.summary),
                "lr_tests": to_records(self.lr_tests), "aic": to_records(self.aic),
                "effects": to_records(self.effects), "ph_check": to_records(self.ph_check),
                "ph_remedy": remedy, "problems": list(self.problems)}


def _with_time_interactions(eps: pd.DataFrame, timed: list) -> tuple[pd.DataFrame, list]:
    """Episodes split at the event-time quintiles plus ``<col>:log_t`` columns."""
    cuts = np.unique(np.quantile(eps.loc[eps["event"] == 1, "stop"], np.linspace(.2, .8, 4)))
    split = split_episodes(eps, cuts)
    log_t = np.log(split["stop"].clip(lower=1e-9))
    extra = [f"{c}:log_t" for c in timed]
    for c, name in zip(timed, extra, strict=True):
        split[name] = split[c] * log_t
    return split, extra


def _coef_table(fit: CoxFit) -> pd.DataFrame | None:
    if fit.fitter is None:
        return None
    s = fit.fitter.summary
    return pd.DataFrame({"covariate": s.index, "coef": s["coef"].to_numpy(),
                         "se": s["se(coef)"].to_numpy(), "p": s["p"].to_numpy()})

