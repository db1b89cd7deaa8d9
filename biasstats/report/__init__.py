"""Report stage: every analysis spec → ``reports/<analysis>/`` plus ``reports/index.html``.

Entry points: :func:`build_reports` (every spec + the index); one analysis is
:func:`biasstats.pipeline.run_analysis`, whose computed result
:func:`biasstats.report.analysis.render` draws.
"""

from biasstats.report.build import build_reports

__all__ = ["build_reports"]
