"""The study's Cox proportional hazards engine (:class:`CoxFitter`).

Exact Breslow and Efron partial likelihoods of start/stop rows (late entry, time-varying
covariates), strata, case weights and an optional ridge penalty, fitted by bounded
Newton-Raphson with step halving. Every step is one call of
:func:`~retention_study.survival.riskset.risk_set_sums` plus O(event times x p^2) work.

Numbers follow R's ``survival::coxph`` (same ties, same weights convention: a tied group's
Efron terms carry the group's mean case weight) and lifelines' ``CoxPHFitter`` (same
penalty: ``penalizer / 2 * n_rows * sum((beta * sd)^2)`` with sd the covariates' standard
deviations, so a penalized fit equals lifelines' with the same ``penalizer``); the tests
compare both to 1e-8 on stored tables.

Failures are named: :class:`CoxConvergenceError` (no convergence in ``max_iter`` steps,
or a singular information matrix: collinear covariates) and :class:`CoxSeparationError`
(a coefficient runs off to infinity: some value almost perfectly predicts departing or
staying). Both are :class:`~retention_study.errors.AnalysisError`; a fit never returns
NaN coefficients.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.errors import AnalysisError
from retention_study.survival.riskset import (
    RiskSetIndex,
    index_risk_sets,
    risk_set_sums,
    thin_grid_index,
)

TIES = ("efron", "breslow")
SEPARATION_SD = 8.0  # |log-HR| per SD of a covariate beyond which the MLE is taken as infinite
SINGULAR_TOL = 1e-10  # smallest eigenvalue of the scaled information matrix still invertible
RESIDUAL_CHUNK = 1 << 18  # rows per block of score residuals
WARM_START_ROWS = 1 << 20  # grid tables this large start from a fit on a sample of rows
WARM_STEP = 32  # ... on every WARM_STEP-th row of each risk set


class CoxConvergenceError(AnalysisError):
    """Newton-Raphson did not converge, or the information matrix is singular."""


class CoxSeparationError(AnalysisError):
    """A coefficient diverges: the partial likelihood has no finite maximum.

    ``columns`` names the covariates concerned.
    """

    def __init__(self, message: str, columns=()):
        super().__init__(message)
        self.columns = list(columns)


@dataclass
class CoxData:
    """Start/stop rows prepared once for any number of fits (risk sets indexed).

    Build with :meth:`from_frame`; :meth:`CoxFitter.fit` accepts it in place of a
    DataFrame, so several models (or CV folds, via weights) share one index and one
    covariate matrix instead of copying the episode table per model.
    """

    index: RiskSetIndex
    x: np.ndarray  # covariates of the kept rows, index order, centred, column-major
    columns: list
    n_rows: int  # rows of the input table (kept or not)
    labels: pd.Index  # the input's index (all rows)
    ids: np.ndarray | None  # integer customer code of each kept row
    id_values: np.ndarray | None  # customer id of each code
    sd: np.ndarray  # standard deviation of each column over all input rows (ddof=1)
    strata: list | None
    columns_meta: tuple  # (start_col, stop_col, event_col)
    id_col: str | None = None

    @classmethod
    def from_frame(cls, df: pd.DataFrame, covariates, start_col: str = "start",
                   stop_col: str = "stop", event_col: str = "event", strata=None,
                   id_col: str | None = None) -> CoxData:
        """Check and index ``df`` (bad input: one-line :class:`AnalysisError`)."""
        covariates = list(covariates)
        strata = list(strata) if strata else None
        needed = [start_col, stop_col, event_col, *covariates, *(strata or []),
                  *([id_col] if id_col else [])]
        absent = [c for c in dict.fromkeys(needed) if c not in df]
        if absent:
            raise AnalysisError(f"Cox model: columns {absent} are absent")
        start = _column(df, start_col)
        stop = _column(df, stop_col)
        event_raw = _column(df, event_col)
        for name in covariates:
            if not pd.api.types.is_numeric_dtype(df[name]) and not pd.api.types.is_bool_dtype(
                    df[name]):
                raise AnalysisError(f"Cox model: covariate {name!r} is not numeric")
        bad = np.isnan(start) | np.isnan(stop) | np.isnan(event_raw)
        values = {}
        for name in covariates:
            values[name] = _column(df, name)
            finite = np.isfinite(values[name])
            if not finite.all():
                bad |= ~finite
        if bad.any():
            # the caller decides (and counts) which rows to leave out
            raise AnalysisError(f"Cox model: {int(bad.sum())} rows have a missing value in "
                                f"{[start_col, stop_col, event_col, *covariates]}")
        if (stop <= start).any():
            raise AnalysisError(f"Cox model: {int((stop <= start).sum())} rows end at or before "
                                "they start")
        event = event_raw == 1
        if not (event | (event_raw == 0)).all():
            raise AnalysisError(f"Cox model: {event_col} must be 0 or 1")
        if not event.any():
            raise AnalysisError("Cox model: no departures")
        code = (df.groupby(strata, sort=True, observed=True).ngroup().to_numpy()
                if strata else None)
        index = index_risk_sets(start, stop, event, code)
        del start, stop, event_raw, bad
        x, sd = _kept_design(values, covariates, index.rows, len(df))
        ids = id_values = None
        if id_col:
            codes, id_values = pd.factorize(df[id_col], sort=True)
            ids = codes[index.rows]
            id_values = np.asarray(id_values)
        return cls(index, x, covariates, len(df), df.index, ids, id_values, sd,
                   strata, (start_col, stop_col, event_col), id_col)

    def with_columns(self, values: dict) -> CoxData:
        """The same rows with more covariates, not indexed again.

        Equal to the last bit to :meth:`from_frame` with the extra columns (each column
        is prepared the same way, on its own), without sorting the rows or copying the
        episode table.

        Parameters
        ----------
        values : dict
            New column name -> one value per input row (none missing).

        Returns
        -------
        CoxData

        Examples
        --------
        >>> df = pd.DataFrame({"start": 0.0, "stop": [1.0, 2.0, 3.0], "event": [1, 1, 0],
        ...                    "x": [0.5, 1.0, 0.0]})
        >>> wider = CoxData.from_frame(df, ["x"]).with_columns({"z": np.array([1., 0., 1.])})
        >>> wider.columns, wider.x.shape
        (['x', 'z'], (3, 2))
        """
        names = list(values)
        cols = {c: np.asarray(v, dtype=float) for c, v in values.items()}
        if any(len(v) != self.n_rows for v in cols.values()):
            raise AnalysisError(f"Cox model: each new column needs {self.n_rows} values")
        extra, extra_sd = _kept_design(cols, names, self.index.rows, self.n_rows)
        x = np.empty((len(self.x), len(self.columns) + len(names)), order="F")
        x[:, :len(self.columns)] = self.x
        x[:, len(self.columns):] = extra
        out = dataclasses.replace(self, x=x, columns=list(self.columns) + names,
                                  sd=np.concatenate([self.sd, extra_sd]))
        out.__dict__.pop("_design", None)  # a cached subset of the narrower matrix
        return out

    def design(self, covariates) -> tuple[np.ndarray, np.ndarray]:
        """Centred covariates of a subset and their SDs.

        All columns in order: the prepared matrix itself; a subset: one copy, kept for
        the next fit of the same columns (e.g. the cross-validation folds).
        """
        if list(covariates) == self.columns:
            return self.x, self.sd
        key = tuple(covariates)
        cached = self.__dict__.get("_design")
        if cached is not None and cached[0] == key:
            return cached[1]
        self.__dict__["_design"] = None  # free the previous one first
        pos = [self.columns.index(c) for c in covariates]
        x = np.empty((len(self.x), len(pos)), order="F")
        for j, c in enumerate(pos):
            x[:, j] = self.x[:, c]
        self.__dict__["_design"] = (key, (x, self.sd[pos]))
        return x, self.sd[pos]


def _kept_design(values: dict, covariates: list, rows: np.ndarray, n: int):
    """Covariates of the kept rows in index order (column-major), centred, and their SDs.

    Centred once on each column's mean: keeps exp() in range and the x x' sums precise
    (the partial likelihood does not change). The SDs are over all input rows (ddof=1).
    Index order is far from input order (by slot, not by customer), and a gather in
    index order misses the cache at nearly every row; the rows are scattered instead,
    reading each column in input order: a stable sort by slot keeps each slot's rows in
    input order, so the writes advance through a few hundred runs, not at random.
    """
    p = len(covariates)
    x = np.empty((len(rows), p), order="F")
    sd = np.zeros(p)
    if len(rows) == 0:
        return x, sd
    dest = np.full(n, len(rows), dtype=np.int64)  # rows left out go to a spare last row
    dest[rows] = np.arange(len(rows))
    spare = len(rows) < n
    column = np.empty(len(rows) + 1) if spare else None
    for j, name in enumerate(covariates):
        col = values.pop(name)
        mean = col.mean()
        if spare:
            sd[j] = col.std(ddof=1) if n > 1 else 0.0
            column[dest] = col
            np.subtract(column[:-1], mean, out=x[:, j])
        else:
            xj = x[:, j]  # a 1-d view: its fancy assignment is ~3x faster than x[dest, j]
            xj[dest] = col
            xj -= mean
            sd[j] = np.sqrt(xj @ xj / (n - 1)) if n > 1 else 0.0
        del col
    return x, sd


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64 (a view when it is one already: never written to)."""
    col = df[name]
    if col.dtype == np.float64:
        return col.to_numpy()
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return col.to_numpy(float, na_value=np.nan)
    return pd.to_numeric(col, errors="coerce").to_numpy(float)


# --------------------------------------------------------------------------- one Newton step
@dataclass
class _SlotTerms:
    """Per-slot scalars of the tie correction at the current beta."""

    A: np.ndarray  # mean weight * sum_l 1/den_l
    B: np.ndarray  # mean weight * sum_l f_l/den_l
    C0: np.ndarray
    C1: np.ndarray
    C2: np.ndarray
    logden: np.ndarray  # mean weight * sum_l log den_l
    active: np.ndarray  # slots with a departure of positive weight


def _slot_terms(sums, ties: str) -> _SlotTerms:
    d = sums.n_dead.astype(np.int64)
    k = len(d)
    meanwt = np.divide(sums.dead_w, d, out=np.zeros(k), where=d > 0)
    slot = np.repeat(np.arange(k), d)
    if ties == "efron":
        within = np.arange(len(slot)) - np.repeat(np.cumsum(d) - d, d)
        f = within / d[slot]
    else:
        f = np.zeros(len(slot))
    with np.errstate(divide="ignore", invalid="ignore"):
        den = sums.s0[slot] - f * sums.e0[slot]
        inv = 1.0 / den
        logden = np.log(den)

    def per_slot(values):
        return meanwt * np.bincount(slot, values, minlength=k)

    # a trial step far out (halved afterwards) can make den tiny: inf, not a warning
    with np.errstate(over="ignore", invalid="ignore"):
        return _SlotTerms(per_slot(inv), per_slot(f * inv), per_slot(inv * inv),
                          per_slot(f * inv * inv), per_slot(f * f * inv * inv),
                          per_slot(logden), d > 0)


def loglik_grad_info(sums, ties: str, beta, xsum_dead, need_info: bool = True):
    """Unpenalized log partial likelihood, score and information from a step's sums.

    The one home of the Breslow/Efron accumulation: the pandas engine gets ``sums`` from
    :func:`~retention_study.survival.riskset.risk_set_sums`, the relational engines from one
    aggregate query (:mod:`retention_study.engines.relational_cox`).

    Parameters
    ----------
    sums : RiskSetSums
        Per event-time slot sums at ``beta`` (second-order sums when ``need_info``).
    ties : {"efron", "breslow"}
    beta : ndarray
    xsum_dead : ndarray
        Sum of the covariates over the departing rows (weighted).
    need_info : bool
        Also the information matrix (else ``info`` is None).

    Returns
    -------
    tuple
        ``(loglik, grad, info, terms)``; ``terms`` are the per-slot tie terms (residuals
        reuse them).

    Examples
    --------
    >>> df = pd.DataFrame({"start": [0, 0, 0], "stop": [1, 2, 3], "event": [1, 1, 0],
    ...                    "x": [1.0, 0.0, 0.0]})
    >>> data = CoxData.from_frame(df, ["x"])
    >>> x, _ = data.design(["x"])
    >>> sums = risk_set_sums(data.index, x, np.zeros(1), None, second=True)
    >>> ll, grad, info, _ = loglik_grad_info(sums, "efron", np.zeros(1), x[[0, 1]].sum(axis=0))
    >>> round(ll, 4), info.shape  # log(1/3) + log(1/2)
    (-1.7918, (1, 1))
    """
    t = _slot_terms(sums, ties)
    a = t.active
    loglik = float(xsum_dead @ beta - t.logden[a].sum() - sums.shift * sums.dead_w[a].sum())
    grad = xsum_dead - (t.A[a, None] * sums.s1[a] - t.B[a, None] * sums.e1[a]).sum(axis=0)
    info = None
    if need_info:
        s1, e1 = sums.s1[a], sums.e1[a]
        info = (np.einsum("k,kab->ab", t.A[a], sums.s2[a])
                - np.einsum("k,kab->ab", t.B[a], sums.e2[a])
                - np.einsum("k,ka,kb->ab", t.C0[a], s1, s1)
                + np.einsum("k,ka,kb->ab", t.C1[a], s1, e1)
                + np.einsum("k,ka,kb->ab", t.C1[a], e1, s1)
                - np.einsum("k,ka,kb->ab", t.C2[a], e1, e1))
    return loglik, grad, info, t


# --------------------------------------------------------------------------- the fitter
class CoxFitter:
    """Cox proportional hazards on start/stop rows: Breslow or Efron ties, strata, ridge.

    Parameters
    ----------
    ties : {"efron", "breslow"}
        How departures at the same time share the risk set (R's default and lifelines'
        is Efron; on a monthly grid most departures are tied).
    penalizer : float or array of float
        Ridge penalty ``n_rows / 2 * sum(penalizer * (beta * sd)^2)`` as in lifelines
        (0 = the plain partial likelihood; an array gives one value per covariate, e.g.
        ``c / sd**2`` puts the ridge on the coefficients themselves).
    alpha : float
        1 - coverage of the Wald limits in :attr:`summary`.
    max_iter : int
        Newton steps before :class:`CoxConvergenceError` (each has at most 30 halvings).

    Attributes
    ----------
    params_ : Series
        Log hazard ratios by covariate.
    standard_errors_ : Series
    variance_matrix_ : DataFrame
        Inverse of the (penalized) information matrix.
    log_likelihood_ : float
        Log partial likelihood at ``params_`` (minus the penalty when penalized).
    summary : DataFrame
        lifelines' columns: coef, exp(coef), se(coef), coef lower/upper, exp(coef)
        lower/upper (e.g. "exp(coef) lower 95%"), z, p.
    n_events_, n_rows_ : int
        Departures and rows (positive case weight) the fit used.
    iterations_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000)
    >>> df = pd.DataFrame({"start": 0.0, "stop": rng.exponential(1 / np.exp(0.5 * x)),
    ...                    "event": 1, "x": x})
    >>> cph = CoxFitter().fit(df, ["x"])
    >>> bool(abs(cph.params_["x"] - 0.5) < 0.1)
    True
    >>> list(cph.summary.columns[:3])
    ['coef', 'exp(coef)', 'se(coef)']
    """

    def __init__(self, ties: str = "efron", penalizer: float = 0.0, alpha: float = 0.05,
                 max_iter: int = 50) -> None:
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, not {ties!r}")
        self.ties = ties
        self.penalizer = penalizer
        self.alpha = alpha
        self.max_iter = int(max_iter)

    # ----------------------------------------------------------------- fit
    def fit(self, df, covariates, start_col: str = "start", stop_col: str = "stop",
            event_col: str = "event", strata=None, id_col: str | None = None,
            weights: np.ndarray | None = None, initial=None) -> CoxFitter:
        """Fit on rows at risk on (start, stop]; ``event`` 1 marks a departure at stop.

        Parameters
        ----------
        df : DataFrame or CoxData
            The rows (a :class:`CoxData` built once can be fitted many times).
        covariates : list of str
        start_col, stop_col, event_col : str
        strata : list of str, optional
            Columns whose combinations get their own baseline hazard.
        id_col : str, optional
            Customer column: :meth:`score_residuals` sums by it.
        weights : ndarray, optional
            Case weight per input row (0 leaves a row out: a cross-validation fold).
        initial : array-like, optional
            Starting coefficients (e.g. the full-data fit for a fold).

        Returns
        -------
        self

        Raises
        ------
        AnalysisError
            Bad input (absent columns, missing values, no departures).
        CoxConvergenceError, CoxSeparationError
        """
        covariates = list(covariates)
        data = df if isinstance(df, CoxData) else CoxData.from_frame(
            df, covariates, start_col, stop_col, event_col, strata, id_col)
        self.data_ = data
        self._weights = None if weights is None else np.asarray(weights, float)[data.index.rows]
        x, sd = data.design(covariates)
        self.columns_ = covariates
        dead = data.index.dead_rows
        if self._weights is not None:
            dead = dead[self._weights[dead] > 0]
        self.n_events_ = len(dead)
        if self.n_events_ == 0:
            raise AnalysisError("Cox model: no departures with a positive weight")
        n_rows = data.n_rows if weights is None else int((np.asarray(weights) > 0).sum())
        self.n_rows_ = n_rows
        case_dead = np.ones(len(dead)) if self._weights is None else self._weights[dead]
        xsum_dead = case_dead @ x[dead] if len(covariates) else np.zeros(0)
        pen = np.broadcast_to(np.asarray(self.penalizer, float), (len(covariates),))
        self._penalized_fit = bool(np.any(pen > 0))
        ridge = pen * n_rows * sd ** 2
        info0 = None
        if initial is not None:
            beta0 = np.asarray(initial, float).reshape(-1).copy()
        else:
            beta0, info0 = self._warm_start(x, data.index, ridge)
        beta, ll, info = self._newton(x, data.index, beta0, xsum_dead, ridge, info0)
        self._finish(beta, ll, info)
        return self

    def _warm_start(self, x, index, ridge):
        """Starting coefficients and an estimate of the information there.

        0 and None, except on a large grid table: the fit on every WARM_STEP-th row of
        each risk set, and its information scaled up by the ratio of departures. The
        whole-table Newton steps then start near the maximum with a first step that needs
        no second-order sums: about two passes over the table fewer, for a thirtieth of a
        pass, and the same maximum (each later step uses the table's own information).
        """
        p = x.shape[1]
        cold = np.zeros(p), None
        if not (index.grid and index.dead_end is not None and p
                and len(x) >= WARM_START_ROWS):
            return cold
        sub_index, pos = thin_grid_index(index, WARM_STEP)
        sub = CoxFitter(self.ties, self.penalizer, self.alpha, self.max_iter)
        sub._weights = None if self._weights is None else self._weights[pos]
        sub._penalized_fit = self._penalized_fit
        sub.data_, sub.columns_ = self.data_, self.columns_  # for the separation check
        xs = x[pos]
        dead, all_dead = sub_index.dead_rows, index.dead_rows
        if sub._weights is not None:
            dead = dead[sub._weights[dead] > 0]
        case = np.ones(len(dead)) if sub._weights is None else sub._weights[dead]
        full = (len(all_dead) if self._weights is None
                else self._weights[all_dead].sum())
        if case.sum() <= 0:
            return cold
        scale = full / case.sum()
        try:
            beta, _, info = sub._newton(xs, sub_index, np.zeros(p), case @ xs[dead],
                                        ridge / scale)
        except AnalysisError:  # the sample separates or is singular: start from 0
            return cold
        if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(info))):
            return cold
        return beta, info * scale

    def _design(self) -> np.ndarray:
        # not kept on the fitter: CoxData caches one design, so several fitted models do
        # not each hold a rows x p copy
        return self.data_.design(self.columns_)[0]

    def _risk_set_sums(self, x, index, beta, need_info: bool):
        """A step's risk-set sums (the relational engines get them from a query instead)."""
        return risk_set_sums(index, x, beta, self._weights, second=need_info)

    def _penalized(self, x, index, beta, xsum_dead, ridge, need_info=True):
        sums = self._risk_set_sums(x, index, beta, need_info)
        ll, grad, info, _ = loglik_grad_info(sums, self.ties, beta, xsum_dead, need_info)
        ll -= 0.5 * float(ridge @ beta ** 2)
        grad = grad - ridge * beta
        if info is not None:
            info = info + np.diag(ridge)
        return ll, grad, info

    def _newton(self, x, index, beta, xsum_dead, ridge, info0=None):
        """Bounded Newton-Raphson from ``beta``; ``info0`` (an estimate of the information
        there, e.g. from a fit on a sample) saves the first step's second-order sums."""
        ll, grad, info = self._penalized(x, index, beta, xsum_dead, ridge,
                                         need_info=info0 is None)
        if info is None:
            info = info0
        self.iterations_ = 0
        if not len(beta):
            return beta, ll, info
        if not np.isfinite(ll):
            raise CoxConvergenceError("Cox model: the partial likelihood is not finite at the "
                                      "starting coefficients")
        for it in range(1, self.max_iter + 1):
            self.iterations_ = it
            step = self._solve(info, grad)
            if np.max(np.abs(step)) < 1e-10:
                if info is info0:  # an estimate: the variance needs the information here
                    info = self._penalized(x, index, beta, xsum_dead, ridge)[2]
                return beta, ll, info
            tol = 1e-12 * (1.0 + abs(ll))  # rounding in sums over many rows: not a decrease
            for _halving in range(30):
                new = self._penalized(x, index, beta + step, xsum_dead, ridge)
                if np.isfinite(new[0]) and new[0] >= ll - tol and np.all(np.isfinite(new[1])):
                    break
                step = step / 2
            else:
                break  # no step improves the likelihood: not converging
            beta = beta + step
            gain = new[0] - ll
            ll, grad, info = new
            # Newton converges quadratically: a step that gains almost nothing lands on the
            # maximum to rounding (or, under separation, creeps along a flat ridge; the
            # size of the coefficients tells the two apart in _finish)
            if gain <= tol:
                return beta, ll, info
        self._check_separation(beta)
        raise CoxConvergenceError(f"Cox model did not converge in {self.max_iter} Newton steps")

    def _solve(self, info, grad):
        scale = 1.0 / np.sqrt(np.clip(np.diag(info), 1e-300, None))
        scaled = info * np.outer(scale, scale)
        eig = np.linalg.eigvalsh(scaled) if np.all(np.isfinite(scaled)) else np.array([-1.0])
        if eig.min() < SINGULAR_TOL:
            raise CoxConvergenceError("Cox model: the information matrix is singular "
                                      "(collinear covariates or a covariate without variation "
                                      "among the rows at risk)")
        return np.linalg.solve(info, grad)

    def _check_separation(self, beta) -> None:
        """Raise :class:`CoxSeparationError` when an unpenalized coefficient runs off."""
        if self._penalized_fit:
            return
        sd = self.data_.sd[[self.data_.columns.index(c) for c in self.columns_]]
        extreme = [c for c, b, s in zip(self.columns_, beta, sd, strict=True)
                   if abs(b * s) > SEPARATION_SD]
        if extreme:
            raise CoxSeparationError(
                f"Cox model: coefficients of {extreme} diverge (separation: some value almost "
                "perfectly predicts departing or staying)", extreme)

    def _finish(self, beta, ll, info) -> None:
        cols = self.columns_
        self._check_separation(beta)
        cov = np.linalg.inv(info) if len(cols) else np.zeros((0, 0))
        se = np.sqrt(np.diag(cov))
        self.params_ = pd.Series(beta, index=pd.Index(cols, name="covariate", dtype=object),
                                 name="coef", dtype=float)
        self.variance_matrix_ = pd.DataFrame(cov, index=self.params_.index,
                                             columns=self.params_.index)
        self.standard_errors_ = pd.Series(se, index=self.params_.index, name="se(coef)")
        self.log_likelihood_ = float(ll)
        self.information_ = info
        self.summary = _summary(beta, se, self.params_.index, self.alpha)

    # ----------------------------------------------------------------- results
    def _final_sums(self):
        beta = self.params_.to_numpy()
        sums = risk_set_sums(self.data_.index, self._design(), beta, self._weights, second=False)
        return sums, _slot_terms(sums, self.ties), beta

    def score_residuals(self, by_id: bool = True) -> pd.DataFrame:
        """Each row's (or customer's) contribution to the score at the fitted coefficients.

        They sum to the gradient of the partial likelihood (0 at the MLE); with the
        variance matrix they give one-step (jackknife/bootstrap) updates and robust
        variances. Equal to R's ``residuals(fit, type = "score")`` (``collapse = id``).

        Parameters
        ----------
        by_id : bool
            Sum by the ``id_col`` given to :meth:`fit` (else one row per input row).

        Returns
        -------
        DataFrame
            One column per covariate, indexed by customer id (or the input's index).
        """
        sums, t, beta = self._final_sums()
        x = self._design()
        p = x.shape[1]
        mbar, g_term, h_term = self._slot_means(sums, t)
        # risk part summed over each row's slots first..last, by running sums over slots
        ca = np.concatenate([[0.0], np.cumsum(t.A)])
        cg = np.vstack([np.zeros((1, p)), np.cumsum(g_term, axis=0)])
        if by_id and self.data_.ids is None:
            raise ValueError("score_residuals(by_id=True) needs fit(..., id_col=...)")
        n_out = len(self.data_.id_values) if by_id else len(x)
        out = np.zeros((n_out, p))
        for lo in range(0, len(x), RESIDUAL_CHUNK):  # chunks: a few rows x p temporaries
            sl = slice(lo, lo + RESIDUAL_CHUNK)
            resid = self._chunk_residuals(sl, x, beta, sums.shift, ca, cg, mbar, h_term, t)
            if by_id:
                ids = self.data_.ids[sl]
                for j in range(p):
                    out[:, j] += np.bincount(ids, resid[:, j], minlength=n_out)
            else:
                out[sl] = resid
        if by_id:
            return pd.DataFrame(out, index=pd.Index(self.data_.id_values, name="id"),
                                columns=self.columns_)
        full = np.zeros((self.data_.n_rows, p))
        full[self.data_.index.rows] = out
        return pd.DataFrame(full, index=self.data_.labels, columns=self.columns_)

    def _chunk_residuals(self, sl, x, beta, shift, ca, cg, mbar, h_term, t):
        """Score residuals of the kept rows ``sl`` (see :meth:`score_residuals`)."""
        index = self.data_.index
        xs = x[sl]
        case = np.ones(len(xs)) if self._weights is None else self._weights[sl]
        w = case * np.exp(xs @ beta - shift)
        lo, hi = index.first[sl], index.last[sl] + 1
        resid = -w[:, None] * (xs * (ca[hi] - ca[lo])[:, None] - (cg[hi] - cg[lo]))
        dead = np.flatnonzero((index.event_slot[sl] >= 0) & (case > 0))
        k = index.event_slot[sl][dead]
        resid[dead] += case[dead, None] * (xs[dead] - mbar[k])
        resid[dead] += w[dead, None] * (xs[dead] * t.B[k, None] - h_term[k])
        return resid

    def _slot_means(self, sums, t):
        """Mean covariates of each slot (average over the tie slots) and the G, H terms."""
        d = sums.n_dead.astype(np.int64)
        k = len(d)
        meanwt = np.divide(sums.dead_w, d, out=np.zeros(k), where=d > 0)
        slot = np.repeat(np.arange(k), d)
        within = np.arange(len(slot)) - np.repeat(np.cumsum(d) - d, d)
        f = within / d[slot] if self.ties == "efron" else np.zeros(len(slot))
        den = sums.s0[slot] - f * sums.e0[slot]
        m = (sums.s1[slot] - f[:, None] * sums.e1[slot]) / den[:, None]
        p = m.shape[1]
        mbar = np.zeros((k, p))
        g_term = np.zeros((k, p))
        h_term = np.zeros((k, p))
        for j in range(p):
            mbar[:, j] = np.bincount(slot, m[:, j], minlength=k) / np.maximum(d, 1)
            g_term[:, j] = meanwt * np.bincount(slot, m[:, j] / den, minlength=k)
            h_term[:, j] = meanwt * np.bincount(slot, f * m[:, j] / den, minlength=k)
        return mbar, g_term, h_term

    def schoenfeld_residuals(self, method: str | None = None) -> pd.DataFrame:
        """Covariates of each departing row minus the risk-set mean at its time.

        Parameters
        ----------
        method : {"efron", "breslow"}, optional
            The mean used: Efron's average over the tied group (R's residuals of an
            Efron fit) or the plain risk-weighted mean of the rows at risk (Breslow).
            Default: the fit's ``ties``.

        Returns
        -------
        DataFrame
            One row per departure (positive weight), indexed like the input rows, in
            input row order.
        """
        method = method or self.ties
        sums, t, beta = self._final_sums()
        index, x = self.data_.index, self._design()
        case = np.ones(len(x)) if self._weights is None else self._weights
        dead = np.flatnonzero((index.event_slot >= 0) & (case > 0))
        k = index.event_slot[dead]
        if method == "efron":
            mbar = self._slot_means(sums, t)[0]
        else:
            mbar = sums.s1 / sums.s0[:, None]
        resid = x[dead] - mbar[k]
        order = np.argsort(self.data_.index.rows[dead], kind="stable")
        out = pd.DataFrame(resid[order], columns=self.columns_,
                           index=self.data_.labels[self.data_.index.rows[dead][order]])
        out.insert(0, "time", self.data_.index.times[k][order])
        return out

    def predict_log_partial_hazard(self, df: pd.DataFrame) -> np.ndarray:
        """x'beta of the rows of ``df`` (not centred: differences are what matter)."""
        return df[self.columns_].to_numpy(float) @ self.params_.to_numpy()

    def to_lifelines(self, df: pd.DataFrame, sample: int | None = None, seed: int = 0):
        """Refit this model with lifelines' ``CoxPHFitter`` for its print_summary and plots.

        lifelines' late-entry fit is slow on large tables (its cost grows with event
        times x rows), so ``sample`` customers (``id_col`` given at fit) or rows are
        drawn first. lifelines has Efron ties only; a Breslow fit is refitted with Efron.

        Parameters
        ----------
        df : DataFrame
            The rows this model was fitted on.
        sample : int, optional
            Number of customers (or rows without an id column) to keep; None keeps all.
        seed : int

        Returns
        -------
        lifelines.CoxPHFitter
        """
        from lifelines import CoxPHFitter

        start_col, stop_col, event_col = self.data_.columns_meta
        strata = self.data_.strata
        part = df
        if sample is not None:
            rng = np.random.default_rng(seed)
            col = self.data_.id_col
            if col is not None:
                ids = df[col].unique()
                keep = rng.choice(ids, size=min(sample, len(ids)), replace=False)
                part = df[df[col].isin(keep)]
            else:
                part = df.iloc[np.sort(rng.choice(len(df), size=min(sample, len(df)),
                                                  replace=False))]
        cols = [start_col, stop_col, event_col, *self.columns_, *(strata or [])]
        data = part[list(dict.fromkeys(cols))]
        entry = start_col if (data[start_col] > 0).any() else None
        if entry is None:
            data = data.drop(columns=start_col)
        return CoxPHFitter(penalizer=self.penalizer, alpha=self.alpha).fit(
            data, duration_col=stop_col, event_col=event_col, entry_col=entry, strata=strata)


def _summary(beta, se, index, alpha) -> pd.DataFrame:
    z = stats.norm.ppf(1 - alpha / 2)
    level = f"{100 * (1 - alpha):g}%"
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        table = pd.DataFrame({
            "coef": beta, "exp(coef)": np.exp(beta), "se(coef)": se,
            f"coef lower {level}": beta - z * se, f"coef upper {level}": beta + z * se,
            f"exp(coef) lower {level}": np.exp(beta - z * se),
            f"exp(coef) upper {level}": np.exp(beta + z * se),
            "z": beta / se, "p": 2 * stats.norm.sf(np.abs(beta / se))}, index=index)
    return table


def log_partial_likelihood(df: pd.DataFrame, covariates, beta, ties: str = "efron",
                           start_col: str = "start", stop_col: str = "stop",
                           event_col: str = "event", strata=None) -> float:
    """Log partial likelihood of start/stop rows at given coefficients (no fit).

    Examples
    --------
    >>> df = pd.DataFrame({"start": [0, 0, 0], "stop": [1, 2, 3], "event": [1, 1, 0],
    ...                    "x": [1.0, 0.0, 0.0]})
    >>> round(log_partial_likelihood(df, ["x"], [0.0]), 4)  # log(1/3) + log(1/2)
    -1.7918
    """
    data = CoxData.from_frame(df, list(covariates), start_col, stop_col, event_col, strata)
    x, _ = data.design(list(covariates))
    beta = np.asarray(beta, float).reshape(-1)
    ev = data.index.event_slot >= 0
    sums = risk_set_sums(data.index, x, beta, None, second=False)
    ll, *_ = loglik_grad_info(sums, ties, beta, x[ev].sum(axis=0), need_info=False)
    return ll
