"""PSIS-LOO model comparison on a common set of observations, for every family.

Uncollapsed models (every family but bernoulli / binomial) have one likelihood term per row;
models of the same rows (the same response values in the same order: formulas whose extra
covariates drop no further rows for missing values) are compared on those pointwise
log-likelihoods directly.

Collapsed binomial models have one likelihood term per *cell* (unique covariate pattern), and
two formulas with different covariates collapse differently: their per-cell log-likelihoods
are not comparable. Here every model is evaluated on the same *fine* cells — the patterns of
the union of all compared models' covariates — using the binomial log-likelihood of each fine
cell at its model's predicted probability. A fine cell belongs to exactly one cell of every
coarser model, so this is exact, and LOO then leaves out the same fine cell in every model.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import xarray as xr
from scipy.special import expit
from scipy.stats import binom

from biasstats.effects.predict import linear_predictor


def _covars(fit) -> list[str]:
    return [c for c in fit.spec.cells.columns if c not in ("k", "n")]


def common_loglik(fits: dict, data: pl.DataFrame) -> dict[str, xr.DataTree]:
    """Per-fine-cell log-likelihood DataTrees (chain, draw, cell) for each fit."""
    names = list(fits)
    resp = fits[names[0]].spec.formula.response
    keys = sorted({c for f in fits.values() for c in _covars(f)})
    trials = fits[names[0]].spec.formula.trials
    rows = data.select([*keys, resp, *([trials] if trials else [])]).drop_nulls()
    n_expr = (pl.col(trials).cast(pl.Float64).sum() if trials else pl.len()).alias("_n")
    fine = (rows.group_by(keys, maintain_order=True)
            .agg(pl.col(resp).cast(pl.Float64).sum().alias("_k"), n_expr)
            if keys else rows.select(pl.col(resp).cast(pl.Float64).sum().alias("_k"), n_expr))
    k = fine["_k"].to_numpy()
    n = fine["_n"].to_numpy().astype(float)
    out = {}
    for name, fit in fits.items():
        cov = _covars(fit)
        coarse = fit.spec.cells.select(cov).with_row_index("_c")
        idx = (fine.select(cov).join(coarse, on=cov, how="left", maintain_order="left")["_c"]
               .to_numpy() if cov else np.zeros(fine.height, dtype=int))
        p = np.clip(expit(linear_predictor(fit)), 1e-12, 1 - 1e-12)[:, idx]
        ll = binom.logpmf(k, n, p)
        post = fit.idata["posterior"].to_dataset()
        C, D = post.sizes["chain"], post.sizes["draw"]
        da = xr.DataArray(ll.reshape(C, D, -1), dims=("chain", "draw", "cell"), name=resp)
        out[name] = xr.DataTree.from_dict({
            "posterior": post, "log_likelihood": xr.Dataset({resp: da})})
    return out


def compare_models(fits: dict, data: pl.DataFrame) -> pl.DataFrame:
    """LOO comparison table (best first): elpd, se, p_loo, elpd_diff, dse, weight, warning.

    Uncollapsed models of the same observations are compared on their own log-likelihoods;
    collapsed binomial ones on common fine cells (see :func:`common_loglik`)."""
    import arviz_stats as azs

    from biasstats.errors import SpecError

    specs = [f.spec for f in fits.values()]
    same_obs = (not any(s.collapsed for s in specs)
                and len({s.formula.response for s in specs}) == 1
                and all(len(s.y) == len(specs[0].y) and np.array_equal(s.y, specs[0].y)
                        for s in specs))
    if same_obs:
        trees = {k: f.idata for k, f in fits.items()}
    elif all(s.collapsed for s in specs):
        trees = common_loglik(fits, data)
    else:
        n = ", ".join(f"'{k}' {len(f.spec.y)}" for k, f in fits.items())
        raise SpecError("[checks] alternatives: the models are not fitted to the same rows "
                        f"(rows used: {n}); give formulas whose columns have no missing values "
                        "in different rows")
    table = azs.compare(trees, round_to="none")
    df = table.reset_index(names="model")
    keep = [c for c in ("model", "rank", "elpd", "p", "elpd_diff", "weight", "se", "dse",
                        "warning") if c in df.columns]
    return pl.from_pandas(df[keep].astype({"warning": bool} if "warning" in keep else {}))
