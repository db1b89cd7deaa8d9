"""Variance decomposition on a model's latent scale (any family that defines a latent
residual variance)."""

from __future__ import annotations

import numpy as np
import polars as pl

from biasstats.inference.predict import aux_of, linear_predictor, stack_draws

__all__ = ["variance_decomposition"]


def variance_decomposition(fit, prob: float = 0.95) -> pl.DataFrame:
    """Shares of latent-scale variance: each group term's finite-population variance of its
    realised effects (Gelman 2005), fixed effects' variance over cells, and the family's
    residual variance on the latent scale (``Family.latent_var``: π²/3 for logit links, σ²
    for gaussian and lognormal, ln(1 + 1/λ [+ 1/α]) for log-link counts; Nakagawa &
    Schielzeth 2013, Nakagawa et al. 2017). Empty when the family defines none
    (``Family.latent_note`` says why)."""
    spec = fit.spec
    fam = spec.family
    if fam.latent_var is None or spec.n_linpred != 1:
        return pl.DataFrame(schema={"component": pl.Utf8})
    post = fit.idata["posterior"].to_dataset()
    comps: dict[str, np.ndarray] = {}
    if spec.fixed_names:
        xb = stack_draws(post, "b") @ spec.X.T
        comps["fixed effects"] = xb.var(axis=1)
    for g in spec.groups:
        r = stack_draws(post, f"r_{g.name}")
        if r.ndim == 3:  # varying slopes: the intercept row's spread
            r = r[:, 0, :]
        comps[g.name] = r.var(axis=1, ddof=1)
    aux = aux_of(fit)  # (S, 1), or (S, cells) for a distributional [model.aux] formula
    if fam.latent_uses_mean:
        mu = fam.mean(linear_predictor(fit), aux)
    else:  # the latent residual does not depend on the mean
        mu = np.zeros((post.sizes["chain"] * post.sizes["draw"], 1))
    comps["residual"] = np.asarray(fam.latent_var(mu, aux), dtype=float)
    names = list(comps)
    V = np.stack([comps[k] for k in names], axis=1)
    shares = V / V.sum(axis=1, keepdims=True)
    lo, hi = np.percentile(shares, [100 * (1 - prob) / 2, 100 * (1 + prob) / 2], axis=0)
    return pl.DataFrame({
        "component": names,
        "variance_mean": V.mean(axis=0),
        "share_mean": shares.mean(axis=0),
        "share_low": lo,
        "share_high": hi,
    })
