"""Run analyses: one (:func:`run_analysis`: ingest, fit, compute, write, render) or many
(:func:`build_reports`: every spec and the index, in worker processes with ``jobs`` > 1)."""

from biasstats.run.analysis import AnalysisOutcome, run_analysis
from biasstats.run.many import build_reports

__all__ = ["AnalysisOutcome", "build_reports", "run_analysis"]
