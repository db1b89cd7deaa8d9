"""Ingest stage entry point: :func:`ingest` turns a spec's ``[data]`` into the canonical table.

Pipeline: resolve the source (registered dataset or path) → read → adapter (``tidy`` or a
raw-text adapter) → ``[data.derive]`` → ``[data] filters`` (failing rows are kept with status
``excluded``) → conform to the canonical schema → ledger (checked to balance).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from biasstats.errors import SpecError, first_line
from biasstats.ingest import registry, tidy
from biasstats.ingest.adapters import ADAPTERS, AdapterOutput, Resolver
from biasstats.ingest.ledger import Ledger, build_ledger
from biasstats.ingest.read import read_sources
from biasstats.ingest.schema import conform, list_columns, number_trials
from biasstats.io import write_parquet_atomic, write_text_atomic
from biasstats.spec import Spec, load_spec

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
    return registry.file_checksum(path, "sha256").removeprefix("sha256:")


def _resolve_source(
    spec: Spec, known: dict[str, registry.Dataset], resolve: Resolver
) -> tuple[list[Path], str, str]:
    """(paths, adapter name, label) for the spec's source; ``known`` is the loaded registry
    and ``resolve`` locates a registered dataset's files."""
    src = spec.data.source
    if src in known:
        adapter = spec.data.adapter or known[src].adapter or "tidy"
        return resolve(src), adapter, src
    path = spec.relative(src)
    looks_like_path = any(ch in src for ch in "/\\.") or path.exists()
    if not looks_like_path:
        raise SpecError(
            f"{spec.path}: [data] source = \"{src}\": not a registered dataset "
            f"(known: {', '.join(sorted(known))}) and not a file path"
        )
    if not path.is_file():
        raise SpecError(f"{spec.path}: [data] source = \"{src}\": file not found ({path})")
    return [path], spec.data.adapter or "tidy", str(src)


def _expr(spec: Spec, key: str, text: str, columns: list[str]) -> pl.Expr:
    """Parse a polars SQL expression and check the columns it references exist."""
    try:
        expr = pl.sql_expr(text)
        names = expr.meta.root_names()
    except Exception as e:  # polars raises several types for SQL syntax problems
        raise SpecError(
            f"{spec.path}: [data] {key} '{text}' is not a valid SQL expression ({first_line(e)})"
        ) from None
    missing = [n for n in names if n not in columns]
    if missing:
        raise SpecError(
            f"{spec.path}: [data] {key} '{text}' references column {missing[0]!r}, "
            f"which is not in the data (columns: {list_columns(columns)})"
        )
    return expr


def _failed(spec: Spec, key: str, text: str, e: Exception) -> SpecError:
    """The error for a ``[data]`` expression that parsed but failed on the data."""
    return SpecError(f"{spec.path}: [data] {key} '{text}' failed on the data ({first_line(e)})")


def _derive(spec: Spec, table: pl.DataFrame) -> pl.DataFrame:
    for name, text in spec.data.derive.items():
        expr = _expr(spec, f"derive.{name}", text, table.columns)
        try:
            table = table.with_columns(expr.alias(name))
        except pl.exceptions.PolarsError as e:
            raise _failed(spec, f"derive.{name}", text, e) from None
    return table


def _filter(spec: Spec, table: pl.DataFrame) -> pl.DataFrame:
    """Mark rows failing a filter as excluded (the first failing filter is the reason)."""
    for i, text in enumerate(spec.data.filters):
        expr = _expr(spec, f"filters[{i}]", text, table.columns)
        try:
            keep = table.select(expr.fill_null(False).cast(pl.Boolean).alias("k"))["k"]
        except pl.exceptions.PolarsError as e:
            raise _failed(spec, f"filters[{i}]", text, e) from None
        drop = (~keep) & (table["status"] != "excluded")
        table = table.with_columns(
            pl.when(drop).then(pl.lit("excluded")).otherwise(pl.col("status")).alias("status"),
            pl.when(drop).then(pl.lit(f"filter: {text}")).otherwise(pl.col("reason")).alias("reason"),
        )
    # Outcomes exist only for ok rows (the canonical-table contract).
    outcomes = {c for c in ("congruent", spec.data.outcome) if c in table.columns}
    return table.with_columns(
        pl.when(pl.col("status") == "ok").then(pl.col(c)).otherwise(None).alias(c) for c in outcomes
    )


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


def _run_adapter(spec: Spec, name: str, raw: pl.DataFrame, resolve: Resolver) -> AdapterOutput:
    if name == "tidy":
        table = number_trials(_derive(spec, tidy.apply_mapping(spec, raw)))
        table = tidy.classify(spec, table)
        return AdapterOutput(rows=table.select("source_row", "status", "reason"), table=table)
    if name not in ADAPTERS:
        raise SpecError(
            f"{spec.path}: [data] adapter = \"{name}\": unknown adapter "
            f"(known: {', '.join(['tidy', *sorted(ADAPTERS)])})"
        )
    out = ADAPTERS[name](raw, resolve)
    return AdapterOutput(rows=out.rows, table=_derive(spec, out.table), notes=out.notes)


def ingest(spec: Spec | str | Path) -> IngestResult:
    """Run the ingest stage for one analysis spec (a :class:`Spec` or a path to its TOML)."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    if spec.simulate is not None:
        return _simulated(spec)
    import biasstats.ingest.bai2024  # noqa: F401  (registers the built-in adapters)

    known = registry.load_registry()
    resolve = functools.partial(registry.resolve, registry=known)
    paths, adapter, label = _resolve_source(spec, known, resolve)
    d = spec.data
    digests: dict[Path, str] = {}
    # Raw-text adapters parse every column themselves: read them as text, never inferred.
    raw = read_sources(
        paths, d.format, d.delimiter, d.encoding, text=adapter != "tidy", digests=digests
    )
    out = _run_adapter(spec, adapter, raw, resolve)
    table = _filter(spec, out.table)
    rows = _row_status(out.rows, table)
    table = conform(table)
    # tidy: one canonical row per source row, so the ledger needs no per-judgement table.
    per_row = adapter != "tidy"
    ledger = build_ledger(label, rows, table if per_row else None, notes=out.notes)
    sources = tuple(SourceFile(p, digests[p]) for p in paths)
    return IngestResult(table=table, ledger=ledger, spec=spec, sources=sources, adapter=adapter)


def _simulated(spec: Spec) -> IngestResult:
    """A ``[simulate]`` spec: the simulated table goes through the same ledger as real data."""
    from biasstats.simulate.bai_study import calibration_path, simulate_bai_study

    sim = spec.simulate
    study = simulate_bai_study(
        sim.seed,
        trials=sim.trials,
        variants=tuple(sim.variants),
        variant_sd=sim.variant_sd,
        refusal_rate=sim.refusal_rate,
        llms=tuple(sim.llms) if sim.llms else None,
    )
    table = conform(study.table)
    rows = table.group_by("source_row").agg(pl.col("status").first(), pl.col("reason").first())
    label = f"simulated:{sim.preset} (seed {sim.seed})"
    ledger = build_ledger(label, rows.sort("source_row"), table, notes=("simulated data: truth in truth.json",))
    cal = calibration_path()
    return IngestResult(table, ledger, spec, (SourceFile(cal, _sha256(cal)),), truth=study.truth)
