"""Ingest stage entry point: :func:`ingest` turns a spec's ``[data]`` into the canonical table.

Pipeline: resolve the source (registered dataset, or paths / globs / folders) → read (files
stacked, columns unioned) → adapter: ``tidy`` (parse rules → explode → column mapping →
``[data.derive]``), a user adapter (its output then goes through the tidy steps), or a built-in
raw-text adapter → ``[data] filters`` (failing ok rows are kept with status ``excluded``) →
conform to the canonical schema → ledger (checked to balance; rows counted per file).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from biasstats import registry
from biasstats.errors import DataError, SpecError, first_line
from biasstats.ingest import datasets, rules, tidy
from biasstats.ingest.adapters import Resolver
from biasstats.ingest.expressions import (
    _conditions,
    _derive,
    _expr,
    _failed,
    _filter,
    _filter_notes,
    _kept_notes,
)
from biasstats.ingest.guards import too_many_rows
from biasstats.ingest.ledger import Ledger, Tally, build_ledger
from biasstats.ingest.read import ReadContext, SourceRef, read_sources
from biasstats.ingest.scan import find_unreadable, scan_sources
from biasstats.ingest.schema import CANONICAL, conform, number_trials
from biasstats.ingest.source import user_sources
from biasstats.io import write_parquet_atomic, write_text_atomic
from biasstats.registry import ADAPTERS
from biasstats.spec import Spec, load_spec
from biasstats.spec.parts import in_part
from biasstats.spec.sql import check_sql

TABLE_FILE = "trials.parquet"
LEDGER_FILE = "ledger.json"


@dataclass(frozen=True)
class SourceFile:
    path: Path
    sha256: str


@dataclass(frozen=True)
class IngestResult:
    """The canonical table, its ledger, the spec, and the exact input files (with checksums)."""

    table: pl.DataFrame
    ledger: Ledger
    spec: Spec
    sources: tuple[SourceFile, ...]
    truth: dict | None = None  # simulated data only: the true parameters
    adapter: str | None = None  # the adapter that made the table (None: simulated)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``trials.parquet`` and ``ledger.json`` (and ``truth.json``) atomically."""
        out_dir = Path(out_dir)
        table = write_parquet_atomic(out_dir / TABLE_FILE, self.table)
        ledger = write_text_atomic(out_dir / LEDGER_FILE, self.ledger.to_json())
        if self.truth is not None:
            write_text_atomic(out_dir / "truth.json", json.dumps(self.truth, indent=2) + "\n")
        return table, ledger

    @property
    def data_hash(self) -> str:
        """One hash of all input files (order-independent): identifies the data used."""
        h = hashlib.sha256()
        for s in sorted(self.sources, key=lambda s: s.sha256):
            h.update(s.sha256.encode())
        return h.hexdigest()


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file not read by the ingest itself (the simulation's calibration
    file), via the registry's per-process checksum cache."""
    return datasets.file_checksum(path, "sha256").removeprefix("sha256:")


def _resolve_source(
    spec: Spec, known: dict[str, datasets.Dataset], resolve: Resolver
) -> tuple[list[Path] | list[SourceRef], str, str]:
    """(files, adapter name, label) for the spec's source; ``known`` is the loaded registry
    and ``resolve`` locates a registered dataset's files."""
    src = spec.data.source
    if isinstance(src, str) and src in known:
        adapter = spec.data.adapter or known[src].adapter or "tidy"
        return resolve(src), adapter, src
    if isinstance(src, str):
        path = spec.relative(src)
        looks_like_path = any(ch in src for ch in "/\\.*?[") or path.exists()
        if not looks_like_path:
            raise SpecError(
                f"{spec.path}: [data] source = \"{src}\": not a registered dataset "
                f"(known: {', '.join(sorted(known))}) and not a file path"
            )
    refs, label = user_sources(spec)
    return refs, spec.data.adapter or "tidy", label


def _row_status(rows: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """Source rows all of whose judgements were excluded by a filter become excluded."""
    excl = (
        table.group_by("source_row")
        .agg(
            (pl.col("status") == "excluded").all().alias("_all_excluded"),
            pl.col("reason").filter(pl.col("status") == "excluded").first().alias("_why"),
        )
        .filter(pl.col("_all_excluded"))
    )
    if excl.height == 0:
        return rows
    out = rows.join(excl, on="source_row", how="left")
    flag = pl.col("_all_excluded").fill_null(False)
    return out.with_columns(
        pl.when(flag).then(pl.lit("excluded")).otherwise(pl.col("status")).alias("status"),
        pl.when(flag).then(pl.col("_why")).otherwise(pl.col("reason")).alias("reason"),
    ).drop("_all_excluded", "_why")


def _per_source_row(n_rows: int, table: pl.DataFrame) -> pl.DataFrame:
    """One status per source row (0 .. n_rows-1) of a tidy table that may hold several rows
    per source row (explode, a user adapter): ok if any of its rows is ok, else its first
    row's status. A source row with no row left is ``excluded`` (the reason says so)."""
    ok = pl.col("status") == "ok"
    per = table.group_by("source_row").agg(
        pl.when(ok.any()).then(pl.lit("ok")).otherwise(pl.col("status").first()).alias("status"),
        pl.when(ok.any()).then(pl.lit(None, pl.Utf8)).otherwise(pl.col("reason").first()).alias("reason"),
    )
    out = pl.DataFrame({"source_row": pl.int_range(n_rows, dtype=pl.Int64, eager=True)}).join(
        per, on="source_row", how="left", maintain_order="left"
    )
    gone = pl.col("status").is_null()
    return out.with_columns(
        pl.when(gone).then(pl.lit("excluded")).otherwise(pl.col("status")).alias("status"),
        pl.when(gone).then(pl.lit("adapter returned no row for it")).otherwise(pl.col("reason")).alias("reason"),
    )


def _tidy(spec: Spec, raw, per_source_row: bool = False):
    """read -> parse rules -> explode -> column mapping -> derive -> (filters: the caller).
    ``raw`` is a DataFrame or a LazyFrame; so is the result (status and reason added)."""
    for name in ("status", "reason"):
        if name in rules.names(raw):
            raise SpecError(
                f"{spec.path}: [data] adapter returned a column {name!r}, which clashes with the "
                f"reserved column {name!r} (each row's ingest {name})"
            )
    return _after_derive(spec, _derive(spec, _mapped(spec, raw)), per_source_row)


def _mapped(spec: Spec, raw):
    """read -> parse rules -> explode -> column mapping (what derive sees)."""
    parsed, aligned = rules.apply_parse_rules(spec, raw)
    return tidy.apply_mapping(spec, rules.explode(spec, parsed, aligned))


def _after_derive(spec: Spec, table, per_source_row: bool = False):
    """The trial check, trial numbering and status classification after derive."""
    per = per_source_row or bool(spec.data.explode)
    return tidy.classify(spec, number_trials(tidy.check_trial(spec, table), per_source_row=per))


def _user_adapter(spec: Spec, name: str):
    """The registered user adapter ``name`` (``biasstats.register_adapter``) or the
    ``biasstats.adapters`` entry point of that name: a function
    ``(raw: polars.DataFrame) -> polars.DataFrame`` run before the tidy steps. A spec names
    adapters only; it never names Python code to import."""
    where = f'{spec.path}: [data] adapter = "{name}"'
    if ":" in name:  # a spec built without load_spec (the loader refuses it first)
        raise SpecError(f"{where}: {registry.code_adapter_message(name)}")
    fn = registry.find_user_adapter(name)
    if fn is None:
        raise SpecError(
            f"{where}: unknown adapter (known: {', '.join(registry.adapter_names())}; "
            "register yours with biasstats.register_adapter or an entry point in "
            "'biasstats.adapters')"
        )
    return fn


def _run_user_adapter(spec: Spec, name: str, raw: pl.DataFrame) -> pl.DataFrame:
    fn = _user_adapter(spec, name)
    out = fn(raw)
    where = f'{spec.path}: [data] adapter = "{name}"'
    if not isinstance(out, pl.DataFrame):
        raise SpecError(f"{where}: returned {type(out).__name__}, expected a polars DataFrame")
    if "source_row" not in out.columns:
        raise SpecError(f"{where}: returned no 'source_row' column (keep it from the input)")
    rows = out["source_row"]
    if rows.null_count() or not rows.is_in(raw["source_row"].implode()).all():
        raise SpecError(f"{where}: returned source_row values that are not in the input")
    return out


def _collect(spec: Spec, frame: pl.LazyFrame, refs: list[SourceRef] = (),
             raw: pl.LazyFrame | None = None) -> pl.DataFrame:
    """Run the lazy ingest query with the streaming engine; a failure is one line, naming
    the file when one of ``refs`` fails to read on its own, else the ``[data]`` derive or
    filter key that fails on the data (found by re-running the steps over ``raw``)."""
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as e:
        d = spec.data
        bad = find_unreadable(list(refs), d.format, d.delimiter, d.encoding)
        if bad is not None:
            raise bad from None
        if raw is not None:
            blamed = _blame(spec, raw)
            if blamed is not None:
                raise blamed from None
        raise SpecError(
            f"{spec.path}: [data] the source could not be read and shaped as declared "
            f"({first_line(e)})"
        ) from None


def _blame(spec: Spec, raw: pl.LazyFrame) -> SpecError | None:
    """The error for the first derive or filter whose expression fails on the data: the
    tidy steps are re-run in order over ``raw``, each expression evaluated on its own (only
    on the error path, so its cost does not matter)."""

    def fails(table, expr) -> Exception | None:
        try:  # in memory: the streaming engine's error counts the values of one morsel
            table.select(expr).collect(engine="in-memory")
        except pl.exceptions.PolarsError as e:
            return e
        return None

    try:
        table = _mapped(spec, raw)
        for name, text in spec.data.derive.items():
            expr, table = _expr(spec, f"derive.{name}", text, table)
            if (e := fails(table, expr)) is not None:
                return _failed(spec, f"derive.{name}", text, e, table)
            table = table.with_columns(expr.alias(name))
        table = _after_derive(spec, table)
        for key, text, _ in _conditions(spec):
            expr, table = _expr(spec, key, text, table)
            if (e := fails(table, expr.fill_null(False).cast(pl.Boolean))) is not None:
                return _failed(spec, key, text, e, table)
    except (SpecError, pl.exceptions.PolarsError):
        return None
    return None


def _check_max_rows(spec: Spec, table: pl.DataFrame, refs: list[SourceRef],
                    column: str = "source_row") -> None:
    """The source was read up to ``max_rows + 1`` rows: a row numbered ``max_rows`` means it
    passes the limit (the error names the file of that row)."""
    limit = spec.data.max_rows
    over = table.filter(pl.col(column) >= limit).head(1)
    if over.height:
        label = over["source_file"][0]
        raise too_many_rows(next((r.path for r in refs if r.label == label), label), limit)


def _builtin(spec: Spec, files, adapter: str, resolve: Resolver) -> tuple:
    """A built-in raw-text adapter (e.g. bai2024_iat): eager, every column read as text."""
    d = spec.data
    digests: dict[Path, str] = {}
    ctx = ReadContext()
    raw = read_sources(
        files, d.format, d.delimiter, d.encoding, text=True, digests=digests,
        max_bytes=d.max_decompressed_bytes, max_rows=d.max_rows, rename=d.rename, ctx=ctx,
    )
    out = ADAPTERS[adapter](raw, resolve)
    table, notes = _filter_notes(spec, _filter(spec, _derive(spec, out.table)))
    rows = _row_status(out.rows, table)
    per_file = dict(raw.group_by("source_file", maintain_order=True).len().iter_rows())
    return table, rows, True, tuple(ctx.notes) + out.notes + notes, per_file, digests


def _declared(spec: Spec, files, adapter: str) -> tuple:
    """The tidy steps (after a user adapter, if one is named) as one lazy polars query,
    collected with the streaming engine."""
    d = spec.data
    n_raw, per_file = None, None
    if adapter == "tidy":
        query, refs, digests, lazy, ctx = _declared_plan(spec, files)
    else:  # a user adapter sees the whole raw table (every column may be used)
        lazy, refs, digests, ctx = _scan(spec, files, reserved=(), needed=None)
        raw = _collect(spec, lazy, refs)
        _check_max_rows(spec, raw, refs)
        n_raw = raw.height
        per_file = dict(raw.group_by("source_file", maintain_order=True).len().iter_rows())
        lazy = _run_user_adapter(spec, adapter, raw).lazy()
        query = _filter(spec, _tidy(spec, lazy, per_source_row=True))
    table = _collect(spec, query, refs, raw=lazy)
    _check_max_rows(spec, table, refs)
    table, notes = _filter_notes(spec, table)
    notes = tuple(ctx.notes) + notes
    if n_raw is None and not d.explode:
        rows = table.select("source_row", "status", "reason")
        per_file = dict(table.group_by("source_file", maintain_order=True).len().iter_rows())
    else:
        if n_raw is None:
            n_raw = int(table["source_row"].max()) + 1 if table.height else 0
            per_file = dict(
                table.group_by("source_file", maintain_order=True)
                .agg(pl.col("source_row").n_unique()).iter_rows()
            )
        rows = _per_source_row(n_raw, table)
    return table, rows, table.height != rows.height, notes, per_file, digests


_ALL = object()


def named_columns(spec: Spec) -> frozenset[str] | None:
    """The source columns a declared spec may read: every name or path it gives (mapping,
    derive, filters, parse rules, explode, outcome, renames) with the head of each path, and
    the canonical names (a source may carry them as they are). None when an expression does
    not parse (the tidy steps report it)."""
    d = spec.data
    names: set[str] = {*CANONICAL, d.outcome, *d.columns.values(), *d.explode, *d.rename}
    for rule in d.parse.values():
        names |= {rule.text, *([rule.candidates] if rule.candidates else [])}
    for text in [*d.derive.values(), *d.filters, *d.exclude]:
        try:
            check_sql(text, f"{spec.path}: [data]")
            names |= set(pl.sql_expr(text).meta.root_names())
        except Exception:  # the tidy steps report it, naming the key
            return None
    heads = {segs[0] for n in names if (segs := rules._segments(n)) and isinstance(segs[0], str)}
    return frozenset(names | heads)


def _scan(spec: Spec, files, reserved: tuple[str, ...] = ("status", "reason"),
          needed=_ALL) -> tuple:
    """(lazy raw table, the files as SourceRefs, their digests, filled as they are read, and
    the read context with the readers' notes). ``needed``: the columns the spec may read
    (default: :func:`named_columns`; None: all)."""
    d = spec.data
    refs = [f if isinstance(f, SourceRef) else SourceRef(Path(f), Path(f).name) for f in files]
    digests: dict[Path, str] = {}
    ctx = ReadContext(needed=named_columns(spec) if needed is _ALL else needed)
    lazy = scan_sources(
        refs, d.format, d.delimiter, d.encoding, digests=digests,
        max_bytes=d.max_decompressed_bytes, max_rows=d.max_rows, rename=d.rename,
        reserved=reserved, ctx=ctx,
    )
    return lazy, refs, digests, ctx


def _declared_plan(spec: Spec, files) -> tuple:
    """The tidy steps over a declared source as one lazy query (not yet run): (query, the
    files as SourceRefs, their digests, the raw lazy table the query starts from, the read
    context)."""
    lazy, refs, digests, ctx = _scan(spec, files)
    return _filter(spec, _tidy(spec, lazy)), refs, digests, lazy, ctx


@dataclass(frozen=True)
class Cells:
    """Design cells streamed from a source: per cell, ``n`` ok rows and ``k`` = the sum of
    their outcome; the ledger of every row read; the input files (with checksums)."""

    cells: pl.DataFrame
    ledger: Ledger
    sources: tuple[SourceFile, ...]


def ingest_cells(spec: Spec | str | Path, keys: tuple[str, ...] | None = None) -> Cells:
    """Stream a declared (tidy) source to design cells without holding the row table: one
    polars streaming query aggregates per (file, cell, status, reason), and the cells, the
    ledger tallies and the rows per file all come from that small summary. ``keys``: the
    cell columns (default: those of llm, category, stereotype, variant present).
    Sources that need the whole table (a built-in or user adapter, explode, simulated data)
    are ingested with :func:`ingest` and summarised the same way."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    if spec.simulate is not None:
        return _cells_of(ingest(spec), keys)
    registry.load_builtin()  # the built-in studies register their adapters

    known = datasets.load_registry()
    resolve = functools.partial(datasets.resolve, registry=known)
    files, adapter, label = _resolve_source(spec, known, resolve)
    if adapter != "tidy" or spec.data.explode:
        return _cells_of(ingest(spec), keys)
    lazy, refs, digests, raw, ctx = _declared_plan(spec, files)
    names = rules.names(lazy)
    keys = keys or tuple(k for k in ("llm", "category", "stereotype", "variant") if k in names)
    outcome = spec.data.outcome
    n_filters = len(_conditions(spec))
    summary = _collect(spec, refs=refs, frame=lazy.group_by(["source_file", *keys, "status", "reason"]).agg(
        pl.len().alias("rows"),
        pl.col(outcome).cast(pl.Float64).sum().alias("k"),
        pl.col("source_row").max().alias("_last"),
        *[pl.col(f"_kept{i}").sum().alias(f"_kept{i}") for i in range(n_filters)],
    ), raw=raw)
    _check_max_rows(spec, summary, refs, column="_last")
    return _summarised(spec, summary, keys, refs, label, digests, tuple(ctx.notes))


def _summarised(spec, summary, keys, refs, label, digests, read_notes=()) -> Cells:
    ok = summary.filter(pl.col("status") == "ok")
    cells = ok.group_by(list(keys)).agg(pl.col("k").sum(), pl.col("rows").sum().alias("n"))
    cells = cells.sort(list(keys)) if keys else cells
    tally = Tally.from_counts("rows", summary.select("status", "reason", "rows"))
    per = dict(summary.group_by("source_file").agg(pl.col("rows").sum()).iter_rows())
    files = {r.label: per.get(r.label, 0) for r in refs}
    notes = read_notes + _kept_notes(spec, {i: int(summary[f"_kept{i}"].sum())
                                            for i in range(len(_conditions(spec)))})
    ledger = Ledger(source=label, rows_read=tally.total, tallies=(tally,), notes=notes,
                    files=files)
    ledger.check()
    sources = tuple(SourceFile(r.path, digests[r.path]) for r in refs)
    return Cells(cells=cells, ledger=ledger, sources=sources)


def _cells_of(res: IngestResult, keys) -> Cells:
    t = res.table
    keys = keys or tuple(k for k in ("llm", "category", "stereotype", "variant")
                         if t[k].null_count() < t.height)
    outcome = res.spec.data.outcome if res.spec.data is not None else "congruent"
    ok = t.filter(pl.col("status") == "ok")
    cells = ok.group_by(list(keys)).agg(pl.col(outcome).cast(pl.Float64).sum().alias("k"),
                                        pl.len().alias("n"))
    return Cells(cells=cells.sort(list(keys)) if keys else cells, ledger=res.ledger,
                 sources=res.sources)


def _own_refused(spec: Spec, table: pl.DataFrame) -> None:
    """A one-line DataError when the spec models a source column ``refused`` of its own (its
    outcome, or a name in its formula) that is not the ledger's refusal flag (1 = status
    refused, 0 = ok), which the canonical table names ``refused``: the user's column would be
    replaced silently and the model would read the flag instead."""
    if "refused" not in table.columns or "status" not in table.columns:
        return
    formula = spec.model.formula if spec.model is not None else ""
    if spec.data.outcome != "refused" and not re.search(r"\brefused\b", formula):
        return  # not modelled: the flag replacing it changes nothing the spec asks for
    flag = (pl.when(pl.col("status") == "refused").then(1)
            .when(pl.col("status") == "ok").then(0).otherwise(None))
    own = pl.col("refused").cast(pl.Float64, strict=False)
    differ = table.select(own.ne_missing(flag.cast(pl.Float64)).sum()).item()
    if differ:
        raise DataError(f"{spec.path}: [data] source column 'refused' differs from the ledger's "
                        f"refusal flag on {differ:,} rows, and biasstats names that flag "
                        "'refused' (1 = refused, 0 = answered): copy the column under another "
                        'name, e.g. [data.derive] refusal = "refused", and model that')


def ingest(spec: Spec | str | Path) -> IngestResult:
    """Run the ingest stage for one analysis spec (a :class:`Spec` or a path to its TOML)."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    spec.single("ingest")
    if spec.simulate is not None:
        return _simulated(spec)
    registry.load_builtin()  # the built-in studies register their adapters

    known = datasets.load_registry()
    resolve = functools.partial(datasets.resolve, registry=known)
    files, adapter, label = _resolve_source(spec, known, resolve)
    if adapter in ADAPTERS:
        table, rows, per_row, notes, per_file, digests = _builtin(spec, files, adapter, resolve)
    else:
        if adapter != "tidy":
            _user_adapter(spec, adapter)  # an unknown name fails before any file is read
        table, rows, per_row, notes, per_file, digests = _declared(spec, files, adapter)
    _own_refused(spec, table)
    table = conform(table)
    notes = tuple(notes) + collapse_notes(spec, table)
    ledger = build_ledger(label, rows, table if per_row else None, notes=notes, files=per_file)
    paths = [f.path if isinstance(f, SourceRef) else f for f in files]
    sources = tuple(SourceFile(p, digests[p]) for p in paths)
    return IngestResult(table=table, ledger=ledger, spec=spec, sources=sources, adapter=adapter)


def ingest_parts(spec: Spec) -> dict[str, IngestResult]:
    """Each part of a joint spec ingested (part -> its result, in spec order); parts whose
    ``[data]`` tables differ only in ``include`` (which rows the model sees) share one
    ingest: a source several parts read is read once. Errors name the part's keys."""
    done: dict[str, IngestResult] = {}
    out = {}
    for name in spec.parts:
        part = spec.part(name)
        key = json.dumps(part.data.model_dump(exclude={"include"}), sort_keys=True,
                         default=str)
        if key not in done:
            with in_part(spec, name):
                done[key] = ingest(part)
        out[name] = done[key]
    return out


# The judgement-level columns that biasstats.inference.from_spec.model_data summarises (as k
# and n) or leaves out for [model] unit = "trial" (tests/ingest/test_ingest_tidy.py keeps the two equal).
JUDGEMENT_COLUMNS = ("item", "congruent", "valence", "group", "group_role", "raw", "reason",
                     "status")


def collapse_notes(spec: Spec, table: pl.DataFrame) -> tuple[str, ...]:
    """With ``[model] unit = "trial"``, the model sees one row per source row: a ledger note
    says what that collapses when the table holds several rows per source row (explode, an
    adapter), naming the columns that vary within a source row and what becomes of them."""
    if spec.model is None or spec.model.unit != "trial" or table.height == 0:
        return ()
    n_src = table["source_row"].n_unique()
    if n_src == table.height:
        return ()
    cols = [c for c in table.columns if c not in ("source_row", "status", "reason")]
    try:
        per = table.group_by("source_row").agg(pl.col(c).n_unique() for c in cols).max()
        varying = [c for c in cols if per[c][0] > 1]
    except pl.exceptions.PolarsError:  # a column polars cannot count distinct values of
        return ()
    how = f"exploded by {', '.join(spec.data.explode)}" if spec.data.explode else "from the adapter"
    parts = [f'[model] unit = "trial": the {table.height:,} rows ({how}) of {n_src:,} source '
             f"rows become one row per source row"]
    if spec.data.outcome == "congruent":
        parts.append("k and n count each source row's ok congruent rows")
    left = [c for c in varying if c in JUDGEMENT_COLUMNS and c != "congruent"]
    first = [c for c in varying if c not in JUDGEMENT_COLUMNS]
    if left:
        parts.append(f"{', '.join(left)} vary within a source row and are left out")
    if first:
        parts.append(f"{', '.join(first)} vary within a source row and take its first row's "
                     f"value")
    return ("; ".join(parts),)


def _simulated(spec: Spec) -> IngestResult:
    """A ``[simulate]`` spec: the simulated table goes through the same ledger as real data."""
    sim = spec.simulate
    study = registry.preset(sim.preset)(sim)
    table = conform(study.table)
    rows = table.group_by("source_row").agg(pl.col("status").first(), pl.col("reason").first())
    label = f"simulated:{sim.preset} (seed {sim.seed})"
    ledger = build_ledger(label, rows.sort("source_row"), table, notes=("simulated data: truth in truth.json",))
    sources = tuple(SourceFile(p, _sha256(p)) for p in study.sources)
    return IngestResult(table, ledger, spec, sources, truth=study.truth)
