"""Posterior summaries of draws: mean, sd, HDI, direction probability, ROPE verdict.

Verdict (Kruschke's HDI+ROPE rule), in the generic words: the HDI entirely inside the ROPE
("region of practical equivalence") → "inside ROPE"; entirely outside → "outside ROPE";
otherwise "undecided". A study may word them its own way (``words``; its
:class:`biasstats.registry.Vocabulary` says which words stand for which verdict).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from biasstats.inference.predict import hdi

__all__ = ["VERDICTS", "summarise", "verdict"]

VERDICTS = ("inside ROPE", "outside ROPE", "undecided")


def verdict(low: float, high: float, rope: tuple[float, float]) -> str:
    """"inside ROPE", "outside ROPE" or "undecided" for the interval [low, high]."""
    if rope[0] <= low and high <= rope[1]:
        return "inside ROPE"
    if high < rope[0] or low > rope[1]:
        return "outside ROPE"
    return "undecided"


def summarise(draws: np.ndarray, *, prob: float, null: float,
              rope: tuple[float, float] | None, words: Mapping[str, str] | None = None
              ) -> list[dict]:
    """One dict per column of ``draws`` (S, K): mean, sd, hdi, P(> null), ROPE verdict (in
    ``words``, generic verdict -> a study's word, where given; none without a ``rope``)."""
    d = np.asarray(draws, dtype=float)
    h = hdi(d, prob)
    words = words or {}
    out = []
    for k in range(d.shape[1]):
        row = {
            "mean": float(d[:, k].mean()),
            "sd": float(d[:, k].std(ddof=1)),
            "hdi_low": float(h[k, 0]),
            "hdi_high": float(h[k, 1]),
            "hdi_prob": prob,
            "p_positive": float((d[:, k] > null).mean()),
        }
        if rope is not None:
            v = verdict(h[k, 0], h[k, 1], rope)
            row.update(rope_low=rope[0], rope_high=rope[1], verdict=words.get(v, v))
        out.append(row)
    return out
