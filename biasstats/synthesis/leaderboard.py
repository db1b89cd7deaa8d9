"""A leaderboard of one estimand across analyses: each analysis' posterior summary, its rank
with rank uncertainty, P(rank 1) and the whole P(rank = k) table, draw by draw.

The analyses are independent posteriors (different data, different fits), so a joint draw
is one draw of each. Each analysis' draws are first put in a fixed random order (seeded: the
result is deterministic) and cut to the fewest draws any analysis has, then ranked draw by
draw. The shuffle matters: analyses fitted with the same seed on similar data can have
correlated draws in stored order (common random numbers), and pairing them as stored would
make their ranks look surer than they are. Rank 1 is the highest value (``order =
"highest"``) or the lowest (``"lowest"``); tied values share the better rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from biasstats.inference.predict import hdi

__all__ = ["ORDERS", "Leaderboard", "joint_draws", "leaderboard"]

ORDERS = ("highest", "lowest")  # what rank 1 is


@dataclass(frozen=True)
class Leaderboard:
    """``table``: one row per analysis, best first (analysis, mean, sd, hdi_low, hdi_high,
    hdi_prob, p_best, rank_median, rank_low, rank_high, draws); ``rank_probabilities``: one
    row per analysis with P(rank = k) in columns ``rank_1`` … ``rank_K``; ``ranks``: the
    (S, K) rank draws, analyses in the order given."""

    table: pl.DataFrame
    rank_probabilities: pl.DataFrame
    ranks: np.ndarray
    order: str
    joint_draws: int


def joint_draws(values: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """(S, K) joint draws of K independent posteriors: each analysis' draws shuffled (seeded)
    and cut to the smallest S."""
    rng = np.random.default_rng(seed)
    S = min(len(v) for v in values)
    return np.column_stack([np.asarray(v, dtype=float)[rng.permutation(len(v))[:S]]
                            for v in values])


def _ranks(x: np.ndarray, order: str) -> np.ndarray:
    """(S, K) integer ranks per row, 1 = the highest (or lowest) value; ties share the
    better rank."""
    key = -x if order == "highest" else x
    S, K = key.shape
    idx = np.argsort(key, axis=1, kind="stable")
    srt = np.take_along_axis(key, idx, axis=1)
    new = np.ones((S, K), dtype=bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    # the position where each run of equal values starts: the rank of every value in it
    start = np.maximum.accumulate(np.where(new, np.arange(K)[None, :], 0), axis=1)
    ranks = np.empty((S, K), dtype=int)
    np.put_along_axis(ranks, idx, start + 1, axis=1)
    return ranks


def _hdis(values: list[np.ndarray], prob: float) -> list[tuple[float, float]]:
    """The HDI of each analysis' draws, computed at once for the analyses with as many
    draws (one call per draw count, not per analysis)."""
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(values)
    by_size: dict[int, list[int]] = {}
    for i, v in enumerate(values):
        by_size.setdefault(len(v), []).append(i)
    for size, idx in by_size.items():
        block = np.column_stack([np.asarray(values[i], dtype=float) for i in idx])
        h = hdi(block, prob) if size > 1 else np.column_stack([block[0], block[0]])
        for k, i in enumerate(idx):
            out[i] = (float(h[k, 0]), float(h[k, 1]))
    return out


def leaderboard(names: list[str], values: list[np.ndarray], *, prob: float = 0.95,
                order: str = "highest", seed: int = 0) -> Leaderboard:
    """The leaderboard of analyses ``names`` with posterior draws ``values`` (one array
    each): mean, sd and HDI of each from all its draws; ranks, P(rank 1) and P(rank = k)
    from the joint draws (:func:`joint_draws`), with the median rank and its central
    ``prob`` interval."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    K = len(values)
    x = joint_draws(values, seed)
    ranks = _ranks(x, order)
    q = [(1 - prob) / 2, 0.5, (1 + prob) / 2]
    rq = np.quantile(ranks, q, axis=0, method="inverted_cdf")
    counts = np.bincount((np.arange(K)[None, :] * K + ranks - 1).ravel(), minlength=K * K)
    p_rank = counts.reshape(K, K) / ranks.shape[0]   # analysis x rank
    intervals = _hdis(values, prob)
    rows = []
    for i, (name, v) in enumerate(zip(names, values, strict=True)):
        v = np.asarray(v, dtype=float)
        lo, hi = intervals[i]
        rows.append({"analysis": name, "mean": float(v.mean()),
                     "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                     "hdi_low": float(lo), "hdi_high": float(hi), "hdi_prob": prob,
                     "p_best": float(p_rank[i, 0]), "rank_median": int(rq[1, i]),
                     "rank_low": int(rq[0, i]), "rank_high": int(rq[2, i]),
                     "rank_mean": float(ranks[:, i].mean()), "draws": int(v.size)})
    table = pl.DataFrame(rows).sort(["rank_mean", "mean"],
                                    descending=[False, order == "highest"])
    probs = pl.DataFrame({"analysis": names,
                          **{f"rank_{k}": p_rank[:, k - 1] for k in range(1, K + 1)}})
    probs = probs.join(table.select("analysis", "rank_mean"), on="analysis").sort(
        "rank_mean").drop("rank_mean")
    return Leaderboard(table, probs, ranks, order, x.shape[0])
