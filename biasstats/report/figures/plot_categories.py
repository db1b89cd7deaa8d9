"""One panel per response category (ordinal / categorical outcomes)."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from biasstats.report.figures.kit import (
    figure_height,
    legend_above,
    level_axis,
    require_columns,
)
from biasstats.report.style import DOUBLE_COLUMN, OKABE_ITO, new_figure, paper_style
from biasstats.report.tables import as_frame, hdi_label

__all__ = ["category_panels"]


def category_panels(
    df,
    term: str,
    *,
    xlabel: str,
    point: str = "mean",
    low: str = "hdi_low",
    high: str = "hdi_high",
    observed: str | None = None,
    width: float = DOUBLE_COLUMN,
) -> Figure:
    """One panel per response category (ordinal / categorical outcomes), the levels of
    ``term`` as rows (in the table's order, shared by the panels): ``point`` with its interval
    (``low``, ``high``) per level — a probability with its HDI, or, with ``observed`` (a
    predictive check's table), the replicated share's interval and mean with the observed
    share as a dot (vermillion when outside the interval).

    ``df`` has ``term`` (or ``group_term``), ``level``, ``category`` and those columns."""
    d = as_frame(df)
    tcol = "group_term" if "group_term" in d.columns else "term"
    require_columns(d, [tcol, "level", "category", point, low, high], "category panels")
    d = d.filter(pl.col(tcol) == term)
    if d.height == 0:
        raise ValueError(f"no rows for term {term!r}")
    cats = list(dict.fromkeys(str(c) for c in d["category"].to_list()))
    levels = list(dict.fromkeys(str(v) for v in d["level"].to_list()))
    y = np.arange(len(levels), dtype=float)[::-1]  # the first level at the top
    pos = dict(zip(levels, y, strict=True))
    ncol = len(cats)
    with paper_style():
        fig = new_figure(width, figure_height(len(levels), per=0.18))
        axes = fig.subplots(1, ncol, sharey=True, squeeze=False)[0]
        for ax, cat in zip(axes, cats, strict=True):
            c = d.filter(pl.col("category") == cat)
            yy = np.array([pos[str(v)] for v in c["level"].to_list()])
            ax.hlines(yy, c[low].to_numpy(), c[high].to_numpy(), color=OKABE_ITO["blue"],
                      lw=2.0, alpha=0.6 if observed else 1.0, zorder=2)
            if observed is None:
                ax.scatter(c[point].to_numpy(), yy, s=14, color=OKABE_ITO["blue"], zorder=3)
            else:
                ax.scatter(c[point].to_numpy(), yy, marker="|", s=30, color=OKABE_ITO["blue"],
                           lw=1.0, zorder=3)
                obs = c[observed].to_numpy()
                out = (obs < c[low].to_numpy()) | (obs > c[high].to_numpy())
                ax.scatter(obs[~out], yy[~out], s=12, color="black", zorder=4)
                ax.scatter(obs[out], yy[out], s=18, color=OKABE_ITO["vermillion"],
                           edgecolors="black", linewidths=0.5, zorder=5)
            ax.set_title(cat, fontsize=7)
            ax.set_xlim(-0.02, min(1.02, max(float(c[high].max()) * 1.1, 0.1)))
            ax.tick_params(axis="x", labelsize=6)
        level_axis(axes[0], y, levels)
        fig.supxlabel(xlabel, fontsize=7)
        handles = ([Line2D([], [], color=OKABE_ITO["blue"], marker="o", lw=2,
                           label=f"posterior mean, {hdi_label(d)}")] if observed is None else
                   [Line2D([], [], color=OKABE_ITO["blue"], lw=2, alpha=0.6,
                           label="replicated interval"),
                    Line2D([], [], color="black", marker="o", lw=0, markersize=3.5,
                           label="observed"),
                    Line2D([], [], color=OKABE_ITO["vermillion"], marker="o", lw=0,
                           markeredgecolor="black", markersize=4,
                           label="observed, outside interval")])
        legend_above(fig, handles)
    return fig
