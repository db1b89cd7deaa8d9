"""The calibrated Bai-shaped simulator: deterministic, shaped like the study, true to its targets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from biasstats.studies.bai2024.dscore_grid import d_score
from biasstats.studies.bai2024.simulate import load_calibration, simulate_bai_study


def _trial_d(table: pl.DataFrame) -> pl.DataFrame:
    ok = table.filter(pl.col("status") == "ok")
    neg, pos, c = pl.col("valence") == "negative", pl.col("valence") == "positive", pl.col("congruent")
    counts = ok.group_by("source_row", "llm", "stereotype").agg(
        a=(neg & (c == 1)).sum(), b=(pos & (c == 0)).sum(), c=(neg & (c == 0)).sum(), d=(pos & (c == 1)).sum()
    )
    return counts.with_columns(
        pl.Series("D", d_score(counts["a"], counts["b"], counts["c"], counts["d"]))
    )


@pytest.fixture(scope="module")
def study():
    return simulate_bai_study(seed=7)


def test_shape_of_the_study(study):
    t = study.table
    trials = t.select("source_row").unique().height
    assert trials == 8 * 21 * 4 * 50
    assert t["llm"].n_unique() == 8 and t["stereotype"].n_unique() == 21
    assert t["category"].n_unique() == 4 and t["variant"].n_unique() == 4
    per_trial = t.filter(pl.col("status") == "ok").group_by("source_row").len()["len"]
    assert per_trial.min() == per_trial.max() == 16
    refused = t.filter(pl.col("status") == "refused")
    assert refused["congruent"].null_count() == refused.height
    assert 0.01 < refused.height / trials < 0.03  # refusal_rate = 0.02


def test_same_seed_same_numbers():
    a = simulate_bai_study(seed=3, trials=5)
    b = simulate_bai_study(seed=3, trials=5)
    c = simulate_bai_study(seed=4, trials=5)
    assert a.table.equals(b.table) and a.truth == b.truth
    assert not a.table.equals(c.table)


def test_reproduces_the_calibration_targets(study):
    """Model-level mean D within 0.025 of the published means the calibration was fitted to."""
    cal = load_calibration()
    d = _trial_d(study.table)
    sim = d.group_by("llm").agg(pl.col("D").mean().alias("sim"))
    target = cal.group_by("llm").agg(pl.col("target_mean").mean().alias("target"))
    both = sim.join(target, on="llm")
    assert both.height == 8
    assert (both["sim"] - both["target"]).abs().max() < 0.025
    cells = d.group_by("llm", "stereotype").agg(pl.col("D").mean().alias("sim")).join(
        cal, on=["llm", "stereotype"]
    )
    assert np.corrcoef(cells["sim"], cells["target_mean"])[0, 1] > 0.99


def test_model_level_means_match_published_figures(study, bai2024):
    published = pl.read_csv(bai2024 / "digitized_from_figures" / "digitized_model_level.csv")
    sim = _trial_d(study.table).group_by("llm").agg(pl.col("D").mean().alias("sim"))
    both = sim.join(published, on="llm")
    assert both.height == 8
    assert (both["sim"] - both["implicit_mean"]).abs().max() < 0.025
    # the ordering of the models is the paper's (Spearman's rho > 0.95)
    rho = np.corrcoef(both["sim"].rank(), both["implicit_mean"].rank())[0, 1]
    assert rho > 0.95
