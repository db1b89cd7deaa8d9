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
