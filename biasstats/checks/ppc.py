"""Posterior predictive checks grouped by a data column, and PSIS-LOO.

For collapsed binomial cells the replicated data are the posterior predictive counts per cell;
the rate of a level is Σk / Σn over its cells, computed per draw. The Bayesian p-value is
P(replicated rate ≥ observed rate) (values near 0 or 1 flag misfit).
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from biasstats.checks.compare import loo_fit
from biasstats.checks.psis import CHUNK, logsumexp
from biasstats.inference import Fit
from biasstats.inference.predict import category_names, level_labels, stack_draws
from biasstats.inference.sample import pattern_predictive
from biasstats.model.graph import build_model
from biasstats.simulate.from_formula import prior_draw


def grouped_ppc(fit, term: str | tuple[str, ...], prob: float = 0.95) -> pl.DataFrame:
    """Observed vs replicated rate (mean; share of each response category for ordinal and
    categorical families) per level of ``term`` (a column or columns of the cells)."""
    resp = fit.spec.formula.response
    pp = fit.idata["posterior_predictive"].to_dataset()
    if f"{resp}__total" in pp:  # weighted patterns: replicated sums over each pattern's trials
        resp = f"{resp}__total"
    rep = stack_draws(pp[resp])  # (S, cells)
    if fit.spec.family.has_categories:
        return grouped_shares(fit.spec, rep, term, prob)
    return grouped_rates(fit.spec, rep, term, prob, rep_is_total=resp.endswith("__total"))


def grouped_shares(spec, rep: np.ndarray, term, prob: float = 0.95) -> pl.DataFrame:
    """Observed vs replicated share of each response category per level of ``term``
    (``()`` = overall), from replicated category codes (S, rows): one row per level and
    category (``category`` column), with the Bayesian p-value P(replicated >= observed)."""
    found = level_labels(spec.cells, term)
    if found is None:
        raise KeyError(f"term {term!r} is not in the model's cells")
    key, labels = found
    cats = category_names(spec)
    y = np.asarray(spec.y, dtype=np.int64)
    rep = np.asarray(rep, dtype=np.int64)
    levels, inv = np.unique(labels.astype(str), return_inverse=True)
    L, K = len(levels), len(cats)
    lo_q, hi_q = 100 * (1 - prob) / 2, 100 * (1 + prob) / 2
    nn = np.bincount(inv, minlength=L)
    obs = np.bincount(inv * K + y, minlength=L * K).reshape(L, K) / nn[:, None]
    r = share_draws(rep, inv, L, K) / np.repeat(nn, K)[:, None]  # (L*K, S): one row a column
    lo, hi = np.percentile(r, [lo_q, hi_q], axis=1)
    p = (r >= obs.ravel()[:, None]).mean(axis=1)
    return pl.DataFrame({
        "group_term": [":".join(key) or "overall"] * (L * K),
        "level": np.repeat(levels.astype(str), K).tolist(), "category": cats * L,
        "observed": obs.ravel(), "rep_mean": r.mean(axis=1), "rep_low": lo, "rep_high": hi,
        "p_value": p, "n": np.repeat(nn, K).astype(float)})


def share_draws(rep: np.ndarray, inv: np.ndarray, L: int, K: int,
                block: int = 1 << 22) -> np.ndarray:
    """(L*K, S) how many of each level's rows (``inv``: each row's level of L) hold each of
    the K response codes in every replicated draw of ``rep`` (S, rows): one pass of
    ``bincount`` over blocks of draws, where a loop over levels and categories would read the
    draws L*K times."""
    S, n = rep.shape
    out = np.empty((S, L * K), dtype=np.float64)
    step = max(1, block // max(n, 1))
    for s0 in range(0, S, step):
        part = rep[s0:s0 + step]
        m = part.shape[0]
        code = (inv * K)[None, :] + part + (np.arange(m) * (L * K))[:, None]
        out[s0:s0 + m] = np.bincount(code.ravel(), minlength=m * L * K).reshape(m, L * K)
    return np.ascontiguousarray(out.T)


def count_frequencies(fit, prob: float = 0.95, max_bins: int = 40) -> pl.DataFrame:
    """Observed vs replicated frequency of each count value (a rootogram's table).

    One row per count value 0, 1, …, up to the largest observed or typical replicated count;
    when that range is wider than ``max_bins`` values, per bin of equal width (the last bin
    open to the right): ``low``, ``high`` (inclusive bounds), ``observed`` (number of
    observations), ``rep_mean``, ``rep_low``, ``rep_high`` (replicated numbers, central
    ``prob`` interval)."""
    resp = fit.spec.formula.response
    rep = stack_draws(fit.idata["posterior_predictive"].to_dataset()[resp]).astype(np.int64)
    y = np.asarray(fit.spec.y, dtype=np.int64)
    top = int(max(y.max(), np.percentile(rep, 99.5)))
    width = max(1, int(np.ceil((top + 1) / max_bins)))
    edges = np.arange(0, top + 1, width)                      # each bin's lower bound
    nb = len(edges)
    obs = np.bincount(np.minimum(y // width, nb - 1), minlength=nb)
    binned = np.minimum(rep // width, nb - 1)
    S = rep.shape[0]
    freq = np.bincount((binned + nb * np.arange(S)[:, None]).ravel(),
                       minlength=S * nb).reshape(S, nb)
    lo, hi = np.percentile(freq, [100 * (1 - prob) / 2, 100 * (1 + prob) / 2], axis=0)
    high = np.append(edges[1:] - 1, max(top, int(rep.max()))).astype(np.int64)
    return pl.DataFrame({"low": edges.astype(np.int64), "high": high,
                         "observed": obs.astype(float), "rep_mean": freq.mean(axis=0),
                         "rep_low": lo, "rep_high": hi})


def prior_predictive(fit, term: str | tuple[str, ...] = (), draws: int = 500, seed: int = 0,
                     prob: float = 0.95) -> pl.DataFrame:
    """Prior predictive check: the rates the priors alone imply, against the observed ones.

    ``term=()`` gives the overall rate only. A prior that puts most of its mass on rates no
    study could show (all 0 or all 1) is too wide; one that excludes the observed rate, too
    narrow."""


    model = fit.model if fit.model is not None else build_model(fit.spec)
    resp = fit.spec.formula.response
    with warnings.catch_warnings():  # a sufficient-statistic model's Potential is its
        warnings.filterwarnings("ignore", message="The effect of Potentials")  # likelihood
        tree = prior_draw(model, seed, draws=draws)
    if resp in model.named_vars:
        rep = stack_draws(tree["prior_predictive"].to_dataset()[resp])
        total = False
    else:  # no observed variable: replicate every trial from the prior parameter draws
        rep, total = _replicate_from(fit, tree["prior"].to_dataset(), seed), True
    if fit.spec.family.has_categories:
        return grouped_shares(fit.spec, rep, term, prob)
    return grouped_rates(fit.spec, rep, term, prob, rep_is_total=total)


def _replicate_from(fit, draws, seed: int) -> np.ndarray:
    """(S, patterns) replicated totals over each pattern's trials (every trial drawn on its
    own, so a replicated rate has the study's own number of trials), with the family's
    ``draw`` from parameter draws (e.g. the prior's) of a model without an observed
    variable."""
    # heavy libraries load on first use, not on import
    import xarray as xr


    pseudo = Fit(idata=xr.DataTree.from_dict({"posterior": draws}), spec=fit.spec)
    total = pattern_predictive(pseudo, seed)[f"{fit.spec.formula.response}__total"]
    return stack_draws(total)


def grouped_rates(spec, rep: np.ndarray, term, prob: float = 0.95,
                  rep_is_total: bool = False) -> pl.DataFrame:
    """Observed vs replicated (S, cells) rates per level of ``term`` (``()`` = overall).

    With weighted patterns the observed counts are multiplied by the pattern counts; ``rep``
    is then the replicated total over each pattern's trials (``rep_is_total``), or one
    replicated trial per pattern, weighted likewise (prior predictive)."""
    found = level_labels(spec.cells, term)
    if found is None:
        raise KeyError(f"term {term!r} is not in the model's cells")
    key, labels = found
    y = np.asarray(spec.y, dtype=float)
    n = np.asarray(spec.trials, dtype=float) if spec.trials is not None else np.ones_like(y)
    w = spec.row_weights()
    y, n = y * w, n * w
    if not rep_is_total and spec.weights is not None:
        rep = rep * w
    levels, inv = np.unique(labels, return_inverse=True)
    rows = []
    lo_q, hi_q = 100 * (1 - prob) / 2, 100 * (1 + prob) / 2
    for i, lv in enumerate(levels):
        sel = inv == i
        nn = n[sel].sum()
        obs = y[sel].sum() / nn
        r = rep[:, sel].sum(axis=1) / nn
        lo, hi = np.percentile(r, [lo_q, hi_q])
        rows.append({
            "group_term": ":".join(key) or "overall", "level": str(lv), "observed": float(obs),
            "rep_mean": float(r.mean()), "rep_low": float(lo), "rep_high": float(hi),
            "p_value": float((r >= obs).mean()), "n": float(nn),
        })
    return pl.DataFrame(rows)


def loo_summary(fit) -> dict:
    """PSIS-LOO (per cell for collapsed models, per trial for pattern-weighted ones) with
    Pareto-k counts; pointwise values kept."""

    res = loo_fit(fit)
    k = np.asarray(res.pareto_k).ravel()
    good = float(getattr(res, "good_k", 0.7))
    return {
        "elpd_loo": float(res.elpd),
        "se": float(res.se),
        "p_loo": float(res.p),
        "n_points": int(k.size),
        "pareto_k_max": float(np.nanmax(k)) if k.size else float("nan"),
        "pareto_k_bad": int(np.sum(k > good)),
        "pareto_k_threshold": good,
        "pointwise_elpd": np.asarray(res.elpd_i).ravel(),
        "pareto_k": k,
        "elpd_data": res,  # the PSIS result itself, so LOO-PIT can reuse its smoothed weights
    }


def loo_pit(fit, seed: int = 0, elpd_data=None) -> np.ndarray:
    """LOO-PIT values (randomised for discrete outcomes): uniform when the model is calibrated.

    ``elpd_data``: a pointwise PSIS-LOO result of the same fit (``loo_summary(fit)["elpd_data"]``)
    whose smoothed weights are reused instead of smoothing again; the PIT is then computed
    here over blocks of observations (``arviz_stats.loo_pit``'s formula and random stream:
    P(y_rep < y) + u P(y_rep = y), u ~ U(0, 1) from ``default_rng(seed)``; its array-API
    logsumexp took 1.5-3 s on 2,000 observations x 4,000 draws)."""
    resp = fit.spec.formula.response
    lw = getattr(elpd_data, "log_weights", None) if elpd_data is not None else None
    if lw is None:
        # heavy libraries load on first use, not on import
        import arviz_stats as azs

        pit = azs.loo_pit(fit.idata, var_names=[resp], random_state=seed)
        da = pit[resp] if hasattr(pit, "data_vars") else pit
        return np.asarray(da.values).ravel()
    pred = fit.idata["posterior_predictive"].to_dataset()[resp]
    obs = fit.idata["observed_data"].to_dataset()[resp]
    obs_dims = [d for d in pred.dims if d not in ("chain", "draw")]
    S = pred.sizes["chain"] * pred.sizes["draw"]
    rep = np.asarray(pred.transpose(*obs_dims, "chain", "draw").values,
                     dtype=float).reshape(-1, S)
    lwv = np.asarray(lw.values, dtype=float).reshape(-1, S)  # (observations, chain x draw)
    y = np.asarray(obs.values, dtype=float).ravel()
    lower, at = np.empty(len(y)), np.empty(len(y))
    step = max(1, CHUNK // S)
    for i in range(0, len(y), step):
        w = lwv[i:i + step]
        w = np.exp(w - logsumexp(w, axis=1, keepdims=True))
        r, yy = rep[i:i + step], y[i:i + step, None]
        lower[i:i + step] = np.sum(w * (r < yy), axis=1)
        at[i:i + step] = np.sum(w * (r == yy), axis=1)
    return lower + np.random.default_rng(seed).uniform(size=lower.shape) * at


def band_level(n: int, x: np.ndarray, prob: float, n_sim: int, rng) -> float:
    """gamma of the simultaneous band: the ``prob`` quantile over ``n_sim`` uniform samples
    of size n of 1 - 2 min over the points x of min(P(X <= F), P(X >= F)), X ~ Bin(n, x),
    F = n ECDF(x). The uniform ECDF at the points is one multinomial draw (the counts of n
    uniforms between consecutive points). P(X >= 0) = 1: arviz-stats 1.3 computes it as
    1 - bdtr(-1) = NaN, and Python's min then drops the upper tail of every simulation with
    an empty first bin (a third of them at any n), which narrows its band."""
    # heavy libraries load on first use, not on import
    from scipy.special import bdtr

    widths = np.diff(np.concatenate(([0.0], x, [1.0])))
    counts = np.cumsum(rng.multinomial(n, widths, size=n_sim)[:, :-1], axis=1)
    # the binomial CDF once per point over the range of counts the simulations reach there
    # (they crowd within a few SDs of n x: ~10x fewer calls than simulations x points; bdtr,
    # an incomplete beta, was 2 x n_sim x points calls, 4-9 s a report)
    lo = np.maximum(counts.min(axis=0) - 1, 0)
    size = counts.max(axis=0) - lo + 1
    start = np.concatenate(([0], np.cumsum(size)[:-1]))
    point = np.repeat(np.arange(len(x)), size)
    table = bdtr(np.arange(size.sum()) - start[point] + lo[point], n, x[point])
    at = start - lo  # table index of count k at point j: at[j] + k
    cdf = np.concatenate([table[at + counts], table[at + np.maximum(counts - 1, 0)]])
    lower_tail = cdf[:n_sim].min(axis=1)
    upper_tail = np.where(counts > 0, 1 - cdf[n_sim:], 1.0).min(axis=1)
    return float(np.quantile(1 - 2 * np.minimum(lower_tail, upper_tail), prob))


def pit_ecdf_band(pit, prob: float = 0.95, *, points: int = 1000, n_sim: int = 1000,
                  seed: int = 214):
    """The ECDF of PIT values and its simultaneous ``prob`` band under uniformity
    (Säilynoja, Bürkner & Vehtari 2022, simulation method) at ``points`` equally spaced
    evaluation points (all n - 1 when there are fewer values, as bayesplot's K).

    Returns (x, ecdf, lower, upper), each with the end points 0 and 1 added. The band is the
    pointwise binomial band at the level :func:`band_level` finds (arviz-stats'
    ``ecdf_utils.ecdf_pit`` construction, which sorts n uniforms per simulation and evaluates
    at all n - 1 points: 10 s for 33,600 trials; here the cost is set by the points)."""
    # heavy libraries load on first use, not on import
    from arviz_stats.ecdf_utils import get_pointwise_confidence_band

    vals = np.sort(np.asarray(pit, dtype=float).ravel())
    n = len(vals)
    K = min(n - 1, points)
    x = np.arange(1, K + 1) / (K + 1)
    ecdf = np.searchsorted(vals, x, side="right") / n
    gamma = band_level(n, x, prob, n_sim, np.random.default_rng(seed))
    lo, hi = get_pointwise_confidence_band(gamma, n, x)
    return tuple(np.concatenate(([0.0], a, [1.0])) for a in (x, ecdf, lo, hi))
