"""Weighted patterns: identical (covariates, n, k) trials of a beta-binomial model counted once.

Truths: the per-trial model itself (log density, PSIS-LOO computed on every trial), the raw data
(observed rates), and the beta-binomial mean and variance (replicated totals)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xarray as xr
from scipy.stats import betabinom

from biasstats.model.build import prepare
from biasstats.model.graph import build_model

FORMULA = "k | trials(n) ~ 1 + (1|g) + (1|v)"


def _trials(n_rows=2000, seed=1):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 6, n_rows)
    v = rng.integers(0, 3, n_rows)
    p = rng.beta(2, 2, n_rows)
    n = np.where(np.arange(n_rows) < 40, 15, 16)
    return pl.DataFrame({"g": [f"g{i}" for i in g], "v": [f"v{i}" for i in v],
                         "k": rng.binomial(n, p), "n": n})


def test_patterns_collapse_rows_and_keep_their_counts():
    df = _trials()
    spec = prepare(FORMULA, df, "beta_binomial")
    assert spec.obs_dim == "pattern" and spec.weights is not None
    assert spec.weights.sum() == df.height
    # at most 17 k-values x 2 n-values per g x v cell, and far fewer patterns than trials
    assert len(spec.y) <= 6 * 3 * 17 * 2 and len(spec.y) < df.height / 4
    # every row maps to a pattern with its own k, n and covariates
    cells = spec.cells
    back = cells[spec.row_pattern.tolist()]
    assert back.select("g", "v", "k", "n").equals(df.select("g", "v", "k", "n"))
    assert np.array_equal(np.bincount(spec.row_pattern), spec.weights)


@pytest.mark.parametrize("family", ["beta_binomial", "logitnormal_binomial"])
def test_pattern_log_density_equals_per_trial_log_density(family):
    df = _trials()
    pat = build_model(prepare(FORMULA, df, family))
    row = build_model(prepare(FORMULA, df, family, collapse=False))
    assert len(row.coords["obs"]) == df.height
    f_pat, f_row = pat.compile_logp(), row.compile_logp()
    d_pat, d_row = pat.compile_dlogp(), row.compile_dlogp()
    rng = np.random.default_rng(7)
    start = row.initial_point()
    for _ in range(5):
        point = {k: v + rng.normal(size=np.shape(v)) for k, v in start.items()}
        a, b = float(f_pat(point)), float(f_row(point))
        assert abs(a - b) <= 1e-10 * abs(b)
        np.testing.assert_allclose(d_pat(point), d_row(point), rtol=1e-10, atol=1e-8)


def _fake_fit(df, draws=400, chains=2, seed=3):
    """A Fit of ``k | trials(n) ~ 1`` whose 'posterior' is a known cloud of (Intercept, phi),
    with the exact per-trial log-likelihood of every pattern."""
    from biasstats.inference import Fit

    spec = prepare("k | trials(n) ~ 1", df, "beta_binomial")
    rng = np.random.default_rng(seed)
    icpt = rng.normal(0.3, 0.05, (chains, draws))
    phi = np.exp(rng.normal(np.log(4.0), 0.1, (chains, draws)))
    mu = 1 / (1 + np.exp(-icpt))
    a, b = (mu * phi)[..., None], ((1 - mu) * phi)[..., None]
    ll = betabinom.logpmf(spec.y, spec.trials, a, b)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"Intercept": (("chain", "draw"), icpt),
                                 "phi": (("chain", "draw"), phi)}, coords=coords),
        "log_likelihood": xr.Dataset({"k": (("chain", "draw", "pattern"), ll)}, coords=coords),
    })
    return Fit(idata=tree, spec=spec), mu, phi


def test_loo_from_patterns_equals_per_trial_loo():
    import arviz_stats as azs

    from biasstats.checks.compare import loo_fit

    df = _trials(600, seed=5)
    fit, _, _ = _fake_fit(df)
    spec = fit.spec
    got = loo_fit(fit)
    ll = fit.idata["log_likelihood"]["k"]
    per_trial = xr.DataTree.from_dict({
        "posterior": fit.idata["posterior"].to_dataset(),
        "log_likelihood": xr.Dataset({"k": ll.isel(pattern=xr.DataArray(spec.row_pattern,
                                                                         dims="obs"))})})
    want = azs.loo(per_trial, pointwise=True)
    assert got.n_data_points == df.height == want.n_data_points
    assert got.elpd == pytest.approx(want.elpd, rel=1e-12)
    assert got.se == pytest.approx(want.se, rel=1e-10)
    assert got.p == pytest.approx(want.p, rel=1e-9)
    np.testing.assert_allclose(got.elpd_i.values, want.elpd_i.values, rtol=1e-12)
    np.testing.assert_allclose(got.pareto_k.values, want.pareto_k.values, rtol=1e-12)


def test_pattern_predictive_totals_follow_the_beta_binomial():
    from biasstats.inference.sample import pattern_predictive

    df = _trials(600, seed=5)
    fit, mu, phi = _fake_fit(df, draws=1000)
    spec = fit.spec
    pp = pattern_predictive(fit, seed=11)
    one = pp["k"].values.reshape(-1, len(spec.y))
    tot = pp["k__total"].values.reshape(-1, len(spec.y)).astype(float)
    assert one.max() <= spec.trials.max() and (one >= 0).all()
    # E[total] = w n mu and Var[total | theta] = w Var_bb: checked on the biggest pattern
    j = int(np.argmax(spec.weights))
    w, n = spec.weights[j], spec.trials[j]
    m = mu.ravel()
    ph = phi.ravel()
    mean_theta = w * n * m
    var_theta = w * n * m * (1 - m) * (n + ph) / (1 + ph)
    want_mean = mean_theta.mean()
    want_var = var_theta.mean() + mean_theta.var()
    S = tot.shape[0]
    assert abs(tot[:, j].mean() - want_mean) < 4 * np.sqrt(want_var / S)
    assert tot[:, j].var() == pytest.approx(want_var, rel=0.15)
    # same seed, same draws
    again = pattern_predictive(fit, seed=11)
    assert np.array_equal(again["k__total"].values, pp["k__total"].values)


def test_grouped_rates_weight_patterns_by_their_counts():
    from biasstats.checks.ppc import grouped_rates

    df = _trials(800, seed=2)
    spec = prepare(FORMULA, df, "beta_binomial")
    rep = np.tile(spec.y * spec.weights, (3, 1))  # replicated totals equal to the data
    out = grouped_rates(spec, rep, "g", rep_is_total=True)
    want = df.group_by("g").agg((pl.col("k").sum() / pl.col("n").sum()).alias("r")).sort("g")
    np.testing.assert_allclose(out.sort("level")["observed"].to_numpy(), want["r"].to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(out.sort("level")["rep_mean"].to_numpy(), want["r"].to_numpy(),
                               rtol=1e-12)


def test_posterior_file_is_float32_and_compressed(tmp_path):
    df = _trials(600, seed=5)
    fit, _, _ = _fake_fit(df)
    path = fit.to_netcdf(tmp_path / "posterior.nc")
    back = xr.open_datatree(path)
    assert back["posterior"]["phi"].dtype == np.float32
    np.testing.assert_array_equal(back["posterior"]["phi"].values,
                                  fit.idata["posterior"]["phi"].values.astype(np.float32))
    raw = sum(da.nbytes for node in fit.idata.subtree for da in node.dataset.data_vars.values())
    assert path.stat().st_size < raw / 2


def test_trial_level_loo_compares_a_judgement_model_with_a_trial_model():
    """Both models' per-trial PSIS-LOO, from common patterns, equals PSIS-LOO on every trial
    with the per-trial densities written out (binomial for the judgement-level model)."""
    import arviz_stats as azs
    from scipy.stats import binom

    from biasstats.checks.compare import trial_level_loo
    from biasstats.inference import Fit

    trials = _trials(400, seed=9).with_columns(pl.lit("x").alias("g"))
    bb, _, _ = _fake_fit(trials.select("k", "n"))
    rows = trials.with_row_index("t").select(
        "t", pl.int_ranges(0, pl.col("n")).alias("j"), "k").explode("j").with_columns(
        (pl.col("j") < pl.col("k")).cast(pl.Int64).alias("congruent"))
    jspec = prepare("congruent ~ 1", rows, "bernoulli")
    rng = np.random.default_rng(4)
    icpt = rng.normal(0.2, 0.02, (2, 400))
    jfit = Fit(idata=xr.DataTree.from_dict({"posterior": xr.Dataset(
        {"Intercept": (("chain", "draw"), icpt)},
        coords={"chain": [0, 1], "draw": np.arange(400)})}), spec=jspec)
    got = trial_level_loo({"trial": bb, "judgement": jfit}, trials)
    k, n = trials["k"].to_numpy(), trials["n"].to_numpy()
    p = 1 / (1 + np.exp(-icpt))[..., None]
    want_j = azs.loo(xr.DataTree.from_dict({
        "posterior": jfit.idata["posterior"].to_dataset(),
        "log_likelihood": xr.Dataset({"k": (("chain", "draw", "obs"),
                                            binom.logpmf(k, n, p))})}), pointwise=True)
    assert got["judgement"].n_data_points == trials.height
    assert got["judgement"].elpd == pytest.approx(want_j.elpd, rel=1e-10)
    assert got["judgement"].se == pytest.approx(want_j.se, rel=1e-8)
    from biasstats.checks.compare import loo_fit

    assert got["trial"].elpd == pytest.approx(loo_fit(bb).elpd, rel=1e-10)
    table = azs.compare(got)
    assert list(table.index) == ["trial", "judgement"]  # overdispersed data: trial model wins


def test_loo_pit_runs_per_pattern_with_the_pattern_weights():
    """LOO-PIT of a pattern-weighted fit reuses the per-pattern smoothed weights: one PIT value
    per pattern, in [0, 1]."""
    from biasstats.checks.ppc import loo_pit, loo_summary
    from biasstats.inference.sample import pattern_predictive

    df = _trials(600, seed=5)
    fit, _, _ = _fake_fit(df)
    fit.idata["posterior_predictive"] = pattern_predictive(fit, seed=2)
    fit.idata["observed_data"] = xr.Dataset({"k": (("pattern",), fit.spec.y)})
    loo = loo_summary(fit)
    assert loo["n_points"] == df.height
    pit = loo_pit(fit, elpd_data=loo["elpd_data"])
    assert pit.shape == (len(fit.spec.y),) and ((pit >= 0) & (pit <= 1)).all()


def test_sufficient_statistics_reproduce_every_pattern():
    """count_stats: A, B, T add up each trial's rising-factorial terms; the constant is
    sum log C(n, k) over trials; each pattern points at a cell with its covariates."""
    from scipy.special import gammaln

    from biasstats.model.sufficient import count_stats

    df = _trials(900, seed=4)
    spec = prepare(FORMULA, df, "beta_binomial")
    st = count_stats(spec)
    assert st.A.shape == (6 * 3, 16)
    cells = spec.cells.select("g", "v")
    assert cells[st.rows.tolist()].unique().height == len(st.rows)
    assert (cells[st.rows[st.cell].tolist()].to_numpy() == cells.to_numpy()).all()
    n, k = df["n"].to_numpy(), df["k"].to_numpy()
    assert st.A.sum() == k.sum() and st.B.sum() == (n - k).sum() and st.T.sum() == n.sum()
    want = np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))
    assert st.const == pytest.approx(want, rel=1e-12)


def test_pattern_log_likelihood_is_the_beta_binomial_of_one_trial():
    from biasstats.inference.sample import pattern_log_likelihood
    from biasstats.model.sufficient import count_stats

    fit, _, _ = _fake_fit(_trials(600, seed=5))
    got = pattern_log_likelihood(fit, count_stats(fit.spec))["k"].values
    np.testing.assert_allclose(got, fit.idata["log_likelihood"]["k"].values, rtol=1e-10)


def test_cell_predictive_totals_follow_the_beta_binomial():
    """The multinomial draw of a cell's k-value counts: the total's mean and variance are
    those of a sum of W iid beta-binomial trials; one-trial replicates stay in 0..n."""
    from biasstats.inference.sample import pattern_predictive_stats
    from biasstats.model.sufficient import count_stats

    df = _trials(600, seed=5)
    fit, mu, phi = _fake_fit(df, draws=1000)
    spec = fit.spec
    st = count_stats(spec)
    pp = pattern_predictive_stats(fit, st, seed=11)
    one = pp["k"].values.reshape(-1, len(spec.y))
    tot = pp["k__total"].values.reshape(-1, len(spec.y)).astype(float)
    assert one.min() >= 0 and (one <= spec.trials).all()
    m, ph = mu.ravel(), phi.ravel()
    for nv in (15, 16):  # one cell (intercept only), two trial counts
        sel = spec.trials == nv
        w = spec.weights[sel].sum()
        assert np.count_nonzero(tot[0, sel]) <= 1  # the total sits on one pattern
        t = tot[:, sel].sum(axis=1)
        mean_theta = w * nv * m
        var_theta = w * nv * m * (1 - m) * (nv + ph) / (1 + ph)
        want_var = var_theta.mean() + mean_theta.var()
        assert abs(t.mean() - mean_theta.mean()) < 4 * np.sqrt(want_var / len(t))
        assert t.var() == pytest.approx(want_var, rel=0.15)
        # one-trial replicates: the beta-binomial mean n mu
        r = one[:, sel][:, 0]
        assert abs(r.mean() - nv * m.mean()) < 4 * r.std() / np.sqrt(len(r))
    again = pattern_predictive_stats(fit, st, seed=11)
    assert np.array_equal(again["k__total"].values, pp["k__total"].values)


def _small_bai_fit(tmp_path, rhs: str, draws: int, checks: str = ""):
    """A function fitting (or reusing from ``tmp_path/out``) a beta-binomial
    ``k | trials(n) ~ <rhs>`` of a small simulated Bai study (one LLM, two variants)."""
    from biasstats.inference.from_spec import fit_spec
    from biasstats.ingest import ingest
    from biasstats.spec import load_spec

    p = tmp_path / "s.toml"
    p.write_text('[simulate]\npreset = "bai2024"\nseed = 2\ntrials = 4\nllms = ["GPT-4"]\n'
                 'variants = ["replication", "synonym"]\n'
                 f'[model]\nformula = "k | trials(n) ~ {rhs}"\n'
                 'family = "beta_binomial"\nunit = "trial"\n'
                 f'[fit]\nchains = 2\ndraws = {draws}\ntune = 200\n' + checks)
    spec = load_spec(p)
    table = ingest(spec).table
    return lambda: fit_spec(spec, table, tmp_path / "out")


def test_cached_fit_recomputes_the_same_log_likelihood_and_predictions(tmp_path):
    """posterior.nc of a sufficient-statistic fit holds the draws only; the fresh fit and a
    reload of it give identical log-likelihood and posterior predictive arrays."""
    fit_twice = _small_bai_fit(tmp_path, "1 + (1|stereotype) + (1|variant)", draws=100)
    fresh, again = fit_twice(), fit_twice()
    assert not fresh.cached and again.cached
    stored = xr.open_datatree(fresh.path)
    assert set(stored.children) >= {"posterior", "sample_stats"}
    assert not {"log_likelihood", "posterior_predictive"} & set(stored.children)
    for group in ("log_likelihood", "posterior_predictive", "observed_data"):
        a, b = fresh.fit.idata[group].to_dataset(), again.fit.idata[group].to_dataset()
        assert "k" in a.data_vars and "k" in b.data_vars, group
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values)


@pytest.mark.parametrize(("family", "aux", "scale"),
                         [("beta_binomial", "phi", 20.0), ("logitnormal_binomial", "sigma", 1.0)])
def test_prior_predictive_of_a_sufficient_statistic_model(family, aux, scale):
    """No observed variable (the likelihood is a Potential): the prior predictive is drawn from
    the prior's parameter draws through the family's ``draw``, every trial on its own. Truth:
    with ``~ 1``, Intercept ~ Normal(0, 2.5) and the auxiliary parameter ~ Exponential, the
    replicated rate of 600 trials follows the family's mean response over independent numpy
    draws of those priors (logistic(Intercept) for the beta-binomial, the logit-normal's E[p]
    for the other), whatever the data say."""
    from biasstats.checks.ppc import prior_predictive
    from biasstats.inference import Fit

    rng = np.random.default_rng(1)
    n = np.full(600, 16)
    df = pl.DataFrame({"k": rng.binomial(n, 0.8), "n": n})
    spec = prepare("k | trials(n) ~ 1", df, family)
    assert str(spec.priors["Intercept"]) == "Normal(0, 2.5)"
    assert str(spec.priors[aux]) == f"Exponential(scale={scale:g})"
    fit = Fit(idata=xr.DataTree.from_dict({}), spec=spec)
    assert "k" not in build_model(spec).named_vars  # no observed variable
    row = prior_predictive(fit, (), draws=4000, seed=0, prob=0.5).row(0, named=True)
    assert row["observed"] == pytest.approx(df["k"].sum() / n.sum())
    ic = rng.normal(0, 2.5, 200_000)
    mean = spec.family.mean(ic, {aux: rng.exponential(scale, ic.size)})
    lo, hi = np.percentile(mean, [25, 75])
    assert row["rep_mean"] == pytest.approx(mean.mean(), abs=0.02)
    assert row["rep_low"] == pytest.approx(lo, abs=0.03)
    assert row["rep_high"] == pytest.approx(hi, abs=0.03)


def test_a_posterior_refitted_longer_is_reused_from_the_cache(tmp_path):
    """A near miss is refitted with twice the draws (each attempt twice the last's); the stored
    posterior is then complete at the draws its last attempt sampled, and the next run reuses it instead of sampling both attempts
    again (it was refitted on every run)."""
    # an R-hat no chain reaches, and ESS thresholds any chain does: a near miss
    fit_again = _small_bai_fit(tmp_path, "1", draws=200, checks='[checks]\nrhat_max = 1.00001\n'
                               'ess_bulk_min = 20\ness_tail_min = 20\n')
    fresh = fit_again()
    attempts = fresh.fit.settings["attempts"]
    # each attempt doubles the last one's draws (an R-hat no chain reaches: all 3 attempts)
    assert [a["draws"] for a in attempts] == [200, 400, 800], attempts[0]["failures"]
    assert all(a["change"].startswith("a near miss") for a in attempts[1:])
    assert fresh.fit.idata["posterior"].sizes["draw"] == 800
    again = fit_again()
    assert again.cached and again.fit.idata["posterior"].sizes["draw"] == 800
    np.testing.assert_array_equal(again.fit.idata["posterior"]["Intercept"].values,
                                  fresh.fit.idata["posterior"]["Intercept"].values)
