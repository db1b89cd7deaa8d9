"""The authors' D score as a function of the per-judgement congruence probability.

Used to calibrate simulations to published D means: a trial of ``n_pos`` positive and
``n_neg`` negative words, each judged stereotype-congruently with probability
``p = logistic(eta + u)``, where ``u ~ Normal(0, sigma)`` is a per-trial effect (the model's
"mood" on that trial: it makes whole replies flip together, as real replies do).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from biasstats.studies.bai2024.dscore import d_score  # the authors' formula, one copy


def simulate_d(eta, sigma, n_trials, rng, n_pos=8, n_neg=8):
    """D scores of ``n_trials`` simulated trials for each value of ``eta`` (broadcast)."""
    eta = np.atleast_1d(np.asarray(eta, dtype=float))
    u = rng.normal(0.0, sigma, size=(n_trials,) + eta.shape)
    p = expit(eta + u)
    a = rng.binomial(n_neg, p)  # negative words given to the stigma group (congruent)
    d = rng.binomial(n_pos, p)  # positive words given to the default group (congruent)
    return d_score(a, n_pos - d, n_neg - a, d)


def moment_grid(etas, sigmas, n_trials=4000, seed=0):
    """Monte Carlo mean and SD of D on an (sigma, eta) grid: arrays of shape (S, E)."""
    rng = np.random.default_rng(seed)
    means = np.empty((len(sigmas), len(etas)))
    sds = np.empty_like(means)
    for i, s in enumerate(sigmas):
        d = simulate_d(np.asarray(etas), s, n_trials, rng)
        means[i], sds[i] = d.mean(axis=0), d.std(axis=0)
    return means, sds
