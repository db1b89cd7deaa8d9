"""Miller (2024), "Adding Error Bars to Evals": the overall mean of the judgement-level
outcome with naive and clustered standard errors, design effects and the minimum detectable
effect (80 % power, two-sided alpha = 0.05)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from biasstats.studies.bai2024.crosscheck import _cluster_expr, _require, _t_quantile


def minimum_detectable_effect(
    se: float, *, alpha: float = 0.05, power: float = 0.80, df: float | None = None
) -> float:
    """Smallest true effect a two-sided level-``alpha`` test detects with probability
    ``power``, given the estimate's standard error: (q(1 - alpha/2) + q(power)) * se, with
    normal quantiles (Miller 2024, eq. for the MDE; 2.80 * se at the defaults) or Student-t
    ones when ``df`` is given."""
    return (_t_quantile(1 - alpha / 2, df) + _t_quantile(power, df)) * se


def _clustered_se_of_mean(y: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """CRV1 standard error of a mean: sqrt(G/(G-1) * sum_g (sum_{i in g} (y_i - ybar))^2) / N.
    The same as statsmodels' OLS ``y ~ 1`` with ``cov_type="cluster"``; Miller's (2024)
    clustered SE without the G/(G-1) factor."""
    codes = np.unique(groups, return_inverse=True)[1]
    n_groups = int(codes.max()) + 1
    if n_groups < 2:
        return float("nan"), n_groups
    s = np.bincount(codes, weights=y - y.mean(), minlength=n_groups)
    return float(np.sqrt(n_groups / (n_groups - 1) * np.sum(s**2)) / len(y)), n_groups


def miller_summary(
    table: pl.DataFrame, *, alpha: float = 0.05, power: float = 0.80
) -> pl.DataFrame:
    """Miller (2024, "Adding Error Bars to Evals")-style overall estimate of the mean
    congruence (``ok`` judgements) with three standard errors, one row each (``se_type``):

    * ``naive``: sd / sqrt(N), as if the N judgements were independent;
    * ``cluster_trial``: CRV1 SE clustered by trial (the defensible one, see
      :func:`cluster_robust_glm`);
    * ``cluster_variant``: CRV1 SE clustered by prompt variant (only a few clusters: unreliable,
      shown as a sensitivity check).

    Columns: ``se_type, n, n_clusters, mean_cluster_size, estimate`` (P(congruent)),
    ``se, ci_low, ci_high, design_effect`` ((se / naive se)^2), ``icc`` (implied intra-cluster
    correlation, (deff - 1) / (mean cluster size - 1)), ``mde`` (minimum detectable deviation
    of P(congruent) from 0.5 at ``power``, two-sided ``alpha``), ``mde_two_sample`` (the MDE
    for a difference between two independent estimates with this SE, e.g. two LLMs: sqrt(2)
    times larger), ``bias_estimate, bias_se, bias_mde`` (the same on the 2p - 1 scale).
    Intervals and MDEs use the normal quantiles for ``naive`` and t(G - 1) for clustered SEs.
    The clustered SEs are CRV1, i.e. Miller's clustered SE times sqrt(G / (G - 1)), the same
    as statsmodels' ``cov_type="cluster"`` and :func:`cluster_robust_glm`; with G = 4 variants
    that factor alone is 1.15.
    """
    _require(table, ["congruent", "status"], "judgement table")
    ok = table.filter((pl.col("status") == "ok") & pl.col("congruent").is_not_null())
    y = ok["congruent"].to_numpy().astype(float)
    n = len(y)
    if n < 2:
        raise ValueError("miller_summary: need at least 2 ok judgements")
    p = float(y.mean())
    se_naive = float(y.std(ddof=1) / math.sqrt(n))
    rows = [("naive", n, se_naive, None)]
    for name, key in (("cluster_trial", "trial"), ("cluster_variant", "variant")):
        if key == "variant" and "variant" not in ok.columns:
            continue  # a table without prompt variants has no variant row
        clu = _cluster_expr(ok, key)
        groups = ok.select(clu.alias("g"))["g"].to_numpy()
        se, g = _clustered_se_of_mean(y, groups)
        rows.append((name, g, se, g - 1 if g >= 2 else None))
    out = []
    for name, g, se, df in rows:
        q = _t_quantile(1 - alpha / 2, df)
        deff = (se / se_naive) ** 2 if se_naive > 0 else float("nan")
        m = n / g
        mde = minimum_detectable_effect(se, alpha=alpha, power=power, df=df)
        out.append({
            "se_type": name, "n": n, "n_clusters": g, "mean_cluster_size": m, "estimate": p,
            "se": se, "ci_low": p - q * se, "ci_high": p + q * se, "design_effect": deff,
            "icc": (deff - 1) / (m - 1) if m > 1 else None, "mde": mde,
            "mde_two_sample": math.sqrt(2) * mde, "bias_estimate": 2 * p - 1,
            "bias_se": 2 * se, "bias_mde": 2 * mde,
        })  # fmt: skip
    return pl.DataFrame(out).with_columns(pl.col(pl.Float64).fill_nan(None))
