"""Read raw source files into polars: CSV/TSV, JSON Lines, JSON, Parquet, optionally
compressed (``.gz``, ``.zst``), and two named evaluation-log formats (Inspect AI ``.eval`` and
JSON logs, lm-evaluation-harness ``--log_samples`` files, see :mod:`biasstats.ingest.logs`).

Every failure is a one-line :class:`DataError` naming the file and what was expected.
:func:`read_sources` stacks several files (columns unioned, a column missing from a file is
null) and adds the audit columns ``source_file`` and ``source_row`` (0-based, running across
files), plus any columns taken from each file's path (``[data] path_pattern``).

Guards: a compressed file may expand to at most ``max_decompressed_bytes`` (decompression
stops as soon as the limit is passed, so a small archive cannot fill the memory), and the
source may hold at most ``max_rows`` rows (checked file by file).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from biasstats.errors import DataError, first_line
from biasstats.ingest import jsontext
from biasstats.ingest.guards import too_big, too_many_rows
from biasstats.ingest.lm_eval import read_lm_eval_samples
from biasstats.ingest.logs import read_inspect_log, superseded
from biasstats.ingest.schema import LOG_REASON, LOG_STATUS
from biasstats.limits import input_kind

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "inspect_eval", "lm_eval_samples")
COMPRESSED = (".gz", ".zst")
EXTENSIONS = {
    "csv": "csv", "tsv": "tsv", "tab": "tsv", "jsonl": "jsonl", "ndjson": "jsonl",
    "json": "json", "parquet": "parquet", "pq": "parquet", "eval": "inspect_eval",
}
DEFAULT_MAX_BYTES = 1 << 28  # 256 MiB decompressed per compressed file
DEFAULT_MAX_ROWS = 50_000_000
_SNIFF = (";", "\t", "|")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceRef:
    """One file of a source: its ``path``, the ``label`` stored in ``source_file``, and
    ``columns`` taken from its path (``[data] path_pattern``)."""

    path: Path
    label: str
    columns: dict[str, str] = field(default_factory=dict)


@dataclass
class ReadContext:
    """What the readers take from the spec and report back, for one source.

    ``needed``: the columns the spec names (None: any column may be used); an Inspect log
    reads its full samples only when one of them needs them. ``notes``: ledger notes the readers add (a failed
    run, a generated model name, a superseded log). ``attempts``: per Inspect log read (its
    source label), the run it is an attempt of, for :func:`mark_superseded`."""

    needed: frozenset[str] | None = None
    notes: list[str] = field(default_factory=list)
    attempts: dict[str, tuple] = field(default_factory=dict)


def infer_format(path: Path) -> str:
    """Format from the file extension, ignoring a trailing ``.gz`` / ``.zst``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    if ext not in EXTENSIONS:
        raise DataError(
            f"{path}: cannot tell the file format from its extension "
            f"(expected .csv, .tsv, .jsonl, .json, .parquet or .eval, optionally .gz or .zst); "
            f"set [data] format"
        )
    return EXTENSIONS[ext]


def _decompress(path: Path, data: bytes, max_bytes: int) -> bytes:
    """Stream-decompress ``data``, stopping with an error once it passes ``max_bytes``."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        stream = gzip.GzipFile(fileobj=io.BytesIO(data))
        kind, errors = "gzip", (OSError, EOFError)
    else:
        # heavy libraries load on first use, not on import
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
        kind, errors = "zstd", (zstandard.ZstdError, OSError)
    chunks, size = [], 0
    try:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise too_big(path, max_bytes)
            chunks.append(chunk)
    except errors as e:
        raise DataError(f"{path}: not a valid {kind} file ({first_line(e)})") from None
    return b"".join(chunks)


def _check_regular(path: Path) -> None:
    """A one-line error unless ``path`` is a regular file (see
    :func:`biasstats.limits.input_kind`): nothing else is ever opened."""
    kind, _ = input_kind(path)
    if kind == "missing":
        raise DataError(f"{path}: file not found")
    if kind != "file":
        raise DataError(f"{path}: is {'a folder' if kind == 'folder' else kind}, not a data file")


def _bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, str]:
    """The file's content (decompressed if ``.gz``/``.zst``) and the hex SHA-256 of the file
    as stored."""
    _check_regular(path)
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() in COMPRESSED:
        data = _decompress(path, data, max_bytes)
    return data, sha256


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}: not valid {encoding.upper()} (byte 0x{data[e.start]:02x} on line {line}); "
            f"re-save the file as UTF-8 or set [data] encoding = \"latin-1\""
        ) from None


def _check_header(path: Path, text: str, delimiter: str) -> None:
    """Duplicate column names are an error (polars would silently rename one of them)."""
    first = text.lstrip("\r\n").split("\n", 1)[0]
    header = next(csv.reader([first], delimiter=delimiter), [])
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(
                f"{path}: column name {name!r} appears twice in the header "
                f"(expected unique column names)"
            )
        seen.add(name)


def _read_csv(path: Path, text: str, delimiter: str, as_text: bool = False) -> pl.DataFrame:
    if not text.strip():
        raise DataError(f"{path}: file is empty (expected a header row and data rows)")
    _check_header(path, text, delimiter)
    try:
        df = pl.read_csv(
            io.StringIO(text),
            separator=delimiter,
            infer_schema=not as_text,
            infer_schema_length=10000,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as e:
        raise DataError(
            f"{path}: cannot parse as CSV with delimiter {delimiter!r} ({first_line(e)})"
        ) from None
    if df.width == 1:
        header = df.columns[0]
        for sep in _SNIFF:
            if sep != delimiter and sep in header:
                shown = "\\t" if sep == "\t" else sep
                raise DataError(
                    f"{path}: found a single column {header!r}; the file looks "
                    f"{shown!r}-delimited: set [data] delimiter = \"{shown}\""
                )
    if df.height == 0:
        raise DataError(f"{path}: file has a header but no data rows")
    return df


def _records_frame(path: Path, records: list[dict]) -> pl.DataFrame:
    try:
        return pl.from_dicts(records, infer_schema_length=None)
    except Exception as e:  # polars raises several types for inconsistent records
        raise DataError(f"{path}: JSON records do not form a table ({first_line(e)})") from None


def jsonl_records(path: Path, text: str) -> list[dict]:
    """The objects of a JSON Lines text (one object per non-empty line)."""
    jsontext.check_depth(text, str(path), lines=True)  # one linear pass, no recursion
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {n} is not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}: line {n} is not a JSON object (expected one object per line)")
        records.append(rec)
    if not records:
        raise DataError(f"{path}: file is empty (expected one JSON object per line)")
    return records


def _read_jsonl(path: Path, text: str) -> pl.DataFrame:
    return _records_frame(path, jsonl_records(path, text))


def json_records(path: Path, text: str) -> list[dict]:
    """The objects of a JSON file: one object, or an array of objects (a file of JSON lines
    is accepted too)."""
    try:
        obj = jsontext.loads(text, str(path))
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # several objects, one per line
            return jsonl_records(path, text)
        raise DataError(f"{path}: not valid JSON ({e.msg} on line {e.lineno})") from None
    records = [obj] if isinstance(obj, dict) else obj
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected a JSON object or an array of objects")
    if not records:
        raise DataError(f"{path}: the JSON array is empty (expected objects)")
    return records


def _read_json(path: Path, text: str) -> pl.DataFrame:
    return _records_frame(path, json_records(path, text))


def _read_parquet(path: Path, data: bytes) -> pl.DataFrame:
    try:
        df = pl.read_parquet(io.BytesIO(data))
    except Exception as e:  # polars/arrow raise several types for corrupt files
        raise DataError(f"{path}: not a valid Parquet file ({type(e).__name__})") from None
    if df.height == 0:
        raise DataError(f"{path}: Parquet file has no rows")
    return df


def _as_text(path: Path, df: pl.DataFrame) -> pl.DataFrame:
    """Every column cast to Utf8 (for the raw-text adapters)."""
    try:
        return df.with_columns(pl.all().cast(pl.Utf8))
    except pl.exceptions.PolarsError as e:
        raise DataError(f"{path}: columns cannot be read as text ({first_line(e)})") from None


def _read_one(
    path: Path,
    fmt: str | None,
    delimiter: str,
    encoding: str,
    text: bool,
    max_bytes: int = DEFAULT_MAX_BYTES,
    ctx: ReadContext | None = None,
    label: str | None = None,
) -> tuple[pl.DataFrame, str]:
    """One file as a DataFrame, and the hex SHA-256 of the bytes read. ``ctx`` collects the
    readers' notes and each Inspect log's run (under ``label``)."""
    path = Path(path)
    fmt = fmt or infer_format(path)
    ctx = ctx if ctx is not None else ReadContext()
    data, sha256 = _bytes(path, max_bytes)
    if fmt == "parquet":
        df = _read_parquet(path, data)
    elif fmt == "inspect_eval":

        log = read_inspect_log(path, data, max_bytes, ctx.needed)
        df = log.frame
        ctx.notes.extend(log.notes)
        ctx.attempts[label or path.name] = (log.attempt, log.order, df.height)
    else:
        decoded = _decode(path, data, encoding).removeprefix("\ufeff")
        if fmt == "jsonl":
            df = _read_jsonl(path, decoded)
        elif fmt == "json":
            df = _read_json(path, decoded)
        elif fmt == "lm_eval_samples":

            df = read_lm_eval_samples(path, json_records(path, decoded), ctx.notes)
        else:
            sep = "\t" if fmt == "tsv" and delimiter == "," else delimiter
            return _read_csv(path, decoded, sep, as_text=text), sha256
    return (_as_text(path, df) if text else df), sha256


def mark_superseded(frame, ctx: ReadContext):
    """Rows of an Inspect log that a later attempt of the same run supersedes (see
    :func:`biasstats.ingest.logs.superseded`) get the status ``superseded``; one ledger note
    per such log. ``frame``: the stacked source (DataFrame or LazyFrame)."""
    if len(ctx.attempts) < 2:
        return frame
    by = superseded({label: a[:2] for label, a in ctx.attempts.items()})
    if not by:
        return frame
    for label, newer in by.items():
        ctx.notes.append(
            f"{label}: superseded by {newer} (an earlier attempt of the same run: the same "
            f"task_id, task and model); its {ctx.attempts[label][2]} row(s) are booked as "
            f"superseded, not read twice"
        )
    newer = pl.col("source_file").replace_strict(by, default=None, return_dtype=pl.Utf8)
    return frame.with_columns(
        pl.when(newer.is_not_null()).then(pl.lit("superseded"))
        .otherwise(pl.col(LOG_STATUS).cast(pl.Utf8)).alias(LOG_STATUS),
        pl.when(newer.is_not_null()).then(pl.format("superseded by {}", newer))
        .otherwise(pl.col(LOG_REASON).cast(pl.Utf8)).alias(LOG_REASON),
    )


def read_table(
    path: Path,
    fmt: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    *,
    text: bool = False,
) -> pl.DataFrame:
    """Read one file into a DataFrame: types inferred, or with ``text`` every column as Utf8
    (CSV read without type inference; JSONL and Parquet columns cast)."""
    return _read_one(path, fmt, delimiter, encoding, text)[0]


def _prepare(ref: SourceRef, names: list[str], rename: dict[str, str],
             reserved: tuple[str, ...] = ()) -> dict[str, str]:
    """The renames that apply to one file (checked), after checking that no column of the
    file clashes with an audit column, a path column or a ``reserved`` name."""
    mapping = {old: new for old, new in rename.items() if old in names}
    for old, new in mapping.items():
        if new in names and new not in mapping:
            raise DataError(
                f"{ref.path}: [data.rename] {old} = \"{new}\": the file already has a column {new!r}"
            )
    names = [mapping.get(n, n) for n in names]
    for name in ("source_file", "source_row", *ref.columns):
        if name in names:
            what = "a path_pattern placeholder" if name in ref.columns else "an audit column"
            raise DataError(
                f"{ref.path}: column {name!r} clashes with {what} of the same name "
                f"(rename it with [data] rename)"
            )
    for name in reserved:
        if name in names:
            raise DataError(
                f"{ref.path}: column {name!r} clashes with the reserved column {name!r} "
                f"(each row's ingest {name}); rename it with [data.rename] {name} = \"...\""
            )
    return mapping


def _tagged(frame, ref: SourceRef, mapping: dict[str, str]):
    """A file's frame renamed, with its ``source_file`` label and path columns."""
    frame = frame.rename(mapping) if mapping else frame
    extra = [pl.lit(v, dtype=pl.Utf8).alias(k) for k, v in ref.columns.items()]
    return frame.with_columns(pl.lit(ref.label, dtype=pl.Utf8).alias("source_file"), *extra)


def _stack(paths: list[Path], frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Stack the files' frames, columns unioned (a column a file lacks is null there)."""
    try:
        return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    except pl.exceptions.PolarsError as e:
        raise DataError(
            f"{paths[0].parent}: files do not share compatible columns ({first_line(e)})"
        ) from None


def read_sources(
    paths: list[Path] | list[SourceRef],
    fmt: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    *,
    text: bool = False,
    digests: dict[Path, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
    rename: dict[str, str] | None = None,
    ctx: ReadContext | None = None,
) -> pl.DataFrame:
    """Read and stack several files; adds ``source_file`` and a running ``source_row``.

    ``paths``: plain paths (``source_file`` = the file name) or :class:`SourceRef`s (their
    label, and columns from the path). Columns are unioned across files (missing: null).
    ``text``: every source column as Utf8 (see :func:`read_table`). ``digests``: if given,
    filled with each path's hex SHA-256 (of the file as stored), hashed from the bytes read.
    ``rename``: source column -> new name, applied to each file that has the column.
    ``ctx``: see :class:`ReadContext`.
    """
    rename = rename or {}
    ctx = ctx if ctx is not None else ReadContext()
    refs = [p if isinstance(p, SourceRef) else SourceRef(Path(p), Path(p).name) for p in paths]
    frames, total = [], 0
    for ref in refs:
        df, sha256 = _read_one(ref.path, fmt, delimiter, encoding, text, max_bytes, ctx, ref.label)
        total += df.height
        if total > max_rows:
            raise too_many_rows(ref.path, max_rows)
        if digests is not None:
            digests[ref.path] = sha256
        frames.append(_tagged(df, ref, _prepare(ref, df.columns, rename)))
    out = mark_superseded(_stack([r.path for r in refs], frames), ctx)
    return out.with_row_index("source_row").with_columns(pl.col("source_row").cast(pl.Int64))
