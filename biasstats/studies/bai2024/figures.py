"""Bai et al. (2024) figures: stereotypes grouped by their category (race, gender, ...)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from biasstats.report.figures.kit import (
    as_frame,
    draw_intervals,
    figure_height,
    legend_above,
    level_axis,
    reference_line,
    rope_band,
    scale_of,
    select_scale,
    verdict_handles,
    verdicts_of,
)
from biasstats.report.style import ROPE_COLOUR, SINGLE_COLUMN, new_figure, paper_style
from biasstats.report.tables import hdi_label

__all__ = ["category_forest"]


def category_forest(
    effects,
    category_of: Mapping[str, str],
    scale: str = "bias",
    *,
    term: str = "stereotype",
    width: float = SINGLE_COLUMN,
    title: str | None = None,
) -> Figure:
    """Forest plot of stereotypes grouped by category, each block headed by its category effect.

    Categories are sorted by their mean (from the "category" term if present), stereotypes by
    mean within their category. The category's own posterior is a black diamond.
    """
    eff = as_frame(effects)
    df = select_scale(eff, term, scale)
    label, ref, log = scale_of(scale)
    cats = eff.filter((pl.col("term") == "category") & (pl.col("scale") == scale))
    cat_rows = {str(r["level"]): r for r in cats.iter_rows(named=True)}
    members: dict[str, list[dict]] = {}
    for r in df.iter_rows(named=True):
        members.setdefault(str(category_of.get(str(r["level"]), "other")), []).append(r)

    def cat_key(cat: str) -> float:
        if cat in cat_rows:
            return float(cat_rows[cat]["mean"])
        return float(np.mean([m["mean"] for m in members[cat]]))

    order = sorted(members, key=lambda c: (-cat_key(c), c))
    # Lay rows out top to bottom, then flip to y coordinates.
    layout: list[tuple[str, dict | None, str]] = []  # (kind, row, label)
    for k, cat in enumerate(order):
        if k > 0:
            layout.append(("gap", None, ""))
        layout.append(("category", cat_rows.get(cat), cat))
        for m in sorted(members[cat], key=lambda m: (-m["mean"], str(m["level"]))):
            layout.append(("level", m, str(m["level"])))
    n = len(layout)
    ys = np.arange(n, dtype=float)[::-1]
    level_rows = [(y, r) for y, (kind, r, _) in zip(ys, layout, strict=True) if kind == "level"]
    lv = pl.DataFrame([r for _, r in level_rows])
    with paper_style():
        fig = new_figure(width, figure_height(n, per=0.14))
        ax = fig.add_subplot()
        y_lv = np.array([y for y, _ in level_rows])
        has_rope = rope_band(ax, lv, y_lv)
        reference_line(ax, ref)
        draw_intervals(ax, y_lv, lv["mean"], lv["hdi_low"], lv["hdi_high"], verdicts_of(lv))
        has_cat = False
        for y, (kind, r, _) in zip(ys, layout, strict=True):
            if kind == "category" and r is not None:
                has_cat = True
                ax.hlines(y, r["hdi_low"], r["hdi_high"], color="black", lw=1.4, zorder=2)
                ax.scatter([r["mean"]], [y], marker="D", s=22, color="black", zorder=3)
        tick_y = [y for y, (kind, _, _) in zip(ys, layout, strict=True) if kind != "gap"]
        tick_l = [lab for kind, _, lab in layout if kind != "gap"]
        level_axis(ax, tick_y, tick_l)
        kinds = [kind for kind, _, _ in layout if kind != "gap"]
        for t, kind in zip(ax.get_yticklabels(), kinds, strict=True):
            if kind == "category":
                t.set_fontweight("bold")
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        if title:
            ax.set_title(title)
        handles = verdict_handles(verdicts_of(lv))
        if has_cat:
            handles.insert(
                0, Line2D([], [], color="black", marker="D", markersize=4, lw=1.4, label="category")
            )
        if has_rope:
            handles.append(Patch(color=ROPE_COLOUR, label="ROPE"))
        legend_above(fig, handles, title=f"Posterior mean, {hdi_label(lv)}", ncols=3)
    return fig
