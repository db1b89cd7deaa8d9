"""Paper-ready tables: CSV for machines, booktabs LaTeX for the paper, one call for both.

:func:`write_table` writes ``name.csv`` (the data as given, full precision, so it round-trips;
only text cells that a spreadsheet would run as a formula are neutralised, see
:func:`neutralise_text`) and ``name.tex`` (formatted: fixed decimals, ``[lo, hi]`` intervals, LaTeX special characters
escaped, ``\\toprule``/``\\midrule``/``\\bottomrule``, numbers right-aligned), both atomically.
:func:`format_effects_table` turns the long effects table into the reader-facing table of one
term (level, mean, HDI, direction probability, verdict).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import polars as pl

from biasstats.io import write_csv_atomic, write_text_atomic
from biasstats.names import neutralise_frame, neutralise_text, visible

__all__ = [
    "format_effects_table",
    "format_interval",
    "format_number",
    "interval_columns",
    "latex_escape",
    "neutralise_frame",
    "neutralise_text",
    "display_table",
    "to_latex",
    "write_table",
]

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "\u2212": r"$-$",  # typographic minus
    "\u2026": r"\ldots{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (``\\ & % $ # _ { } ~ ^ < >``) in plain text, after
    writing out its control characters (:func:`biasstats.names.visible`: a newline inside a
    level is ``\\n``, so a blank line cannot end the ``tabular``'s paragraph)."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], visible(text))


def _is_p_column(name: str) -> bool:
    n = name.strip().lower()
    return n in {"p", "p_value", "p-value", "p_best", "p_positive"} or n.startswith("p(")


def format_number(x, digits: int = 2, *, p_value: bool = False, minus: str = "\u2212") -> str:
    """Format a number for a reader: fixed decimals, typographic minus, "" for missing.

    Integers stay integers. With ``p_value=True`` values below 0.001 read "<0.001" and values
    above 0.999 read ">0.999".
    """
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        s = str(x)
    else:
        x = float(x)
        if math.isnan(x):
            return ""
        if math.isinf(x):
            s = "inf" if x > 0 else "-inf"
        elif p_value and 0 <= x < 0.001:
            return "<0.001"
        elif p_value and 0.999 < x <= 1:
            return ">0.999"
        else:
            s = f"{x:.{max(digits, 3) if p_value else digits}f}"
            if float(s) == 0:
                s = s.lstrip("-")  # no "-0.00"
    return s.replace("-", minus)


def format_interval(lo, hi, digits: int = 2, *, minus: str = "\u2212") -> str:
    """``[lo, hi]`` with fixed decimals ("" when either end is missing)."""
    a, b = format_number(lo, digits, minus=minus), format_number(hi, digits, minus=minus)
    if not a or not b:
        return ""
    return f"[{a}, {b}]"


def as_frame(df) -> pl.DataFrame:
    if isinstance(df, pl.DataFrame):
        return df
    if hasattr(df, "columns") and hasattr(df, "to_dict"):
        return pl.from_pandas(df)
    raise TypeError(f"expected a polars or pandas DataFrame, got {type(df).__name__}")


def select_effects(effects, term: str, scale: str) -> pl.DataFrame:
    """The rows of one term on one scale of an effects table (one-line error naming what is
    available when there are none)."""
    df = as_frame(effects)
    missing = [c for c in ("term", "level", "scale", "mean", "hdi_low", "hdi_high")
               if c not in df.columns]
    if missing:
        raise ValueError(f"effects table lacks column(s) {', '.join(missing)}")
    out = df.filter((pl.col("term") == term) & (pl.col("scale") == scale))
    if out.height == 0:
        have = sorted({f"{t}/{s}" for t, s in df.select("term", "scale").unique().iter_rows()})
        raise ValueError(
            f"no effects for term {term!r} on scale {scale!r}; available: {', '.join(have) or 'none'}"
        )
    return out


def hdi_label(df: pl.DataFrame) -> str:
    """"95% HDI" when the table holds one HDI probability, else "HDI"."""
    if "hdi_prob" in df.columns:
        probs = df["hdi_prob"].drop_nulls().unique().to_list()
        if len(probs) == 1:
            return f"{100 * float(probs[0]):g}% HDI"
    return "HDI"


def interval_columns(columns: list[str]) -> dict[str, tuple[str, str]]:
    """Pairs ``<x>_low``/``<x>_high`` (or ``_lo``/``_hi``) → ``{"<x>": (low, high)}``."""
    out: dict[str, tuple[str, str]] = {}
    for c in columns:
        for lo_sfx, hi_sfx in (("_low", "_high"), ("_lo", "_hi")):
            if c.endswith(lo_sfx):
                stem = c[: -len(lo_sfx)]
                if stem + hi_sfx in columns:
                    out[stem] = (c, stem + hi_sfx)
    return out


def _display_cells(
    df: pl.DataFrame,
    digits: int,
    intervals: dict[str, tuple[str, str]],
    minus: str,
    column_digits: dict[str, int] | None = None,
) -> tuple[list[str], list[list[str]], list[str]]:
    """(headers, rows of strings, alignments "l"/"r") after merging interval pairs."""
    used = {c for pair in intervals.values() for c in pair}
    order: list[tuple[str, str | tuple[str, str]]] = []
    for c in df.columns:
        if c in used:
            for name, pair in intervals.items():
                if pair[0] == c:
                    order.append((name, pair))
            continue
        order.append((c, c))
    headers = [name for name, _ in order]
    align = []
    columns: list[list[str]] = []
    per_column = column_digits or {}
    for name, src in order:
        d = per_column.get(name, digits)
        if isinstance(src, tuple):
            lo, hi = df[src[0]].to_list(), df[src[1]].to_list()
            columns.append(
                [format_interval(a, b, d, minus=minus) for a, b in zip(lo, hi, strict=True)]
            )
            align.append("r")
            continue
        s = df[src]
        if s.dtype.is_numeric() and s.dtype != pl.Boolean:
            p = _is_p_column(src)
            columns.append([format_number(v, d, p_value=p, minus=minus) for v in s.to_list()])
            align.append("r")
        else:
            vals = s.to_list()
            columns.append(
                [
                    "" if v is None else format_number(v) if isinstance(v, bool) else str(v)
                    for v in vals
                ]
            )
            looks_numeric = all(_numeric_text(v) for v in columns[-1] if v)
            align.append("r" if looks_numeric and any(columns[-1]) else "l")
    rows = [list(r) for r in zip(*columns, strict=True)] if columns else []
    return headers, rows, align


_NUMERIC_TEXT = re.compile(r"^[\[\(]?[<>]?[\u2212\-]?\d[\d.,\u2212\- e%]*[\]\)]?$")


def _numeric_text(s: str) -> bool:
    return bool(_NUMERIC_TEXT.match(s.strip()))


def display_table(
    df,
    float_digits: int = 2,
    intervals: str | dict | None = "auto",
    column_digits: dict[str, int] | None = None,
) -> tuple[list[str], list[list[str]], list[str]]:
    """(headers, rows, alignments "l"/"r") for HTML: formatted strings, intervals merged."""
    df = as_frame(df)
    pairs = _resolve_intervals(df, intervals)
    return _display_cells(df, float_digits, pairs, "\u2212", column_digits)


def _resolve_intervals(df: pl.DataFrame, intervals) -> dict[str, tuple[str, str]]:
    if intervals == "auto":
        return interval_columns(df.columns)
    if not intervals:
        return {}
    for name, (lo, hi) in intervals.items():
        for c in (lo, hi):
            if c not in df.columns:
                raise ValueError(f"interval {name!r}: no column {c!r} in the table")
    return dict(intervals)


_LABEL_OK = re.compile(r"^[A-Za-z0-9:_\-.]+$")


def to_latex(
    df,
    caption: str,
    label: str,
    float_digits: int = 2,
    *,
    intervals: str | dict | None = "auto",
    escape_caption: bool = True,
    column_digits: dict[str, int] | None = None,
) -> str:
    """A booktabs ``table`` environment for ``df`` (see :func:`write_table`)."""
    df = as_frame(df)  # the real values: a LaTeX cell is never run as a formula
    if not _LABEL_OK.fullmatch(label):
        raise ValueError(f"table label {label!r} may only hold letters, digits and : _ - .")
    pairs = _resolve_intervals(df, intervals)
    headers, rows, align = _display_cells(df, float_digits, pairs, "\u2212", column_digits)
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\caption{" + (latex_escape(caption) if escape_caption else visible(caption)) + "}",
        r"\label{" + label + "}",
        r"\begin{tabular}{" + "".join(align) + "}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in headers) + r" \\",
        r"\midrule",
    ]
    for r in rows:
        lines.append(" & ".join(latex_escape(c) for c in r) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    df,
    folder: str | os.PathLike,
    name: str,
    caption: str,
    label: str,
    float_digits: int = 2,
    *,
    intervals: str | dict | None = "auto",
    escape_caption: bool = True,
    column_digits: dict[str, int] | None = None,
) -> dict[str, Path]:
    """Write ``folder/name.csv`` and ``folder/name.tex`` atomically; return their paths.

    The CSV holds ``df`` as given (full precision). The LaTeX table (needs ``booktabs``)
    formats floats to ``float_digits`` decimals (p-value columns to 3, with "<0.001"), merges
    each ``<x>_low``/``<x>_high`` column pair into one "[lo, hi]" column ``<x>`` (or the pairs
    given as ``intervals={"95% HDI": ("hdi_low", "hdi_high")}``; ``None`` to keep them),
    right-aligns numbers and escapes LaTeX special characters in headers, cells and caption.
    ``column_digits`` overrides the decimals per column (e.g. ``{"r_hat": 3, "ess_bulk": 0}``).
    """
    df = as_frame(df)
    folder = Path(folder)
    tex = to_latex(
        df, caption, label, float_digits, intervals=intervals, escape_caption=escape_caption,
        column_digits=column_digits,
    )
    csv_path = write_csv_atomic(folder / f"{name}.csv", df)
    tex_path = write_text_atomic(folder / f"{name}.tex", tex)
    return {"csv": csv_path, "tex": tex_path}


def format_effects_table(effects, term: str, scale: str, digits: int = 2, *,
                         p_label: str = "P(> no effect)") -> pl.DataFrame:
    """The reader-facing table of one term: Level, Mean, "95% HDI", ``p_label`` (the
    posterior probability above the scale's "no effect" value), Verdict, n.

    Rows are sorted by posterior mean, largest first. The HDI is a formatted "[lo, hi]" string
    (typographic minus); Mean and the probability stay numbers for :func:`write_table` to
    format.
    """
    sub = select_effects(effects, term, scale).sort("mean", descending=True)
    hdi_name = hdi_label(sub)
    cols = {
        "Level": sub["level"].cast(pl.Utf8),
        "Mean": sub["mean"].cast(pl.Float64),
        hdi_name: pl.Series(
            [
                format_interval(a, b, digits)
                for a, b in zip(sub["hdi_low"], sub["hdi_high"], strict=True)
            ],
            dtype=pl.Utf8,
        ),
    }
    if "p_positive" in sub.columns:
        cols[p_label] = sub["p_positive"].cast(pl.Float64)
    if "verdict" in sub.columns:
        cols["Verdict"] = sub["verdict"].cast(pl.Utf8)
    if "n_obs" in sub.columns:
        cols["n"] = sub["n_obs"].cast(pl.Int64)
    return pl.DataFrame(cols)
