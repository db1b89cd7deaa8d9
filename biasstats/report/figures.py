"""Paper-ready figures from plain tables (polars or pandas DataFrames, numpy arrays).

Every function returns a :class:`matplotlib.figure.Figure` (not registered with pyplot) drawn
in the biasstats style (:mod:`biasstats.report.style`); save it with
:func:`biasstats.report.style.save_figure`. Nothing here fits a model: the inputs are the
effects, ranks, variance-decomposition, predictive-check and cross-check tables described in
:mod:`biasstats.report` (one row per level, posterior summaries as columns).

Conventions: levels are sorted by posterior mean, the largest at the top; intervals are
highest-density intervals (HDI) with their probability in the legend; a grey band marks the
region of practical equivalence (ROPE); a dashed line marks "no bias"; the verdict is shown
by marker shape *and* colour (filled circle = biased, open square = practically unbiased,
open diamond = undecided) so figures read in greyscale too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from biasstats.report.style import (
    CATEGORICAL,
    DIVERGING_CMAP,
    DOUBLE_COLUMN,
    GREY,
    LIGHT_GREY,
    OKABE_ITO,
    ROPE_COLOUR,
    SINGLE_COLUMN,
    VERDICT_STYLE,
    new_figure,
    paper_style,
)
from biasstats.report.tables import as_frame, hdi_label, select_effects

__all__ = [
    "SCALES",
    "category_panels",
    "crosscheck",
    "forest",
    "heatmap",
    "ppc_grouped",
    "ranks",
    "rootogram",
    "variance_decomposition",
]

# scale -> (axis label, value meaning "no bias", log axis?)
SCALES: dict[str, tuple[str, float, bool]] = {
    "probability": ("P(stereotype-congruent)", 0.5, False),
    "bias": ("Bias (−1 … +1)", 0.0, False),
    "log_odds": ("Log-odds of a stereotype-congruent answer", 0.0, False),
    "odds_ratio": ("Odds ratio (log scale)", 1.0, True),
}  # a study adds its own (e.g. the Bai D score) through biasstats.studies (Study.scales)

TERM_LABELS: dict[str, str] = {
    "llm": "LLM",
    "category": "Category",
    "stereotype": "Stereotype",
    "variant": "Prompt variant",
    "residual": "Residual",
    "contrast": "Contrast",
}


def _study_scale(scale: str):
    from biasstats import registry

    return registry.scale(scale)


def scale_of(scale: str) -> tuple[str, float, bool]:
    if scale in SCALES:
        return SCALES[scale]
    extra = _study_scale(scale)
    if extra is None:
        raise ValueError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}")
    return extra.label, extra.null, extra.log


def _require(df: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {', '.join(missing)}")


def select_scale(effects, term: str, scale: str) -> pl.DataFrame:
    scale_of(scale)
    return select_effects(effects, term, scale)


def figure_height(n: int, per: float = 0.15, base: float = 0.85, minimum: float = 1.5) -> float:
    return max(minimum, base + per * n)


def _rope(df: pl.DataFrame) -> tuple[float, float] | None | str:
    """A common ROPE (lo, hi); "per-row" if rows differ; None if no ROPE is given."""
    if "rope_low" not in df.columns or "rope_high" not in df.columns:
        return None
    pairs = df.select("rope_low", "rope_high").drop_nulls().unique()
    if pairs.height == 0:
        return None
    if pairs.height == 1:
        lo, hi = pairs.row(0)
        return float(lo), float(hi)
    return "per-row"


def verdict_handles(verdicts: Sequence[str]) -> list[Line2D]:
    handles = []
    for v in VERDICT_STYLE:
        if v in verdicts and v != "estimate":
            handles.append(_marker_handle(v))
    return handles


def _marker_handle(verdict: str) -> Line2D:
    st = VERDICT_STYLE.get(verdict, VERDICT_STYLE["undecided"])
    return Line2D(
        [],
        [],
        color=st["color"],
        marker=st["marker"],
        markersize=4,
        markerfacecolor=st["color"] if st["filled"] else "white",
        markeredgecolor=st["color"],
        lw=1.0,
        label=verdict,
    )


def draw_intervals(ax, y, mean, lo, hi, verdicts, size: float = 16.0) -> None:
    """Posterior mean + interval per row, styled by verdict."""
    y = np.asarray(y, dtype=float)
    mean = np.asarray(mean, dtype=float)
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    verdicts = np.asarray(verdicts, dtype=object)
    for verdict in list(VERDICT_STYLE) + sorted(set(verdicts) - set(VERDICT_STYLE)):
        sel = verdicts == verdict
        if not sel.any():
            continue
        st = VERDICT_STYLE.get(verdict, VERDICT_STYLE["undecided"])
        ax.hlines(y[sel], lo[sel], hi[sel], color=st["color"], lw=1.0, zorder=2)
        ax.scatter(
            mean[sel],
            y[sel],
            s=size,
            marker=st["marker"],
            facecolors=st["color"] if st["filled"] else "white",
            edgecolors=st["color"],
            linewidths=0.9,
            zorder=3,
        )


def reference_line(ax, ref: float) -> None:
    ax.axvline(ref, color="#555555", lw=0.6, ls=(0, (3, 2)), zorder=1)


def rope_band(ax, df: pl.DataFrame, y: np.ndarray) -> bool:
    rope = _rope(df)
    if rope is None:
        return False
    if rope == "per-row":
        lo = df["rope_low"].to_numpy().astype(float)
        hi = df["rope_high"].to_numpy().astype(float)
        ax.barh(y, hi - lo, left=lo, height=0.8, color=ROPE_COLOUR, lw=0, zorder=0)
    else:
        ax.axvspan(rope[0], rope[1], color=ROPE_COLOUR, lw=0, zorder=0)
    return True


def verdicts_of(df: pl.DataFrame) -> list[str]:
    if "verdict" in df.columns:
        return [v if v is not None else "estimate" for v in df["verdict"].to_list()]
    return ["estimate"] * df.height


def legend_above(fig: Figure, handles, title: str | None = None, ncols: int | None = None):
    if not handles:
        return
    fig.legend(
        handles=handles,
        loc="outside upper left",
        ncols=ncols or min(len(handles), 4),
        title=title,
        alignment="left",
        columnspacing=1.0,
        handletextpad=0.4,
    )


def level_axis(ax, y, labels) -> None:
    ax.set_yticks(y, labels)
    ax.tick_params(axis="y", length=0, pad=3)
    ax.spines["left"].set_visible(False)
    ax.set_ylim(min(y) - 0.7, max(y) + 0.7)


def forest(
    effects,
    term: str,
    scale: str = "bias",
    *,
    title: str | None = None,
    width: float = SINGLE_COLUMN,
    label: str | None = None,
    ref: float | None = None,
    log: bool = False,
) -> Figure:
    """Forest plot of one term: posterior mean and HDI per level, ROPE band, reference line.

    Levels are sorted by posterior mean (largest at the top); the verdict is shown by marker.
    A scale of :data:`SCALES` brings its axis label and reference value; any other scale
    (an outcome's own, e.g. "mean" in tokens) takes ``label`` and an optional ``ref``.
    """
    if label is None and (scale in SCALES or _study_scale(scale) is not None):
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


def heatmap(
    effects,
    rows: str = "llm",
    cols: str = "stereotype",
    scale: str = "bias",
    *,
    category_of: Mapping[str, str] | None = None,
    annotate: bool = True,
    vlim: float | None = None,
    width: float = DOUBLE_COLUMN,
    title: str | None = None,
) -> Figure:
    """Heatmap of an interaction term (``rows:cols``, e.g. "llm:stereotype"), one cell per pair.

    Colours use a diverging map centred on "no bias" with symmetric limits; cells are annotated
    with the posterior mean. Rows are sorted by their main-effect mean (largest at the top);
    with ``category_of`` (column level → category) columns are grouped by category, categories
    and columns within them sorted by mean.
    """
    eff = as_frame(effects)
    label, ref, log = scale_of(scale)
    swapped = False
    try:
        df = select_scale(eff, f"{rows}:{cols}", scale)
    except ValueError:
        try:
            df = select_scale(eff, f"{cols}:{rows}", scale)
            swapped = True
        except ValueError:
            df = select_scale(eff, f"{rows}:{cols}", scale)  # re-raise with the first name
    df = _split_levels(df, rows, cols, swapped)
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
    groups: list[tuple[str | None, list[str]]] = []
    if category_of:
        cat_main = _term_means(eff, "category", scale)
        members: dict[str, list[str]] = {}
        for c in col_levels:
            members.setdefault(str(category_of.get(c, "other")), []).append(c)

        def cat_key(cat):
            if cat in cat_main:
                return cat_main[cat]
            return float(np.mean([col_key[c] for c in members[cat]]))

        for cat in sorted(members, key=lambda k: (-cat_key(k), k)):
            groups.append((cat, sorted(members[cat], key=lambda c: (-col_key[c], c))))
    else:
        groups.append((None, sorted(col_levels, key=lambda c: (-col_key[c], c))))
    col_order = [c for _, cs in groups for c in cs]
    mat = np.array([[cells.get((r, c), np.nan) for c in col_order] for r in row_order])

    finite = mat[np.isfinite(mat)]
    if log:
        half = vlim or _nice_ceiling(
            float(np.max(np.abs(np.log10(finite)))) if finite.size else 1.0
        )
        norm = LogNorm(vmin=10**-half, vmax=10**half)
    else:
        half = vlim or _nice_ceiling(float(np.max(np.abs(finite - ref))) if finite.size else 1.0)
        norm = Normalize(vmin=ref - half, vmax=ref + half)
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
        if category_of:
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
        cb = fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, aspect=30)
        cb.set_label(label)
        cb.outline.set_visible(False)
        cb.ax.tick_params(length=2)
        if title:
            ax.set_title(title, pad=14 if category_of else 4)
    return fig


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


def _right_column(ax, y, probabilities, header: str) -> None:
    """Probabilities printed in a column right of the axes, one per level, under a header."""
    trans = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
    style = {"transform": trans, "ha": "left", "fontsize": 6.5, "color": "#333333"}
    for yi, p in zip(y, probabilities, strict=True):
        ax.text(1.02, yi, _p_text(p), va="center", **style)
    ax.text(1.02, len(y) - 0.35, header, va="bottom", parse_math=True, **style)


def _p_text(p: float) -> str:
    if p is None or not np.isfinite(p):
        return ""
    if p < 0.01:
        return "<.01"
    if p > 0.99:
        return ">.99"
    return f"{p:.2f}".replace("0.", ".", 1)


def ppc_grouped(
    ppc,
    group_term: str,
    *,
    replicated=None,
    width: float = SINGLE_COLUMN,
    xlabel: str = "Rate of stereotype-congruent answers",
    title: str | None = None,
) -> Figure:
    """Grouped posterior predictive check: observed rate vs replicated interval per level.

    ``replicated``: optional replicated rates, a mapping level → 1-D array of draws or a
    draws × levels array in the row order of ``ppc`` restricted to ``group_term``; drawn as
    a violin behind the interval. Observed values outside the interval are highlighted, and
    the Bayesian p-value is printed at the right.
    """
    df = as_frame(ppc)
    _require(df, ["group_term", "level", "observed", "rep_low", "rep_high"], "ppc")
    df = df.filter(pl.col("group_term") == group_term)
    if df.height == 0:
        raise ValueError(f"no predictive-check rows for group_term {group_term!r}")
    levels_in_order = [str(v) for v in df["level"].to_list()]
    reps_all = _replicated_for(replicated, levels_in_order, df, group_term)
    order = np.argsort(df["observed"].to_numpy(), kind="stable")  # largest at top
    df = df[order.tolist()]
    reps = [reps_all[i] for i in order] if reps_all is not None else None
    n = df.height
    y = np.arange(n, dtype=float)
    obs = df["observed"].to_numpy().astype(float)
    lo = df["rep_low"].to_numpy().astype(float)
    hi = df["rep_high"].to_numpy().astype(float)
    outside = (obs < lo) | (obs > hi)
    with paper_style():
        fig = new_figure(width, figure_height(n, per=0.18))
        ax = fig.add_subplot()
        handles = []
        if reps is not None:
            data = [r if r is not None and r.size > 1 else np.array([np.nan, np.nan]) for r in reps]
            ok = [i for i, d in enumerate(data) if np.isfinite(d).sum() > 1]
            if ok:
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
                handles.append(
                    Patch(color=OKABE_ITO["sky_blue"], alpha=0.35, label="replicated draws")
                )
        ax.hlines(y, lo, hi, color=OKABE_ITO["blue"], lw=2.2, alpha=0.6, zorder=2)
        handles.append(
            Line2D([], [], color=OKABE_ITO["blue"], lw=2.2, alpha=0.6, label="replicated interval")
        )
        if "rep_mean" in df.columns:
            ax.scatter(
                df["rep_mean"].to_numpy(),
                y,
                marker="|",
                s=30,
                color=OKABE_ITO["blue"],
                lw=1.0,
                zorder=3,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    color=OKABE_ITO["blue"],
                    marker="|",
                    lw=0,
                    markersize=6,
                    label="replicated mean",
                )
            )
        ax.scatter(obs[~outside], y[~outside], s=14, color="black", zorder=4)
        handles.append(
            Line2D([], [], color="black", marker="o", lw=0, markersize=3.5, label="observed")
        )
        if outside.any():
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
                Line2D(
                    [],
                    [],
                    color=OKABE_ITO["vermillion"],
                    marker="o",
                    markeredgecolor="black",
                    lw=0,
                    markersize=4,
                    label="observed, outside interval",
                )
            )
        level_axis(ax, y, [str(v) for v in df["level"].to_list()])
        ax.set_xlabel(xlabel)
        if "p_value" in df.columns:
            _right_column(ax, y, df["p_value"].to_list(), "$p_B$")
        if title:
            ax.set_title(title)
        legend_above(fig, handles, ncols=2)
    return fig


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
    _require(df, ["component", "share_mean", "share_low", "share_high"], "variance decomposition")
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


def ranks(
    ranks,
    *,
    width: float = SINGLE_COLUMN,
    xlabel: str = "Posterior rank (1 = most biased)",
    title: str | None = None,
) -> Figure:
    """Posterior rank of each LLM: mean and interval, with P(rank 1) at the right."""
    df = as_frame(ranks)
    if "llm" not in df.columns and "level" in df.columns:
        df = df.rename({"level": "llm"})  # the generic estimands' ranks: any factor
    _require(df, ["llm", "rank_mean", "rank_low", "rank_high"], "ranks")
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
            _right_column(ax, y, df["p_best"].to_list(), "P(rank 1)")
        if title:
            ax.set_title(title)
    return fig


def crosscheck(
    cross,
    group_term: str,
    *,
    width: float = SINGLE_COLUMN,
    xlabel: str = "Estimate",
    title: str | None = None,
) -> Figure:
    """Frequentist cross-check: the authors' t-test mean and CI beside the posterior, per level.

    Both estimates must be on the same scale (say which in ``xlabel``).
    """
    df = as_frame(cross)
    _require(
        df,
        [
            "group_term",
            "level",
            "t_mean",
            "t_ci_low",
            "t_ci_high",
            "posterior_mean",
            "posterior_low",
            "posterior_high",
        ],
        "cross-check",
    )
    df = df.filter(pl.col("group_term") == group_term)
    if df.height == 0:
        raise ValueError(f"no cross-check rows for group_term {group_term!r}")
    df = df.sort("posterior_mean")
    n = df.height
    y = np.arange(n, dtype=float)
    with paper_style():
        fig = new_figure(width, figure_height(n, per=0.2))
        ax = fig.add_subplot()
        reference_line(ax, 0.0)
        ax.hlines(
            y + 0.17, df["t_ci_low"].to_numpy(), df["t_ci_high"].to_numpy(), color=GREY, lw=1.0
        )
        ax.scatter(
            df["t_mean"].to_numpy(),
            y + 0.17,
            s=14,
            facecolors="white",
            edgecolors=GREY,
            linewidths=0.9,
            zorder=3,
        )
        ax.hlines(
            y - 0.17,
            df["posterior_low"].to_numpy(),
            df["posterior_high"].to_numpy(),
            color=OKABE_ITO["blue"],
            lw=1.0,
        )
        ax.scatter(
            df["posterior_mean"].to_numpy(), y - 0.17, s=14, color=OKABE_ITO["blue"], zorder=3
        )
        level_axis(ax, y, [str(v) for v in df["level"].to_list()])
        ax.set_xlabel(xlabel)
        if title:
            ax.set_title(title)
        handles = [
            Line2D(
                [],
                [],
                color=GREY,
                marker="o",
                markerfacecolor="white",
                markersize=3.5,
                label="t-test mean, 95% CI",
            ),
            Line2D(
                [],
                [],
                color=OKABE_ITO["blue"],
                marker="o",
                markersize=3.5,
                label="posterior mean, interval",
            ),
        ]
        legend_above(fig, handles, ncols=2)
    return fig


def pit_ecdf(
    pit,
    *,
    prob: float = 0.95,
    width: float = SINGLE_COLUMN,
    title: str | None = None,
) -> Figure:
    """LOO-PIT calibration: ECDF of the PIT values minus the uniform CDF, with a simultaneous
    ``prob`` band (Säilynoja, Bürkner & Vehtari 2022; :func:`pit_ecdf_band`). A curve leaving the
    band means miscalibration: a ∩ shape = predictive intervals too wide, ∪ = too narrow
    (e.g. overdispersion the model does not have)."""
    from biasstats.checks.ppc import pit_ecdf_band

    x, ecdf, lo, hi = pit_ecdf_band(pit, prob)
    with paper_style():
        fig = new_figure(width, 2.0)
        ax = fig.add_subplot()
        ax.fill_between(x, lo - x, hi - x, color="#d9d9d9", lw=0, step="post",
                        label=f"{int(prob * 100)}% simultaneous band")
        ax.step(x, ecdf - x, where="post", color=OKABE_ITO["blue"], lw=1.1, label="LOO-PIT ECDF − uniform")
        ax.axhline(0, color=GREY, lw=0.6)
        ax.set_xlim(0, 1)
        ax.set_xlabel("PIT value")
        ax.set_ylabel("ECDF difference")
        ax.legend(frameon=False, loc="best", fontsize=6.5)
        if title:
            ax.set_title(title)
    return fig


def category_panels(
    df,
    term: str,
    *,
    xlabel: str,
    point: str = "mean",
    low: str = "hdi_low",
    high: str = "hdi_high",
    observed: str | None = None,
    width: float = DOUBLE_COLUMN,
) -> Figure:
    """One panel per response category (ordinal / categorical outcomes), the levels of
    ``term`` as rows (in the table's order, shared by the panels): ``point`` with its interval
    (``low``, ``high``) per level — a probability with its HDI, or, with ``observed`` (a
    predictive check's table), the replicated share's interval and mean with the observed
    share as a dot (vermillion when outside the interval).

    ``df`` has ``term`` (or ``group_term``), ``level``, ``category`` and those columns."""
    d = as_frame(df)
    tcol = "group_term" if "group_term" in d.columns else "term"
    _require(d, [tcol, "level", "category", point, low, high], "category panels")
    d = d.filter(pl.col(tcol) == term)
    if d.height == 0:
        raise ValueError(f"no rows for term {term!r}")
    cats = list(dict.fromkeys(str(c) for c in d["category"].to_list()))
    levels = list(dict.fromkeys(str(v) for v in d["level"].to_list()))
    y = np.arange(len(levels), dtype=float)[::-1]  # the first level at the top
    pos = dict(zip(levels, y, strict=True))
    ncol = len(cats)
    with paper_style():
        fig = new_figure(width, figure_height(len(levels), per=0.18))
        axes = fig.subplots(1, ncol, sharey=True, squeeze=False)[0]
        for ax, cat in zip(axes, cats, strict=True):
            c = d.filter(pl.col("category") == cat)
            yy = np.array([pos[str(v)] for v in c["level"].to_list()])
            ax.hlines(yy, c[low].to_numpy(), c[high].to_numpy(), color=OKABE_ITO["blue"],
                      lw=2.0, alpha=0.6 if observed else 1.0, zorder=2)
            if observed is None:
                ax.scatter(c[point].to_numpy(), yy, s=14, color=OKABE_ITO["blue"], zorder=3)
            else:
                ax.scatter(c[point].to_numpy(), yy, marker="|", s=30, color=OKABE_ITO["blue"],
                           lw=1.0, zorder=3)
                obs = c[observed].to_numpy()
                out = (obs < c[low].to_numpy()) | (obs > c[high].to_numpy())
                ax.scatter(obs[~out], yy[~out], s=12, color="black", zorder=4)
                ax.scatter(obs[out], yy[out], s=18, color=OKABE_ITO["vermillion"],
                           edgecolors="black", linewidths=0.5, zorder=5)
            ax.set_title(cat, fontsize=7)
            ax.set_xlim(-0.02, min(1.02, max(float(c[high].max()) * 1.1, 0.1)))
            ax.tick_params(axis="x", labelsize=6)
        level_axis(axes[0], y, levels)
        fig.supxlabel(xlabel, fontsize=7)
        handles = ([Line2D([], [], color=OKABE_ITO["blue"], marker="o", lw=2,
                           label=f"posterior mean, {hdi_label(d)}")] if observed is None else
                   [Line2D([], [], color=OKABE_ITO["blue"], lw=2, alpha=0.6,
                           label="replicated interval"),
                    Line2D([], [], color="black", marker="o", lw=0, markersize=3.5,
                           label="observed"),
                    Line2D([], [], color=OKABE_ITO["vermillion"], marker="o", lw=0,
                           markeredgecolor="black", markersize=4,
                           label="observed, outside interval")])
        legend_above(fig, handles)
    return fig


def rootogram(freq, *, xlabel: str = "Count", width: float = SINGLE_COLUMN) -> Figure:
    """Hanging rootogram (Kleiber & Zeileis 2016) of a count outcome.

    ``freq``: one row per count value or bin (``low``, ``high``, ``observed``, ``rep_mean``,
    ``rep_low``, ``rep_high``; :func:`biasstats.checks.ppc.count_frequencies`). On the
    square-root scale, each bar of height √observed hangs from the curve of the replicated
    mean √rep_mean, so its bottom sits at √rep_mean − √observed: bars that stop above the
    zero line mean fewer observations than the model expects, below it more. The replicated
    interval is drawn around the curve.

    (arviz-plots' ``plot_ppc_rootogram`` draws points per distinct count on a square-root
    axis, not hanging bars, and has no binning for counts in the hundreds.)"""
    d = as_frame(freq)
    _require(d, ["low", "high", "observed", "rep_mean", "rep_low", "rep_high"], "rootogram")
    lo_b = d["low"].to_numpy().astype(float)
    w = (lo_b[1] - lo_b[0]) if len(lo_b) > 1 else 1.0
    x = lo_b + (w - 1) / 2  # the middle of each bin (the value itself when w = 1)
    expct = np.sqrt(d["rep_mean"].to_numpy())
    obs = np.sqrt(d["observed"].to_numpy())
    with paper_style():
        fig = new_figure(width, 2.2)
        ax = fig.add_subplot()
        ax.bar(x, obs, bottom=expct - obs, width=0.9 * w, color=LIGHT_GREY,
               edgecolor=GREY, linewidth=0.4, zorder=1)
        ax.fill_between(x, np.sqrt(d["rep_low"].to_numpy()), np.sqrt(d["rep_high"].to_numpy()),
                        color=OKABE_ITO["sky_blue"], alpha=0.35, lw=0, step="mid", zorder=2)
        ax.plot(x, expct, color=OKABE_ITO["blue"], lw=1.2, marker="o", markersize=2, zorder=3)
        ax.axhline(0.0, color="black", lw=0.6, zorder=4)
        ax.set_xlabel(xlabel + (f" (bins of {int(w)})" if w > 1 else ""))
        ax.set_ylabel("√frequency")
        legend_above(fig, [
            Patch(facecolor=LIGHT_GREY, edgecolor=GREY, label="observed (hanging)"),
            Line2D([], [], color=OKABE_ITO["blue"], marker="o", markersize=2,
                   label="replicated mean"),
            Patch(color=OKABE_ITO["sky_blue"], alpha=0.35, label="replicated 95% interval")],
            ncols=2)
    return fig
