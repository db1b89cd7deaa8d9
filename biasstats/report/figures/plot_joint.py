"""A joint model's cells: each level's effect in one part against its effect in another, with
both posterior intervals (a cross per level), the two-step estimates (open circles, joined to
the level's posterior mean), the latent regression line and the two-step OLS line."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from biasstats.report.figures.kit import legend_above, require_columns
from biasstats.report.style import GREY, OKABE_ITO, SINGLE_COLUMN, new_figure, paper_style
from biasstats.report.tables import as_frame

__all__ = ["joint_cells"]


def joint_cells(cells, *, xlabel: str, ylabel: str, latent_slope: float | None = None,
                two_step_slope: float | None = None, prob: float = 0.95,
                width: float = SINGLE_COLUMN) -> Figure:
    """``cells``: level, x_mean, x_low, x_high, y_mean, y_low, y_high and (optional, null when
    absent) x_two_step, y_two_step — on each part's link scale, centred."""
    df = as_frame(cells)
    require_columns(df, ["level", "x_mean", "x_low", "x_high", "y_mean", "y_low", "y_high"],
                    "joint cells")
    blue, orange = OKABE_ITO["blue"], OKABE_ITO["vermillion"]
    xm, ym = df["x_mean"].to_numpy(), df["y_mean"].to_numpy()
    with paper_style():
        fig = new_figure(width, width * 0.95)
        ax = fig.add_subplot()
        ax.hlines(ym, df["x_low"].to_numpy(), df["x_high"].to_numpy(), color=blue, lw=0.6,
                  alpha=0.45, zorder=2)
        ax.vlines(xm, df["y_low"].to_numpy(), df["y_high"].to_numpy(), color=blue, lw=0.6,
                  alpha=0.45, zorder=2)
        ax.scatter(xm, ym, s=10, color=blue, zorder=4)
        handles = [Line2D([], [], color=blue, marker="o", ms=3.5, lw=0.6,
                          label=f"joint posterior ({prob:.0%} HDI)")]
        two = ("x_two_step" in df.columns and "y_two_step" in df.columns
               and df["x_two_step"].null_count() == 0 and df["y_two_step"].null_count() == 0)
        if two:
            xs, ys = df["x_two_step"].to_numpy(), df["y_two_step"].to_numpy()
            ax.plot(np.stack([xs, xm]), np.stack([ys, ym]), color=GREY, lw=0.4, alpha=0.6,
                    zorder=1)
            ax.scatter(xs, ys, s=10, facecolors="none", edgecolors=orange, lw=0.7, zorder=3)
            handles.append(Line2D([], [], color=orange, marker="o", mfc="none", ls="none",
                                  ms=3.5, label="two-step (each level's own estimate)"))
        lim = np.array(ax.get_xlim())
        if latent_slope is not None:
            ax.plot(lim, latent_slope * lim, color=blue, lw=1.0, zorder=5)
            handles.append(Line2D([], [], color=blue, lw=1.0,
                                  label=f"latent slope {latent_slope:.2f}"))
        if two and two_step_slope is not None:
            ax.plot(lim, two_step_slope * lim, color=orange, lw=1.0, ls="--", zorder=5)
            handles.append(Line2D([], [], color=orange, lw=1.0, ls="--",
                                  label=f"two-step slope {two_step_slope:.2f}"))
        ax.set_xlim(*lim)
        ax.axhline(0, color=GREY, lw=0.4, zorder=0)
        ax.axvline(0, color=GREY, lw=0.4, zorder=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        legend_above(fig, handles, ncols=2)
    return fig
