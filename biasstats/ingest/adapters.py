"""Adapters: turn a raw source table into canonical rows plus a per-row status.

An adapter is a function ``(raw, resolve) -> AdapterOutput`` registered under a name that a
spec's ``[data] adapter = "..."`` selects. ``raw`` is the source as read (all files of a
dataset concatenated, every column as text, plus ``source_row`` (0-based, global) and
``source_file`` (file name)). ``resolve(dataset_name)`` returns the local paths of another
registered dataset (e.g. the stimulus lists an IAT adapter needs).

The built-in ``tidy`` steps (parse rules, explode, column mapping, derive; see
:mod:`biasstats.ingest.rules` and :mod:`biasstats.ingest.tidy`) need no registration; the
Bai et al. (2024) raw-text adapters live in :mod:`biasstats.studies.bai2024`. Adapters are
registered in :mod:`biasstats.registry` (a spec names them, never Python code): a study's
raw-text adapters with ``register_study_adapter``; a user's function ``(raw) -> DataFrame``
with ``biasstats.register_adapter`` or as an entry point in the ``biasstats.adapters``
group; it returns a DataFrame that keeps ``source_row``, and the tidy steps then run on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl

Resolver = Callable[[str], list[Path]]


@dataclass(frozen=True)
class AdapterOutput:
    """``rows``: one row per raw row (``source_row``, ``status``, ``reason``).
    ``table``: the canonical table (see :mod:`biasstats.ingest.schema`), one row per judgement.
    ``notes``: decisions worth printing in the ledger (e.g. a documented valence rule)."""

    rows: pl.DataFrame
    table: pl.DataFrame
    notes: tuple[str, ...] = ()


class Adapter(Protocol):
    def __call__(self, raw: pl.DataFrame, resolve: Resolver) -> AdapterOutput: ...
