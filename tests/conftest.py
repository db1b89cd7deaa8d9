"""Shared test fixtures.

Tests that read the third-party Bai et al. (2024) files use the ``bai2024`` fixture (or the
``requires_shared`` mark); they skip with a clear reason when the mirror is absent, as on a
machine without ../shared.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _mirror_root() -> Path:
    env = os.environ.get("BIASSTATS_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data"


MIRROR = _mirror_root()
BAI2024 = MIRROR / "bai2024"
SKIP_REASON = (
    f"third-party data mirror not found at {BAI2024} "
    "(set BIASSTATS_DATA to a folder holding bai2024/, or run beside ../shared)"
)

requires_shared = pytest.mark.skipif(not BAI2024.is_dir(), reason=SKIP_REASON)


@pytest.fixture(scope="session")
def bai2024() -> Path:
    """Path of the Bai 2024 mirror folder (``.../bai2024``); skips when absent."""
    if not BAI2024.is_dir():
        pytest.skip(SKIP_REASON)
    return BAI2024
