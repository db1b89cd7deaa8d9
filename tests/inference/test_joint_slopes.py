"""A correlation id on varying slopes, ``(1 + x | p | cell)``: one LKJ correlation over every
part's intercept and slopes, stacked; each part's view has its own r/sd/cor of the term (its
block of the joint matrix); the correlations of the terms across parts and (slow) their
recovery from simulated data with known truth; and what stays refused, in one line."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from biasstats.effects.joint import joint_estimands
from biasstats.errors import SpecError
from biasstats.inference import fit_settings
from biasstats.inference.joint import fit_prepared_joint
from biasstats.inference.predict import hdi
from biasstats.model.build import prepare
from biasstats.model.formula import parse_formula
from biasstats.model.joint import build_joint_model, prepare_joint
from biasstats.simulate.joint import correlated_slopes


def _joint(seed=1, cells=12, trials=10):
    one, two, truth = correlated_slopes(seed, cells=cells, trials=trials)
    joint = prepare_joint({
        "one": prepare("y ~ x + (1 + x|p|cell)", one, "bernoulli", joint=True),
        "two": prepare("y ~ 1 + (1|p|cell)", two, "bernoulli", joint=True)})
    return joint, truth


def test_the_stacked_terms_are_labelled_by_part_and_coefficient():
    joint, _ = _joint()
    (s,) = joint.shared
    assert s.slopes and s.coefs == {"one": ["Intercept", "x"], "two": ["Intercept"]}
    assert s.labels == ["one:Intercept", "one:x", "two:Intercept"]
    assert s.rows_of("one") == [0, 1] and s.rows_of("two") == [2]
    model = build_joint_model(joint)
    assert model.coords["p__part"] == ("one:Intercept", "one:x", "two:Intercept")
    names = {v.name for v in model.deterministics}
    assert {"cor_p", "one::r_cell", "one::sd_cell", "one::cor_cell", "two::r_cell"} <= names
    # part one's own correlation is its block of the joint matrix, draw by draw
    ip = model.initial_point()
    f = model.compile_fn([model["cor_p"], model["one::cor_cell"], model["one::r_cell"]],
                         inputs=model.value_vars, on_unused_input="ignore",
                         mode="FAST_COMPILE")  # python: no C compile
    rng = np.random.default_rng(0)
    point = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in ip.items()}
    cor, block, r = f(point)
    np.testing.assert_allclose(block, cor[:2, :2])
    assert r.shape == (2, 12)
    # an intercept-only id keeps its labels by part alone (as before)
    a, b, _ = correlated_slopes(2, cells=6, trials=4)
    plain = prepare_joint({"u": prepare("y ~ 1 + (1|p|cell)", a, "bernoulli", joint=True),
                           "v": prepare("y ~ 1 + (1|p|cell)", b, "bernoulli", joint=True)})
    assert not plain.shared[0].slopes and plain.shared[0].labels == ["u", "v"]


@pytest.mark.parametrize("formula, message", [
    ("y ~ (0 + x|p|g)", "term '(0 + x|p|g)': a correlation id correlates a varying intercept "
                        "(and the term's varying slopes with it); write (1 | p | g) or "
                        "(1 + x | p | g)"),
])
def test_a_correlated_term_without_intercept_is_one_line(formula, message):
    with pytest.raises(SpecError) as e:
        parse_formula(formula)
    assert str(e.value) == message


@pytest.mark.slow
def test_the_slope_intercept_correlation_is_recovered():
    """40 cells x 40 replies per part: the 90% HDI of corr(part one's slope, part two's
    intercept) covers its truth 0.7 and excludes 0; the intercepts' 0.3 is covered."""
    joint, truth = _joint(seed=5, cells=40, trials=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_prepared_joint(joint, fit_settings(chains=2, tune=500, draws=500, seed=2),
                                 progress=False)
    est = joint_estimands(fit, prob=0.9).correlations
    lat = {r["coefs"]: r for r in est.iter_rows(named=True) if r["method"] == "latent"}
    assert set(lat) == {"Intercept, Intercept", "x, Intercept"}
    slope = lat["x, Intercept"]
    print({k: (round(v["mean"], 3), round(v["hdi_low"], 3), round(v["hdi_high"], 3))
           for k, v in lat.items()})
    assert slope["hdi_low"] < 0.7 < slope["hdi_high"] and slope["hdi_low"] > 0
    icpt = lat["Intercept, Intercept"]
    assert icpt["hdi_low"] < 0.3 < icpt["hdi_high"]
    post = fit.part("one").idata["posterior"]
    sd = post["sd_cell"].sel(cell__coef="x").values.ravel()
    lo, hi = hdi(sd[:, None], 0.9)[0]
    assert lo < truth["sd"][1] < hi
    diag = fit.whole().diagnostics()
    assert diag["divergences"] == 0 and diag["max_rhat"] < 1.02
