"""Coverage of the shipped default model on a study from the calibrated simulator.

Truth: the simulator's own parameters (truth.json): the marginal P(congruent) of every LLM x
stereotype cell, computed by quadrature over the reply-level spread."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

from biasstats.studies.bai2024.validate import summarise, true_bias


def test_true_bias_is_the_marginal_probability_over_replies_and_variants():
    truth = {"variants": {"a": -0.2, "b": 0.2},
             "cells": [{"llm": "m1", "stereotype": "s1", "eta": 0.5, "sigma": 0.8},
                       {"llm": "m1", "stereotype": "s2", "eta": -0.3, "sigma": 0.8},
                       {"llm": "m2", "stereotype": "s1", "eta": 1.0, "sigma": 0.0},
                       {"llm": "m2", "stereotype": "s2", "eta": 0.0, "sigma": 0.0}]}
    got = true_bias(truth)
    rng = np.random.default_rng(0)
    u = rng.normal(size=400_000)
    mc = np.mean([expit(0.5 + v + 0.8 * u).mean() for v in (-0.2, 0.2)])
    assert got["llm:stereotype"]["m1:s1"] == pytest.approx(2 * mc - 1, abs=3e-3)
    exact = np.mean([expit(1.0 + v) for v in (-0.2, 0.2)])  # sigma 0: no integral
    assert got["llm:stereotype"]["m2:s1"] == pytest.approx(2 * exact - 1, rel=1e-12)
    assert got["stereotype"]["s1"] == pytest.approx(
        (got["llm:stereotype"]["m1:s1"] + got["llm:stereotype"]["m2:s1"]) / 2, rel=1e-12)
    assert set(got["llm"]) == {"m1", "m2"}


def test_summary_counts_coverage_and_rmse():
    import polars as pl

    levels = pl.DataFrame({
        "model": ["d"] * 4, "term": ["llm"] * 4, "prob": [0.9] * 4, "truth": [0.0] * 4,
        "mean": [0.1, -0.1, 0.3, 0.0], "low": [-0.1, -0.2, 0.2, -0.1],
        "high": [0.2, 0.1, 0.4, 0.1], "covered": [True, True, False, True]})
    s = summarise(levels).row(0, named=True)
    assert s["n"] == 4 and s["coverage"] == 0.75
    assert s["rmse"] == pytest.approx(np.sqrt((0.01 + 0.01 + 0.09) / 4))
    assert s["width"] == pytest.approx(0.25)
    assert s["binomial_se"] == pytest.approx(np.sqrt(0.9 * 0.1 / 4))


@pytest.mark.slow
def test_default_model_covers_the_llm_by_stereotype_truth(tmp_path):
    from biasstats.studies.bai2024.validate import validate

    summary = validate([7], tmp_path, models=("default",))
    row = summary.filter((summary["term"] == "llm:stereotype")
                         & (summary["prob"] == 0.95)).row(0, named=True)
    assert row["n"] == 168
    # nominal 95% within 3 binomial standard errors (168 cells: se 1.7%)
    assert row["coverage"] >= 0.95 - 3 * row["binomial_se"]
    runs = json.loads((tmp_path / "validation_runs.json").read_text())
    assert runs[0]["gate_passed"]
    assert (tmp_path / "validation_coverage.png").stat().st_size > 0


def test_the_validated_models_are_the_shipped_specs():
    """nox -s validate fits the specs in analyses/ (a wrong root made it fail at once)."""
    from biasstats.spec import load_spec
    from biasstats.studies.bai2024.validate import MODELS, ROOT

    assert (ROOT / "analyses").is_dir() and (ROOT / "noxfile.py").is_file()
    for name, path in MODELS.items():
        assert load_spec(path).content.simulate is not None, name
