"""The convergence gate and the divergence locator: exact messages on constructed draws."""

from __future__ import annotations

import numpy as np
import xarray as xr

from biasstats.inference.convergence import (
    Thresholds,
    convergence_gate,
    divergence_hint,
    locate_divergences,
)


def _tree(div_where: str, n_div: int = 12, seed: int = 0) -> xr.DataTree:
    """2 chains x 500 draws of sd_llm, sd_variant and a two-slope sd_g; divergences at the
    draws with the smallest (or largest) sd_variant."""
    rng = np.random.default_rng(seed)
    shape = (2, 500)
    sd_llm = np.exp(rng.normal(0, 0.3, shape))
    sd_variant = np.exp(rng.normal(-1, 1.0, shape))
    sd_g = np.exp(rng.normal(0, 0.2, shape + (2,)))
    order = np.argsort(sd_variant, axis=None)
    pick = order[:n_div] if div_where == "small" else order[-n_div:]
    div = np.zeros(shape[0] * shape[1], bool)
    div[pick] = True
    post = xr.Dataset({
        "sd_llm": (("chain", "draw"), sd_llm),
        "sd_variant": (("chain", "draw"), sd_variant),
        "sd_g": (("chain", "draw", "g__coef"), sd_g),
    }, coords={"g__coef": ["Intercept", "x"]})
    stats = xr.Dataset({"diverging": (("chain", "draw"), div.reshape(shape))})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def test_centred_term_diverging_at_small_sd_is_the_funnel():
    rows = locate_divergences(_tree("small"), {"llm": True, "variant": True, "g": False})
    assert [r["parameter"] for r in rows][:1] == ["sd_variant"]
    assert {r["parameter"] for r in rows} == {"sd_llm", "sd_variant", "sd_g[Intercept]",
                                              "sd_g[x]"}
    top = rows[0]
    assert top["divergent"] == 12 and top["shift"] < -2.0
    assert all(abs(r["shift"]) < 1.0 for r in rows[1:])
    hint = divergence_hint(rows)
    assert hint == (f"they sit at small sd_variant ({top['shift']:+.1f} SD on the log scale; "
                    "the term is centred): try [model.centered] variant = false, or raise "
                    "[fit] target_accept (e.g. 0.95, 0.99)")


def test_non_centred_term_diverging_at_large_sd_and_quoted_toml_key():
    # a grouping without an SD in the draws is skipped
    skipped = locate_divergences(_tree("large"), {"llm": True, "category:variant": False})
    assert [r["parameter"] for r in skipped] == ["sd_llm"]
    rows = locate_divergences(_tree("large"), {"llm": True, "variant": False})
    assert rows[0]["parameter"] == "sd_variant" and rows[0]["shift"] > 2.0
    assert divergence_hint(rows).endswith(
        "the term is non-centred): try [model.centered] variant = true, or raise [fit] "
        "target_accept (e.g. 0.95, 0.99)")
    renamed = [{**rows[0], "term": "category:stereotype"}]
    assert '[model.centered] "category:stereotype" = true' in divergence_hint(renamed)


def test_no_term_standing_out_and_no_divergences():
    t = _tree("small")
    t["sample_stats"]["diverging"] = xr.zeros_like(t["sample_stats"]["diverging"])
    assert locate_divergences(t, {"variant": True}) == [] and divergence_hint([]) == ""
    flat = [{"term": "llm", "parameter": "sd_llm", "centred": True, "divergent": 3,
             "shift": 0.2}]
    assert divergence_hint(flat) == ("no group SD stands out at the divergent draws (largest "
                                     "shift +0.2 SD, sd_llm): raise [fit] target_accept "
                                     "(e.g. 0.95, 0.99)")
    # the advice starts above the target acceptance the fit already used
    assert divergence_hint(flat, target_accept=0.9).endswith("target_accept (e.g. 0.95, 0.99)")
    assert divergence_hint(flat, target_accept=0.95).endswith(
        "raise [fit] target_accept above its 0.95 (e.g. 0.99)")
    assert divergence_hint(flat, target_accept=0.99).endswith(
        "raise [fit] target_accept above its 0.99 (e.g. 0.995)")


def test_gate_failure_message_carries_the_hint():
    d = {"max_rhat": 1.002, "min_ess_bulk": 900.0, "min_ess_tail": 800.0, "divergences": 3,
         "bfmi": [0.9, 0.95], "divergence_hint": "they sit at small sd_variant"}
    gate = convergence_gate(d, Thresholds())
    assert not gate.passed
    assert gate.failures == ("3 divergent transitions (allowed: 0); they sit at small "
                             "sd_variant",)
    assert convergence_gate({**d, "divergences": 0}).passed
