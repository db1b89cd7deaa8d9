"""The LOO-PIT ECDF band: the simultaneous band of Säilynoja, Bürkner & Vehtari (2022), its
uniform ECDFs drawn as multinomial counts."""

import numpy as np
import pytest


def test_band_level_equals_the_sorting_simulation():
    """gamma from multinomial bin counts equals gamma from sorting n uniforms per simulation
    (the definition), within Monte Carlo error."""
    from scipy.special import bdtr

    from biasstats.checks.ppc import band_level

    n, sims = 150, 4000
    x = np.arange(1, n) / n
    rng = np.random.default_rng(1)
    g = np.empty(sims)
    for i in range(sims):
        f = np.searchsorted(np.sort(rng.random(n)), x, side="right")
        lower = bdtr(f, n, x).min()
        upper = np.where(f > 0, 1 - bdtr(np.maximum(f - 1, 0), n, x), 1.0).min()
        g[i] = 1 - 2 * min(lower, upper)
    naive = np.quantile(g, 0.95)
    fast = band_level(n, x, 0.95, sims, np.random.default_rng(2))
    assert fast == pytest.approx(naive, abs=0.004)
    assert 0.995 < fast < 1  # a simultaneous band is much wider than the pointwise 95%


def test_band_is_simultaneous_at_its_level_and_flags_too_narrow_intervals():
    """Uniform PIT values of 5,000 trials stay inside the 95% band in 95% of studies
    (within binomial error over 200 studies); PIT values piled at the ends (predictive
    intervals too narrow, e.g. overdispersion the model lacks) leave it."""
    from biasstats.checks.ppc import pit_ecdf_band

    rng = np.random.default_rng(5)
    n = 5_000
    _, _, lo, hi = pit_ecdf_band(rng.random(n), 0.95, seed=9)
    inside = []
    for _ in range(200):
        x, ecdf, _, _ = pit_ecdf_band(rng.random(n), 0.95, n_sim=1, seed=1)
        inside.append(bool(np.all((ecdf >= lo) & (ecdf <= hi))))
    assert len(x) == 1002  # 1,000 points and the two ends
    assert np.mean(inside) == pytest.approx(0.95, abs=3 * np.sqrt(0.95 * 0.05 / 200))
    _, ecdf, lo2, hi2 = pit_ecdf_band(rng.beta(0.8, 0.8, n), 0.95)
    assert not np.all((ecdf >= lo2) & (ecdf <= hi2))
