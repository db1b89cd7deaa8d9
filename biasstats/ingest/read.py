"""Read raw source files (CSV, JSONL, Parquet; optionally gzip-compressed) into polars.

Every failure is a one-line :class:`DataError` naming the file and what was expected.
:func:`read_sources` concatenates several files (a multi-file dataset) and adds the audit
columns ``source_file`` (file name) and ``source_row`` (0-based, running across files).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import polars as pl

from biasstats.errors import DataError, first_line

FORMATS = ("csv", "jsonl", "parquet")
_SNIFF = (";", "\t", "|")


def infer_format(path: Path) -> str:
    """Format from the file extension, ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    ext = {"ndjson": "jsonl", "json": "jsonl", "tsv": "csv", "pq": "parquet"}.get(ext, ext)
    if ext not in FORMATS:
        raise DataError(
            f"{path}: cannot tell the file format from its extension "
            f"(expected .csv, .jsonl or .parquet, optionally .gz); set [data] format"
        )
    return ext


def _bytes(path: Path) -> tuple[bytes, str]:
    """The file's content (gunzipped if ``.gz``) and the hex SHA-256 of the file as stored."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from None
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


def _read_csv(path: Path, text: str, delimiter: str, as_text: bool = False) -> pl.DataFrame:
    if not text.strip():
        raise DataError(f"{path}: file is empty (expected a header row and data rows)")
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


def _read_jsonl(path: Path, text: str) -> pl.DataFrame:
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
    try:
        return pl.from_dicts(records, infer_schema_length=None)
    except pl.exceptions.PolarsError as e:
        raise DataError(f"{path}: JSON records do not form a table ({first_line(e)})") from None


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
    path: Path, fmt: str | None, delimiter: str, encoding: str, text: bool
) -> tuple[pl.DataFrame, str]:
    """One file as a DataFrame, and the hex SHA-256 of the bytes read."""
    path = Path(path)
    fmt = fmt or infer_format(path)
    data, sha256 = _bytes(path)
    if fmt == "parquet":
        df = _read_parquet(path, data)
        return (_as_text(path, df) if text else df), sha256
    decoded = _decode(path, data, encoding).removeprefix("\ufeff")
    if fmt == "jsonl":
        df = _read_jsonl(path, decoded)
        return (_as_text(path, df) if text else df), sha256
    return _read_csv(path, decoded, delimiter, as_text=text), sha256


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


def read_sources(
    paths: list[Path],
    fmt: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    *,
    text: bool = False,
    digests: dict[Path, str] | None = None,
) -> pl.DataFrame:
    """Read and stack several files; adds ``source_file`` and a running ``source_row``.

    ``text``: every source column as Utf8 (see :func:`read_table`). ``digests``: if given,
    filled with each path's hex SHA-256 (of the file as stored), hashed from the bytes read.
    """
    frames = []
    for p in paths:
        df, sha256 = _read_one(p, fmt, delimiter, encoding, text)
        if digests is not None:
            digests[p] = sha256
        frames.append(df.with_columns(pl.lit(Path(p).name).alias("source_file")))
    try:
        out = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    except pl.exceptions.PolarsError as e:
        raise DataError(
            f"{paths[0].parent}: files do not share compatible columns ({first_line(e)})"
        ) from None
    return out.with_row_index("source_row").with_columns(pl.col("source_row").cast(pl.Int64))
