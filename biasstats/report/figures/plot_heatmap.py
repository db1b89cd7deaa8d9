"""Heatmap of an interaction term (``rows:cols``), one cell per pair, in named steps: the
cells (:func:`heatmap_cells`), their order (:func:`heatmap_order`), the colour scale
(:func:`heatmap_norm`), then the drawing (annotations, category headers, colour bar)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from biasstats.report.figures.kit import TERM_LABELS, scale_of, select_scale
from biasstats.report.style import (
    DIVERGING_CMAP,
    DOUBLE_COLUMN,
    LIGHT_GREY,
    new_figure,
    paper_style,
)
from biasstats.report.tables import as_frame

__all__ = ["heatmap", "heatmap_cells", "heatmap_norm", "heatmap_order"]

# (category or None, its column levels in order): the column blocks of a heatmap
Groups = list[tuple[str | None, list[str]]]


def _split_levels(df: pl.DataFrame, rows: str, cols: str, swapped: bool) -> pl.DataFrame:
    """Add ``_row`` / ``_col`` from explicit columns if present, else from "row:col" levels."""
    if rows in df.columns and cols in df.columns:
        return df.with_columns(
            pl.col(rows).cast(pl.Utf8).alias("_row"), pl.col(cols).cast(pl.Utf8).alias("_col")
        )
    levels = df["level"].cast(pl.Utf8).to_list()
    bad = [lv for lv in levels if ":" not in lv]
    if bad:
        raise ValueError(f"interaction level {bad[0]!r} is not of the form '<{rows}>:<{cols}>'")
    # LLM names may contain ':' (e.g. "llama2:13b"); stereotypes do not: split at the last ':'.
    first = [lv.rsplit(":", 1)[0] for lv in levels]
    second = [lv.rsplit(":", 1)[1] for lv in levels]
    r, c = (second, first) if swapped else (first, second)
    return df.with_columns(pl.Series("_row", r), pl.Series("_col", c))


def _term_means(effects: pl.DataFrame, term: str, scale: str) -> dict[str, float]:
    sub = effects.filter((pl.col("term") == term) & (pl.col("scale") == scale))
    return {str(k): float(v) for k, v in sub.select("level", "mean").iter_rows()}


def _nice_ceiling(x: float) -> float:
    if not np.isfinite(x) or x <= 0:
        return 1.0
    step = 10 ** math.floor(math.log10(x)) / 2
    return math.ceil(x / step - 1e-9) * step


def _cell_text(v: float, scale: str) -> str:
    if not np.isfinite(v):
        return ""
    if scale == "odds_ratio" or abs(v) >= 1:
        s = f"{v:.1f}"
    else:
        s = f"{v:.2f}".replace("0.", ".", 1)
    return s.replace("-", "−")


def heatmap_cells(eff: pl.DataFrame, rows: str, cols: str, scale: str) -> pl.DataFrame:
    """The rows of the interaction term ``rows:cols`` (or ``cols:rows``) on ``scale``, with
    each cell's row level in ``_row`` and column level in ``_col``."""
    swapped = False
    try:
        df = select_scale(eff, f"{rows}:{cols}", scale)
    except ValueError:
        try:
            df = select_scale(eff, f"{cols}:{rows}", scale)
            swapped = True
        except ValueError:
            df = select_scale(eff, f"{rows}:{cols}", scale)  # re-raise with the first name
    return _split_levels(df, rows, cols, swapped)


def heatmap_order(eff: pl.DataFrame, df: pl.DataFrame, rows: str, cols: str, scale: str,
                  category_of: Mapping[str, str] | None) -> tuple[list[str], Groups]:
    """Row levels sorted by their main-effect mean (largest first; the mean of their cells
    when the main effect is absent) and the column blocks: one per category of
    ``category_of`` (categories, and columns within them, sorted by mean), else one."""
    cells = {(r, c): float(m) for r, c, m in df.select("_row", "_col", "mean").iter_rows()}
    row_levels = list(dict.fromkeys(df["_row"].to_list()))
    col_levels = list(dict.fromkeys(df["_col"].to_list()))

    def avg(keys):
        vals = [cells[k] for k in keys if k in cells]
        return float(np.mean(vals)) if vals else float("nan")

    row_main = _term_means(eff, rows, scale)
    col_main = _term_means(eff, cols, scale)
    row_key = {r: row_main.get(r, avg([(r, c) for c in col_levels])) for r in row_levels}
    col_key = {c: col_main.get(c, avg([(r, c) for r in row_levels])) for c in col_levels}
    row_order = sorted(row_levels, key=lambda r: (-row_key[r], r))
    if not category_of:
        return row_order, [(None, sorted(col_levels, key=lambda c: (-col_key[c], c)))]
    cat_main = _term_means(eff, "category", scale)
    members: dict[str, list[str]] = {}
    for c in col_levels:
        members.setdefault(str(category_of.get(c, "other")), []).append(c)

    def cat_key(cat):
        if cat in cat_main:
            return cat_main[cat]
        return float(np.mean([col_key[c] for c in members[cat]]))

    return row_order, [(cat, sorted(members[cat], key=lambda c: (-col_key[c], c)))
                       for cat in sorted(members, key=lambda k: (-cat_key(k), k))]


def heatmap_norm(mat: np.ndarray, ref: float, log: bool, vlim: float | None):
    """Colour limits symmetric about ``ref`` (on a log axis, about 1), at a round number."""
    finite = mat[np.isfinite(mat)]
    if log:
        half = vlim or _nice_ceiling(
            float(np.max(np.abs(np.log10(finite)))) if finite.size else 1.0
        )
        return LogNorm(vmin=10**-half, vmax=10**half)
    half = vlim or _nice_ceiling(float(np.max(np.abs(finite - ref))) if finite.size else 1.0)
    return Normalize(vmin=ref - half, vmax=ref + half)


def _annotate(ax, mat: np.ndarray, norm, scale: str) -> None:
    """Each finite cell's value, in white on dark cells."""
    nr, nc = mat.shape
    fs = 5.5 if nc > 12 else 6.5
    for i in range(nr):
        for j in range(nc):
            v = mat[i, j]
            if not np.isfinite(v):
                continue
            dark = abs(float(norm(v)) - 0.5) > 0.3
            ax.text(
                j,
                i,
                _cell_text(v, scale),
                ha="center",
                va="center",
                fontsize=fs,
                color="white" if dark else "#111111",
            )


def _category_headers(ax, groups: Groups, nr: int) -> None:
    """Each category's name above its block of columns, blocks split by white lines."""
    start = 0
    for k, (cat, cs) in enumerate(groups):
        end = start + len(cs)
        if k > 0:
            ax.axvline(start - 0.5, color="white", lw=2.0)
        ax.text(
            (start + end - 1) / 2,
            -0.65,
            cat,
            ha="center",
            va="bottom",
            fontsize=7,
            fontweight="bold",
            color="#222222",
        )
        start = end
    ax.set_ylim(nr - 0.5, -0.5)


def heatmap(
    effects,
    rows: str,
    cols: str,
    scale: str,
    *,
    category_of: Mapping[str, str] | None = None,
    annotate: bool = True,
    vlim: float | None = None,
    width: float = DOUBLE_COLUMN,
    title: str | None = None,
) -> Figure:
    """Heatmap of an interaction term (``rows:cols``, e.g. "llm:stereotype"), one cell per pair.

    Colours use a diverging map centred on the scale's "no effect" value with symmetric
    limits; cells are annotated with the posterior mean. Rows are sorted by their main-effect
    mean (largest at the top); with ``category_of`` (column level → category) columns are
    grouped by category, categories and columns within them sorted by mean.
    """
    eff = as_frame(effects)
    label, ref, log = scale_of(scale)
    df = heatmap_cells(eff, rows, cols, scale)
    row_order, groups = heatmap_order(eff, df, rows, cols, scale, category_of)
    cells = {(r, c): float(m) for r, c, m in df.select("_row", "_col", "mean").iter_rows()}
    col_order = [c for _, cs in groups for c in cs]
    mat = np.array([[cells.get((r, c), np.nan) for c in col_order] for r in row_order])
    norm = heatmap_norm(mat, ref, log, vlim)
    cmap = mpl.colormaps[DIVERGING_CMAP].with_extremes(bad=LIGHT_GREY)

    nr, nc = mat.shape
    label_room = 0.9 + (0.25 if category_of else 0.0)
    with paper_style():
        fig = new_figure(width, max(1.6, label_room + 0.22 * nr))
        ax = fig.add_subplot()
        im = ax.imshow(
            np.ma.masked_invalid(mat), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
        )
        ax.set_xticks(np.arange(nc), col_order, rotation=60, ha="right", rotation_mode="anchor")
        ax.set_yticks(np.arange(nr), row_order)
        ax.tick_params(length=0, pad=2)
        for side in ("left", "bottom", "top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_xlabel(TERM_LABELS.get(cols, cols))
        ax.set_ylabel(TERM_LABELS.get(rows, rows))
        if annotate:
            _annotate(ax, mat, norm, scale)
        if category_of:
            _category_headers(ax, groups, nr)
        cb = fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, aspect=30)
        cb.set_label(label)
        cb.outline.set_visible(False)
        cb.ax.tick_params(length=2)
        if title:
            ax.set_title(title, pad=14 if category_of else 4)
    return fig
