"""Simulation: outcomes drawn from a spec's model (:mod:`.from_formula`), designs
(:mod:`.designs`) and the result type every simulator returns. Study-calibrated presets live
in their study package and are found through :mod:`biasstats.registry`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from biasstats.io import write_parquet_atomic, write_text_atomic

__all__ = ["SimulatedStudy"]


@dataclass(frozen=True)
class SimulatedStudy:
    """The canonical trial table (one row per judgement), the true parameters, and the input
    files the simulation read (e.g. a calibration table; the ledger records their checksums)."""

    table: pl.DataFrame
    truth: dict
    sources: tuple[Path, ...] = ()

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        folder = Path(folder)
        t = write_parquet_atomic(folder / "simulated.parquet", self.table)
        j = write_text_atomic(folder / "truth.json", json.dumps(self.truth, indent=2) + "\n")
        return t, j
