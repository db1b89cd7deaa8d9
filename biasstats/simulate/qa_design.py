"""A BBQ-shaped question-answering bias benchmark, simulated with known bias scores.

Each question template of a social category is asked in an *ambiguous* context (the correct
answer is "unknown") and a *disambiguated* one (the context says who; a model without bias picks
either target about equally often when the correct answers are balanced). The answer is one
of three categories: ``biased`` (the stereotyped target), ``anti`` (the other target) or
``unknown``. Answers come from a multinomial logit: per category x context cell, fixed logits
of ``biased`` and ``unknown`` against ``anti``, and per question template a shift of each
logit (normal, SD ``sd_question``), shared by the template's two contexts.

Truth, for this design (the quantity the model's marginal means estimate): per category x
context, the mean over the category's templates of each answer's probability, and from those
means the BBQ bias scores (Parrish et al., 2022):

* ``derived:bias_disambiguated:<category>:<context>`` = 2 P(biased) / (P(biased) + P(anti)) − 1
* ``derived:bias_ambiguous:<category>:<context>`` = P(biased) − P(anti) (BBQ's s_AMB =
  (1 − accuracy) s_DIS, since the correct answer of an ambiguous context is "unknown")
* ``derived:accuracy_ambiguous:<category>`` = P(unknown) in ambiguous contexts.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["ANSWERS", "QA_CELLS", "QA_DERIVED", "qa_bias"]

ANSWERS = ("anti", "biased", "unknown")  # the first is the reference of the logits

# category -> context -> (P(biased), P(anti), P(unknown)) of an average template
QA_CELLS = {
    "age": {"ambiguous": (0.30, 0.10, 0.60), "disambiguated": (0.56, 0.36, 0.08)},
    "gender": {"ambiguous": (0.22, 0.13, 0.65), "disambiguated": (0.50, 0.42, 0.08)},
    "race": {"ambiguous": (0.15, 0.13, 0.72), "disambiguated": (0.47, 0.45, 0.08)},
    "religion": {"ambiguous": (0.25, 0.10, 0.65), "disambiguated": (0.55, 0.38, 0.07)},
}


def _softmax(eta: np.ndarray) -> np.ndarray:
    e = np.exp(eta - eta.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def qa_bias(seed: int = 1, categories: tuple[str, ...] | None = None, questions: int = 6,
            reps: int = 40, sd_question: float = 0.3, cells: dict | None = None):
    """``answer ~ category*context + (1|question)`` (family categorical): ``questions``
    templates per category, each asked ``reps`` times in both contexts. Returns (table,
    truth); the table has ``category``, ``context``, ``question``, ``answer``."""
    rng = np.random.default_rng(seed)
    cells = cells or QA_CELLS
    cats = list(categories or cells)
    rows = {"category": [], "context": [], "question": [], "answer": []}
    truth: dict[str, float] = {}
    for cat in cats:
        r = rng.normal(0.0, sd_question, (questions, 2))  # shifts of biased, unknown logits
        for ctx, (pb, pa, pu) in cells[cat].items():
            base = np.log(np.array([pa, pb, pu]) / pa)  # logits against "anti"
            eta = base[None, :] + np.column_stack([np.zeros(questions), r])
            p = _softmax(eta)  # (questions, 3) in ANSWERS order
            for q in range(questions):
                k = rng.choice(3, reps, p=p[q])
                rows["category"] += [cat] * reps
                rows["context"] += [ctx] * reps
                rows["question"] += [f"{cat}-q{q + 1}"] * reps
                rows["answer"] += [ANSWERS[j] for j in k]
            ma, mb, mu = p.mean(axis=0)
            truth[f"derived:bias_disambiguated:{cat}:{ctx}"] = float(2 * mb / (mb + ma) - 1)
            truth[f"derived:bias_ambiguous:{cat}:{ctx}"] = float(mb - ma)
            if ctx == "ambiguous":
                truth[f"derived:accuracy_ambiguous:{cat}"] = float(mu)
    return pl.DataFrame(rows), truth


# the derived estimands whose truth qa_bias gives ([effects.derived] tables)
QA_DERIVED = {
    "bias_disambiguated": {"score": "qa_bias_disambiguated", "within": "category:context"},
    "bias_ambiguous": {"score": "qa_bias_ambiguous", "within": "category:context"},
    "accuracy_ambiguous": {"expr": "P('unknown', context='ambiguous')", "within": "category"},
}
