"""Report stage: every analysis spec → ``reports/<analysis>/`` plus ``reports/index.html``.

Entry points: :func:`build_reports` (every spec + the index) and :func:`build_analysis` (one).
"""

from biasstats.report.analysis import AnalysisOutcome, build_analysis
from biasstats.report.build import build_reports

__all__ = ["AnalysisOutcome", "build_analysis", "build_reports"]
