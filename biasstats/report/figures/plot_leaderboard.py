"""A leaderboard of one estimand across analyses: forest-style, best first, with P(rank 1)
and, below a rule, the pooled effect and the interval a new analysis would fall in."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from biasstats.report.figures.kit import (
    draw_intervals,
    figure_height,
    legend_above,
    level_axis,
    p_text,
    reference_line,
    require_columns,
)
from biasstats.report.style import OKABE_ITO, SINGLE_COLUMN, new_figure, paper_style
from biasstats.report.tables import as_frame, hdi_label

__all__ = ["leaderboard"]


def leaderboard(table, *, xlabel: str, pooled=None, ref: float | None = None,
                title: str | None = None, width: float = SINGLE_COLUMN) -> Figure:
    """One row per analysis (``analysis``, ``mean``, ``hdi_low``, ``hdi_high``, ``p_best``),
    in the order given (best first, at the top), P(rank 1) at the right; ``pooled`` (a
    meta-analysis table: rows ``pooled effect (mu)`` and ``a new analysis (prediction)``
    with ``mean``, ``hdi_low``, ``hdi_high``) adds the pooled effect as a diamond and the
    prediction interval as a bar below a rule. ``ref``: a dashed line at "no effect"."""
    df = as_frame(table)
    require_columns(df, ["analysis", "mean", "hdi_low", "hdi_high"], "leaderboard")
    n = df.height
    extra = 0 if pooled is None else 2
    y = np.arange(n + extra, dtype=float)[::-1]  # best at the top
    ya, yp = y[:n], y[n:]
    with paper_style():
        fig = new_figure(width, figure_height(n + extra, per=0.17))
        ax = fig.add_subplot()
        if ref is not None:
            reference_line(ax, ref)
        draw_intervals(ax, ya, df["mean"], df["hdi_low"], df["hdi_high"], ["estimate"] * n)
        labels = [str(v) for v in df["analysis"].to_list()]
        handles = []
        if pooled is not None:
            p = as_frame(pooled)
            mu = p.filter(p["parameter"].str.starts_with("pooled")).row(0, named=True)
            new = p.filter(p["parameter"].str.starts_with("a new")).row(0, named=True)
            colour = OKABE_ITO["vermillion"]
            ax.hlines(yp[0], mu["hdi_low"], mu["hdi_high"], color=colour, lw=1.2, zorder=2)
            ax.scatter([mu["mean"]], [yp[0]], marker="D", s=22, color=colour, zorder=3)
            ax.hlines(yp[1], new["hdi_low"], new["hdi_high"], color=colour, lw=1.0,
                      ls=(0, (2, 1.5)), zorder=2)
            ax.axhline((ya[-1] + yp[0]) / 2, color="#999999", lw=0.5)
            labels += ["Pooled (μ)", "New analysis"]
            handles = [Line2D([], [], color=OKABE_ITO["blue"], marker="o", markersize=4,
                              lw=1.0, label="analysis"),
                       Line2D([], [], color=colour, marker="D", markersize=4, lw=1.2,
                              label="pooled"),
                       Line2D([], [], color=colour, lw=1.0, ls=(0, (2, 1.5)),
                              label="prediction")]
        level_axis(ax, y, labels)
        ax.set_xlabel(xlabel)
        if "p_best" in df.columns:  # P(rank 1) right of the axes, as kit.right_column
            style = {"transform": mpl.transforms.blended_transform_factory(
                ax.transAxes, ax.transData), "ha": "left", "fontsize": 6.5, "color": "#333333"}
            for yi, pb in zip(ya, df["p_best"].to_list(), strict=True):
                ax.text(1.02, yi, p_text(pb), va="center", **style)
            ax.text(1.02, ya.max() + 0.65, "P(rank 1)", va="bottom", **style)
        if title:
            ax.set_title(title)
        legend_above(fig, handles, title=f"Posterior mean, {hdi_label(df)}")
    return fig
