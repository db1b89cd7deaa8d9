"""Frequentist cross-checks of the hierarchical Bayesian fits.

Pure functions on polars DataFrames (no plotting, no I/O):

* :func:`authors_ttests`: the paper's own analysis (Bai et al. 2024): one-sample t-tests of
  the per-trial D score against 0, per level of a grouping, prompt variants pooled, no
  multiple-comparison correction, failed trials scored 0 as the authors did (optional).
* :func:`cluster_robust_glm`: a logit GLM of the judgement-level outcome ``congruent`` on one
  grouping factor with cluster-robust (CRV1) standard errors, clustered by prompt variant or by
  trial (Miller 2024, "Adding Error Bars to Evals").
* :func:`biasstats.studies.bai2024.miller.miller_summary`: the overall mean with naive and
  clustered standard errors, design effects and the minimum detectable effect.
* :func:`crosscheck_table`: t-tests, GLM and (optionally) posterior effects side by side.

Scales. ``t_mean`` is on the authors' D scale (-1 ... ~1, 0 = no association); the GLM works
with P(congruent) per judgement, reported either as a probability (0.5 = no association) or on
the *bias* scale 2p - 1 (0 = no association, the scale of the posterior effects). D and 2p - 1
agree in sign and are close for balanced assignments, but they are different estimands (D gives
-0.5, not 0, for a reply that puts every word with one group), so compare them by sign and
ranking, not digit for digit.

Groupings. ``by`` is a column name or a list of names; a list gives the levels of their
interaction, named ``group_term = "a:b"`` and ``level = "<a level>:<b level>"``. Every output
also has an ``overall`` row (``group_term = "overall"``, ``level = "all"``) unless
``overall=False``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats
from scipy.special import expit

from biasstats.studies.bai2024.dscore import TRIAL_KEYS, trial_level

OVERALL_TERM = "overall"
OVERALL_LEVEL = "all"
LEVEL_SEP = ":"

TTEST_COLUMNS = ("group_term", "level", "n", "t_mean", "t_ci_low", "t_ci_high", "t_stat", "df",
                 "p_value")  # fmt: skip
GLM_COLUMNS = ("group_term", "level", "glm_estimate", "glm_se_cluster", "glm_low", "glm_high",
               "n_clusters")  # fmt: skip
CROSSCHECK_COLUMNS = ("group_term", "level", "n", "t_mean", "t_ci_low", "t_ci_high", "t_stat",
                      "p_value", "glm_estimate", "glm_se_cluster", "posterior_mean",
                      "posterior_low", "posterior_high")  # fmt: skip
DEFAULT_TERMS = ("llm", "category", "stereotype")

By = str | Sequence[str]


# --------------------------------------------------------------------------- helpers


def _by_list(by: By | None) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    out = list(by)
    if not all(isinstance(b, str) for b in out):
        raise ValueError(f"by must be a column name or a list of names, got {by!r}")
    return out


def _require(df: pl.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; available: {df.columns}")


def _level_expr(by: list[str]) -> pl.Expr:
    """The level label of each row: the ``by`` values joined with ':' (null-safe)."""
    if not by:
        return pl.lit(OVERALL_LEVEL)
    parts = [pl.col(b).cast(pl.Utf8).fill_null("<null>") for b in by]
    return pl.concat_str(parts, separator=LEVEL_SEP) if len(parts) > 1 else parts[0]


def _term_name(by: list[str]) -> str:
    return LEVEL_SEP.join(by) if by else OVERALL_TERM


def _t_quantile(q: float, df: float | None) -> float:
    """Student-t quantile, or the normal one when ``df`` is None (or infinite)."""
    if df is None or not math.isfinite(df):
        return float(stats.norm.ppf(q))
    return float(stats.t.ppf(q, df))


def _groupings(by_cols: list[str], overall: bool) -> list[list[str]]:
    """The groupings of one call: the overall one (no columns) first, then ``by_cols``."""
    return ([[]] if overall else []) + ([by_cols] if by_cols else [])


def _union(groupings: Sequence[list[str]]) -> list[str]:
    """Every column of the groupings, once, in order of first appearance."""
    return list(dict.fromkeys(c for cols in groupings for c in cols))


# --------------------------------------------------------------------------- trial scores


def _with_group_role(table: pl.DataFrame) -> pl.DataFrame:
    """Add ``group_role`` from ``valence`` and ``congruent`` when the table lacks it (as the
    simulator's tables do): a congruent pairing puts the stigma group with negative words and
    the default group with positive ones, an incongruent pairing the reverse."""
    if "group_role" in table.columns:
        return table
    _require(table, ["valence", "congruent"], "trial D scores")
    neg = pl.col("valence") == "negative"
    con = pl.col("congruent") == 1
    role = (
        pl.when(pl.col("congruent").is_null() | pl.col("valence").is_null())
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(neg == con)
        .then(pl.lit("stigma"))
        .otherwise(pl.lit("default"))
    )
    return table.with_columns(group_role=role)


def trial_scores(trials: pl.DataFrame, by: By | None = None) -> pl.DataFrame:
    """One row per trial: :data:`TRIAL_KEYS`, the ``by`` columns, ``d_score`` (the authors' D
    from the trial's ok judgements) and ``failed`` (the trial has a refused or unparseable
    judgement: the authors score such a trial 0).

    ``trials`` is either the judgement-level canonical table (``excluded`` rows are dropped
    first: they are out of the analysis, not failures) or already the output of
    :func:`~biasstats.studies.bai2024.dscore.trial_level` (recognised by ``fully_parsed``).
    """
    by_cols = _by_list(by)
    if "fully_parsed" in trials.columns and "d_score" in trials.columns:
        tl = trials
        failed = ~pl.col("fully_parsed")
        if "refused" in tl.columns:
            failed = failed | pl.col("refused").fill_null(False)
        missing = [b for b in by_cols if b not in tl.columns]
        if missing:
            raise ValueError(f"trial table: missing grouping column(s) {missing}")
        keys = [k for k in TRIAL_KEYS if k in tl.columns]
        return tl.select(*keys, *[b for b in by_cols if b not in keys], "d_score",
                         failed.alias("failed"))  # fmt: skip
    _require(trials, [*TRIAL_KEYS, "status"], "judgement table")
    _require(trials, by_cols, "judgement table")
    table = trials.filter(pl.col("status") != "excluded")
    table = _with_group_role(table)
    if "valence" not in table.columns:
        raise ValueError("judgement table: no 'valence' column, so no D score can be computed "
                         "(authors_ttests needs IAT-style word judgements)")  # fmt: skip
    tl = trial_level(table)
    extra = [b for b in by_cols if b not in tl.columns]
    if extra:
        firsts = table.group_by(list(TRIAL_KEYS), maintain_order=True).agg(
            [pl.col(b).first() for b in extra]
        )
        tl = tl.join(firsts, on=list(TRIAL_KEYS), how="left", maintain_order="left")
    failed = ~pl.col("fully_parsed") | pl.col("refused").fill_null(False)
    return tl.select(*TRIAL_KEYS, *[b for b in by_cols if b not in TRIAL_KEYS], "d_score",
                     failed.alias("failed"))  # fmt: skip


# --------------------------------------------------------------------------- 1. t-tests


def authors_ttests(
    trials: pl.DataFrame,
    by: By | None,
    *,
    score_failures_as_zero: bool = True,
    overall: bool = True,
    conf_level: float = 0.95,
) -> pl.DataFrame:
    """The paper's analysis: a one-sample t-test of the per-trial D score against 0 for each
    level of ``by`` (prompt variants pooled, no multiple-comparison correction).

    ``trials``: the judgement-level canonical table (or :func:`trial_level` output).
    ``score_failures_as_zero``: True (the authors' pipeline) scores every trial with a refused
    or unparseable judgement as D = 0, i.e. "unbiased", which pulls means toward 0; False drops
    those trials instead. ``by``: a column, a list (interaction), or None for the overall row
    only.

    Returns ``group_term, level, n, t_mean, t_ci_low, t_ci_high, t_stat, df, p_value,
    n_failed`` (``n`` trials used; ``n_failed`` of the trials with a failure, scored 0 or
    dropped). Two-sided p-values; the CI is the ``conf_level`` Student-t interval of the mean.
    Levels with n < 2 get null statistics; a level with zero variance gets t = +-inf (p = 0)
    or null when its mean is 0 too.
    """
    return _ttests(trials, _groupings(_by_list(by), overall), score_failures_as_zero, conf_level)


def _ttests(trials: pl.DataFrame, groupings: list[list[str]], score_failures_as_zero: bool,
            conf_level: float) -> pl.DataFrame:
    """:func:`authors_ttests` for several groupings, from one derivation of the trial scores."""
    ts = trial_scores(trials, _union(groupings))
    if score_failures_as_zero:
        ts = ts.with_columns(
            d_score=pl.when(pl.col("failed")).then(0.0).otherwise(pl.col("d_score"))
        )
    else:
        ts = ts.with_columns(d_score=pl.when(pl.col("failed")).then(None)
                             .otherwise(pl.col("d_score")))  # fmt: skip
    if not groupings:
        raise ValueError("authors_ttests: nothing to test (by is empty and overall=False)")
    frames = []
    for cols in groupings:
        g = (
            ts.with_columns(level=_level_expr(cols))
            .group_by("level", maintain_order=True)
            .agg(
                n=pl.col("d_score").count(),
                t_mean=pl.col("d_score").mean(),
                sd=pl.col("d_score").std(ddof=1),
                n_failed=pl.col("failed").sum().cast(pl.Int64),
            )
            .with_columns(group_term=pl.lit(_term_name(cols)))
        )
        frames.append(g.sort("level") if cols else g)
    out = pl.concat(frames, how="vertical")
    return _t_stats(out, conf_level).select(*TTEST_COLUMNS, "n_failed")


def _t_stats(g: pl.DataFrame, conf_level: float) -> pl.DataFrame:
    """Add the t statistic, df, p-value and CI to per-level ``n, t_mean, sd``."""
    n = g["n"].to_numpy().astype(float)
    mean = g["t_mean"].to_numpy().astype(float)
    sd = g["sd"].fill_null(np.nan).to_numpy().astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / np.sqrt(n)
        t = mean / se
    df = n - 1
    valid = df >= 1
    dfv = np.where(valid, df, 1.0)
    p = np.where(valid, 2 * stats.t.sf(np.abs(t), dfv), np.nan)
    q = np.where(valid, stats.t.ppf(0.5 + conf_level / 2, dfv), np.nan)
    nan = np.full_like(mean, np.nan)
    return g.with_columns(
        t_ci_low=pl.Series(np.where(valid, mean - q * se, nan)),
        t_ci_high=pl.Series(np.where(valid, mean + q * se, nan)),
        t_stat=pl.Series(np.where(valid, t, nan)),
        df=pl.Series(np.where(valid, df, nan)).cast(pl.Int64, strict=False),
        p_value=pl.Series(p),
        n=pl.col("n").cast(pl.Int64),
    ).with_columns(pl.col("t_ci_low", "t_ci_high", "t_stat", "p_value").fill_nan(None))


# --------------------------------------------------------------------------- 2. GLM


def _cluster_expr(table: pl.DataFrame, cluster: str | Sequence[str] | None) -> pl.Expr | None:
    """The cluster label per row. ``"trial"``: the trial (the :data:`TRIAL_KEYS`, i.e. the
    source row of a one-file ingest); ``"variant"`` or any column(s): their values."""
    if cluster is None:
        return None
    if cluster == "trial":
        cols = list(TRIAL_KEYS) if all(k in table.columns for k in TRIAL_KEYS) else ["source_row"]
    else:
        cols = _by_list(cluster)
    _require(table, cols, f"cluster {cluster!r}")
    parts = [pl.col(c).cast(pl.Utf8).fill_null("<null>") for c in cols]
    return pl.concat_str(parts, separator="\x1f") if len(parts) > 1 else parts[0]


def _glm_cells(ok: pl.DataFrame, by_cols: list[str], clu: pl.Expr | None) -> pl.DataFrame:
    """Sufficient statistics of the single-factor logit GLM: per (level, cluster) cell the
    number of judgements ``n`` and of congruent ones ``k``."""
    keyed = ok.with_columns(
        level=_level_expr(by_cols),
        cluster=clu if clu is not None else pl.int_range(pl.len()).cast(pl.Utf8),
    )
    # sorted so that the fit (and its last digits) does not depend on group_by's order
    return (
        keyed.group_by("level", "cluster")
        .agg(n=pl.len().cast(pl.Int64), k=pl.col("congruent").sum())
        .sort("level", "cluster")
    )


def _fit_cell_means(cells: pl.DataFrame, clustered: bool) -> dict[str, tuple[float, float]]:
    """Fit ``congruent ~ 0 + level`` (logit, one coefficient per level) on binomial cell
    counts with statsmodels and return per level (logit estimate, its SE).

    With ``clustered``: the CRV1 sandwich with the small-sample factor
    G/(G-1) * (N-1)/(N-K) of statsmodels' ``cov_type="cluster"`` on the *judgement-level*
    fit (N judgements, K levels, G clusters). Two exact shortcuts keep this fast for
    hundreds of levels and ~10^6 judgements:

    * every (level, cluster) cell lies within one cluster, so the cell's binomial score is the
      sum of its judgements' scores and the meat is unchanged;
    * the cell-means design is block diagonal (the Hessian is diagonal), so the diagonal of
      the joint sandwich is, level by level, the intercept-only fit on that level's cells.

    So each level is fitted alone (uncorrected CRV1) and its variance multiplied by the joint
    factor above. Without ``clustered``: the model-based (binomial) SE.
    """
    # heavy libraries load on first use, not on import
    import statsmodels.api as sm

    family = sm.families.Binomial()
    n_obs = float(cells["n"].sum())
    n_par = cells["level"].n_unique()
    factor = float("nan")
    if clustered:
        n_groups = cells["cluster"].n_unique()
        if n_groups >= 2:
            factor = n_groups / (n_groups - 1) * (n_obs - 1) / (n_obs - n_par)
    out = {}
    for (level,), part in cells.group_by(["level"], maintain_order=True):
        k = part["k"].to_numpy().astype(float)
        n = part["n"].to_numpy().astype(float)
        model = sm.GLM(np.column_stack([k, n - k]), np.ones((part.height, 1)), family=family)
        if clustered:
            groups = np.unique(part["cluster"].to_numpy(), return_inverse=True)[1]
            res = model.fit(cov_type="cluster", cov_kwds={"groups": groups,
                                                         "use_correction": False})  # fmt: skip
            se = math.sqrt(float(res.cov_params()[0, 0]) * factor)
        else:
            res = model.fit()
            se = float(res.bse[0])
        out[level] = (float(res.params[0]), se)
    return out


def cluster_robust_glm(
    table: pl.DataFrame,
    by: By | None,
    cluster: str | Sequence[str] | None = "variant",
    *,
    scale: Literal["probability", "bias"] = "probability",
    ci: Literal["logit", "delta"] = "logit",
    conf_level: float = 0.95,
    overall: bool = True,
) -> pl.DataFrame:
    """Logit GLM (statsmodels, Binomial) of the judgement-level ``congruent`` on the ``by``
    factor (``ok`` rows only; one coefficient per level), with cluster-robust standard errors.

    For a single factor the MLE of P(congruent | level) is the level's observed proportion;
    the point of the fit is the uncertainty: judgements of one trial share the reply and
    trials of one prompt variant share the wording, so the naive binomial SE is too small.

    ``cluster``:

    * ``"variant"`` (default; Miller 2024 clusters by the unit the prompts were drawn from):
      robust to any correlation within a prompt variant, but with the 4 variants of the Bai
      design there are only G = 4 clusters, the CRV1 variance has G - 1 = 3 degrees of freedom
      and is itself very noisy and typically biased downward (Cameron & Miller 2015: fewer
      than ~20-50 clusters is unreliable). Intervals here use the t(G - 1) quantile, which is
      wide but still does not guarantee coverage. Use it as a stress test ("how much does the
      answer move with the wording?"), not as the headline SE.
    * ``"trial"``: clusters by trial (the source row; the :data:`TRIAL_KEYS`). The defensible
      default for inference on these data: thousands of clusters, and it captures the
      dependence the design certainly has (the 8-16 judgements of one reply). It treats the
      variants as fixed conditions, so it does not generalise to new wordings; for that, the
      hierarchical model's variant term is the right tool.
    * any column name(s), or ``None`` for model-based (iid binomial) standard errors.

    ``scale``: ``"probability"`` reports P(congruent) (0.5 = none); ``"bias"`` reports
    2p - 1 (0 = none). ``ci``: ``"logit"`` (default) is the Wald interval on the logit scale
    mapped to the output scale (stays inside [0, 1]); ``"delta"`` is estimate +- q * SE on the
    output scale. ``glm_se_cluster`` is always the delta-method SE on the output scale
    (p(1-p) * SE(logit), doubled on the bias scale). q is the t(G - 1) quantile for clustered
    SEs (G = clusters in the fit) and the normal one otherwise.

    A level whose judgements are all congruent or all incongruent has no finite logit MLE: it
    is left out of the fit and reported with its proportion, SE 0 and null CI.

    Returns ``group_term, level, glm_estimate, glm_se_cluster, glm_low, glm_high, n_clusters``
    (clusters with data in that level) then ``n`` (judgements), ``scale``, ``cluster``.
    """
    if scale not in ("probability", "bias"):
        raise ValueError(f"scale must be 'probability' or 'bias', got {scale!r}")
    if ci not in ("logit", "delta"):
        raise ValueError(f"ci must be 'logit' or 'delta', got {ci!r}")
    return _glm(table, _groupings(_by_list(by), overall), cluster, scale, ci, conf_level)


def _glm(table: pl.DataFrame, groupings: list[list[str]], cluster, scale, ci,
         conf_level: float) -> pl.DataFrame:
    """:func:`cluster_robust_glm` for several groupings, filtering the table once."""
    _require(table, ["congruent", "status", *_union(groupings)], "judgement table")
    ok = table.filter((pl.col("status") == "ok") & pl.col("congruent").is_not_null())
    if ok.height == 0:
        raise ValueError("judgement table: no ok judgements with a congruent outcome")
    clu = _cluster_expr(ok, cluster)
    cluster_name = (
        "none"
        if cluster is None
        else (cluster if isinstance(cluster, str) else LEVEL_SEP.join(cluster))
    )
    if not groupings:
        raise ValueError("cluster_robust_glm: nothing to fit (by is empty and overall=False)")
    frames = [_glm_one(ok, cols, clu, scale, ci, conf_level) for cols in groupings]
    return pl.concat(frames, how="vertical").with_columns(
        scale=pl.lit(scale), cluster=pl.lit(cluster_name)
    )


def _glm_one(ok, by_cols, clu, scale, ci, conf_level) -> pl.DataFrame:
    cells = _glm_cells(ok, by_cols, clu)
    per_level = (
        cells.group_by("level")
        .agg(n=pl.col("n").sum(), k=pl.col("k").sum(), n_clusters=pl.col("cluster").n_unique())
        .sort("level")
    )
    interior = per_level.filter((pl.col("k") > 0) & (pl.col("k") < pl.col("n")))["level"]
    fit_cells = cells.filter(pl.col("level").is_in(interior.to_list()))
    fitted = _fit_cell_means(fit_cells, clu is not None) if fit_cells.height else {}
    g = fit_cells["cluster"].n_unique() if fit_cells.height else 0
    df = (g - 1) if (clu is not None and g >= 2) else None
    q = _t_quantile(0.5 + conf_level / 2, df)
    rows = []
    for r in per_level.iter_rows(named=True):
        p_obs = r["k"] / r["n"]
        if r["level"] in fitted:
            eta, se_eta = fitted[r["level"]]
            p = float(expit(eta))
            se_p = p * (1 - p) * se_eta
            if ci == "logit":
                lo, hi = (float(expit(eta + s * q * se_eta)) for s in (-1, 1))
            else:
                lo, hi = p - q * se_p, p + q * se_p
        else:
            p, se_p, lo, hi = p_obs, 0.0, None, None
        if scale == "bias":
            p, se_p = 2 * p - 1, 2 * se_p
            lo, hi = (None if x is None else 2 * x - 1 for x in (lo, hi))
        rows.append({
            "group_term": _term_name(by_cols), "level": r["level"], "glm_estimate": p,
            "glm_se_cluster": se_p, "glm_low": lo, "glm_high": hi,
            "n_clusters": r["n_clusters"], "n": r["n"],
        })  # fmt: skip
    schema = {"group_term": pl.Utf8, "level": pl.Utf8, "glm_estimate": pl.Float64,
              "glm_se_cluster": pl.Float64, "glm_low": pl.Float64, "glm_high": pl.Float64,
              "n_clusters": pl.Int64, "n": pl.Int64}  # fmt: skip
    out = pl.DataFrame(rows, schema=schema, orient="row")
    return out.with_columns(pl.col("glm_se_cluster", "glm_low", "glm_high").fill_nan(None))


# --------------------------------------------------------------------------- 4. the table


_INTERCEPT_TERMS = {"overall", "intercept", "(intercept)", "1"}


def _posterior_long(posterior_effects: pl.DataFrame) -> pl.DataFrame:
    """Posterior effects at scale "bias", keyed for joining. A nested term ("category:
    stereotype") also answers for its last factor ("stereotype", level = last part)."""
    _require(posterior_effects, ["term", "level", "scale", "mean", "hdi_low", "hdi_high"],
             "posterior_effects")  # fmt: skip
    pe = posterior_effects.filter(pl.col("scale") == "bias").select(
        group_term=pl.col("term").cast(pl.Utf8),
        level=pl.col("level").cast(pl.Utf8),
        posterior_mean=pl.col("mean").cast(pl.Float64),
        posterior_low=pl.col("hdi_low").cast(pl.Float64),
        posterior_high=pl.col("hdi_high").cast(pl.Float64),
    )
    is_int = pl.col("group_term").str.to_lowercase().is_in(list(_INTERCEPT_TERMS))
    pe = pe.with_columns(
        group_term=pl.when(is_int).then(pl.lit(OVERALL_TERM)).otherwise(pl.col("group_term")),
        level=pl.when(is_int).then(pl.lit(OVERALL_LEVEL)).otherwise(pl.col("level")),
    )
    nested = pe.filter(pl.col("group_term").str.contains(LEVEL_SEP, literal=True)).with_columns(
        group_term=pl.col("group_term").str.split(LEVEL_SEP).list.last(),
        level=pl.col("level").str.split(LEVEL_SEP).list.last(),
    )
    both = pl.concat([pe, nested])
    # exact names win over the nested-term alias
    return both.unique(["group_term", "level"], keep="first", maintain_order=True)


def crosscheck_table(
    trials_or_table: pl.DataFrame,
    posterior_effects: pl.DataFrame | None = None,
    *,
    by: Sequence[By] | None = None,
    cluster: str | Sequence[str] | None = "trial",
    score_failures_as_zero: bool = True,
) -> pl.DataFrame:
    """The report's cross-check table: the authors' t-tests, the cluster-robust GLM and the
    posterior, one row per (group_term, level), ``overall`` first.

    ``trials_or_table``: the judgement-level table (t-tests and GLM), or a trial-level table
    (:func:`trial_level` output: t-tests only, GLM columns null). ``by``: the groupings, each a
    column or a list (default: those of ``llm, category, stereotype`` present).
    ``cluster``: the GLM clustering (default ``"trial"``, see :func:`cluster_robust_glm`).
    ``posterior_effects``: a long table ``term, level, scale, mean, hdi_low, hdi_high``; rows
    with scale "bias" fill ``posterior_mean/low/high`` (an intercept term named Intercept /
    overall fills the overall row; a nested term "category:stereotype" with level "a:b" also
    fills stereotype level "b"); null when not given or not matched.

    Scales: ``t_*`` are on the D scale, ``glm_estimate`` and ``glm_se_cluster`` on the bias
    scale 2p - 1 (the posterior's scale). Columns: :data:`CROSSCHECK_COLUMNS`.
    """
    df = trials_or_table
    is_trial_level = "fully_parsed" in df.columns
    if by is None:
        by = [t for t in DEFAULT_TERMS if t in df.columns]
    terms = [_by_list(b) for b in by]
    if not all(terms):
        raise ValueError("authors_ttests: nothing to test (by is empty and overall=False)")
    # the overall row, then each term: one trial-score derivation and one GLM filtering for all
    groupings = [[], *terms]
    tt = _ttests(df, groupings, score_failures_as_zero, 0.95).select(*TTEST_COLUMNS)
    keys = ["group_term", "level"]
    if is_trial_level:
        out = tt.with_columns(glm_estimate=pl.lit(None, pl.Float64),
                              glm_se_cluster=pl.lit(None, pl.Float64))  # fmt: skip
    else:
        glm = _glm(df, groupings, cluster, "bias", "logit", 0.95).select(
            *keys, "glm_estimate", "glm_se_cluster")
        out = tt.join(glm, on=keys, how="full", coalesce=True, maintain_order="left")
    if posterior_effects is not None:
        out = out.join(_posterior_long(posterior_effects), on=keys, how="left",
                       maintain_order="left")  # fmt: skip
    else:
        out = out.with_columns(
            [
                pl.lit(None, pl.Float64).alias(c)
                for c in ("posterior_mean", "posterior_low", "posterior_high")
            ]  # fmt: skip
        )
    return out.select(*CROSSCHECK_COLUMNS)
