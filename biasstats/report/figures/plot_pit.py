"""LOO-PIT calibration: the ECDF of the PIT values against uniformity."""

from __future__ import annotations

from matplotlib.figure import Figure

from biasstats.checks.ppc import pit_ecdf_band
from biasstats.report.style import GREY, OKABE_ITO, SINGLE_COLUMN, new_figure, paper_style

__all__ = ["pit_ecdf"]


def pit_ecdf(
    pit,
    *,
    prob: float = 0.95,
    width: float = SINGLE_COLUMN,
    title: str | None = None,
) -> Figure:
    """LOO-PIT calibration: ECDF of the PIT values minus the uniform CDF, with a simultaneous
    ``prob`` band (Säilynoja, Bürkner & Vehtari 2022;
    :func:`biasstats.checks.ppc.pit_ecdf_band`). A curve leaving the band means
    miscalibration: a ∩ shape = predictive intervals too wide, ∪ = too narrow (e.g.
    overdispersion the model does not have)."""

    x, ecdf, lo, hi = pit_ecdf_band(pit, prob)
    with paper_style():
        fig = new_figure(width, 2.0)
        ax = fig.add_subplot()
        ax.fill_between(x, lo - x, hi - x, color="#d9d9d9", lw=0, step="post",
                        label=f"{int(prob * 100)}% simultaneous band")
        ax.step(x, ecdf - x, where="post", color=OKABE_ITO["blue"], lw=1.1,
                label="LOO-PIT ECDF − uniform")
        ax.axhline(0, color=GREY, lw=0.6)
        ax.set_xlim(0, 1)
        ax.set_xlabel("PIT value")
        ax.set_ylabel("ECDF difference")
        ax.legend(frameon=False, loc="best", fontsize=6.5)
        if title:
            ax.set_title(title)
    return fig
