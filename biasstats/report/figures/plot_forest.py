"""Forest plot of one term: posterior mean and HDI per level."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from biasstats.report.figures.kit import (
    SCALES,
    draw_intervals,
    figure_height,
    legend_above,
    level_axis,
    reference_line,
    rope_band,
    scale_of,
    select_scale,
    study_scale,
    verdict_handles,
    verdicts_of,
)
from biasstats.report.style import ROPE_COLOUR, SINGLE_COLUMN, new_figure, paper_style
from biasstats.report.tables import hdi_label, select_effects

__all__ = ["forest"]


def forest(
    effects,
    term: str,
    scale: str,
    *,
    title: str | None = None,
    width: float = SINGLE_COLUMN,
    label: str | None = None,
    ref: float | None = None,
    log: bool = False,
) -> Figure:
    """Forest plot of one term: posterior mean and HDI per level, ROPE band, reference line.

    Levels are sorted by posterior mean (largest at the top); the verdict is shown by marker.
    A scale of :data:`~biasstats.report.figures.kit.SCALES` (or one a study registered)
    brings its axis label and reference value; any other scale (an outcome's own, e.g. "mean"
    in tokens) takes ``label`` and an optional ``ref``.
    """
    if label is None and (scale in SCALES or study_scale(scale) is not None):
        df = select_scale(effects, term, scale).sort("mean")
        label, ref, log = scale_of(scale)
    else:
        if label is None:
            raise ValueError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}, or give "
                             "the axis label of the outcome's own scale")
        df = select_effects(effects, term, scale).sort("mean")
    n = df.height
    y = np.arange(n, dtype=float)
    verdicts = verdicts_of(df)
    with paper_style():
        fig = new_figure(width, figure_height(n))
        ax = fig.add_subplot()
        has_rope = rope_band(ax, df, y)
        if ref is not None:
            reference_line(ax, ref)
        draw_intervals(ax, y, df["mean"], df["hdi_low"], df["hdi_high"], verdicts)
        level_axis(ax, y, [str(v) for v in df["level"].to_list()])
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        if title:
            ax.set_title(title)
        handles = verdict_handles(verdicts)
        if has_rope:
            handles.append(Patch(color=ROPE_COLOUR, label="ROPE"))
        legend_above(fig, handles, title=f"Posterior mean, {hdi_label(df)}")
    return fig
