"""The public drawing kit of the report's figures (and of a study's own figures).

Sizes at journal widths (:func:`figure_height`; the widths are in
:mod:`biasstats.report.style`), posterior intervals styled by ROPE verdict
(:func:`draw_intervals`, :func:`verdict_handles`, :func:`verdicts_of`), level axes
(:func:`level_axis`), a column of probabilities right of the axes (:func:`right_column`),
legends above the axes (:func:`legend_above`), reference lines (:func:`reference_line`), ROPE
bands (:func:`rope_band`), and the scale lookups (:data:`SCALES`, :func:`scale_of`,
:func:`select_scale`). Every figure of :mod:`biasstats.report.figures` is drawn with these.

Conventions: levels are sorted by posterior mean, the largest at the top; intervals are
highest-density intervals (HDI) with their probability in the legend; a grey band marks the
region of practical equivalence (ROPE); a dashed line marks the scale's "no effect" value;
the verdict is shown by marker shape *and* colour (filled circle = outside the ROPE, open
square = inside, open diamond = undecided) so figures read in greyscale too.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from biasstats import registry
from biasstats.report.style import ROPE_COLOUR, VERDICT_STYLE
from biasstats.report.tables import as_frame, select_effects

__all__ = [
    "SCALES",
    "TERM_LABELS",
    "as_frame",
    "common_rope",
    "draw_intervals",
    "figure_height",
    "legend_above",
    "level_axis",
    "p_text",
    "reference_line",
    "require_columns",
    "right_column",
    "rope_band",
    "scale_of",
    "select_scale",
    "study_scale",
    "verdict_handles",
    "verdict_styles",
    "verdicts_of",
]

# scale -> (axis label, the value meaning "no effect" (the middle of a probability), log axis?)
SCALES: dict[str, tuple[str, float, bool]] = {
    "probability": ("Probability", 0.5, False),
    "log_odds": ("Log-odds", 0.0, False),
    "odds_ratio": ("Odds ratio (log scale)", 1.0, True),
}  # a study adds its own (e.g. the Bai bias and D-score scales) as registry.Study.scales

TERM_LABELS: dict[str, str] = {
    "llm": "LLM",
    "category": "Category",
    "stereotype": "Stereotype",
    "variant": "Prompt variant",
    "residual": "Residual",
    "contrast": "Contrast",
}


# ----------------------------------------------------------------------------- scales
def study_scale(scale: str):
    """The :class:`biasstats.registry.Scale` a study registered as ``scale``, or None."""

    return registry.scale(scale)


def scale_of(scale: str) -> tuple[str, float, bool]:
    """(axis label, the value meaning "no effect", log axis?) of a built-in or study scale."""
    if scale in SCALES:
        return SCALES[scale]
    extra = study_scale(scale)
    if extra is None:
        raise ValueError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}")
    return extra.label, extra.null, extra.log


def select_scale(effects, term: str, scale: str) -> pl.DataFrame:
    """The rows of ``term`` on a known ``scale`` (ValueError for an unknown scale or term)."""
    scale_of(scale)
    return select_effects(effects, term, scale)


def require_columns(df: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    """ValueError naming the columns of ``columns`` that ``df`` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {', '.join(missing)}")


# ----------------------------------------------------------------------------- sizes
def figure_height(n: int, per: float = 0.15, base: float = 0.85, minimum: float = 1.5) -> float:
    """The height (inches) of a figure of ``n`` rows: ``base + per * n``, at least ``minimum``."""
    return max(minimum, base + per * n)


# ----------------------------------------------------------------------------- ROPE, verdicts
def common_rope(df: pl.DataFrame) -> tuple[float, float] | None | str:
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


def verdict_styles() -> dict[str, dict]:
    """How each verdict is drawn, in legend order: the registered studies' verdict words
    first (each drawn as the generic verdict it stands for), then the generic verdicts of
    :data:`biasstats.report.style.VERDICT_STYLE`."""

    styles = {word: VERDICT_STYLE[generic]
              for word, generic in registry.verdict_words().items() if generic in VERDICT_STYLE}
    for v, st in VERDICT_STYLE.items():
        styles.setdefault(v, st)
    return styles


def verdict_handles(verdicts: Sequence[str]) -> list[Line2D]:
    """Legend handles of the verdicts present (in the order of :func:`verdict_styles`)."""
    styles = verdict_styles()
    handles = []
    for v in styles:
        if v in verdicts and v != "estimate":
            handles.append(_marker_handle(styles[v], v))
    return handles


def _marker_handle(st: dict, verdict: str) -> Line2D:
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


def verdicts_of(df: pl.DataFrame) -> list[str]:
    """The ``verdict`` of each row ("estimate" where none: no ROPE declared)."""
    if "verdict" in df.columns:
        return [v if v is not None else "estimate" for v in df["verdict"].to_list()]
    return ["estimate"] * df.height


# ----------------------------------------------------------------------------- drawing
def draw_intervals(ax, y, mean, lo, hi, verdicts, size: float = 16.0) -> None:
    """Posterior mean + interval per row, styled by verdict."""
    y = np.asarray(y, dtype=float)
    mean = np.asarray(mean, dtype=float)
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    verdicts = np.asarray(verdicts, dtype=object)
    styles = verdict_styles()
    for verdict in list(styles) + sorted(set(verdicts) - set(styles)):
        sel = verdicts == verdict
        if not sel.any():
            continue
        st = styles.get(verdict, VERDICT_STYLE["undecided"])
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


def reference_line(ax, ref: float, *, horizontal: bool = False) -> None:
    """A dashed vertical line at ``ref`` (the scale's "no effect" value; a target), or a
    horizontal one."""
    draw = ax.axhline if horizontal else ax.axvline
    draw(ref, color="#555555", lw=0.6, ls=(0, (3, 2)), zorder=1)


def rope_band(ax, df: pl.DataFrame, y: np.ndarray) -> bool:
    """The ROPE as a grey band (one per row when rows differ); False when there is none."""
    rope = common_rope(df)
    if rope is None:
        return False
    if rope == "per-row":
        lo = df["rope_low"].to_numpy().astype(float)
        hi = df["rope_high"].to_numpy().astype(float)
        ax.barh(y, hi - lo, left=lo, height=0.8, color=ROPE_COLOUR, lw=0, zorder=0)
    else:
        ax.axvspan(rope[0], rope[1], color=ROPE_COLOUR, lw=0, zorder=0)
    return True


def legend_above(fig: Figure, handles, title: str | None = None, ncols: int | None = None):
    """A legend above the axes, left-aligned (nothing without handles)."""
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
    """Level names as y tick labels, no left spine, half a row of room above and below."""
    ax.set_yticks(y, labels)
    ax.tick_params(axis="y", length=0, pad=3)
    ax.spines["left"].set_visible(False)
    ax.set_ylim(min(y) - 0.7, max(y) + 0.7)


def right_column(ax, y, probabilities, header: str) -> None:
    """Probabilities printed in a column right of the axes, one per level, under a header."""
    trans = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
    style = {"transform": trans, "ha": "left", "fontsize": 6.5, "color": "#333333"}
    for yi, p in zip(y, probabilities, strict=True):
        ax.text(1.02, yi, p_text(p), va="center", **style)
    ax.text(1.02, len(y) - 0.35, header, va="bottom", parse_math=True, **style)


def p_text(p: float) -> str:
    """A probability in two digits without the leading zero ("<.01" and ">.99" at the ends)."""
    if p is None or not np.isfinite(p):
        return ""
    if p < 0.01:
        return "<.01"
    if p > 0.99:
        return ">.99"
    return f"{p:.2f}".replace("0.", ".", 1)
