"""Effect sizes: closed forms, exact computations from known draws, and recovery from a fit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import xarray as xr
from scipy.special import expit, logit

from biasstats.effects.summaries import verdict
from biasstats.model.build import prepare
from biasstats.studies.bai2024.dscore_grid import simulate_d
from biasstats.studies.bai2024.effects import compute_effects, expected_d, rope_on_scale
from biasstats.studies.bai2024.wording import VERDICT_WORDS


def test_expected_d_closed_forms():
    m = 8
    assert expected_d(np.array([0.0]), m)[0] == pytest.approx(-1.0)
    assert expected_d(np.array([1.0]), m)[0] == pytest.approx(2 * 8 / 8.01 - 1)  # 0.9975
    # one word per valence: D = a/(a+1-d+.01) + d/(1-a+d+.01) - 1 over the four (a, d)
    p = 0.3
    cases = {(0, 0): -1.0, (1, 1): 2 / 1.01 - 1, (1, 0): 1 / 2.01 - 1 + 0.0, (0, 1): 1 / 2.01 - 1}
    want = sum(
        (p if a else 1 - p) * (p if d else 1 - p) * v for (a, d), v in cases.items()
    )
    assert expected_d(np.array([p]), 1)[0] == pytest.approx(want, abs=1e-12)


def test_expected_d_matches_monte_carlo():
    rng = np.random.default_rng(0)
    for p in (0.2, 0.5, 0.8):
        mc = simulate_d(logit(p), 0.0, 200_000, rng).mean()
        assert expected_d(np.array([p]), 8)[0] == pytest.approx(mc, abs=0.005)


def test_rope_translation_and_verdicts():
    assert rope_on_scale(0.1, "probability") == pytest.approx((0.45, 0.55))
    assert rope_on_scale(0.1, "log_odds") == pytest.approx((logit(0.45), logit(0.55)))
    assert rope_on_scale(0.1, "odds_ratio") == pytest.approx((0.45 / 0.55, 0.55 / 0.45))
    assert rope_on_scale(0.1, "d_score") == (-0.1, 0.1)  # shares the bias scale's ROPE
    # the generic verdicts, and the study's words for them
    assert verdict(-0.02, 0.03, (-0.05, 0.05)) == "inside ROPE"
    assert verdict(0.06, 0.2, (-0.05, 0.05)) == "outside ROPE"
    assert verdict(-0.3, -0.1, (-0.05, 0.05)) == "outside ROPE"
    assert verdict(0.01, 0.2, (-0.05, 0.05)) == "undecided"
    assert [VERDICT_WORDS[v] for v in ("inside ROPE", "outside ROPE", "undecided")] == [
        "practically unbiased", "biased", "undecided"]


def _fake_fit(df: pl.DataFrame, formula: str, post: dict[str, tuple[tuple, np.ndarray]]):
    spec = prepare(formula, df, "bernoulli")
    ds = xr.Dataset({k: (("chain", "draw") + dims, v) for k, (dims, v) in post.items()})
    return SimpleNamespace(spec=spec, family="bernoulli", idata={"posterior": SimpleNamespace(
        to_dataset=lambda: ds)})


def test_effects_are_functions_of_draws_not_of_summaries():
    """P(level) is the n-weighted mean over cells of expit(eta), draw by draw."""
    rng = np.random.default_rng(1)
    df = pl.DataFrame({
        "llm": ["a"] * 30 + ["b"] * 10,
        "variant": (["v1", "v2"] * 20),
        "congruent": rng.integers(0, 2, 40).astype(float),
    })
    S = 50
    icpt = rng.normal(0.3, 0.2, (1, S))
    r_llm = rng.normal(0, 1, (1, S, 2))
    r_llm -= r_llm.mean(-1, keepdims=True)
    r_var = rng.normal(0, 1, (1, S, 2))
    r_var -= r_var.mean(-1, keepdims=True)
    fit = _fake_fit(df, "congruent ~ 1 + (1|llm) + (1|variant)", {
        "Intercept": ((), icpt), "r_llm": (("llm",), r_llm), "r_variant": (("variant",), r_var),
    })
    eff = compute_effects(fit, terms=("llm",), rope=0.05)
    # by hand: llm a has 15 rows per variant, so p_a = (expit(i+ra+rv1) + expit(i+ra+rv2)) / 2
    i, ra, rv = icpt[0], r_llm[0], r_var[0]
    pa = (expit(i + ra[:, 0] + rv[:, 0]) + expit(i + ra[:, 0] + rv[:, 1])) / 2
    got = eff.table.filter((pl.col("level") == "a") & (pl.col("scale") == "probability"))
    assert got["mean"][0] == pytest.approx(pa.mean(), rel=1e-12)
    assert got["n_obs"][0] == 30
    bias = eff.table.filter((pl.col("level") == "a") & (pl.col("scale") == "bias"))
    assert bias["mean"][0] == pytest.approx((2 * pa - 1).mean(), rel=1e-12)
    assert bias["p_positive"][0] == pytest.approx((pa > 0.5).mean())
    # the mean of a nonlinear function of draws is not the function of the mean
    assert abs(pa.mean() - expit((i + ra[:, 0] + rv.mean(1)).mean())) > 1e-6


def test_ranks_and_contrasts_from_known_draws():
    df = pl.DataFrame({"llm": ["a", "b", "c"] * 4, "congruent": [1.0, 0.0, 1.0, 0.0] * 3})
    S = 400
    r = np.tile(np.array([1.0, 0.0, -1.0]), (1, S, 1))  # a > b > c in every draw
    fit = _fake_fit(df, "congruent ~ 1 + (1|llm)", {
        "Intercept": ((), np.zeros((1, S))), "r_llm": (("llm",), r),
    })
    eff = compute_effects(fit, terms=("llm",))
    ranks = eff.ranks
    assert ranks["llm"].to_list() == ["a", "b", "c"]
    assert ranks["rank_mean"].to_list() == [1.0, 2.0, 3.0]
    assert ranks["p_best"].to_list() == [1.0, 0.0, 0.0]
    ab = eff.contrasts.filter(pl.col("level") == "a − b")
    assert ab["mean"][0] == pytest.approx(2 * expit(1.0) - 1)
    assert ab["verdict"][0] == "biased"


@pytest.mark.filterwarnings("ignore")
def test_recovers_known_probabilities_from_simulated_data():
    """Three LLMs: posterior of P(congruent | llm) matches the binomial MLE and its SE.

    With 4,000 judgements per LLM the prior is negligible: the posterior mean is the observed
    proportion (to 0.003) and the 95% HDI is ±1.96 SE wide (to 15%)."""
    rng = np.random.default_rng(11)
    truth = {"a": 0.8, "b": 0.5, "c": 0.35}
    n = 4000
    rows = [(k, float(rng.random() < p)) for k, p in truth.items() for _ in range(n)]
    df = pl.DataFrame(rows, schema=["llm", "congruent"], orient="row")
    from biasstats.inference import fit as fit_model

    f = fit_model("congruent ~ 1 + (1|llm)", df, chains=2, draws=500, tune=500, seed=3,
                  progress=False)
    eff = compute_effects(f, terms=("llm",), rope=0.05).table.filter(pl.col("scale") == "probability")
    observed = dict(df.group_by("llm").agg(pl.col("congruent").mean()).iter_rows())
    for row in eff.iter_rows(named=True):
        phat = observed[row["level"]]
        se = np.sqrt(phat * (1 - phat) / n)
        assert row["mean"] == pytest.approx(phat, abs=0.003)
        assert row["hdi_high"] - row["hdi_low"] == pytest.approx(2 * 1.96 * se, rel=0.15)
        assert abs(row["mean"] - truth[row["level"]]) < 4 * se
    verdicts = dict(zip(eff["level"], eff["verdict"], strict=True))
    assert verdicts["a"] == "biased" and verdicts["c"] == "biased"
    assert verdicts["b"] in ("practically unbiased", "undecided")


def test_expected_d_beta_matches_monte_carlo_and_limits():
    from biasstats.studies.bai2024.effects import expected_d_beta

    rng = np.random.default_rng(5)
    mu, phi, m = 0.7, 2.0, 8
    p = rng.beta(mu * phi, (1 - mu) * phi, 400_000)
    a, d = rng.binomial(m, p), rng.binomial(m, p)
    mc = (a / (a + (m - d) + 0.01) + d / ((m - a) + d + 0.01) - 1).mean()
    assert expected_d_beta(np.array([mu]), np.array([phi]), m)[0] == pytest.approx(mc, abs=0.003)
    # phi → ∞: every trial has p = mu, the binomial case
    assert expected_d_beta(np.array([mu]), np.array([1e7]), m)[0] == pytest.approx(
        expected_d(np.array([mu]), m)[0], abs=1e-5)


def test_beta_binomial_recovers_mean_and_overdispersion(beta_binomial_fit):
    """Trials of 16 judgements sharing p ~ Beta(mu*phi, (1-mu)*phi): mu and phi recovered
    (the shared fit of tests/conftest.py)."""
    f, _, truth = beta_binomial_fit
    mu, phi = truth["mu"], truth["phi"]
    post = f.idata["posterior"]
    mu_draws = expit(post["Intercept"].values.ravel())
    phi_draws = post["phi"].values.ravel()
    assert np.quantile(mu_draws, 0.005) < mu < np.quantile(mu_draws, 0.995)
    assert np.quantile(phi_draws, 0.005) < phi < np.quantile(phi_draws, 0.995)
    assert f.diagnostics()["divergences"] == 0
