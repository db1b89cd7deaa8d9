"""The automatic mass-matrix adaptation: low_rank up to LOW_RANK_MAX_PARAMS parameters, or
above it with at least LOW_RANK_MIN_OBS_PER_PARAM observations per parameter; diag otherwise;
the choice and its reason in the fit's settings."""

import numpy as np
import polars as pl
import pytest


@pytest.mark.parametrize("n, obs, want", [
    (10, 5, "low_rank"), (500, 0, "low_rank"),          # few parameters: always low_rank
    (501, 501 * 20, "low_rank"), (661, 30_000, "low_rank"),  # the token-shaped model
    (501, 501 * 20 - 1, "diag"), (802, 1_588, "diag"),  # the 800-level bernoulli
    (661, 6_000, "diag"), (900, None, "diag"),
])
def test_adaptation_rule_chooses_as_specified(n, obs, want):
    from biasstats.inference.sample import (
        LOW_RANK_MAX_PARAMS,
        LOW_RANK_MIN_OBS_PER_PARAM,
        auto_adaptation,
    )

    assert (LOW_RANK_MAX_PARAMS, LOW_RANK_MIN_OBS_PER_PARAM) == (500, 20)
    value, reason = auto_adaptation(n, obs)
    assert value == want
    assert reason.startswith(f"automatic: {n} parameters")


def test_resolve_settings_passes_the_models_observations():
    """A built model above 500 parameters: diag with few rows per parameter, low_rank with
    many, the reason naming the count (what Fit.settings records)."""
    from biasstats.inference import fit_settings, memory_estimate, resolve_settings
    from biasstats.model.build import prepare
    from biasstats.model.graph import build_model

    rng = np.random.default_rng(0)
    for reps, want in ((2, "diag"), (25, "low_rank")):
        g = np.repeat(np.arange(600), reps)
        df = pl.DataFrame({"y": rng.normal(size=len(g)), "g": [f"g{i}" for i in g]})
        spec = prepare("y ~ 1 + (1|g)", df, "gaussian")
        model = build_model(spec)
        settings = fit_settings(draws=100, tune=100)
        est = memory_estimate(model, spec, settings)
        got, reasons = resolve_settings(model, est, settings)
        assert est["parameters"] > 500 and est["observations"] == len(g)
        assert got.adaptation == want
        assert f"{len(g)} observations" in reasons["adaptation_reason"] or want == "diag"
