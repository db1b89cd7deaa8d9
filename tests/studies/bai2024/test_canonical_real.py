"""The shipped analyses on the real Bai et al. data fit cleanly with default settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from biasstats.checks import convergence_gate
from biasstats.inference.from_spec import fit_spec
from biasstats.ingest import ingest

ANALYSES = Path(__file__).resolve().parents[3] / "analyses"


@pytest.mark.filterwarnings("ignore")
def test_gpt4o_canonical_model_passes_the_gate(bai2024):
    res = ingest(ANALYSES / "gpt4o_iat.toml")
    fit = fit_spec(res.spec, res.table).fit
    diag = fit.diagnostics()
    gate = convergence_gate(diag)
    assert gate.passed, gate.failures
    assert diag["divergences"] == 0
    assert diag["min_ess_bulk"] >= 400 and diag["min_ess_tail"] >= 400
    assert diag["max_rhat"] <= 1.01


@pytest.mark.filterwarnings("ignore")
def test_chained_slope_matches_the_paper(bai2024):
    """Bayesian logistic slope of decision on iat_bias ≈ the paper's 0.983 (SE 0.119)."""
    res = ingest(ANALYSES / "chained_decision.toml")
    fit = fit_spec(res.spec, res.table).fit
    b = fit.idata["posterior"]["b"].sel(coef="iat_bias").values.ravel()
    assert b.mean() == pytest.approx(0.983, abs=0.02)
    assert b.std() == pytest.approx(0.119, abs=0.01)
