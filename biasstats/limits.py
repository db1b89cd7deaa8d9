"""Size and depth limits for every expression a spec may hold, checked before any parser.

A spec is data: its formulas, priors, ``[model.aux]`` formulas, ``[data]`` derive / filter
expressions and ``[effects.derived]`` expressions are parsed by recursive parsers (ours,
patsy's, sqlglot's, polars' SQL parser, Python's ``ast``),
and a very long or deeply nested string would exhaust Python's recursion (a RecursionError
traceback) or crash polars' Rust parser (a segfault). :func:`check_expression` refuses such a
string first, with one line naming what is too large, so no parser ever sees it. The limits are
far above anything a real analysis writes (the largest shipped formula has 64 characters and
depth 1) and far below what breaks a parser (patsy fails near 500 terms, polars' SQL parser
near 20,000).

It also holds the limits on what a source may name: at most :data:`MAX_FILES` files by
default (``[data] max_files``, checked while the files are listed, before any is read), and
only regular files (:func:`input_kind`: a FIFO, socket, device or kernel pseudo-file is
named by its kind and never opened; opening a FIFO blocks until something writes to it).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from biasstats.errors import SpecError

__all__ = ["Limits", "FORMULA", "PRIOR", "SQL", "DERIVED", "check_expression", "nesting_depth",
           "MAX_DERIVED_ESTIMANDS", "MAX_DERIVE", "MAX_FILTERS", "MAX_JSON_DEPTH", "MAX_FILES",
           "MAX_FILES_CEILING", "input_kind", "MAX_MAGNITUDE", "MAX_SWEEP",
           "MAX_SWEEP_VARIABLES"]


@dataclass(frozen=True)
class Limits:
    """``chars``: length; ``depth``: nesting (brackets and runs of unary signs);
    ``terms``: top-level operands (``+``-separated terms of a formula, tokens of an
    expression)."""

    what: str
    chars: int
    depth: int
    terms: int


FORMULA = Limits("formula", chars=5_000, depth=24, terms=200)
PRIOR = Limits("prior", chars=200, depth=4, terms=24)
SQL = Limits("expression", chars=10_000, depth=24, terms=1_000)
DERIVED = Limits("expression", chars=2_000, depth=16, terms=200)  # [effects.derived] expr
MAX_DERIVED_ESTIMANDS = 50  # [effects.derived] tables
MAX_DERIVE = 200    # [data.derive] entries
MAX_FILTERS = 200   # [data] filters
MAX_JSON_DEPTH = 64  # nesting of objects/arrays in a JSON source record
# the largest magnitude of a number a model sees: 2^53, the largest whole number a float64
# holds exactly. Beyond it counts are no longer exact, and the sampler's default scales
# (priors from the data's spread, float32 draws in posterior.nc) fail: an outcome of 1e308
# made the default prior Exponential(scale=nan), 1e38 overflowed the stored draws
MAX_MAGNITUDE = 2.0 ** 53
MAX_SWEEP = 10_000  # analyses one [sweep] expands into (the product of its variables)
MAX_SWEEP_VARIABLES = 8  # variables of one [sweep]
MAX_FILES = 20_000  # files one [data] source may name (default of [data] max_files)
MAX_FILES_CEILING = 10_000_000  # the most [data] max_files may be set to

# kernel file systems whose "regular" files are generated on read (sizes of 0, contents
# that change between reads, some that block or never end)
_PSEUDO_ROOTS = ("/proc", "/sys")


def input_kind(path: str | os.PathLike,
               real: str | None = None) -> tuple[str, os.stat_result | None]:
    """What ``path`` is, from ``stat`` alone (nothing is opened): ``("file", st)`` for a
    regular file, ``("folder", st)``, ``("missing", None)``, else a phrase naming the kind
    (``"a FIFO (named pipe)"``, ``"a socket"``, ``"a character device"``, ``"a block
    device"``, ``"a broken symbolic link"``, ``"a pseudo-file of the kernel (/proc)"``) and
    the stat result when there is one. ``real``: ``os.path.realpath(path)`` when the caller
    has it already."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ("a broken symbolic link" if os.path.islink(path) else "missing"), None
    except OSError as e:  # a loop of links, a name too long, no permission to look
        return f"not readable ({os.strerror(e.errno) if e.errno else e})", None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "folder", st
    if stat.S_ISREG(mode):
        real = real or os.path.realpath(path)
        if any(real == r or real.startswith(r + "/") for r in _PSEUDO_ROOTS):
            root = next(r for r in _PSEUDO_ROOTS if real == r or real.startswith(r + "/"))
            return f"a pseudo-file of the kernel ({root})", st
        return "file", st
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind, st
    return "not a regular file", st  # pragma: no cover - door files and the like


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``text``: brackets ``( [ {`` outside quotes, plus runs of
    prefix signs (``- - - x`` nests three deep in every recursive parser)."""
    depth = best = 0
    quote = ""
    run = 0          # consecutive prefix signs at the current position
    prev = "("       # the last non-space character outside quotes ("(": an operand may follow)
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
                prev = "x"
            continue
        if ch in "'\"`":
            quote = ch
            run = 0
            continue
        if ch.isspace():
            continue
        if ch in "([{":
            depth += 1
            run = 0
        elif ch in ")]}":
            depth = max(depth - 1, 0)
            run = 0
        elif ch in "+-~!" and prev in "([{,=<>+-*/%^~!|&:":
            run += 1
            best = max(best, depth + run)
            prev = ch
            continue
        else:
            run = 0
        best = max(best, depth)
        prev = ch
    return best


def _operands(text: str) -> int:
    """A cheap count of operands: runs of word characters and quoted strings (an upper
    bound on the leaves any parser builds from ``text``)."""
    n, in_word, quote = 0, False, ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
            n += 1
            in_word = False
        elif ch.isalnum() or ch in "_.":
            if not in_word:
                n += 1
            in_word = True
        else:
            in_word = False
    return n


def check_expression(text: str, limits: Limits, where: str) -> str:
    """Return ``text`` if it is within ``limits``; else raise a one-line SpecError naming
    ``where`` (e.g. ``[data] derive.variant``) and the limit passed. Runs in linear time
    with no recursion, before any parser sees the text."""
    if not isinstance(text, str):
        return text
    at = f"{where}: " if where else ""
    if len(text) > limits.chars:
        raise SpecError(f"{at}the {limits.what} is {len(text):,} characters long, above "
                        f"the limit of {limits.chars:,}")
    if (d := nesting_depth(text)) > limits.depth:
        raise SpecError(f"{at}the {limits.what} nests {d} levels deep (brackets and "
                        f"prefix signs), above the limit of {limits.depth}")
    if (n := _operands(text)) > limits.terms:
        raise SpecError(f"{at}the {limits.what} has {n} operands, above the limit of "
                        f"{limits.terms}")
    return text
