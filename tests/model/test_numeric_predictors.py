"""Every numeric column type is a number to the model, never a factor.

Known truth: the same predictor values stored as Float64, Decimal, 8- to 128-bit signed or
unsigned integers, Float32 or Float16 give the same design — one slope column ``x`` with the
same values — whether the table comes from the API (polars or pandas) or from a Parquet file
through ingest. Before, a Decimal column reached patsy as Python objects and was coded as a
factor (one coefficient per distinct value), and a 128-bit integer column could not be
converted at all.
"""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biasstats.inference.from_spec import check_finite, check_support, model_data
from biasstats.ingest import ingest
from biasstats.model.build import prepare

# whole numbers 0..59 are exact in every one of these types
DTYPES = [pl.Decimal(10, 3), pl.UInt16, pl.Int8, pl.Float32, pl.Float16, pl.UInt8, pl.UInt32,
          pl.UInt64, pl.Int16, pl.Int32, pl.Int64, pl.Int128, pl.UInt128]
FORMULA = "y ~ x + (1|llm)"


def _data(n: int = 240, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, n)
    y = (rng.random(n) < 1 / (1 + np.exp(1 - 0.04 * x))).astype(np.int64)
    return pl.DataFrame({"y": y, "x": x.astype(float), "llm": rng.choice(["a", "b", "c"], n)})


def _same_design(got, want) -> None:
    assert got.fixed_names == want.fixed_names == ["x"]
    assert got.X.shape == want.X.shape == (len(want.y), 1)
    np.testing.assert_array_equal(got.X, want.X)
    np.testing.assert_array_equal(got.y, want.y)
    np.testing.assert_array_equal(got.trials, want.trials)
    assert [g.levels for g in got.groups] == [g.levels for g in want.groups]
    np.testing.assert_array_equal(got.groups[0].idx, want.groups[0].idx)
    assert got.priors.keys() == want.priors.keys()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_numeric_dtype_gives_one_slope(dtype):
    df = _data()
    want = prepare(FORMULA, df)
    got = prepare(FORMULA, df.with_columns(pl.col("x").cast(dtype)))
    _same_design(got, want)


@pytest.mark.parametrize("dtype", [pl.Decimal(10, 3), pl.UInt16, pl.Int128], ids=str)
def test_numeric_dtype_gives_one_varying_slope(dtype):
    df = _data()
    want = prepare("y ~ 1 + (x|llm)", df)
    got = prepare("y ~ 1 + (x|llm)", df.with_columns(pl.col("x").cast(dtype)))
    assert got.groups[0].coefs == want.groups[0].coefs == ["Intercept", "x"]
    np.testing.assert_array_equal(got.groups[0].Z, want.groups[0].Z)


@pytest.mark.parametrize("dtype", [pl.Decimal(10, 3), pl.Float32, pl.Float16], ids=str)
def test_fractional_values_keep_their_value(dtype):
    """Quarter steps are exact in each type: the slope column holds the same numbers, and a
    transform of the column (scale) is computed from them."""
    df = _data().with_columns(pl.col("x") / 4)
    for formula in (FORMULA, "y ~ scale(x) + (1|llm)"):
        want = prepare(formula, df, collapse=False)
        got = prepare(formula, df.with_columns(pl.col("x").cast(dtype)), collapse=False)
        assert got.fixed_names == want.fixed_names and len(got.fixed_names) == 1
        np.testing.assert_array_equal(got.X, want.X)


def test_pandas_decimal_and_unsigned_columns_are_numbers():
    """The API's pandas path: Python Decimal objects, an Arrow decimal and numpy uint16."""
    base = _data()
    want = prepare(FORMULA, base)
    pdf = base.to_pandas()
    for col in (pdf["x"].map(lambda v: decimal.Decimal(f"{v:.3f}")),
                pdf["x"].astype(pd.ArrowDtype(pa.decimal128(10, 3))),
                pdf["x"].astype(np.uint16)):
        got = prepare(FORMULA, pdf.assign(x=col))
        _same_design(got, want)


def test_float16_nan_counts_as_missing():
    df = _data().with_columns(pl.when(pl.int_range(pl.len()) < 5).then(float("nan"))
                              .otherwise(pl.col("x")).alias("x"))
    want = prepare(FORMULA, df)
    got = prepare(FORMULA, df.with_columns(pl.col("x").cast(pl.Float16)))
    assert got.n_dropped == want.n_dropped == 5
    _same_design(got, want)


SPEC = """
[analysis]
name = "numeric"
[data]
source = "{source}"
[data.columns]
llm = "model"
congruent = "answer"
[model]
formula = "congruent ~ x + (1|llm)"
"""


def _prepared_from_parquet(folder, arrow_type, name):
    df = _data()
    x = pa.array(df["x"].to_numpy()).cast(arrow_type)
    table = pa.table({"model": df["llm"].to_list(), "answer": df["y"].to_list(), "x": x})
    pq.write_table(table, folder / f"{name}.parquet")
    spec = folder / f"{name}.toml"
    spec.write_text(SPEC.format(source=f"{name}.parquet"))
    res = ingest(spec)
    data = model_data(res.spec, res.table)
    check_finite(res.spec, data, res.ledger)
    check_support(res.spec, data, res.ledger)
    m = res.spec.model
    return res.table.schema["x"], prepare(m.formula, data, m.family, dict(m.priors),
                                          dict(m.centered))


@pytest.mark.parametrize("arrow_type", [pa.decimal128(10, 3), pa.uint16(), pa.int8(),
                                        pa.float32(), pa.float16(), pa.uint64()], ids=str)
def test_parquet_numeric_column_gives_one_slope(tmp_path, arrow_type):
    dtype, want = _prepared_from_parquet(tmp_path, pa.float64(), "f64")
    assert dtype == pl.Float64
    dtype, got = _prepared_from_parquet(tmp_path, arrow_type, "other")
    assert dtype != pl.Float64  # ingest keeps the file's type: the design must handle it
    _same_design(got, want)


@pytest.mark.parametrize("dtype", [pl.Decimal(10, 3), pl.UInt16, pl.Int128, pl.Float16], ids=str)
def test_new_data_of_another_numeric_type_is_coded_the_same(dtype):
    """Prediction and slope estimands code new data through the fitted design: a Decimal (or
    other numeric) column of new data gives the slope column's numbers, as Float64 does."""
    from biasstats.inference.predict import fixed_design, varying_design
    from biasstats.model.data import design_frame

    df = _data()
    spec = prepare("y ~ x + (x|llm)", df)
    new = df.head(12).select("x", "llm")
    want = design_frame(new)
    got = design_frame(new.with_columns(pl.col("x").cast(dtype)))
    np.testing.assert_array_equal(fixed_design(spec, got), fixed_design(spec, want))
    np.testing.assert_array_equal(fixed_design(spec, got)[:, 0], new["x"].to_numpy())
    g = spec.groups[0]
    np.testing.assert_array_equal(varying_design(g, got), varying_design(g, want))
