"""The parts of a design analysis that need no sampler: the designs a size builds, the
parameter sets of new levels, the summary table and the recommendation — each against a
closed form or a known distribution."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr

from biasstats.design import Target, recommend, summarise
from biasstats.design.sizes import design_rows, label
from biasstats.design.truth import truth_draw
from biasstats.model.build import prepare


def _pilot() -> pl.DataFrame:
    """3 prompts x 2 conditions, with 2 / 3 / 1 rows per (prompt, condition) cell; p3 is
    only seen in condition a."""
    rows = []
    for prompt, reps in (("p1", 2), ("p2", 3), ("p3", 1)):
        for cond in ("a", "b") if prompt != "p3" else ("a",):
            rows += [{"prompt": prompt, "condition": cond, "y": 0.0}] * reps
    return pl.DataFrame(rows)


def test_design_rows_copy_levels_and_set_replicates():
    data = _pilot()
    cols = ["condition", "prompt"]
    d = design_rows(data, cols, {"prompt": 5})
    # level j copies original level j mod 3: p1, p2, p3, p1, p2 (with their replicates)
    assert d["prompt"].unique().sort().to_list() == [label("prompt", j, 5) for j in range(5)]
    assert label("prompt", 3, 5) == "prompt004"
    per = d.group_by(["prompt", "condition"]).len().sort(["prompt", "condition"])
    expect = {("prompt001", "a"): 2, ("prompt001", "b"): 2, ("prompt002", "a"): 3,
              ("prompt002", "b"): 3, ("prompt003", "a"): 1, ("prompt004", "a"): 2,
              ("prompt004", "b"): 2, ("prompt005", "a"): 3, ("prompt005", "b"): 3}
    assert dict(zip(zip(per["prompt"], per["condition"], strict=True), per["len"],
                    strict=True)) == expect
    both = design_rows(data, cols, {"trials": 4, "prompt": 2})
    assert both.height == 4 * 4  # prompts p1, p2: 2 cells each, 4 rows per cell
    assert design_rows(data, cols, {"trials": 1}).height == 5  # the 5 cells, once each


def _params(levels: dict[str, list[float]], sd: dict[str, float], intercept: float):
    """A one-draw parameter set of y ~ 1 + (1|g) ... (gaussian, sigma 1)."""
    vars_ = {"Intercept": (("chain", "draw"), [[intercept]]),
             "sigma": (("chain", "draw"), [[1.0]])}
    for g, r in levels.items():
        vars_[f"r_{g}"] = (("chain", "draw", g), [[r]])
        vars_[f"sd_{g}"] = (("chain", "draw"), [[sd[g]]])
    return xr.Dataset(vars_)


def test_new_levels_are_independent_draws_from_the_population():
    """A varied factor's new levels: Intercept + r is exactly an independent Normal(mu, sd)
    per level (zero-sum deviations alone would have variance sd^2 (1 - 1/L) and correlation
    -1/(L - 1)); a factor not varied keeps the draw's level effects by name."""
    base_rows = pl.DataFrame({"llm": ["m1", "m2", "m3"] * 4,
                              "prompt": [f"p{i}" for i in range(4) for _ in range(3)],
                              "y": np.arange(12.0)})
    f = "y ~ 1 + (1|llm) + (1|prompt)"
    base = prepare(f, base_rows, "gaussian", collapse=False)
    new = design_rows(base_rows, ["llm", "prompt"], {"prompt": 6}).with_columns(
        pl.lit(0.0).alias("y"))
    rows = prepare(f, new, "gaussian", collapse=False)
    r_llm = [0.5, -0.2, -0.3]
    params = _params({"llm": r_llm, "prompt": [0.1, -0.1, 0.2, -0.2]},
                     {"llm": 1.0, "prompt": 2.0}, intercept=1.0)
    rng = np.random.default_rng(4)
    eff = []
    for _ in range(4000):
        t = truth_draw(params, 0, base, rows, {"prompt"}, rng)
        assert t["r_llm"].values.ravel().tolist() == r_llm  # same levels, by name
        eff.append(float(t["Intercept"].values.ravel()[0]) + t["r_prompt"].values.ravel())
    eff = np.array(eff)  # (4000, 6): each new prompt's intercept
    assert np.abs(eff.mean(axis=0) - 1.0).max() < 0.15          # SE 0.03
    assert np.abs(eff.var(axis=0, ddof=1) - 4.0).max() < 0.35    # SE 0.09; ZSN: 3.33
    corr = np.corrcoef(eff.T)[np.triu_indices(6, 1)]
    assert np.abs(corr).max() < 0.07                             # SE 0.016; ZSN: -0.2


def _sims(widths: dict[int, list[float]], excl: dict[int, list[bool]]) -> pl.DataFrame:
    rows = []
    for n, ws in widths.items():
        for s, (w, e) in enumerate(zip(ws, excl[n], strict=True)):
            rows.append({"trials": n, "rows": 10 * n, "level": "b − a", "sim": s,
                         "truth": 1.0, "width": w, "excludes_zero": e,
                         "covers": s % 4 != 0, "divergences": 0, "rhat": 1.0})
    return pl.DataFrame(rows)


def test_summary_and_recommendation_closed_form():
    sims = _sims({2: [4.0, 6.0, 8.0, 10.0], 8: [2.0, 3.0, 4.0, 5.0], 4: [3.0, 4.0, 5.0, 6.0]},
                 {2: [True, False, False, False], 8: [True] * 4, 4: [True, True, True, False]})
    t = summarise(sims, ["trials"], rope=False)
    assert t["trials"].to_list() == [2, 8, 4]  # the order given
    assert t["width_median"].to_list() == [7.0, 3.5, 4.5]
    assert t["width_q25"].to_list() == [5.5, 2.75, 3.75]
    assert t["p_excludes_zero"].to_list() == [0.25, 1.0, 0.75]
    assert t["p_excludes_zero_mcse"].to_list() == pytest.approx(
        [np.sqrt(0.25 * 0.75 / 4), 0.0, np.sqrt(0.75 * 0.25 / 4)])
    assert t["coverage"].to_list() == [0.75] * 3
    # the smallest design (fewest rows) meeting the target, whatever order it was given in
    assert recommend(t, ["trials"], Target("power", 0.7), "p_excludes_zero")["size"] == \
        {"trials": 4}
    assert recommend(t, ["trials"], Target("power", 0.8), "p_excludes_zero")["size"] == \
        {"trials": 8}
    assert recommend(t, ["trials"], Target("width", 4.5), "p_excludes_zero")["size"] == \
        {"trials": 4}
    assert recommend(t, ["trials"], Target("width", 3.0), "p_excludes_zero") is None
    # every contrast row of a design must meet it
    two = pl.concat([sims, sims.with_columns(pl.lit("c − a").alias("level"),
                                             pl.lit(False).alias("excludes_zero"))])
    t2 = summarise(two, ["trials"], rope=False)
    assert recommend(t2, ["trials"], Target("power", 0.5), "p_excludes_zero") is None
