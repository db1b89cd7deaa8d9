"""Ingest stage: raw trial-level responses → the canonical trial table + a ledger.

Entry points: :func:`ingest` (spec or path → :class:`IngestResult`) and
:func:`ingest_cells` (a declared source streamed to design cells and a ledger).
"""

from biasstats.ingest.ledger import Ledger
from biasstats.ingest.run import Cells, IngestResult, ingest, ingest_cells, ingest_parts

__all__ = ["Cells", "IngestResult", "Ledger", "ingest", "ingest_cells", "ingest_parts"]
