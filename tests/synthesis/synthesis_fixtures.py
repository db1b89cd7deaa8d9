"""Fake built analyses for the synthesis tests: an analysis folder holding only what
``biasstats summarize`` reads (``estimand_draws.parquet`` with its metadata, and a
``report.html`` to link), with draws the test chooses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from biasstats.effects.draws import DRAW_COLUMNS, DRAWS_FILE


def fake_analysis(root: Path, name: str, draws, *, estimand: str = "contrast",
                  term: str = "condition", level: str = "treated − control",
                  scale: str = "difference", unit: str = "percentage points",
                  outcome_unit: str = "", extra_levels: dict | None = None,
                  report: bool = True) -> Path:
    """``root/name`` with the draws of one estimand row (and of ``extra_levels``: level ->
    draws, same term)."""
    folder = root / name
    folder.mkdir(parents=True)
    parts = []
    for lv, d in {level: draws, **(extra_levels or {})}.items():
        d = np.asarray(d, dtype=float)
        ident = {"estimand": estimand, "term": term, "level": lv, "scale": scale,
                 "stratum": None, "category": None}
        parts.append(pl.DataFrame({**{c: pl.Series(c, [ident[c]] * d.size, dtype=pl.Utf8)
                                      for c in DRAW_COLUMNS},
                                   "unit": [unit] * d.size,
                                   "draw": np.arange(d.size, dtype=np.int32), "value": d}))
    pl.concat(parts).write_parquet(folder / DRAWS_FILE, metadata={
        "biasstats_analysis": name, "title": f"Analysis {name}", "outcome": "refusal",
        "outcome_unit": outcome_unit, "response_scale": "probability", "hdi_prob": "0.95"})
    if report:
        (folder / "report.html").write_text(f"<html>{name}</html>")
    return folder
