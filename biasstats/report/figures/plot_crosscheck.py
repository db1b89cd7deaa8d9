"""A frequentist cross-check beside the posterior, per level."""

from __future__ import annotations

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
from biasstats.report.style import GREY, OKABE_ITO, SINGLE_COLUMN, new_figure, paper_style
from biasstats.report.tables import as_frame

__all__ = ["crosscheck"]

_COLUMNS = ("group_term", "level", "t_mean", "t_ci_low", "t_ci_high", "posterior_mean",
            "posterior_low", "posterior_high")


def _crosscheck_rows(cross, group_term: str) -> pl.DataFrame:
    """The rows of ``group_term``, sorted by posterior mean (largest at the top)."""
    df = as_frame(cross)
    require_columns(df, _COLUMNS, "cross-check")
    df = df.filter(pl.col("group_term") == group_term)
    if df.height == 0:
        raise ValueError(f"no cross-check rows for group_term {group_term!r}")
    return df.sort("posterior_mean")


def _handles() -> list[Line2D]:
    return [
        Line2D([], [], color=GREY, marker="o", markerfacecolor="white", markersize=3.5,
               label="t-test mean, 95% CI"),
        Line2D([], [], color=OKABE_ITO["blue"], marker="o", markersize=3.5,
               label="posterior mean, interval"),
    ]


def crosscheck(
    cross,
    group_term: str,
    *,
    width: float = SINGLE_COLUMN,
    xlabel: str = "Estimate",
    title: str | None = None,
) -> Figure:
    """Frequentist cross-check: the authors' t-test mean and CI beside the posterior, per level.

    Both estimates must be on the same scale (say which in ``xlabel``).
    """
    df = _crosscheck_rows(cross, group_term)
    n = df.height
    y = np.arange(n, dtype=float)
    with paper_style():
        fig = new_figure(width, figure_height(n, per=0.2))
        ax = fig.add_subplot()
        reference_line(ax, 0.0)
        ax.hlines(
            y + 0.17, df["t_ci_low"].to_numpy(), df["t_ci_high"].to_numpy(), color=GREY, lw=1.0
        )
        ax.scatter(df["t_mean"].to_numpy(), y + 0.17, s=14, facecolors="white", edgecolors=GREY,
                   linewidths=0.9, zorder=3)
        ax.hlines(y - 0.17, df["posterior_low"].to_numpy(), df["posterior_high"].to_numpy(),
                  color=OKABE_ITO["blue"], lw=1.0)
        ax.scatter(
            df["posterior_mean"].to_numpy(), y - 0.17, s=14, color=OKABE_ITO["blue"], zorder=3
        )
        level_axis(ax, y, [str(v) for v in df["level"].to_list()])
        ax.set_xlabel(xlabel)
        if title:
            ax.set_title(title)
        legend_above(fig, _handles(), ncols=2)
    return fig
