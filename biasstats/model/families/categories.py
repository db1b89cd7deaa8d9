"""Families of a categorical response: cumulative (ordered categories, cumulative logit with
cut-points) and categorical (unordered, multinomial logit against the first category)."""

from __future__ import annotations

import numpy as np

from biasstats.model.families.base import Family

__all__ = ["FAMILIES", "cutpoint_centres"]


def cutpoint_centres(nthr: int) -> np.ndarray:
    """The cut-points of equally probable categories at eta = 0, logit(j / (nthr + 1)),
    j = 1 … nthr: where the default Normal prior of the cut-points is centred."""
    j = np.arange(1, nthr + 1)
    return np.log(j / (nthr + 1 - j))


def _pick(p: np.ndarray, y) -> np.ndarray:
    """log p[..., y] per observation: p (S, m, K), y (m,) category codes -> (S, m)."""
    y = np.asarray(y, dtype=np.int64)
    idx = np.broadcast_to(y[None, :, None], p.shape[:-1] + (1,))
    return np.log(np.take_along_axis(p, idx, axis=-1)[..., 0])


def _draw_categories(rng, p: np.ndarray) -> np.ndarray:
    """One category code per (draw, row) from probabilities p (..., K), by inversion."""
    u = rng.random(p.shape[:-1])[..., None]
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)


# ----------------------------------------------------------------------------- cumulative
def _cumulative(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    return pm.OrderedLogistic(name, eta=eta, cutpoints=aux["cutpoints"], observed=y, dims=dims,
                              compute_p=False)


def _categories_cumulative(eta, aux):
    """P(y = k) = expit(c_k − eta) − expit(c_{k−1} − eta) (PyMC's OrderedLogistic)."""
    # heavy libraries load on first use, not on import
    from scipy.special import expit

    c = np.asarray(aux["cutpoints"])                          # (S, 1, K-1)
    cum = expit(c - np.asarray(eta)[..., None])               # (S, rows, K-1): P(y <= k)
    S, n = cum.shape[:2]
    return np.diff(np.concatenate([np.zeros((S, n, 1)), cum, np.ones((S, n, 1))], axis=2),
                   axis=2)


def _loglik_cumulative(y, eta, aux, trials):
    return _pick(_categories_cumulative(eta, aux), y)


def _draw_cumulative(rng, eta, aux, n):
    """y = the number of cut-points below eta + logistic noise: P(y <= k) = expit(c_k - eta);
    cut-points (..., K-1) broadcast against eta's shape."""
    v = eta + rng.logistic(size=np.shape(eta))
    return (np.asarray(aux["cutpoints"]) < np.asarray(v)[..., None]).sum(axis=-1).astype(np.int64)


def _latent_logistic(mu, aux):
    return np.full(np.shape(mu)[0], np.pi ** 2 / 3)


# ----------------------------------------------------------------------------- categorical
def _categorical(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    # heavy libraries load on first use, not on import
    import pytensor.tensor as pt

    # eta: (n, K-1) against the reference (first) category, whose logit is 0.
    full = pt.concatenate([pt.zeros((eta.shape[0], 1)), eta], axis=1)
    return pm.Categorical(name, logit_p=full, observed=y, dims=dims)


def _categories_softmax(eta, aux):
    """Softmax of (0, eta_1, …, eta_{K-1}): the first category is the reference."""
    # heavy libraries load on first use, not on import
    from scipy.special import softmax

    eta = np.asarray(eta)
    return softmax(np.concatenate([np.zeros(eta.shape[:2] + (1,)), eta], axis=2), axis=2)


def _loglik_categorical(y, eta, aux, trials):
    return _pick(_categories_softmax(eta, aux), y)


def _draw_categorical(rng, eta, aux, n):
    return _draw_categories(rng, _categories_softmax(eta, aux))


# ----------------------------------------------------------------------------- the table
FAMILIES = [
    Family("cumulative", "cumulative-logit", _cumulative, aux={"cutpoints": "Normal(0, 2.5)"},
           response="ordinal", intercept=False, vector_aux=("cutpoints",), aliases=("ordinal",),
           response_scale="probability", categories=_categories_cumulative,
           ppc_stat="shares", latent_var=_latent_logistic, draw=_draw_cumulative,
           loglik=_loglik_cumulative),
    Family("categorical", "multinomial-logit", _categorical, response="categorical",
           response_scale="probability", categories=_categories_softmax, multinomial=True,
           aliases=("multinomial",),
           ppc_stat="shares", draw=_draw_categorical, loglik=_loglik_categorical,
           latent_note="a categorical model has one latent scale per category"),
]
