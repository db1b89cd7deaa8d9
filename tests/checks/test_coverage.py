"""Parameter recovery at the expected rate over replications (interval coverage).

``tests/inference/test_recovery.py`` checks one simulated data set per family. Here each family
(gaussian, cumulative, negative_binomial) is simulated R times from ``y ~ x + (1|g)`` (200 rows,
6 groups) with true parameters drawn from the fixed priors the model is fitted with, fitted
(2 chains x 300 draws, one seed per replication), and every true scalar (Intercept or the
cut-points, b[x], sd_g, sigma / alpha) is scored as inside or outside its central 90% posterior
interval. Under a correctly implemented and fitted model each indicator is Bernoulli(0.9); the
pooled count is tested with a two-sided exact binomial test. See
:mod:`biasstats.checks.coverage` (compiled once per family, data swapped with ``with_data``).
"""

from __future__ import annotations

import numpy as np
import pytest

from biasstats.checks.coverage import binom_p, pooled, run_coverage

FAMILIES = ("gaussian", "cumulative", "negative_binomial")
ALPHA = 0.001


def _report(results) -> str:
    k, n, p = pooled(results)
    lines = [r.line() for r in results]
    lines.append(f"pooled: coverage {k / n:.3f} ({k}/{n}), binomial p {p:.3g}")
    return "\n".join(lines)


@pytest.mark.slow
def test_coverage_fast_pooled():
    """R = 8 replications per family, indicators pooled over the three families (n = 104).

    With so few replications this only catches gross miscalibration (a wrong sign, scale or
    parametrisation in simulation vs model, or intervals far too narrow / wide): the binomial
    test at 0.001 rejects only at coverage <= 0.79 (82/104) or >= 0.99. The calibrated check is the
    slow test below. Marked slow too (27 s): in the default run the per-family recovery tests
    (tests/inference/test_recovery.py) catch the same gross errors against known parameters.
    """
    results = [run_coverage(f, reps=8, seed=11) for f in FAMILIES]
    print(_report(results))
    k, n, p = pooled(results)
    assert n == 8 * (4 + 5 + 4)
    assert p > ALPHA, _report(results)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_coverage_slow(family):
    """R = 25 replications (n = 100 indicators; 125 for the ordinal model's 3 cut-points).

    Under correct calibration the [0.80, 0.97] window is left with probability about 0.003
    (n = 100) and the binomial test fails with probability 0.001 (a little more, as the
    indicators of one replication are correlated)."""
    res = run_coverage(family, reps=25, seed=2026)
    print(res.line())
    print(res.by_parameter())
    assert res.pvalue() > ALPHA, res.line()
    assert 0.80 <= res.coverage <= 0.97, res.line()


@pytest.mark.slow
def test_coverage_fit_path_matches_compiled_path():
    """The compiled-model shortcut sees the same posterior as :func:`biasstats.inference.fit`.

    Same data and priors, different sampler runs: the interval ends agree up to Monte Carlo
    error (the upper end of sd_g with 6 groups is the noisiest, ~0.1-0.3 interval widths at
    1000 draws), so the tolerance only catches a real mismatch (prior, centring, data)."""
    fast = run_coverage("gaussian", reps=2, seed=5, draws=1000)
    slow = run_coverage("gaussian", reps=2, seed=5, draws=1000, reuse_compiled=False)
    a, b = fast.table, slow.table
    assert a["parameter"].to_list() == b["parameter"].to_list()
    np.testing.assert_allclose(a["truth"].to_numpy(), b["truth"].to_numpy())
    width = (a["hi"] - a["lo"]).to_numpy()
    for col in ("lo", "hi"):
        assert (np.abs(a[col].to_numpy() - b[col].to_numpy()) < 0.4 * width).all(), col
    assert binom_p(90, 100, 0.9) == pytest.approx(1.0)
