"""Published values against the reanalysis' posterior, one row per published number."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from biasstats.report.figures.kit import (
    figure_height,
    legend_above,
    level_axis,
    reference_line,
    require_columns,
)
from biasstats.report.style import (
    DOUBLE_COLUMN,
    OKABE_ITO,
    SINGLE_COLUMN,
    new_figure,
    paper_style,
)
from biasstats.report.tables import as_frame, hdi_label

__all__ = ["published_forest"]

WIDE_LABEL = 34  # row labels longer than this get a double-column figure


def published_forest(table, *, width: float | None = None) -> Figure:
    """A forest of the ``[[replication]]`` rows: the reanalysis' posterior mean and HDI (blue
    dot and line) and the published value (vermillion diamond) with its interval when one
    was published (a thin line just below). One panel per ``panel`` (rows of one unit share
    an axis: a difference in percentage points never shares one with a ratio), a dashed line
    at the panel's ``null`` (NaN: none), a log axis where ``log`` is true; the panel's
    ``title`` above it and its ``xlabel`` below, when the table has them.

    ``table`` has ``label``, ``panel``, ``null``, ``log``, ``mean``, ``hdi_low``,
    ``hdi_high``, ``published``, ``published_low`` and ``published_high``."""
    d = as_frame(table)
    require_columns(d, ["label", "panel", "null", "log", "mean", "hdi_low", "hdi_high",
                        "published", "published_low", "published_high"], "replication")
    if d.height == 0:
        raise ValueError("no published values to draw")
    panels = list(dict.fromkeys(d["panel"].to_list()))
    sizes = [d.filter(pl.col("panel") == p).height for p in panels]
    if width is None:
        width = DOUBLE_COLUMN if max(len(str(x)) for x in d["label"]) > WIDE_LABEL \
            else SINGLE_COLUMN
    blue, red = OKABE_ITO["blue"], OKABE_ITO["vermillion"]
    with paper_style():
        fig = new_figure(width, sum(figure_height(n, per=0.22, base=0.45, minimum=0.8)
                                    for n in sizes) + 0.35)
        axes = fig.subplots(len(panels), 1, squeeze=False,
                            height_ratios=[max(n, 1) + 1.5 for n in sizes])[:, 0]
        for ax, p in zip(axes, panels, strict=True):
            c = d.filter(pl.col("panel") == p)
            y = np.arange(c.height, dtype=float)[::-1]
            null = c["null"][0]
            if null is not None and np.isfinite(null):
                reference_line(ax, float(null))
            ax.hlines(y, c["hdi_low"].to_numpy(), c["hdi_high"].to_numpy(), color=blue,
                      lw=1.6, zorder=2)
            ax.scatter(c["mean"].to_numpy(), y, s=14, color=blue, zorder=3)
            has = ~c["published_low"].is_null().to_numpy()
            if has.any():
                ax.hlines(y[has] - 0.22, c["published_low"].to_numpy()[has],
                          c["published_high"].to_numpy()[has], color=red, lw=0.8, zorder=2)
            ax.scatter(c["published"].to_numpy(), y - 0.22 * has, s=20, marker="D",
                       facecolors="white", edgecolors=red, linewidths=1.0, zorder=4)
            level_axis(ax, y, [str(v) for v in c["label"].to_list()])
            if bool(c["log"][0]):
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(str(c["title"][0]) if "title" in c.columns else str(p), loc="left",
                         fontsize=7)
            ax.set_xlabel(str(c["xlabel"][0]) if "xlabel" in c.columns else "", fontsize=7)
        handles = [Line2D([], [], color=blue, marker="o", lw=1.6, markersize=3.5,
                          label=f"reanalysis: posterior mean, {hdi_label(d)}"),
                   Line2D([], [], color=red, marker="D", lw=0.8, markersize=3.5,
                          markerfacecolor="white", label="published (and its interval)")]
        legend_above(fig, handles, ncols=1)
    return fig
