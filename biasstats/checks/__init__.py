"""Checks stage: convergence gate, posterior predictive checks, LOO, frequentist cross-checks.

Entry points: :func:`convergence_gate`, :func:`grouped_ppc`, :func:`loo_summary`. A study's
own cross-checks (e.g. the authors' t-tests) come from :func:`biasstats.registry.crosschecks`.
"""

from biasstats.checks.ppc import grouped_ppc, loo_summary
from biasstats.inference.convergence import GateResult, Thresholds, convergence_gate

__all__ = ["GateResult", "Thresholds", "convergence_gate", "grouped_ppc", "loo_summary"]
