"""A sampler that fixes itself and says so: separation named before sampling, one automatic
refit after a failed gate, ``biasstats fit`` exits 1 when the gate fails."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from biasstats.model.build import prepare


def test_separated_fixed_effect_is_named_with_a_prior():
    rng = np.random.default_rng(0)
    x = np.repeat(["a", "b", "c"], 40)
    y = np.where(x == "c", 1, rng.integers(0, 2, x.size))  # every 'c' is 1
    spec = prepare("y ~ 1 + x", pl.DataFrame({"x": x, "y": y}), "bernoulli")
    assert spec.separation == [
        "fixed effect 'x[T.c]': every outcome where it is 1 is 1 (complete separation): "
        "b_x[T.c] is set by its prior; use a weakly informative one, e.g. [model.priors] "
        "b_x[T.c] = \"Normal(0, 2.5)\""]


def test_threshold_separation_of_a_continuous_covariate():
    x = np.linspace(-1, 1, 50)
    spec = prepare("y ~ 1 + x", pl.DataFrame({"x": x, "y": (x > 0.1).astype(int)}), "bernoulli")
    assert len(spec.separation) == 1
    assert spec.separation[0].startswith("fixed effect 'x': a threshold on it splits")


def _grouped(g, y) -> list[str]:
    """Separation lines of ``y ~ 1 + (1|g)`` (bernoulli)."""
    return prepare("y ~ 1 + (1|g)", pl.DataFrame({"g": g.astype(str), "y": y}),
                   "bernoulli").separation


def _near_complete():
    y = np.zeros(628, dtype=int)  # the case: 627 of 628 outcomes in one class
    y[17] = 1
    return np.arange(628) % 12, y


def _mostly_one_class():
    g = np.repeat(np.arange(10), 20)
    rng = np.random.default_rng(1)
    return g, np.where(g < 7, (g % 2 == 0).astype(int), rng.integers(0, 2, g.size))


@pytest.mark.parametrize(("data", "line"), [
    (_near_complete, "response 'y': 627 of 628 outcomes are 0 (near-complete separation): the "
                     "intercept is bounded by its prior alone; keep a proper prior such as "
                     "[model.priors] Intercept = \"Normal(0, 2.5)\" and read its estimate as a "
                     "bound"),
    (_mostly_one_class, "term '(1|g)': 7 of 10 levels have every outcome in one class "
                        "(separation): sd_g is set by its prior, not the data; use a weakly "
                        "informative one, e.g. [model.priors] sd_g = \"HalfNormal(1)\""),
])
def test_separated_outcome_or_group_term_is_one_line_not_a_funnel(data, line):
    assert _grouped(*data()) == [line]


def test_ordinary_data_has_no_separation():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(8), 50)
    assert _grouped(g, rng.integers(0, 2, g.size)) == []


def _nb_study(seed=1, levels=20, rows=60):
    """Counts with 20 prompt levels whose true SD is tiny (0.05): a centred term sits in its
    funnel (E-BFMI ~0.2), the non-centred one does not."""
    rng = np.random.default_rng(seed)
    prompt = np.arange(rows) % levels
    r = rng.normal(0, 0.05, levels)
    mu = np.exp(1.0 + r[prompt])
    y = rng.negative_binomial(2, 2 / (2 + mu))
    return pl.DataFrame({"prompt": [f"p{i:02d}" for i in prompt], "y": y})


@pytest.mark.filterwarnings("ignore")
def test_automatic_refit_recovers_a_badly_parameterised_negative_binomial():
    from biasstats.inference import fit_prepared, fit_settings
    from biasstats.inference.convergence import Thresholds

    df = _nb_study()
    assert prepare("y ~ 1 + (1|prompt)", df, "negative_binomial").groups[0].centered is False
    bad = prepare("y ~ 1 + (1|prompt)", df, "negative_binomial", centered={"prompt": True})
    th = Thresholds(ess_bulk_min=100, ess_tail_min=100, rhat_max=1.05)
    fit = fit_prepared(bad, fit_settings(chains=2, tune=300, draws=300, seed=1,
                                         target_accept=0.9), progress=False, thresholds=th)
    first, second = fit.settings["attempts"]
    assert not first["passed"] and first["centered"]["prompt"].startswith("centred")
    assert second["passed"], second["failures"]
    assert second["change"] == ("slowest-mixing group SD is sd_prompt: term 'prompt' refitted "
                                "non-centred, and target_accept raised from 0.9 to 0.95 (20 "
                                "levels: its SD is barely pinned)")
    assert second["target_accept"] == 0.95
    assert fit.spec.groups[0].centered is False and bad.groups[0].centered is True
    assert fit.settings["flipped"] == "prompt"  # what a cached posterior re-applies
    assert fit.settings["centered"]["prompt"].startswith("non-centred (by the automatic refit")
    # opted out: one attempt, the failing one
    once = fit_prepared(bad, fit_settings(chains=2, tune=300, draws=300, seed=1,
                                          target_accept=0.9, refit=False),
                        progress=False, thresholds=th)
    assert [a["passed"] for a in once.settings["attempts"]] == [False]


SPEC = """
[analysis]
name = "gate"
[data]
source = "study.csv"
[data.columns]
llm = "model"
congruent = "answer"
[model]
formula = "congruent ~ 1 + (1|llm)"
[fit]
chains = 2
tune = 3
draws = 12
seed = 5
refit = false
[checks]
allow_failure = {allow}
"""


@pytest.mark.filterwarnings("ignore")
def test_cli_fit_prints_the_gate_and_exits_1_when_it_fails(tmp_path, capsys):
    from biasstats.cli import main

    rng = np.random.default_rng(3)
    llm = np.repeat(["a", "b", "c"], 200)
    pl.DataFrame({"model": llm, "answer": rng.integers(0, 2, llm.size)}).write_csv(
        tmp_path / "study.csv")
    spec = tmp_path / "gate.toml"
    spec.write_text(SPEC.format(allow="false"))
    assert main(["fit", str(spec), "--out", str(tmp_path / "out")]) == 1
    cap = capsys.readouterr()
    assert "convergence gate: FAILED: " in cap.out and "min bulk ESS" in cap.out
    assert "attempt 1 (as specified, target_accept" in cap.out
    assert "convergence gate failed (set [checks] allow_failure = true" in cap.err
    spec.write_text(SPEC.format(allow="true"))
    assert main(["fit", str(spec), "--out", str(tmp_path / "out")]) == 0
    assert "convergence gate: FAILED: " in capsys.readouterr().out


def _sparse_names(sd, seed=1):
    """The issue's case: a bernoulli with 800 name levels, 8,000 rows, a 0/1 covariate (cells
    of ~5 outcomes after collapsing to name x covariate)."""
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    name = rng.integers(0, 800, 8000)
    x = rng.integers(0, 2, 8000)
    eta = -0.3 + 0.5 * x + rng.normal(0, sd, 800)[name]
    return pl.DataFrame({"name": [f"n{i:03d}" for i in name], "x": x.astype(float),
                         "y": (rng.random(8000) < expit(eta)).astype(int)})


def test_many_sparse_levels_are_not_read_as_no_spread():
    """Before: 'tau/se 90% range 0-0', funnel risk 0, target_accept 0.9 for a name SD of 0.7
    (true tau/se ~1.1: each name's ten outcomes give se ~0.64 on the logit scale)."""
    import re

    from biasstats.inference.sample import auto_target_accept

    ranges = {}
    for sd in (0.0, 0.7, 1.5):
        spec = prepare("y ~ 1 + x + (1|name)", _sparse_names(sd))
        g = spec.groups[0]
        lo, hi = map(float, re.search(r"tau/se 90% range ([\d.e+]+)-([\d.e+]+)",
                                      g.reason).groups())
        ranges[sd] = (lo, hi)
        if sd == 0.7:
            # tau ~ se, but 798 df pin tau: the effects' scale barely moves over its range,
            # so no funnel (bench: 0 divergences, 30 s at 0.9 against 804 s at 0.99)
            assert g.funnel_risk == 0.5 and "SD pinned by 798 df" in g.reason
            assert auto_target_accept(spec)[0] == 0.9
    assert ranges[0.0][0] == 0.0 and ranges[0.0][1] < 0.5
    assert ranges[0.7][0] < 1.1 < ranges[0.7][1] * 1.1  # brackets the truth (within 10%)
    assert ranges[1.5][0] > ranges[0.7][1]


def test_empirical_logit_moments_match_the_asymptotics_for_large_n():
    from biasstats.model.families.binomial import _empirical_logit_moments

    var, slope = _empirical_logit_moments(np.array([5.0, 300.0]), 0.3)
    assert var[1] == pytest.approx(1 / (300 * 0.3 * 0.7), rel=0.02)
    assert slope[1] == pytest.approx(1.0, abs=0.02)
    assert var[0] < 1 / (5 * 0.3 * 0.7) and slope[0] < 0.95  # bounded logits of small cells


def test_few_level_terms_are_never_read_as_pinned():
    """The pinned-SD cap needs >= 30 df: 4 categories or prompt variants keep their risk."""
    rng = np.random.default_rng(3)
    v = rng.integers(0, 4, 4000)
    name = rng.integers(0, 400, 4000)
    eta = rng.normal(0, 0.3, 4)[v] + rng.normal(0, 0.7, 400)[name]
    df = pl.DataFrame({"v": [f"v{i}" for i in v], "name": [f"n{i}" for i in name],
                       "y": (rng.random(4000) < 1 / (1 + np.exp(-eta))).astype(int)})
    spec = prepare("y ~ 1 + (1|v) + (1|name)", df)
    g = {t.name: t for t in spec.groups}
    assert "pinned" not in g["v"].reason and "pinned" in g["name"].reason


def test_a_near_miss_on_mixing_is_refitted_longer_not_reparameterised():
    """Validate seed 3: R-hat 1.010 (threshold 1.01), ESS above 400, no divergences. Flipping
    the slowest SD's term gave R-hat 1.16, ESS 21 and 5 divergences; the plan is now the same
    model with twice the warm-up and draws. Divergences, low E-BFMI or a large R-hat still
    change the geometry."""
    from biasstats.inference.convergence import Thresholds, convergence_gate, near_miss, refit_plan

    t = Thresholds()
    near = {"max_rhat": 1.0104, "min_ess_bulk": 420.0, "min_ess_tail": 380.0, "divergences": 0,
            "bfmi": [0.9, 1.0]}
    gate = convergence_gate(near, t)
    assert not gate.passed and near_miss(gate.values, t)
    plan = refit_plan(gate.values, {"g": True}, None, 0.95, t)
    assert plan["longer"] and plan["flip"] is None and plan["target_accept"] == 0.95
    assert plan["reason"].startswith("a near miss on mixing alone (max R-hat 1.010")
    for worse in ({"divergences": 3}, {"max_rhat": 1.05}, {"min_ess_bulk": 150.0},
                  {"bfmi": [0.2, 0.9]}):
        assert not near_miss(convergence_gate({**near, **worse}, t).values, t), worse
    assert not near_miss(gate.values, None)  # no thresholds: nothing to call near


def test_the_methods_paragraph_names_both_attempts_and_their_cost():
    from biasstats.report.methods import _attempts

    st = {"attempts": [
        {"attempt": 1, "change": "as specified", "passed": False, "sampling_s": 71.04,
         "failures": ["max R-hat 1.010 > 1.01"]},
        {"attempt": 2, "change": "a near miss on mixing alone: twice the draws", "passed": True,
         "sampling_s": 108.0, "failures": []}]}
    assert _attempts(st) == (
        "The fit was refitted automatically: attempt 1 (as specified; 71 s of sampling) failed "
        "the convergence gate (max R-hat 1.010 > 1.01); attempt 2 (a near miss on mixing alone: twice the draws; "
        "108 s of sampling) passed the convergence gate.")
    assert _attempts({"attempts": st["attempts"][:1]}) == ""
    # none passed and an earlier attempt was kept: the paragraph says whose draws these are
    failed = {"attempts": [
        {"attempt": 1, "change": "as specified", "passed": False, "sampling_s": 10,
         "failures": ["max R-hat 1.030 > 1.01"], "kept": True},
        {"attempt": 2, "change": "term 'g' refitted non-centred", "passed": False,
         "sampling_s": 12, "failures": ["3 divergent transitions (allowed: 0)"],
         "kept": False}]}
    assert _attempts(failed).endswith(
        "failed the convergence gate (3 divergent transitions (allowed: 0)). No attempt "
        "passed; the draws reported are attempt 1's, the least far from the gate.")


@pytest.mark.filterwarnings("ignore")
def test_low_ess_alone_keeps_the_draws_and_adds_chains():
    """A fit short of its ESS threshold and nothing else is lengthened, not refitted: its
    chains are kept as sampled and chains of the same model, with a seed derived from the
    spec's, are added until the gate passes (a fit of its own seed: the same draws)."""
    from biasstats.inference import fit_prepared, fit_settings
    from biasstats.inference.attempts import attempt_seed
    from biasstats.inference.convergence import Thresholds

    rng = np.random.default_rng(3)
    spec = prepare("y ~ 1 + (1|g)", pl.DataFrame({"g": np.repeat(list("abcdef"), 30),
                                                  "y": rng.normal(0, 1, 180)}), "gaussian")
    settings = fit_settings(chains=2, tune=200, draws=200, seed=1)
    once = fit_prepared(spec, settings, progress=False)
    d = once.diagnostics()
    # thresholds just above what the first attempt reaches in ESS, and met in all else
    th = Thresholds(ess_bulk_min=1.1 * d["min_ess_bulk"], ess_tail_min=d["min_ess_tail"] / 2,
                    rhat_max=max(1.05, d["max_rhat"]), divergences_max=10**6, bfmi_min=0.0)
    lines = []
    fit = fit_prepared(spec, settings, progress=False, thresholds=th, on_attempt=lines.append)
    first, second, *rest = fit.settings["attempts"]
    assert not first["passed"] and first["failures"][0].startswith("min bulk ESS ")
    assert (first["action"], first["seed"], first["chains"], first["draws"]) == (
        "as specified", 1, 2, 200)
    assert (second["cause"], second["action"], second["chains"], second["seed"]) == (
        "ess", "add chains", 1, attempt_seed(1, 2))  # 1.1 x 1.25 = 1.375: 1 chain of 2 more
    assert fit.settings["attempts"][-1]["passed"]
    post = fit.idata["posterior"]
    assert post.sizes["chain"] == 2 + sum(a["chains"] for a in fit.settings["attempts"][1:])
    assert fit.settings["chains"] == post.sizes["chain"] and fit.settings["seed"] == 1
    np.testing.assert_array_equal(post["Intercept"].values[:2],
                                  once.idata["posterior"]["Intercept"].values)
    assert lines[0].startswith("attempt 1 failed the gate (min bulk ESS ")
    assert lines[0].endswith("attempt 2 of 3: low ESS only (min bulk "
                             f"{d['min_ess_bulk']:.0f}, tail {d['min_ess_tail']:.0f}; R-hat "
                             f"{d['max_rhat']:.3f}, no divergences): 1 more chain of the same "
                             "model added to the 2 kept")
