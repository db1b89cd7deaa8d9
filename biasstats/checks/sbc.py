"""Simulation-based calibration (Talts et al. 2018; Modrák et al. 2023).

For each simulation: draw the parameters from the prior, draw a dataset on a fixed design from
the likelihood, fit the model to it, and record the rank of each true parameter among
(thinned, roughly independent) posterior draws. If the model is implemented and fitted
correctly, every rank is uniform. :func:`run_sbc` returns the rank table and two uniformity
tests per parameter:

* **chi-square** over equal-width bins of the normalised rank;
* **ECDF** test (Säilynoja, Bürkner & Vehtari 2022): the statistic is the one behind the
  simultaneous ECDF bands of ``arviz_stats`` / ``arviz_plots`` — the smallest two-sided
  pointwise binomial tail probability of the ECDF over the evaluation grid — and its p-value
  is the share of uniform samples of the same size whose statistic is at least as extreme
  (so p < 0.05 exactly when the ECDF leaves the 95% simultaneous band).

Ranks with different numbers of kept draws are put on one scale with a uniform jitter:
``u = (rank + U) / (max_rank + 1)`` is exactly Uniform(0, 1) under calibration (a discrete
uniform rank plus an independent continuous uniform), so the tests are continuous-uniform
tests on ``u``.

**Compiled-model reuse.** A fit's cost on these small designs is dominated by nutpie's numba
compilation (~10 s) while sampling takes well under a second. The model is therefore built
once per *parameterisation* with its observed counts as a shared variable (``pm.observe``
with a ``pytensor.shared``), compiled once with :func:`nutpie.compile_pymc_model`, and each
simulation's counts are swapped in with ``CompiledModel.with_data``. Each simulation keeps the
centred / non-centred choice :func:`biasstats.model.build.prepare` would make for its data
(what :func:`biasstats.inference.fit` does), so up to ``2 ** (group terms)`` variants are compiled
(cached by that choice). Sampling: nutpie, with the mass-matrix ``adaptation`` (default
``"diag"``, which suits short warm-ups) and ``target_accept`` given (``None``: chosen per
simulation as ``fit`` would, :func:`biasstats.inference.sample.auto_target_accept`). The run behind
``nox -s sbc`` and the canonical-model test use :data:`SBC_SETTINGS`: ``fit``'s defaults
(low-rank adaptation, automatic target acceptance) with a 1,000-step warm-up and 2 chains
of 500 draws. ``reuse_compiled=False`` calls
:func:`biasstats.inference.fit` for every simulation instead (slow; for checking the shortcut).

**Divergences.** SBC keeps every simulation, divergent or not (dropping them would bias the
ranks), and reports how many diverged. On the canonical model they come from the few-level
terms (2 variants, 4 categories): the posterior of such a term's SD is mostly prior, so it
reaches both the small-SD region where a centred term forms a funnel and the large-SD region
where a non-centred one does; no single parameterisation avoids both. A smaller step size
follows the funnel's neck: 200 simulations (seed 1) diverged in 66 fits (278 transitions) at
a fixed target_accept of 0.95, 16 (35) at 0.99, and 30 (105) with the automatic choice, which
put 107 simulations at 0.99, 42 at 0.95 and 51 at 0.9. The convergence gate flags divergent
fits in real use and names the term (:func:`biasstats.inference.convergence.locate_divergences`).

**Seeds.** The truths are drawn from the prior with ``seed``, so every run with the same seed
ranks against the *same* truths. For a parameter the data say little about (the SD of a
4-level term), the posterior is close to the prior and the rank of the truth is close to the
truth's own prior CDF value; a chance lean in those draws then shows in every run with that
seed. Measured: the 200 ``sd_category`` truths of seed 20240204 have a mean prior-CDF value of
0.46, and every run with that seed gave ``sd_category`` a mean rank u of 0.43-0.46; with seeds 1
and 2 (same settings) it was 0.48 and 0.49. Check a borderline parameter with another seed.

Priors are fixed once from the design (data-scaled defaults use the design's response if it
has one), so every simulation has the same prior. Bernoulli data are simulated and fitted as
binomial cells (k of n per covariate pattern), exactly what ``fit`` sees after collapsing rows.

The run behind ``nox -s sbc`` (the Bai et al.-shaped canonical model on the study's reduced
design) is the study's own: ``python -m biasstats.studies.bai2024.sbc --sims 200``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats
from scipy.special import bdtr

from biasstats.inference import fit
from biasstats.inference.sample import auto_target_accept
from biasstats.io import write_parquet_atomic, write_text_atomic
from biasstats.model.build import prepare
from biasstats.model.families import get_family
from biasstats.model.formula import parse_formula
from biasstats.model.graph import build_model
from biasstats.simulate.from_formula import placeholder_response, prior_draw

__all__ = ["SBCResult", "run_sbc", "uniformity", "ecdf_test", "chisq_test", "SBC_SETTINGS",
           "Compiled", "scalars"]

#: sampler settings of a realistic SBC run (``nox -s sbc``, the canonical-model test): fit()'s
#: low-rank mass matrix and automatic target acceptance, with a realistic warm-up
SBC_SETTINGS = {"draws": 500, "tune": 1000, "chains": 2, "target_accept": None,
                "adaptation": "low_rank"}
_HIDDEN = ("z_", "u_", "chol_")


# ----------------------------------------------------------------------------- tests
def chisq_test(u: np.ndarray, bins: int | None = None) -> tuple[float, int]:
    """Chi-square test of uniformity of ``u`` in [0, 1) over equal bins; (p-value, bins).

    Default bins: as many as keep at least 5 expected per bin, between 2 and 20."""
    u = np.asarray(u, dtype=float)
    n = len(u)
    b = bins or int(min(20, max(2, n // 5)))
    counts = np.bincount(np.minimum((u * b).astype(int), b - 1), minlength=b)
    return float(stats.chisquare(counts).pvalue), b


def _gamma(u_sorted: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Säilynoja et al.'s statistic for each row of ``u_sorted`` (..., n): 1 - 2 min tail prob."""
    n = u_sorted.shape[-1]
    counts = np.apply_along_axis(np.searchsorted, -1, u_sorted, z, side="right")
    lower = bdtr(counts, n, z).min(axis=-1)
    below = np.where(counts > 0, bdtr(np.maximum(counts - 1, 0), n, z), 0.0)  # P(X <= c - 1)
    upper = (1.0 - below).min(axis=-1)
    return 1.0 - 2.0 * np.minimum(lower, upper)


@lru_cache(maxsize=32)
def _gamma_null(n: int, n_null: int = 4000, seed: int = 214) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.arange(1, n) / n
    return np.sort(_gamma(np.sort(rng.random((n_null, n)), axis=1), z))


def ecdf_test(u: np.ndarray) -> float:
    """p-value of the simultaneous-band ECDF uniformity test (Säilynoja et al. 2022)."""
    u = np.sort(np.asarray(u, dtype=float))
    n = len(u)
    if n < 2:
        return 1.0
    g = float(_gamma(u[None, :], np.arange(1, n) / n)[0])
    null = _gamma_null(n)
    # share of null statistics at least as extreme (+1 smoothing: never exactly 0)
    k = len(null) - np.searchsorted(null, g - 1e-12, side="left")
    return float((k + 1) / (len(null) + 1))


def uniformity(ranks: pl.DataFrame, bins: int | None = None) -> pl.DataFrame:
    """Per-parameter tests on a ranks table with a ``u`` column: chi-square and ECDF p-values."""
    rows = []
    for (name,), part in ranks.group_by(["parameter"], maintain_order=True):
        u = part["u"].to_numpy()
        p_chi, b = chisq_test(u, bins)
        rows.append({"parameter": name, "n": len(u), "bins": b, "p_chisq": p_chi,
                     "p_ecdf": ecdf_test(u), "mean_u": float(np.mean(u))})
    return pl.DataFrame(rows)


# ----------------------------------------------------------------------------- result
@dataclass
class SBCResult:
    """``ranks``: simulation, parameter, rank, max_rank, u (normalised jittered rank);
    ``tests``: parameter, n, bins, p_chisq, p_ecdf, mean_u; ``sims``: per-simulation
    diagnostics (thinning, min ESS, max R-hat, divergences, centring, seconds)."""

    ranks: pl.DataFrame
    tests: pl.DataFrame
    sims: pl.DataFrame
    settings: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    draws: dict | None = None          # {(simulation, parameter): thinned draws} if kept
    truths: dict | None = None         # {(simulation, parameter): true value} if kept

    def min_p(self) -> float:
        return float(min(self.tests["p_chisq"].min(), self.tests["p_ecdf"].min()))

    def passed(self, alpha: float = 0.001) -> bool:
        """Every per-parameter p-value (both tests) above ``alpha``."""
        return self.min_p() > alpha

    def reranked(self, shift_sd: float, seed: int = 1) -> SBCResult:
        """Ranks against a deliberately miscalibrated posterior: every kept draw shifted by
        ``shift_sd`` posterior SDs (a negative control: the tests must reject). Needs
        ``keep_draws=True``."""
        if self.draws is None or self.truths is None:
            raise ValueError("run_sbc(..., keep_draws=True) is needed to re-rank")
        rng = np.random.default_rng(seed)
        rows = []
        for (s, name), d in self.draws.items():
            d2 = d + shift_sd * (np.std(d) if len(d) > 1 else 0.0)
            rows.append(_rank_row(s, name, self.truths[(s, name)], d2, rng))
        ranks = pl.DataFrame(rows)
        return SBCResult(ranks, uniformity(ranks), self.sims,
                         {**self.settings, "shift_sd": shift_sd}, self.timings)

    def to_json(self) -> str:
        tests = self.tests.to_dicts()
        out = {"settings": self.settings, "timings": self.timings,
               "min_p": self.min_p(), "n_parameters": self.tests.height,
               "passed_at_0.001": self.passed(0.001),
               "divergent_sims": int((self.sims["divergences"] > 0).sum()),
               "tests": tests}
        return json.dumps(out, indent=2, default=_json_default) + "\n"

    def write(self, folder: str | os.PathLike) -> dict[str, Path]:
        """``ranks.parquet``, ``sims.parquet`` and ``sbc.json``, atomically (the ECDF figure:
        :func:`biasstats.report.sbc.plot_ecdf_difference`)."""

        folder = Path(folder)
        out = {"ranks": write_parquet_atomic(folder / "ranks.parquet", self.ranks),
               "sims": write_parquet_atomic(folder / "sims.parquet", self.sims),
               "json": write_text_atomic(folder / "sbc.json", self.to_json())}
        return out


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _rank_row(sim: int, name: str, truth: float, draws: np.ndarray, rng) -> dict:
    rank = int(np.sum(draws < truth))
    m = len(draws)
    return {"simulation": sim, "parameter": name, "rank": rank, "max_rank": m,
            "u": (rank + rng.random()) / (m + 1)}


# ----------------------------------------------------------------------------- parameters
def scalars(ds, params: list[str] | None) -> dict[str, np.ndarray]:
    """Flatten every reported variable of ``ds`` into named scalars (``r_llm[gpt4]``).

    ``ds`` has leading sample dims (chain, draw) or (draw,); ``params`` selects names or
    variable prefixes (``"r_llm"`` takes all its elements)."""
    out: dict[str, np.ndarray] = {}
    for var in ds.data_vars:
        var = str(var)
        if var.startswith(_HIDDEN):
            continue
        da = ds[var]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            names = {var: da.values}
        else:
            stacked = da.stack(__e=extra)
            labels = [",".join(map(str, x)) if isinstance(x, tuple) else str(x)
                      for x in stacked["__e"].values]
            names = {f"{var}[{lab}]": stacked.isel(__e=i).values for i, lab in enumerate(labels)}
        for k, v in names.items():
            if params is None or k in params or var in params:
                out[k] = np.asarray(v, dtype=float)
    return out


# ----------------------------------------------------------------------------- design helpers
def _expand_cells(cells: pl.DataFrame, k: np.ndarray, response: str,
                  trials: str | None = None) -> pl.DataFrame:
    """Binomial cells (covariates, n) with successes k -> one 0/1 row per judgement, in cell
    order (so ``prepare`` collapses them back into the same cells); with ``trials`` (family
    binomial) one row per cell holding k and n."""
    covars = cells.drop([c for c in ("k", "n") if c in cells.columns])
    if trials:
        return covars.with_columns(pl.Series(response, k.astype(float)),
                                   pl.Series(trials, cells["n"].to_numpy().astype(float)))
    n = cells["n"].to_numpy().astype(np.int64)
    idx = np.repeat(np.arange(cells.height), n)
    pos = np.arange(len(idx)) - np.repeat(np.cumsum(n) - n, n)
    y = (pos < np.repeat(k, n)).astype(float)
    return covars[idx].with_columns(pl.Series(response, y))


# ----------------------------------------------------------------------------- run
class Compiled:
    """nutpie-compiled variants of one model, by centring choice, with swappable counts."""

    DATA = "__sbc_y"  # name of the shared observed data (``with_data`` keyword)

    def __init__(self):
        self.cache: dict[tuple, object] = {}
        self.compile_s = 0.0

    def get(self, mspec):
        # heavy libraries load on first use, not on import
        import nutpie
        import pymc as pm
        import pytensor


        key = tuple(g.centered for g in mspec.groups)
        if key not in self.cache:
            t0 = time.perf_counter()
            model = build_model(mspec)
            obs = pytensor.shared(np.asarray(mspec.y), name=self.DATA)
            model = pm.observe(model, {mspec.formula.response: obs})
            self.cache[key] = nutpie.compile_pymc_model(model)
            self.compile_s += time.perf_counter() - t0
        return self.cache[key]

    def with_y(self, mspec, y):
        """The compiled variant for ``mspec`` with observed data ``y`` swapped in."""
        return self.get(mspec).with_data(**{self.DATA: y})


def run_sbc(
    formula: str,
    design_df,
    family: str = "bernoulli",
    n_sims: int = 100,
    *,
    draws: int = 500,
    chains: int = 2,
    tune: int = 500,
    thin: int | None = None,
    seed: int = 0,
    params: list[str] | None = None,
    priors: dict | None = None,
    centered: dict[str, bool] | None = None,
    reuse_compiled: bool = True,
    target_accept: float | None = 0.9,
    adaptation: str = "diag",
    keep_draws: bool = False,
    bins: int | None = None,
    on_sim=None,
) -> SBCResult:
    """Simulation-based calibration of ``formula`` on the rows of ``design_df``.

    ``params``  parameter names (``Intercept``, ``sd_llm``, ``r_llm[gpt4]``) or variables
                (``r_llm`` = all its elements); default: every reported scalar
    ``thin``    keep every ``thin``-th draw per chain; default from the bulk ESS of each
                simulation (``ceil(draws * chains / min ESS)``) so kept draws are roughly
                independent
    ``centered`` per-grouping override of the automatic centring choice (as in ``fit``)
    ``on_sim``  callback ``f(sim, n_sims)`` after each simulation (progress)
    Binomial-family designs (bernoulli) only: other families are not collapsed into cells.
    """
    # heavy libraries load on first use, not on import
    import arviz_stats.base as azb


    t_start = time.perf_counter()
    fam = get_family(family)
    if not fam.collapse:
        raise ValueError(f"run_sbc supports the binomial-cell families (bernoulli, binomial), "
                         f"not '{fam.name}'")
    pf = parse_formula(formula)
    design = placeholder_response(pl.DataFrame(design_df) if not isinstance(design_df, pl.DataFrame)
                          else design_df, pf, fam)
    base = prepare(formula, design, fam, priors)
    fixed_priors = dict(base.priors)
    cells = base.cells
    # parameters and counts for all simulations: one prior-predictive call

    prior_model = build_model(base)
    tree = prior_draw(prior_model, seed, draws=n_sims)
    truths_all = scalars(tree.prior.to_dataset().isel(chain=0), params)
    ysim = np.asarray(tree.prior_predictive[pf.response].values[0])  # (n_sims, cells)
    if not truths_all:
        raise ValueError(f"no parameters match {params}")
    t_prior = time.perf_counter() - t_start

    compiled = Compiled()
    rng = np.random.default_rng([seed, 1])
    n_cell = cells["n"].to_numpy()
    rank_rows, sim_rows = [], []
    kept: dict | None = {} if keep_draws else None
    truths: dict | None = {} if keep_draws else None
    sample_s = 0.0
    for s in range(n_sims):
        k = ysim[s].astype(np.int64)
        rows = _expand_cells(cells, k, pf.response, pf.trials)
        t0 = time.perf_counter()
        if reuse_compiled:
            # heavy libraries load on first use, not on import
            import nutpie

            mspec = prepare(formula, rows, fam, fixed_priors, centered)
            if not np.array_equal(mspec.y, k):  # pragma: no cover - cell order is preserved
                raise RuntimeError("internal: cell order changed between simulations")
            cm = compiled.with_y(mspec, k)
            ta = (target_accept if target_accept is not None
                  else auto_target_accept(mspec)[0])
            t1 = time.perf_counter()
            post = nutpie.sample(cm, draws=draws, tune=tune, chains=chains,
                                 cores=min(chains, os.cpu_count() or 1), seed=seed * 100003 + s,
                                 progress_bar=False, target_accept=ta,
                                 adaptation=adaptation)
            sample_s += time.perf_counter() - t1
            centring = tuple(g.centered for g in mspec.groups)
        else:

            res = fit(formula, rows, fam.name, {k_: str(v) for k_, v in fixed_priors.items()},
                      chains=chains, tune=tune, draws=draws, seed=seed * 100003 + s,
                      target_accept=target_accept, centered=centered, progress=False,
                      adaptation=adaptation)
            post = res.idata
            ta = res.settings["target_accept"]
            centring = tuple(g.centered for g in res.spec.groups)
            sample_s += time.perf_counter() - t0
        ds = post.posterior.to_dataset()
        samples = scalars(ds, params)
        ess = {n: float(azb.array_stats.ess(v, chain_axis=0, draw_axis=1, method="bulk"))
               for n, v in samples.items()}
        rhat = {n: float(azb.array_stats.rhat(v, chain_axis=0, draw_axis=1))
                for n, v in samples.items()}
        total = chains * draws
        min_ess = max(min(ess.values()), 1.0)
        step = thin or max(1, math.ceil(total / min_ess))
        for name, v in samples.items():
            d = v[:, ::step].ravel()
            t = float(truths_all[name][s])
            rank_rows.append(_rank_row(s, name, t, d, rng))
            if kept is not None:
                kept[(s, name)] = d
                truths[(s, name)] = t
        div = int(np.asarray(post.sample_stats["diverging"]).sum())
        sim_rows.append({"simulation": s, "thin": step, "kept": len(d),
                         # share of cells at a bound (all or none congruent): the likelihood
                         # is flat towards +-inf there, so only the prior bounds those effects
                         "boundary_cells": float(np.mean((k == 0) | (k == n_cell))),
                         "min_ess_bulk": float(min(ess.values())),
                         "max_rhat": float(max(rhat.values())), "divergences": div,
                         "target_accept": ta,
                         "centred": ",".join(g.name for g, c in zip(base.groups, centring,
                                                                     strict=True) if c),
                         "seconds": time.perf_counter() - t0})
        if on_sim is not None:
            on_sim(s + 1, n_sims)
    ranks = pl.DataFrame(rank_rows)
    settings = {"formula": formula, "family": fam.name, "n_sims": n_sims, "draws": draws,
                "chains": chains, "tune": tune, "thin": thin or "auto (bulk ESS)",
                "seed": seed, "target_accept": target_accept, "adaptation": adaptation,
                "reuse_compiled": reuse_compiled,
                "centered": centered or "auto",
                "cells": int(cells.height), "rows": int(base.n_rows),
                "priors": {k_: str(v) for k_, v in fixed_priors.items()}}
    timings = {"prior_s": t_prior, "compile_s": compiled.compile_s,
               "compiled_variants": len(compiled.cache), "sampling_s": sample_s,
               "total_s": time.perf_counter() - t_start}
    return SBCResult(ranks, uniformity(ranks, bins), pl.DataFrame(sim_rows), settings, timings,
                     kept, truths)
