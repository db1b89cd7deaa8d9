"""Names are data, never paths, markup or formulas.

A factor, term or level name comes from the user's data and may hold anything: spaces, ``/``,
``..``, ``$``, NUL, control characters, newlines, emoji, 300 characters. Three functions keep
such a name harmless wherever it goes:

* :func:`safe_name` turns it into a file name, LaTeX label and HTML id: a single safe path
  component, the same for the same name, different for different names;
* :func:`visible` shows it in text meant for a reader (LaTeX, HTML, SVG, the terminal) with
  its control characters written out the way Python writes them (``\\x07``, ``\\n``);
* :func:`neutralise_text` / :func:`neutralise_frame` keep a spreadsheet from running a CSV
  cell as a formula (every CSV biasstats writes goes through
  :func:`biasstats.io.write_csv_atomic`).

The real name stays in the data (tables, CSV, Parquet, NetCDF), captions and sentences.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import polars as pl

__all__ = ["HASH_CHARS", "neutralise_frame", "neutralise_text", "safe_name", "safe_stem",
           "visible"]

# ----------------------------------------------------------------------------- file names
# A name kept as it is: lower case (two names differing only in case would be one file on a
# case-insensitive file system), ASCII letters, digits and single "_" (never "-": every other
# name gets one, so the two kinds never meet).
_PLAIN = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_PLAIN_MAX = 64
# device names Windows reserves whatever the extension
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                       *(f"lpt{i}" for i in range(10))})
_SLUG_MAX = 40
HASH_CHARS = 10  # hex digits of SHA-256: 40 bits


def safe_name(name: str) -> str:
    """A safe single path component, LaTeX label and HTML id for ``name``.

    A plain lower-case identifier (``llm``, ``cond_llm``; letters, digits and single
    underscores, at most 64 characters) is itself. Any other name is a slug of its ASCII
    letters and digits (at most 40 characters; ``x`` if none) and the first ten hex digits of
    the SHA-256 of the whole name, joined by ``-``: ``prompt style`` → ``prompt-style-…``,
    ``cond:llm`` → ``cond-llm-…``, ``a/../../tmp/x`` → ``a-tmp-x-…``.

    The result holds only ``[a-z0-9_-]``, starts with a letter or digit and has at most 64
    characters. Different names give different results: plain names never hold ``-`` and
    every other result does, and two other names share a result only if their hashes do
    (the report's file names are checked for that too, see
    :class:`biasstats.report.analysis._Artifacts`).
    """
    name = str(name)
    if len(name) <= _PLAIN_MAX and _PLAIN.fullmatch(name) and name not in _RESERVED:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:_SLUG_MAX].strip("-")
    return f"{slug or 'x'}-{digest}"


# what safe_name gives, and stems built of its results ("ppc_" + safe_name(term), "fig-" + ...)
_STEM = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")


def safe_stem(stem: str) -> str:
    """``stem`` if it is already a safe file name stem or id (``[a-z0-9_-]``, starting with a
    letter or digit, at most 128 characters: ``"ppc_" + safe_name(term)``), else
    :func:`safe_name` of it. What a writer of a file or an id applies to the name it is
    given, so that a caller passing a raw name still gets a safe one."""
    stem = str(stem)
    return stem if _STEM.fullmatch(stem) else safe_name(stem)


# ----------------------------------------------------------------------------- display
# Characters that would act instead of show: C0 and C1 controls and DEL (a bell, a terminal
# escape, a newline that ends a LaTeX paragraph, NUL; XML forbids most of them, so an SVG
# holding one is not well-formed), the line and paragraph separators, the bidirectional
# overrides and marks (text that reads differently from what it is), the byte-order mark,
# and code points that are not characters (lone surrogates, U+FFFE, U+FFFF).
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
                     "\ufeff\ufffe\uffff\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _show(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text, keep: str = "") -> str:
    """``text`` with every control character (and the other characters of ``_HIDDEN``)
    written out as Python writes it in a string literal: ``\\n``, ``\\t``, ``\\r``,
    ``\\x07``, ``\\x1b``, ``\\x00``, ``\\u202e``. Characters in ``keep`` (e.g. ``"\\n"`` for
    multi-line terminal output) stay. Text without such characters is returned unchanged."""
    s = str(text)
    if not _HIDDEN.search(s):
        return s
    return _HIDDEN.sub(lambda m: m.group(0) if m.group(0) in keep else _show(m.group(0)), s)


# ----------------------------------------------------------------------------- CSV cells
# A cell starting with one of these is run as a formula by spreadsheets (OWASP, "CSV
# injection"); a leading single quote makes it text. Numbers ("-0.5") are left alone.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise_text(value):
    """``value`` with a leading ``'`` if it is text a spreadsheet would treat as a formula."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value  # a plain number, e.g. "-0.5"


def neutralise_frame(df):
    """A polars DataFrame's text columns (and column names) with :func:`neutralise_text`
    applied to every cell: what a CSV of it must hold."""

    text = [c for c, t in df.schema.items() if t in (pl.Utf8, pl.Categorical) or
            isinstance(t, pl.Enum)]
    out = df.with_columns(pl.col(c).cast(pl.Utf8).map_elements(
        neutralise_text, return_dtype=pl.Utf8) for c in text)
    return out.rename({c: neutralise_text(c) for c in out.columns if neutralise_text(c) != c})
