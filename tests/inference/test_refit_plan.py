"""Hard designs converge (issue 26 item 4): the automatic refit flips every term the first
attempt shows funnelling, all together, read from the divergences, the mixing of each SD and
its correlation with the energy (E-BFMI). Exact plans on constructed draws."""

from __future__ import annotations

import numpy as np
import xarray as xr

from biasstats.inference import flipped
from biasstats.inference.convergence import Thresholds, funnel_signs, refit_plan

SHAPE = (2, 500)


def _tree(sds: dict, div=None, energy=None) -> xr.DataTree:
    post = xr.Dataset({f"sd_{k}": (("chain", "draw"), v) for k, v in sds.items()})
    stats = {"diverging": (("chain", "draw"),
                           np.zeros(SHAPE, bool) if div is None else div)}
    if energy is not None:
        stats["energy"] = (("chain", "draw"), energy)
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": xr.Dataset(stats)})


def _gate(**kw):
    return {"max_rhat": 1.005, "min_ess_bulk": 800.0, "min_ess_tail": 800.0,
            "divergences": 0, "min_bfmi": 0.8, **kw}


def test_divergences_pointing_at_two_terms_flip_both():
    rng = np.random.default_rng(0)
    base = rng.normal(-1, 1, SHAPE)
    sds = {"a": np.exp(base), "b": np.exp(base + rng.normal(0, 0.3, SHAPE)),
           "c": np.exp(rng.normal(0, 0.3, SHAPE))}
    div = np.zeros(SHAPE[0] * SHAPE[1], bool)
    div[np.argsort(base, axis=None)[:12]] = True
    tree = _tree(sds, div.reshape(SHAPE))
    plan = refit_plan(_gate(divergences=12), {"a": True, "b": True, "c": True}, tree, 0.9,
                      Thresholds())
    assert plan["flip"] == ("a", "b") and plan["target_accept"] == 0.9
    assert plan["reason"].startswith("funnels in divergences at small sd_a (-")
    assert plan["reason"].endswith(": terms 'a', 'b' refitted in their other "
                                   "parameterisations together")
    # one term alone keeps the one-term wording
    one = refit_plan(_gate(divergences=12), {"a": True, "c": True},
                     _tree({"a": sds["a"], "c": sds["c"]}, div.reshape(SHAPE)), 0.9)
    assert one["flip"] == ("a",)
    assert one["reason"].startswith("divergences at small sd_a (")
    assert one["reason"].endswith("SD): term 'a' refitted non-centred")


def test_low_energy_fraction_flips_every_centred_term_that_follows_the_energy():
    rng = np.random.default_rng(1)
    la, lb = rng.normal(-1, 1, SHAPE), rng.normal(-1, 1, SHAPE)
    energy = 3 * la + 3 * lb + rng.normal(0, 1, SHAPE)
    sds = {"a": np.exp(la), "b": np.exp(lb), "c": np.exp(rng.normal(0, 0.3, SHAPE)),
           "d": np.exp(la)}
    tree = _tree(sds, energy=energy)
    centred = {"a": True, "b": True, "c": True, "d": False}
    gate = _gate(min_bfmi=0.12, max_rhat=1.058)
    signs = {r["term"]: r for r in funnel_signs(tree, centred, gate, Thresholds())}
    assert signs["a"]["funnel"] and signs["b"]["funnel"] and not signs["c"]["funnel"]
    assert signs["a"]["energy_corr"] > 0.5
    plan = refit_plan(gate, centred, tree, 0.9, Thresholds())
    # d follows the energy too, but it is already non-centred: not flipped by this rule
    assert plan["flip"] == ("a", "b")
    assert plan["reason"].startswith("funnels in sd_a (energy correlation +0.")
    assert "sd_b (energy correlation +0." in plan["reason"]
    # with E-BFMI above its threshold the energy correlation is not read as a funnel
    ok = {r["term"]: r for r in funnel_signs(tree, centred, _gate(), Thresholds())}
    assert not any(r["funnel"] for r in ok.values())


def test_a_slowly_mixing_centred_sd_is_flipped_with_its_numbers():
    rng = np.random.default_rng(2)
    x = np.zeros(SHAPE)
    for c in range(SHAPE[0]):
        for i in range(1, SHAPE[1]):
            x[c, i] = 0.995 * x[c, i - 1] + rng.normal(0, 0.1)
    sds = {"a": np.exp(x), "c": np.exp(rng.normal(0, 0.3, SHAPE))}
    plan = refit_plan(_gate(min_ess_bulk=20.0, max_rhat=1.2), {"a": True, "c": True},
                      _tree(sds), 0.9, Thresholds())
    assert plan["flip"] == ("a",)
    assert plan["reason"] == "slowest-mixing group SD is sd_a: term 'a' refitted non-centred"


def test_flipped_takes_several_terms():
    import polars as pl

    from biasstats.model.build import prepare

    rng = np.random.default_rng(3)
    df = pl.DataFrame({"a": np.repeat(list("abcdef"), 12), "b": np.tile(list("uvwxyz"), 12),
                       "y": rng.normal(0, 1, 72)})
    spec = prepare("y ~ 1 + (1|a) + (1|b)", df, "gaussian", centered={"a": True, "b": True})
    new = flipped(spec, ["a", "b"])
    assert [g.centered for g in new.groups] == [False, False]
    assert [g.centered for g in spec.groups] == [True, True]
    assert [g.centered for g in flipped(spec, "b").groups] == [True, False]


# ---------------------------------------------------------------- the refit plan (attempts)

def _current(**kw):
    return {"seed": 2, "chains": 4, "draws": 2000, "tune": 1000, "target_accept": 0.99, **kw}


def test_the_cause_of_a_failed_gate_is_read_from_its_values():
    from biasstats.inference.attempts import failure_cause

    t = Thresholds()
    assert failure_cause(_gate(), t) == "passed"
    assert failure_cause(_gate(min_ess_tail=379.0), t) == "ess"
    assert failure_cause(_gate(min_ess_bulk=150.0), t) == "mixing"   # below half: not a near miss
    assert failure_cause(_gate(max_rhat=1.015), t) == "rhat"
    assert failure_cause(_gate(max_rhat=1.015, min_ess_bulk=300.0), t) == "rhat"
    assert failure_cause(_gate(max_rhat=1.03), t) == "mixing"
    # divergences or a low E-BFMI are geometry, whatever else is fine or not
    assert failure_cause(_gate(divergences=1), t) == "geometry"
    assert failure_cause(_gate(min_bfmi=0.2, min_ess_tail=379.0), t) == "geometry"


def test_low_ess_alone_adds_the_chains_the_shortfall_asks_for():
    """The rating design, seed 2, attempt 2: min tail ESS 379 < 400, nothing else. 400/379 x
    1.25 = 1.32 times the ESS: 2 more chains added to the 4 kept, same model and step size."""
    from biasstats.inference.attempts import attempt_seed, next_attempt

    plan = next_attempt(_gate(min_ess_tail=379.0), Thresholds(), _current(), attempt=2,
                        centred={"a": False}, levels={"a": 3}, flipped_before=("a",))
    assert plan == {
        "attempt": 3, "cause": "ess", "action": "add chains", "flip": None,
        "target_accept": 0.99, "chains": 2, "tune": 1000, "draws": 2000,
        "seed": attempt_seed(2, 3), "keep_draws": True,
        "reason": "low ESS only (min bulk 800, tail 379; R-hat 1.005, no divergences): 2 more "
                  "chains of the same model added to the 4 kept"}
    # a larger shortfall: at most as many chains as there are (ESS 210: 4, not 6)
    assert next_attempt(_gate(min_ess_bulk=210.0), Thresholds(), _current(), attempt=1,
                        centred={}, levels={})["chains"] == 4
    # just short: one chain
    assert next_attempt(_gate(min_ess_bulk=399.0), Thresholds(), _current(chains=2),
                        attempt=1, centred={}, levels={})["chains"] == 1


def test_a_mild_r_hat_alone_doubles_warm_up_and_draws():
    from biasstats.inference.attempts import attempt_seed, next_attempt

    plan = next_attempt(_gate(max_rhat=1.0104, min_ess_tail=380.0), Thresholds(),
                        _current(target_accept=0.95, draws=1000), attempt=1,
                        centred={"g": True}, levels={"g": 8})
    assert (plan["action"], plan["chains"], plan["tune"], plan["draws"], plan["keep_draws"],
            plan["seed"], plan["target_accept"], plan["flip"]) == (
        "longer", 4, 2000, 2000, False, attempt_seed(2, 2), 0.95, None)
    assert plan["reason"] == ("a near miss on mixing alone (max R-hat 1.010, min bulk ESS 800, "
                              "no divergences): the same model with twice the warm-up and draws")


def _diverging_at_small_a():
    rng = np.random.default_rng(0)
    base = rng.normal(-1, 1, SHAPE)
    div = np.zeros(SHAPE[0] * SHAPE[1], bool)
    div[np.argsort(base, axis=None)[:12]] = True
    return _tree({"a": np.exp(base), "c": np.exp(rng.normal(0, 0.3, SHAPE))},
                 div.reshape(SHAPE))


def test_divergences_reparameterise_with_a_smaller_step_for_a_few_level_term():
    from biasstats.inference.attempts import attempt_seed, next_attempt

    tree = _diverging_at_small_a()
    plan = next_attempt(_gate(divergences=12), Thresholds(), _current(target_accept=0.9),
                        attempt=1, centred={"a": True, "c": True}, levels={"a": 3, "c": 9},
                        idata=tree)
    assert (plan["cause"], plan["action"], plan["flip"], plan["target_accept"], plan["chains"],
            plan["draws"], plan["keep_draws"], plan["seed"]) == (
        "geometry", "reparameterise", ("a",), 0.99, 4, 2000, False, attempt_seed(2, 2))
    assert plan["reason"].startswith("divergences at small sd_a (-")
    assert plan["reason"].endswith("SD): term 'a' refitted non-centred, and target_accept "
                                   "raised from 0.9 to 0.99 (3 levels: its SD is barely pinned)")
    # under 30 degrees of freedom, one step; pinned (30 or more), the flip alone
    six = next_attempt(_gate(divergences=12), Thresholds(), _current(target_accept=0.9),
                       attempt=1, centred={"a": True, "c": True}, levels={"a": 6, "c": 9},
                       idata=tree)
    assert (six["flip"], six["target_accept"]) == (("a",), 0.95)
    assert six["reason"].endswith("raised from 0.9 to 0.95 (6 levels: its SD is barely pinned)")
    many = next_attempt(_gate(divergences=12), Thresholds(), _current(target_accept=0.9),
                        attempt=1, centred={"a": True, "c": True}, levels={"a": 31, "c": 9},
                        idata=tree)
    assert (many["flip"], many["target_accept"], many["reason"].endswith("non-centred")) == (
        ("a",), 0.9, True)


def test_a_term_is_never_flipped_back_the_step_size_goes_down_instead():
    from biasstats.inference.attempts import next_attempt

    tree = _diverging_at_small_a()
    # 'a' was flipped by attempt 2 (here centred again by the constructed tree's reading)
    plan = next_attempt(_gate(divergences=12), Thresholds(), _current(target_accept=0.99),
                        attempt=2, centred={"a": True, "c": True}, levels={"a": 3, "c": 9},
                        flipped_before=("a",), idata=tree)
    assert (plan["action"], plan["flip"], plan["target_accept"], plan["attempt"]) == (
        "step size", None, 0.995, 3)
    assert plan["reason"] == ("every term the diagnostics point at was flipped already: "
                              "target_accept raised from 0.99 to 0.995")
    # nothing left to try past 0.995; and never a fourth attempt
    assert next_attempt(_gate(divergences=12), Thresholds(), _current(target_accept=0.995),
                        attempt=2, centred={"a": True, "c": True}, levels={"a": 3, "c": 9},
                        flipped_before=("a",), idata=tree) is None
    assert next_attempt(_gate(min_ess_tail=379.0), Thresholds(), _current(), attempt=3,
                        centred={}, levels={}) is None
    assert next_attempt(_gate(), Thresholds(), _current(), attempt=1, centred={},
                        levels={}) is None  # passed: no next attempt


def test_each_attempt_has_its_own_seed_derived_from_the_specs():
    from biasstats.inference.attempts import attempt_seed

    assert attempt_seed(7, 1) == 7
    seeds = [attempt_seed(7, n) for n in (2, 3)] + [attempt_seed(8, 2)]
    assert seeds == [attempt_seed(7, 2), attempt_seed(7, 3), attempt_seed(8, 2)]  # repeatable
    assert len({7, *seeds}) == 4 and all(0 <= s < 2**32 for s in seeds)


def test_chains_added_follow_the_chains_kept():
    from biasstats.inference.attempts import join_chains

    rng = np.random.default_rng(4)
    a = _tree({"a": rng.random(SHAPE)})
    b = _tree({"a": rng.random((3, SHAPE[1]))}, div=np.ones((3, SHAPE[1]), bool))
    a["observed_data"] = xr.Dataset({"y": ("obs", np.arange(5))})
    joined = join_chains(a, b)
    assert joined["posterior"].sizes["chain"] == 5
    assert list(joined["posterior"]["chain"].values) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(joined["posterior"]["sd_a"].values[:2],
                                  a["posterior"]["sd_a"].values)
    np.testing.assert_array_equal(joined["posterior"]["sd_a"].values[2:],
                                  b["posterior"]["sd_a"].values)
    assert int(joined["sample_stats"]["diverging"].sum()) == 3 * SHAPE[1]
    np.testing.assert_array_equal(joined["observed_data"]["y"].values, np.arange(5))


def test_divergences_at_no_sd_with_a_slowly_mixing_centred_sd_flip_it():
    """The rating design, seed 3, attempt 1: 3 divergences at no SD in particular, E-BFMI
    0.09, R-hat 1.026. The slow centred SD is flipped (with a smaller step for its 3 levels),
    not only the step size lowered."""
    from biasstats.inference.attempts import next_attempt

    rng = np.random.default_rng(2)
    x = np.zeros(SHAPE)
    for c in range(SHAPE[0]):
        for i in range(1, SHAPE[1]):
            x[c, i] = 0.995 * x[c, i - 1] + rng.normal(0, 0.1)
    div = np.zeros(SHAPE, bool)
    div[:, ::10] = True                                   # 100 divergences, spread evenly
    tree = _tree({"a": np.exp(x), "c": np.exp(rng.normal(0, 0.3, SHAPE))}, div)
    gate = _gate(divergences=100, min_bfmi=0.09, max_rhat=1.2, min_ess_bulk=20.0)
    plan = next_attempt(gate, Thresholds(), _current(target_accept=0.9), attempt=1,
                        centred={"a": True, "c": True}, levels={"a": 3, "c": 9}, idata=tree)
    assert (plan["action"], plan["flip"], plan["target_accept"]) == (
        "reparameterise", ("a",), 0.99)
    assert plan["reason"].startswith("slowest-mixing group SD is sd_a: term 'a' refitted "
                                     "non-centred, and target_accept raised from 0.9 to 0.99")


def test_a_term_flipped_already_is_left_out_of_the_next_flip_and_its_reason():
    """The rating design, seed 3, attempt 2: divergences at small sd_cv and large sd_llm:name,
    llm:name flipped by attempt 2: only cv is flipped, and the reason names cv alone."""
    from biasstats.inference.attempts import next_attempt

    rng = np.random.default_rng(0)
    base = rng.normal(-1, 1, SHAPE)
    sds = {"a": np.exp(base), "b": np.exp(base + rng.normal(0, 0.3, SHAPE)),
           "c": np.exp(rng.normal(0, 0.3, SHAPE))}
    div = np.zeros(SHAPE[0] * SHAPE[1], bool)
    div[np.argsort(base, axis=None)[:12]] = True
    plan = next_attempt(_gate(divergences=12), Thresholds(), _current(target_accept=0.9),
                        attempt=2, centred={"a": True, "b": True, "c": True},
                        levels={"a": 40, "b": 3, "c": 9}, flipped_before=("a",),
                        idata=_tree(sds, div.reshape(SHAPE)))
    assert (plan["flip"], plan["target_accept"]) == (("b",), 0.99)
    assert plan["reason"].startswith("divergences at small sd_b (-")
    assert "'a'" not in plan["reason"] and "sd_a" not in plan["reason"]


def test_when_no_attempt_passes_the_least_far_from_the_gate_is_kept():
    from biasstats.inference.attempts import best_attempt
    from biasstats.inference.convergence import convergence_gate

    t = Thresholds()

    def gate(**kw):  # the diagnostics a fit gives: E-BFMI per chain
        return convergence_gate({**_gate(**kw), "bfmi": [0.8, 0.9]}, t)

    diverged = gate(divergences=3)            # geometry: may be biased
    slow = gate(max_rhat=1.03, min_ess_bulk=150.0)                 # two failures
    slower = gate(max_rhat=1.05, min_ess_bulk=150.0)
    short = gate(min_ess_bulk=300.0)                                # one failure
    assert [g.passed for g in (diverged, slow, slower, short)] == [False] * 4
    assert best_attempt([diverged, slow, slower], t) == 1   # mixing beats geometry; lower R-hat
    assert best_attempt([slower, slow], t) == 1
    assert best_attempt([slow, short, diverged], t) == 1    # fewer failures
    assert best_attempt([short, short], t) == 1             # a tie keeps the later attempt
