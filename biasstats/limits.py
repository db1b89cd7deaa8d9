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
"""

from __future__ import annotations

from dataclasses import dataclass

from biasstats.errors import SpecError

__all__ = ["Limits", "FORMULA", "PRIOR", "SQL", "DERIVED", "check_expression", "nesting_depth",
           "MAX_DERIVED_ESTIMANDS",
           "MAX_DERIVE", "MAX_FILTERS", "MAX_JSON_DEPTH"]


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
