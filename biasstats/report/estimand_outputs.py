"""The estimands' tables, figures, findings and methods sentence, in the outcome's own words.

Nothing here knows a study: nouns come from ``[effects] outcome_label`` (default: the
response column) and ``unit``, and the scale from the family table (probability for binomial
families, outcome units otherwise); for the outcome a registered study codes, the noun of its
rate comes from the study's vocabulary (:class:`biasstats.registry.Vocabulary`).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from biasstats.effects.estimands import PAIRS_UP_TO, RATING, RATING_DIFFERENCE, Estimands
from biasstats.effects.strata import split_term
from biasstats.names import safe_name
from biasstats.report import figures as figs
from biasstats.report.derived_outputs import derived_methods, derived_outputs
from biasstats.report.tables import hdi_label

MAX_FOREST_LEVELS = 40


@dataclass(frozen=True)
class Wording:
    """How to name the outcome and its scale in sentences, captions and axes."""

    label: str                 # "refusal", "reasoning tokens"
    unit: str | None           # "tokens"
    scale: str                 # "probability" | "mean"
    answers: str | None = None  # the study's plural noun for the outcome's 1s, if it has one

    @property
    def rate_axis(self) -> str:
        """The axis of an observed rate: ``Rate of refusal`` (or of the study's noun)."""
        return f"Rate of {self.answers or self.label}"

    @property
    def prob(self) -> bool:
        return self.scale == "probability"

    @property
    def noun(self) -> str:
        """``P(refusal)`` or ``mean reasoning tokens``."""
        return f"P({self.label})" if self.prob else f"mean {self.label}"

    @property
    def axis(self) -> str:
        if self.prob:
            return f"P({self.label})"
        return f"Mean {self.label}" + (f" ({self.unit})" if self.unit else "")

    @property
    def diff_unit(self) -> str:
        return "percentage points" if self.prob else (self.unit or "outcome units")

    def value(self, v: float) -> str:
        if self.prob:
            return f"{v:.2f}"
        return _num(v) + (f" {self.unit}" if self.unit else "")


def wording_for(spec, fit, study=None) -> Wording:
    """The outcome's words: ``[effects] outcome_label`` (default: the response column) and
    ``unit``; ``study`` (the :class:`biasstats.registry.Study` whose coding the outcome is, or
    None) may name the outcome's 1s (its ``Vocabulary.answers``)."""
    e = spec.content.effects
    label = e.outcome_label or fit.spec.formula.response
    vocab = study.vocabulary if study is not None else None
    return Wording(label=label, unit=e.unit,
                   scale=fit.spec.family.response_scale or "probability",
                   answers=vocab.answers.get(label) if vocab is not None else None)


def _num(v: float, d: int = 2) -> str:
    a = abs(v)
    d = 0 if a >= 100 else (1 if a >= 10 else d)
    s = f"{v:,.{d}f}"
    return (s.lstrip("-") if float(s.replace(",", "")) == 0 else s).replace("-", "−")


def _ci(r: dict, fmt=_num) -> str:
    return f"{fmt(r['hdi_low'])} to {fmt(r['hdi_high'])}"


def _mean_table(df: pl.DataFrame) -> pl.DataFrame:
    hdi = hdi_label(df)
    if "category" in df.columns:  # per response category: levels in order, categories within
        out = {"Level": df["level"], "Category": df["category"], "Probability": df["mean"],
               hdi: [f"[{_num(lo, 3)}, {_num(hi, 3)}]" for lo, hi in
                     zip(df["hdi_low"], df["hdi_high"], strict=True)]}
        if "n_obs" in df.columns:
            out["n"] = df["n_obs"].round(0).cast(pl.Int64)
        return pl.DataFrame(out).sort("Level", maintain_order=True)
    out = {"Level": df["level"], "Mean": df["mean"],
           hdi: [f"[{_num(lo, 3)}, {_num(hi, 3)}]" for lo, hi in
                 zip(df["hdi_low"], df["hdi_high"], strict=True)]}
    if "n_obs" in df.columns:
        out["n"] = df["n_obs"].round(0).cast(pl.Int64)
    return pl.DataFrame(out).sort("Mean", descending=True)


_SCALE_NAMES = {"difference": "Difference", "ratio": "Ratio", "odds_ratio": "Odds ratio",
                "slope": "Average slope", RATING_DIFFERENCE: "Difference (rating points)"}


def _contrast_table(df: pl.DataFrame, wording: Wording) -> pl.DataFrame:
    hdi = hdi_label(df)
    scale = [(_SCALE_NAMES.get(s, s) + (f" ({wording.diff_unit})"
                                        if s in ("difference", "slope") else ""))
             for s in df["scale"]]
    out = {
        "Contrast": df["level"],
        **({"Category": df["category"]} if "category" in df.columns else {}),
        "Scale": scale, "Mean": df["mean"],
        hdi: [f"[{_num(lo, 3)}, {_num(hi, 3)}]" for lo, hi in
              zip(df["hdi_low"], df["hdi_high"], strict=True)],
    }
    if "p_positive" in df.columns:
        out["P(> no effect)"] = df["p_positive"]
    if "verdict" in df.columns:
        out["ROPE"] = df["verdict"]
    return pl.DataFrame(out)


MAX_PANELS = 12  # strata drawn as small multiples, one panel each


def _within_table(df: pl.DataFrame, first: str) -> pl.DataFrame:
    """A within-strata table: the stratum, then the level (or contrast) and its summary."""
    hdi = hdi_label(df)
    out = {"Stratum": df["stratum"], first: df["level"],
           **({"Category": df["category"]} if "category" in df.columns else {}),
           **({"Scale": df["scale"]} if "scale" in df.columns and first == "Contrast" else {}),
           "Mean": df["mean"],
           hdi: [f"[{_num(lo, 3)}, {_num(hi, 3)}]" for lo, hi in
                 zip(df["hdi_low"], df["hdi_high"], strict=True)]}
    if "p_positive" in df.columns and first == "Contrast":
        out["P(> no effect)"] = df["p_positive"]
    if "n_obs" in df.columns:
        out["n"] = df["n_obs"].round(0).cast(pl.Int64)
    return pl.DataFrame(out)


def _within_figure(art, name: str, df: pl.DataFrame, term: str, xlabel: str, caption: str,
                   section: str, ref: float | None = None) -> None:
    """Small multiples at double-column width: one panel per stratum (wrapped in rows), the
    levels (or contrasts) as rows, one axis for all (a dashed line at ``ref``)."""
    if "category" in df.columns or not 1 <= df["stratum"].n_unique() <= MAX_PANELS:
        return
    art.figure(name, lambda: figs.strata_panels(df, xlabel=xlabel, ref=ref), caption,
               section=section)


def _within_terms(terms, table: pl.DataFrame):
    """(term, its rows, factor, strata) of each within-strata term with rows in ``table``."""
    for term in terms:
        f, s = split_term(term)
        if s is None or not table.height:
            continue
        df = table.filter(pl.col("term") == term)
        if df.height:
            yield term, df, f, s


def _within_outputs(art, est: Estimands, wording: Wording, pct: int, section: str) -> None:
    """Means, contrasts, their spread across strata, ranks and impact ratios within strata."""
    req = est.request
    for term, df, f, s in _within_terms(req.by, est.means):
        art.table(f"estimand_{safe_name(term)}", _within_table(df, "Level"),
                  f"{wording.axis} by {f} within each level of {s}: posterior mean of the "
                  f"average expected outcome over the observed rows, with {pct}% HDI and the "
                  "number of observations.", section=section, digits=3)
        _within_figure(art, f"estimand_{safe_name(term)}", df, term, wording.axis,
                       f"{wording.axis} by {f}, one panel per {s}: posterior mean and {pct}% "
                       "HDI.", section)
    for term, df, f, s in _within_terms(req.contrasts, est.contrasts):
        art.table(f"contrasts_{safe_name(term)}", _within_table(df, "Contrast"),
                  f"Contrasts of {wording.noun} between levels of {f} within each level of "
                  f"{s}, and their average over the levels of {s} ({pct}% HDI; a ratio's "
                  "average is geometric).", section=section, digits=3)
        diff = df.filter(pl.col("scale") == "difference")
        _within_figure(art, f"contrasts_{safe_name(term)}", diff, term,
                       f"Difference ({wording.diff_unit})",
                       f"The {f} contrast of {wording.noun}, one panel per {s} and their "
                       f"average: posterior mean and {pct}% HDI.", section, ref=0.0)
        het = est.heterogeneity.filter(pl.col("term") == term) \
            if est.heterogeneity.height else est.heterogeneity
        if het.height:
            art.table(f"heterogeneity_{safe_name(term)}", het.drop("term"),
                      f"How much the {f} contrast varies across the levels of {s}: the SD of "
                      f"the per-{s} differences ({pct}% HDI) and the posterior probability "
                      f"that it has the same sign for every {s}.", section=section, digits=3)
    for term, df, f, s in _within_terms(req.impact, est.impact):
        _impact_outputs(art, df, term, f, s, wording, pct, section)


def _impact_table(df: pl.DataFrame) -> pl.DataFrame:
    """The impact rows of one term: stratum, level (``"B / A"`` against the reference; a
    level against the best; ``min / max``), which ratio, its mean and HDI, P(< 0.8),
    P(best) / P(worst), and for the adverse-impact ratio which pair it is and whether the
    data settle that choice (``uncertain``: P(the chosen best is the best) or P(the chosen
    worst is the worst) below 0.9)."""
    hdi = hdi_label(df)
    pair = [f"{w} / {b}" if w is not None else None for w, b in
            zip(df["worst"] if "worst" in df.columns else [None] * df.height,
                df["best"] if "best" in df.columns else [None] * df.height, strict=True)]
    out = {"Stratum": df["stratum"], "Level": df["level"], "Estimand": df["estimand"],
           "Mean": df["mean"],
           hdi: [f"[{_num(lo, 3)}, {_num(hi, 3)}]" for lo, hi in
                 zip(df["hdi_low"], df["hdi_high"], strict=True)],
           "P(< 0.8)": df["p_below_four_fifths"],
           "P(best)": df["p_best"], "P(worst)": df["p_worst"], "Pair": pair}
    if "selection" in df.columns:
        out["Selection"] = df["selection"]
    return pl.DataFrame(out)


def _impact_outputs(art, df: pl.DataFrame, term: str, f: str, s: str, wording: Wording,
                    pct: int, section: str) -> None:
    """The impact table of one term, its honest caption and the adverse-impact forest."""
    air = df.filter(pl.col("estimand") == "adverse-impact ratio")
    unsure = air.filter(pl.col("selection") == "uncertain")["stratum"].to_list() \
        if "selection" in air.columns else []
    ref = df.filter(pl.col("estimand") == "ratio to reference")
    lead = (f"each level of {f}'s {wording.noun} over the reference level "
            f"{ref['reference'][0]}'s (a fixed comparison), " if ref.height else "")
    flag = (f" Where the data do not settle which levels are the highest and lowest "
            f"(Selection \"uncertain\": {', '.join(unsure)}), the ratios to the best and "
            "the adverse-impact ratio compare a pair chosen from noisy estimates and their "
            "intervals are too narrow; read them with P(best) and P(worst)"
            + (", and prefer the ratios to the reference." if ref.height else ".")
            if unsure else "")
    art.table(f"impact_{safe_name(term)}", _impact_table(df),
              f"Within each level of {s}: {lead}each level's over the level with the highest "
              f"posterior mean (ratio to best), and the adverse-impact ratio (the lowest "
              f"posterior mean over the highest; Pair), with {pct}% HDI, the posterior "
              "probability that the ratio is below 0.8 (the four-fifths rule) and that each "
              "level is the highest (P(best)) or the lowest (P(worst)) of its stratum; for "
              "the adverse-impact ratio, P(best) and P(worst) are those of the chosen pair."
              + flag, section=section, digits=3)
    if 1 <= air.height <= 40:
        art.figure(f"impact_{safe_name(term)}",
                   lambda a=air, t=term: figs.forest(
                       a.with_columns(pl.col("stratum").alias("level"),
                                      pl.lit("ratio").alias("scale")), t, "ratio",
                       label="Adverse-impact ratio"),
                   f"Adverse-impact ratio (lowest {f} rate over the highest) per {s}: "
                   f"posterior mean and {pct}% HDI; 0.8 is the four-fifths threshold."
                   + (f" The lowest and highest levels are uncertain in {', '.join(unsure)}."
                      if unsure else ""), section=section)
        if ref.height and 1 <= ref["stratum"].n_unique() <= MAX_PANELS:
            art.figure(f"impact_reference_{safe_name(term)}",
                       lambda r=ref: figs.strata_panels(r, xlabel="Ratio to the reference",
                                                        ref=1.0, log=True),
                       f"Each level of {f}'s {wording.noun} over {ref['reference'][0]}'s, one "
                       f"panel per {s}: posterior mean and {pct}% HDI (1 = the same rate).",
                       section=section)


def estimand_outputs(art, est: Estimands, wording: Wording, *, section: str = "estimands",
                     by: bool = True) -> None:
    """Tables (and forest plots) of every estimand, in the order the spec declared them.
    ``by=False`` (a study's own tables lead): no overall mean, and the ``by`` tables only of
    what the spec declared (the request holds no default ``by`` then)."""

    pct = int(round(est.request.prob * 100))
    means = est.means
    rating = means.filter(pl.col("scale") == RATING) if est.categories else means.clear()
    if rating.height:  # an ordinal outcome's expected rating, beside the category shares
        means = means.filter(pl.col("scale") != RATING)
    for term in (["overall"] if by else []) + [t for t in est.request.by if "|" not in t]:
        r = rating.filter(pl.col("term") == term).drop("category", strict=False)
        if r.height:
            noun = "overall" if term == "overall" else f"by {term}"
            art.table(f"estimand_{safe_name(term)}_rating", _mean_table(r),
                      f"Expected {wording.label} (the mean rating: each category's value "
                      f"weighted by its probability) {noun}, posterior mean and {pct}% HDI.",
                      section=section, digits=3)
        df = means.filter(pl.col("term") == term)
        if df.height == 0:
            continue
        noun = "overall" if term == "overall" else f"by {term}"
        art.table(f"estimand_{safe_name(term)}", _mean_table(df),
                  f"{wording.axis} {noun}: posterior mean of the average expected outcome "
                  f"over the observed rows of each level, with {pct}% HDI and the number "
                  "of observations.", section=section, digits=3)
        if est.categories and term != "overall" and 1 < df["level"].n_unique() <= \
                MAX_FOREST_LEVELS:
            art.figure(f"estimand_{safe_name(term)}",
                       lambda t=term: figs.category_panels(
                           means, t, xlabel=f"P({wording.label} = the panel's category)"),
                       f"{wording.axis} for each category (panels) by {term}: posterior "
                       f"mean and {pct}% HDI.", section=section)
        elif term != "overall" and 1 < df.height <= MAX_FOREST_LEVELS:
            art.figure(f"estimand_{safe_name(term)}",
                       lambda t=term: figs.forest(means, t, est.response_scale,
                                                  label=wording.axis),
                       f"{wording.axis} by {term}: posterior mean and {pct}% HDI.",
                       section=section)
    for f in dict.fromkeys(est.contrasts["term"].to_list()) if est.contrasts.height else []:
        if "|" in f:
            continue  # within strata: below
        df = est.contrasts.filter(pl.col("term") == f)
        kinds = ", ".join(_SCALE_NAMES.get(s, s).lower()
                          for s in dict.fromkeys(df["scale"].to_list()))
        art.table(f"contrasts_{safe_name(f)}", _contrast_table(df, wording),
                  f"Contrasts of {wording.noun} between levels of {f} ({kinds}; "
                  f"{pct}% HDI; P(> no effect) is the posterior probability that the first "
                  "level's value is larger).", section=section, digits=3)
    if est.slopes.height:
        art.table("slopes", _contrast_table(est.slopes.rename({"level": "_l"}).with_columns(
            (pl.col("term") + " (" + pl.col("_l") + ")").alias("level")), wording),
            f"Slopes: the average change of {wording.noun} per unit of each numeric predictor "
            "(over the observed rows), and each level's slope of varying-slope terms (b + r, on "
            f"the scale named; {pct}% HDI).", section=section, digits=3)
    _within_outputs(art, est, wording, pct, section)
    derived_outputs(art, est, section=section)
    if est.ranks.height and "stratum" in est.ranks.columns:
        term = est.ranks["term"][0]
        art.table(f"ranks_{safe_name(term)}", est.ranks.drop("term"),
                  f"Posterior ranks of the levels of {term} by {wording.noun} (1 = highest), "
                  f"within each stratum.", section=section, digits=3,
                  show=est.ranks.height <= 40)
    elif est.ranks.height:
        term = est.ranks["term"][0]
        art.figure(f"ranks_{safe_name(term)}",
                   lambda: figs.ranks(est.ranks, xlabel=f"Posterior rank (1 = highest "
                                                        f"{wording.noun})"),
                   f"Posterior rank of each level of {term} by {wording.noun} (1 = highest), "
                   f"mean and {pct}% interval; P(rank 1) at right.", section=section)
        art.table(f"ranks_{safe_name(term)}", est.ranks.drop("term"),
                  f"Posterior ranks of the levels of {term} by {wording.noun}.",
                  section=section, digits=3, show=est.ranks.height <= 30)


def estimand_methods(est: Estimands, wording: Wording) -> str:
    """The methods sentence for the estimands (what was averaged, what the reference is)."""
    req = est.request
    noun = (f"the probability of each category of {wording.label} "
            f"({', '.join(est.categories)})" if est.categories else wording.noun)
    parts = [f"Estimands are functions of the posterior draws: marginal means of "
             f"{noun} are the average posterior expected outcome over the observed "
             "rows with each level (each row or binomial cell weighted by its observations; "
             "marginaleffects' avg_predictions)"]
    if req.contrasts:
        ref = "; ".join(f"{f} against {lv}" for f, lv in req.reference.items())
        how = {"all": "all pairs of levels",
               "reference": "each level against the reference level (the first level unless "
                            "declared)",
               "auto": f"all pairs of levels for factors with up to {PAIRS_UP_TO} levels, "
                       "else each level against the first"}[req.pairs]
        scales = set(est.contrasts["scale"].to_list()) if est.contrasts.height else set()
        extra = (" and ratios of means" if "ratio" in scales else "") + (
            " and odds ratios" if "odds_ratio" in scales else "")
        parts.append(f"contrasts compare {how}" + (f" ({ref})" if ref else "")
                     + f", as differences in {wording.diff_unit}{extra}")
    if req.slopes:
        parts.append("slopes of numeric predictors are average marginal effects (a central "
                     "finite difference of the expected outcome, averaged over the observed "
                     "rows)")
    if derived_methods(est):
        parts.append(derived_methods(est))
    parts.append(f"we report posterior means with {int(round(req.prob * 100))}% "
                 "highest-density intervals" + (f" and a region of practical equivalence of "
                                                f"±{req.rope} for contrasts and slopes"
                                                if req.rope is not None else ""))
    return "; ".join(parts) + "."
