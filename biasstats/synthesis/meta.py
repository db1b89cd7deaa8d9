"""Random-effects meta-analysis of one estimand across analyses, from each analysis' draws.

The model: analysis i's true value theta_i ~ Normal(mu, tau), and analysis i's data inform
theta_i through its likelihood L_i(theta_i). What is pooled is the posterior of (mu, tau): the
pooled effect, the between-analysis SD, and theta_new ~ Normal(mu, tau), the value a new
analysis would have (the prediction interval).

**Each analysis enters through its draws, not a normal approximation.** Its posterior
p_i(theta) ∝ L_i(theta) pi_i(theta) is known only by its draws x_i1 … x_iS. Two steps:

1. *Its posterior stands for its likelihood*: the prior that analysis' model implies for the
   estimand, pi_i, is taken as flat where the posterior has mass (weakly informative priors
   and data that dominate them: the usual two-stage assumption). Where it is not, the pooled
   result inherits each analysis' prior once per analysis.
2. *Its draws become a density by a Gaussian kernel that keeps their mean and variance*:
   p_i(theta) ≈ (1/S) Σ_s Normal(theta | x'_is, h_i), with Silverman's bandwidth h_i and the
   draws shrunk toward their mean, x'_is = m_i + a_i (x_is − m_i), a_i² = 1 − h_i² / v_i, so
   that the density has exactly the draws' mean m_i and variance v_i (a plain kernel density
   would add h_i² to each analysis' variance and bias tau down). Its shape — skew, heavy
   tails, a bound — is the draws'. (Linear binning onto at most 128 points per analysis keeps
   the mean exactly and adds at most (bin width)² / 4 to the variance.)

With a Gaussian kernel, theta_i integrates out in closed form:
  ∫ Normal(theta | mu, tau) p_i(theta) dtheta = (1/S) Σ_s Normal(x'_is | mu, sqrt(tau² + h_i²)),
so the posterior of (mu, tau) is two-dimensional and is computed exactly, up to a grid, by
quadrature (no sampler, no convergence diagnostics): log p(mu, tau) = log p(tau) + Σ_i log
(1/S) Σ_s Normal(x'_is | mu, sqrt(tau² + h_i²)), on a grid that is zoomed until the region
holding all but e^-16 of the density spans most of it (~140 cells a side). Posterior draws
come from the grid (a cell by its mass, then uniformly within it), and theta_new = mu + tau z.

Priors: mu flat (the grid covers every value the likelihood allows); tau ~ Half-Normal(s)
with s given (``tau_prior``, in the estimand's units) or, by default, twice the total spread
of the draws, sqrt(var(m_i) + mean(v_i)) — weakly informative: tau cannot exceed that spread by
much. With two analyses tau is barely identified and its posterior stays near the prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from biasstats.inference.predict import hdi

__all__ = ["MetaAnalysis", "default_tau_prior", "kernel_density", "random_effects"]

BINS = 128          # points per analysis' density after linear binning
GRID = 140          # cells a side of the final grid
COARSE = 60         # cells a side of the first, wide grid
DROP = 16.0         # log-density below the maximum that counts as no mass
CHUNK = 2_000_000   # floats per block of the likelihood evaluation


@dataclass(frozen=True)
class MetaAnalysis:
    """Posterior draws of ``mu`` (the pooled effect), ``tau`` (the between-analysis SD) and
    ``predicted`` (theta of a new analysis), their ``table`` (parameter, mean, sd, median,
    hdi_low, hdi_high, hdi_prob), the ``tau_prior`` scale and whether it was the default."""

    mu: np.ndarray
    tau: np.ndarray
    predicted: np.ndarray
    table: pl.DataFrame
    tau_prior: float
    tau_prior_default: bool
    analyses: int
    grid_cells: tuple[float, float]   # the final grid's cell width in mu and tau


def kernel_density(x: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray, float]:
    """(points, weights, bandwidth) of the variance-preserving Gaussian kernel density of
    draws ``x``: Silverman's bandwidth h, the draws shrunk toward their mean so the density's
    variance is theirs, linearly binned onto at most ``bins`` points. Constant draws give one
    point and h = 0."""
    x = np.asarray(x, dtype=float)
    m, S = float(x.mean()), x.size
    sd = float(x.std(ddof=1)) if S > 1 else 0.0
    if sd == 0.0:
        return np.array([m]), np.array([1.0]), 0.0
    iqr = float(np.subtract(*np.percentile(x, [75, 25]))) / 1.349
    h = 0.9 * (min(sd, iqr) if iqr > 0 else sd) * S ** -0.2
    h = min(h, 0.5 * sd)
    xs = m + np.sqrt(1.0 - h * h / (sd * sd)) * (x - m)
    if S <= bins:
        return xs, np.full(S, 1.0 / S), h
    lo, hi = xs.min(), xs.max()
    grid = np.linspace(lo, hi, bins)
    pos = (xs - lo) / (grid[1] - grid[0])
    left = np.clip(np.floor(pos).astype(int), 0, bins - 2)
    frac = np.clip(pos - left, 0.0, 1.0)
    w = np.bincount(left, 1.0 - frac, bins) + np.bincount(left + 1, frac, bins)
    return grid, w / S, h


def default_tau_prior(values: list[np.ndarray]) -> float:
    """Twice the total spread of the draws, sqrt(var of the means + mean variance)."""
    means = np.array([np.mean(v) for v in values])
    within = np.array([np.var(v, ddof=1) if len(v) > 1 else 0.0 for v in values])
    spread = float(np.sqrt(np.var(means, ddof=1) + within.mean()))
    return 2.0 * spread if spread > 0 else 1.0


class _Likelihood:
    """Σ_i log (1/S) Σ_s Normal(x'_is | mu, sqrt(tau² + h_i²)) at many (mu, tau)."""

    def __init__(self, values: list[np.ndarray]):
        dens = [kernel_density(v) for v in values]
        B = max(len(g) for g, _, _ in dens)
        K = len(dens)
        self.points = np.zeros((K, B))
        self.logw = np.full((K, B), -np.inf)
        self.h2 = np.zeros(K)
        for i, (g, w, h) in enumerate(dens):
            self.points[i, :len(g)] = g
            with np.errstate(divide="ignore"):
                self.logw[i, :len(g)] = np.log(w)
            self.h2[i] = h * h

    def __call__(self, mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
        K, B = self.points.shape
        out = np.zeros(mu.size)
        step = max(1, CHUNK // (K * B))
        for a in range(0, mu.size, step):
            m, t = mu[a:a + step, None, None], tau[a:a + step, None, None]
            var = t * t + self.h2[None, :, None]                        # (P, K, 1)
            z = self.logw[None] - 0.5 * (self.points[None] - m) ** 2 / var
            top = z.max(axis=2, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)
            ll = (top[..., 0] + np.log(np.exp(z - top).sum(axis=2))
                  - 0.5 * np.log(2 * np.pi * var[..., 0]))
            out[a:a + step] = ll.sum(axis=1)
        return out


def _evaluate(lik, tau_prior, box, n):
    """Cell centres and log posterior on an n x n grid over ``box`` = (mu0, mu1, tau0, tau1)."""
    mu0, mu1, t0, t1 = box
    dm, dt = (mu1 - mu0) / n, (t1 - t0) / n
    mus = mu0 + (np.arange(n) + 0.5) * dm
    taus = t0 + (np.arange(n) + 0.5) * dt
    M, T = np.meshgrid(mus, taus, indexing="ij")
    logp = lik(M.ravel(), T.ravel()).reshape(n, n) - 0.5 * (T / tau_prior) ** 2
    return mus, taus, dm, dt, logp


def _grid_posterior(lik, values, tau_prior):
    """Zoom a grid onto the posterior of (mu, tau): (mus, taus, dm, dt, logp)."""
    ms = np.array([np.mean(v) for v in values])
    sds = np.array([np.std(v) for v in values])
    reach = 5 * max(float(sds.max()), float(ms.std()), 1e-12 * max(1.0, float(np.abs(ms).max())))
    box = [float(ms.min()) - reach, float(ms.max()) + reach, 0.0, 6.0 * tau_prior]
    n = COARSE  # zoom with coarse grids (cheap), then one fine grid on the region
    for _ in range(16):
        mus, taus, dm, dt, logp = _evaluate(lik, tau_prior, box, n)
        on = np.argwhere(logp > logp.max() - DROP)
        (i0, j0), (i1, j1) = on.min(axis=0), on.max(axis=0)
        if i0 == 0 or i1 == n - 1:  # mass at an edge of mu: widen that side
            width = box[1] - box[0]
            box = [box[0] - width * (i0 == 0), box[1] + width * (i1 == n - 1), *box[2:]]
            continue
        tight = min(i1 - i0, j1 - j0) + 1 >= 0.6 * n
        if tight and n == GRID:
            return mus, taus, dm, dt, logp
        box = [mus[i0] - 1.5 * dm, mus[i1] + 1.5 * dm,
               max(0.0, taus[j0] - 1.5 * dt), taus[j1] + 1.5 * dt]
        if tight:
            n = GRID
    return mus, taus, dm, dt, logp


def random_effects(values: list[np.ndarray], *, prob: float = 0.95,
                   tau_prior: float | None = None, draws: int = 20_000,
                   seed: int = 0) -> MetaAnalysis:
    """The random-effects meta-analysis of K ≥ 2 analyses from their posterior draws
    ``values`` (see the module docstring): posterior draws of mu, tau and a new analysis'
    theta, and their summaries (mean, sd, median and ``prob`` HDI)."""
    if len(values) < 2:
        raise ValueError("a meta-analysis needs at least two analyses")
    default = tau_prior is None
    scale = default_tau_prior(values) if default else float(tau_prior)
    lik = _Likelihood(values)
    mus, taus, dm, dt, logp = _grid_posterior(lik, values, scale)
    p = np.exp(logp - logp.max()).ravel()
    rng = np.random.default_rng(seed)
    cell = rng.choice(p.size, size=draws, p=p / p.sum())
    i, j = np.unravel_index(cell, logp.shape)
    mu = mus[i] + (rng.random(draws) - 0.5) * dm
    tau = np.abs(taus[j] + (rng.random(draws) - 0.5) * dt)
    predicted = mu + tau * rng.standard_normal(draws)
    rows = []
    for name, d in (("pooled effect (mu)", mu), ("between-analysis SD (tau)", tau),
                    ("a new analysis (prediction)", predicted)):
        lo, hi = hdi(d[:, None], prob)[0]
        rows.append({"parameter": name, "mean": float(d.mean()), "sd": float(d.std(ddof=1)),
                     "median": float(np.median(d)), "hdi_low": float(lo),
                     "hdi_high": float(hi), "hdi_prob": prob})
    return MetaAnalysis(mu, tau, predicted, pl.DataFrame(rows), scale, default, len(values),
                        (float(dm), float(dt)))
