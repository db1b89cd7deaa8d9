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
    assert isinstance(fit, biasstats.inference.Fit)
    assert {"sd_llm", "r_llm", "Intercept"} <= set(fit.param_names())
    assert fit.spec.n_rows == 400 and fit.spec.collapsed
    assert biasstats.inference.fit is not None  # the stage's function is still there by name
    # target acceptance chosen from the model's geometry, and the reason recorded
    assert fit.settings["target_accept"] in (0.9, 0.95, 0.99)
    assert fit.settings["target_accept_reason"].startswith("automatic: largest funnel risk")


# slow (14-17 s, three fits): identical draws for one seed are also held by
# test_determinism (fresh and warm compile caches) and the cache tests
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_same_seed_gives_the_same_numbers_and_another_seed_does_not():
    rng = np.random.default_rng(2)
    df = pl.DataFrame({"llm": ["a", "b", "c"] * 100, "variant": ["v1", "v2"] * 150,
                       "congruent": (rng.random(300) < 0.6).astype(float)})
    kw = dict(data=df, family="bernoulli", chains=2, draws=60, tune=60, progress=False)
    f1 = biasstats.fit("congruent ~ 1 + (1|llm) + (1|variant)", seed=11, **kw)
    f2 = biasstats.fit("congruent ~ 1 + (1|llm) + (1|variant)", seed=11, **kw)
    f3 = biasstats.fit("congruent ~ 1 + (1|llm) + (1|variant)", seed=12, target_accept=0.85,
                       **kw)
    assert f3.settings["target_accept"] == 0.85
    assert f3.settings["target_accept_reason"] == "set by user"
    for group in ("posterior", "posterior_predictive", "log_likelihood"):
        a, b = f1.idata[group].to_dataset(), f2.idata[group].to_dataset()
        for var in a.data_vars:
            np.testing.assert_array_equal(a[var].values, b[var].values)
    assert not np.array_equal(f1.idata.posterior["Intercept"].values,
                              f3.idata.posterior["Intercept"].values)


def test_fit_settings_are_checked_like_the_spec_fit_table():
    with pytest.raises(biasstats.errors.SpecError,
                       match=r"^\[fit\] target_accept: expected less than 1, got 1.5$"):
        biasstats.inference.fit_settings(target_accept=1.5)
    with pytest.raises(biasstats.errors.SpecError,
                       match=r"^\[fit\] adaptation: expected 'auto', 'low_rank' or 'diag', got \"dense\"$"):
        biasstats.inference.fit_settings(adaptation="dense")
    assert biasstats.inference.fit_settings(chains=2).model_dump()["chains"] == 2
