"""The family contract: every family's numpy maths agrees with its PyMC likelihood.

For every family in the table (a new one is tested without editing this file, given values
for its auxiliary parameters below): the numpy log-likelihood equals PyMC's log density of the
family's likelihood, pointwise; the numpy random draw has the family's expected value (or
category probabilities); the placeholder response passes the family's own response check;
the flags the later stages read agree with one another.
"""

from __future__ import annotations

import numpy as np
import pytest

from biasstats.errors import SpecError
from biasstats.model.families import FAMILIES, LINKS, RESPONSES, get_family

# auxiliary values by name (numpy shapes broadcast against (draws, rows))
AUX = {"sigma": 0.8, "nu": 4.0, "phi": 12.0, "alpha": 3.0,
       "cutpoints": np.array([-1.0, 0.2, 1.5])}
TRIALS = 7


def _case(fam, m=9, seed=0):
    """(eta (1, m[, K-1]), numpy aux, PyMC aux, trials, y (m,)) drawn from the family."""
    rng = np.random.default_rng(seed)
    eta = rng.normal(0.3, 0.8, (1, m, 2) if fam.multinomial else (1, m))
    aux_np = {k: (AUX[k][None, None, :] if k in fam.vector_aux else AUX[k]) for k in fam.aux}
    aux_pm = {k: AUX[k] for k in fam.aux}
    n = np.full(m, TRIALS) if fam.needs_trials else fam.default_trials(m)
    y = fam.draw(rng, eta, aux_np, n)[0]
    return eta, aux_np, aux_pm, n, y


@pytest.mark.parametrize("name", list(FAMILIES))
def test_numpy_loglik_equals_the_pymc_likelihood(name):
    import pymc as pm

    fam = FAMILIES[name]
    eta, aux_np, aux_pm, n, y = _case(fam)
    with pm.Model():
        obs = fam.likelihood("y", eta[0], aux_pm, y, {"trials": n}, None)
    expected = pm.logp(obs, y).eval()
    got = np.asarray(fam.loglik(y, eta, aux_np, n), dtype=float).reshape(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)
    assert np.isfinite(got).all()


@pytest.mark.parametrize("name", ["bernoulli", "binomial"])
def test_the_binomial_likelihood_is_scipys_and_draws_binomial_counts(name):
    """The binomial likelihood (k eta - n softplus(eta) + log C(n, k), a CustomDist): its log
    density is log C(n, k) + k log p + (n - k) log(1 - p) with log p = -log(1 + e^-eta) and
    log(1 - p) = -log(1 + e^eta) (stable, so also far in the tails; scipy's binom.logpmf
    is the same where its 1 - p keeps its digits), and its own random draws (what the
    posterior predictive uses) have the mean n p."""
    import pymc as pm
    from scipy.special import expit, gammaln
    from scipy.stats import binom

    fam = FAMILIES[name]
    eta = np.array([-30.0, -4.0, -0.3, 0.0, 0.7, 5.0, 30.0])
    n = np.full(eta.size, TRIALS) if fam.needs_trials else np.ones(eta.size, dtype=int)
    with pm.Model():
        obs = fam.likelihood("y", eta, {}, n // 2, {"trials": n}, None)
    for y in (np.zeros_like(n), n // 2, n):
        got = pm.logp(obs, y).eval()
        exact = (gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
                 - y * np.logaddexp(0, -eta) - (n - y) * np.logaddexp(0, eta))
        np.testing.assert_allclose(got, exact, rtol=1e-13, atol=1e-13)
        mid = np.abs(eta) < 10
        np.testing.assert_allclose(got[mid], binom.logpmf(y, n, expit(eta))[mid], rtol=1e-10)
    draws = pm.draw(obs, draws=20_000, random_seed=3)
    se = np.sqrt(n * expit(eta) * expit(-eta) / 20_000)
    assert (np.abs(draws.mean(axis=0) - n * expit(eta)) <= 5 * se + 1e-12).all()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_numpy_draws_have_the_expected_response(name):
    """Mean of 20,000 draws per row vs the family's mean (or category probabilities), within
    5 Monte Carlo standard errors."""
    fam = FAMILIES[name]
    rng = np.random.default_rng(1)
    S, m = 20_000, 4
    eta1 = rng.normal(0.2, 0.6, (1, m, 2) if fam.multinomial else (1, m))
    eta = np.repeat(eta1, S, axis=0)
    aux = {k: (AUX[k][None, None, :] if k in fam.vector_aux else AUX[k]) for k in fam.aux}
    n = np.full(m, TRIALS) if fam.needs_trials else None
    y = np.asarray(fam.draw(rng, eta, aux, n), dtype=float)
    assert y.shape == (S, m)
    assert fam.unsupported(y.ravel(), None if n is None else np.tile(n, S))[1] is None
    if fam.categories is not None:
        p = fam.categories(eta1, aux)[0]                           # (m, K)
        K = p.shape[1]
        share = (y[:, :, None] == np.arange(K)).mean(axis=0)
        se = np.sqrt(p * (1 - p) / S)
        assert (np.abs(share - p) < 5 * se + 1e-12).all(), (share, p)
        return
    mean = np.asarray(fam.mean(eta1, aux), dtype=float)[0] * (TRIALS if fam.needs_trials else 1)
    se = y.std(axis=0) / np.sqrt(S)
    assert (np.abs(y.mean(axis=0) - mean) < 5 * se).all(), (y.mean(axis=0), mean)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_placeholder_passes_the_family_check_and_flags_agree(name):
    fam = FAMILIES[name]
    assert fam.link in LINKS and fam.response in RESPONSES
    if fam.has_categories:
        with pytest.raises(SpecError, match="response categories"):
            fam.placeholder(4)
        assert fam.mean is None and fam.categories is not None
        assert fam.ordered != fam.multinomial
    else:
        y = fam.placeholder(6)
        assert len(y) == 6 and fam.unsupported(y)[1] is None
        assert fam.mean is not None and fam.inverse_link is not None
    assert fam.binary_outcomes == (fam.response_scale == "probability" and not fam.has_categories)
    assert fam.single_outcome <= fam.binary_outcomes and fam.needs_trials <= fam.binary_outcomes
    assert fam.collapse <= fam.binary_outcomes and fam.patterns <= fam.needs_trials
    assert (fam.beta_ab is not None) <= fam.patterns
    for alias in fam.aliases:
        assert get_family(alias) is fam


def test_the_contrast_and_slope_scales_follow_the_link():
    assert get_family("bernoulli").slope_scale[0] == "odds_ratio"
    assert get_family("poisson").slope_scale[0] == "ratio"
    assert get_family("gaussian").slope_scale[0] == "difference"
    assert get_family("cumulative").slope_scale[0] == "odds_ratio"
    assert get_family("lognormal").latent_scale == "outcome"
    np.testing.assert_allclose(get_family("bernoulli").inverse_link(np.array([0.0])), [0.5])
