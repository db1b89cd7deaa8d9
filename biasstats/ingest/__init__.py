"""Ingest stage: raw trial-level responses → the canonical trial table + a ledger.

Entry point: :func:`ingest` (spec or path → :class:`IngestResult`).
"""

from biasstats.ingest.ledger import Ledger
from biasstats.ingest.run import IngestResult, ingest

__all__ = ["IngestResult", "Ledger", "ingest"]
