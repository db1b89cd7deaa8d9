"""Posterior draws of the linear predictor for every cell of a fit.

Computed from the posterior and the model's design (``Fit.spec``), draw by draw, so every
effect size downstream is a function of draws — never of summaries.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def stack_draws(post, name: str | None = None) -> np.ndarray:
    """(S, ...) array of a variable (``post[name]``, or a DataArray) with chains and draws
    stacked."""
    a = np.asarray((post if name is None else post[name]).values)
    return a.reshape((-1,) + a.shape[2:])


def linear_predictor(fit) -> np.ndarray:
    """eta[s, c]: draw s, cell c (``fit.spec.cells`` order). Single-predictor families only."""
    spec = fit.spec
    if spec.n_linpred != 1:
        raise ValueError(f"family '{spec.family.name}' has {spec.n_linpred} linear predictors")
    post = fit.idata["posterior"].to_dataset()
    n = len(spec.y)
    S = post.sizes["chain"] * post.sizes["draw"]
    eta = np.zeros((S, n))
    if spec.has_intercept:
        eta += stack_draws(post, "Intercept")[:, None]
    if spec.fixed_names:
        eta += stack_draws(post, "b") @ spec.X.T
    for g in spec.groups:
        r = stack_draws(post, f"r_{g.name}")
        if r.ndim == 2:  # (S, levels): varying intercept (or one slope)
            eta += r[:, g.idx] * g.Z[:, 0][None, :]
        else:  # (S, coefs, levels)
            eta += np.einsum("skc,ck->sc", r[:, :, g.idx], g.Z)
    return eta


def cell_weights(fit) -> np.ndarray:
    """How many observations each cell stands for (trials for collapsed binomial cells)."""
    spec = fit.spec
    if spec.trials is not None:
        return np.asarray(spec.trials, dtype=float)
    return np.ones(len(spec.y))


def level_labels(cells: pl.DataFrame, term) -> tuple[tuple[str, ...], np.ndarray] | None:
    """The grouping columns of ``term`` (``"llm"``, ``("llm", "stereotype")``, ``"overall"`` /
    ``()``) and each cell's level label (``"gpt4:guilt"``; ``"all"`` overall); None when the
    cells lack one of the columns."""
    key = () if term in ("overall", ()) else ((term,) if isinstance(term, str) else tuple(term))
    if not all(c in cells.columns for c in key):
        return None
    if not key:
        return key, np.full(cells.height, "all")
    expr = pl.concat_str([pl.col(c).cast(pl.Utf8) for c in key], separator=":")
    return key, cells.select(expr).to_series().to_numpy()
