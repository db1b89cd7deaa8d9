"""The default estimands' 90% HDIs cover the truth at their nominal rate over replications.

Each family's design (:mod:`biasstats.checks.estimand_coverage`) is simulated 100 times with
different seeds (new prompt effects and noise), fitted (2 chains x 300 draws) and every
estimand with a known truth (marginal means, contrasts in units / percentage points, ratios,
average slopes) scored as inside or outside its 90% HDI. Slow: ``nox -s slow``.

The indicators of one replication are correlated (a level's mean and the contrast share
draws), so the pooled coverage varies more than a binomial count: with 50 replications the
bernoulli design measured 0.967 at seed 1 and 0.877 with 100 at seed 2 (difference 0.91,
interval width matching the spread of the estimates). 100 replications keep the Monte Carlo
error of each family's coverage near 0.02, inside the 0.85–0.95 window.

``categorical_qa`` holds the derived estimands to the same rule: a BBQ-shaped QA benchmark
(:func:`biasstats.simulate.qa_design.qa_bias`, 2 categories x 2 contexts x 4 question
templates x 30 answers) whose truth is BBQ's bias scores s_DIS and s_AMB per category x context
and the accuracy in ambiguous contexts per category (10 per replication). Measured at seed 2:
0.874 (874/1000; 2 x 300 draws, 10 min on a loaded 2-core machine) and 0.880 with 2 x 1,000
draws, whose replication-clustered SE is 0.013 (mean error of every score within 0.002 of 0;
its spread 6-9% above the posterior SD).
"""

from __future__ import annotations

import pytest

from biasstats.checks.estimand_coverage import DESIGNS, run_estimand_coverage

REPS = 100


@pytest.mark.slow
@pytest.mark.parametrize("family", list(DESIGNS))
def test_default_estimands_cover_at_nominal_rate(family):
    res = run_estimand_coverage(family, reps=REPS, prob=0.90, seed=2)
    print(res.line())
    assert res.table["replication"].n_unique() == REPS
    assert 0.85 <= res.coverage <= 0.95, res.line()
