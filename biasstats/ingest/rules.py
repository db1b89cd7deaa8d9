"""Declarative reshaping of a raw table, in the documented order of operations:

read -> ``[data.parse.<column>]`` rules -> ``[data] explode`` -> column mapping -> derive -> filters

* Nested fields are addressed by path wherever a column name is accepted: ``request.job``
  (a field of a JSON object), ``choices[0].message.content`` (an element of a list).
  A name that is a column as written is always that column.
* Parse rules turn text into an outcome (``regex``, ``first_mention``, ``one_of``). A row a rule
  cannot parse gets status ``unparseable`` (``refused`` when ``refusal_pattern`` matches the
  text) and the reason ``parse.<column>: ...``; the first failing rule (in spec order) stands.
  A rule over a list field yields a list aligned with it.
* ``explode`` turns list fields into one row per element; several lists are zipped (they must
  have equal lengths in each row), the element's 0-based position goes to ``position``, and
  parse outputs aligned with an exploded list are exploded with it.

Every regex is run by polars (the Rust ``regex`` crate), the engine the spec validated it with.
"""

from __future__ import annotations

import re

import polars as pl

from biasstats.errors import SpecError
from biasstats.ingest.schema import list_columns
from biasstats.spec import Spec

PARSE_STATUS, PARSE_REASON = "_parse_status", "_parse_reason"
POSITION = "position"
_TOKEN = re.compile(r"\[(-?\d+)\]|\.?([^.\[\]]+)")


def _segments(path: str) -> list[str | int] | None:
    out: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            return None
        out.append(int(m[1]) if m[1] is not None else m[2])
        pos = m.end()
    return out if out and isinstance(out[0], str) else None


def resolve_path(path: str, schema: pl.Schema, where: str) -> tuple[pl.Expr, pl.DataType]:
    """The expression (and dtype) for a column name or a nested path; ``where`` prefixes the
    one-line error (e.g. ``'s.toml: [data] explode[0]'``)."""
    if path in schema:
        return pl.col(path), schema[path]
    segs = _segments(path)
    if segs is None or segs[0] not in schema:
        head = segs[0] if segs else path
        raise SpecError(
            f"{where} \"{path}\": no column {head!r} in the data "
            f"(columns: {list_columns(schema.names(), 20)})"
        )
    expr, dtype, done = pl.col(segs[0]), schema[segs[0]], str(segs[0])
    for seg in segs[1:]:
        if isinstance(seg, int):
            if not isinstance(dtype, pl.List | pl.Array):
                raise SpecError(f"{where} \"{path}\": '{done}' is not a list (it holds {dtype})")
            expr, dtype = expr.list.get(seg, null_on_oob=True), dtype.inner
            done += f"[{seg}]"
        else:
            if not isinstance(dtype, pl.Struct):
                raise SpecError(f"{where} \"{path}\": '{done}' has no fields (it holds {dtype})")
            names = [f.name for f in dtype.fields]
            if seg not in names:
                raise SpecError(
                    f"{where} \"{path}\": no field {seg!r} in '{done}' (fields: {', '.join(names)})"
                )
            expr, dtype = expr.struct.field(seg), dict(zip(names, [f.dtype for f in dtype.fields], strict=True))[seg]
            done += f".{seg}"
    return expr, dtype


def materialize(table, paths, where: str):
    """Add each nested path that is not a column yet as a column named by the path."""
    add = {}
    schema = table.collect_schema()
    for p in paths:
        if p not in schema and p not in add and _segments(p) and _segments(p)[0] in schema:
            add[p] = resolve_path(p, schema, where)[0].alias(p)
    return table.with_columns(*add.values()) if add else table


# ------------------------------------------------------------------------------- parse rules


def _is_list(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array)


def _text_rule(rule, name: str, value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(output, reason-if-failed) for regex / one_of on a string expression."""
    if rule.kind == "regex":
        cap = value.str.extract(rule.pattern, 1)
        out = cap
        if rule.map:
            out = cap.replace_strict(rule.map, default=None, return_dtype=pl.Utf8)
        why = (
            pl.when(value.is_null()).then(pl.lit(f"parse.{name}: no text"))
            .when(cap.is_null()).then(pl.lit(f"parse.{name}: no match for pattern"))
            .when(out.is_null()).then(pl.lit(f"parse.{name}: captured text not in map"))
            .otherwise(None)
        )
        return out, why
    canon = {v.strip().casefold(): v for v in rule.values}
    out = value.str.strip_chars().str.to_lowercase().replace_strict(
        canon, default=None, return_dtype=pl.Utf8
    )
    shown = ", ".join(rule.values)
    why = (
        pl.when(value.is_null()).then(pl.lit(f"parse.{name}: no text"))
        .when(out.is_null()).then(pl.lit(f"parse.{name}: not one of {shown}"))
        .otherwise(None)
    )
    return out, why


def _first_mention(table, name: str, text: pl.Expr, cands: pl.Expr):
    """Add ``name`` (list of ranks aligned with the candidates, 1 = mentioned first;
    never-mentioned candidates after all mentioned ones, in list order) and ``_why``.
    Works on a DataFrame or a LazyFrame (all steps are polars expressions)."""
    t = table.with_row_index("_r")
    base = t.select("_r", text.str.to_lowercase().alias("_t"), cands.alias("_c"))
    long = (
        base.explode("_c", empty_as_null=False)
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over("_r").alias("_i"))
        .with_columns(
            pl.col("_t").str.find(pl.col("_c").str.to_lowercase(), literal=True).alias("_pos")
        )
    )
    ranked = (
        long.sort(["_r", pl.col("_pos").is_null(), "_pos", "_i"])
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("_r").alias("_rank"))
        .sort(["_r", "_i"])
        .group_by("_r", maintain_order=True)
        .agg(pl.col("_rank").alias(name), pl.col("_pos").is_not_null().any().alias("_any"))
    )
    out = t.join(ranked, on="_r", how="left", maintain_order="left")
    why = (
        pl.when(text.is_null()).then(pl.lit(f"parse.{name}: no text"))
        .when(~pl.col("_any").fill_null(False)).then(pl.lit(f"parse.{name}: no candidate mentioned"))
        .otherwise(None)
    )
    return out.with_columns(why.alias("_why")).drop("_r", "_any")


def names(frame) -> list[str]:
    """Column names of a DataFrame or LazyFrame (no data read)."""
    return frame.collect_schema().names()


def apply_parse_rules(spec: Spec, raw):
    """Run every ``[data.parse.<column>]`` rule. Returns the table (with the outputs and the
    parse status/reason columns) and, for each output that is a list, the path it is aligned
    with (so ``explode`` can take it along)."""
    d = spec.data
    aligned: dict[str, str] = {}
    if not d.parse:
        return raw, aligned
    table = raw.with_columns(
        pl.lit(None, dtype=pl.Utf8).alias(PARSE_STATUS), pl.lit(None, dtype=pl.Utf8).alias(PARSE_REASON)
    )
    for name, rule in d.parse.items():
        where = f"{spec.path}: [data.parse.{name}] text ="
        if name in names(raw):
            raise SpecError(
                f"{spec.path}: [data.parse.{name}]: the data already has a column {name!r} "
                f"(name the parsed column differently)"
            )
        text, tdtype = resolve_path(rule.text, table.collect_schema(), where)
        if rule.kind == "first_mention":
            cands, cdtype = resolve_path(
                rule.candidates, table.collect_schema(), f"{spec.path}: [data.parse.{name}] candidates ="
            )
            if not _is_list(cdtype):
                raise SpecError(
                    f"{spec.path}: [data.parse.{name}] candidates = \"{rule.candidates}\": "
                    f"expected a list of names, got {cdtype}"
                )
            if tdtype != pl.Utf8:
                raise SpecError(
                    f"{spec.path}: [data.parse.{name}] text = \"{rule.text}\": expected text, got {tdtype}"
                )
            table = _first_mention(table, name, text, cands.cast(pl.List(pl.Utf8)))
            aligned[name] = rule.candidates
            subject = text
        elif _is_list(tdtype):
            out, why = _text_rule(rule, name, pl.element().cast(pl.Utf8))
            table = table.with_columns(
                text.list.eval(out).alias(name),
                text.list.eval(why).list.drop_nulls().list.first().alias("_why"),
            )
            aligned[name] = rule.text
            subject = text.list.join(" ")
        else:
            if tdtype not in (pl.Utf8, pl.Null) and not tdtype.is_numeric():
                raise SpecError(
                    f"{spec.path}: [data.parse.{name}] text = \"{rule.text}\": expected text, "
                    f"got {tdtype}"
                )
            out, why = _text_rule(rule, name, text.cast(pl.Utf8))
            table = table.with_columns(out.alias(name), why.alias("_why"))
            subject = text.cast(pl.Utf8)
        refused = pl.lit(False)
        if d.refusal_pattern is not None:
            refused = subject.str.contains(d.refusal_pattern).fill_null(False)
        fresh = pl.col(PARSE_STATUS).is_null() & pl.col("_why").is_not_null()
        table = table.with_columns(
            pl.when(fresh & refused).then(pl.lit("refused"))
            .when(fresh).then(pl.lit("unparseable"))
            .otherwise(pl.col(PARSE_STATUS)).alias(PARSE_STATUS),
            pl.when(fresh & refused)
            .then(pl.lit(f"parse.{name}: response matches refusal_pattern"))
            .when(fresh).then(pl.col("_why"))
            .otherwise(pl.col(PARSE_REASON)).alias(PARSE_REASON),
        ).drop("_why")
    return table, aligned


# ------------------------------------------------------------------------------- explode


def explode(spec: Spec, table, aligned: dict[str, str]):
    """One row per element of the ``[data] explode`` lists (zipped), keeping the position.
    An empty or missing list keeps its row (one row with null elements), so no source row
    leaves the ledger."""
    paths = spec.data.explode
    if not paths:
        return table
    if POSITION in names(table):
        raise SpecError(
            f"{spec.path}: [data] explode: the data already has a column {POSITION!r}, where "
            f"explode keeps each element's position (rename it with [data.rename])"
        )
    cols = []
    for i, p in enumerate(paths):
        expr, dtype = resolve_path(p, table.collect_schema(), f"{spec.path}: [data] explode[{i}]")
        if not _is_list(dtype):
            raise SpecError(f"{spec.path}: [data] explode[{i}] \"{p}\": expected a list, got {dtype}")
        table = table.with_columns(expr.alias(p))
        cols.append(p)
    cols += [out for out, src in aligned.items() if src in paths and out not in cols]
    if len(cols) > 1:
        n0 = pl.col(cols[0]).list.len()
        unequal = pl.any_horizontal([pl.col(c).list.len() != n0 for c in cols[1:]])
        bad = table.filter(unequal).select(
            "source_row", *[pl.col(c).list.len().alias(f"_n{j}") for j, c in enumerate(cols)]
        ).head(1)
        bad = bad.collect() if isinstance(bad, pl.LazyFrame) else bad
        if bad.height:
            row = bad.row(0, named=True)
            sizes = ", ".join(f"{c} has {row[f'_n{j}']}" for j, c in enumerate(cols))
            raise SpecError(
                f"{spec.path}: [data] explode: lists of unequal length in source row "
                f"{row['source_row']} ({sizes}); lists exploded together must match"
            )
    table = table.with_columns(
        pl.int_ranges(pl.col(cols[0]).list.len(), dtype=pl.Int64).alias(POSITION)
    )
    return table.explode([*cols, POSITION], empty_as_null=True)
