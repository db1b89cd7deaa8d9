"""``biasstats design`` for families with one probability per response category (cumulative,
categorical): every simulated study keeps the analysis' K categories, new levels of a varied
factor are independent draws per linear predictor (their mean moved into that predictor's
intercept), the estimand is the per-category difference in percentage points; and (slow) the
intervals of studies simulated from the prior cover their truth at the nominal rate."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest
import xarray as xr

from biasstats.design import Target, make_plan, parse_vary, run_design
from biasstats.design.plan import category_response
from biasstats.design.sizes import design_rows
from biasstats.design.truth import parameter_draws, truth_draw
from biasstats.ingest import ingest
from biasstats.model.build import prepare
from biasstats.simulate import designs
from biasstats.spec import load_spec


def _spec(tmp_path, which: str, prompts: int = 6, reps: int = 8):
    if which == "cumulative":
        df, _ = designs.ordinal_rating(seed=5, prompts=prompts, reps=reps)
        formula, out, extra = "rating ~ condition + (1|prompt)", "rating", ""
    else:
        df, _ = designs.categorical_choice(seed=4, prompts=prompts, reps=reps)
        formula, out, extra = "answer ~ condition + (1|prompt)", "answer", \
            'outcome_type = "label"\n'
    df.write_csv(tmp_path / "d.csv")
    path = tmp_path / f"{which}.toml"
    path.write_text(f'[analysis]\nname = "{which}"\n[data]\nsource = "d.csv"\n'
                    f'outcome = "{out}"\n{extra}[model]\nformula = "{formula}"\n'
                    f'family = "{which}"\n')
    ing = ingest(load_spec(path))
    return ing.spec, ing.table


def test_a_simulated_study_keeps_every_category_in_the_analysis_order():
    base = prepare("y ~ 1", pl.DataFrame({"y": ["b", "c", "a", "b"]}), "categorical")
    assert base.response_levels == ["a", "b", "c"]
    s = category_response(np.array([[1, 1, 0]]), base, "y")  # no 'c' drawn
    assert s.to_list() == ["b", "b", "a"] and list(s.dtype.categories) == ["a", "b", "c"]
    again = prepare("y ~ 1", pl.DataFrame({"y": s}), "categorical")
    assert again.response_levels == ["a", "b", "c"] and again.y.tolist() == [1, 1, 0]


def test_new_levels_of_a_categorical_model_are_drawn_per_linear_predictor():
    """Two linear predictors (3 categories): each new prompt's effects are independent
    Normal(0, sd_k) per predictor; their mean goes into that predictor's intercept, so
    Intercept_k + r_k is exactly the independent draw."""
    data = pl.DataFrame({"prompt": [f"p{i}" for i in range(4) for _ in range(3)],
                         "y": ["a", "b", "c"] * 4})
    f = "y ~ 1 + (1|prompt)"
    base = prepare(f, data, "categorical", collapse=False)
    new = design_rows(data.drop("y"), ["prompt"], {"prompt": 5})
    rows = prepare(f, new.with_columns(category_response(np.arange(new.height) % 3, base, "y")),
                   "categorical", collapse=False)
    assert rows.n_linpred == 2 and len(rows.groups[0].levels) == 5
    params = xr.Dataset({
        "Intercept": (("chain", "draw", "y__cat"), [[[0.5, -1.0]]]),
        "sd_prompt": (("chain", "draw", "y__cat"), [[[1.0, 2.0]]]),
        "r_prompt": (("chain", "draw", "y__cat", "prompt"), [[[[0.1, -0.1, 0.2, -0.2]] * 2]])})
    t = truth_draw(params, 0, base, rows, {"prompt"}, np.random.default_rng(9))
    z = np.array([1.0, 2.0])[:, None] * np.random.default_rng(9).standard_normal((2, 5))
    r = t["r_prompt"].values.reshape(2, 5)
    assert t["r_prompt"].dims == ("chain", "draw", "y__cat", "prompt")
    np.testing.assert_allclose(r.sum(axis=1), 0.0, atol=1e-12)            # zero-sum per k
    np.testing.assert_allclose(t["Intercept"].values.reshape(2) + r.T, np.array([0.5, -1.0]) + z.T)


def test_prior_cutpoints_are_drawn_in_order():
    """Forward sampling ignores the ordered transform (about 1 in 10 draws of these 4
    cut-points come out ordered); the design's prior draws are the ordered ones, and they
    are draws of the same Normal prior restricted to order: every one ordered, the other
    parameters untouched (their prior means and SDs as the forward draws')."""
    df, _ = designs.ordinal_rating(seed=5, prompts=8, reps=10)
    base = prepare("rating ~ condition + (1|prompt)", df, "cumulative", collapse=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, flats, source = parameter_draws(base, None, 400, seed=0)
    c = ds["cutpoints"].values.reshape(400, -1)
    assert source == "prior" and flats.tolist() == list(range(400))
    assert (np.diff(c, axis=1) > 0).all()
    b = ds["b"].values.ravel()   # Normal prior of the condition effect: its own scale
    sd_b = float(base.priors["b_condition[T.treated]"].params["sigma"])
    assert abs(b.mean()) < 4 * sd_b / 20 and abs(b.std() / sd_b - 1) < 0.15


@pytest.mark.parametrize("family", [
    pytest.param("cumulative", marks=pytest.mark.slow),  # compiles a model: ~40 s each
    "categorical"])
def test_a_tiny_design_of_a_category_family_scores_each_category(tmp_path, family):
    spec, table = _spec(tmp_path, family)
    plan = make_plan(spec, table, parse_vary(["trials=2"]), target=Target("power", 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_design(plan, None, sims=2, draws=60, seed=1)
    k = 5 if family == "cumulative" else 3
    # one row per response category, each scored on its own truth (no cross product)
    assert res.table.height == k and res.table["sims"].to_list() == [2] * k
    assert res.sims.height == 2 * k and res.sims["category"].n_unique() == k
    assert res.unit == "percentage points"
    # a category's differences sum to zero over the categories, in every study (they are
    # differences of probabilities that sum to one): truth and estimate alike
    for col in ("truth", "mean"):
        sums = res.sims.group_by("sim").agg(pl.col(col).sum())[col].to_numpy()
        np.testing.assert_allclose(sums, 0.0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["cumulative", "categorical"])
def test_studies_drawn_from_the_prior_are_covered_at_the_nominal_rate(tmp_path, family):
    """Truth drawn from the prior the refit uses: the 95% HDIs cover it at 0.95 (the
    data-averaged calibration of a Bayesian interval), per category row."""
    spec, table = _spec(tmp_path, family, prompts=8, reps=10)
    plan = make_plan(spec, table, parse_vary(["trials=4"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_design(plan, None, sims=40, draws=300, seed=3)
    cover = float(res.sims["covers"].mean())
    n = res.sims["sim"].n_unique()       # the category rows of one study are not independent
    print(family, "coverage", cover, "of", res.sims.height, "rows,", n, "studies")
    assert abs(cover - 0.95) < 3 * math.sqrt(0.95 * 0.05 / n), cover
