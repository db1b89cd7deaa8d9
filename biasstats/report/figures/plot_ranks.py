"""Posterior ranks of the levels of a factor, with P(rank 1)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from biasstats.report.figures.kit import figure_height, level_axis, require_columns, right_column
from biasstats.report.style import OKABE_ITO, SINGLE_COLUMN, new_figure, paper_style
from biasstats.report.tables import as_frame

__all__ = ["ranks"]


def ranks(
    ranks,
    *,
    width: float = SINGLE_COLUMN,
    xlabel: str = "Posterior rank (1 = highest)",
    title: str | None = None,
) -> Figure:
    """Posterior rank of each level (an LLM, any factor's level): mean and interval, with
    P(rank 1) at the right."""
    df = as_frame(ranks)
    if "llm" not in df.columns and "level" in df.columns:
        df = df.rename({"level": "llm"})  # the generic estimands' ranks: any factor
    require_columns(df, ["llm", "rank_mean", "rank_low", "rank_high"], "ranks")
    df = df.sort("rank_mean", descending=True)  # rank 1 at the top
    n = df.height
    y = np.arange(n, dtype=float)
    with paper_style():
        fig = new_figure(width, figure_height(n, per=0.17))
        ax = fig.add_subplot()
        ax.hlines(
            y,
            df["rank_low"].to_numpy(),
            df["rank_high"].to_numpy(),
            color=OKABE_ITO["blue"],
            lw=1.2,
            zorder=2,
        )
        ax.scatter(df["rank_mean"].to_numpy(), y, s=16, color=OKABE_ITO["blue"], zorder=3)
        level_axis(ax, y, [str(v) for v in df["llm"].to_list()])
        top = int(max(n, math.ceil(float(df["rank_high"].max()))))
        ax.set_xlim(0.5, top + 0.5)
        ax.set_xticks(range(1, top + 1))
        ax.set_xlabel(xlabel)
        if "p_best" in df.columns:
            right_column(ax, y, df["p_best"].to_list(), "P(rank 1)")
        if title:
            ax.set_title(title)
    return fig
