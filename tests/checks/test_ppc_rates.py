"""Grouped predictive rates: observed rates per level equal the raw data's, whatever the
collapsing into cells, and replicated draws are summarised per level."""

from __future__ import annotations

import numpy as np
import polars as pl

from biasstats.checks.ppc import grouped_rates
from biasstats.model.build import prepare


def test_grouped_rates_match_the_raw_data_per_level():
    rng = np.random.default_rng(4)
    n = 3000
    df = pl.DataFrame({
        "llm": rng.choice(["a", "b", "c"], n),
        "stereotype": rng.choice(["s1", "s2"], n),
        "congruent": (rng.random(n) < 0.6).astype(float),
    })
    spec = prepare("congruent ~ 1 + (1|llm) + (1|stereotype)", df)
    assert spec.collapsed and spec.cells.height == 6
    rep = np.tile(spec.y.astype(float), (40, 1))            # replicates equal to the data
    out = grouped_rates(spec, rep, ("llm", "stereotype"))
    raw = (df.group_by("llm", "stereotype").agg(pl.col("congruent").mean().alias("rate"),
                                                 pl.len().alias("n"))
           .with_columns(pl.concat_str(["llm", "stereotype"], separator=":").alias("level")))
    got = out.join(raw, on="level")
    assert got.height == 6 and (out["group_term"] == "llm:stereotype").all()
    np.testing.assert_allclose(got["observed"], got["rate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["rep_mean"], got["rate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["n"], got["n_right"].cast(pl.Float64))
    overall = grouped_rates(spec, rep, ())
    assert overall["level"].to_list() == ["all"] and overall["group_term"][0] == "overall"
    assert abs(overall["observed"][0] - df["congruent"].mean()) < 1e-12
