"""The forest plot: each measure's hazard ratio with its interval, in plain words.

Takes ``ax=None`` (a new figure is made) and returns the Axes, like every figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from retention_study.episodes import measures
from retention_study.episodes.measures import BLOCK_NAMES
from retention_study.present.style import (
    MAX_WIDTH_IN,
    colour_of,
    empty_axes,
    new_axes,
    plain_names,
    wrap_label,
)

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
    return wrap_label(label, 40) + (f"\n({wrap_label(unit, 40)})" if unit else "")


def _log_ticks(ax, lo: float, hi: float) -> None:
    candidates = np.array([0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 10])
    ticks = candidates[(candidates >= lo) & (candidates <= hi)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


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
    ax = new_axes(ax, size=(MAX_WIDTH_IN - 0.5,
                           0.8 + 0.34 * (0 if effects_df is None else len(effects_df))))
    ax.set_title(title if title is not None else "What changes the chance of leaving")
    if effects_df is None or effects_df.empty:
        return empty_axes(ax, "No effects to show")
    eff = effects_df.reset_index(drop=True)
    y = np.arange(len(eff))[::-1]
    blocks = eff["block"].astype(str) if "block" in eff else pd.Series("", index=eff.index)
    finite = eff[["hr", "lower", "upper"]].apply(np.isfinite).all(axis=1) & (eff["lower"] > 0)
    for block, rows in eff[finite].groupby(blocks[finite], sort=False):
        hr = rows["hr"].to_numpy(float)
        err = [hr - rows["lower"].to_numpy(float), rows["upper"].to_numpy(float) - hr]
        ax.errorbar(hr, y[rows.index], xerr=err, fmt="o",
                    color=colour_of(block), capsize=4,
                    label=plain_names(BLOCK_NAMES, contact_kind).get(block, block) or None)
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
