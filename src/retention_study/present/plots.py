"""The report's figures, drawn for management: plain-words labels, intervals always shown.

Every function takes ``ax=None`` (a new figure is made) and returns the Axes, so the
notebook can place figures side by side. Colours come from seaborn's colour-blind-safe
palette. An empty input draws a labelled, empty Axes instead of failing, so a report on
thin data still renders.
"""

from __future__ import annotations

import logging
import textwrap

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from lifelines.plotting import add_at_risk_counts
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from retention_study.analysis.descriptives import KMResult
from retention_study.episodes import measures

log = logging.getLogger("retention_study")

PALETTE = "colorblind"
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


#: Plain names of the covariate blocks: the measure vocabulary's.
BLOCK_NAMES = measures.BLOCK_NAMES

#: Width (CSS px) a figure may take on an A4 page with the report's print margins; a
#: wider image is scaled down, and its text with it.
PRINT_WIDTH_PX = 680
#: Smallest text a printed figure may carry (CSS px at print size).
MIN_TEXT_PX = 10
#: Figure style of the report: 96 dpi, so 1 figure inch is 96 CSS px, and text no
#: smaller than 8 pt (10.7 px).
REPORT_STYLE = {"figure.dpi": 96, "savefig.dpi": 96, "font.size": 10,
                "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9,
                "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 9}
#: Widest figure (inches) that prints without being scaled down.
MAX_WIDTH_IN = PRINT_WIDTH_PX / 96


def use_report_style() -> None:
    """Set matplotlib's style for the report (print-size text), once, from the notebook."""
    plt.rcParams.update(REPORT_STYLE)


def smallest_text_px(fig) -> float:
    """The smallest visible text of ``fig`` in CSS px once printed (scaled to the page).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig, ax = plt.subplots(figsize=(4, 3), dpi=96)
    >>> _ = ax.set_title("t", fontsize=9)
    >>> round(smallest_text_px(fig), 1)
    12.0
    >>> plt.close(fig)
    """
    # the saved image is the tight box around every artist (plots.show), which labels
    # and annotations outside the axes can make wider than the figure
    fig.canvas.draw()
    width_px = fig.get_tightbbox(fig.canvas.get_renderer()).width * fig.dpi
    scale = min(1.0, PRINT_WIDTH_PX / width_px)
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=float("inf")) * fig.dpi / 72 * scale


def show(alt: str, ax=None) -> None:
    """Display the current figure (or ``ax``'s) as a PNG whose alt text is ``alt``.

    The report's readers who cannot see the figure get what it shows in words;
    nbconvert would otherwise write "No description has been provided".
    """
    import io

    from IPython.display import Image, display

    fig = ax.figure if ax is not None else plt.gcf()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"),
            metadata={"image/png": {"alt": alt}})

#: Palette positions: price and contact keep their colour in every figure.
_COLOUR_INDEX = {"contact": 0, "price": 1, "both": 2, "service": 4, "controls": 7}


def _colours(n: int) -> list:
    return sns.color_palette(PALETTE, max(n, 1))


def _colour(key: str):
    """The colour of a block or model, the same in every figure; grey when unknown."""
    palette = sns.color_palette(PALETTE, 10)
    return palette[_COLOUR_INDEX.get(key, 7)]


def _new_ax(ax, size=(5.2, 1.8)):
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def _empty(ax, message: str):
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            color="grey")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _wrap(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


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
    ax = _new_ax(ax)
    if title:
        ax.set_title(title)
    if rates_df is None or rates_df.empty:
        return _empty(ax, "No customer time to show")
    x = np.arange(len(rates_df))
    rate = rates_df["rate_per_100"].to_numpy(float)
    lower = rates_df["lower"].to_numpy(float)
    upper = rates_df["upper"].to_numpy(float)
    known = ~np.isnan(rate)
    ax.bar(x, np.where(known, rate, 0.0), color=_colour(block) if block else _colours(1)[0],
           width=0.65)
    ax.errorbar(x[known], rate[known], yerr=[rate[known] - lower[known],
                upper[known] - rate[known]], fmt="none", ecolor="black", capsize=4)
    for xi, ok, dep in zip(x, known, rates_df.get("departures", [None] * len(x)), strict=True):
        text = f"{int(dep)} left" if ok and dep is not None else "no customers"
        ax.annotate(text, (xi, 0), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8.5, color="white" if ok else "grey")
    ax.set_xticks(x, [_wrap(b, 14) for b in rates_df["band"].astype(str)])
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
    ax = _new_ax(ax, size=(5.4, 1.85))
    by = km_result.by
    ax.set_title(title if title is not None else f"Customers remaining, by {by}")
    fitters = list(km_result.fitters.values())
    if not fitters:
        return _empty(ax, "No customers to show")
    colours = _colours(10)
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


# ---------------------------------------------------------------------------- forest


def _change_text(hr: float, lower: float, upper: float) -> str:
    def pct(v):
        return f"{(v - 1) * 100:+.0f}%"
    return f"{pct(hr)} ({pct(lower)} to {pct(upper)})"


def _row_label(row: pd.Series) -> str:
    """Effect label over its business unit, from the measure vocabulary.

    Examples
    --------
    >>> _row_label(pd.Series({"covariate": "TechSupport[Yes]", "unit": "TechSupport[Yes] "
    ...     "yes vs no", "label": "1 if TechSupport is 'Yes', else 0 (reference: 'No') "
    ...     "(contact: contact by the supplier, measured once at the snapshot)"})).splitlines()
    ['tech support', '(yes against no)']
    >>> _row_label(pd.Series({"covariate": "months_since_contact", "unit": "x"})).splitlines()
    ['Time since our last contact', '(per 6 months without outbound contact)']
    """
    covariate = str(row.get("covariate", "") or "")
    # without a covariate name the caller's own label and unit are the words
    unit = measures.business_unit(row) if covariate else str(row.get("unit", "") or "")
    if unit[:1].isdigit() or unit[:1] == "+":
        unit = f"per {unit}"
    label = measures.label(covariate) if covariate else str(row.get("label", ""))
    return _wrap(label, 40) + (f"\n({_wrap(unit, 40)})" if unit else "")


def _log_ticks(ax, lo: float, hi: float) -> None:
    candidates = np.array([0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 10])
    ticks = candidates[(candidates >= lo) & (candidates <= hi)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _names(names: dict, contact_kind: str) -> dict:
    """Plain names, with 'contact' as the customer's own when the data's contact is inbound."""
    if contact_kind != "inbound":
        return names
    return {k: (v.replace("Supplier contact", "Customer-initiated contact")
                if isinstance(v, str) else v) for k, v in names.items()}


def plot_forest(effects_df: pd.DataFrame, ax=None, title: str | None = None,
                contact_kind: str = "outbound"):
    """Hazard ratios with confidence intervals on a log axis, 1 = no effect.

    Parameters
    ----------
    effects_df : DataFrame
        ``label``, ``unit`` (business unit, e.g. "6 months without outbound contact"),
        ``hr``, ``lower``, ``upper``; optional ``block`` colours the rows (price,
        contact, service). Rows without an estimate are listed as "not estimable".

    Returns
    -------
    matplotlib Axes
        One point with its interval per row; the change in the chance of leaving is
        written beside each row in percent.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> eff = pd.DataFrame({"label": ["Months since contact"], "block": ["contact"],
    ...     "unit": ["6 months without outbound contact"], "hr": [1.4], "lower": [1.2],
    ...     "upper": [1.6]})
    >>> ax = plot_forest(eff)
    >>> ax.get_xscale(), len(ax.get_yticks())
    ('log', 1)
    """
    ax = _new_ax(ax, size=(MAX_WIDTH_IN - 0.5,
                           0.8 + 0.34 * (0 if effects_df is None else len(effects_df))))
    ax.set_title(title if title is not None else "What changes the chance of leaving")
    if effects_df is None or effects_df.empty:
        return _empty(ax, "No effects to show")
    eff = effects_df.reset_index(drop=True)
    y = np.arange(len(eff))[::-1]
    blocks = eff["block"].astype(str) if "block" in eff else pd.Series("", index=eff.index)
    finite = eff[["hr", "lower", "upper"]].apply(np.isfinite).all(axis=1) & (eff["lower"] > 0)
    for block, rows in eff[finite].groupby(blocks[finite], sort=False):
        hr = rows["hr"].to_numpy(float)
        err = [hr - rows["lower"].to_numpy(float), rows["upper"].to_numpy(float) - hr]
        ax.errorbar(hr, y[rows.index], xerr=err, fmt="o",
                    color=_colour(block), capsize=4,
                    label=_names(BLOCK_NAMES, contact_kind).get(block, block) or None)
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    lo = min(float(eff.loc[finite, "lower"].min()) if finite.any() else 1.0, 1.0) / 1.2
    hi = max(float(eff.loc[finite, "upper"].max()) if finite.any() else 1.0, 1.0) * 1.2
    ax.set_xlim(lo, hi)
    _log_ticks(ax, lo, hi)
    for i, row in eff.iterrows():  # one text per effect row (a handful), not per customer
        text = (_change_text(row["hr"], row["lower"], row["upper"]) if finite[i]
                else "not estimable")
        ax.annotate(text, (1.01, y[i]), xycoords=("axes fraction", "data"), va="center",
                    fontsize=9)
    ax.set_yticks(y, [_row_label(row) for _, row in eff.iterrows()], fontsize=9)
    ax.set_ylim(-0.7, len(eff) - 0.3)
    ax.set_xlabel("Chance of leaving relative to no change (1 = no effect, log scale)")
    if len(ax.figure.axes) == 1:
        # row labels on the left and the % changes on the right stay inside the figure,
        # so the printed image is not wider than the page (and its text not shrunk)
        ax.figure.subplots_adjust(left=0.36, right=0.80)
    if blocks.nunique() > 1:
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.15),
                  ncol=blocks.nunique(), fontsize=9)
    sns.despine(ax=ax, left=True)
    return ax


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
    ax = _new_ax(ax, size=(6.0, 1.65))
    ax.set_title(title if title is not None else "Which explanation predicts departures better")
    table = (_long_comparison(comparison_df, metric) if comparison_df is not None
             else pd.DataFrame())
    if table.empty:
        return _empty(ax, f"No {metric.replace('_', ' ')} to compare")
    y = np.arange(len(table))[::-1]
    for yi, row in zip(y, table.itertuples(index=False), strict=True):
        colour = _colour("contact" if row.model == DIFFERENCE else row.model)
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
    names = _names(MODEL_NAMES, contact_kind)
    ax.set_yticks(y, [names.get(m, str(m)) for m in table["model"]])
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlabel(xlabel)
    sns.despine(ax=ax, left=True)
    return ax

