"""Report stage: every analysis spec → ``reports/<analysis>/`` plus ``reports/index.html``.

Entry point: :func:`build_reports`. At this stage of the project a report holds the ingest
output (canonical table, ledger); model fits, effects and figures are added by later stages.
"""

from biasstats.report.build import AnalysisOutcome, build_reports

__all__ = ["AnalysisOutcome", "build_reports"]
