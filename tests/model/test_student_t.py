"""The Student-t family: robust location models of heavy-tailed outcomes (token counts with a
few runaway replies, latencies).

Fast (default run): one simulated data set with heavy tails (nu = 3: about 1 reply in 40
beyond 3.2 sigma, where a gaussian has 1 in 700) and known location, slope, group SD, sigma
and nu; every posterior mean must lie within 3.5 posterior SDs of its truth (for a calibrated
posterior each misses with probability about 5e-4) and the posterior must see the heavy tails
(nu's 90% interval below 10, where a gaussian-like t would put it).

Slow (``nox -s slow``): coverage over replications, with the harnesses of
:mod:`biasstats.checks.coverage` (every parameter drawn from the prior the model is fitted
with) and :mod:`biasstats.checks.estimand_coverage` (the 90% HDI of a condition contrast).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from biasstats.checks.coverage import run_coverage
from biasstats.checks.estimand_coverage import run_estimand_coverage
from biasstats.model.families import get_family

TRUTH = {"Intercept": 2.0, "b": 0.5, "sigma": 1.0, "nu": 3.0}


def _heavy_tailed(seed: int = 3, n: int = 600, groups: int = 8):
    rng = np.random.default_rng(seed)
    g = np.arange(n) % groups
    x = rng.normal(size=n)
    r = rng.normal(0.0, 0.6, groups)
    r -= r.mean()
    y = (TRUTH["Intercept"] + TRUTH["b"] * x + r[g]
         + TRUTH["sigma"] * rng.standard_t(TRUTH["nu"], n))
    return pl.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]}), float(np.std(r, ddof=1))


def test_student_t_recovers_location_sigma_and_nu_despite_outliers():
    from biasstats import fit

    df, _ = _heavy_tailed()
    y = df["y"].to_numpy()
    resid = y - TRUTH["Intercept"] - TRUTH["b"] * df["x"].to_numpy()
    assert np.abs(resid).max() > 8 * TRUTH["sigma"]  # the data do have outliers
    f = fit("y ~ x + (1|g)", df, family="student_t", chains=2, tune=500, draws=500, seed=1,
            progress=False)
    post = f.idata.posterior.to_dataset()
    draws = {"Intercept": post["Intercept"].values.ravel(),
             "b": post["b"].sel(coef="x").values.ravel(),
             "sigma": post["sigma"].values.ravel(), "nu": post["nu"].values.ravel()}
    for name, d in draws.items():
        z = (d.mean() - TRUTH[name]) / d.std()
        assert abs(z) < 3.5, (name, d.mean(), d.std(), TRUTH[name])
    assert np.quantile(draws["nu"], 0.95) < 10  # heavy tails seen, not a gaussian
    # a gaussian's sigma would take the outliers in: sd(resid) is about sqrt(3) sigma
    assert np.quantile(draws["sigma"], 0.95) < 0.8 * np.std(resid)
    assert f.diagnostics()["divergences"] == 0
    # the expected response is the location: the marginal mean of the data's rows
    est = f.predict(df.head(3))
    assert np.isfinite(est["mean"].to_numpy()).all()


def test_the_family_is_found_by_its_names():
    fam = get_family("studentt")
    assert fam is get_family("student_t")
    assert fam.aux == {"sigma": "Exponential(scale={sd_y})", "nu": "Gamma(2, 0.1)"}
    assert fam.link == "identity" and fam.slope_scale[0] == "difference"


COVERAGE_SETUP = {"priors": {"Intercept": "Normal(0, 2)", "b": "Normal(0, 1)",
                             "sd_g": "HalfNormal(1)", "sigma": "Gamma(4, 4)",
                             "nu": "Gamma(2, 0.1)"}}


@pytest.mark.slow
def test_student_t_parameter_coverage():
    """25 replications of ``y ~ x + (1|g)`` (200 rows, 6 groups), every truth drawn from the
    fitted priors: 125 indicators of the central 90% intervals."""
    res = run_coverage("student_t", reps=25, seed=2026, setup=COVERAGE_SETUP)
    print(res.line())
    print(res.by_parameter())
    assert res.pvalue() > 0.001, res.line()
    assert 0.80 <= res.coverage <= 0.97, res.line()


def t_condition(seed: int = 1, prompts: int = 8, reps: int = 10, effect: float = 35.0,
                sd_prompt: float = 20.0, sigma: float = 30.0, nu: float = 3.0):
    """``y ~ condition + (1|prompt)`` with Student-t noise (nu = 3: outlying replies). Truth:
    the condition difference of the locations."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, sd_prompt, prompts)
    rows = {"prompt": [], "condition": [], "y": []}
    for p in range(prompts):
        for cond, eff in (("control", 0.0), ("treated", effect)):
            rows["prompt"] += [f"p{p:02d}"] * reps
            rows["condition"] += [cond] * reps
            rows["y"] += (300 + eff + r[p] + sigma * rng.standard_t(nu, reps)).tolist()
    return pl.DataFrame(rows), {"difference:condition:treated − control": effect}


@pytest.mark.slow
def test_student_t_contrast_covers_at_nominal_rate():
    """The condition contrast's 90% HDI over 100 replications (new prompt effects and
    noise): coverage in [0.85, 0.95] (Monte Carlo SD of the coverage 0.03)."""
    res = run_estimand_coverage("student_t", reps=100, prob=0.90, seed=2,
                                design=(t_condition, {}, "y ~ condition + (1|prompt)"))
    print(res.line())
    assert res.table["replication"].n_unique() == 100
    assert 0.85 <= res.coverage <= 0.95, res.line()
