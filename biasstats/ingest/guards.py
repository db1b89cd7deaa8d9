"""The one-line errors of the ingest's guards (``[data] max_rows``,
``max_decompressed_bytes``), shared by every reader."""

from __future__ import annotations

from pathlib import Path

from biasstats.errors import DataError

__all__ = ["too_big", "too_many_rows"]


def too_big(path: Path, max_bytes: int) -> DataError:
    """The error for a compressed file expanding past ``[data] max_decompressed_bytes``."""
    return DataError(
        f"{path}: expands to more than {max_bytes:,} bytes when decompressed "
        f"([data] max_decompressed_bytes); raise the limit if the file is genuine"
    )


def too_many_rows(where: object, max_rows: int) -> DataError:
    """The error for a source passing ``[data] max_rows`` (``where``: the file it happens at)."""
    return DataError(
        f"{where}: the source passes {max_rows:,} rows at this file ([data] max_rows); "
        f"raise the limit if this is expected"
    )
