"""The report's figure style: print width, smallest text, colours, and showing a figure.

Every figure of :mod:`.plots` and :mod:`.forest` is drawn in this style, so that it
prints on A4 without its text shrinking below :data:`MIN_TEXT_PX`.
"""

from __future__ import annotations

import textwrap

import matplotlib
import matplotlib.pyplot as plt
import seaborn as sns

PALETTE = "colorblind"

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


def colour_list(n: int) -> list:
    return sns.color_palette(PALETTE, max(n, 1))


def colour_of(key: str):
    """The colour of a block or model, the same in every figure; grey when unknown."""
    palette = sns.color_palette(PALETTE, 10)
    return palette[_COLOUR_INDEX.get(key, 7)]


def new_axes(ax, size=(5.2, 1.8)):
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def empty_axes(ax, message: str):
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            color="grey")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def wrap_label(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def plain_names(names: dict, contact_kind: str) -> dict:
    """Plain names, with 'contact' as the customer's own when the data's contact is inbound."""
    if contact_kind != "inbound":
        return names
    return {k: (v.replace("Supplier contact", "Customer-initiated contact")
                if isinstance(v, str) else v) for k, v in names.items()}
