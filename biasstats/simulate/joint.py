"""Simulated data for joint models with known truth: two 0/1 outcomes measured on the same
cells (prompts, stereotypes, ...), whose cell effects on the logit scale are bivariate normal
with a known correlation (:func:`correlated_cells`), and a refusal-and-outcome study whose
refusals and answers depend on correlated prompt effects (:func:`refusal_study`).

What a joint model of the two should recover: the latent correlation ``rho``, each part's
SD and intercept, and the latent regression slope ``rho * sd_y / sd_x`` of one part's cell
effects on the other's. A two-step analysis — each cell's empirical logit first, then a
regression of one on the other — is attenuated by the noise in the first step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["JointTruth", "correlated_cells", "correlated_slopes", "refusal_study"]


@dataclass(frozen=True)
class JointTruth:
    """The true values behind :func:`correlated_cells` (and the realised cell effects)."""

    rho: float
    sd: tuple[float, float]
    intercept: tuple[float, float]
    effects: np.ndarray          # (cells, 2): the drawn effects, centred per part
    cells: tuple[str, ...]

    @property
    def slope(self) -> float:
        """The latent regression slope of the second part's effects on the first's."""
        return self.rho * self.sd[1] / self.sd[0]

    def to_dict(self) -> dict:
        return {"rho": self.rho, "sd": list(self.sd), "intercept": list(self.intercept),
                "slope": self.slope, "cells": list(self.cells),
                "effects": [list(map(float, e)) for e in self.effects]}


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _bivariate(rng, n: int, rho: float, sd: tuple[float, float]) -> np.ndarray:
    cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    e = rng.multivariate_normal([0.0, 0.0], cov, size=n)
    return e - e.mean(axis=0)  # the model's effects are deviations from the mean of the cells


def correlated_cells(seed: int, *, cells: int = 40, rho: float = 0.6,
                     sd: tuple[float, float] = (0.8, 0.8),
                     intercept: tuple[float, float] = (0.3, -0.2),
                     trials: tuple[int, int] = (30, 30)) -> tuple[pl.DataFrame, pl.DataFrame,
                                                                   JointTruth]:
    """Two tables of 0/1 outcomes ``y`` per ``cell`` (``trials[j]`` rows per cell in part j),
    with the parts' cell effects bivariate normal (correlation ``rho``, SDs ``sd``)."""
    rng = np.random.default_rng(seed)
    names = tuple(f"cell{i:02d}" for i in range(cells))
    eff = _bivariate(rng, cells, rho, sd)
    tables = []
    for j in range(2):
        p = _expit(intercept[j] + eff[:, j])
        y = rng.random((cells, trials[j])) < p[:, None]
        tables.append(pl.DataFrame({"cell": np.repeat(names, trials[j]),
                                    "y": y.ravel().astype(np.int64)}))
    return tables[0], tables[1], JointTruth(rho, sd, intercept, eff, names)


def refusal_study(seed: int, *, prompts: int = 30, replies: int = 40, rho: float = 0.5,
                  sd: tuple[float, float] = (0.8, 0.6), refusal_intercept: float = -1.5,
                  refusal_effect: float = 0.8, outcome_intercept: float = 0.0,
                  outcome_effect: float = 0.6) -> tuple[pl.DataFrame, dict]:
    """One table of replies (``prompt``, ``condition`` a/b, ``y`` 0/1 when answered, null
    when refused: ``[data] missing_outcome = "refused"`` reads it so): P(refusal) and P(y = 1 | answered) both rise with condition
    b (by ``refusal_effect`` and ``outcome_effect`` on the logit scale) and with correlated
    prompt effects (``rho``). The truth dict holds the parameters and the true contrasts on
    the probability scale (averaged over the simulated prompts, as the estimands are)."""
    rng = np.random.default_rng(seed)
    eff = _bivariate(rng, prompts, rho, sd)
    names = [f"prompt{i:02d}" for i in range(prompts)]
    rows = []
    truth_p = {"refused": {}, "y": {}}
    for c, shift in (("a", 0.0), ("b", 1.0)):
        p_ref = _expit(refusal_intercept + refusal_effect * shift + eff[:, 0])
        p_y = _expit(outcome_intercept + outcome_effect * shift + eff[:, 1])
        truth_p["refused"][c] = float(p_ref.mean())
        # among answers: each prompt weighted by its expected share of answered replies
        truth_p["y"][c] = float(np.sum(p_y * (1 - p_ref)) / np.sum(1 - p_ref))
        ref = rng.random((prompts, replies)) < p_ref[:, None]
        y = rng.random((prompts, replies)) < p_y[:, None]
        for i in range(prompts):
            for k in range(replies):
                rows.append((names[i], c, None if ref[i, k] else int(y[i, k])))
    table = pl.DataFrame(rows, schema={"prompt": pl.Utf8, "condition": pl.Utf8,
                                       "y": pl.Int64}, orient="row")
    truth = {"rho": rho, "sd": list(sd), "refusal_intercept": refusal_intercept,
             "refusal_effect": refusal_effect, "outcome_intercept": outcome_intercept,
             "outcome_effect": outcome_effect,
             "p_refused": truth_p["refused"], "p_y": truth_p["y"],
             "refusal_contrast": truth_p["refused"]["b"] - truth_p["refused"]["a"],
             "outcome_contrast": truth_p["y"]["b"] - truth_p["y"]["a"]}
    return table, truth


def correlated_slopes(seed: int, *, cells: int = 40, trials: int = 30,
                      cor: np.ndarray | None = None,
                      sd: tuple[float, float, float] = (0.6, 0.8, 0.8),
                      intercept: tuple[float, float] = (-0.3, 0.0),
                      effect: float = 0.5) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Two 0/1 outcomes on the same cells for ``(1 + x | p | cell)`` in part one and ``(1 | p
    | cell)`` in part two: part one's cell intercepts and slopes of ``x`` (0/1, half the
    trials each) and part two's cell intercepts are trivariate normal with SDs ``sd`` and
    correlation ``cor`` (order: one's intercept, one's slope, two's intercept; default: the
    slope correlates 0.7 with part two's intercept, the intercepts 0.3). ``trials`` replies per
    cell and part. Truth: the correlation matrix, SDs, intercepts and fixed slope."""
    rng = np.random.default_rng(seed)
    R = np.array([[1.0, 0.0, 0.3], [0.0, 1.0, 0.7], [0.3, 0.7, 1.0]]) if cor is None \
        else np.asarray(cor, dtype=float)
    S = np.diag(sd)
    e = rng.multivariate_normal(np.zeros(3), S @ R @ S, size=cells)
    e -= e.mean(axis=0)
    names = [f"cell{i:02d}" for i in range(cells)]
    x = np.tile(np.repeat([0, 1], trials // 2), cells)
    cell = np.repeat(names, trials)
    c = np.repeat(np.arange(cells), trials)
    p1 = _expit(intercept[0] + e[c, 0] + (effect + e[c, 1]) * x)
    p2 = _expit(intercept[1] + e[c, 2])
    one = pl.DataFrame({"cell": cell, "x": x.astype(float),
                        "y": (rng.random(len(c)) < p1).astype(np.int64)})
    two = pl.DataFrame({"cell": cell, "y": (rng.random(len(c)) < p2).astype(np.int64)})
    return one, two, {"cor": R, "sd": sd, "intercept": intercept, "effect": effect,
                      "effects": e, "cells": names}
