"""Assurance curves of a design analysis: the share of simulated studies whose interval
excludes zero (or reaches a ROPE decision), and the interval's width, against the design
size."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from biasstats.report.figures.kit import legend_above, reference_line, require_columns
from biasstats.report.style import CATEGORICAL, DOUBLE_COLUMN, new_figure, paper_style
from biasstats.report.tables import as_frame

__all__ = ["assurance"]

_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")


def _series(df: pl.DataFrame, factors: list[str]) -> list[tuple[str, pl.DataFrame]]:
    """One curve per combination of the other factors' sizes and contrast row, labelled by
    what differs between the curves (no label when there is one curve)."""
    keys = [*factors[1:], *(c for c in ("stratum", "level", "category") if c in df.columns)]
    keys = [k for k in keys if df[k].n_unique() > 1]
    if not keys:
        return [("", df.sort(factors[0]))]
    out = []
    for vals, part in df.group_by(keys, maintain_order=True):
        bits = [f"{k}={v}" if k in factors else str(v)
                for k, v in zip(keys, vals, strict=True)]
        out.append((" · ".join(bits), part.sort(factors[0])))
    return out


def assurance(
    table,
    *,
    factors: list[str],
    power_column: str = "p_excludes_zero",
    power_label: str = "P(interval excludes 0)",
    width_label: str = "Median interval width",
    power_target: float | None = None,
    width_target: float | None = None,
    width: float = DOUBLE_COLUMN,
    title: str | None = None,
) -> Figure:
    """Two panels against the first varied factor's size (log axis, a tick per size): the
    power column with ±2 Monte Carlo SE, and the median width with its interquartile band;
    one curve per size of the other factors and contrast row; dashed lines at the targets."""
    df = as_frame(table)
    require_columns(df, [*factors, power_column, f"{power_column}_mcse", "width_median",
                         "width_q25", "width_q75"], "design")
    x_name = factors[0]
    series = _series(df, factors)
    with paper_style():
        fig = new_figure(width, 2.3)
        ax_p, ax_w = fig.subplots(1, 2)
        handles = []
        for k, (lab, part) in enumerate(series):
            colour, marker = CATEGORICAL[k % len(CATEGORICAL)], _MARKERS[k % len(_MARKERS)]
            x = part[x_name].to_numpy().astype(float)
            p = part[power_column].to_numpy()
            se = part[f"{power_column}_mcse"].to_numpy()
            ax_p.fill_between(x, np.clip(p - 2 * se, 0, 1), np.clip(p + 2 * se, 0, 1),
                              color=colour, alpha=0.18, lw=0)
            ax_p.plot(x, p, color=colour, marker=marker, ms=3.5, lw=1.1)
            ax_w.fill_between(x, part["width_q25"].to_numpy(), part["width_q75"].to_numpy(),
                              color=colour, alpha=0.18, lw=0)
            ax_w.plot(x, part["width_median"].to_numpy(), color=colour, marker=marker, ms=3.5,
                      lw=1.1)
            if lab:
                handles.append(Line2D([], [], color=colour, marker=marker, ms=3.5, lw=1.1,
                                      label=lab))
        sizes = sorted({int(v) for v in df[x_name].to_list()})
        for ax in (ax_p, ax_w):
            if len(sizes) > 1 and sizes[-1] / sizes[0] >= 4:
                ax.set_xscale("log")
                ax.minorticks_off()
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.set_xlabel(f"{x_name} (design size)")
        ax_p.set_ylim(-0.02, 1.02)
        ax_p.set_ylabel(power_label)
        ax_w.set_ylabel(width_label)
        ax_w.set_ylim(bottom=0)
        if power_target is not None:
            reference_line(ax_p, power_target, horizontal=True)
        if width_target is not None:
            reference_line(ax_w, width_target, horizontal=True)
        legend_above(fig, handles)
        if title:
            fig.suptitle(title)
    return fig
