"""biasstats.checks.psis is ArviZ's PSIS-LOO computed over all observations at once: it must
give arviz_stats.loo's numbers, observation by observation."""

import warnings

import numpy as np
import pytest
import xarray as xr

azs = pytest.importorskip("arviz_stats")


def _tree(seed=1, chains=4, draws=500, n=300):
    rng = np.random.default_rng(seed)
    ll = rng.normal(-1, 0.3, (chains, draws, n))
    ll[..., :60] = -np.exp(rng.normal(0, 1.5, (chains, draws, 60)))  # heavy right tails: k > 0.7
    ll[..., 60:70] = np.round(ll[..., 60:70], 1)  # ties: first quartile = minimum, k = NaN
    post = xr.Dataset({"a": (("chain", "draw"), rng.normal(size=(chains, draws))),
                       "b": (("chain", "draw", "j"), rng.normal(size=(chains, draws, 3)))})
    return xr.DataTree.from_dict({"posterior": post, "log_likelihood": xr.Dataset(
        {"y": (("chain", "draw", "obs"), ll)})})


@pytest.mark.parametrize("chains", [1, 4])
def test_vectorised_psis_loo_equals_arviz_observation_by_observation(chains):
    from biasstats.checks import psis

    tree = _tree(chains=chains)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = azs.loo(tree, pointwise=True)
    got = psis.loo(tree)
    k_ref, k = ref.pareto_k.values, got.pareto_k.values
    # the fixture reaches every branch: smoothed tails, k above the threshold, failed fits
    assert np.nanmax(k_ref) > 0.7 and np.isnan(k_ref).sum() > 0 and np.nanmin(k_ref) < 0.5
    assert np.array_equal(np.isnan(k), np.isnan(k_ref))
    np.testing.assert_allclose(k[~np.isnan(k)], k_ref[~np.isnan(k_ref)], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.elpd_i.values, ref.elpd_i.values, rtol=1e-10)
    assert got.elpd_i.dims == ref.elpd_i.dims
    lw_ref = ref.log_weights.transpose(*got.log_weights.dims).values
    np.testing.assert_allclose(got.log_weights.values, lw_ref, rtol=1e-10, atol=1e-10)
    assert got.p_loo_i.sum() == pytest.approx(ref.p, rel=1e-10)
    for f in ("elpd", "se", "p", "good_k"):
        assert getattr(got, f) == pytest.approx(getattr(ref, f), rel=1e-12), f
    for f in ("n_samples", "n_data_points", "warning", "scale"):
        assert getattr(got, f) == getattr(ref, f), f
    # and azs.compare takes it as its own
    table = azs.compare({"a": got, "b": psis.loo(_tree(seed=2, chains=chains))})
    assert list(table["rank"]) == [0, 1]


def test_binomial_loglik_equals_scipy_and_stays_finite_at_extreme_logits():
    from scipy.special import expit
    from scipy.stats import binom

    from biasstats.model.families import binomial_loglik

    rng = np.random.default_rng(0)
    eta = rng.normal(0, 3, (50, 40))
    n = rng.integers(1, 20, 40)
    k = rng.binomial(n, 0.4)
    np.testing.assert_allclose(binomial_loglik(k, n, eta), binom.logpmf(k, n, expit(eta)),
                               rtol=1e-10, atol=1e-10)
    # all 16 of 16 at logit -40: log p = -40 exactly (clipping p at 1e-12 gave -27.6 each)
    assert binomial_loglik([16], [16], np.array([[-40.0]]))[0, 0] == pytest.approx(-640.0)
