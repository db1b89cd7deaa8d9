"""Joint models of named parts (biasstats.model.joint, biasstats.inference.joint): the latent
correlation of two parts' cell effects is recovered from simulated data with known truth,
each part's view of the posterior is a fit of its own, and bad designs are one line."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from biasstats.effects.estimands import compute_estimands, default_request
from biasstats.errors import SpecError
from biasstats.inference import fit_settings
from biasstats.inference.joint import fit_prepared_joint
from biasstats.inference.predict import hdi
from biasstats.model.build import prepare
from biasstats.model.joint import prepare_joint
from biasstats.simulate.joint import correlated_cells

FORMULA = "y ~ 1 + (1|p|cell)"


@pytest.fixture(scope="module")
def joint_fit():
    a, b, truth = correlated_cells(3, cells=40, rho=0.6, trials=(30, 30))
    joint = prepare_joint({"implicit": prepare(FORMULA, a, "bernoulli", joint=True),
                           "decision": prepare(FORMULA, b, "bernoulli", joint=True)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_prepared_joint(joint, fit_settings(chains=2, tune=400, draws=400, seed=5),
                                 progress=False)
    return fit, (a, b), truth


def test_the_latent_correlation_and_sds_are_recovered(joint_fit):
    fit, _, truth = joint_fit
    post = fit.idata["posterior"]
    rho = post["cor_p"].sel(p__part="implicit", p__part_="decision").values.ravel()
    lo, hi = hdi(rho[:, None], 0.9)[0]
    assert lo < truth.rho < hi and lo > 0.1          # known 0.6, clearly positive
    for j, part in enumerate(("implicit", "decision")):
        sd = post[f"{part}::sd_cell"].values.ravel()
        lo, hi = hdi(sd[:, None], 0.9)[0]
        assert lo < truth.sd[j] < hi
    diag = fit.whole().diagnostics()
    assert diag["divergences"] == 0 and diag["max_rhat"] < 1.02


def test_each_part_is_a_fit_of_its_own(joint_fit):
    fit, (a, b), truth = joint_fit
    for j, (part, data) in enumerate((("implicit", a), ("decision", b))):
        view = fit.part(part)
        post = view.idata["posterior"]
        assert {"Intercept", "sd_cell", "r_cell"} <= set(post.data_vars)
        assert not any("::" in str(v) for v in post.data_vars)
        assert list(post["r_cell"].coords["cell"].values) == list(truth.cells)
        # its own observations: one binomial cell per level, the part's own successes
        k = view.idata["observed_data"]["y"].values
        assert k.sum() == data["y"].sum() and len(k) == 40
        assert view.idata["log_likelihood"]["y"].shape[-1] == 40
        # the estimands of a single model, from the part's draws: P(y) per cell tracks truth
        est = compute_estimands(view, default_request(view.spec, prob=0.9))
        cells = est.means.filter(pl.col("term") == "cell").sort("level")
        true_p = 1 / (1 + np.exp(-(truth.intercept[j] + truth.effects[:, j])))
        inside = ((cells["hdi_low"].to_numpy() < true_p)
                  & (true_p < cells["hdi_high"].to_numpy())).mean()
        assert inside >= 0.75, inside


def test_levels_that_do_not_overlap_are_one_line():
    a = pl.DataFrame({"cell": ["a", "a", "b", "b"], "y": [0, 1, 1, 0]})
    b = pl.DataFrame({"cell": ["x", "x", "y", "y"], "y": [0, 1, 1, 0]})
    parts = {"implicit": prepare(FORMULA, a, "bernoulli", joint=True),
             "decision": prepare(FORMULA, b, "bernoulli", joint=True)}
    with pytest.raises(SpecError) as e:
        prepare_joint(parts)
    assert str(e.value) == (
        "[parts.decision.model] formula: correlation id 'p' on 'cell': no level of part "
        "'decision' ('x', 'y') is a level of part 'implicit' ('a', 'b'); the parts' effects of "
        "a factor correlate over the levels they share")


def test_partly_overlapping_levels_share_a_union():
    a = pl.DataFrame({"cell": ["a", "a", "b", "b", "c", "c"], "y": [0, 1, 1, 0, 1, 1]})
    b = pl.DataFrame({"cell": ["b", "b", "c", "c", "d", "d"], "y": [0, 1, 1, 0, 0, 0]})
    joint = prepare_joint({"x": prepare(FORMULA, a, "bernoulli", joint=True),
                           "y": prepare(FORMULA, b, "bernoulli", joint=True)})
    (s,) = joint.shared
    assert s.levels == ["a", "b", "c", "d"]
    assert s.index["x"].tolist() == [0, 1, 2] and s.index["y"].tolist() == [1, 2, 3]
    assert s.shared_levels("x", "y").tolist() == [1, 2]


def test_a_nested_correlated_term_is_one_line():
    df = pl.DataFrame({"a": ["u", "u", "v", "v"] * 3, "b": ["1", "2", "3", "4"] * 3,
                       "y": [0, 1, 1, 0, 1, 0] * 2})
    f = "y ~ 1 + (1|a) + (1|p|a:b)"
    with pytest.raises(SpecError) as e:
        prepare_joint({"x": prepare(f, df, "bernoulli", joint=True),
                       "y": prepare(f, df, "bernoulli", joint=True)})
    assert str(e.value) == ("[parts.x.model] formula: term '(1|p|a:b)' is nested in 'a' in the "
                            "data; a correlated term keeps no within-parent constraint: drop "
                            "the parent term or the correlation id")


def test_a_single_model_refuses_a_correlation_id():
    df = pl.DataFrame({"cell": ["a", "b"] * 4, "y": [0, 1] * 4})
    with pytest.raises(SpecError) as e:
        prepare(FORMULA, df, "bernoulli")
    assert str(e.value) == ("term '(1|p|cell)' has a correlation id ('p'), which correlates "
                            "the parts of a joint model; a single model has none: write "
                            "(1|cell)")


def test_a_correlated_term_is_non_centred_and_cannot_be_centred():
    df = pl.DataFrame({"cell": [f"c{i}" for i in range(8)] * 40,
                       "y": np.random.default_rng(0).integers(0, 2, 320)})
    spec = prepare(FORMULA, df, "bernoulli", joint=True)
    assert [g.centered for g in spec.groups] == [False]
    with pytest.raises(SpecError) as e:
        prepare(FORMULA, df, "bernoulli", centered={"cell": True}, joint=True)
    assert str(e.value) == ("centered: term '(1|p|cell)' has a correlation id, and a "
                            "correlated term is always non-centred")
