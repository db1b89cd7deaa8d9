"""Posterior summaries of draws: mean, sd, HDI, direction probability, ROPE verdict.

The ROPE ("region of practical equivalence") is declared on the bias scale (−1 … +1) and
translated to each reported scale. Verdict (Kruschke's HDI+ROPE rule): the HDI entirely inside
the ROPE → "practically unbiased"; entirely outside → "biased"; otherwise "undecided".
"""

from __future__ import annotations

import numpy as np
from scipy.special import logit

from biasstats.inference.predict import hdi

VERDICTS = ("practically unbiased", "biased", "undecided")


def rope_on_scale(rope: float, scale: str) -> tuple[float, float]:
    """The bias-scale ROPE [−rope, rope] expressed on another scale."""
    lo_p, hi_p = (1 - rope) / 2, (1 + rope) / 2
    if scale in ("bias", "difference"):
        return (-rope, rope)
    if scale == "probability":
        return (lo_p, hi_p)
    if scale == "log_odds":
        return (float(logit(lo_p)), float(logit(hi_p)))
    if scale == "odds_ratio":
        return (float(np.exp(logit(lo_p))), float(np.exp(logit(hi_p))))
    from biasstats import registry

    extra = registry.scale(scale)  # a study's own scale (e.g. the Bai D score)
    if extra is not None and extra.rope_as != scale:
        return rope_on_scale(rope, extra.rope_as)
    raise ValueError(f"unknown scale {scale!r}")


def verdict(low: float, high: float, rope: tuple[float, float]) -> str:
    if rope[0] <= low and high <= rope[1]:
        return "practically unbiased"
    if high < rope[0] or low > rope[1]:
        return "biased"
    return "undecided"


def summarise(draws: np.ndarray, *, prob: float, null: float, rope: tuple[float, float]) -> list[dict]:
    """One dict per column of ``draws`` (S, K): mean, sd, hdi, P(> null), ROPE verdict."""
    d = np.asarray(draws, dtype=float)
    h = hdi(d, prob)
    out = []
    for k in range(d.shape[1]):
        out.append({
            "mean": float(d[:, k].mean()),
            "sd": float(d[:, k].std(ddof=1)),
            "hdi_low": float(h[k, 0]),
            "hdi_high": float(h[k, 1]),
            "hdi_prob": prob,
            "p_positive": float((d[:, k] > null).mean()),
            "rope_low": rope[0],
            "rope_high": rope[1],
            "verdict": verdict(h[k, 0], h[k, 1], rope),
        })
    return out
