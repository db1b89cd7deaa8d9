"""The automatic refit of a joint model after a failed convergence gate: the same plan as a
single model's (biasstats.inference.attempts.next_attempt, up to three attempts, read on the
joint posterior), each change applied to the joint model, every attempt recorded, the one that
passed (or the least far from the gate) kept."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from biasstats.inference import fit_settings
from biasstats.inference.attempts import attempt_seed, next_attempt
from biasstats.inference.convergence import Thresholds, convergence_gate
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
    cur = {"seed": TINY["seed"], "chains": TINY["chains"], "draws": TINY["draws"],
           "tune": TINY["tune"], "target_accept": plain.settings["target_accept"]}
    levels = {f"{p}::{g.name}": len(g.levels) for p, s in plain.joint.parts.items()
              for g in s.groups}
    plan = next_attempt(gate.values, Thresholds(), cur, attempt=1,
                        centred=refit_terms(plain.joint), levels=levels,
                        idata=_sd_view(plain.idata, plain.joint))
    one, two, *rest = refitted.settings["attempts"]
    assert one["attempt"] == 1 and not one["passed"] and one["change"] == "as specified"
    assert one["failures"] == list(gate.failures)     # the same seed: the same first attempt
    assert two["attempt"] == 2 and two["change"] == plan["reason"]
    assert (two["cause"], two["action"], two["seed"], two["target_accept"]) == (
        plan["cause"], plan["action"], attempt_seed(TINY["seed"], 2), plan["target_accept"])
    assert len(rest) <= 1 and [a["attempt"] for a in rest] == [3][:len(rest)]
    # the kept attempt: the one that passed, else the least far from the gate
    kept = [a["attempt"] for a in refitted.settings["attempts"] if a["kept"]]
    assert len(kept) == 1
    passed = [a["attempt"] for a in refitted.settings["attempts"] if a["passed"]]
    assert kept == passed[:1] or (not passed and kept[0] >= 1)
    # the draws kept are the kept attempt's: its gate verdict and its chains
    gate_kept = convergence_gate(refitted.whole().diagnostics(), Thresholds())
    rec = refitted.settings["attempts"][kept[0] - 1]
    assert rec["failures"] == list(gate_kept.failures)
    assert refitted.idata["posterior"].sizes["chain"] >= TINY["chains"]
    # every flip of the attempts up to the kept one is applied to the joint model, and named
    flips = split_flips([t for a in refitted.settings["attempts"][1:kept[0]]
                         for t in _flips_of(a, plain)])
    for p, terms in flips.items():
        for t in terms:
            g0 = next(g for g in plain.joint.parts[p].groups if g.name == t)
            g1 = next(g for g in refitted.joint.parts[p].groups if g.name == t)
            assert g1.centered is (not g0.centered)
    assert refitted.settings.get("flipped", {}) == {p: list(t) for p, t in flips.items()}
    if kept[0] > 1:
        assert refitted.timings["first_attempt_s"] > 0


def _flips_of(attempt: dict, plain) -> list[str]:
    """The terms an attempt flipped: those whose centring differs from the first attempt's."""
    return [k.replace(": ", "::", 1) for k, v in attempt["centered"].items()
            if v != plain.settings["centered"][k]]


def test_refit_off_keeps_the_first_attempt(fits):
    plain, refitted = fits
    (only,) = plain.settings["attempts"]
    first = refitted.settings["attempts"][0]
    assert not only["passed"]
    assert {k: v for k, v in only.items() if k not in ("sampling_s", "kept")} == \
        {k: v for k, v in first.items() if k not in ("sampling_s", "kept")}
    assert only["kept"] and "flipped" not in plain.settings


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


class _Model:
    def __init__(self, formula):
        self.formula = formula

    def model_dump(self):
        return {"formula": self.formula}


def test_a_joint_fit_short_of_ess_alone_gets_chains_added_and_its_cache_takes_them(tmp_path):
    """The single model's add-chains step on a joint model: the first chains kept as sampled,
    chains of a derived seed added, and the cached posterior (more chains than the spec's)
    read back as complete: the next run reuses it instead of sampling again."""
    from types import SimpleNamespace

    from biasstats.inference.joint import fit_joint

    settings = fit_settings(chains=2, tune=200, draws=200, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        once = fit_prepared_joint(_joint(), settings, progress=False)
    d = once.whole().diagnostics()
    checks = SimpleNamespace(rhat_max=max(1.05, d["max_rhat"]),
                             ess_bulk_min=1.1 * d["min_ess_bulk"],
                             ess_tail_min=d["min_ess_tail"] / 2, divergences_max=10**6,
                             bfmi_min=0.0)
    spec = SimpleNamespace(
        fit=settings, path="joint.toml", content=SimpleNamespace(checks=checks),
        parts={"implicit": SimpleNamespace(model=_Model("y ~ 1 + (1|p|cell) + (1|prompt)"),
                                           data=SimpleNamespace(include=[])),
               "decision": SimpleNamespace(model=_Model("y ~ 1 + (1|p|cell)"),
                                           data=SimpleNamespace(include=[]))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = fit_joint(spec, _joint(), tmp_path)
    one, two, *_ = first.fit.settings["attempts"]
    assert not one["passed"] and one["failures"][0].startswith("min bulk ESS ")
    assert (two["cause"], two["action"], two["chains"], two["seed"]) == (
        "ess", "add chains", 1, attempt_seed(1, 2))
    post = first.fit.idata["posterior"]
    assert post.sizes["chain"] == 2 + sum(a["chains"] for a in first.fit.settings["attempts"][1:])
    # the first chains are the first attempt's, as sampled (float32 as stored)
    np.testing.assert_array_equal(
        post["implicit::Intercept"].values[:2],
        once.idata["posterior"]["implicit::Intercept"].values.astype(
            post["implicit::Intercept"].dtype))
    again = fit_joint(spec, _joint(), tmp_path)
    assert again.cached and again.fit.idata["posterior"].sizes["chain"] == post.sizes["chain"]
