"""Simulation-based calibration: the canonical bias model's ranks are uniform, and the
uniformity tests have power (a posterior shifted by one SD fails)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from biasstats.checks.sbc import SBC_SETTINGS, chisq_test, ecdf_test, run_sbc
from biasstats.report.sbc import plot_ecdf_difference
from biasstats.studies.bai2024.sbc import CANONICAL_FORMULA
from biasstats.studies.bai2024.simulate import reduced_bai_design

ALPHA = 0.001  # per-parameter threshold (Bonferroni-ish over ~10 parameters x 2 tests)


def _design() -> pl.DataFrame:
    rows = [(f"llm{m}", f"v{v}") for m in range(3) for v in range(3) for _ in range(30)]
    return pl.DataFrame(rows, schema=["llm", "variant"], orient="row")


@pytest.fixture(scope="module")
def sbc():
    return run_sbc("congruent ~ 1 + (1|llm) + (1|variant)", _design(), "bernoulli", 25,
                   draws=400, tune=400, chains=2, seed=1, keep_draws=True)


def test_sbc_ranks_are_uniform(sbc, tmp_path):
    ranks, tests = sbc.ranks, sbc.tests
    assert ranks.columns[:4] == ["simulation", "parameter", "rank", "max_rank"]
    names = set(tests["parameter"])
    assert names == {"Intercept", "sd_llm", "sd_variant", "r_llm[llm0]", "r_llm[llm1]",
                     "r_llm[llm2]", "r_variant[v0]", "r_variant[v1]", "r_variant[v2]"}
    assert ranks.height == 25 * len(names)
    assert (ranks["rank"] >= 0).all() and (ranks["rank"] <= ranks["max_rank"]).all()
    assert ((ranks["u"] >= 0) & (ranks["u"] < 1)).all()
    assert (sbc.sims["kept"] >= 50).all()                      # thinned by ESS, not too few
    bad = tests.filter((pl.col("p_chisq") <= ALPHA) | (pl.col("p_ecdf") <= ALPHA))
    assert bad.height == 0, bad
    assert sbc.passed(ALPHA)
    # one compiled model per centring choice, reused across simulations
    assert 1 <= sbc.timings["compiled_variants"] <= 4
    paths = {**sbc.write(tmp_path), **plot_ecdf_difference(sbc, tmp_path)}
    back = json.loads(paths["json"].read_text())
    assert back["n_parameters"] == len(names) and back["passed_at_0.001"] is True
    assert pl.read_parquet(paths["ranks"]).equals(ranks)
    assert paths["svg"].stat().st_size > 0 and paths["png"].stat().st_size > 0


def test_sbc_detects_a_miscalibrated_posterior(sbc):
    """Negative control: ranks against the posterior shifted by +1 posterior SD."""
    neg = sbc.reranked(1.0)
    assert not neg.passed(ALPHA)
    # most parameters fail the chi-square test at 1%, and the truth sits high in the ranks
    assert (neg.tests["p_chisq"] < 0.01).mean() >= 0.5
    assert (neg.tests["mean_u"] < 0.35).all()
    assert neg.tests["p_ecdf"].min() <= 0.01


def test_uniformity_tests_on_known_samples():
    rng = np.random.default_rng(0)
    u = rng.random(200)
    assert chisq_test(u)[0] > 0.01 and ecdf_test(u) > 0.01
    skew = rng.random(200) ** 1.6
    assert chisq_test(skew)[0] < 0.001 and ecdf_test(skew) < 0.001
    narrow = 0.25 + 0.5 * rng.random(200)        # overdispersed posterior: too few extremes
    assert ecdf_test(narrow) < 0.001
    # the ECDF test is calibrated: about 5% of uniform samples have p < 0.05
    ps = np.array([ecdf_test(rng.random(30)) for _ in range(300)])
    assert 0.01 < np.mean(ps < 0.05) < 0.10


def test_reduced_bai_design_shape():
    d = reduced_bai_design(llms=2, stereotypes_per_category=2, variants=2, trials=3)
    assert d.height == 2 * 4 * 2 * 2 * 3 * 16
    assert d["category"].n_unique() == 4 and d["stereotype"].n_unique() == 8


@pytest.mark.slow
def test_sbc_canonical_model_reduced_bai():
    """The canonical bias model, automatic centring as in fit(), on a reduced Bai design
    (3 LLMs x 4 categories x 2 stereotypes x 2 variants x 5 trials x 16 judgements), with the
    settings of the larger run behind ``nox -s sbc`` (SBC_SETTINGS). About 90-190 s, most of
    it compiling one model per centring choice: in ``nox -s slow`` (with ``nox -s sbc``'s
    200-simulation run), so the default test run stays under 10 minutes on 2 cores; the
    default run keeps the small SBC below (uniform ranks, a miscalibration detected)."""
    design = reduced_bai_design(llms=3, stereotypes_per_category=2, variants=2, trials=5)
    res = run_sbc(CANONICAL_FORMULA, design, "bernoulli", 40, seed=3, **SBC_SETTINGS)
    scalars = set(res.tests.filter(~pl.col("parameter").str.contains(r"\["))
                  ["parameter"])
    assert scalars == {"Intercept", "sd_llm", "sd_category", "sd_category:stereotype",
                       "sd_variant"}
    assert res.tests.height == 5 + 3 + 4 + 8 + 2          # plus every level's effect
    assert res.passed(ALPHA), res.tests.sort("p_ecdf").head(5)
    # fit()'s defaults: low-rank mass matrix, target acceptance chosen per simulation
    assert res.settings["adaptation"] == "low_rank" and res.settings["target_accept"] is None
    assert set(res.sims["target_accept"]) <= {0.9, 0.95, 0.99}


def test_parameter_selection():
    import xarray as xr

    from biasstats.checks.sbc import scalars

    ds = xr.Dataset({
        "Intercept": (("chain", "draw"), np.zeros((2, 5))),
        "r_llm": (("chain", "draw", "llm"), np.zeros((2, 5, 3))),
        "z_llm": (("chain", "draw", "llm"), np.zeros((2, 5, 3))),
    }, coords={"llm": ["a", "b", "c"]})
    assert list(scalars(ds, None)) == ["Intercept", "r_llm[a]", "r_llm[b]", "r_llm[c]"]
    assert list(scalars(ds, ["r_llm"])) == ["r_llm[a]", "r_llm[b]", "r_llm[c]"]
    assert list(scalars(ds, ["Intercept", "r_llm[b]"])) == ["Intercept", "r_llm[b]"]
    assert scalars(ds, None)["r_llm[b]"].shape == (2, 5)


@pytest.mark.slow
def test_sbc_without_compiled_reuse_matches_shape():
    """The slow path (biasstats.inference.fit per simulation) gives the same kind of result."""
    res = run_sbc("congruent ~ 1 + (1|llm)", _design(), "bernoulli", 3, draws=200, tune=200,
                  chains=2, seed=2, reuse_compiled=False)
    assert res.ranks.height == 3 * 5 and res.settings["reuse_compiled"] is False
