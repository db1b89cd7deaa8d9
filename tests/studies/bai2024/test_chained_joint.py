"""The shipped flagship joint analysis (analyses/chained_joint.toml) on the authors' chained
GPT-4 data: implicit and decision bias per stereotype in one model (slow: one fit)."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import pytest

from biasstats.run import run_analysis

SPEC = Path(__file__).resolve().parents[3] / "analyses" / "chained_joint.toml"


@pytest.mark.slow
def test_chained_joint_builds_with_its_correlation_and_slopes(bai2024, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_analysis(SPEC, tmp_path, progress=False)
    assert out.status == "built" and out.gate_passed
    est = pl.read_parquet(tmp_path / "chained_joint" / "estimands.parquet")
    cor = est.filter((pl.col("estimand") == "correlation") & (pl.col("method") == "latent"))
    assert cor.height == 1 and cor["term"][0] == "stereotype" and cor["n_levels"][0] == 21
    assert -1 < cor["hdi_low"][0] < cor["mean"][0] < cor["hdi_high"][0] < 1
    slopes = est.filter(pl.col("estimand") == "slope")
    assert set(slopes["method"]) == {"latent", "two-step"}
    assert set(est["part"].drop_nulls()) == {"implicit", "decision"}
