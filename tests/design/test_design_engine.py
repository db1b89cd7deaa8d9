"""The parts of a design analysis that need no sampler: the designs a size builds, the
parameter sets of new levels, the summary table and the recommendation — each against a
closed form or a known distribution."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr

from biasstats.design import Target, recommend, straddling, summarise
from biasstats.design.analysis import median_interval, wilson
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
    # with 4 simulations a size, no share is known well enough to meet a target by its bound
    assert recommend(t, ["trials"], Target("power", 0.7), "p_excludes_zero") is None
    assert [r["size"] for r in straddling(t, ["trials"], Target("power", 0.7),
                                          "p_excludes_zero")] == [{"trials": 4}, {"trials": 8}]
    # every contrast row of a design must meet it
    two = pl.concat([sims, sims.with_columns(pl.lit("c − a").alias("level"),
                                             pl.lit(False).alias("excludes_zero"))])
    t2 = summarise(two, ["trials"], rope=False)
    assert recommend(t2, ["trials"], Target("power", 0.5), "p_excludes_zero") is None


def test_wilson_and_median_intervals_closed_form():
    # Wilson (1927), 95%: 8 of 10 -> [0.490, 0.943]; 0 of 20 -> [0, 0.161]; 20 of 20 -> [0.839, 1]
    lo, hi = wilson([0.8, 0.0, 1.0], [10, 20, 20])
    assert lo == pytest.approx([0.4902, 0.0, 0.8389], abs=1e-4)
    assert hi == pytest.approx([0.9433, 0.1611, 1.0], abs=1e-4)
    # the median of 1..20: ranks 6 and 15 (P(Bin(20, 1/2) <= 5) = 0.0207 <= 0.025 < P(<= 6))
    assert median_interval(np.arange(1.0, 21.0)) == (6.0, 15.0)
    assert median_interval(np.array([3.0, 1.0, 2.0])) == (1.0, 3.0)   # too few: the extremes


def _power_table(shares: dict[int, float], sims: int) -> pl.DataFrame:
    rows = []
    for n, p in shares.items():
        k = round(p * sims)
        for s in range(sims):
            rows.append({"trials": n, "rows": 10 * n, "level": "b − a", "sim": s, "truth": 1.0,
                         "width": 10.0 / n + s / sims, "excludes_zero": s < k, "covers": True,
                         "divergences": 0, "rhat": 1.0})
    return summarise(pl.DataFrame(rows), ["trials"], rope=False)


def test_the_recommendation_goes_by_the_lower_bound_and_names_the_straddler():
    # 200 sims: 0.82 at trials=4 (Wilson 0.760-0.868) meets 0.8 by its point estimate only;
    # 0.90 at trials=8 (0.851-0.934) meets it by its lower bound
    t = _power_table({2: 0.5, 4: 0.82, 8: 0.90, 16: 0.97}, 200)
    target = Target("power", 0.8)
    rec = recommend(t, ["trials"], target, "p_excludes_zero")
    assert rec["size"] == {"trials": 8} and rec["power"] == pytest.approx(0.90)
    assert rec["power_lo"] == pytest.approx(0.8506, abs=1e-4)
    (s,) = straddling(t, ["trials"], target, "p_excludes_zero")
    assert s["size"] == {"trials": 4} and s["power_lo"] < 0.8 < s["power_hi"]
    from biasstats.design import DesignAnalysis
    res = DesignAnalysis(pl.DataFrame(), t, ["trials"], "condition", "percentage points",
                         0.95, None, "posterior", "", target, rec, straddling=[s])
    assert res.recommendation() == (
        "smallest design meeting power >= 0.8 by its 95% lower bound: trials=8 (80 rows); "
        "P(interval excludes 0) 0.90 ± 0.02 (MC SE; 95% 0.85–0.93); trials=4 meets it by "
        "its point estimate only (P(interval excludes 0) 0.82 ± 0.03 (MC SE; 95% 0.76–0.87)): "
        "its interval holds the target (raise --sims to settle it)")
    # a width target by the upper bound of the median width
    w = recommend(t, ["trials"], Target("width", 2.0), "p_excludes_zero")
    assert w["size"] == {"trials": 8} and w["width_median_hi"] <= 2.0
