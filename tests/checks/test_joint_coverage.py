"""Slow validation of joint models against known truth (``nox -s slow``).

* Correlated cells: two 0/1 parts on 40 cells x 30 replies, cell effects with correlation
  0.6 (SDs 0.8); over 200 replications the 90% HDIs of the latent correlation and of the
  latent slope cover the truth at their nominal rate within binomial error, while the
  two-step slope (each cell's empirical logit, then OLS) is attenuated on the same data.
  The joint model is compiled once and each replication's counts are swapped in (nutpie's
  ``with_data``, as biasstats.checks.sbc does): the design and the priors are the same in
  every replication, only the outcomes differ.
* A refusal-and-outcome study: both parts' condition contrasts and the correlation of the
  prompt effects recovered (90% HDI coverage over 20 replications, through the full
  prepare -> fit -> part view -> estimands path).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import stats

from biasstats.effects.estimands import EffectsRequest, compute_estimands
from biasstats.effects.joint import level_estimates
from biasstats.inference import fit_settings
from biasstats.inference.joint import fit_prepared_joint
from biasstats.inference.predict import hdi
from biasstats.model.build import prepare
from biasstats.model.joint import build_joint_model, prepare_joint
from biasstats.simulate.joint import correlated_cells, correlated_slopes, refusal_study

pytestmark = pytest.mark.slow

FORMULA = "y ~ 1 + (1|p|cell)"
PROB = 0.9


def _joint(seed: int):
    a, b, truth = correlated_cells(seed, cells=40, rho=0.6, sd=(0.8, 0.8), trials=(30, 30))
    return prepare_joint({"x": prepare(FORMULA, a, "bernoulli", joint=True),
                          "y": prepare(FORMULA, b, "bernoulli", joint=True)}), truth


def _covers(draws: np.ndarray, value: float) -> bool:
    lo, hi = hdi(draws[:, None], PROB)[0]
    return bool(lo < value < hi)


def _two_step(joint) -> float:
    (_, ex), (_, ey) = (level_estimates(joint.parts[p], "cell") for p in ("x", "y"))
    xc = ex - ex.mean()
    return float(xc @ (ey - ey.mean()) / (xc @ xc))


def _compiled_with_outcomes(base):
    """The joint model of ``base`` compiled once, each part's outcome a shared variable."""
    import nutpie  # heavy libraries: imported on first use
    import pymc as pm
    import pytensor

    model = build_joint_model(base)
    shared = {p: pytensor.shared(np.asarray(base.parts[p].y), name=f"__y_{p}")
              for p in base.parts}
    model = pm.observe(model, {f"{p}::y": shared[p] for p in base.parts})
    with pytensor.config.change_flags(numba__fastmath=False):
        return nutpie.compile_pymc_model(model)


def _sample_outcomes(compiled, base, joint, seed: int):
    """``compiled`` sampled on ``joint``'s outcomes (its design is ``base``'s)."""
    import nutpie  # heavy libraries: imported on first use

    for p in joint.parts:  # the same design: only the counts differ
        assert joint.parts[p].cells.drop("k").equals(base.parts[p].cells.drop("k"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nutpie.sample(compiled.with_data(**{f"__y_{p}": np.asarray(joint.parts[p].y)
                                                   for p in joint.parts}),
                             chains=2, tune=400, draws=400, seed=seed, progress_bar=False)


def test_latent_correlation_covers_and_the_two_step_slope_is_attenuated():
    reps = 200
    base, truth = _joint(0)
    compiled = _compiled_with_outcomes(base)
    cover_rho = cover_slope = 0
    latent, two_step, rho_mean, divergent = [], [], [], 0
    for r in range(1, reps + 1):
        joint, truth = _joint(r)
        tr = _sample_outcomes(compiled, base, joint, seed=r)
        post = tr.posterior
        rho = post["cor_p"].values[:, :, 0, 1].ravel()
        slope = rho * post["y::sd_cell"].values.ravel() / post["x::sd_cell"].values.ravel()
        cover_rho += _covers(rho, truth.rho)
        cover_slope += _covers(slope, truth.slope)
        rho_mean.append(rho.mean())
        latent.append(slope.mean())
        two_step.append(_two_step(joint))
        divergent += int(tr.sample_stats["diverging"].values.sum())
    latent, two_step = np.array(latent), np.array(two_step)
    result = {"replications": reps, "rho": truth.rho, "slope": truth.slope,
              "coverage_rho_90": cover_rho / reps, "coverage_slope_90": cover_slope / reps,
              "mean_rho": float(np.mean(rho_mean)), "mean_latent_slope": float(latent.mean()),
              "mean_two_step_slope": float(two_step.mean()),
              "se_two_step_mean": float(two_step.std(ddof=1) / np.sqrt(reps)),
              "divergent_transitions": divergent}
    print("joint coverage:", json.dumps(result))
    # 90% intervals cover at 0.9 within binomial error (two-sided test at the 1% level)
    assert stats.binomtest(cover_rho, reps, PROB).pvalue > 0.01, result
    assert stats.binomtest(cover_slope, reps, PROB).pvalue > 0.01, result
    # the two-step slope is attenuated: below the truth by more than its Monte Carlo error,
    # and further from it than the latent slope
    assert result["mean_two_step_slope"] < truth.slope - 3 * result["se_two_step_mean"]
    assert abs(latent.mean() - truth.slope) < abs(two_step.mean() - truth.slope)


def test_a_refusal_and_outcome_study_is_recovered():
    reps = 20
    hits = {"refusal": 0, "answer": 0, "rho": 0}
    req = EffectsRequest(by=("condition",), contrasts=("condition",),
                         reference={"condition": "a"}, prob=PROB)
    for r in range(reps):
        table, truth = refusal_study(100 + r, prompts=30, replies=40, rho=0.5)
        answered = table.filter(table["y"].is_not_null())
        replies = table.with_columns(refused=table["y"].is_null().cast(int))
        joint = prepare_joint({
            "refusal": prepare("refused ~ condition + (1|p|prompt)", replies, "bernoulli",
                               joint=True),
            "answer": prepare("y ~ condition + (1|p|prompt)", answered, "bernoulli",
                              joint=True)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_prepared_joint(joint, fit_settings(chains=2, tune=400, draws=400,
                                                         seed=r), progress=False)
        for part, key in (("refusal", "refusal_contrast"), ("answer", "outcome_contrast")):
            est = compute_estimands(fit.part(part), req)
            row = est.contrasts.filter(est.contrasts["scale"] == "difference").row(0, named=True)
            hits[part] += row["hdi_low"] < 100 * truth[key] < row["hdi_high"]
        rho = fit.idata["posterior"]["cor_p"].values[:, :, 0, 1].ravel()
        hits["rho"] += _covers(rho, truth["rho"])
    print("refusal study coverage:", json.dumps({"replications": reps, **hits}))
    for k, v in hits.items():
        assert stats.binomtest(v, reps, PROB).pvalue > 0.01, (k, hits)


def test_correlations_of_varying_slopes_across_parts_cover():
    """``(1 + x | p | cell)`` in one part and ``(1 | p | cell)`` in another, 40 cells x 30
    replies, truth: corr(one's intercept, one's slope) 0, corr(one's intercept, two's
    intercept) 0.3, corr(one's slope, two's intercept) 0.7. Over 100 replications (the model
    compiled once, each replication's outcomes swapped in) the 90% HDI of each of the three
    correlations covers its truth at the nominal rate within binomial error."""
    reps, cells, trials = 100, 40, 30

    def joint_of(seed):
        one, two, truth = correlated_slopes(seed, cells=cells, trials=trials)
        return prepare_joint({
            "one": prepare("y ~ x + (1 + x|p|cell)", one, "bernoulli", joint=True),
            "two": prepare("y ~ 1 + (1|p|cell)", two, "bernoulli", joint=True)}), truth

    base, truth = joint_of(0)
    (shared_term,) = base.shared
    labels = shared_term.labels
    assert labels == ["one:Intercept", "one:x", "two:Intercept"]
    compiled = _compiled_with_outcomes(base)
    pairs = [(0, 1), (0, 2), (1, 2)]
    hits = dict.fromkeys(pairs, 0)
    means = {pq: [] for pq in pairs}
    divergent = 0
    for r in range(1, reps + 1):
        joint, truth = joint_of(r)
        tr = _sample_outcomes(compiled, base, joint, seed=r)
        cor = tr.posterior["cor_p"].values
        for i, j in pairs:
            draws = cor[:, :, i, j].ravel()
            hits[(i, j)] += _covers(draws, truth["cor"][i, j])
            means[(i, j)].append(draws.mean())
        divergent += int(tr.sample_stats["diverging"].values.sum())
    result = {f"{labels[i]} ~ {labels[j]}": {"truth": float(truth["cor"][i, j]),
                                              "coverage_90": hits[(i, j)] / reps,
                                              "mean": float(np.mean(means[(i, j)]))}
              for i, j in pairs}
    print("slope correlation coverage:", json.dumps({"replications": reps, **result,
                                                      "divergent_transitions": divergent}))
    for k in hits.values():
        assert stats.binomtest(k, reps, PROB).pvalue > 0.01, result
