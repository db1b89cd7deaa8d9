"""Bai et al. (2024) report outputs for a congruence outcome: bias by LLM and stereotype
(forests, the LLM × stereotype heatmap, stereotypes grouped by category), the effects on the
probability, odds-ratio and D-score scales, LLM ranks and contrasts; and the cross-check
tables (the authors' t-tests of the D score, a cluster-robust GLM, Miller's error bars)."""

from __future__ import annotations

import polars as pl

from biasstats.effects.estimands import has_interaction
from biasstats.names import safe_name
from biasstats.registry import CrossCheck, CrossCheckTable
from biasstats.report import figures as figs
from biasstats.report.style import DOUBLE_COLUMN
from biasstats.report.tables import format_effects_table
from biasstats.studies.bai2024.crosscheck import crosscheck_table
from biasstats.studies.bai2024.figures import category_forest
from biasstats.studies.bai2024.miller import miller_summary


def report_outputs(art, fit, ing, spec, effects) -> None:
    """Figures and tables of the congruence effects (the ``report_outputs`` hook)."""
    if effects is not None:
        _effect_outputs(art, effects, ing.table, fit.spec)


def _category_map(table: pl.DataFrame) -> dict[str, str] | None:
    if not {"category", "stereotype"} <= set(table.columns):
        return None
    pairs = table.select("stereotype", "category").drop_nulls().unique()
    return dict(pairs.iter_rows()) if pairs.height else None


def _effect_outputs(art, effects, table, model=None):
    terms_present = set(effects.table["term"].unique().to_list())
    if ("llm:stereotype" in terms_present and model is not None
            and not has_interaction(model, ("llm", "stereotype"))):
        # an additive model's LLM x stereotype cells are sums of its LLM and stereotype
        # effects by construction: drawing them as findings would say more than it estimates
        terms_present.discard("llm:stereotype")
        art.skipped.append("figure heatmap_llm_stereotype and the llm:stereotype effects table "
                           "not drawn: the model has no llm:stereotype term, so its LLM x stereotype "
                           "cells would be additive by construction (add (1|llm:stereotype))")
    cat_of = _category_map(table)
    pct = int(effects.prob * 100)
    cap = (f"Posterior mean bias (2·P(congruent) − 1; 0 = unbiased) with {pct}% HDI; "
           f"shaded band: ROPE ±{effects.rope}.")
    e = effects.table
    if "llm" in terms_present:
        art.figure("forest_llm", lambda: figs.forest(e, "llm", "bias"), "Bias by LLM. " + cap)
    if "llm:stereotype" in terms_present:
        art.figure("heatmap_llm_stereotype",
                   lambda: figs.heatmap(e, "llm", "stereotype", "bias", category_of=cat_of),
                   "Bias by LLM × stereotype (posterior means).")
    if "stereotype" in terms_present and cat_of:
        art.figure("forest_stereotype",
                   lambda: category_forest(e, cat_of, "bias", width=DOUBLE_COLUMN / 2),
                   "Bias by stereotype, grouped by category. " + cap)
    elif "stereotype" in terms_present:
        art.figure("forest_stereotype", lambda: figs.forest(e, "stereotype", "bias"),
                   "Bias by stereotype. " + cap)
    if "category" in terms_present:
        art.figure("forest_category", lambda: figs.forest(e, "category", "bias"),
                   "Bias by category. " + cap)
    for term in ("overall", "llm", "category", "stereotype", "variant", "llm:stereotype"):
        if term in terms_present:
            show = term != "llm:stereotype"
            art.table(f"effects_{safe_name(term)}",
                      format_effects_table(e, term, "bias", p_label="P(bias > 0)"),
                      f"Bias by {term} (posterior mean, {pct}% HDI, P(bias > 0), ROPE verdict).",
                      show=show)
    long = e.filter(pl.col("scale").is_in(["probability", "odds_ratio", "d_score"]))
    art.table("effects_all_scales", long.select(
        "term", "level", "scale", "mean", "hdi_low", "hdi_high", "p_positive", "verdict"),
        "All effects on the probability, odds-ratio and D-score scales.", show=False, digits=3)
    if effects.ranks.height:
        art.figure("ranks_llm",
                   lambda: figs.ranks(effects.ranks, xlabel="Posterior rank (1 = most biased)"),
                   f"Posterior rank of each LLM (1 = most biased), mean and {pct}% interval.",
                   section="ranks")
        art.table("ranks_llm", effects.ranks, "Posterior ranks of the LLMs.", section="ranks")
        art.table("contrasts_llm", effects.contrasts.select(
            "level", "mean", "hdi_low", "hdi_high", "p_positive", "verdict"),
            "Pairwise differences in bias between LLMs (A − B).", section="ranks",
            show=effects.contrasts.height <= 12)
    if effects.variance.height:
        art.figure("variance_decomposition", lambda: figs.variance_decomposition(effects.variance),
                   "Share of latent (logit-scale) variance by component, with the logistic "
                   "residual π²/3.", section="variance")
        art.table("variance_decomposition", effects.variance, "Variance decomposition.",
                  section="variance", digits=3)


def crosscheck(table: pl.DataFrame, effects) -> CrossCheck | None:
    """The authors' t-tests, a cluster-robust GLM and the posterior side by side; with prompt
    variants, Miller's (2024) error bars (the ``crosschecks`` hook)."""
    if not {"valence", "congruent"} <= set(table.columns):
        return None
    tables = []
    if "variant" in table.columns:
        ms = miller_summary(table)
        keep = [c for c in ("se_type", "n", "n_clusters", "estimate", "se", "ci_low", "ci_high",
                            "design_effect", "mde") if c in ms.columns]
        tables.append(CrossCheckTable(
            "error_bars", ms.select(keep),
            "Overall P(congruent) with naive and cluster-robust standard errors (by trial "
            "and by prompt variant; Miller 2024), design effect and minimum detectable "
            "effect at 80% power. Few variant clusters make the variant-clustered SE "
            "itself noisy.", digits=4))
    cc = crosscheck_table(table, effects.table if effects is not None else None)
    tables.append(CrossCheckTable(
        "crosscheck", cc, "Frequentist cross-check: the authors' one-sample t-tests of the "
        "per-trial D score (failures scored 0, as they did), a logistic GLM with "
        "cluster-robust SEs by trial, and the posterior.", digits=3))
    note = ("t-test columns are on the authors' D scale; GLM and posterior columns on the bias "
            "scale 2p − 1. Compare signs and rankings, not digits.")
    return CrossCheck(tuple(tables), note=note)
