"""The logit-normal binomial family: k of n whose n outcomes share p = logistic(eta + u),
u ~ Normal(0, sigma), integrated out through the beta with the same mean and variance of p.

Truths: adaptive quadrature of the logit-normal's moments (scipy.integrate.quad), the binomial
(sigma -> 0), and data simulated the way the Bai et al. replies are made (cells of one LLM at
different logits sharing one reply-level sigma), where the raw mean is unbiased and a
beta-binomial with one phi is not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import betabinom, binom, norm

from biasstats.model.families import get_family
from biasstats.model.families.binomial import _ln_moments

FAM = get_family("logitnormal_binomial")


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("eta", [-6.0, -1.0, 0.0, 2.5, 6.0])
def test_moments_match_adaptive_quadrature(eta, sigma):
    loc = eta * np.sqrt(1 + (16 * np.sqrt(3) / (15 * np.pi)) ** 2 * sigma ** 2)

    def moment(f):
        return quad(lambda z: f(expit(loc + sigma * z)) * norm.pdf(z), -12, 12,
                    points=[-loc / sigma], limit=200, epsabs=1e-14)[0]

    m = moment(lambda p: p)
    v = moment(lambda p: p * p) - m * m
    mu, m2 = _ln_moments(np.array([eta]), np.array([sigma]))
    assert mu[0] == pytest.approx(m, abs=3e-5)
    assert m2[0] - mu[0] ** 2 == pytest.approx(v, rel=1e-3)
    a, b = FAM.beta_ab(np.array([eta]), {"sigma": np.array([sigma])})
    # the beta has the logit-normal's mean and variance
    assert a[0] / (a[0] + b[0]) == pytest.approx(m, abs=3e-5)
    assert b[0] / (a[0] + b[0]) == pytest.approx(1 - m, abs=3e-5)
    assert a[0] * b[0] / ((a[0] + b[0]) ** 2 * (a[0] + b[0] + 1)) == pytest.approx(v, rel=1e-3)
    assert FAM.mean(np.array([eta]), {"sigma": sigma})[0] == pytest.approx(m, abs=3e-5)
    # eta is near the logit of the mean response whatever the spread (Zeger et al. 1988):
    # within 0.06 for |eta| <= 1, within 30% in the tails at sigma = 2.5
    assert np.log(m / (1 - m)) == pytest.approx(eta, abs=max(0.06, 0.3 * abs(eta)))


def test_tensor_and_numpy_agree_and_broadcast_per_draw():
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    eta = rng.normal(0, 3, (4, 7))
    sigma = np.exp(rng.normal(0, 0.7, (4, 1)))
    e, s = pt.matrix("e"), pt.tensor("s", shape=(None, 1))
    f = pytensor.function([e, s], list(FAM.beta_ab(e, {"sigma": s}, tensor=True)))
    ta, tb = f(eta, sigma)
    na, nb = FAM.beta_ab(eta, {"sigma": sigma})
    assert na.shape == eta.shape
    np.testing.assert_allclose(ta, na, rtol=1e-10)
    np.testing.assert_allclose(tb, nb, rtol=1e-10)


def _log_betabinom(k, n, a, b):
    """By rising factorials, as the model computes it (scipy's betaln difference loses ~1e-5
    to cancellation when a and b are ~1e10)."""
    from scipy.special import gammaln

    def rising(x, m):
        return np.array([np.sum(np.log(x + np.arange(mm))) for mm in np.atleast_1d(m)])

    return (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + rising(a, k)
            + rising(b, n - k) - rising(a + b, np.full_like(k, n)))


def test_no_spread_is_the_binomial():
    k, n = np.arange(17), 16
    for eta in (-3.0, 0.4, 7.0):
        a, b = FAM.beta_ab(np.array([eta]), {"sigma": np.array([1e-6])})
        np.testing.assert_allclose(_log_betabinom(k, n, a[0], b[0]),
                                   binom.logpmf(k, n, expit(eta)), rtol=1e-6)


def test_cell_means_are_recovered_where_one_phi_is_biased():
    """Five cells of one LLM at locations -0.5 ... 5.5 with one reply-level sigma = 2 (20,000
    replies of 16 judgements each): the maximum-likelihood cell means of the logit-normal
    binomial are within sampling error of the truth; a beta-binomial with one phi pulls the
    near-ceiling cells down (its spread of p cannot shrink there), and fits worse."""
    rng = np.random.default_rng(3)
    n, s_true, T = 16, 2.0, 20_000
    etas = np.array([-0.5, 1.0, 2.5, 4.0, 5.5])
    k = rng.binomial(n, expit(etas[:, None] + rng.normal(0, s_true, (len(etas), T))))
    counts = np.stack([np.bincount(row, minlength=n + 1) for row in k])  # sufficient
    x, w = np.polynomial.hermite_e.hermegauss(80)
    truth = expit(etas[:, None] + s_true * x) @ (w / w.sum())  # E[p] at each location
    kk = np.arange(n + 1)
    err, ll = {}, {}
    for name, aux in (("logitnormal_binomial", "sigma"), ("beta_binomial", "phi")):
        fam = get_family(name)

        def nll(th, fam=fam, aux=aux):
            a, b = fam.beta_ab(th[:-1], {aux: np.exp(th[-1])})
            return -np.sum(counts * betabinom.logpmf(kk, n, a[:, None], b[:, None]))

        r = minimize(nll, np.r_[etas * 0.5, 0.0], method="L-BFGS-B")
        a, b = fam.beta_ab(r.x[:-1], {aux: np.exp(r.x[-1])})
        err[name], ll[name] = np.abs(a / (a + b) - truth), -r.fun
    assert err["logitnormal_binomial"].max() < 0.008
    assert err["beta_binomial"].max() > 0.012
    assert ll["logitnormal_binomial"] > ll["beta_binomial"] + 100
