"""Data utilities of the model stage: a table as polars, as the pandas frame patsy builds
designs from, its content hash, the rows a fit uses and the labels of grouping levels."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import polars as pl

from biasstats.errors import SpecError
from biasstats.limits import MAX_MAGNITUDE

__all__ = ["to_polars", "design_frame", "data_hash", "complete_rows", "level_labels_of",
           "distinct_labels"]


def to_polars(data) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pd.DataFrame):
        return pl.from_pandas(data.reset_index(drop=True))
    raise SpecError(f"data must be a polars or pandas DataFrame, got {type(data).__name__}")


# numeric dtypes that do not reach patsy as numbers through pandas: a Decimal column becomes
# Python objects (which patsy codes as a factor, one coefficient per value), a 128-bit integer
# cannot be converted, a Float16 would be computed in half precision. Cast to Float64 (exact
# for Float16 and for integers below 2**53); other integers and floats pass as they are.
_CAST_FOR_DESIGN = (pl.Float16, pl.Int128, pl.UInt128)


def design_frame(frame: pl.DataFrame, n: int | None = None) -> pd.DataFrame:
    """``frame`` as the pandas frame patsy builds the design from (a frame of ``n`` rows and no
    columns when ``frame`` has none). Every numeric column is numeric there — Decimal,
    8- to 128-bit signed and unsigned integers, Float16/32/64 — so each gives one slope
    column, never a factor; Boolean and text columns are left to patsy as factors."""
    if not frame.width:
        return pd.DataFrame(index=range(frame.height if n is None else n))
    cast = [pl.col(c).cast(pl.Float64) for c, t in frame.schema.items()
            if isinstance(t, pl.Decimal) or t in _CAST_FOR_DESIGN]
    return (frame.with_columns(cast) if cast else frame).to_pandas()


_HASH_FORMAT = b"biasstats data hash 2\0"  # bump when the encoding below changes


def _put(h, data: bytes) -> None:
    """Feed ``data`` to the hash with its length in front: concatenated fields can never be
    read back in two ways (``["p\\x1fq", "r"]`` and ``["p", "q\\x1fr"]`` differ)."""
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _value_bytes(s: pl.Series) -> bytes:
    """The values of one column as bytes that determine them exactly, given the column's dtype
    and missing-value mask (hashed beside them): fixed-width little-endian numbers (integers
    as integers, not as floats that merge 2**53 and 2**53 + 1), length-prefixed text."""
    dtype = s.dtype
    if dtype == pl.Boolean:
        return s.fill_null(False).cast(pl.UInt8).to_numpy().astype("<u1").tobytes()
    if dtype.is_float():
        return s.cast(pl.Float64).fill_null(0.0).to_numpy().astype("<f8").tobytes()
    if dtype in (pl.Int8, pl.Int16, pl.Int32, pl.Int64):
        return s.cast(pl.Int64).fill_null(0).to_numpy().astype("<i8").tobytes()
    if dtype in (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64):
        return s.cast(pl.UInt64).fill_null(0).to_numpy().astype("<u8").tobytes()
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        text = s.cast(pl.String).fill_null("")
        lengths = text.str.len_bytes().cast(pl.UInt64).to_numpy().astype("<u8")
        return lengths.tobytes() + text.str.join("").item().encode()
    # anything else (Decimal, 128-bit integers, dates, lists, ...): Python's exact text of each
    # value (Decimal('1.500') -> "1.500"), each length-prefixed
    parts = [b"" if v is None else str(v).encode() for v in s.to_list()]
    lengths = np.array([len(b) for b in parts], dtype="<u8")
    return lengths.tobytes() + b"".join(parts)


def data_hash(df: pl.DataFrame) -> str:
    """sha256 of an unambiguous encoding of the table: its shape, then per column its name,
    dtype, missing-value mask and values (:func:`_value_bytes`), every field length-prefixed.
    Two tables get the same hash only if they have the same columns, dtypes and values in
    the same order; the encoding does not depend on how polars prints or chunks a column."""
    h = hashlib.sha256(_HASH_FORMAT)
    h.update(df.height.to_bytes(8, "little") + df.width.to_bytes(8, "little"))
    for name in df.columns:
        s = df[name]
        _put(h, name.encode())
        _put(h, str(s.dtype).encode())
        _put(h, np.packbits(s.is_null().to_numpy()).tobytes())
        _put(h, _value_bytes(s))
    return h.hexdigest()


def complete_rows(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The rows of ``df`` with no missing value (null, or NaN in a float column) in
    ``columns``: the rows a fit uses (other columns are kept as they are)."""
    keep = [pl.col(c).is_not_null() for c in columns]
    keep += [pl.col(c).is_not_nan() for c in columns if df[c].dtype.is_float()]
    return df.filter(pl.all_horizontal(keep))


def check_magnitudes(df: pl.DataFrame, columns: list[str]) -> None:
    """A one-line SpecError naming the first numeric column of ``columns`` (after
    :func:`complete_rows`) that holds an infinite value, or a value beyond
    :data:`biasstats.limits.MAX_MAGNITUDE` in absolute value, with the values: before any
    default prior is computed from it (a 1e308 outcome gave Exponential(scale=nan))."""
    for c in columns:
        if c not in df.columns or not df[c].dtype.is_numeric():
            continue
        values = df[c].cast(pl.Float64)
        infinite = int(values.is_infinite().sum())
        if infinite:
            raise SpecError(f"column '{c}' holds {infinite} infinite value"
                            f"{'s' if infinite > 1 else ''} (of {df.height} rows); expected "
                            "finite numbers")
        big = values.abs() > MAX_MAGNITUDE
        if big.any():
            over = values.filter(big)
            largest = float(over.gather(over.abs().arg_max()).item())
            raise SpecError(
                f"column '{c}' holds values too large for a model ({int(big.sum())} of "
                f"{df.height} rows beyond ±{MAX_MAGNITUDE:.3g}, the largest {largest:.3g}); "
                "rescale it")


def check_design(X: np.ndarray, names: list[str]) -> None:
    """A one-line SpecError naming the first fixed-effect term whose values a model cannot
    use: infinite or NaN (``log(x)`` of a 0) or beyond ±:data:`MAX_MAGNITUDE`."""
    for j, name in enumerate(names):
        col = np.asarray(X[:, j], dtype=float)
        bad = ~np.isfinite(col) | (np.abs(np.nan_to_num(col)) > MAX_MAGNITUDE)
        if bad.any():
            shown = ", ".join(f"{v:.3g}" for v in dict.fromkeys(col[bad].tolist()))
            raise SpecError(f"term '{name}' gives {int(bad.sum())} value"
                            f"{'s' if bad.sum() > 1 else ''} a model cannot use (of "
                            f"{len(col)} rows: {shown[:80]}); expected finite numbers within "
                            f"±{MAX_MAGNITUDE:.3g}")


def level_labels_of(df: pl.DataFrame, factors: tuple[str, ...]) -> np.ndarray:
    cols = [df[f].cast(pl.Utf8) for f in factors]
    if len(cols) == 1:
        return np.asarray(cols[0].to_list(), dtype=object)
    joined = pl.DataFrame(cols).select(pl.concat_str(list(factors), separator=":"))
    return np.asarray(joined.to_series().to_list(), dtype=object)


def distinct_labels(df: pl.DataFrame, factors: tuple[str, ...], labels: np.ndarray,
                    where: str) -> None:
    """SpecError unless different combinations of ``factors`` get different labels: the level
    ``a:b`` is the values joined with ':', so ('x:y', 'z') and ('x', 'y:z') would both be
    'x:y:z' and be fitted as one level."""
    if len(factors) < 2:
        return
    combos = df.select(factors).with_columns(pl.Series("__label", labels, dtype=pl.Utf8))
    clash = combos.unique().filter(pl.col("__label").is_duplicated()).sort(factors)
    if clash.height:
        a, b = (tuple(str(v) for v in clash.row(i)[:len(factors)]) for i in (0, 1))
        raise SpecError(f"{where}: levels {a} and {b} of {' x '.join(factors)} would both be "
                        f"named '{clash['__label'][0]}'; a value containing ':' makes an "
                        "interaction's level names ambiguous: rename those values")

