"""Distributional auxiliary parameters: ``[model.aux] phi = "~ 1 + (1|llm)"`` (log link).

Truth: the beta-binomial log density written out by hand with one phi per group."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import betabinom, halfnorm, norm

from biasstats.errors import SpecError
from biasstats.model.build import prepare
from biasstats.model.design import aux_draws
from biasstats.model.graph import build_model


def _data(seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(4), 50)
    phi = np.array([2.0, 6.0, 20.0, 60.0])[g]
    p = rng.beta(0.6 * phi, 0.4 * phi)
    n = np.full(g.size, 16)
    return pl.DataFrame({"g": [f"g{i}" for i in g], "k": rng.binomial(n, p), "n": n,
                         "x": rng.normal(size=g.size)})


def test_aux_group_formula_gives_one_phi_per_level():
    df = _data()
    spec = prepare("k | trials(n) ~ 1", df, "beta_binomial", aux={"phi": "~ 1 + (1|g)"})
    assert set(spec.priors) == {"Intercept", "phi_Intercept", "sd_phi_g"}
    assert str(spec.priors["phi_Intercept"]) == "Normal(2.996, 1.5)"  # log(20), 1.5
    m = build_model(spec)
    logp = m.compile_logp()
    z = np.array([0.3, -0.1, 0.5, -0.7])
    z = z - z.mean()  # a zero-sum point; ZeroSumNormal's value is its first L-1 entries
    point = {"Intercept": 0.4, "phi_Intercept": 2.0, "sd_phi_g_log__": np.log(0.8),
             "z_phi_g_zerosum__": _zerosum_free(z)}
    got = float(logp(point))
    y, n, g = spec.y, spec.trials, spec.cells["g"].to_numpy()
    w = spec.weights
    log_phi = 2.0 + 0.8 * z[np.array([int(s[1]) for s in g])]
    phi = np.exp(log_phi)
    mu = 1 / (1 + np.exp(-0.4))
    lik = np.sum(w * betabinom.logpmf(y, n, mu * phi, (1 - mu) * phi))
    prior = (norm.logpdf(0.4, 0, 2.5) + norm.logpdf(2.0, 2.9957, 1.5)
             + halfnorm.logpdf(0.8, scale=1.0) + np.log(0.8)  # log-transform Jacobian
             + _zsn_logp(z))
    assert got == pytest.approx(lik + prior, rel=1e-9)


def _zerosum_free(z):
    """The unconstrained value PyMC's zerosum transform maps to ``z`` (sum zero)."""
    import pytensor.tensor as pt
    from pymc.distributions.transforms import ZeroSumTransform

    return ZeroSumTransform(zerosum_axes=[-1]).forward(pt.as_tensor(z)).eval()


def _zsn_logp(z):
    import pymc as pm

    return float(pm.logp(pm.ZeroSumNormal.dist(sigma=1.0, shape=len(z)), z).eval())


def test_aux_draws_follow_the_formula():
    import xarray as xr

    df = _data()
    spec = prepare("k | trials(n) ~ 1", df, "beta_binomial", aux={"phi": "~ 1 + x"})
    assert set(spec.priors) == {"Intercept", "phi_Intercept", "b_phi_x"}
    post = xr.Dataset({"phi_Intercept": (("chain", "draw"), [[1.0, 2.0]]),
                       "phi_b": (("chain", "draw", "phi_coef"), [[[0.5], [-0.5]]])})
    got = aux_draws(post, spec, "phi")
    x = spec.aux["phi"].X[:, 0]
    np.testing.assert_allclose(got, np.exp(np.stack([1 + 0.5 * x, 2 - 0.5 * x])))
    # without a formula: the scalar's draws, (S, 1)
    plain = prepare("k | trials(n) ~ 1", df, "beta_binomial")
    assert aux_draws(xr.Dataset({"phi": (("chain", "draw"), [[3.0, 4.0]])}), plain,
                     "phi").shape == (2, 1)


@pytest.mark.parametrize(("aux", "msg"), [
    ({"sigma": "~ 1 + (1|g)"}, "[model.aux] sigma: family 'beta_binomial' has no positive "
                               "auxiliary parameter 'sigma' (it has: phi)"),
    ({"phi": "1 + (1|g)"}, "[model.aux] phi = '1 + (1|g)': expected a right-hand side starting "
                           "with '~', e.g. \"~ 1 + (1|llm)\""),
    ({"phi": "~ 1 + (x|g)"}, "[model.aux] phi: term '(x|g)' must be a varying intercept (1|g)"),
])
def test_bad_aux_formula_is_one_line(aux, msg):
    with pytest.raises(SpecError) as e:
        prepare("k | trials(n) ~ 1", _data(), "beta_binomial", aux=aux)
    assert str(e.value) == msg


def test_aux_formula_reads_unknown_columns_as_spec_errors():
    with pytest.raises(SpecError, match="llm"):
        prepare("k | trials(n) ~ 1", _data(), "beta_binomial", aux={"phi": "~ 1 + (1|llm)"})
