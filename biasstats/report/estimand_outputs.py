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
from biasstats.report.impact_outputs import impact_outputs
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


def _within_means(art, est: Estimands, wording: Wording, pct: int, section: str,
                  term: str) -> None:
    for _, df, f, s in _within_terms([term], est.means):
        art.table(f"estimand_{safe_name(term)}", _within_table(df, "Level"),
                  f"{wording.axis} by {f} within each level of {s}: posterior mean of the "
                  f"average expected outcome over the observed rows, with {pct}% HDI and the "
                  "number of observations.", section=section, digits=3)
        _within_figure(art, f"estimand_{safe_name(term)}", df, term, wording.axis,
                       f"{wording.axis} by {f}, one panel per {s}: posterior mean and {pct}% "
                       "HDI.", section)


def _within_contrasts(art, est: Estimands, wording: Wording, pct: int, section: str,
                      term: str) -> None:
    for _, df, f, s in _within_terms([term], est.contrasts):
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


def _impact(art, est: Estimands, wording: Wording, pct: int, section: str, term: str) -> None:
    for _, df, f, s in _within_terms([term], est.impact):
        impact_outputs(art, df, term, f, s, wording, pct, section)


def _means_of(est: Estimands) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(means, rating): an ordinal outcome's expected rating apart from the category shares."""
    means = est.means
    rating = means.filter(pl.col("scale") == RATING) if est.categories else means.clear()
    if rating.height:
        means = means.filter(pl.col("scale") != RATING)
    return means, rating


def _means(art, est: Estimands, wording: Wording, pct: int, section: str, term: str) -> None:
    """The marginal means of one ``by`` term (or ``overall``): table and forest."""
    if "|" in term:
        _within_means(art, est, wording, pct, section, term)
        return
    means, rating = _means_of(est)
    noun = "overall" if term == "overall" else f"by {term}"
    r = rating.filter(pl.col("term") == term).drop("category", strict=False)
    if r.height:
        art.table(f"estimand_{safe_name(term)}_rating", _mean_table(r),
                  f"Expected {wording.label} (the mean rating: each category's value "
                  f"weighted by its probability) {noun}, posterior mean and {pct}% HDI.",
                  section=section, digits=3)
    df = means.filter(pl.col("term") == term)
    if df.height == 0:
        return
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


def _contrasts(art, est: Estimands, wording: Wording, pct: int, section: str,
               f: str) -> None:
    """The contrasts of one term: pooled, or within strata (``"f | s"``)."""
    if "|" in f:
        _within_contrasts(art, est, wording, pct, section, f)
        return
    df = est.contrasts.filter(pl.col("term") == f) if est.contrasts.height else est.contrasts
    if not df.height:
        return
    kinds = ", ".join(_SCALE_NAMES.get(s, s).lower()
                      for s in dict.fromkeys(df["scale"].to_list()))
    art.table(f"contrasts_{safe_name(f)}", _contrast_table(df, wording),
              f"Contrasts of {wording.noun} between levels of {f} ({kinds}; "
              f"{pct}% HDI; P(> no effect) is the posterior probability that the first "
              "level's value is larger).", section=section, digits=3)


def _slopes(art, est: Estimands, wording: Wording, pct: int, section: str, _term) -> None:
    if est.slopes.height:
        art.table("slopes", _contrast_table(est.slopes.rename({"level": "_l"}).with_columns(
            (pl.col("term") + " (" + pl.col("_l") + ")").alias("level")), wording),
            f"Slopes: the average change of {wording.noun} per unit of each numeric predictor "
            "(over the observed rows), and each level's slope of varying-slope terms (b + r, on "
            f"the scale named; {pct}% HDI).", section=section, digits=3)


def _derived(art, est: Estimands, wording: Wording, pct: int, section: str, _term) -> None:
    derived_outputs(art, est, section=section)


def _ranks(art, est: Estimands, wording: Wording, pct: int, section: str, _term) -> None:
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


# each kind of estimand's outputs; slopes, derived estimands and ranks go out as one table
# each (at the first place the spec declares one of them), the others one table per term
_OUTPUTS = {"by": _means, "contrasts": _contrasts, "slopes": _slopes, "impact": _impact,
            "derived": _derived, "rank": _ranks}
_ONE_TABLE = {"slopes": "slopes", "level_slopes": "slopes", "derived": "derived",
              "rank": "rank"}


def output_order(est: Estimands, declared=None, by: bool = True) -> list[tuple[str, str]]:
    """``(key, term)`` in the order the report shows them: what ``declared`` lists (the
    spec's order, :func:`biasstats.spec.declared.declared_estimands`), then the overall mean
    (``by``), then what the formula implied and the spec did not declare, in the default
    order (means, contrasts, slopes, within-strata means, contrasts and impact, derived
    estimands, ranks). A kind shown as one table (slopes, derived, ranks) has term ``*``."""
    req = est.request
    pooled = list(dict.fromkeys(est.contrasts["term"].to_list())) if est.contrasts.height \
        else []
    default = ([("by", t) for t in req.by if "|" not in t]
               + [("contrasts", f) for f in pooled if "|" not in f] + [("slopes", "*")]
               + [("by", t) for t in req.by if "|" in t]
               + [("contrasts", t) for t in req.contrasts if "|" in t]
               + [("impact", t) for t in req.impact] + [("derived", "*"), ("rank", "*")])
    lead = [(_ONE_TABLE[k], "*") if k in _ONE_TABLE else (k, t) for k, t in declared or ()]
    return list(dict.fromkeys([*lead, *([("by", "overall")] if by else []), *default]))


def estimand_outputs(art, est: Estimands, wording: Wording, *, section: str = "estimands",
                     by: bool = True, declared=None) -> None:
    """Tables (and figures) of every estimand, in the order the spec declared them
    (``declared``: ``[(key, term), ...]``, see :func:`output_order`), then the rest.
    ``by=False`` (a study's own tables lead): no overall mean, and the ``by`` tables only of
    what the spec declared (the request holds no default ``by`` then)."""
    pct = int(round(est.request.prob * 100))
    for key, term in output_order(est, declared, by):
        _OUTPUTS[key](art, est, wording, pct, section, term)


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
