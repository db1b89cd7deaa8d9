"""The data hash (part of the fit cache key) tells different tables apart.

Known truth: two tables hash alike exactly when they have the same column names, dtypes and
values (missing values included) in the same order. The old hash joined text values with a
separator, so ``["p\\x1fq", "r"]`` and ``["p", "q\\x1fr"]`` shared a cache key (and a cached
posterior whose levels were no longer in the data); it also cast integers to floats (2**53
and 2**53 + 1 shared a key) and missing values to NaN.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biasstats.model.build import prepare
from biasstats.model.data import data_hash


@pytest.mark.parametrize("a,b", [
    ({"g": ["p\x1fq", "r"]}, {"g": ["p", "q\x1fr"]}),            # the reported collision
    ({"g": ["\x00", "r"]}, {"g": [None, "r"]}),                   # old: None written as \x00
    ({"g": ["a", ""]}, {"g": ["", "a"]}),
    ({"x": [2**53]}, {"x": [2**53 + 1]}),                          # old: integers as floats
    ({"x": [None, 1.0]}, {"x": [float("nan"), 1.0]}),              # old: null written as NaN
    ({"a|b": ["c"]}, {"a": ["b|c"]}),                              # name and value boundary
    ({"x": [1, 2]}, {"x": [1.0, 2.0]}),                            # same values, other dtype
    ({"a": ["x"], "b": ["y"]}, {"b": ["y"], "a": ["x"]}),          # column order
])
def test_tables_that_differ_get_different_hashes(a, b):
    ta, tb = pl.DataFrame(a), pl.DataFrame(b)
    assert data_hash(ta) != data_hash(tb)
    assert data_hash(ta) == data_hash(ta.clone())


def test_separator_in_a_level_gives_another_model_key():
    """The reported case through the model's data preparation: the level names differ, so
    the data hash in the cache key differs."""
    y = [1, 0, 1, 0, 1, 1]
    a = pl.DataFrame({"y": y, "g": ["p\x1fq", "r"] * 3})
    b = pl.DataFrame({"y": y, "g": ["p", "q\x1fr"] * 3})
    sa, sb = prepare("y ~ 1 + (1|g)", a), prepare("y ~ 1 + (1|g)", b)
    assert sa.groups[0].levels != sb.groups[0].levels
    assert sa.data_hash != sb.data_hash


def test_hash_ignores_how_the_table_is_chunked():
    t = pl.DataFrame({"g": ["a", None, "b\x1f", "c"], "x": [1, 2, None, 4],
                      "z": [0.5, float("nan"), None, -1.0]})
    pieces = pl.concat([t[:1], t[1:3], t[3:]], rechunk=False)
    assert pieces.n_chunks() > 1
    assert data_hash(pieces) == data_hash(t)


# ------------------------------------------------------------------ property: no collision
# few characters, short values: tables that differ only in where text is split are common
TEXT = st.text(alphabet=["a", "\x1f", "\x00", "é"], max_size=3)
VALUES = {
    pl.String: TEXT,
    pl.Int64: st.integers(-(2**63), 2**63 - 1),
    # + 0.0 turns -0.0 into 0.0 (equal to polars, different bits)
    pl.Float64: st.floats(allow_nan=False).map(lambda v: v + 0.0),
    pl.Boolean: st.booleans(),
    pl.Categorical: TEXT,
}


@st.composite
def tables(draw, like: pl.DataFrame | None = None):
    """A small table; with ``like``, one with the same shape, names and dtypes (so that only
    values differ: the case a value encoding must tell apart)."""
    if like is not None:
        n, schema = like.height, list(like.schema.items())
    else:
        n = draw(st.integers(0, 3))
        names = draw(st.lists(st.text(alphabet=["a", "|", "\x1f"], min_size=1, max_size=3),
                              min_size=1, max_size=3, unique=True))
        schema = [(name, draw(st.sampled_from(list(VALUES)))) for name in names]
    cols = []
    for name, dtype in schema:
        kind = next(k for k in VALUES if dtype == k)  # a schema's dtype is an instance
        values = draw(st.lists(st.none() | VALUES[kind], min_size=n, max_size=n))
        cols.append(pl.Series(name, values, dtype=pl.String if dtype == pl.Categorical
                              else dtype).cast(dtype))
    return pl.DataFrame(cols)


@st.composite
def resplit(draw, a: pl.DataFrame):
    """``a`` with one text column split differently at the same text: its values joined with
    some character (or none) read back at other cuts. Tables a separator- or plain-joined
    encoding cannot tell apart."""
    cols = [c for c, t in a.schema.items()
            if t in (pl.String, pl.Categorical) and a[c].null_count() == 0]
    if a.height < 2 or not cols:
        return a.clone()
    col = draw(st.sampled_from(cols))
    sep = draw(st.sampled_from(["\x1f", "", "\x00"]))
    joined = sep.join(a[col].cast(pl.String).to_list())
    spots = ([i for i, ch in enumerate(joined) if ch == sep] if sep
             else list(range(len(joined) + 1)))
    if len(spots) < a.height - 1:
        return a.clone()
    cuts = sorted(draw(st.lists(st.sampled_from(spots), min_size=a.height - 1,
                                max_size=a.height - 1, unique=bool(sep))))
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(joined[start:cut])
        start = cut + len(sep)
    pieces.append(joined[start:])
    return a.with_columns(pl.Series(col, pieces).cast(a.schema[col]))


def _same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.schema == b.schema and a.equals(b, null_equal=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_two_different_tables_never_share_a_hash(data):
    a = data.draw(tables())
    b = data.draw(st.one_of(resplit(a), tables(like=a), tables(), st.just(a.clone())))
    assert (data_hash(a) == data_hash(b)) == _same(a, b)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_text_split_elsewhere_never_shares_a_hash(data):
    """The reported class, searched for directly: one text column (or two), its values
    re-split at other places of the same joined text."""
    n = data.draw(st.integers(2, 4))
    values = st.lists(st.text(alphabet=["a", "\x1f", "\x00"], max_size=3), min_size=n,
                      max_size=n)
    a = pl.DataFrame({"g": data.draw(values), "h": data.draw(values)})
    b = data.draw(resplit(a))
    assert (data_hash(a) == data_hash(b)) == _same(a, b)


# ------------------------------------------------- interaction levels are joined with ':'
def test_interaction_levels_that_would_print_alike_are_refused():
    """('x:y', 'z') and ('x', 'y:z') are two cells of a:b; joined with ':' both read 'x:y:z'.
    Fitted as one level they would pool two groups silently: a one-line SpecError instead."""
    from biasstats.errors import SpecError

    df = pl.DataFrame({"y": [1, 0, 1, 0, 1, 0, 1, 1],
                       "a": ["x:y", "x", "x:y", "x", "q", "q", "q", "q"],
                       "b": ["z", "y:z", "z", "y:z", "r", "s", "r", "s"]})
    for formula in ("y ~ 1 + (1|a:b)", "y ~ 1 + (1|a/b)"):
        with pytest.raises(SpecError, match=r"would both be named 'x:y:z'"):
            prepare(formula, df)
    with pytest.raises(SpecError, match=r"\[model.aux\] phi: grouping 'a:b'"):
        prepare("k | trials(n) ~ 1", df.with_columns(k=pl.col("y"), n=pl.lit(3)),
                family="beta_binomial", aux={"phi": "~ 1 + (1|a:b)"})
    # the same cells with unambiguous names: four levels, one per cell
    ok = prepare("y ~ 1 + (1|a:b)", df.with_columns(pl.col("a").str.replace(":", "-")))
    assert ok.groups[0].levels == ["q:r", "q:s", "x-y:z", "x:y:z"]
