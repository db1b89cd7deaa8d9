"""The draws behind every estimand row (``Estimands.draws_table``, written as
``estimand_draws.parquet``): each row of ``all_rows()`` has its draws, found by the columns
naming it, and the draws' mean and HDI are the row's."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import biasstats
from biasstats.effects.draws import DRAW_COLUMNS
from biasstats.inference.predict import hdi
from biasstats.simulate import designs


def assert_rows_have_their_draws(est) -> int:
    rows = est.all_rows()
    table = est.draws_table()
    keys = [c for c in DRAW_COLUMNS if c in rows.columns]
    for c in DRAW_COLUMNS:  # a column the rows lack is null in both
        if c not in rows.columns:
            assert table[c].null_count() == table.height, c
    per_row = table.group_by(keys, maintain_order=True).agg(
        pl.col("value"), pl.col("unit").first(), pl.len().alias("S"))
    joined = rows.join(per_row, on=keys, how="left", nulls_equal=True)
    assert joined.height == rows.height  # one draw vector per row, no duplicates
    assert joined["S"].null_count() == 0, joined.filter(pl.col("S").is_null()).select(keys)
    assert per_row.height == rows.height  # and no draws without a row
    for r in joined.iter_rows(named=True):
        v = np.asarray(r["value"])
        assert v.mean() == pytest.approx(r["mean"], rel=1e-9, abs=1e-12)
        lo, hi = hdi(v[:, None], r["hdi_prob"])[0]
        assert (lo, hi) == pytest.approx((r["hdi_low"], r["hdi_high"]), rel=1e-9, abs=1e-12)
        if "unit" in rows.columns and r["unit"] is not None and r.get("scale"):
            assert r["unit_right"] == r["unit"]
    return rows.height


def test_every_row_has_its_draws_gaussian_and_bernoulli(gaussian_fit, bernoulli_fit):
    for fit, _, _ in (gaussian_fit, bernoulli_fit):
        est = biasstats.estimands(fit)
        assert assert_rows_have_their_draws(est) >= 4
        assert est.draws_table()["draw"].max() == 599  # 2 chains x 300 draws, stacked


def test_every_row_has_its_draws_with_categories_and_expected_ratings(cumulative_fit):
    fit, _, _ = cumulative_fit
    est = biasstats.estimands(fit)
    n = assert_rows_have_their_draws(est)
    scales = set(est.draws_table()["scale"])
    assert {"probability", "expected rating", "difference (rating points)"} <= scales
    assert n > 10


def test_every_row_has_its_draws_within_strata_and_impact():
    df, _ = designs.stratified_condition(seed=4, reps=6)
    df = df.with_columns(pl.col("y").abs() + 1.0)  # a positive outcome, for the impact ratios
    fit = biasstats.fit("y ~ 0 + test:condition + (1|prompt)", data=df, family="gaussian",
                        chains=1, tune=150, draws=100, seed=3, progress=False)
    term = "condition | test"
    est = biasstats.estimands(fit, by=[term, "condition"], contrasts=[term], rank=term,
                              impact=[term], slopes=[])
    assert est.impact.height and est.contrasts["stratum"].null_count() < est.contrasts.height
    assert assert_rows_have_their_draws(est) > 20
