"""The ``tidy`` steps: column mapping, trial ids and row status for a spec-declared source.

A third-party dataset needs no Python: ``[data.columns]`` copies source columns (or nested
paths) onto canonical names (the source column stays usable), ``[data.derive]`` adds columns,
``[data] outcome`` names the outcome column (default ``congruent``, which must be 0/1; a
``label`` outcome, e.g. from a regex parse rule, stays text), and ``refusals`` /
``refusal_pattern`` / ``missing_outcome`` say which rows are refusals. Every function here
takes a DataFrame or a LazyFrame (the ingest runs them as one lazy query).

Row status, in order of precedence: the status the reader set (an evaluation log's errored or
superseded sample: ``error`` / ``superseded``); the status a parse rule set (it came first); ``refused``
(a declared refusal value in the outcome or raw column, or the raw text matches
``refusal_pattern``); empty outcome → ``missing_outcome`` (``unparseable`` by default); a value
that is not a valid outcome → ``unparseable``; else ``ok``.
"""

from __future__ import annotations

import polars as pl

from biasstats.errors import SpecError
from biasstats.ingest import rules
from biasstats.ingest.schema import CANONICAL, LOG_REASON, LOG_STATUS, list_columns
from biasstats.spec import Spec

_TRUE = {"1", "1.0", "true"}
_FALSE = {"0", "0.0", "false"}


def apply_mapping(spec: Spec, raw):
    """Copy mapped source columns (or nested paths) to their target names (a canonical name
    keeps its meaning; any other is a plain copy); the source columns stay usable. A target
    name the data already has is an error naming both."""
    cols = spec.data.columns
    schema = raw.collect_schema()
    exprs = []
    for target, source in cols.items():
        where = f"{spec.path}: [data.columns] {target} ="
        if source not in schema and not (
            (segs := rules._segments(source)) and segs[0] in schema
        ):
            raise SpecError(
                f"{where} \"{source}\": no column {source!r} in the data "
                f"(columns: {list_columns(schema.names(), 20)})"
            )
        if target in schema and target != source:
            raise SpecError(
                f"{where} \"{source}\": the data already has a column {target!r}; map "
                f"{target} = \"{target}\" or rename one of them with [data.rename]"
            )
        expr, dtype = rules.resolve_path(source, schema, where)
        if isinstance(dtype, pl.List | pl.Array | pl.Struct) and CANONICAL.get(target) in (pl.Utf8, pl.Int64):
            what = "objects" if isinstance(dtype, pl.Struct) else "lists"
            raise SpecError(
                f"{where} \"{source}\": the column holds {what}, not single values; explode "
                f"it ([data] explode = [\"{source}\"]) or pick a part (e.g. {source}[0])"
            )
        exprs.append(expr.alias(target))
    return raw.with_columns(exprs) if exprs else raw


def check_trial(spec: Spec, table):
    """``trial`` must hold whole numbers; it is cast to Int64."""
    schema = table.collect_schema()
    if "trial" not in schema or schema["trial"].is_integer():
        return table
    col = pl.col("trial")
    as_int = col.cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
    bad = table.filter(col.is_not_null() & (as_int.is_null() | (as_int.round(0) != as_int))).select(
        pl.len().alias("n"), col.cast(pl.Utf8).first().alias("trial"),
        pl.col("source_file").first(), pl.col("source_row").first(),
    )
    row = (bad.collect() if isinstance(bad, pl.LazyFrame) else bad).row(0, named=True)
    if row["n"]:
        src = spec.data.columns.get("trial")
        key = f'[data.columns] trial = "{src}"' if src else "column 'trial'"
        raise SpecError(
            f"{spec.path}: {key}: expected whole numbers, found {str(row['trial'])!r} "
            f"({row.get('source_file')}, source row {row['source_row']}; "
            f"{row['n']} row{'s' * (row['n'] > 1)} in all)"
        )
    return table.with_columns(as_int.cast(pl.Int64).alias("trial"))


def _outcome_value(outcome: str, label: bool, numeric: bool = False):
    """Expression for the cleaned outcome (null when not a valid value): congruent as 0/1
    Float64, a label outcome as trimmed text, any other outcome as Float64. ``numeric``: the
    column is already numeric (no text round trip)."""
    if numeric and not label:
        num = pl.col(outcome).cast(pl.Float64)
        if outcome == "congruent":
            return pl.when(num.is_in([0.0, 1.0])).then(num).otherwise(None)
        return pl.when(num.is_nan()).then(None).otherwise(num)
    text = pl.col(outcome).cast(pl.Utf8).str.strip_chars()
    if outcome == "congruent":
        low = text.str.to_lowercase()
        return (
            pl.when(low.is_in(sorted(_TRUE)))
            .then(1.0)
            .when(low.is_in(sorted(_FALSE)))
            .then(0.0)
            .otherwise(None)
        )
    if label:
        return text
    return text.cast(pl.Float64, strict=False)


def classify(spec: Spec, table):
    """Add ``status``, ``reason`` and the cleaned outcome column to a mapped tidy table.

    A status set by a parse rule stands (it came first); then refusals, missing and invalid
    outcomes."""
    d = spec.data
    outcome = d.outcome
    schema = table.collect_schema()
    if outcome not in schema:
        raise SpecError(
            f"{spec.path}: [data] outcome = \"{outcome}\": no such column after mapping "
            f"(map it in [data.columns], e.g. congruent = \"<source column>\"; "
            f"columns: {list_columns([c for c in schema.names() if not c.startswith('_')], 20)})"
        )
    dtype = schema[outcome]
    if isinstance(dtype, pl.List | pl.Array | pl.Struct):
        raise SpecError(
            f"{spec.path}: [data] outcome = \"{outcome}\": the column holds "
            f"{'objects' if isinstance(dtype, pl.Struct) else 'lists'}, not single values "
            f"(explode it with [data] explode)"
        )
    label = d.outcome_type == "label" or (
        d.outcome_type is None and outcome in d.parse and d.parse[outcome].kind != "first_mention"
    )
    text = pl.col(outcome).cast(pl.Utf8).str.strip_chars()
    is_refusal_value = text.is_in(d.refusals) if d.refusals else pl.lit(False)
    refused_text = text  # the value that made the row a refusal (the outcome's, else raw's)
    if "raw" in schema and d.refusals:
        raw_text = pl.col("raw").cast(pl.Utf8).str.strip_chars()
        refused_text = pl.when(text.is_in(d.refusals)).then(text).otherwise(raw_text)
        is_refusal_value = is_refusal_value | pl.col("raw").cast(pl.Utf8).str.strip_chars().is_in(
            d.refusals
        )
    if d.refusal_pattern is not None and "raw" in schema:
        is_refusal_text = pl.col("raw").cast(pl.Utf8).str.contains(d.refusal_pattern).fill_null(False)
    else:
        is_refusal_text = pl.lit(False)
    numeric = dtype.is_numeric()
    if numeric:
        is_empty = pl.col(outcome).is_null() | pl.col(outcome).cast(pl.Float64).is_nan()
    else:
        is_empty = pl.col(outcome).is_null() | (text == "") | (text.str.to_lowercase() == "nan")
    value = _outcome_value(outcome, label, numeric)
    expected = "0 or 1" if outcome == "congruent" else "a number"
    parsed = pl.col(rules.PARSE_STATUS) if rules.PARSE_STATUS in schema else pl.lit(None, pl.Utf8)
    why = pl.col(rules.PARSE_REASON) if rules.PARSE_REASON in schema else pl.lit(None, pl.Utf8)
    logged = pl.col(LOG_STATUS).cast(pl.Utf8) if LOG_STATUS in schema else pl.lit(None, pl.Utf8)
    logged_why = pl.col(LOG_REASON).cast(pl.Utf8) if LOG_REASON in schema else pl.lit(None, pl.Utf8)
    status = (
        pl.when(logged.is_not_null())
        .then(logged)
        .when(parsed.is_not_null())
        .then(parsed)
        .when(is_refusal_value | is_refusal_text)
        .then(pl.lit("refused"))
        .when(is_empty)
        .then(pl.lit(d.missing_outcome))
        .when(value.is_null())
        .then(pl.lit("unparseable"))
        .otherwise(pl.lit("ok"))
    )
    reason = (
        pl.when(logged.is_not_null())
        .then(logged_why)
        .when(parsed.is_not_null())
        .then(why)
        .when(is_refusal_value)
        .then(pl.format("refusal value '{}'", refused_text))
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
    ).drop("_value", rules.PARSE_STATUS, rules.PARSE_REASON, LOG_STATUS, LOG_REASON, strict=False)
