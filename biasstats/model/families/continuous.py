"""Families of a real-valued response: gaussian and Student-t (identity link), lognormal
(positive, on the log scale) and beta (a proportion strictly between 0 and 1)."""

from __future__ import annotations

import numpy as np

from biasstats.model.families.base import Family, per_draw

__all__ = ["FAMILIES"]


def _mean_identity(eta, aux):
    return eta


def _latent_sigma(mu, aux):
    return per_draw(np.asarray(aux["sigma"], dtype=float) ** 2)


def _working_y(y, n, w):
    """The response itself, with the information of one observation, 1 / var(y)."""
    v = np.var(y) or 1.0
    return y, np.full(len(y), 1.0 / v)


# ----------------------------------------------------------------------------- gaussian
def _gaussian(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    return pm.Normal(name, mu=eta, sigma=aux["sigma"], observed=y, dims=dims)


def _loglik_gaussian(y, eta, aux, trials):
    # heavy libraries load on first use, not on import
    from scipy.stats import norm

    return norm.logpdf(y, eta, aux["sigma"])


def _draw_gaussian(rng, eta, aux, n):
    return eta + rng.normal(0.0, aux["sigma"], np.shape(eta))


# ----------------------------------------------------------------------------- Student-t
def _student_t(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    return pm.StudentT(name, nu=aux["nu"], mu=eta, sigma=aux["sigma"], observed=y, dims=dims)


def _loglik_student_t(y, eta, aux, trials):
    # heavy libraries load on first use, not on import
    from scipy.stats import t

    return t.logpdf(y, aux["nu"], eta, aux["sigma"])


def _draw_student_t(rng, eta, aux, n):
    return eta + aux["sigma"] * rng.standard_t(aux["nu"], np.shape(eta))


# ----------------------------------------------------------------------------- lognormal
def _lognormal(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    return pm.LogNormal(name, mu=eta, sigma=aux["sigma"], observed=y, dims=dims)


def _loglik_lognormal(y, eta, aux, trials):
    # heavy libraries load on first use, not on import
    from scipy.stats import norm

    ly = np.log(np.asarray(y, dtype=float))
    return norm.logpdf(ly, eta, aux["sigma"]) - ly


def _draw_lognormal(rng, eta, aux, n):
    return np.exp(eta + rng.normal(0.0, aux["sigma"], np.shape(eta)))


def _mean_lognormal(eta, aux):
    return np.exp(eta + aux["sigma"] ** 2 / 2)


def _working_logy(y, n, w):
    v = np.var(np.log(y)) or 1.0
    return np.log(y), np.full(len(y), 1.0 / v)


# ----------------------------------------------------------------------------- beta
def _beta(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    mu = pm.math.invlogit(eta)
    return pm.Beta(name, alpha=mu * aux["phi"], beta=(1 - mu) * aux["phi"], observed=y, dims=dims)


def _beta_ab(eta, aux):
    # heavy libraries load on first use, not on import
    from scipy.special import expit

    mu = expit(np.asarray(eta, dtype=float))
    return mu * aux["phi"], (1 - mu) * aux["phi"]


def _loglik_beta(y, eta, aux, trials):
    # heavy libraries load on first use, not on import
    from scipy.stats import beta

    return beta.logpdf(y, *_beta_ab(eta, aux))


def _draw_beta(rng, eta, aux, n):
    return rng.beta(*_beta_ab(eta, aux))


def _mean_logistic(eta, aux):
    # heavy libraries load on first use, not on import
    from scipy.special import expit

    return expit(eta)


def _working_unit(y, n, w):
    """The empirical logit of the proportion, with the information 1 / its variance."""
    z = np.log(y / (1 - y))
    return z, np.full(len(y), 1.0 / (np.var(z) or 1.0))


# ----------------------------------------------------------------------------- the table
FAMILIES = [
    Family("gaussian", "identity", _gaussian, aux={"sigma": "Exponential(scale={sd_y})"},
           scale="y", mean=_mean_identity, latent_var=_latent_sigma, draw=_draw_gaussian,
           aliases=("normal",),
           loglik=_loglik_gaussian, working=_working_y),
    # robust to outliers (token counts, latencies with a few huge values): heavy tails with
    # nu degrees of freedom; eta is the location (the mean when nu > 1)
    Family("student_t", "identity", _student_t,
           aux={"sigma": "Exponential(scale={sd_y})", "nu": "Gamma(2, 0.1)"}, scale="y",
           mean=_mean_identity, draw=_draw_student_t, loglik=_loglik_student_t,
           working=_working_y, aliases=("studentt",),
           latent_note="the residual variance of a Student-t is infinite for nu <= 2"),
    Family("lognormal", "identity", _lognormal, aux={"sigma": "Exponential(scale={sd_logy})"},
           response="positive", scale="logy", mean=_mean_lognormal,
           contrast_scales=("difference", "ratio"), latent_var=_latent_sigma,
           draw=_draw_lognormal, loglik=_loglik_lognormal, working=_working_logy),
    Family("beta", "logit", _beta, aux={"phi": "Gamma(2, 0.1)"}, response="unit",
           mean=_mean_logistic, draw=_draw_beta, loglik=_loglik_beta, working=_working_unit,
           latent_note="no latent residual variance is defined for the beta family"),
]
