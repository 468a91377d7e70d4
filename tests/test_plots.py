"""Figures: the right marks in the right places, and no failure on thin input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from retention_study.analysis.descriptives import rates_by_band  # noqa: E402
from retention_study.analysis.km import KMResult, km_by_group  # noqa: E402
from retention_study.data.schema import StudyData  # noqa: E402
from retention_study.present.forest import plot_forest  # noqa: E402
from retention_study.present.plots import plot_km, plot_model_comparison, plot_rates  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _error_extents(ax) -> list[tuple[float, float]]:
    """(low, high) of every error bar drawn on ``ax``, in drawing order."""
    out = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for collection in container.lines[2]:
                for seg in collection.get_segments():
                    out.append(seg)
    return out


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


# ---------------------------------------------------------------------------- rates

RATES = pd.DataFrame({"band": ["0-3 months", "3-6 months", "6-12 months"],
                      "customer_years": [10.0, 4.0, 0.0], "departures": [2, 1, 0],
                      "rate_per_100": [20.0, 25.0, np.nan], "lower": [2.4, 0.6, np.nan],
                      "upper": [72.2, 139.3, np.nan]})


def test_plot_rates_one_bar_per_band_and_ci_from_the_table():
    ax = plot_rates(RATES, title="By contact")
    assert len(ax.patches) == 3
    assert [p.get_height() for p in ax.patches] == [20.0, 25.0, 0.0]
    segs = _error_extents(ax)
    assert len(segs) == 2  # no interval for the band without customer time
    np.testing.assert_allclose(sorted(seg[:, 1].tolist() for seg in segs),
                               [[0.6, 139.3], [2.4, 72.2]])
    assert "no customers" in _texts(ax)
    assert ax.get_ylabel() == "Departures per 100 customer-years"


def test_plot_rates_on_given_axes_and_from_rates_by_band():
    ep = pd.DataFrame({"start": [0.0], "stop": [12.0], "event": [1], "x": [1.0]})
    fig, ax = plt.subplots()
    out = plot_rates(rates_by_band(ep, "x", [0, 5], ["only"]), ax=ax)
    assert out is ax and len(ax.patches) == 1


def test_plot_rates_empty():
    ax = plot_rates(RATES.iloc[:0])
    assert len(ax.patches) == 0 and _texts(ax) == ["No customer time to show"]


# ----------------------------------------------------------------------- survival


def _km_data(plans: list[str]) -> StudyData:
    n = len(plans)
    start = pd.Timestamp("2022-01-01")
    months = np.arange(1, n + 1) * 61  # distinct exits, about 2 months apart
    customers = pd.DataFrame({
        "customer_id": [str(i) for i in range(n)], "plan": plans,
        "start_date": [start] * n,
        "end_date": [start + pd.Timedelta(days=int(d)) for d in months],
        "notice_date": pd.NaT, "churned": [i % 2 for i in range(n)], "exit_reason": np.nan})
    return StudyData(format="events", as_of=pd.Timestamp("2026-01-01"), customers=customers)


def test_plot_km_one_curve_per_group_with_ci_and_at_risk_row():
    km = km_by_group(_km_data(["a", "b"] * 4), "plan")
    ax = plot_km(km)
    assert len(ax.get_lines()) == 2
    assert len(ax.collections) == 2  # one confidence band per curve
    assert len(ax.figure.axes) == 2  # the at-risk table is its own axes under the plot
    table = ax.figure.axes[1]
    labels = [t.get_text() for t in table.get_xticklabels()]
    assert labels[0].split() == ["At", "risk", "a", "4", "b", "4"]
    # the printed counts agree with KMResult.at_risk (counted without lifelines)
    printed = np.array([[int(v) for v in lab.split() if v.isdigit()] for lab in labels]).T
    expected = km.at_risk(table.get_xticks()).to_numpy()
    np.testing.assert_array_equal(printed, expected)
    assert ax.get_xlabel() == "Months as a customer"


def test_plot_km_single_group_without_at_risk():
    km = km_by_group(_km_data(["a"] * 3), "plan")
    ax = plot_km(km, at_risk=False)
    assert len(ax.get_lines()) == 1 and len(ax.figure.axes) == 1


def test_plot_km_empty():
    ax = plot_km(KMResult(by="plan"))
    assert len(ax.get_lines()) == 0 and _texts(ax) == ["No customers to show"]


# ------------------------------------------------------------------------- forest

EFFECTS = pd.DataFrame({
    "block": ["contact", "price", "service"],
    "label": ["Months since last contact", "Price gap", "Inbound calls"],
    "unit": ["6 months without outbound contact", "+10% above the new-customer price",
             "+1 SD of inbound_12m (1.2 units)"],
    "hr": [1.5, 0.9, np.nan], "lower": [1.2, 0.7, np.nan], "upper": [1.875, 1.1, np.nan],
    "p": [0.001, 0.4, np.nan]})


def test_plot_forest_points_intervals_reference_line():
    ax = plot_forest(EFFECTS)
    assert ax.get_xscale() == "log"
    points = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert sorted(float(p.get_xdata()[0]) for p in points) == [0.9, 1.5]
    segs = sorted(seg[:, 0].tolist() for seg in _error_extents(ax))
    np.testing.assert_allclose(segs, [[0.7, 1.1], [1.2, 1.875]])
    refs = [line for line in ax.get_lines() if list(line.get_xdata()) == [1.0, 1.0]]
    assert len(refs) == 1
    texts = _texts(ax)
    assert "+50% (+20% to +88%)" in texts and "not estimable" in texts
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[0].endswith("(per 6 months without outbound contact)")
    lo, hi = ax.get_xlim()
    assert lo < 0.7 and hi > 1.875


def test_plot_forest_single_row_and_empty():
    ax = plot_forest(EFFECTS.iloc[:1].drop(columns="block"))
    assert len(ax.get_yticks()) == 1
    ax = plot_forest(EFFECTS.iloc[:0])
    assert _texts(ax) == ["No effects to show"]


# --------------------------------------------------------------- model comparison


def test_plot_model_comparison_wide_and_long_agree():
    wide = pd.DataFrame({"model": ["price", "contact"], "concordance": [0.58, 0.66],
                         "concordance_lower": [0.55, 0.63], "concordance_upper": [0.61, 0.7]})
    long = pd.DataFrame({"model": ["price", "contact", "price"],
                         "metric": ["concordance", "concordance", "aic"],
                         "estimate": [0.58, 0.66, 100.0], "lower": [0.55, 0.63, 100.0],
                         "upper": [0.61, 0.7, 100.0]})
    for table in (wide, long, wide.set_index("model")):
        ax = plot_model_comparison(table)
        assert [t.get_text() for t in ax.get_yticklabels()] == ["Price", "Supplier contact"]
        segs = sorted(seg[:, 0].tolist() for seg in _error_extents(ax))
        np.testing.assert_allclose(segs, [[0.55, 0.61], [0.63, 0.7]])


def test_plot_model_comparison_single_missing_and_empty():
    one = pd.DataFrame({"model": ["both"], "cv_partial_likelihood": [-1.2]})
    ax = plot_model_comparison(one, metric="cv_partial_likelihood")
    assert len(_error_extents(ax)) == 1
    ax = plot_model_comparison(one, metric="concordance")
    assert _texts(ax) == ["No concordance to compare"]
    ax = plot_model_comparison(pd.DataFrame())
    assert len(ax.get_lines()) == 0


# ---------------------------------------------------------------- loyalty penalty


def test_plot_km_at_risk_row_with_late_entry():
    obs = pd.Timestamp("2022-01-01")
    entry_days = pd.to_timedelta([0, 0, 30, 90, 135], unit="D")
    exit_days = pd.to_timedelta([60, 120, 150, 180, 270], unit="D")
    customers = pd.DataFrame({
        "customer_id": list("abcde"), "plan": "basic",
        "start_date": obs - entry_days,
        "end_date": obs - entry_days + exit_days,
        "notice_date": pd.NaT, "churned": [1, 0, 1, 1, 1], "exit_reason": np.nan})
    data = StudyData(format="events", as_of=pd.Timestamp("2023-01-01"), customers=customers,
                     observation_start=obs)
    km = km_by_group(data, "plan")
    table = plot_km(km).figure.axes[1]
    printed = [[int(v) for v in t.get_text().split() if v.isdigit()][0]
               for t in table.get_xticklabels()]
    assert printed[0] == 2  # only a and b are followed from month 0; c, d, e enter later
    assert printed == km.at_risk(table.get_xticks()).iloc[0].tolist()


def test_plot_model_comparison_differences_table_of_head_to_head():
    diff = pd.DataFrame({"metric": ["cv_loglik", "concordance"], "estimate": [12.0, 0.04],
                         "lower": [3.0, 0.01], "upper": [20.0, 0.07]})
    ax = plot_model_comparison(diff)
    segs = [seg[:, 0].tolist() for seg in _error_extents(ax)]
    np.testing.assert_allclose(segs, [[0.01, 0.07]])
    refs = [line for line in ax.get_lines() if list(line.get_xdata()) == [0.0, 0.0]]
    assert len(refs) == 1  # no-difference line
    assert "favours contact" in ax.get_xlabel()
    ax = plot_model_comparison(diff, metric="cv_loglik")
    np.testing.assert_allclose([seg[:, 0].tolist() for seg in _error_extents(ax)], [[3, 20]])


def test_forest_labels_of_snapshot_columns_stay_short():
    # a table's definitions are sentences: the axis shows the column in words, never the
    # code name TechSupport[Yes] (issue 15, point 2)
    eff = pd.DataFrame({"block": ["contact"], "covariate": ["TechSupport[Yes]"],
                        "label": ["1 if TechSupport is 'Yes', else 0 (reference: 'No') "
                                  "(contact: contact by the supplier, measured once)"],
                        "unit": ["TechSupport[Yes] yes vs no"], "hr": [0.69],
                        "lower": [0.53], "upper": [0.9]})
    ticks = [t.get_text() for t in plot_forest(eff).get_yticklabels()]
    assert ticks == ["tech support\n(yes against no)"]
    assert "[" not in ticks[0] and "TechSupport" not in ticks[0]


def test_inbound_contact_is_not_called_supplier_contact():
    eff = pd.DataFrame({"block": ["contact", "price"], "covariate": ["calls", "bill"],
                        "label": ["calls", "bill"], "unit": ["+1", "+1"], "hr": [1.5, 1.1],
                        "lower": [1.2, 0.9], "upper": [1.8, 1.3], "p": [0.01, 0.3]})
    ax = plot_forest(eff, contact_kind="inbound")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Customer-initiated contact" in labels and "Supplier contact" not in labels
    comp = pd.DataFrame({"model": ["price", "contact"], "concordance": [0.6, 0.7]})
    ax = plot_model_comparison(comp, contact_kind="inbound")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Price", "Customer-initiated contact"]


# ------------------------------------------------ print size (issue 15, point 3)


@pytest.mark.parametrize("draw", ["rates", "km", "forest", "comparison", "reasons"])
def test_figure_text_is_at_least_10_px_when_printed(draw):
    from retention_study.analysis.reasons import CumulativeIncidence
    from retention_study.present import style
    from retention_study.present.plots import plot_cumulative_incidence

    with plt.rc_context(style.REPORT_STYLE):
        if draw == "rates":
            ax = plot_rates(pd.DataFrame({"band": ["0-3 months", "3-6 months"],
                                          "rate_per_100": [5.0, 9.0], "lower": [3.0, 6.0],
                                          "upper": [8.0, 13.0], "departures": [9, 14]}),
                            title="t", xlabel="x")
        elif draw == "km":
            ax = plot_km(km_by_group(_km_data(["a", "b"] * 4), "plan"))
        elif draw == "forest":
            ax = plot_forest(EFFECTS.assign(covariate=["months_since_contact",
                                                       "loyalty_penalty", "inbound_12m"]))
        elif draw == "comparison":
            ax = plot_model_comparison(pd.DataFrame({"model": ["price", "contact"],
                                                     "concordance": [0.58, 0.66]}))
        else:
            ax = plot_cumulative_incidence(CumulativeIncidence().fit(
                [1, 2, 3, 4], ["price", "other", None, "price"]))
        assert style.smallest_text_px(ax.figure) >= style.MIN_TEXT_PX
    plt.close("all")


def test_smallest_text_px_counts_the_downscaling_of_wide_figures():
    from retention_study.present import style

    fig, ax = plt.subplots(figsize=(14.2, 3), dpi=96)  # twice the printable width
    ax.set_title("t", fontsize=10)
    # the saved (tight) image is narrower than the figure, but still wider than the page
    assert 10 * 96 / 72 / 2 < style.smallest_text_px(fig) < style.MIN_TEXT_PX
    plt.close(fig)
