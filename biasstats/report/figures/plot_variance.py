"""Variance decomposition: the share of variance of each component."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from biasstats.report.figures.kit import TERM_LABELS, figure_height, level_axis, require_columns
from biasstats.report.style import (
    CATEGORICAL,
    GREY,
    OKABE_ITO,
    SINGLE_COLUMN,
    new_figure,
    paper_style,
)
from biasstats.report.tables import as_frame

__all__ = ["variance_decomposition"]

_COMPONENT_COLOURS = {
    "llm": OKABE_ITO["blue"],
    "category": OKABE_ITO["vermillion"],
    "stereotype": OKABE_ITO["bluish_green"],
    "variant": OKABE_ITO["orange"],
    "residual": GREY,
}


def variance_decomposition(
    vd,
    *,
    width: float = SINGLE_COLUMN,
    xlabel: str = "Share of variance (%)",
    title: str | None = None,
) -> Figure:
    """Share of variance per component (posterior mean and interval), largest at the top.

    Shares are fractions (0–1) or percentages (0–100); both are shown as percentages.
    """
    df = as_frame(vd)
    require_columns(df, ["component", "share_mean", "share_low", "share_high"],
                    "variance decomposition")
    df = df.sort("share_mean")
    factor = 1.0 if float(df["share_high"].max()) > 1.0 + 1e-9 else 100.0
    n = df.height
    y = np.arange(n, dtype=float)
    comps = [str(c) for c in df["component"].to_list()]
    extra = iter(CATEGORICAL[4:])
    colours = [_COMPONENT_COLOURS.get(c) or next(extra, GREY) for c in comps]
    mean = df["share_mean"].to_numpy() * factor
    lo = df["share_low"].to_numpy() * factor
    hi = df["share_high"].to_numpy() * factor
    with paper_style():
        fig = new_figure(width, figure_height(n, per=0.2, base=0.7, minimum=1.2))
        ax = fig.add_subplot()
        ax.hlines(y, lo, hi, color=colours, lw=1.2, zorder=2)
        ax.scatter(mean, y, s=18, color=colours, zorder=3)
        for yi, m in zip(y, mean, strict=True):
            ax.annotate(
                f"{m:.0f}%",
                (m, yi),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=6.5,
                color="#333333",
            )
        level_axis(ax, y, [TERM_LABELS.get(c, c) for c in comps])
        ax.set_xlim(
            0,
            max(100.0, float(np.nanmax(hi)) * 1.02)
            if np.nanmax(hi) > 60
            else float(np.nanmax(hi)) * 1.15 + 1,
        )
        ax.set_xlabel(xlabel)
        if title:
            ax.set_title(title)
    return fig
