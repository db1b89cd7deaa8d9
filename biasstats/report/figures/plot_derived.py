"""Small multiples of one derived estimand: one panel per level of a factor, its strata as
rows (shared axis and row order), with the "no effect" line, ROPE band and verdicts."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from biasstats.report.figures.kit import (
    draw_intervals,
    figure_height,
    legend_above,
    level_axis,
    reference_line,
    require_columns,
    rope_band,
    verdict_handles,
    verdicts_of,
)
from biasstats.report.style import DOUBLE_COLUMN, ROPE_COLOUR, new_figure, paper_style
from biasstats.report.tables import as_frame, hdi_label

__all__ = ["derived_panels"]


def derived_panels(df, *, xlabel: str, null: float | None = None,
                   width: float = DOUBLE_COLUMN) -> Figure:
    """One panel per value of ``panel`` (in the table's order), the ``row`` values as rows
    (shared, in order of first appearance): posterior ``mean`` with its HDI (``hdi_low``,
    ``hdi_high``) per row, styled by ``verdict`` where there is one, a dashed line at ``null``
    and the ROPE (``rope_low``, ``rope_high``) as a grey band."""
    d = as_frame(df)
    require_columns(d, ["panel", "row", "mean", "hdi_low", "hdi_high"], "derived panels")
    if d.height == 0:
        raise ValueError("no rows")
    panels = list(dict.fromkeys(str(p) for p in d["panel"].to_list()))
    rows = list(dict.fromkeys(str(r) for r in d["row"].to_list()))
    y_of = dict(zip(rows, np.arange(len(rows), dtype=float)[::-1], strict=True))
    lo = float(d["hdi_low"].min())
    hi = float(d["hdi_high"].max())
    pad = 0.06 * (hi - lo or 1.0)
    verdicts = verdicts_of(d)
    with paper_style():
        fig = new_figure(width, figure_height(len(rows), per=0.2))
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        has_rope = False
        for ax, p in zip(axes, panels, strict=True):
            c = d.filter(pl.col("panel").cast(pl.Utf8) == p)
            y = np.array([y_of[str(r)] for r in c["row"].to_list()])
            has_rope = rope_band(ax, c, y) or has_rope
            if null is not None:
                reference_line(ax, null)
            draw_intervals(ax, y, c["mean"], c["hdi_low"], c["hdi_high"], verdicts_of(c))
            ax.set_title(p, fontsize=7)
            ax.set_xlim(min(lo, null if null is not None else lo) - pad,
                        max(hi, null if null is not None else hi) + pad)
            ax.tick_params(axis="x", labelsize=6)
        level_axis(axes[0], list(y_of.values()), rows)
        fig.supxlabel(xlabel, fontsize=7)
        handles = verdict_handles(verdicts)
        if has_rope:
            handles.append(Patch(color=ROPE_COLOUR, label="ROPE"))
        legend_above(fig, handles, title=f"Posterior mean, {hdi_label(d)}")
    return fig
