"""Prediction on new data (brms' posterior_linpred / posterior_epred): exact on the fitted
cells, new grouping levels drawn from the fitted population (or set to zero, or refused),
the family's mean, and one-line errors for bad new data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.special import expit

from biasstats.errors import SpecError
from biasstats.inference import fit
from biasstats.inference.predict import linear_predictor, posterior_epred, posterior_linpred
from biasstats.model.families import FAMILIES


@pytest.fixture(scope="module")
def rich():
    """Fixed numeric + factor predictors, a nested term and correlated varying slopes."""
    rng = np.random.default_rng(8)
    n = 1500
    cat = rng.choice(["race", "gender"], n)
    df = pl.DataFrame({
        "x": np.round(rng.normal(size=n), 1), "f": rng.choice(["a", "b", "c"], n),
        "llm": rng.choice(["m1", "m2", "m3", "m4"], n), "category": cat,
        "stereotype": [f"{c}_{j}" for c, j in zip(cat, rng.integers(0, 2, n), strict=True)],
        "variant": rng.choice(["v1", "v2", "v3"], n),
    })
    eta = 0.2 + 0.6 * df["x"].to_numpy() + np.where(df["f"] == "b", 0.5, 0.0)
    df = df.with_columns(pl.Series("y", (rng.random(n) < expit(eta)).astype(float)))
    # exactness tests: convergence is not needed, so a short, coarse run
    return fit("y ~ x + f + (1|llm) + (1|category/stereotype) + (x|variant)", df, chains=2,
               tune=100, draws=100, seed=3, target_accept=0.8, progress=False)


@pytest.fixture(scope="module")
def simple():
    """P(congruent) 0.8 / 0.6 / 0.4 / 0.3 for four LLMs, 2,000 judgements each."""
    rng = np.random.default_rng(1)
    p = {"m1": 0.8, "m2": 0.6, "m3": 0.4, "m4": 0.3}
    llm = np.repeat(list(p), 2000)
    y = (rng.random(len(llm)) < np.array([p[m] for m in llm])).astype(float)
    return fit("congruent ~ 1 + (1|llm)", pl.DataFrame({"llm": llm, "congruent": y}), chains=2,
               tune=300, draws=300, seed=1, progress=False), p


@pytest.mark.filterwarnings("ignore")
def test_linpred_on_the_fitted_cells_equals_the_models_own(rich):
    cells = rich.spec.cells.drop("k", "n")
    np.testing.assert_allclose(posterior_linpred(rich, cells), linear_predictor(rich),
                               rtol=0, atol=1e-10)
    # the same through pandas and the Fit method, any row order
    rev = cells.reverse()
    np.testing.assert_allclose(rich.linpred(rev.to_pandas()), linear_predictor(rich)[:, ::-1],
                               atol=1e-10)
    np.testing.assert_allclose(rich.epred(cells), expit(linear_predictor(rich)), atol=1e-12)


@pytest.mark.filterwarnings("ignore")
def test_new_levels_sampled_zero_or_refused(rich):
    post = rich.idata.posterior
    base = {"x": [0.5, 0.5, 0.5], "f": ["b", "b", "b"], "llm": ["m1", "m1", "m1"],
            "category": ["race", "race", "race"], "stereotype": ["race_0"] * 3}
    new = pl.DataFrame({**base, "variant": ["v_new", "v_new", "v1"]})
    zero = posterior_linpred(rich, new, new_levels="zero")
    known = posterior_linpred(rich, new.with_columns(pl.lit("v1").alias("variant")))
    r_v1 = post["r_variant"].sel(variant="v1").values.reshape(-1, 2)   # (S, [Intercept, x])
    np.testing.assert_allclose(zero[:, 0], known[:, 0] - r_v1[:, 0] - 0.5 * r_v1[:, 1],
                               atol=1e-10)
    np.testing.assert_allclose(zero[:, 2], known[:, 2], atol=1e-10)      # v1 rows untouched
    s1 = posterior_linpred(rich, new, seed=4)
    np.testing.assert_array_equal(s1[:, 0], s1[:, 1])    # one new level = one draw per sample
    np.testing.assert_array_equal(s1, posterior_linpred(rich, new, seed=4))
    assert not np.array_equal(s1, posterior_linpred(rich, new, seed=5))
    # the sampled effect (intercept + 0.5 slope) has the fitted population's spread
    sd = post["sd_variant"].values.reshape(-1, 2)
    cor = post["cor_variant"].values.reshape(-1, 2, 2)[:, 0, 1]
    spread = np.sqrt(sd[:, 0] ** 2 + 0.25 * sd[:, 1] ** 2 + sd[:, 0] * sd[:, 1] * cor)
    z = (s1[:, 0] - zero[:, 0]) / spread
    assert abs(z.mean()) < 0.2 and 0.85 < z.std() < 1.15, (z.mean(), z.std())
    with pytest.raises(SpecError, match=r"^newdata: level 'v_new' of 'variant' is not in the "
                                        r"fitted data; use new_levels='sample' \(drawn from the "
                                        r"fitted population\) or 'zero' \(the average level\)$"):
        posterior_linpred(rich, new, new_levels="error")
    # a new stereotype within a known category: a new level of category:stereotype
    new_st = pl.DataFrame({**base, "stereotype": ["race_9"] * 3, "variant": ["v1"] * 3})
    with pytest.raises(SpecError, match=r"^newdata: level 'race:race_9' of "
                                        r"'category:stereotype' is not in the fitted data"):
        posterior_linpred(rich, new_st, new_levels="error")


@pytest.mark.filterwarnings("ignore")
def test_bad_new_data_one_line_errors(rich):
    ok = {"x": [0.1], "f": ["a"], "llm": ["m1"], "category": ["race"],
          "stereotype": ["race_0"], "variant": ["v1"]}
    with pytest.raises(SpecError, match=r"^newdata: missing column 'variant' \(the model uses "
                                        r"x, f, llm, category, stereotype, variant\)$"):
        posterior_linpred(rich, pl.DataFrame({k: v for k, v in ok.items() if k != "variant"}))
    with pytest.raises(SpecError, match=r"^newdata: column 'x' has 1 missing value\(s\)$"):
        posterior_linpred(rich, pl.DataFrame({**ok, "x": [None]}, schema_overrides={"x": pl.Float64}))
    with pytest.raises(SpecError, match=r"^newdata: fixed-effects part 'x \+ f': .*'zz'"):
        posterior_linpred(rich, pl.DataFrame({**ok, "f": ["zz"]}))
    with pytest.raises(SpecError, match=r"^new_levels must be one of sample, zero, error; "
                                        r"got 'gaussian'$"):
        posterior_linpred(rich, pl.DataFrame(ok), new_levels="gaussian")


@pytest.mark.filterwarnings("ignore")
def test_predict_recovers_known_probabilities(simple):
    f, p = simple
    table = f.predict(pl.DataFrame({"llm": list(p)}))
    assert table.columns == ["llm", "mean", "sd", "hdi_low", "hdi_high"]
    se = np.sqrt(0.25 / 2000)
    for r in table.iter_rows(named=True):
        assert abs(r["mean"] - p[r["llm"]]) < 3.5 * se
        assert r["hdi_low"] < r["mean"] < r["hdi_high"]
    # a new LLM: sampled from the population it is far less certain than any fitted one
    new = f.predict(pl.DataFrame({"llm": ["m_new"]}))
    assert new["sd"][0] > 5 * table["sd"].max()
    assert new["hdi_low"][0] < min(p.values()) and new["hdi_high"][0] > max(p.values())


def test_family_means_closed_forms():
    eta = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(FAMILIES["bernoulli"].mean(eta, {}), expit(eta))
    np.testing.assert_allclose(FAMILIES["beta_binomial"].mean(eta, {"phi": 3.0}), expit(eta))
    np.testing.assert_allclose(FAMILIES["gaussian"].mean(eta, {"sigma": 2.0}), eta)
    np.testing.assert_allclose(FAMILIES["negative_binomial"].mean(eta, {}), np.exp(eta))
    np.testing.assert_allclose(FAMILIES["lognormal"].mean(eta, {"sigma": np.array([[1.0]])}),
                               np.exp(eta + 0.5))
    assert FAMILIES["cumulative"].mean is None and FAMILIES["categorical"].mean is None


def test_epred_refuses_families_without_one_mean(cumulative_fit):
    f, df, _ = cumulative_fit  # rating ~ condition + (1|prompt), family cumulative
    with pytest.raises(SpecError, match=r"^newdata: family 'cumulative' has no single expected "
                                        r"value per row$"):
        posterior_epred(f, df.head(1).select("condition", "prompt"))
