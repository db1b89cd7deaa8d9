"""The ``tidy`` adapter: one row per trial, outcome already coded, columns named by the spec.

A third-party dataset in a tidy format needs no Python: ``[data.columns]`` maps source columns
onto canonical names, ``[data.derive]`` adds columns, ``[data] outcome`` names the outcome column
(default ``congruent``, which must be 0/1), and ``refusals`` / ``refusal_pattern`` /
``missing_outcome`` say which rows are refusals. Unmapped source columns are kept as they are.

Row status, in order of precedence: ``refused`` (a declared refusal value in the outcome or raw
column, or the raw text matches ``refusal_pattern``); empty outcome → ``missing_outcome``
(``unparseable`` by default); a value that is not a valid outcome → ``unparseable``; else ``ok``.
"""

from __future__ import annotations

import re

import polars as pl

from biasstats.errors import SpecError
from biasstats.ingest.schema import list_columns
from biasstats.spec import Spec

_TRUE = {"1", "1.0", "true"}
_FALSE = {"0", "0.0", "false"}


def apply_mapping(spec: Spec, raw: pl.DataFrame) -> pl.DataFrame:
    """Rename mapped source columns to their canonical names (checking they exist)."""
    cols = spec.data.columns
    for target, source in cols.items():
        if source not in raw.columns:
            raise SpecError(
                f"{spec.path}: [data.columns] {target} = \"{source}\": no column {source!r} "
                f"in the data (columns: {list_columns(raw.columns, 20)})"
            )
    clashes = [t for t, s in cols.items() if t in raw.columns and t != s and t not in cols.values()]
    keep = raw.drop(clashes) if clashes else raw
    return keep.rename({s: t for t, s in cols.items() if s != t})


def _outcome_value(outcome: str):
    """Expression turning the outcome column into Float64 (null when not a valid value)."""
    text = pl.col(outcome).cast(pl.Utf8).str.strip_chars().str.to_lowercase()
    if outcome == "congruent":
        return (
            pl.when(text.is_in(sorted(_TRUE)))
            .then(1.0)
            .when(text.is_in(sorted(_FALSE)))
            .then(0.0)
            .otherwise(None)
        )
    return pl.col(outcome).cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)


def classify(spec: Spec, table: pl.DataFrame) -> pl.DataFrame:
    """Add ``status``, ``reason`` and the cleaned outcome column to a mapped tidy table."""
    d = spec.data
    outcome = d.outcome
    if outcome not in table.columns:
        raise SpecError(
            f"{spec.path}: [data] outcome = \"{outcome}\": no such column after mapping "
            f"(map it in [data.columns], e.g. congruent = \"<source column>\"; "
            f"columns: {list_columns(table.columns, 20)})"
        )
    if d.refusal_pattern is not None:
        try:
            re.compile(d.refusal_pattern)
        except re.error as e:
            raise SpecError(f"{spec.path}: [data] refusal_pattern is not a valid regex ({e})") from None
    text = pl.col(outcome).cast(pl.Utf8).str.strip_chars()
    is_refusal_value = text.is_in(d.refusals) if d.refusals else pl.lit(False)
    if "raw" in table.columns and d.refusals:
        is_refusal_value = is_refusal_value | pl.col("raw").cast(pl.Utf8).str.strip_chars().is_in(
            d.refusals
        )
    if d.refusal_pattern is not None and "raw" in table.columns:
        is_refusal_text = pl.col("raw").cast(pl.Utf8).str.contains(d.refusal_pattern).fill_null(False)
    else:
        is_refusal_text = pl.lit(False)
    is_empty = pl.col(outcome).is_null() | (text == "") | (text.str.to_lowercase() == "nan")
    value = _outcome_value(outcome)
    expected = "0 or 1" if outcome == "congruent" else "a number"
    status = (
        pl.when(is_refusal_value | is_refusal_text)
        .then(pl.lit("refused"))
        .when(is_empty)
        .then(pl.lit(d.missing_outcome))
        .when(value.is_null())
        .then(pl.lit("unparseable"))
        .otherwise(pl.lit("ok"))
    )
    reason = (
        pl.when(is_refusal_value)
        .then(pl.format("refusal value '{}'", text))
        .when(is_refusal_text)
        .then(pl.lit("response matches refusal_pattern"))
        .when(is_empty)
        .then(pl.lit(f"missing outcome (column '{outcome}' is empty or NaN)"))
        .when(value.is_null())
        .then(pl.format(f"outcome '{{}}' is not {expected}", text))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    out = table.with_columns(status.alias("status"), reason.alias("reason"), value.alias("_value"))
    return out.with_columns(
        pl.when(pl.col("status") == "ok").then(pl.col("_value")).otherwise(None).alias(outcome)
    ).drop("_value")
