"""The simulated CV-rating design of issue 26 (ordinal 1–4, five crossed small-SD terms, one
degenerate LLM x scaffold cell): its shape and diagnosis (fast), and, marked slow, that the
shipped analysis passes its gate within its automatic refit plan, without hints, on the seed
that one refit left failing (seed 2). The 90% coverage of the E[rating] contrasts over
replications takes hours: ``tests/simulate/rating_coverage.py`` (``nox -s validate_rating``)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from biasstats.model.build import prepare
from biasstats.simulate.designs import cv_ratings

FORMULA = "rating ~ name + (1|llm) + (1|scaffold) + (1|cv) + (1|llm:scaffold) + (1|llm:name)"


def test_the_rating_design_and_its_degenerate_cell_seen_before_sampling():
    table, truth = cv_ratings(seed=3)
    assert table.height == 6 * 4 * 3 * 7 * 10
    cell = table.filter((pl.col("llm") == "m6") & (pl.col("scaffold") == "s4"))
    assert cell.height == 210 and cell["rating"].unique().to_list() == [4]
    assert set(truth) >= {"mean_rating:name:n1", "difference_rating:name:n7 − n1"}
    spec = prepare(FORMULA, table.with_columns(pl.col("rating").cast(pl.Utf8)), "cumulative")
    assert spec.diagnosis == [
        "term '(1|llm:scaffold)': 1 of 24 levels has every rating in the lowest or highest "
        "category ('m6:s4'): their effects are bounded by the prior on sd_llm:scaffold alone "
        "(separation); keep a proper prior such as sd_llm:scaffold = \"HalfNormal(1)\", or "
        "pool or drop those levels"]


def rating_contrasts(fit, table: pl.DataFrame, prob: float = 0.9) -> dict[str, tuple]:
    """Per name n2…n7: the (low, high) ``prob`` interval of E[rating | name] − E[rating | n1],
    each averaged over the design's LLM x scaffold x CV cells."""
    from biasstats.inference.predict import posterior_linpred, stack_draws

    cells = table.select("llm", "scaffold", "cv", "name").unique(maintain_order=True)
    eta = posterior_linpred(fit, cells)
    post = fit.idata["posterior"].to_dataset()
    p = fit.spec.family.categories(eta, {"cutpoints": stack_draws(post, "cutpoints")[:, None]})
    er = p @ np.arange(1, p.shape[-1] + 1)                 # (S, cells)
    names = cells["name"].to_numpy()
    mean = {n: er[:, names == n].mean(axis=1) for n in np.unique(names)}
    a = (1 - prob) / 2
    return {f"{n} − n1": tuple(np.quantile(mean[n] - mean["n1"], [a, 1 - a]))
            for n in sorted(mean) if n != "n1"}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_the_rating_analysis_passes_its_gate_within_the_refit_plan():
    """Seed 2 (one refit was not enough: attempt 2 missed by min tail ESS 379 < 400). Measured
    with the plan (2 cores: 52 min at load ~18, 3.8 min quiet): attempt 1, 17
    divergences at small sd_cv -> cv non-centred at 0.99; attempt 2, tail ESS 355 and E-BFMI
    0.28 -> llm:name non-centred; attempt 3 passed. Seeds 1-10 (rating_coverage.py): all
    pass, at attempt 1, 2 or 3 (1, 7, 2 seeds)."""
    from biasstats.inference import fit_prepared, fit_settings
    from biasstats.inference.attempts import MAX_ATTEMPTS
    from biasstats.inference.convergence import Thresholds

    table, _ = cv_ratings(seed=2)
    spec = prepare(FORMULA, table.with_columns(pl.col("rating").cast(pl.Utf8)), "cumulative")
    # the shipped analysis' [fit] (draws = 2000: 1,000 leave the slowest SD's bulk ESS near
    # the gate's 400)
    fit = fit_prepared(spec, fit_settings(seed=2, draws=2000), progress=False,
                       thresholds=Thresholds())
    attempts = fit.settings["attempts"]
    assert attempts[-1]["passed"] and len(attempts) <= MAX_ATTEMPTS, attempts
    assert all(a["cause"] in ("geometry", "ess", "rhat", "mixing") for a in attempts[1:])
    # the intervals are usable: each contrast's 90% interval is narrower than 0.5 rating points
    for k, (lo, hi) in rating_contrasts(fit, table).items():
        assert hi - lo < 0.5, (k, lo, hi)
