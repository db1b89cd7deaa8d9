"""Families of a count without trials (0, 1, 2, …), log link: negative binomial (NB2) and
Poisson."""

from __future__ import annotations

import numpy as np

from biasstats.model.families.base import Family, per_draw

__all__ = ["FAMILIES"]


def _mean_exp(eta, aux):
    return np.exp(eta)


def _working_log(y, n, w):
    """log(y + 1/2), with the information of a count at the data's mean and variance."""
    m, v = max(np.mean(y), 1e-3), max(np.var(y), 1e-3)
    return np.log(y + 0.5), np.full(len(y), m * m / v)


# ----------------------------------------------------------------------------- negative binomial
def _negative_binomial(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    return pm.NegativeBinomial(name, mu=pm.math.exp(eta), alpha=aux["alpha"], observed=y,
                               dims=dims)


def _loglik_negbin(y, eta, aux, trials):
    # heavy libraries load on first use, not on import
    from scipy.stats import nbinom

    alpha = np.asarray(aux["alpha"], dtype=float)
    return nbinom.logpmf(y, alpha, alpha / (alpha + np.exp(eta)))


def _draw_negbin(rng, eta, aux, n):
    """NB(mu = exp(eta), alpha): variance mu + mu^2 / alpha."""
    alpha = aux["alpha"]
    mu = np.exp(eta)
    return rng.negative_binomial(alpha, alpha / (alpha + mu)).astype(np.int64)


def _latent_negbin(mu, aux):
    # ln(1 + 1/lambda + 1/alpha) (Nakagawa et al. 2017, NB2)
    return np.log1p(1.0 / np.asarray(mu).mean(axis=1) + per_draw(1.0 / np.asarray(aux["alpha"])))


# ----------------------------------------------------------------------------- Poisson
def _poisson(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    return pm.Poisson(name, mu=pm.math.exp(eta), observed=y, dims=dims)


def _loglik_poisson(y, eta, aux, trials):
    # heavy libraries load on first use, not on import
    from scipy.stats import poisson

    return poisson.logpmf(y, np.exp(eta))


def _draw_poisson(rng, eta, aux, n):
    return rng.poisson(np.exp(eta)).astype(np.int64)


def _latent_poisson(mu, aux):
    # lognormal approximation ln(1 + 1/lambda) at the mean expected count per draw
    return np.log1p(1.0 / np.asarray(mu).mean(axis=1))


# ----------------------------------------------------------------------------- the table
_COUNTS = dict(response="count", mean=_mean_exp, contrast_scales=("difference", "ratio"),
               latent_uses_mean=True, working=_working_log)

FAMILIES = [
    Family("negative_binomial", "log", _negative_binomial, aux={"alpha": "Gamma(2, 0.5)"},
           latent_var=_latent_negbin, draw=_draw_negbin, aliases=("negbinomial", "negbin"), loglik=_loglik_negbin, **_COUNTS),
    Family("poisson", "log", _poisson, latent_var=_latent_poisson, draw=_draw_poisson,
           loglik=_loglik_poisson, **_COUNTS),
]
