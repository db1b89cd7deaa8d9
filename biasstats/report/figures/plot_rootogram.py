"""Hanging rootogram of a count outcome."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from biasstats.report.figures.kit import legend_above, require_columns
from biasstats.report.style import (
    GREY,
    LIGHT_GREY,
    OKABE_ITO,
    SINGLE_COLUMN,
    new_figure,
    paper_style,
)
from biasstats.report.tables import as_frame

__all__ = ["rootogram"]


def rootogram(freq, *, xlabel: str = "Count", width: float = SINGLE_COLUMN) -> Figure:
    """Hanging rootogram (Kleiber & Zeileis 2016) of a count outcome.

    ``freq``: one row per count value or bin (``low``, ``high``, ``observed``, ``rep_mean``,
    ``rep_low``, ``rep_high``; :func:`biasstats.checks.ppc.count_frequencies`). On the
    square-root scale, each bar of height √observed hangs from the curve of the replicated
    mean √rep_mean, so its bottom sits at √rep_mean − √observed: bars that stop above the
    zero line mean fewer observations than the model expects, below it more. The replicated
    interval is drawn around the curve.

    (arviz-plots' ``plot_ppc_rootogram`` draws points per distinct count on a square-root
    axis, not hanging bars, and has no binning for counts in the hundreds.)"""
    d = as_frame(freq)
    require_columns(d, ["low", "high", "observed", "rep_mean", "rep_low", "rep_high"],
                    "rootogram")
    lo_b = d["low"].to_numpy().astype(float)
    w = (lo_b[1] - lo_b[0]) if len(lo_b) > 1 else 1.0
    x = lo_b + (w - 1) / 2  # the middle of each bin (the value itself when w = 1)
    expct = np.sqrt(d["rep_mean"].to_numpy())
    obs = np.sqrt(d["observed"].to_numpy())
    with paper_style():
        fig = new_figure(width, 2.2)
        ax = fig.add_subplot()
        ax.bar(x, obs, bottom=expct - obs, width=0.9 * w, color=LIGHT_GREY,
               edgecolor=GREY, linewidth=0.4, zorder=1)
        ax.fill_between(x, np.sqrt(d["rep_low"].to_numpy()), np.sqrt(d["rep_high"].to_numpy()),
                        color=OKABE_ITO["sky_blue"], alpha=0.35, lw=0, step="mid", zorder=2)
        ax.plot(x, expct, color=OKABE_ITO["blue"], lw=1.2, marker="o", markersize=2, zorder=3)
        ax.axhline(0.0, color="black", lw=0.6, zorder=4)
        ax.set_xlabel(xlabel + (f" (bins of {int(w)})" if w > 1 else ""))
        ax.set_ylabel("√frequency")
        legend_above(fig, [
            Patch(facecolor=LIGHT_GREY, edgecolor=GREY, label="observed (hanging)"),
            Line2D([], [], color=OKABE_ITO["blue"], marker="o", markersize=2,
                   label="replicated mean"),
            Patch(color=OKABE_ITO["sky_blue"], alpha=0.35, label="replicated 95% interval")],
            ncols=2)
    return fig
