"""The report's figures, drawn for management: plain-words labels, intervals always shown.

Every function takes ``ax=None`` (a new figure is made) and returns the Axes, so the
notebook can place figures side by side. Colours come from seaborn's colour-blind-safe
palette. An empty input draws a labelled, empty Axes instead of failing, so a report on
thin data still renders.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import seaborn as sns
from lifelines.plotting import add_at_risk_counts

from retention_study.analysis.km import KMResult
from retention_study.analysis.loyalty import LoyaltyPenalty
from retention_study.analysis.reasons import CumulativeIncidence
from retention_study.episodes import measures
from retention_study.present.style import (
    colour_list,
    colour_of,
    empty_axes,
    new_axes,
    plain_names,
    wrap_label,
)

log = logging.getLogger("retention_study")
RATE_LABEL = "Departures per 100 customer-years"

#: Row name of a difference table (``compare.HeadToHead.differences``).
DIFFERENCE = "contact minus price"

#: Plain names of the study's models (see ``retention_study.analysis.models``).
MODEL_NAMES = {
    DIFFERENCE: "Contact model minus price model",
    "controls": "Neither (service and controls only)",
    "price": "Price",
    "contact": "Supplier contact",
    "both": "Price and contact",
}

#: Plain names of comparison metrics; unknown metrics are shown under their own name.
METRIC_NAMES = {
    "concordance": "Concordance: share of customer pairs put in the right order\n"
                   "(0.5 = coin toss, 1 = perfect)",
    "cv_partial_likelihood": "Fit on customers held out (cross-validated log-likelihood;\n"
                             "higher is better)",
    "cv_loglik": "Fit on customers held out (cross-validated log-likelihood;\n"
                 "higher is better)",
    "cv_loglik_per_departure": "Fit on customers held out, per departure\n"
                               "(cross-validated log-likelihood; higher is better)",
    "aic": "AIC (lower is better)",
}




# ---------------------------------------------------------------------------- rates


def plot_rates(rates_df: pd.DataFrame, ax=None, title: str | None = None,
               xlabel: str = "", block: str | None = None):
    """Bars of departures per 100 customer-years by band, with confidence intervals.

    Parameters
    ----------
    rates_df : DataFrame
        Output of :func:`retention_study.analysis.descriptives.rates_by_band` (``band``,
        ``rate_per_100``, ``lower``, ``upper``, ``departures``).
    ax : matplotlib Axes, optional
    title, xlabel : str, optional
        Plain words, e.g. "Time since we last contacted the customer".
    block : str, optional
        ``"price"`` or ``"contact"``: the bars take that block's colour, as in the
        other figures.

    Returns
    -------
    matplotlib Axes
        One bar per band; bands without customer time are marked "no customers".

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> r = pd.DataFrame({"band": ["0-3", "3-6"], "rate_per_100": [5.0, 9.0],
    ...                   "lower": [3.0, 6.0], "upper": [8.0, 13.0], "departures": [9, 14]})
    >>> len(plot_rates(r).patches)
    2
    """
    ax = new_axes(ax)
    if title:
        ax.set_title(title)
    if rates_df is None or rates_df.empty:
        return empty_axes(ax, "No customer time to show")
    x = np.arange(len(rates_df))
    rate = rates_df["rate_per_100"].to_numpy(float)
    lower = rates_df["lower"].to_numpy(float)
    upper = rates_df["upper"].to_numpy(float)
    known = ~np.isnan(rate)
    ax.bar(x, np.where(known, rate, 0.0), color=colour_of(block) if block else colour_list(1)[0],
           width=0.65)
    ax.errorbar(x[known], rate[known], yerr=[rate[known] - lower[known],
                upper[known] - rate[known]], fmt="none", ecolor="black", capsize=4)
    for xi, ok, dep in zip(x, known, rates_df.get("departures", [None] * len(x)), strict=True):
        text = f"{int(dep)} left" if ok and dep is not None else "no customers"
        ax.annotate(text, (xi, 0), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8.5, color="white" if ok else "grey")
    ax.set_xticks(x, [wrap_label(b, 14) for b in rates_df["band"].astype(str)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(RATE_LABEL)
    ax.set_ylim(bottom=0)
    sns.despine(ax=ax)
    return ax


# ------------------------------------------------------------------------ survival


def plot_km(km_result: KMResult, ax=None, *, at_risk: bool = True,
            title: str | None = None):
    """Share of customers still with us by months as a customer, one curve per group.

    Shaded bands are the confidence intervals; the numbers of customers still followed
    are printed under the plot (lifelines ``add_at_risk_counts``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> len(plot_km(KMResult(by="plan")).get_lines())
    0
    """
    ax = new_axes(ax, size=(5.4, 1.85))
    by = km_result.by
    ax.set_title(title if title is not None else f"Customers remaining, by {by}")
    fitters = list(km_result.fitters.values())
    if not fitters:
        return empty_axes(ax, "No customers to show")
    colours = colour_list(10)
    for i, kmf in enumerate(fitters):
        # the palette has 10 colours; dashes tell groups 11+ apart
        kmf.plot_survival_function(ax=ax, ci_show=True, color=colours[i % 10],
                                   linestyle="-" if i < 10 else "--")
    ax.set_xlabel("Months as a customer")
    ax.set_ylabel("Share still a customer")
    ax.set_ylim(0, 1.02)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [measures.level_word(by, t) for t in labels],
              title=by if by == "cohort" else measures.humanise(by), frameon=False,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if at_risk:
        add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"])
        # lifelines writes the group values (0.0 / 1.0) into the at-risk tick labels
        for table in ax.figure.axes[1:]:
            labels = ["\n".join(_at_risk_line(line, km_result) for line in
                                t.get_text().split("\n")) for t in table.get_xticklabels()]
            table.set_xticks(table.get_xticks(), labels)
    return ax


def _at_risk_line(line: str, km_result: KMResult) -> str:
    """'0.0   30' -> 'no   30': a group value at the start of an at-risk row, in words.

    Examples
    --------
    >>> _at_risk_line("   1.0   30", KMResult(by="Partner", fitters={"1.0": None}))
    '   yes   30'
    """
    body = line.lstrip()
    indent = line[:len(line) - len(body)]
    for group in sorted(km_result.fitters, key=len, reverse=True):
        rest = body[len(group):]
        if body.startswith(group) and (not rest or rest[0].isspace()):
            word = measures.level_word(km_result.by, group)
            # keep the columns of counts aligned under each other
            return indent[:max(0, len(indent) + len(group) - len(word))] + word + rest
    return line


# ------------------------------------------------------------------ model comparison


def _long_comparison(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows model, estimate, lower, upper from a long, wide or differences table."""
    if "metric" in df.columns and "model" not in df.columns:
        df = df.assign(model=DIFFERENCE)
    if "metric" in df.columns:
        part = df[df["metric"] == metric]
        value = "estimate" if "estimate" in part else "value"
        return pd.DataFrame({"model": part["model"].to_numpy(),
                             "estimate": part[value].to_numpy(float),
                             "lower": part.get("lower", part[value]).to_numpy(float),
                             "upper": part.get("upper", part[value]).to_numpy(float)})
    wide = df.reset_index() if "model" not in df.columns else df
    if metric not in wide.columns:
        return pd.DataFrame(columns=["model", "estimate", "lower", "upper"])
    return pd.DataFrame({"model": wide["model"].to_numpy(),
                         "estimate": wide[metric].to_numpy(float),
                         "lower": wide.get(f"{metric}_lower", wide[metric]).to_numpy(float),
                         "upper": wide.get(f"{metric}_upper", wide[metric]).to_numpy(float)})


def plot_model_comparison(comparison_df: pd.DataFrame, ax=None, metric: str = "concordance",
                          title: str | None = None, contact_kind: str = "outbound"):
    """How well each model predicts who leaves: one point and interval per model.

    Parameters
    ----------
    comparison_df : DataFrame
        Either wide (a ``model`` column or index, then ``<metric>``, optional
        ``<metric>_lower``, ``<metric>_upper``: e.g. ``HeadToHead.summary``), long
        (``model``, ``metric``, ``estimate``, ``lower``, ``upper``) or a table of
        differences without a ``model`` column (``HeadToHead.differences``: contact
        minus price, drawn against a line at 0 - right of it favours contact). Models
        named ``controls``, ``price``, ``contact``, ``both`` get plain names; the price
        and contact models are coloured apart.
    metric : str
        ``concordance``, ``cv_partial_likelihood``, ``aic`` or another column.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> cmp = pd.DataFrame({"model": ["price", "contact"], "concordance": [0.58, 0.66],
    ...     "concordance_lower": [0.55, 0.63], "concordance_upper": [0.61, 0.69]})
    >>> [t.get_text() for t in plot_model_comparison(cmp).get_yticklabels()]
    ['Price', 'Supplier contact']
    """
    ax = new_axes(ax, size=(6.0, 1.65))
    ax.set_title(title if title is not None else "Which explanation predicts departures better")
    table = (_long_comparison(comparison_df, metric) if comparison_df is not None
             else pd.DataFrame())
    if table.empty:
        return empty_axes(ax, f"No {metric.replace('_', ' ')} to compare")
    y = np.arange(len(table))[::-1]
    for yi, row in zip(y, table.itertuples(index=False), strict=True):
        colour = colour_of("contact" if row.model == DIFFERENCE else row.model)
        ax.errorbar([row.estimate], [yi], xerr=[[row.estimate - row.lower],
                    [row.upper - row.estimate]], fmt="o", color=colour, capsize=4)
    xlabel = METRIC_NAMES.get(metric, metric.replace("_", " "))
    if (table["model"] == DIFFERENCE).all():
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        short = metric.replace("cv_loglik", "held-out log-likelihood").replace("_", " ")
        xlabel = (f"Difference in {short}\n"
                  "(right of 0 favours contact, left of 0 favours price)")
    elif metric == "concordance":
        ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    names = plain_names(MODEL_NAMES, contact_kind)
    ax.set_yticks(y, [names.get(m, str(m)) for m in table["model"]])
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlabel(xlabel)
    sns.despine(ax=ax, left=True)
    return ax


def plot_loyalty(result: LoyaltyPenalty, ax=None):
    """Bar chart of the mean and median % above the new-customer price by tenure band.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> snaps = pd.DataFrame({"customer_id": ["a", "b"], "tenure": [0.0, 30.0],
    ...                       "pct_above": [0.0, 30.0]})
    >>> plot_loyalty(LoyaltyPenalty().fit(snaps)).get_ylabel()
    '% above the new-customer price'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.4, 1.9))
    s = result.summary
    x = np.arange(len(s))
    ax.bar(x - 0.2, s["mean_pct_above"], width=0.4, label="mean")
    ax.bar(x + 0.2, s["median_pct_above"], width=0.4, label="median")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, s.index, rotation=0)
    ax.set_xlabel("tenure")
    ax.set_ylabel("% above the new-customer price")
    ax.legend(frameon=False)
    return ax


def plot_departure_rates(table: pd.DataFrame, ax=None):
    """Departure rate per 100 customer-years with its limits, one point per segment.

    ``table`` is a ``summary`` of :class:`SatisfactionAnalysis` or :class:`SegmentAnalysis`,
    or the same read back from results.json (a ``segment`` column instead of the index).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> t = pd.DataFrame({"rate": [5.0, 8.0], "lower": [3.0, 6.0], "upper": [7.0, 11.0]},
    ...                  index=pd.Index(["a", "b"], name="segment"))
    >>> plot_departure_rates(t).get_xlabel()
    'departures per 100 customer-years'
    """
    import matplotlib.pyplot as plt

    if "segment" in getattr(table, "columns", []):
        table = table.set_index("segment")  # records read back from results.json
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 0.6 + 0.3 * len(table)))
    y = np.arange(len(table))
    err = [table["rate"] - table["lower"], table["upper"] - table["rate"]]
    ax.errorbar(table["rate"], y, xerr=err, fmt="o", capsize=3)
    ax.set_yticks(y, [str(i) for i in table.index])
    ax.set_xlabel("departures per 100 customer-years")
    return ax


def plot_cumulative_incidence(result: CumulativeIncidence, ax=None):
    """Step curves of cumulative incidence, one per reason group.

    ``result`` is a fitted :class:`CumulativeIncidence` or its :meth:`~CumulativeIncidence.to_dict`
    (e.g. ``results["reasons"]["cumulative_incidence"]`` read back from results.json;
    its monthly curve is drawn).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ci = CumulativeIncidence().fit([1, 2, 3], ["price", "other", None])
    >>> plot_cumulative_incidence(ci).get_ylabel()
    'share who left (cumulative incidence)'
    >>> len(plot_cumulative_incidence(ci.to_dict()).get_lines())
    2
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.4, 1.9))
    if isinstance(result, dict):
        cif = pd.DataFrame(result["curve"]).set_index("time")
    else:
        cif = result.cumulative_incidence_
    for group in cif.columns:
        ax.step(cif.index, cif[group], where="post", label=group)
    ax.set_xlabel("tenure (months)")
    ax.set_ylabel("share who left (cumulative incidence)")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, title="stated reason")
    return ax
