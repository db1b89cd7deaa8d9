"""The meta-analysis recovers a known pooled effect and between-analysis SD (issue 25 item 3,
"how we will know"): over many replications of simulated analyses, its 90% intervals of mu
and tau cover the truth about 90% of the time (within binomial error).

Each replication draws K analyses' true values theta_i ~ Normal(mu, tau) and each analysis'
data given theta_i; the analysis' posterior draws are then drawn exactly (no model is fitted:
under a flat prior on theta_i the posterior is known), in two designs: normal data (a normal
posterior of known SD) and binomial data on the log-odds scale (40-80 trials: a skewed,
bounded-below posterior, logit of a Beta draw)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from biasstats.synthesis.meta import random_effects

PROB = 0.9


def _normal(rng, mu, tau, K, S):
    s = rng.uniform(0.1, 0.3, K)
    y = rng.normal(rng.normal(mu, tau, K), s)
    return [rng.normal(yi, si, S) for yi, si in zip(y, s, strict=True)]


def _binomial(rng, mu, tau, K, S):
    n = rng.integers(40, 81, K)
    k = rng.binomial(n, expit(rng.normal(mu, tau, K)))
    k = np.clip(k, 1, n - 1)  # a flat prior on the log-odds needs 0 < k < n (P(clip) < 1e-4)
    return [logit(rng.beta(ki, ni - ki, S)) for ki, ni in zip(k, n, strict=True)]


@pytest.mark.slow
@pytest.mark.parametrize("design, mu, tau, reps", [(_normal, 0.3, 0.2, 100),
                                                   (_binomial, -0.5, 0.4, 60)])
def test_intervals_of_mu_and_tau_cover_the_truth(design, mu, tau, reps):
    rng = np.random.default_rng(2025)
    hit = {"mu": 0, "tau": 0, "new": 0}
    width = []
    for r in range(reps):
        m = random_effects(design(rng, mu, tau, K=15, S=2000), prob=PROB, seed=r)
        rows = {x["parameter"].split(" ")[0]: x for x in m.table.iter_rows(named=True)}
        lo_mu, hi_mu = rows["pooled"]["hdi_low"], rows["pooled"]["hdi_high"]
        lo_tau, hi_tau = rows["between-analysis"]["hdi_low"], rows["between-analysis"]["hdi_high"]
        new = rng.normal(mu, tau)  # a new analysis' true value
        hit["mu"] += lo_mu <= mu <= hi_mu
        hit["tau"] += lo_tau <= tau <= hi_tau
        hit["new"] += rows["a"]["hdi_low"] <= new <= rows["a"]["hdi_high"]
        width.append((hi_mu - lo_mu, hi_tau - lo_tau))
    se = np.sqrt(PROB * (1 - PROB) / reps)
    cover = {k: v / reps for k, v in hit.items()}
    print(f"{design.__name__}: {reps} replications, coverage of {PROB:.0%} intervals "
          f"{cover} (binomial SE {se:.3f}); mean widths mu {np.mean(width, axis=0)[0]:.3f}, "
          f"tau {np.mean(width, axis=0)[1]:.3f}")
    for k in ("mu", "tau"):
        assert abs(cover[k] - PROB) <= 3 * se, (k, cover)
