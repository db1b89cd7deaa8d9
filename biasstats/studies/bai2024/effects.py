"""Effect sizes on the scales people read, computed draw by draw.

For a logit-link model of a binary outcome (bernoulli / binomial), the effect of a level of a
grouping column (an LLM, a stereotype, an LLM × stereotype cell) is the **average predicted
probability of a stereotype-congruent answer over the observed cells with that level**,
weighted by their number of judgements, computed for every posterior draw (so the design is
the data's own: a "marginal mean" in the emmeans / marginaleffects sense). From it:

* ``probability``  P(stereotype-congruent answer); unbiased = 0.5
* ``bias``         2p − 1 on −1 … +1; unbiased = 0 (the IAT-style scale of the paper)
* ``log_odds``     logit p; ``odds_ratio`` = p / (1 − p), the odds of a congruent answer
                   against an incongruent one; unbiased = 1
* ``d_score``      the authors' D score implied by p for a trial of m positive and m negative
                   words (exact expectation over the binomial counts; m from the data). It
                   lines up with the paper's mean D over scored trials, without their zeros.

Each summary has a posterior mean, sd, HDI, P(bias > 0) and a ROPE verdict (ROPE declared on
the bias scale). Also: contrasts between LLMs (A − B on the bias scale), ranks of LLMs with
rank uncertainty, and a variance decomposition on the latent (logit) scale
(:func:`biasstats.effects.variance.variance_decomposition`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import logit
from scipy.stats import binom

from biasstats import registry
from biasstats.effects.summaries import summarise
from biasstats.effects.variance import variance_decomposition
from biasstats.inference.predict import level_labels, linear_predictor, reduced
from biasstats.model.design import aux_draws
from biasstats.model.families import rising_tables
from biasstats.studies.bai2024.dscore import d_score
from biasstats.studies.bai2024.wording import VERDICT_WORDS

SCALES = ("probability", "bias", "log_odds", "odds_ratio", "d_score")
DEFAULT_TERMS = ("overall", "llm", "category", "stereotype", "variant", ("llm", "stereotype"))


@dataclass(frozen=True)
class Effects:
    """All effect summaries of one fit (polars DataFrames, long format)."""

    table: pl.DataFrame       # term, level, scale, mean, sd, hdi_low, hdi_high, ..., n_obs
    contrasts: pl.DataFrame   # term, level ("A − B"), scale="difference", ...
    ranks: pl.DataFrame       # llm, rank_mean, rank_low, rank_high, p_best
    variance: pl.DataFrame    # component, share_mean, share_low, share_high
    prob: float
    rope: float


def rope_on_scale(rope: float, scale: str) -> tuple[float, float]:
    """The bias-scale ROPE [−rope, rope] expressed on another scale (a scale registered with
    ``rope_as`` shares that scale's ROPE: the D score shares the bias scale's)."""
    lo_p, hi_p = (1 - rope) / 2, (1 + rope) / 2
    if scale in ("bias", "difference"):
        return (-rope, rope)
    if scale == "probability":
        return (lo_p, hi_p)
    if scale == "log_odds":
        return (float(logit(lo_p)), float(logit(hi_p)))
    if scale == "odds_ratio":
        return (float(np.exp(logit(lo_p))), float(np.exp(logit(hi_p))))

    extra = registry.scale(scale)
    if extra is not None and extra.rope_as not in (None, scale):
        return rope_on_scale(rope, extra.rope_as)
    raise ValueError(f"unknown scale {scale!r}")


def _d_table(m: int) -> tuple[np.ndarray, np.ndarray]:
    """k = 0..m and D(a, d) for every (a, d) of a trial with m positive and m negative words
    (a negative words to the stigma group, d positive words to the default group)."""
    k = np.arange(m + 1)
    a, d = np.meshgrid(k, k, indexing="ij")
    return k, d_score(a, m - d, m - a, d)


def expected_d(p: np.ndarray, m: int) -> np.ndarray:
    """E[D] for a trial of m positive and m negative words, each congruent with probability p.

    a ~ Bin(m, p) negative words to the stigma group, d ~ Bin(m, p) positive words to the
    default group, b = m − d, c = m − a; D = a/(a+b+0.01) + d/(c+d+0.01) − 1.
    """
    k, f = _d_table(m)
    pmf = binom.pmf(k, m, np.asarray(p)[..., None])  # (..., m+1)
    return np.einsum("...i,ij,...j->...", pmf, f, pmf)


def expected_d_beta(mu: np.ndarray, phi: np.ndarray, m: int) -> np.ndarray:
    """E[D] when the trial's p ~ Beta(mu*phi, (1-mu)*phi) is shared by its 2m judgements.

    The joint pmf of (a, d) is C(m,a) C(m,d) B(a+d+α, 2m−a−d+β) / B(α, β), so
    E[D] = Σ_s w_s g_s with s = a + d, g_s = Σ_{a+d=s} f(a,d) C(m,a) C(m,d), and
    w_s = B(s+α, 2m−s+β) / B(α, β) = Π_{j<s}(α+j) Π_{j<2m−s}(β+j) / Π_{j<2m}(α+β+j)
    (rising factorials: 6m logarithms per draw and cell instead of log-gamma functions):
    exact, and cheap for any number of draws.
    """
    # heavy libraries load on first use, not on import
    from scipy.special import comb

    k, f = _d_table(m)
    a, d = np.meshgrid(k, k, indexing="ij")
    c = comb(m, a) * comb(m, d)
    s = a + d
    g = np.bincount(s.ravel(), weights=(f * c).ravel(), minlength=2 * m + 1)
    mu, phi = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(phi, dtype=float))
    alpha, beta = (mu * phi).ravel(), ((1 - mu) * phi).ravel()
    out = np.empty(alpha.size)
    step = max(1, 2_000_000 // (2 * m + 1))  # bounded memory for any number of draws
    for i in range(0, alpha.size, step):
        # log a^(s), b^(s), (a+b)^(s) for s = 0..2m
        la, lb, lt = rising_tables(alpha[i:i + step], beta[i:i + step], 2 * m)
        out[i:i + step] = np.exp(la + lb[:, ::-1] - lt[:, -1:]) @ g
    return out.reshape(mu.shape)


def _words_per_valence(fit, table: pl.DataFrame | None,
                       cells: pl.DataFrame | None = None) -> np.ndarray | None:
    """m per cell (of ``cells``, default the fit's): half the median number of judgements per
    trial (None without valences)."""
    if table is None or "valence" not in table.columns:
        return None
    cells = fit.spec.cells if cells is None else cells
    covars = [c for c in cells.columns if c not in ("k", "n") and c in table.columns]
    ok = table.filter(pl.col("status") == "ok")
    per_trial = ok.group_by(["source_row", *covars]).len()
    if covars:
        med = per_trial.group_by(covars).agg(pl.col("len").median().alias("_m"))
        m = cells.select(covars).join(med, on=covars, how="left", maintain_order="left")["_m"]
    else:
        m = pl.Series([per_trial["len"].median()] * cells.height)
    return np.maximum(1, np.round(m.fill_null(m.median()).to_numpy() / 2)).astype(int)


def _level_weights(w, labels):
    """(cells, L) weights averaging cells into levels by ``w``, level names, n per level."""
    levels, inv = np.unique(labels, return_inverse=True)
    L = len(levels)
    W = np.zeros((len(labels), L))
    W[np.arange(len(labels)), inv] = w
    n = W.sum(axis=0)
    return W / n, [str(x) for x in levels], n


def _rows(term, levels, n, draws, scale, prob, rope, null):
    r = rope_on_scale(rope, scale)
    sums = summarise(draws, prob=prob, null=null, rope=r, words=VERDICT_WORDS)
    return [{"term": term, "level": lv, "scale": scale, **s, "n_obs": float(nn)}
            for lv, nn, s in zip(levels, n, sums, strict=True)]


def compute_effects(
    fit,
    table: pl.DataFrame | None = None,
    *,
    terms=DEFAULT_TERMS,
    prob: float = 0.95,
    rope: float = 0.05,
) -> Effects:
    """Effect sizes for every term whose columns are in the model (others are skipped)."""
    if not fit.spec.family.binary_outcomes:
        raise ValueError(
            f"effect sizes on the probability scale need a bernoulli or binomial model, "
            f"not '{fit.family}'"
        )
    # on covariate cells: a pattern-weighted fit's patterns share their cell's predictors

    spec, cells, w = reduced(fit)
    eta = linear_predictor(fit, spec=spec)
    fam = spec.family
    post = fit.idata["posterior"].to_dataset()
    # (S, 1), or (S, cells) with a [model.aux] formula
    aux = {k: aux_draws(post, spec, k) for k in fam.aux}
    m = _words_per_valence(fit, table, cells)
    phi = None
    if fam.beta_ab is not None:
        # the trial's p ~ Beta(a, b): mean a/(a+b), phi = a + b (for the logit-normal
        # binomial, the beta with its exact mean and variance of p: the approximation its
        # likelihood makes), one quadrature for both
        a, b = fam.beta_ab(eta, aux)
        phi = a + b
        p = a / phi
    else:
        p = fam.mean(eta, aux)  # logistic(eta)
    d_cells = None
    if m is not None:
        d_cells = np.empty_like(p)
        for mm in np.unique(m):
            sel = m == mm
            if phi is None:
                d_cells[:, sel] = expected_d(p[:, sel], int(mm))
            else:
                d_cells[:, sel] = expected_d_beta(p[:, sel], phi[:, sel], int(mm))
    rows, per_term = [], {}
    for term in terms:
        found = level_labels(cells, term)
        if found is None:
            continue
        key, labels = found
        name = ":".join(key) or "overall"
        avg, levels, n = _level_weights(w, labels)
        pl_draws = p @ avg  # (S, L): weighted mean of p over the cells of each level
        per_term[name] = (levels, pl_draws)
        bias = 2 * pl_draws - 1
        lo = logit(np.clip(pl_draws, 1e-12, 1 - 1e-12))
        rows += _rows(name, levels, n, pl_draws, "probability", prob, rope, 0.5)
        rows += _rows(name, levels, n, bias, "bias", prob, rope, 0.0)
        rows += _rows(name, levels, n, lo, "log_odds", prob, rope, 0.0)
        rows += _rows(name, levels, n, np.exp(lo), "odds_ratio", prob, rope, 1.0)
        if d_cells is not None:
            rows += _rows(name, levels, n, d_cells @ avg, "d_score", prob, rope, 0.0)
    table_out = pl.DataFrame(rows)
    contrasts, ranks = _contrasts_and_ranks(per_term.get("llm"), prob, rope)
    return Effects(table_out, contrasts, ranks, variance_decomposition(fit, prob), prob, rope)


def _contrasts_and_ranks(llm, prob, rope):
    empty_c = pl.DataFrame(schema={"term": pl.Utf8, "level": pl.Utf8, "scale": pl.Utf8})
    empty_r = pl.DataFrame(schema={"llm": pl.Utf8})
    if llm is None:
        return empty_c, empty_r
    levels, p = llm
    bias = 2 * p - 1
    pairs = list(itertools.combinations(range(len(levels)), 2))
    rows = []
    if pairs:
        diffs = np.stack([bias[:, i] - bias[:, j] for i, j in pairs], axis=1)
        sums = summarise(diffs, prob=prob, null=0.0, rope=rope_on_scale(rope, "difference"),
                         words=VERDICT_WORDS)
        for (i, j), s in zip(pairs, sums, strict=True):
            rows.append({"term": "contrast", "level": f"{levels[i]} − {levels[j]}",
                         "scale": "difference", **s})
    # rank 1 = the most biased LLM in that draw
    order = np.argsort(-bias, axis=1)
    rank = np.empty_like(order)
    rank[np.arange(order.shape[0])[:, None], order] = np.arange(1, len(levels) + 1)
    lo, hi = np.percentile(rank, [100 * (1 - prob) / 2, 100 * (1 + prob) / 2], axis=0)
    ranks = pl.DataFrame({
        "llm": levels,
        "rank_mean": rank.mean(axis=0),
        "rank_low": lo,
        "rank_high": hi,
        "p_best": (rank == 1).mean(axis=0),
    }).sort("rank_mean")
    return (pl.DataFrame(rows) if rows else empty_c), ranks
