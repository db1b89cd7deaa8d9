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

from biasstats.checks import psis
from biasstats.errors import SpecError
from biasstats.inference.predict import linear_predictor


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
        ll = fit.spec.family.loglik(k, linear_predictor(fit)[:, idx], {}, n)
        post = fit.idata["posterior"].to_dataset()
        C, D = post.sizes["chain"], post.sizes["draw"]
        da = xr.DataArray(ll.reshape(C, D, -1), dims=("chain", "draw", "cell"), name=resp)
        out[name] = xr.DataTree.from_dict({
            "posterior": post, "log_likelihood": xr.Dataset({resp: da})})
    return out


def compare_models(fits: dict, data: pl.DataFrame) -> pl.DataFrame:
    """LOO comparison table (best first): elpd, se, p_loo, elpd_diff, dse, weight, warning.

    Uncollapsed models of the same observations are compared on their own log-likelihoods;
    pattern-weighted ones (beta-binomial) per trial (:func:`loo_patterns`); collapsed binomial
    ones on common fine cells (see :func:`common_loglik`)."""
    # heavy libraries load on first use, not on import
    import arviz_stats as azs


    specs = [f.spec for f in fits.values()]
    if (all(s.weights is not None for s in specs) and len({s.n_rows for s in specs}) == 1
            and len({s.formula.response for s in specs}) == 1):
        # pattern-weighted models of the same rows: per-trial LOO in data-row order
        trees = {k: loo_fit(f) for k, f in fits.items()}
        return loo_table(azs.compare(trees, round_to="none"))
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
    return loo_table(azs.compare(trees, round_to="none"))


def loo_table(table) -> pl.DataFrame:
    df = table.reset_index(names="model")
    keep = [c for c in ("model", "rank", "elpd", "p", "elpd_diff", "weight", "se", "dse",
                        "warning") if c in df.columns]
    return pl.from_pandas(df[keep].astype({"warning": bool} if "warning" in keep else {}))


def loo_patterns(idata, weights, row_pattern=None, var_name: str | None = None):
    """PSIS-LOO of a model whose observations are weighted patterns (see
    :func:`biasstats.model.build.prepare`), equal to per-trial PSIS-LOO.

    Each pattern's ``log_likelihood`` is that of *one* of its ``weights[p]`` identical trials.
    Leaving out one trial of a pattern gives the same importance ratios (and so the same
    smoothed weights, elpd and Pareto k) for each of its trials, so PSIS is run once per
    pattern and the totals weight it by the counts: elpd = sum_p w_p elpd_p, p_loo likewise,
    and se = sqrt(N var(elpd_t)) over the N trials (the per-trial formula, ddof 1).
    Pointwise values (``elpd_i``, ``pareto_k``) are returned per trial, in data-row order when
    ``row_pattern`` (pattern index of each row) is given; the smoothed ``log_weights`` stay per
    pattern (for LOO-PIT)."""
    # heavy libraries load on first use, not on import
    from arviz_stats.utils import ELPDDataLOO


    res = psis.loo(idata, var_name=var_name)
    w = np.asarray(weights, dtype=float)
    e = np.asarray(res.elpd_i.values, dtype=float).ravel()
    name = res.elpd_i.name
    p_i = res.p_loo_i  # lppd_i - elpd_i, per pattern
    n = float(w.sum())
    elpd = float(np.sum(w * e))
    mean = elpd / n
    se = float(np.sqrt(n * np.sum(w * (e - mean) ** 2) / (n - 1))) if n > 1 else 0.0
    expand = (np.asarray(row_pattern) if row_pattern is not None
              else np.repeat(np.arange(len(w)), w.astype(int)))
    pk = np.asarray(res.pareto_k.values).ravel()
    out = ELPDDataLOO(
        elpd=elpd, se=se, p=float(np.sum(w * p_i)), n_samples=res.n_samples,
        n_data_points=int(round(n)), scale=res.scale, warning=res.warning, good_k=res.good_k,
        elpd_i=xr.DataArray(e[expand], dims=("trial",), name=name),
        pareto_k=xr.DataArray(pk[expand], dims=("trial",), name=name),
        log_weights=res.log_weights)
    out.pattern_pareto_k = res.pareto_k  # per pattern, beside log_weights (for LOO-PIT)
    return out


def loo_fit(fit, pointwise: bool = True):
    """PSIS-LOO of a Fit: per trial for pattern-weighted models (:func:`loo_patterns`), else
    per observation/cell (:func:`biasstats.checks.psis.loo`, ArviZ's algorithm over all
    observations at once; ``pointwise`` is kept for the callers' sake, the pointwise values
    are always returned)."""

    spec = fit.spec

    def compute():
        if spec is not None and getattr(spec, "weights", None) is not None:
            return loo_patterns(fit.idata, spec.weights, spec.row_pattern,
                                var_name=spec.formula.response)
        return psis.loo(fit.idata)

    return fit.memo("loo", compute) if hasattr(fit, "memo") else compute()


def trial_level_loo(fits: dict, trials: pl.DataFrame) -> dict:
    """Per-trial PSIS-LOO of models of the same trials, whatever their unit, so a trial-level
    (beta-binomial) model and a judgement-level (bernoulli) one can be compared.

    ``trials``: one row per trial with ``k`` (congruent) of ``n`` judgements and the
    covariates (``model_data`` with ``unit = "trial"``). A judgement-level bernoulli/binomial
    model's density of a trial is binomial(k | n, p_cell) — the product of its judgements'
    Bernoulli densities times C(n, k), the same constant the beta-binomial includes — and a
    beta-binomial model's is its own pattern log-likelihood. Trials are grouped into common
    patterns (all models' covariates and (n, k)) and :func:`loo_patterns` weights them, which
    is exact per-trial PSIS-LOO. Returns ``{name: ELPDDataLOO}`` (for ``azs.compare``)."""
    names = list(fits)
    covs = {name: [c for c in _covars(f) if c not in (f.spec.formula.response,
                                                      f.spec.formula.trials)]
            for name, f in fits.items()}
    keys = sorted({c for cs in covs.values() for c in cs})
    pats = (trials.filter(pl.col("n") > 0)
            .group_by([*keys, "k", "n"], maintain_order=True).agg(pl.len().alias("_w")))
    k = pats["k"].to_numpy().astype(float)
    n = pats["n"].to_numpy().astype(float)
    out = {}
    for name in names:
        fit, spec = fits[name], fits[name].spec
        cov = covs[name]
        post = fit.idata["posterior"].to_dataset()
        C, D = post.sizes["chain"], post.sizes["draw"]
        if spec.weights is not None:  # its own per-trial pattern log-likelihood
            resp, tr = spec.formula.response, spec.formula.trials
            own = spec.cells.select([*cov, resp, tr]).rename({resp: "k", tr: "n"})
            own = own.with_columns(pl.col("k").cast(pl.Int64), pl.col("n").cast(pl.Int64))
            idx = (pats.select([*cov, "k", "n"])
                   .with_columns(pl.col("k").cast(pl.Int64), pl.col("n").cast(pl.Int64))
                   .join(own.with_row_index("_p"), on=[*cov, "k", "n"], how="left",
                         maintain_order="left")["_p"].to_numpy())
            ll_all = fit.idata["log_likelihood"].to_dataset()[resp].values
            ll = np.asarray(ll_all, dtype=float).reshape(C * D, -1)[:, idx]
        elif spec.family.collapse:  # binomial cells: a trial's k of n is binomial at p_cell
            coarse = spec.cells.select(cov).with_row_index("_c")
            idx = (pats.select(cov).join(coarse, on=cov, how="left", maintain_order="left")
                   ["_c"].to_numpy() if cov else np.zeros(pats.height, dtype=int))
            ll = spec.family.loglik(k, linear_predictor(fit)[:, idx], {}, n)
        else:
            raise ValueError(f"model '{name}': family '{spec.family.name}' has no per-trial "
                             "density here")
        tree = xr.DataTree.from_dict({
            "posterior": post,
            "log_likelihood": xr.Dataset({"k": (("chain", "draw", "pattern"),
                                                ll.reshape(C, D, -1))})})
        out[name] = loo_patterns(tree, pats["_w"].to_numpy(), var_name="k")
    return out
