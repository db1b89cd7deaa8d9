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


# ------------------------------------------------------------------ shared fitted models
# Small models fitted once per test session (once per xdist worker), shared across files by
# tests that check what does not depend on fitting their own copy: estimands against this
# design's truth, error messages of the estimand requests, predictions plumbing. Each is
# ``(fit, data, truth)`` with the truth of ``biasstats.simulate.designs`` for this design.
# Fits are read-only: a test must never change a shared fit.

SHARED_FITS = {
    # name: (design, design kwargs, formula, family, fit kwargs)
    "gaussian_fit": ("gaussian_condition", {"seed": 2}, "y ~ condition + x + (1|prompt)",
                     "gaussian", dict(chains=2, tune=300, draws=300, seed=3)),
    "bernoulli_fit": ("refusals", {"seed": 6}, "refused ~ condition + (1|prompt)", "bernoulli",
                      dict(chains=2, tune=300, draws=300, seed=3)),
    "negative_binomial_fit": ("token_counts", {"seed": 4}, "tokens ~ condition + (1|prompt)",
                              "negative_binomial", dict(chains=2, tune=300, draws=300, seed=3)),
    "categorical_fit": ("categorical_choice", {"seed": 4, "prompts": 10, "reps": 30},
                        "answer ~ condition + (1|prompt)", "categorical",
                        dict(chains=2, tune=400, draws=300, seed=3)),
    "cumulative_fit": ("ordinal_rating", {"seed": 5, "prompts": 10, "reps": 30},
                       "rating ~ condition + (1|prompt)", "cumulative",
                       dict(chains=2, tune=400, draws=300, seed=3)),
}


def _shared_fit(name: str):
    import warnings

    import biasstats
    from biasstats.simulate import designs

    design, dkw, formula, family, fkw = SHARED_FITS[name]
    df, truth = getattr(designs, design)(**dkw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = biasstats.fit(formula, data=df, family=family, progress=False, **fkw)
    return fit, df, truth


@pytest.fixture(scope="session")
def beta_binomial_fit():
    """``k | trials(n) ~ 1`` (beta-binomial): 1500 trials of 16 judgements sharing
    p ~ Beta(mu*phi, (1-mu)*phi); truth ``{"mu": 0.65, "phi": 3.0}``."""
    import warnings

    import numpy as np
    import polars as pl

    from biasstats.inference import fit as fit_model

    rng = np.random.default_rng(8)
    mu, phi, n_trials = 0.65, 3.0, 1500
    k = rng.binomial(16, rng.beta(mu * phi, (1 - mu) * phi, n_trials))
    df = pl.DataFrame({"k": k, "n": np.full(n_trials, 16)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit_model("k | trials(n) ~ 1", df, family="beta_binomial", chains=2, draws=500,
                      tune=500, seed=2, progress=False)
    return f, df, {"mu": mu, "phi": phi}


@pytest.fixture(scope="session")
def gaussian_fit():
    """``y ~ condition + x + (1|prompt)`` on designs.gaussian_condition(seed=2)."""
    return _shared_fit("gaussian_fit")


@pytest.fixture(scope="session")
def bernoulli_fit():
    """``refused ~ condition + (1|prompt)`` (collapsed bernoulli) on designs.refusals(seed=6)."""
    return _shared_fit("bernoulli_fit")


@pytest.fixture(scope="session")
def negative_binomial_fit():
    """``tokens ~ condition + (1|prompt)`` on designs.token_counts(seed=4)."""
    return _shared_fit("negative_binomial_fit")


@pytest.fixture(scope="session")
def categorical_fit():
    """``answer ~ condition + (1|prompt)`` on designs.categorical_choice(seed=4, 10 x 30)."""
    return _shared_fit("categorical_fit")


@pytest.fixture(scope="session")
def cumulative_fit():
    """``rating ~ condition + (1|prompt)`` on designs.ordinal_rating(seed=5, 10 x 30)."""
    return _shared_fit("cumulative_fit")
