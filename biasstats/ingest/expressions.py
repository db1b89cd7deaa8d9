"""The ``[data]`` expressions: ``derive`` (new columns), ``filters`` and ``exclude`` (rows
booked as excluded, with the condition as the reason), each a SQL expression checked by the
whitelist (:mod:`biasstats.spec.sql`) before polars sees it, and polars' errors worded in the
user's terms."""

from __future__ import annotations

import re

import polars as pl

from biasstats.errors import SpecError, first_line
from biasstats.ingest import rules
from biasstats.ingest.schema import list_columns
from biasstats.spec import Spec
from biasstats.spec.sql import check_sql


def _expr(spec: Spec, key: str, text: str, table):
    """Parse a polars SQL expression and check the columns it references exist (a quoted
    nested path, e.g. ``"choices[0].text"``, is added as a column first). ``table`` is a
    DataFrame or a LazyFrame; returns (expression, table)."""
    check_sql(text, f"{spec.path}: [data] {key}")  # never hand polars an unchecked string
    try:
        expr = pl.sql_expr(text)
        names = expr.meta.root_names()
    except Exception as e:  # polars raises several types for SQL syntax problems
        raise SpecError(
            f"{spec.path}: [data] {key} '{text}' is not a valid SQL expression ({first_line(e)})"
        ) from None
    table = rules.materialize(table, names, f"{spec.path}: [data] {key}")
    columns = [c for c in rules.names(table) if not c.startswith("_")]
    missing = [n for n in names if n not in columns]
    if missing:
        raise SpecError(
            f"{spec.path}: [data] {key} '{text}' references column {missing[0]!r}, "
            f"which is not in the data (columns: {list_columns(columns)}){_quote_hint(text, missing[0])}"
        )
    return expr, table


def _quote_hint(text: str, name: str) -> str:
    """For a missing column written where a value goes (after a comparison, bare or in
    double quotes): how SQL writes text."""
    if not re.search(rf'(=|<>|<|>)\s*"?{re.escape(name)}\b', text):
        return ""
    return f"; to compare with the text {name}, write it in single quotes: '{name}'"


def _dtype(spec: Spec, key: str, text: str, table, expr: pl.Expr) -> pl.DataType:
    """The dtype ``expr`` gives on ``table`` (resolved without reading data)."""
    try:
        return table.lazy().select(expr.alias("_k")).collect_schema()["_k"]
    except pl.exceptions.PolarsError as e:
        raise _failed(spec, key, text, e, table) from None


def _failed(spec: Spec, key: str, text: str, e: Exception, table=None) -> SpecError:
    """The error for a ``[data]`` expression that parsed but failed on the data, in the
    user's terms where polars' own words are about its internals."""
    why = first_line(e)
    if "cannot compare string with numeric type" in why and table is not None:
        why = _compare_hint(text, table) or why
    return SpecError(f"{spec.path}: [data] {key} '{text}' failed on the data ({why})")


def _compare_hint(text: str, table) -> str | None:
    """A text column compared with a number, or a number column with text: which, and how
    to write it."""
    try:
        names = pl.sql_expr(text).meta.root_names()
        schema = table.collect_schema()
    except Exception:  # only a better wording is at stake
        return None
    texts = [n for n in names if n in schema and schema[n] == pl.Utf8]
    numbers = [n for n in names if n in schema and schema[n].is_numeric()]
    if texts:
        c = texts[0]
        return (f"column '{c}' holds text and is compared with a number: write the number in "
                f"single quotes, or CAST({c} AS DOUBLE) to compare numbers")
    if numbers:
        c = numbers[0]
        return (f"column '{c}' holds numbers ({schema[c]}) and is compared with text: write "
                f"the value without quotes")
    return None


def _derive(spec: Spec, table):
    for name, text in spec.data.derive.items():
        expr, table = _expr(spec, f"derive.{name}", text, table)
        _dtype(spec, f"derive.{name}", text, table, expr)
        try:
            table = table.with_columns(expr.alias(name))
        except pl.exceptions.PolarsError as e:
            raise _failed(spec, f"derive.{name}", text, e, table) from None
    return table


NOT_OK = ("refused", "unparseable")


def _conditions(spec: Spec) -> list[tuple[str, str, bool]]:
    """(key, SQL text, is an exclusion) of every ``[data] filters`` entry, then every
    ``[data] exclude`` entry: the order they are applied and numbered in (``_kept<i>``)."""
    d = spec.data
    return ([(f"filters[{i}]", t, False) for i, t in enumerate(d.filters)]
            + [(f"exclude[{i}]", t, True) for i, t in enumerate(d.exclude)])


def _filter(spec: Spec, table):
    """Mark ok rows failing a filter, or matching an exclusion, as excluded (the first such
    condition is the reason: ``filter: <text>`` / ``exclude: <text>``).

    A row already ``refused`` or ``unparseable`` (or a log's ``error`` / ``superseded``) keeps
    that status (the first non-ok status stands); ``_kept<i>`` columns flag refused and
    unparseable rows per condition for :func:`_filter_notes`."""
    for i, (key, text, excludes) in enumerate(_conditions(spec)):
        expr, table = _expr(spec, key, text, table)
        dtype = _dtype(spec, key, text, table, expr)
        if dtype not in (pl.Boolean, pl.Null):
            raise SpecError(
                f"{spec.path}: [data] {key} '{text}' is not a yes/no expression (it gives "
                f"{dtype} values; write a comparison, e.g. 'temp = 0')"
            )
        holds = expr.fill_null(False).cast(pl.Boolean)
        hits = holds if excludes else ~holds
        drop = hits & (pl.col("status") == "ok")
        why = f"exclude: {text}" if excludes else f"filter: {text}"
        table = table.with_columns(
            (hits & pl.col("status").is_in(NOT_OK)).alias(f"_kept{i}"),
            pl.when(drop).then(pl.lit("excluded")).otherwise(pl.col("status")).alias("status"),
            pl.when(drop).then(pl.lit(why)).otherwise(pl.col("reason")).alias("reason"),
        )
    # Outcomes exist only for ok rows (the canonical-table contract).
    names = rules.names(table)
    outcomes = {c for c in ("congruent", spec.data.outcome) if c in names}
    return table.with_columns(
        pl.when(pl.col("status") == "ok").then(pl.col(c)).otherwise(None).alias(c) for c in outcomes
    )


def _filter_notes(spec: Spec, table: pl.DataFrame) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Ledger notes: per condition, how many refused / unparseable rows also fail it."""
    kept = {i: int(table[f"_kept{i}"].sum()) for i in range(len(_conditions(spec)))}
    return table.drop([f"_kept{i}" for i in kept]), _kept_notes(spec, kept)


def _kept_notes(spec: Spec, kept: dict[int, int]) -> tuple[str, ...]:
    """One note per condition that refused / unparseable rows also fail (their status
    stands)."""
    conds = _conditions(spec)
    return tuple(
        f"{conds[i][0]} '{conds[i][1]}': {n} row(s) already refused or unparseable "
        f"also {'match' if conds[i][2] else 'fail'} it; their first status stands"
        for i, n in kept.items() if n
    )
