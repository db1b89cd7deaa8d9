"""Post-processing in proportion to what is shown (issue 22 item 4): estimands over covariate
cells, not rows; the category PPC in one pass; LOO-PIT from the stored PSIS weights; the
PIT band's binomial CDF once per point and count. Each against its definition."""

import numpy as np
import pytest


def test_covariate_cells_group_rows_with_the_same_design(categorical_fit, negative_binomial_fit):
    """A trial-level fit's rows with the same covariates are one cell: every row of a cell has
    the representative's design (fixed row, level index, varying design), and there are as
    many cells as distinct (condition, prompt) pairs."""
    from biasstats.inference.predict import covariate_cells

    for fit, df in (categorical_fit[:2], negative_binomial_fit[:2]):
        spec = fit.spec
        rows, cell = covariate_cells(fit)
        assert len(rows) == df.select(["condition", "prompt"]).unique().height < len(spec.y)
        assert (cell[rows] == np.arange(len(rows))).all()
        rep = rows[cell]  # each row's representative
        assert np.array_equal(spec.X[rep], spec.X)
        for g in spec.groups:
            assert np.array_equal(g.idx[rep], g.idx) and np.array_equal(g.Z[rep], g.Z)


def _row_level(monkeypatch, fit, **kw):
    """The estimands computed over every row (covariate cells switched off)."""
    import biasstats.inference.predict as predict
    from biasstats.effects.estimands import estimands

    monkeypatch.setattr(predict, "covariate_cells", lambda fit: None)
    try:
        return estimands(fit, **kw)
    finally:
        monkeypatch.undo()


def test_estimands_over_cells_equal_the_average_over_rows(monkeypatch, categorical_fit,
                                                          negative_binomial_fit):
    """Means and contrasts over covariate cells (weighted by their rows) equal the same
    estimands averaged over every row, draw by draw (to rounding), and the per-level mean
    equals its closed form: the average over the level's rows of the family's expected
    response, computed here from the draws."""
    from biasstats.effects.estimands import estimands
    from biasstats.inference.predict import aux_of, expected_response, linear_predictor

    for fit, df in (categorical_fit[:2], negative_binomial_fit[:2]):
        kw = dict(by=["condition"], contrasts=["condition"], prob=0.9)
        cells = estimands(fit, **kw)
        rows = _row_level(monkeypatch, fit, **kw)
        for key, (levels, d) in rows.draws.items():
            lv, dc = cells.draws[key]
            assert list(lv) == list(levels)
            np.testing.assert_allclose(dc, d, rtol=1e-12, atol=1e-11)  # differences: rounding
        mu = expected_response(fit.spec.family, linear_predictor(fit, multi=True),
                               aux_of(fit))  # (S, rows, C)
        cond = df["condition"].to_numpy().astype(str)
        for key, (levels, d) in cells.draws.items():
            if not key.startswith("mean:condition:"):
                continue
            c = 0 if mu.shape[2] == 1 else fit.spec.response_levels.index(key.split(":")[-1])
            for j, lv in enumerate(levels):
                want = mu[:, cond == lv, c].mean(axis=1)
                np.testing.assert_allclose(d[:, j], want, rtol=1e-12)


def test_category_ppc_equals_the_share_of_each_category_per_level(categorical_fit):
    """The one-pass (bincount) PPC gives exactly the shares a loop over levels and categories
    gives: observed share, replicated mean, interval, p-value and n."""
    from biasstats.checks.ppc import grouped_shares
    from biasstats.inference.predict import category_names

    fit, df, _ = categorical_fit
    spec = fit.spec
    rng = np.random.default_rng(3)
    K = len(spec.response_levels)
    rep = rng.integers(0, K, (257, len(spec.y)))
    got = grouped_shares(spec, rep, ("prompt",), prob=0.9)
    y = np.asarray(spec.y, dtype=np.int64)
    labels = spec.cells["prompt"].cast(str).to_numpy()
    i = 0
    for lv in np.unique(labels):
        sel = labels == lv
        for k, cat in enumerate(category_names(spec)):
            r = (rep[:, sel] == k).mean(axis=1)
            obs = (y[sel] == k).mean()
            row = got.row(i, named=True)
            assert (row["level"], row["category"]) == (lv, cat)
            assert row["observed"] == obs and row["rep_mean"] == r.mean()
            q = [100 * (1 - 0.9) / 2, 100 * (1 + 0.9) / 2]
            assert (row["rep_low"], row["rep_high"]) == tuple(np.percentile(r, q))
            assert row["p_value"] == (r >= obs).mean() and row["n"] == sel.sum()
            i += 1
    assert got.height == i


@pytest.mark.parametrize("n", [7, 40, 3000])
def test_band_level_is_the_same_as_with_every_cdf_call(n):
    """The band level from the binomial CDF tabulated once per point and count equals the
    level from one CDF call per simulation and point (the same random stream)."""
    from scipy.special import bdtr

    from biasstats.checks.ppc import band_level

    K = min(n - 1, 300)
    x = np.arange(1, K + 1) / (K + 1)
    rng = np.random.default_rng(11)
    widths = np.diff(np.concatenate(([0.0], x, [1.0])))
    counts = np.cumsum(rng.multinomial(n, widths, size=500)[:, :-1], axis=1)
    lower = bdtr(counts, n, x).min(axis=1)
    upper = np.where(counts > 0, 1 - bdtr(np.maximum(counts - 1, 0), n, x), 1.0).min(axis=1)
    want = float(np.quantile(1 - 2 * np.minimum(lower, upper), 0.95))
    assert band_level(n, x, 0.95, 500, np.random.default_rng(11)) == want


def test_loo_pit_from_stored_weights_equals_arviz(negative_binomial_fit):
    """LOO-PIT from the fit's own PSIS weights equals arviz_stats.loo_pit given the same
    weights and random state (a count outcome: randomised at ties)."""
    import arviz_stats as azs
    import xarray as xr

    from biasstats.checks.ppc import loo_pit, loo_summary

    fit = negative_binomial_fit[0]
    res = loo_summary(fit)["elpd_data"]
    resp = fit.spec.formula.response
    want = azs.loo_pit(fit.idata, var_names=[resp], random_state=4,
                       log_weights=xr.Dataset({resp: res.log_weights}),
                       pareto_k=xr.Dataset({resp: res.pareto_k}))[resp].values.ravel()
    got = loo_pit(fit, seed=4, elpd_data=res)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert not np.allclose(got, loo_pit(fit, seed=5, elpd_data=res))  # the seed matters
