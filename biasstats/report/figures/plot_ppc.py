"""Grouped posterior predictive check: the observed statistic per level against the interval
(and, optionally, the draws) of its replicated values."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from biasstats.report.figures.kit import (
    figure_height,
    legend_above,
    level_axis,
    require_columns,
    right_column,
)
from biasstats.report.style import OKABE_ITO, SINGLE_COLUMN, new_figure, paper_style
from biasstats.report.tables import as_frame

__all__ = ["ppc_grouped"]


def _replicated_for(replicated, levels: list[str], ppc: pl.DataFrame, group_term: str):
    """Per-level 1-D arrays of replicated rates, from a mapping or a draws × levels array."""
    if replicated is None:
        return None
    if isinstance(replicated, Mapping):
        return [
            np.asarray(replicated[lv], dtype=float) if lv in replicated else None for lv in levels
        ]
    arr = np.asarray(replicated, dtype=float)
    if arr.ndim != 2:
        raise ValueError("replicated must be a mapping level → draws or a draws × levels array")
    all_levels = [str(v) for v in ppc["level"].to_list()]
    if arr.shape[1] == len(all_levels):
        idx = {lv: i for i, lv in enumerate(all_levels)}
    elif arr.shape[0] == len(all_levels):
        arr = arr.T
        idx = {lv: i for i, lv in enumerate(all_levels)}
    else:
        raise ValueError(
            f"replicated has shape {arr.shape}; expected draws × {len(all_levels)} levels "
            f"(the rows of the ppc table for {group_term!r})"
        )
    return [arr[:, idx[lv]] for lv in levels]


def _ppc_rows(ppc, group_term: str, replicated) -> tuple[pl.DataFrame, list | None]:
    """The rows of ``group_term`` ordered by observed value (largest at the top) and their
    replicated draws in the same order (None without ``replicated``)."""
    df = as_frame(ppc)
    require_columns(df, ["group_term", "level", "observed", "rep_low", "rep_high"], "ppc")
    df = df.filter(pl.col("group_term") == group_term)
    if df.height == 0:
        raise ValueError(f"no predictive-check rows for group_term {group_term!r}")
    levels_in_order = [str(v) for v in df["level"].to_list()]
    reps_all = _replicated_for(replicated, levels_in_order, df, group_term)
    order = np.argsort(df["observed"].to_numpy(), kind="stable")  # largest at top
    df = df[order.tolist()]
    reps = [reps_all[i] for i in order] if reps_all is not None else None
    return df, reps


def _replicated_violins(ax, y: np.ndarray, reps: list, handles: list) -> None:
    """The replicated draws of each level as a violin behind its interval."""
    data = [r if r is not None and r.size > 1 else np.array([np.nan, np.nan]) for r in reps]
    ok = [i for i, d in enumerate(data) if np.isfinite(d).sum() > 1]
    if not ok:
        return
    parts = ax.violinplot(
        [data[i][np.isfinite(data[i])] for i in ok],
        positions=y[ok],
        orientation="horizontal",
        widths=0.8,
        showextrema=False,
    )
    for body in parts["bodies"]:
        body.set_facecolor(OKABE_ITO["sky_blue"])
        body.set_alpha(0.35)
        body.set_linewidth(0)
    handles.append(Patch(color=OKABE_ITO["sky_blue"], alpha=0.35, label="replicated draws"))


def _replicated_intervals(ax, df: pl.DataFrame, y, lo, hi, handles: list) -> None:
    """Each level's replicated interval, and its replicated mean as a tick when given."""
    ax.hlines(y, lo, hi, color=OKABE_ITO["blue"], lw=2.2, alpha=0.6, zorder=2)
    handles.append(
        Line2D([], [], color=OKABE_ITO["blue"], lw=2.2, alpha=0.6, label="replicated interval")
    )
    if "rep_mean" not in df.columns:
        return
    ax.scatter(
        df["rep_mean"].to_numpy(), y, marker="|", s=30, color=OKABE_ITO["blue"], lw=1.0, zorder=3
    )
    handles.append(
        Line2D([], [], color=OKABE_ITO["blue"], marker="|", lw=0, markersize=6,
               label="replicated mean")
    )


def _observed_points(ax, obs, y, outside, handles: list) -> None:
    """The observed values: black dots, vermillion where outside the replicated interval."""
    ax.scatter(obs[~outside], y[~outside], s=14, color="black", zorder=4)
    handles.append(
        Line2D([], [], color="black", marker="o", lw=0, markersize=3.5, label="observed")
    )
    if not outside.any():
        return
    ax.scatter(
        obs[outside],
        y[outside],
        s=20,
        color=OKABE_ITO["vermillion"],
        edgecolors="black",
        linewidths=0.5,
        zorder=5,
    )
    handles.append(
        Line2D([], [], color=OKABE_ITO["vermillion"], marker="o", markeredgecolor="black", lw=0,
               markersize=4, label="observed, outside interval")
    )


def ppc_grouped(
    ppc,
    group_term: str,
    *,
    replicated=None,
    width: float = SINGLE_COLUMN,
    xlabel: str = "Observed rate",
    title: str | None = None,
) -> Figure:
    """Grouped posterior predictive check: observed rate vs replicated interval per level.

    ``replicated``: optional replicated rates, a mapping level → 1-D array of draws or a
    draws × levels array in the row order of ``ppc`` restricted to ``group_term``; drawn as
    a violin behind the interval. Observed values outside the interval are highlighted, and
    the Bayesian p-value is printed at the right.
    """
    df, reps = _ppc_rows(ppc, group_term, replicated)
    n = df.height
    y = np.arange(n, dtype=float)
    obs = df["observed"].to_numpy().astype(float)
    lo = df["rep_low"].to_numpy().astype(float)
    hi = df["rep_high"].to_numpy().astype(float)
    outside = (obs < lo) | (obs > hi)
    with paper_style():
        fig = new_figure(width, figure_height(n, per=0.18))
        ax = fig.add_subplot()
        handles: list = []
        if reps is not None:
            _replicated_violins(ax, y, reps, handles)
        _replicated_intervals(ax, df, y, lo, hi, handles)
        _observed_points(ax, obs, y, outside, handles)
        level_axis(ax, y, [str(v) for v in df["level"].to_list()])
        ax.set_xlabel(xlabel)
        if "p_value" in df.columns:
            right_column(ax, y, df["p_value"].to_list(), "$p_B$")
        if title:
            ax.set_title(title)
        legend_above(fig, handles, ncols=2)
    return fig
