"""Design analysis: how many levels and replicates a study needs (``biasstats design``).

For each design size — the number of levels of a grouping factor of the formula, the rows per
design cell (:mod:`.sizes`) — simulate studies from the analysis' fitted posterior (or its
prior when nothing is fitted; :mod:`.truth`), refit each with one compiled model per size and
score the estimand's interval: its width, whether it excludes zero (or reaches a ROPE
decision), whether it covers the true value (:mod:`.analysis`). :mod:`.plan` checks the whole
request before anything is sampled. The stage computes; ``biasstats.run.design`` writes the
table, the assurance-curve figure and the recommendation.
"""

from biasstats.design.analysis import (
    DesignAnalysis,
    recommend,
    run_design,
    straddling,
    summarise,
)
from biasstats.design.plan import Plan, Target, analysis_posterior, make_plan
from biasstats.design.sizes import TRIALS, Vary, parse_vary

__all__ = ["DesignAnalysis", "Plan", "Target", "TRIALS", "Vary", "analysis_posterior",
           "make_plan", "parse_vary", "recommend", "run_design", "straddling",
           "summarise"]
