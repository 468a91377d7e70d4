"""A small, fast Cox model for counting-process data (late entry, start/stop episodes).

Why not lifelines here: ``CoxPHFitter(entry_col=...)`` took over ten minutes on 50,000
customers with late entry, and segments/reasons need a few such fits per run. This
fit sums risk sets with sorted cumulative sums (O(n log n) per Newton step), handles
ties by Breslow's method and left truncation / start-stop rows by counting a row at
risk on (start, stop]. With few covariates it fits 10^6 rows in seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from retention_study.errors import AnalysisError


class _RiskSets:
    """Sums of w * [1, x, x x'] over each event time's risk set, by suffix cumulative sums.

    The products x x' do not change between Newton steps, so they are sorted once.
    """

    def __init__(self, start: np.ndarray, stop: np.ndarray, event: np.ndarray,
                 x: np.ndarray) -> None:
        self.times, self.deaths = np.unique(stop[event == 1], return_counts=True)
        self.p = p = x.shape[1]
        self.pairs = [(a, b) for a in range(p) for b in range(a, p)]
        design = np.column_stack([np.ones(len(x)), x] + [x[:, a] * x[:, b] for a, b in self.pairs])
        self.order_s, self.order_e = np.argsort(stop, kind="stable"), np.argsort(start,
                                                                                  kind="stable")
        self.design_s, self.design_e = design[self.order_s], design[self.order_e]
        self.idx_s = np.searchsorted(stop[self.order_s], self.times, "left")
        # a row whose start is >= t is not yet at risk at t
        self.idx_e = np.searchsorted(start[self.order_e], self.times, "left")

    def sums(self, w: np.ndarray):
        """S0 (t,), S1 (t, p), S2 (t, p, p) at each event time for row weights ``w``."""
        def suffix(design, order, idx):
            c = np.cumsum((w[order][:, None] * design)[::-1], axis=0)[::-1]
            return np.vstack([c, np.zeros((1, c.shape[1]))])[idx]
        tot = (suffix(self.design_s, self.order_s, self.idx_s)
               - suffix(self.design_e, self.order_e, self.idx_e))
        p = self.p
        s2 = np.empty((len(self.times), p, p))
        for k, (a, b) in enumerate(self.pairs):
            s2[:, a, b] = s2[:, b, a] = tot[:, 1 + p + k]
        return tot[:, 0], tot[:, 1:1 + p], s2


def _loglik_parts(rs: _RiskSets, x: np.ndarray, beta: np.ndarray, x_events: np.ndarray,
                  ridge: float):
    eta = x @ beta
    shift = eta.max() if len(eta) else 0.0
    s0, s1, s2 = rs.sums(np.exp(eta - shift))
    d = rs.deaths
    loglik = x_events @ beta - d @ (np.log(s0) + shift) - 0.5 * ridge * beta @ beta
    mean = s1 / s0[:, None]
    grad = x_events - d @ mean - ridge * beta
    info = np.einsum("t,tab->ab", d, s2 / s0[:, None, None]) - np.einsum(
        "t,ta,tb->ab", d, mean, mean) + ridge * np.eye(len(beta))
    return loglik, grad, info


class RiskSetCox:
    """Cox proportional hazards by Newton–Raphson on the Breslow partial likelihood.

    Parameters
    ----------
    alpha : float
        1 - confidence level of the limits.
    ridge : float
        Tiny L2 penalty per row (as lifelines' ``penalizer``): keeps a segment without
        departures finite instead of diverging.

    Attributes
    ----------
    params_ : Series
        Log hazard ratios by covariate.
    summary : DataFrame
        Index covariate; ``coef``, ``se(coef)``, ``exp(coef)``, ``exp(coef) lower``,
        ``exp(coef) upper``, ``z``, ``p`` (Wald).
    log_likelihood_ : float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000)
    >>> t = rng.exponential(1 / np.exp(0.5 * x))
    >>> df = pd.DataFrame({"start": 0.0, "stop": t, "event": 1, "x": x})
    >>> m = RiskSetCox().fit(df, ["x"])
    >>> bool(abs(m.params_["x"] - 0.5) < 0.1)
    True
    """

    def __init__(self, alpha: float = 0.05, ridge: float = 1e-6) -> None:
        self.alpha = alpha
        self.ridge = ridge

    def fit(self, df: pd.DataFrame, covariates: list[str], start_col: str = "start",
            stop_col: str = "stop", event_col: str = "event", max_iter: int = 50) -> RiskSetCox:
        """Fit on rows at risk on (start, stop]; ``event`` 1 marks a departure at stop."""
        start = df[start_col].to_numpy(float)
        stop = df[stop_col].to_numpy(float)
        event = df[event_col].to_numpy(int)
        if not event.any():
            raise AnalysisError("Cox model: no departures")
        raw = df[covariates].to_numpy(float)
        x = raw - raw.mean(axis=0)  # centring keeps exp() in range; ratios are unchanged
        rs = _RiskSets(start, stop, event, x)
        x_events = x[event == 1].sum(axis=0)
        beta = np.zeros(len(covariates))
        ridge = self.ridge * len(df)
        ll, grad, info = _loglik_parts(rs, x, beta, x_events, ridge)
        for _ in range(max_iter):
            step = np.linalg.solve(info, grad)
            if np.max(np.abs(step)) < 1e-8:
                break
            # rounding in a sum over a million rows: do not halve on noise
            tol = 1e-9 * (1.0 + abs(ll))
            for _halving in range(30):
                new = _loglik_parts(rs, x, beta + step, x_events, ridge)
                if np.isfinite(new[0]) and new[0] >= ll - tol:
                    break
                step = step / 2
            beta = beta + step
            ll, grad, info = new
        else:
            raise AnalysisError("Cox model did not converge")
        self._finish(beta, info, ll, covariates)
        return self

    def _finish(self, beta, info, ll, covariates) -> None:
        se = np.sqrt(np.diag(np.linalg.inv(info)))
        z = stats.norm.ppf(1 - self.alpha / 2)
        self.params_ = pd.Series(beta, index=covariates, name="coef")
        self.log_likelihood_ = float(ll)
        self.summary = pd.DataFrame({
            "coef": beta, "se(coef)": se, "exp(coef)": np.exp(beta),
            "exp(coef) lower": np.exp(beta - z * se), "exp(coef) upper": np.exp(beta + z * se),
            "z": beta / se, "p": 2 * stats.norm.sf(np.abs(beta / se))}, index=covariates)
        self.summary.index.name = "covariate"
