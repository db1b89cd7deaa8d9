"""One figure style for every biasstats figure: journal widths, colour-blind-safe colours.

Use :func:`paper_style` as a context manager around figure creation *and* saving; it never
changes the global ``matplotlib.rcParams`` beyond the ``with`` block. :func:`save_figure`
writes PDF, SVG and PNG (300 dpi) atomically and deterministically: the same figure gives
byte-identical SVG and PDF files (fixed SVG hash salt, no creation dates in the metadata).

Widths follow PNAS / Nature: single column ≈ 3.5 in (89 mm), double column ≈ 7.1 in (180 mm).
Text is 7–9 pt and stays text in SVG (``svg.fonttype = "none"``) and PDF (TrueType, type 42),
so figures remain editable and searchable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from biasstats.io import atomic_path, make_folder
from biasstats.names import safe_stem, visible

SINGLE_COLUMN = 3.5  # inches (89 mm)
DOUBLE_COLUMN = 7.1  # inches (180 mm)
PNG_DPI = 300

# Okabe & Ito (2008), "Color universal design": distinguishable under all common colour-vision
# deficiencies. Order: the most contrasting colours first; black last.
OKABE_ITO: dict[str, str] = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
CATEGORICAL: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["orange"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["yellow"],
    OKABE_ITO["black"],
)
GREY = "#7F7F7F"
LIGHT_GREY = "#E6E6E6"
ROPE_COLOUR = "#DDDDDD"

# Diverging map for signed effects, always drawn with limits symmetric about the neutral value.
DIVERGING_CMAP = "RdBu_r"

# How each verdict is drawn: colour-blind safe *and* distinguishable in greyscale by marker.
# A study's own words for these verdicts (registry.Vocabulary.verdicts) are drawn as the
# verdict they stand for (biasstats.report.figures.kit.verdict_styles).
VERDICT_STYLE: dict[str, dict] = {
    "undecided": {"marker": "D", "color": GREY, "filled": False},
    "outside ROPE": {"marker": "o", "color": OKABE_ITO["vermillion"], "filled": True},
    "inside ROPE": {"marker": "s", "color": OKABE_ITO["blue"], "filled": False},
    # no ROPE declared: a plain estimate (no legend entry)
    "estimate": {"marker": "o", "color": OKABE_ITO["blue"], "filled": True},
}

# The SVG hash salt makes clip-path / marker ids reproducible run to run.
SVG_HASH_SALT = "biasstats"

# Journals ask for Arial / Helvetica; where neither is installed, DejaVu Sans (shipped with
# matplotlib, so present everywhere) keeps the output identical from machine to machine.
_SANS_PREFERENCE = ("Arial", "Helvetica", "DejaVu Sans")


@lru_cache(maxsize=1)
def _sans_fonts() -> tuple[str, ...]:
    """The preferred sans-serif families installed here (avoids matplotlib's findfont warnings)."""
    # heavy libraries load on first use, not on import
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = tuple(f for f in _SANS_PREFERENCE if f in installed)
    return found or ("DejaVu Sans",)


def rc_params() -> dict:
    """The rcParams of the biasstats paper style (a fresh dict each call)."""
    return {
        "figure.dpi": 100,
        "savefig.dpi": PNG_DPI,
        "savefig.bbox": None,  # save_figure computes a width-preserving tight box itself
        "savefig.pad_inches": 0.02,
        "savefig.transparent": False,
        "savefig.facecolor": "white",
        "figure.facecolor": "white",
        "font.family": "sans-serif",
        "font.sans-serif": list(_sans_fonts()),
        "font.size": 7.5,
        "axes.titlesize": 8.5,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.labelsize": 8,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 7,
        "legend.title_fontsize": 7.5,
        "legend.frameon": False,
        "legend.handlelength": 1.2,
        "legend.borderaxespad": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.linewidth": 0.6,
        "axes.edgecolor": "#333333",
        "axes.labelcolor": "#111111",
        "axes.grid": False,
        "axes.axisbelow": True,
        "axes.prop_cycle": mpl.cycler(color=list(CATEGORICAL)),
        "xtick.major.width": 0.6,
        "ytick.major.width": 0.6,
        "xtick.major.size": 2.5,
        "ytick.major.size": 2.5,
        "xtick.color": "#333333",
        "ytick.color": "#333333",
        "lines.linewidth": 1.0,
        "lines.markersize": 3.5,
        "patch.linewidth": 0.6,
        "axes.unicode_minus": True,
        # level names are data: "$5 and $10" or "gpt-$\\foo{$" must print literally, never
        # as mathtext (a figure that needs math passes parse_math=True to that one text)
        "text.parse_math": False,
        "image.cmap": DIVERGING_CMAP,
        "svg.fonttype": "none",
        "svg.hashsalt": SVG_HASH_SALT,
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "pdf.compression": 6,
        "figure.constrained_layout.h_pad": 0.02,
        "figure.constrained_layout.w_pad": 0.02,
    }


@contextmanager
def paper_style() -> Iterator[None]:
    """Apply the biasstats style inside the ``with`` block only."""
    with mpl.rc_context(rc_params()):
        yield


def new_figure(width: float = SINGLE_COLUMN, height: float = 2.4) -> Figure:
    """A constrained-layout Figure (not registered with pyplot, so nothing leaks)."""
    return Figure(figsize=(width, height), layout="constrained")


# Metadata that would otherwise carry the current date (and so differ run to run).
_METADATA = {
    "svg": {"Date": None, "Creator": "biasstats (matplotlib)"},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "biasstats (matplotlib)"},
    "png": {"Software": "biasstats (matplotlib)"},
}


def _width_preserving_tight_bbox(fig: Figure) -> Bbox:
    """Tight in height, exactly the figure's width: a 3.5 in figure stays 3.5 in wide."""
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    tight = fig.get_tightbbox(renderer)
    width, height = fig.get_size_inches()
    pad = mpl.rcParams["savefig.pad_inches"]
    y0 = max(0.0, tight.y0 - pad)
    y1 = min(height, tight.y1 + pad)
    if y1 - y0 < 0.1:  # an empty figure: keep it whole
        y0, y1 = 0.0, height
    return Bbox.from_extents(0.0, y0, width, y1)


def save_figure(
    fig: Figure,
    folder: str | os.PathLike,
    name: str,
    formats: tuple[str, ...] = ("pdf", "svg", "png"),
    dpi: int = PNG_DPI,
) -> dict[str, Path]:
    """Write ``folder/name.{pdf,svg,png}`` atomically; return ``{"pdf": path, ...}``.

    Vertical white space is trimmed (tight bounding box) while the width stays the figure's
    own, so journal widths are exact. The same figure gives byte-identical PDF and SVG files.
    Every text of the figure (tick labels, titles, legends, annotations) is shown with its
    control characters written out (:func:`visible_texts`), so a level name holding one
    reads ``\\x07`` and the SVG stays well-formed XML. ``name`` is the file name stem; one
    that is not a safe stem is made one (:func:`biasstats.names.safe_stem`).
    """
    folder = make_folder(folder)
    name = safe_stem(name)
    out: dict[str, Path] = {}
    visible_texts(fig)
    with paper_style():
        # Lay the figure out once, then freeze it: every format gets the same geometry, and
        # constrained layout is not re-solved for each file (it dominates the saving time).
        engine = fig.get_layout_engine()
        bbox = _width_preserving_tight_bbox(fig)
        fig.set_layout_engine("none")
        try:
            _save_all(fig, folder, name, formats, dpi, bbox, out)
        finally:
            fig.set_layout_engine(engine)
    return out


def visible_texts(fig: Figure) -> None:
    """Write out the control characters of every text of ``fig`` (:func:`biasstats.names.visible`):
    tick labels (in the axis' formatter too, which re-sets them at each draw: the labels given
    to ``set_ticks``), titles, axis labels, legends and annotations. Texts without any stay as
    they are."""
    # heavy libraries load on first use, not on import
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter, FuncFormatter

    def shown(func):
        return lambda x, pos=None: visible(func(x, pos))

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for fmt in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if isinstance(fmt, FixedFormatter):
                    fmt.seq = [visible(t) for t in fmt.seq]
                elif isinstance(fmt, FuncFormatter) and not getattr(fmt, "_visible", False):
                    fmt.func, fmt._visible = shown(fmt.func), True
    for t in fig.findobj(Text):
        text = t.get_text()
        shown = visible(text)
        if shown != text:
            t.set_text(shown)


def _save_all(
    fig: Figure, folder: Path, name: str, formats, dpi: int, bbox: Bbox, out: dict
) -> None:
    for fmt in formats:
        if fmt not in _METADATA:
            raise ValueError(f"unsupported figure format {fmt!r}: use pdf, svg or png")
    for fmt in formats:
        target = folder / f"{name}.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches=bbox, metadata=_METADATA[fmt])
        out[fmt] = target
