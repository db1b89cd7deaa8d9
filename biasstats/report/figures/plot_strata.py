"""Small multiples of a within-strata estimand: one panel per stratum."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from biasstats.report.figures.kit import (
    figure_height,
    legend_above,
    level_axis,
    reference_line,
    require_columns,
)
from biasstats.report.style import DOUBLE_COLUMN, OKABE_ITO, new_figure, paper_style
from biasstats.report.tables import as_frame, hdi_label

__all__ = ["MAX_COLUMNS", "strata_panels"]

MAX_COLUMNS = 3  # panels per row of a double-column figure


def strata_panels(df, *, xlabel: str, ref: float | None = None, log: bool = False,
                  width: float = DOUBLE_COLUMN, columns: int = MAX_COLUMNS) -> Figure:
    """One panel per ``stratum`` (in the table's order; an ``average (...)`` stratum, if any,
    last and in a second colour), the levels as rows shared by the panels, posterior mean and
    HDI per level on one x axis for all panels (with a dashed line at ``ref``, the scale's "no
    effect"; a log axis with ``log``). Panels wrap after ``columns`` per row, so a figure
    stays at a journal's double-column width however many strata it has.

    ``df`` has ``stratum``, ``level``, ``mean``, ``hdi_low`` and ``hdi_high``."""
    d = as_frame(df)
    require_columns(d, ["stratum", "level", "mean", "hdi_low", "hdi_high"], "strata panels")
    if d.height == 0:
        raise ValueError("no rows to draw")
    strata = list(dict.fromkeys(str(s) for s in d["stratum"].to_list()))
    strata = [s for s in strata if not s.startswith("average (")] + [
        s for s in strata if s.startswith("average (")]
    levels = list(dict.fromkeys(str(v) for v in d["level"].to_list()))
    y = np.arange(len(levels), dtype=float)[::-1]  # the first level at the top
    pos = dict(zip(levels, y, strict=True))
    ncol = min(columns, len(strata))
    nrow = math.ceil(len(strata) / ncol)
    lo_all = float(d["hdi_low"].min())
    hi_all = float(d["hdi_high"].max())
    if ref is not None:
        lo_all, hi_all = min(lo_all, ref), max(hi_all, ref)
    if log:
        pad = (hi_all / lo_all) ** 0.05
        xlim = (lo_all / pad, hi_all * pad)
    else:
        pad = 0.05 * (hi_all - lo_all or abs(hi_all) or 1.0)
        xlim = (lo_all - pad, hi_all + pad)
    with paper_style():
        per_row = figure_height(len(levels), per=0.16, base=0.55, minimum=1.0)
        fig = new_figure(width, 0.3 + per_row * nrow)
        axes = fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= len(strata):
                ax.set_visible(False)
                continue
            sn = strata[k]
            colour = OKABE_ITO["vermillion"] if sn.startswith("average (") else \
                OKABE_ITO["blue"]
            c = d.filter(pl.col("stratum") == sn)
            yy = np.array([pos[str(v)] for v in c["level"].to_list()])
            if ref is not None:
                reference_line(ax, ref)
            ax.hlines(yy, c["hdi_low"].to_numpy(), c["hdi_high"].to_numpy(), color=colour,
                      lw=1.6, zorder=2)
            ax.scatter(c["mean"].to_numpy(), yy, s=12, color=colour, zorder=3)
            ax.set_title(sn, fontsize=7)
            if log:
                ax.set_xscale("log")
            ax.set_xlim(*xlim)
            ax.tick_params(axis="x", labelsize=6)
            if k % ncol == 0:
                level_axis(ax, y, levels)
            else:
                ax.tick_params(axis="y", length=0)
                ax.spines["left"].set_visible(False)
        fig.supxlabel(xlabel, fontsize=7)
        legend_above(fig, [Line2D([], [], color=OKABE_ITO["blue"], marker="o", lw=1.6,
                                  markersize=3.5, label=f"posterior mean, {hdi_label(d)}")])
    return fig
