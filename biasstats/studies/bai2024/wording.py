"""Bai et al. (2024)'s words for its congruence coding (its :class:`biasstats.registry.Vocabulary`):
the verdicts ("biased", "practically unbiased"), the nouns of a congruence rate, the findings
sentences of its bias effects (bias on −1…+1, ROPE verdicts, the most biased LLM, how much is
prompt wording) and the methods sentence on them. The generic stages word every other outcome
from ``[effects] outcome_label`` and ``unit``."""

from __future__ import annotations

import polars as pl

__all__ = ["ANSWERS", "OUTCOME", "UNUSABLE", "VERDICT_WORDS", "findings", "methods"]

# the generic ROPE verdicts in the study's words (its effects tables hold these)
VERDICT_WORDS = {"outside ROPE": "biased", "inside ROPE": "practically unbiased",
                 "undecided": "undecided"}
OUTCOME = "congruence coding"
ANSWERS = {"congruent": "stereotype-congruent answers"}
UNUSABLE = ("{failed:,} of {read:,} trials were not fully usable (refused, unparseable or "
            "excluded); they are modelled as missing, not scored as unbiased.")


def _fmt(x: float, d: int = 2) -> str:
    return f"{x:.{d}f}".replace("-", "−")


def methods(effects) -> str:
    """The methods sentence on the bias effects (scales, HDI, ROPE on the bias scale)."""
    return (
        f"Effect sizes are posterior distributions of the average predicted probability of "
        f"a stereotype-congruent answer over the observed design, also reported as bias "
        f"(2p − 1), log-odds and odds; we report posterior means with {int(effects.prob * 100)}% "
        f"highest-density intervals and a region of practical equivalence of ±{effects.rope} "
        f"on the bias scale."
    )


def findings(effects) -> list[str]:
    """Sentences for a congruence outcome (bias on −1…+1, ROPE verdicts)."""
    out = []
    t = effects.table
    pct = int(effects.prob * 100)

    def get(term, scale="bias"):
        return t.filter((pl.col("term") == term) & (pl.col("scale") == scale))

    ov = get("overall", "probability")
    if ov.height:
        r = ov.row(0, named=True)
        out.append(
            f"Overall, the probability of a stereotype-congruent answer is {_fmt(r['mean'])} "
            f"({pct}% HDI {_fmt(r['hdi_low'])}–{_fmt(r['hdi_high'])}; 0.5 = unbiased); "
            f"P(bias > 0) = {r['p_positive']:.3f}."
        )
    llm = get("llm")
    if llm.height > 1:
        top = llm.sort("mean", descending=True).row(0, named=True)
        low = llm.sort("mean").row(0, named=True)
        out.append(
            f"Across {llm.height} LLMs, bias ranges from {_fmt(low['mean'])} ({low['level']}) to "
            f"{_fmt(top['mean'])} ({top['level']}) on the −1…+1 scale."
        )
        if effects.ranks.height:
            best = effects.ranks.sort("p_best", descending=True).row(0, named=True)
            out.append(f"{best['llm']} is the most biased LLM with posterior probability "
                       f"{best['p_best']:.2f}.")
    out += _verdict_counts(get, effects.rope)
    vd = effects.variance
    if vd.height:
        rows = {r["component"]: r for r in vd.iter_rows(named=True)}
        if "variant" in rows:
            r = rows["variant"]
            out.append(
                f"Prompt wording (variant) accounts for {100 * r['share_mean']:.1f}% of the "
                f"latent variance ({pct}% interval {100 * r['share_low']:.1f}–"
                f"{100 * r['share_high']:.1f}%)."
            )
    return out


def _verdict_counts(get, rope: float) -> list[str]:
    out = []
    for term, noun in (("stereotype", "stereotypes"), ("category", "categories"),
                       ("llm", "LLMs")):
        e = get(term)
        if e.height > 1:
            counts = {v: int((e["verdict"] == v).sum()) for v in
                      ("biased", "practically unbiased", "undecided")}
            strongest = ", ".join(e.sort("mean", descending=True)["level"].head(3).to_list())
            out.append(
                f"Of {e.height} {noun}, {counts['biased']} are biased (HDI outside the ROPE "
                f"±{rope}), {counts['practically unbiased']} practically unbiased and "
                f"{counts['undecided']} undecided; strongest: {strongest}."
            )
    return out
