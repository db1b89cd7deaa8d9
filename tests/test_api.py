"""The brms-style Python entry point: ``biasstats.fit(formula, data=..., family=...)``."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import biasstats


@pytest.mark.filterwarnings("ignore")
def test_biasstats_fit_is_callable_brms_style():
    rng = np.random.default_rng(0)
    df = pl.DataFrame({"llm": ["a", "b"] * 200, "congruent": (rng.random(400) < 0.7).astype(float)})
    fit = biasstats.fit("congruent ~ 1 + (1|llm)", data=df, family="bernoulli", chains=1,
                        draws=100, tune=100, seed=1, progress=False)
    assert isinstance(fit, biasstats.fit.Fit)
    assert {"sd_llm", "r_llm", "Intercept"} <= set(fit.param_names())
    assert fit.spec.n_rows == 400 and fit.spec.collapsed
    assert biasstats.fit.fit is not None  # the stage's function is still there by name
