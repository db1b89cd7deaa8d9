"""Interval coverage over replications: does the central posterior interval contain the true
parameter at its nominal rate?

For one family, each replication draws the true parameters from the (fixed, explicit) prior,
simulates ``y ~ x + (1|g)`` on a small design, fits the model and records, for every true
scalar parameter, whether it lies inside its central ``prob`` posterior interval. When the
truths come from the prior the model is fitted with, each indicator is Bernoulli(``prob``)
exactly (a consequence of self-consistency, as in SBC), so the pooled count is testable with a
binomial test. Indicators of one replication are correlated, so the binomial test is somewhat
anti-conservative; keep its threshold strict (p > 0.001).

Simulation is plain numpy and follows the model's parametrisation (:mod:`biasstats.model.graph`):
group effects are ZeroSumNormal (iid Normal(0, sd_g) minus their mean), so the intercept is the
overall level; ordinal cut-points are drawn from their ordered Normal prior (centred on the
equal-probability cut-points) by rejection; the response is the family's own numpy draw
(:attr:`biasstats.model.families.Family.draw`: e.g. ``P(y <= k) = logistic(c_k - eta)``, the
negative binomial ``NB(mu = exp(eta), alpha)`` with variance ``mu + mu^2 / alpha``), so any
family with a prior set here (or passed as ``setup``) can be checked.

**Compiled-model reuse** (the shortcut of :mod:`biasstats.checks.sbc`, reused): the design (``x``, ``g``) and the
priors are fixed per family and the centring is fixed (non-centred), so the model is compiled
once with nutpie and each replication's response is swapped in with ``with_data``.
``reuse_compiled=False`` calls :func:`biasstats.inference.fit` for every replication instead (same
priors, same centring; slow: one numba compilation per replication).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats

from biasstats.checks.sbc import Compiled, scalars
from biasstats.inference import fit
from biasstats.model.build import prepare
from biasstats.model.families import cutpoint_centres, get_family
from biasstats.model.priors import parse_prior

__all__ = ["CoverageResult", "run_coverage", "pooled", "FAMILY_SETUPS", "FORMULA"]

FORMULA = "y ~ x + (1|g)"

# Explicit priors (data-independent, so every replication has the same prior and the
# truths drawn from it are on sensible scales).
FAMILY_SETUPS: dict[str, dict] = {
    "gaussian": {"priors": {"Intercept": "Normal(0, 2)", "b": "Normal(0, 1)",
                            "sd_g": "HalfNormal(1)", "sigma": "Gamma(4, 4)"},
                 "aux": "sigma"},
    "cumulative": {"priors": {"b": "Normal(0, 1)", "sd_g": "HalfNormal(1)",
                              "cutpoints": "Normal(0, 1)"},
                   "aux": "cutpoints", "levels": 4},
    "negative_binomial": {"priors": {"Intercept": "Normal(1.5, 0.5)", "b": "Normal(0, 0.5)",
                                     "sd_g": "HalfNormal(0.5)", "alpha": "Gamma(4, 1)"},
                          "aux": "alpha"},
}


@dataclass
class CoverageResult:
    """``table``: replication, parameter, truth, lo, hi, inside; ``fits``: per-replication
    diagnostics (divergences, max R-hat, seconds)."""

    family: str
    prob: float
    table: pl.DataFrame
    fits: pl.DataFrame
    timings: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.table.height

    @property
    def k(self) -> int:
        return int(self.table["inside"].sum())

    @property
    def coverage(self) -> float:
        return self.k / self.n

    def pvalue(self) -> float:
        return binom_p(self.k, self.n, self.prob)

    def by_parameter(self) -> pl.DataFrame:
        return (self.table.group_by("parameter", maintain_order=True)
                .agg(pl.len().alias("n"), pl.col("inside").mean().alias("coverage")))

    def line(self) -> str:
        t = self.timings
        return (f"{self.family}: coverage {self.coverage:.3f} ({self.k}/{self.n}), "
                f"binomial p {self.pvalue():.3g}; compile {t.get('compile_s', 0):.1f} s, "
                f"sampling {t.get('sampling_s', 0):.1f} s, divergent fits "
                f"{int((self.fits['divergences'] > 0).sum())}/{self.fits.height}")


def binom_p(k: int, n: int, prob: float) -> float:
    """Two-sided exact binomial test of ``k`` of ``n`` against ``prob``."""
    return float(stats.binomtest(k, n, prob, alternative="two-sided").pvalue)


def pooled(results: list[CoverageResult]) -> tuple[int, int, float]:
    """(k, n, two-sided binomial p) pooled over families (all must share ``prob``)."""
    k = sum(r.k for r in results)
    n = sum(r.n for r in results)
    return k, n, binom_p(k, n, results[0].prob)


# ----------------------------------------------------------------------------- simulation
def design(n: int, groups: int, seed: int) -> pl.DataFrame:
    """Fixed covariates: x ~ Normal(0, 1), g balanced over ``groups`` levels."""
    rng = np.random.default_rng([seed, 7])
    g = np.arange(n) % groups
    return pl.DataFrame({"x": rng.normal(size=n), "g": [f"g{i}" for i in g]})


def _draw(prior: str, rng, size=None) -> np.ndarray:
    p = parse_prior(prior)
    kw = p.params
    if p.dist == "Normal":
        return rng.normal(kw["mu"], kw["sigma"], size)
    if p.dist == "HalfNormal":
        return np.abs(rng.normal(0.0, kw["sigma"], size))
    if p.dist == "Gamma":  # shape, rate
        return rng.gamma(kw["alpha"], 1.0 / kw["beta"], size)
    raise ValueError(f"no numpy sampler for prior {prior}")  # pragma: no cover


def simulate(family: str, dsg: pl.DataFrame, rng,
             setup: dict | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """One replication: (y, truths) with truths drawn from ``FAMILY_SETUPS[family]`` priors
    (or ``setup``'s), y drawn by the family's own ``draw``.

    Category codes y are 0..K-1 (what the model sees); the data frame gets them as 1..K."""

    fam = get_family(family)
    setup = FAMILY_SETUPS[family] if setup is None else setup
    pr = setup["priors"]
    x = dsg["x"].to_numpy()
    levels = sorted(set(dsg["g"].to_list()))
    gi = np.searchsorted(levels, dsg["g"].to_numpy())
    sd = float(_draw(pr["sd_g"], rng))
    r = rng.normal(0.0, sd, len(levels))
    r = r - r.mean()                                    # ZeroSumNormal(sigma = sd)
    b = float(_draw(pr["b"], rng))
    truths = {"b[x]": b, "sd_g": sd}
    eta = b * x + r[gi]
    if fam.intercept:
        a = float(_draw(pr["Intercept"], rng))
        truths["Intercept"] = a
        eta = eta + a
    aux = {}
    for k in fam.aux:
        if k in fam.vector_aux:  # ordered prior centred as the model's: reject unsorted
            p = parse_prior(pr[k]).params
            centres = cutpoint_centres(setup["levels"] - 1)
            while True:
                v = rng.normal(p["mu"] + centres, p["sigma"])
                if np.all(np.diff(v) > 0):
                    break
            truths.update({f"{k}[{i}]": float(c) for i, c in enumerate(v)})
        else:
            v = float(_draw(pr[k], rng))
            truths[k] = v
        aux[k] = v
    y = fam.draw(rng, eta, aux, None)
    return (y.astype(np.int64) if fam.integer_response else y), truths


def _frame(family: str, dsg: pl.DataFrame, y: np.ndarray) -> pl.DataFrame:
    if get_family(family).has_categories:
        return dsg.with_columns(pl.Series("y", y + 1))
    return dsg.with_columns(pl.Series("y", y.astype(float)))


def run_coverage(
    family: str,
    reps: int = 20,
    *,
    n: int = 200,
    groups: int = 6,
    chains: int = 2,
    tune: int = 300,
    draws: int = 300,
    prob: float = 0.90,
    seed: int = 0,
    reuse_compiled: bool = True,
    target_accept: float = 0.9,
    setup: dict | None = None,
) -> CoverageResult:
    """Coverage of central ``prob`` intervals over ``reps`` replications of ``family``, with
    the priors of ``FAMILY_SETUPS[family]`` or ``setup`` (``{"priors": ..., "levels": K}``)."""
    # heavy libraries load on first use, not on import
    import arviz_stats.base as azb


    t_start = time.perf_counter()
    setup = FAMILY_SETUPS[family] if setup is None else setup
    priors = setup["priors"]
    dsg = design(n, groups, seed)
    rng = np.random.default_rng([seed, 1])
    centered = {"g": False}
    compiled = Compiled()
    spec = None
    sample_s = 0.0
    lo_q, hi_q = (1 - prob) / 2, 1 - (1 - prob) / 2
    rows, fits = [], []
    for rep in range(reps):
        y, truths = simulate(family, dsg, rng, setup)
        rep_seed = seed * 100003 + rep
        t0 = time.perf_counter()
        if reuse_compiled:
            # heavy libraries load on first use, not on import
            import nutpie

            if spec is None:
                # every category present, so K is fixed
                y0 = np.arange(n) % setup["levels"] if get_family(family).has_categories else y
                spec = prepare(FORMULA, _frame(family, dsg, y0), family, priors, centered)
                dtype = np.asarray(spec.y).dtype
            cm = compiled.with_y(spec, np.asarray(y, dtype=dtype))  # compiled on first use
            t1 = time.perf_counter()
            post = nutpie.sample(cm, draws=draws, tune=tune, chains=chains,
                                 cores=min(chains, os.cpu_count() or 1), seed=rep_seed,
                                 progress_bar=False, target_accept=target_accept)
            sample_s += time.perf_counter() - t1
        else:

            res = fit(FORMULA, _frame(family, dsg, y), family, priors, chains=chains,
                      tune=tune, draws=draws, seed=rep_seed, target_accept=target_accept,
                      centered=centered, progress=False)
            post = res.idata
            sample_s += time.perf_counter() - t0
        ds = post.posterior.to_dataset() if hasattr(post.posterior, "to_dataset") \
            else post.posterior
        samples = scalars(ds, list(truths))
        missing = set(truths) - set(samples)
        if missing:  # pragma: no cover - a naming change in the model
            raise RuntimeError(f"posterior lacks {sorted(missing)}")
        for name, t in truths.items():
            d = samples[name]
            lo, hi = np.quantile(d, [lo_q, hi_q])
            rows.append({"replication": rep, "parameter": name, "truth": t, "lo": float(lo),
                         "hi": float(hi), "inside": bool(lo <= t <= hi)})
        nchain = ds.sizes["chain"]
        rhat = max(float(azb.array_stats.rhat(v.reshape(nchain, -1), chain_axis=0,
                                               draw_axis=1)) for v in samples.values())
        fits.append({"replication": rep,
                     "divergences": int(np.asarray(post.sample_stats["diverging"]).sum()),
                     "max_rhat": rhat, "seconds": time.perf_counter() - t0})
    timings = {"compile_s": compiled.compile_s, "sampling_s": sample_s,
               "total_s": time.perf_counter() - t_start}
    return CoverageResult(family, prob, pl.DataFrame(rows), pl.DataFrame(fits), timings)
