"""Slow validation of ``biasstats design`` on a fitted pilot with a known design: interval
widths fall as the design grows, and at the recommended size a fresh batch of simulated
studies meets the power target in about the share the analysis stated (within binomial
error). Same seed, same files. ``nox -s slow``."""

from __future__ import annotations

import math

import polars as pl
import pytest

from biasstats.cli import main
from biasstats.design import Target, make_plan, parse_vary, run_design
from biasstats.inference.from_spec import fit_spec
from biasstats.ingest import ingest
from biasstats.simulate.designs import refusals


def _pilot(tmp_path):
    df, truth = refusals(seed=5, prompts=16, reps=8,
                         rates=(("neutral", 0.10), ("sensitive", 0.25)), sd_prompt=0.3)
    df.rename({"refused": "refusal"}).write_csv(tmp_path / "pilot.csv")
    path = tmp_path / "pilot.toml"
    path.write_text("""
[analysis]
name = "pilot"
[data]
source = "pilot.csv"
outcome = "refusal"
[model]
formula = "refusal ~ condition + (1|prompt)"
family = "bernoulli"
[effects]
reference = { condition = "neutral" }
[fit]
chains = 2
draws = 500
""")
    return path, truth


@pytest.mark.slow
def test_widths_fall_and_the_recommended_size_meets_its_stated_share(tmp_path):
    path, _ = _pilot(tmp_path)
    ing = ingest(path)
    fit = fit_spec(ing.spec, ing.table, tmp_path / "fit", progress=False).fit
    plan = make_plan(ing.spec, ing.table, parse_vary(["trials=2,4,8,16"]),
                     target=Target("power", 0.6))
    res = run_design(plan, fit, sims=40, draws=300, seed=1)
    t = res.table
    print(t.select("trials", "rows", "width_median", "p_excludes_zero",
                   "p_excludes_zero_mcse", "coverage", "divergent_sims"))
    widths = t["width_median"].to_list()
    assert all(a > b for a, b in zip(widths, widths[1:], strict=False)), widths
    # 95% intervals cover the truth of their own simulated study at about the nominal rate
    cover = float(res.sims["covers"].mean())
    assert abs(cover - 0.95) < 3 * math.sqrt(0.95 * 0.05 / res.sims.height), cover
    rec = res.recommended
    assert rec is not None, res.recommendation()
    print(res.recommendation())
    n = rec["size"]["trials"]
    fresh_plan = make_plan(ing.spec, ing.table, parse_vary([f"trials={n}"]),
                           target=Target("power", 0.6))
    fresh = run_design(fresh_plan, fit, sims=60, draws=300, seed=2)
    p_new = float(fresh.table["p_excludes_zero"][0])
    se_new = float(fresh.table["p_excludes_zero_mcse"][0])
    z = (p_new - rec["power"]) / math.hypot(rec["power_mcse"], se_new)
    print(f"trials={n}: stated {rec['power']:.3f} ± {rec['power_mcse']:.3f}, fresh "
          f"{p_new:.3f} ± {se_new:.3f} (z = {z:.2f})")
    assert abs(z) < 2.5
    assert p_new >= 0.6 - 2.5 * se_new


@pytest.mark.slow
def test_same_seed_same_files(tmp_path, capsys):
    path, _ = _pilot(tmp_path)
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert main(["design", str(path), "--vary", "prompt=6", "--sims", "3", "--draws",
                     "100", "--seed", "3", "--out", str(out)]) == 0
    a = pl.read_csv(outs[0] / "sims.csv").drop("seconds")
    b = pl.read_csv(outs[1] / "sims.csv").drop("seconds")
    assert a.equals(b)
    for name in ("design.csv", "design.tex", "assurance.svg"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    capsys.readouterr()


@pytest.mark.slow
def test_prior_draws_give_nominal_coverage(tmp_path):
    """With parameters drawn from the prior the refit uses (the levels are the analysis'
    own: only the replicates vary), truth, data and refit are one Bayesian model, so the
    intervals must cover the true contrast at their nominal rate averaged over the
    simulations (the argument of simulation-based calibration): a check of the whole chain —
    parameter sets, simulated outcomes, refits and the truth computed from the parameters."""
    path, _ = _pilot(tmp_path)
    text = path.read_text().replace("[effects]", """[model.priors]
Intercept = "Normal(-1.5, 0.5)"
b = "Normal(0, 0.5)"
sd_prompt = "HalfNormal(0.5)"
[effects]""")
    path.write_text(text)
    ing = ingest(path)
    plan = make_plan(ing.spec, ing.table, parse_vary(["trials=4"]), prob=0.9)
    res = run_design(plan, None, sims=120, draws=300, seed=4)
    cover = float(res.table["coverage"][0])
    se = math.sqrt(0.9 * 0.1 / 120)
    print(f"prior draws, 90% HDI: coverage {cover:.3f} (binomial SE {se:.3f}), "
          f"{res.source}, {int(res.table['divergent_sims'][0])} divergent fits")
    assert res.source == "prior"
    assert abs(cover - 0.9) < 3 * se
