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

:func:`decide_verdict` turns the block models and the head-to-head into a label and a
sentence in which every number is computed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retention_study.errors import ConfigError
from retention_study.models import MODELS, BlockModels, fit_cox
from retention_study.records import to_records

log = logging.getLogger("retention_study")

VERDICTS = ("price", "contact", "both", "neither", "inconclusive")
HEADLINE = {"contact": ["months_since_contact"],
            "price": ["loyalty_penalty", "log_price", "price_increase_recent"]}


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


@dataclass
class Verdict:
    """The study's answer: a label, a sentence with its numbers, the evidence and the rule."""

    label: str
    sentence: str
    evidence: dict = field(default_factory=dict)
    rule: str = ""

    def to_dict(self) -> dict:
        return {"label": self.label, "sentence": self.sentence, "evidence": self.evidence,
                "rule": self.rule}


RULE = """Verdict rule (alpha = {alpha}, equivalence margin = {margin}):
1. Test each block given the other with the likelihood-ratio test of the final model
   (price + contact) against the model without that block: p_price = p(price | contact),
   p_contact = p(contact | price). A block with no usable measure has no p-value.
   The two p-values are Holm-adjusted (the verdict makes two claims, so the chance of a
   false "price" or "contact" in a world where neither matters stays at alpha).
2. Both adjusted p < alpha -> "both"; the sentence says which explains more: the one the
   cross-validated partial log-likelihood favours when the bootstrap CI of the difference
   excludes 0, else the one with the lower AIC when the AICs differ by more than 2,
   else neither clearly.
3. Only adjusted p_contact < alpha -> "contact"; only adjusted p_price < alpha -> "price"
   (if the other block was not measured, the sentence says so).
4. Neither adjusted p < alpha -> "neither" only with evidence of absence: both blocks
   measured and the CI of each block's headline business-unit hazard ratio (the one the
   sentence states: per 6 months without contact, per +10% above the new-customer price,
   else the block's first measure) inside [1/margin, margin]; otherwise "inconclusive"."""


def holm(pvalues: dict) -> dict:
    """Holm step-down adjustment of a few p-values (NaN stays NaN).

    Examples
    --------
    >>> holm({"a": 0.01, "b": 0.04})
    {'a': 0.02, 'b': 0.04}
    >>> holm({"a": 0.03, "b": 0.02})
    {'a': 0.04, 'b': 0.04}
    """
    keys = [k for k, p in pvalues.items() if np.isfinite(p)]
    order = sorted(keys, key=lambda k: pvalues[k])
    m = len(order)
    out = {k: float("nan") for k in pvalues}
    running = 0.0
    for i, k in enumerate(order):  # at most a handful of tests
        running = max(running, min(1.0, (m - i) * pvalues[k]))
        out[k] = running
    return out


def _headline(effects: pd.DataFrame, block: str):
    rows = effects[effects["block"] == block]
    for name in HEADLINE[block]:
        if (rows["covariate"] == name).any():
            return rows[rows["covariate"] == name].iloc[0]
    return rows.iloc[0] if len(rows) else None


def _effect_text(row, alpha: float, level: int) -> str:
    ci = f"{level}% CI {row['lower']:.2f}\u2013{row['upper']:.2f}"
    text = f"customers left {row['hr']:.2f} times as often {row['phrase']} ({ci})"
    if row["p"] >= alpha:
        text += ", not clearly different from no effect"
    return text


def _lr_p(block_models: BlockModels, test: str) -> float:
    row = block_models.lr_tests.set_index("test").loc[test]
    return float(row["p"])


def _which_explains_more(head_to_head, block_models) -> tuple[str | None, str]:
    d = head_to_head.differences.set_index("metric").loc["cv_loglik"]
    cv = (f"cross-validated log-likelihood difference contact minus price {d['estimate']:.1f} "
          f"(CI {d['lower']:.1f} to {d['upper']:.1f})")
    if d["lower"] > 0:
        return "contact", cv
    if d["upper"] < 0:
        return "price", cv
    aic = block_models.aic.set_index("model")["aic"]
    gap = float(aic["price"] - aic["contact"])
    text = f"{cv}; AIC price minus contact {gap:.1f}"
    if abs(gap) > 2:
        return ("contact" if gap > 0 else "price"), text
    return None, text


def decide_verdict(block_models: BlockModels, head_to_head: HeadToHead | None = None,
                   alpha: float = 0.05, margin: float = 1.1) -> Verdict:
    """Decide whether price, lack of contact, both or neither explains departures.

    The rule (also returned as ``Verdict.rule``):

    1. p_price = likelihood-ratio p of the price block given contact, p_contact = that of
       the contact block given price (final model against the model without the block),
       both Holm-adjusted.
    2. Both < ``alpha``: "both"; which explains more comes from the cross-validated
       partial likelihood (bootstrap CI excluding 0), else AIC (difference > 2).
    3. Only one < ``alpha``: that one ("contact" or "price").
    4. None < ``alpha``: "neither" when both blocks were measured and the CI of each
       block's headline business-unit HR (the one the sentence states) lies within
       [1/``margin``, ``margin``] (evidence of absence), else "inconclusive".

    Parameters
    ----------
    block_models : BlockModels
        Fitted block models.
    head_to_head : HeadToHead, optional
        Fitted cross-validation; without it "which explains more" uses AIC only.
    alpha : float
    margin : float
        Equivalence margin (> 1) of the business-unit hazard ratios.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> decide_verdict(BlockModels().fit(_example_timeline())).label
    'contact'
    """
    level = round(100 * (1 - block_models.alpha))
    raw = {"price": _lr_p(block_models, "price | contact"),
           "contact": _lr_p(block_models, "contact | price")}
    adjusted = holm(raw)
    p_price, p_contact = adjusted["price"], adjusted["contact"]
    sig = {"price": p_price < alpha, "contact": p_contact < alpha}
    names = _block_names(block_models)
    measured = {b: bool(block_models.blocks.get(b)) for b in ("price", "contact")}
    eff = block_models.effects
    heads = {b: _headline(eff, b) for b in ("contact", "price")}
    effect_texts = [_effect_text(r, alpha, level) for r in heads.values() if r is not None]
    pvals = (f"likelihood-ratio p = {_p_text(p_contact)} for contact given price, "
             f"{_p_text(p_price)} for price given contact, Holm-adjusted")
    evidence = {"p_price_given_contact": raw["price"], "p_contact_given_price": raw["contact"],
                "p_price_given_contact_holm": p_price, "p_contact_given_price_holm": p_contact,
                "alpha": alpha, "margin": margin, "measured": measured,
                "headline_effects": to_records(pd.DataFrame([r for r in heads.values()
                                                           if r is not None]))}
    if sig["price"] or sig["contact"]:
        label, conclusion = _positive_verdict(sig, measured, names, pvals, block_models,
                                              head_to_head, evidence)
    else:
        label, conclusion = _null_verdict(heads, measured, margin, pvals, evidence, names)
    sentence = _capital("; ".join(effect_texts)) + ". " if effect_texts else ""
    return Verdict(label, sentence + conclusion, evidence, RULE.format(alpha=alpha, margin=margin))


def _positive_verdict(sig, measured, names, pvals, block_models, head_to_head, evidence):
    if sig["price"] and sig["contact"]:
        more, how = (_which_explains_more(head_to_head, block_models) if head_to_head
                     else _aic_only(block_models))
        evidence["explains_more"] = more
        who = {**names, None: "neither clearly"}[more]
        return "both", (f"Both {names['price']} and {names['contact']} explain departures "
                        f"({pvals}); {who} explains more ({how}).")
    label = "contact" if sig["contact"] else "price"
    other = "price" if label == "contact" else "contact"
    conclusion = (f"{_capital(names[label])} explains departures better than "
                  f"{names[other]} ({pvals}).")
    if not measured[other]:
        conclusion += f" {other.capitalize()} was not measured in this data."
    return label, conclusion


def _block_names(block_models) -> dict:
    """How the sentence names each block: the study's measures, or the proxy columns."""
    blocks = block_models.blocks
    names = {"price": "price", "contact": "lack of contact"}
    if blocks.get("contact") and "months_since_contact" not in blocks["contact"]:
        names["contact"] = "the contact measure (" + ", ".join(blocks["contact"]) + ")"
    proper = {"loyalty_penalty", "log_price", "price_increase_recent"}
    if blocks.get("price") and not proper & set(blocks["price"]):
        names["price"] = "the price measure (" + ", ".join(blocks["price"]) + ")"
    return names


def _aic_only(block_models):
    aic = block_models.aic.set_index("model")["aic"]
    gap = float(aic["price"] - aic["contact"])
    more = None if abs(gap) <= 2 else ("contact" if gap > 0 else "price")
    return more, f"AIC price minus contact {gap:.1f}"


def _null_verdict(heads, measured, margin, pvals, evidence, names):
    rows = pd.DataFrame([r for r in heads.values() if r is not None])
    inside = bool(len(rows)) and bool(((rows["lower"] >= 1 / margin)
                                       & (rows["upper"] <= margin)).all())
    evidence["headlines_within_margin"] = inside
    if inside and all(measured.values()):
        return "neither", (f"Neither {names['price']} nor {names['contact']} explains departures "
                           f"({pvals}); both hazard ratios above lie within {1 / margin:.2f}"
                           f"\u2013{margin:.2f}.")
    widest = float(np.exp(np.abs(np.log(rows[["lower", "upper"]].to_numpy())).max())) \
        if len(rows) else float("nan")
    missing = [b for b, ok in measured.items() if not ok]
    if missing:
        why = f"{' and '.join(missing)} not measured"
    elif np.isfinite(widest):
        why = f"effects up to a hazard ratio of {widest:.2f} are not ruled out"
    else:  # the final model failed: no interval to read
        why = "the final model gave no hazard ratios"
    return "inconclusive", (f"The data cannot tell whether {names['price']} or "
                            f"{names['contact']} explains departures ({pvals}; {why}).")


def _p_text(p: float) -> str:
    """A p-value for the sentence; a test that could not be run says so, not 'nan'."""
    return f"{p:.2g}" if np.isfinite(p) else "not computed"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
