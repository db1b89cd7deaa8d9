"""Sufficient statistics of count models: the exact likelihood of a beta-binomial pattern
model per covariate cell, and the constant that separates a collapsed binomial likelihood
from the per-row one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biasstats.model.design import ModelSpec
from biasstats.model.families import log_choose

__all__ = ["CountStats", "count_stats", "COUNT_STATS_MAX_N", "log_binomial_constant"]

# Beta-binomial patterns with at most this many trials per observation use the sufficient-
# statistic likelihood (:func:`count_stats`); cost ~ covariate cells x 3 x max n logs.
COUNT_STATS_MAX_N = 64


@dataclass(frozen=True)
class CountStats:
    """Sufficient statistics of a pattern-weighted beta-binomial model per covariate cell.

    With a = mu phi and b = (1 - mu) phi, one trial's log density is

        log C(n, k) + sum_{j<k} log(a + j) + sum_{j<n-k} log(b + j) - sum_{j<n} log(phi + j)

    (the ratio of Beta functions written as rising factorials), so the total over every trial of
    a cell (one a, b per cell) is ``sum_j A[c, j] log(a_c + j) + B[c, j] log(b_c + j) - T[c, j]
    log(phi_c + j)``, with A[c, j] = trials of c with k > j, B[c, j] = trials with n - k > j,
    T[c, j] = trials with n > j. Exact; no log-gamma or digamma in the sampler's gradient and one
    linear predictor per covariate cell instead of one per pattern."""

    rows: np.ndarray       # (C,) a representative pattern of each covariate cell
    cell: np.ndarray       # (P,) covariate cell of each pattern
    A: np.ndarray          # (C, J) trial counts, J = max n
    B: np.ndarray
    T: np.ndarray
    const: float           # sum over trials of log C(n, k)


def count_stats(spec: ModelSpec) -> CountStats | None:
    """:class:`CountStats` of a beta-binomial pattern model (None for any other model, or when
    some observation has more than :data:`COUNT_STATS_MAX_N` trials)."""
    if spec.family.beta_ab is None or spec.weights is None or spec.trials is None:
        return None
    n = np.asarray(spec.trials, dtype=np.int64)
    k = np.asarray(spec.y, dtype=np.int64)
    w = np.asarray(spec.weights, dtype=float)
    J = int(n.max()) if len(n) else 0
    if J < 1 or J > COUNT_STATS_MAX_N:
        return None
    pf = spec.formula
    covars = [c for c in spec.cells.columns if c not in (pf.response, pf.trials)]
    if covars:
        frame = spec.cells.select(covars)
        uniq = frame.unique(maintain_order=True).with_row_index("__c")
        cell = frame.join(uniq, on=covars, how="left", nulls_equal=True,
                          maintain_order="left")["__c"].to_numpy().astype(np.int64)
    else:
        cell = np.zeros(len(n), dtype=np.int64)
    n_cells = int(cell.max()) + 1
    _, rows = np.unique(cell, return_index=True)
    j = np.arange(J)
    A, B, T = (np.zeros((n_cells, J)) for _ in range(3))
    np.add.at(A, cell, (k[:, None] > j) * w[:, None])
    np.add.at(B, cell, ((n - k)[:, None] > j) * w[:, None])
    np.add.at(T, cell, (n[:, None] > j) * w[:, None])
    const = float(np.sum(w * log_choose(n, k)))
    return CountStats(rows=rows.astype(np.int64), cell=cell, A=A, B=B, T=T, const=const)


def log_binomial_constant(spec: ModelSpec) -> float:
    """sum log C(n, k) over cells: the constant separating the collapsed and row likelihoods."""
    return float(np.sum(log_choose(spec.trials, spec.y)))

