"""The automatic refit of a joint model after a failed convergence gate: the same plan as a
single model's (biasstats.inference.convergence.refit_plan, read on the joint posterior), the
change applied to the joint model, both attempts recorded; and a cached refitted posterior
re-applies the change."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from biasstats.inference import fit_settings
from biasstats.inference.convergence import Thresholds, convergence_gate, refit_plan
from biasstats.inference.joint import (
    _sd_view,
    fit_prepared_joint,
    flipped_joint,
    refit_terms,
    split_flips,
)
from biasstats.model.build import prepare
from biasstats.model.joint import prepare_joint
from biasstats.simulate.joint import correlated_cells

# 2 chains x 40 draws cannot reach a bulk ESS of 400: the first attempt fails the gate,
# deterministically (ESS <= 80 < 400), and is not a near miss (ESS < 200)
TINY = dict(chains=2, tune=60, draws=40, seed=3)


def _joint():
    a, b, _ = correlated_cells(4, cells=12, rho=0.5, trials=(20, 20))
    rng = np.random.default_rng(0)
    # part "implicit" has an uncorrelated term of its own: the one the refit may flip
    a = a.with_columns(pl.Series("prompt", rng.choice(["p1", "p2", "p3", "p4", "p5", "p6"],
                                                      a.height)))
    return prepare_joint({
        "implicit": prepare("y ~ 1 + (1|p|cell) + (1|prompt)", a, "bernoulli", joint=True),
        "decision": prepare("y ~ 1 + (1|p|cell)", b, "bernoulli", joint=True)})


@pytest.fixture(scope="module")
def fits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # refit off: the first attempt, as sampled
        plain = fit_prepared_joint(_joint(), fit_settings(**TINY, refit=False), progress=False,
                                   thresholds=Thresholds())
        refitted = fit_prepared_joint(_joint(), fit_settings(**TINY), progress=False,
                                      thresholds=Thresholds())
    return plain, refitted


def test_only_terms_the_refit_can_flip_are_offered():
    joint = _joint()
    # the correlated term is always non-centred: never offered; the part's own term is
    assert list(refit_terms(joint)) == ["implicit::prompt"]
    assert split_flips(["implicit::prompt", "decision::a:b"]) == {
        "implicit": ("prompt",), "decision": ("a:b",)}
    before = joint.parts["implicit"].groups[1].centered
    after = flipped_joint(joint, {"implicit": ("prompt",)})
    assert after.parts["implicit"].groups[1].centered is (not before)
    assert joint.parts["implicit"].groups[1].centered is before   # a copy
    assert after.parts["decision"] is joint.parts["decision"] and after.shared is joint.shared


def test_a_failed_joint_fit_is_refitted_with_the_single_model_plan(fits):
    plain, refitted = fits
    gate = convergence_gate(plain.whole().diagnostics(), Thresholds())
    assert not gate.passed        # the first attempt
    # the plan the single-model code names for this posterior
    plan = refit_plan(gate.values, refit_terms(plain.joint), _sd_view(plain.idata, plain.joint),
                      plain.settings["target_accept"], Thresholds())
    one, two = refitted.settings["attempts"]
    assert one["attempt"] == 1 and not one["passed"] and one["change"] == "as specified"
    assert one["failures"] == list(gate.failures)     # the same seed: the same first attempt
    assert two["attempt"] == 2 and two["change"] == plan["reason"]
    assert two["target_accept"] == plan["target_accept"]
    if plan["flip"]:
        flips = split_flips(plan["flip"])
        for p, terms in flips.items():
            for t in terms:
                was = plain.joint.parts[p]
                now = refitted.joint.parts[p]
                g0 = next(g for g in was.groups if g.name == t)
                g1 = next(g for g in now.groups if g.name == t)
                assert g1.centered is (not g0.centered)
                assert refitted.settings["centered"][f"{p}: {t}"] != \
                    plain.settings["centered"][f"{p}: {t}"]
        assert refitted.settings["flipped"] == {p: list(t) for p, t in flips.items()}
    else:
        assert plan["target_accept"] > plain.settings["target_accept"]
    # the gate's verdict on the second attempt is the one recorded
    gate2 = convergence_gate(refitted.whole().diagnostics(), Thresholds())
    assert two["passed"] == gate2.passed and two["failures"] == list(gate2.failures)
    assert refitted.timings["first_attempt_s"] > 0


def test_refit_off_keeps_the_first_attempt(fits):
    plain, refitted = fits
    (only,) = plain.settings["attempts"]
    first = refitted.settings["attempts"][0]
    assert not only["passed"]
    assert {k: v for k, v in only.items() if k != "sampling_s"} == \
        {k: v for k, v in first.items() if k != "sampling_s"}
    assert "flipped" not in plain.settings


def test_a_factor_named_cell_keeps_its_own_dimension():
    """Collapsed binomial cells are the dimension "cell": a grouping factor of that name with
    another term beside it gave one dimension two lengths (the sampler failed)."""
    rng = np.random.default_rng(0)
    df = pl.DataFrame({"cell": rng.choice(list("abcd"), 200),
                       "prompt": rng.choice(list("xyz"), 200), "y": rng.integers(0, 2, 200)})
    spec = prepare("y ~ 1 + (1|cell) + (1|prompt)", df, "bernoulli")
    assert spec.collapsed and spec.obs_dim == "cell_"
    from biasstats.model.graph import build_model
    model = build_model(spec)
    assert model.coords["cell"] == ("a", "b", "c", "d") and len(model.coords["cell_"]) == 12
