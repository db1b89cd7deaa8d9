"""Sampling: nutpie by default (compiled with numba or JAX, :func:`auto_backend`, and cached by
the model's structure, :mod:`biasstats.inference.compiled`; low-rank mass-matrix adaptation),
PyMC's own NUTS as the fallback, then log-likelihood and posterior predictive so LOO and PPCs
need no extra switch."""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import sys
import time
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from biasstats.errors import SpecError
from biasstats.inference.compiled import compile_model, largest_constant_bytes
from biasstats.inference.predict import linear_predictor
from biasstats.io import STORAGE_FULL, storage_error
from biasstats.model.design import aux_draws, rows_of
from biasstats.model.families import beta_binomial_log_pmf, rising_tables
from biasstats.model.sufficient import count_stats

if TYPE_CHECKING:
    from biasstats.spec.schema import FitSpec

__all__ = ["sample_model", "want_progress", "auto_target_accept", "auto_backend", "auto_device",
           "pattern_predictive"]

#: automatic target acceptance by the largest funnel risk of any term (see auto_target_accept)
TARGET_ACCEPT_STEPS = ((0.5, 0.9), (1.0, 0.95), (math.inf, 0.99))


def auto_target_accept(spec) -> tuple[float, str]:
    """NUTS target acceptance for a prepared model, and why.

    Each group term's ``funnel_risk`` (set by the centring rule) says how far its chosen
    parameterisation reaches into its funnel within the 90% range of its SD the data allow:
    se/tau_lo for a centred term, tau_hi/se for a non-centred one. Up to 0.5 the geometry is
    benign and the default 0.9 is kept; up to 1 the target is 0.95; beyond 1 (a few-level
    term whose SD the data barely pin down, e.g. 2-4 prompt variants) it is 0.99, a smaller
    step size that follows the funnel's neck. Measured by SBC of the canonical model (200
    simulations, seed 1): fixed 0.95 gave 66 divergent fits, fixed 0.99 16 at twice the
    sampling time; the risk split them as 4/53 divergent at risk <= 0.5, 11/41 at 0.5-1 and
    51/106 above 1."""
    risks = [(g.funnel_risk, g) for g in spec.groups if g.funnel_risk is not None]
    if not risks:
        return TARGET_ACCEPT_STEPS[0][1], "automatic: no group term with a funnel risk"
    risk, g = max(risks, key=lambda t: t[0])
    # a NaN risk (data no model can use, refused before this) takes the most careful step
    value = next((v for bound, v in TARGET_ACCEPT_STEPS if risk <= bound),
                 TARGET_ACCEPT_STEPS[-1][1])
    side = "centred" if g.centered else "non-centred"
    return value, (f"automatic: largest funnel risk {risk:.2g} ({g.name}, {side}; "
                   f"0.9 up to 0.5, 0.95 up to 1, 0.99 above)")


# Above this many unconstrained parameters nutpie's low-rank mass matrix costs more per draw
# than it gains: a bernoulli with 800 name levels (803 parameters, 1,588 cells) sampled 1,200
# iterations x 2 chains in 26.8 s with low_rank (min bulk ESS 122-247) and 7.1-10 s with diag
# (ESS 99-194): ~2-3x the ESS per second. Below it, low_rank wins by far (the 8-LLM default
# model, ~230 parameters: diag needs 66 leapfrog steps per draw for min ESS 119, low_rank 31
# for ESS 767).
LOW_RANK_MAX_PARAMS = 500

# ... unless the likelihood reads this many observations (cells when collapsed) per parameter.
# A rule from three measurements (tests/benchmarks/bench_adaptation.py), not a law: low_rank
# costs ~2-10x more per leapfrog step than diag at 660-800 parameters, and wins only where
# diag mixes badly. The token-shaped gaussian (661 parameters, 30,000 rows: 45 per parameter;
# prompts confounded with their test's condition means) gave min bulk ESS 162 in 57 s of
# sampling with diag (failing the ESS gate, so refitted at twice the draws) and 3,001 in 104
# s with low_rank: 10x the ESS per second. With 6,000 rows (9 per parameter) they were even:
# ESS 364 in 44 s (failing the gate) and 2,838 in 329 s (8.2 and 8.6 ESS/s, load ~17). The
# 800-level bernoulli (1,588 cells, 2 per parameter): diag 669 in 31 s, low_rank 712 in 455 s.
LOW_RANK_MIN_OBS_PER_PARAM = 20

# Regularisation of nutpie's low-rank mass-matrix estimate (its ``mass_matrix_gamma``, added to
# the projected draw and gradient covariances). nutpie's default, 1e-5, lets the early
# adaptation windows (20-100 draws for ~200 parameters) set directions they cannot determine;
# on the 8-LLM default model (184 parameters, 4 chains x (500 + 1,000) on 2 cores) it needed
# 35 leapfrog steps per warm-up iteration and 21.5 per draw at ~1.0 ms per step: 78 s, min
# bulk ESS 2,953. With 1e-2: 25 and 18 steps at ~0.5 ms, 32 s, ESS 2,673-3,276 (two seeds),
# R-hat 1.005, no divergences; 1e-3, 0.1 and 1 took 43, 36 and 35 s.
LOW_RANK_GAMMA = 1e-2


def adaptation_options(adaptation: str) -> dict:
    """nutpie's mass-matrix options for ``adaptation``: passed to the sampler and recorded in
    the fit's settings (the methods paragraph quotes them)."""
    return {"adaptation": adaptation,
            **({"mass_matrix_gamma": LOW_RANK_GAMMA} if adaptation == "low_rank" else {})}


def auto_adaptation(n: int, observations: int | None = None) -> tuple[str, str]:
    """nutpie mass-matrix adaptation for a model of ``n`` unconstrained parameters whose
    likelihood reads ``observations`` rows (cells when collapsed), and why: low_rank up to
    LOW_RANK_MAX_PARAMS parameters, or above with at least LOW_RANK_MIN_OBS_PER_PARAM
    observations per parameter; diag otherwise."""
    if n <= LOW_RANK_MAX_PARAMS:
        return "low_rank", f"automatic: {n} parameters (low_rank up to {LOW_RANK_MAX_PARAMS})"
    per = (observations or 0) / n
    if per >= LOW_RANK_MIN_OBS_PER_PARAM:
        return "low_rank", (f"automatic: {n} parameters, above {LOW_RANK_MAX_PARAMS}, but "
                            f"{observations} observations ({per:.0f} per parameter, at least "
                            f"{LOW_RANK_MIN_OBS_PER_PARAM}): low_rank's better mixing "
                            "outweighs its cost per step")
    return "diag", (f"automatic: {n} parameters, above {LOW_RANK_MAX_PARAMS}, and {per:.0f} "
                    f"observations per parameter (low_rank from {LOW_RANK_MIN_OBS_PER_PARAM}): "
                    "a low-rank update costs more per draw than it gains")


# Above this many bytes in one data array (numba's limit for a constant it embeds: 10^6) the
# numba-compiled model holds the array by address and cannot be cached, and its gradient
# leaves the CPU cache. Measured (CPU time per gradient, numba / nutpie's JAX backend, a
# y ~ x1 + x2 + x3 + (1|g) model): bernoulli 20,000 rows 0.57 / 0.58 ms, 100,000 2.7 / 1.5,
# 200,000 15.3 / 4.1; gaussian 30,000 rows 0.12 / 0.49, 100,000 0.49 / 1.39, 200,000
# 7.1 / 2.7. The bench's models (largest array 0.2-0.5 MB): numba 0.02-0.33 ms, JAX
# 0.07-0.76 ms (its gradient is called through Python, once per leapfrog step).
JAX_MIN_BYTES = 10**6


def auto_backend(model) -> tuple[str, str]:
    """nutpie's compile backend for a PyMC model, and why: numba, unless the model holds a
    data array above :data:`JAX_MIN_BYTES` and JAX is installed."""
    size = largest_constant_bytes(model)
    mb = f"largest data array {size / 1e6:.2g} MB"
    if size <= JAX_MIN_BYTES:
        return "numba", (f"automatic: {mb} (numba up to {JAX_MIN_BYTES / 1e6:g} MB, where it "
                         "can cache the compiled model and its gradient is the cheaper)")
    if importlib.util.find_spec("jax") is None:
        return "numba", (f"automatic: {mb}, above {JAX_MIN_BYTES / 1e6:g} MB, where JAX's "
                         "gradient is the cheaper, but JAX is not installed")
    return "jax", (f"automatic: {mb}, above {JAX_MIN_BYTES / 1e6:g} MB (numba cannot cache "
                   "the compiled model and its gradient costs 2.6-3.8x JAX's)")


def auto_device(backend: str, device: str) -> tuple[str, str]:
    """Where the resolved ``backend`` runs — "cpu" or "gpu" — for ``[fit] device``, and why;
    a one-line SpecError for ``device = "gpu"`` when JAX sees no GPU."""
    if backend != "jax":
        return "cpu", "numba compiles for the CPU"
    gpu = jax_device("gpu")
    if device == "gpu" and gpu is None:
        raise SpecError('[fit] device = "gpu": JAX sees no GPU on this machine (it needs a '
                        'CUDA device and jax[cuda12]); use device = "auto" or "cpu"')
    if device == "cpu":
        return "cpu", "set by user"
    if device == "gpu":
        return "gpu", f"set by user ({gpu.device_kind})"
    if gpu is not None:
        return "gpu", f"automatic: JAX sees a GPU ({gpu.device_kind})"
    return "cpu", "automatic: JAX sees no GPU"


def jax_device(platform: str):
    """JAX's first device on ``platform`` ("cpu" or "gpu"), or None when it has none."""
    # heavy libraries load on first use
    import jax

    try:
        devices = jax.devices(platform)
    except RuntimeError:  # no backend for this platform (e.g. no CUDA plugin or device)
        return None
    return devices[0] if devices else None


@contextmanager
def on_device(backend: str, device: str):
    """JAX's default device set to ``device``'s while the block runs (compiling, sampling,
    the log-likelihood), then restored: nutpie places the model's data on the default device
    when it compiles, and calls the compiled gradient from its own threads, which a
    thread-local ``jax.default_device`` would not reach. A no-op for numba."""
    if backend != "jax":
        yield
        return
    # heavy libraries load on first use
    import jax

    old = jax.config.jax_default_device
    jax.config.update("jax_default_device", jax_device(device))
    try:
        yield
    finally:
        jax.config.update("jax_default_device", old)


def want_progress(progress: bool | None) -> bool:
    """Progress bars on a terminal; quiet when stderr is not a TTY or CI is set."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # pragma: no cover
        return False


def _nutpie_available() -> bool:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return True


def sample_model(model, settings: FitSpec, progress: bool | None = None,
                 predictive: bool = True):
    """Sample ``model`` with the (already validated) ``[fit]`` settings; return (DataTree,
    timings dict). ``predictive=False`` leaves the posterior predictive to the caller
    (:func:`pattern_predictive`)."""
    # heavy libraries load on first use, not on import
    import pymc as pm
    import pytensor

    chains, tune, draws, seed = settings.chains, settings.tune, settings.draws, settings.seed
    sampler, target_accept = settings.sampler, settings.target_accept
    if target_accept is None:
        raise ValueError("sample_model: target_accept must be resolved (fit_prepared does this)")
    if settings.backend not in ("numba", "jax"):
        raise ValueError("sample_model: backend must be resolved (fit_prepared does this)")
    show = want_progress(progress)
    used = sampler
    if sampler == "nutpie" and not _nutpie_available():
        warnings.warn("nutpie is not installed; falling back to PyMC's NUTS sampler",
                      stacklevel=3)
        used = "pymc"
    t0 = time.perf_counter()
    compiled: list[dict] = []
    quiet_loggers = [] if show else ["pymc", "pymc.sampling", "pymc.stats.convergence"]
    old = {n: logging.getLogger(n).level for n in quiet_loggers}
    for n in quiet_loggers:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        # IEEE arithmetic in every compiled function: with numba's fastmath (reassociation,
        # contraction) a freshly compiled function inlined into a caller and the same function
        # loaded from a cache round differently, and NUTS turns 1e-16 into different draws:
        # the same seed gave different posteriors depending on the state of the compile
        # cache. PyTensor keys its cache by the flag, so the two never mix.
        with (model, warnings.catch_warnings(),  # filters set while sampling stay local
              pytensor.config.change_flags(numba__fastmath=False),
              on_device(settings.backend, settings.device)):
            if used == "nutpie":
                idata = _sample_nutpie(model, settings, show, compiled)
            else:
                idata = pm.sample(
                    draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=show,
                    nuts_sampler="pymc", target_accept=target_accept,
                    compute_convergence_checks=False, quiet=not show,
                )
            t1 = time.perf_counter()
            # nothing a user can act on: PyTensor random ops without a numba kernel
            warnings.filterwarnings("ignore", message="Numba will use object mode")
            # a joint model with a sufficient-statistic part (a Potential) beside observed
            # parts: the posterior draws carry the Potential, the other parts' predictions
            # given those draws are exact (the Potential's own part gets its own)
            warnings.filterwarnings("ignore", message="The effect of Potentials on other")
            if model.observed_RVs:  # else the caller computes both (derived_groups)
                idata = pm.compute_log_likelihood(idata, model=model, progressbar=False,
                                                  extend_inferencedata=True)
            t_ll = time.perf_counter()
            if predictive and model.observed_RVs:
                pm.sample_posterior_predictive(idata, model=model, random_seed=seed + 1,
                                               progressbar=False, extend_inferencedata=True)
    except OSError as e:  # numba or PyTensor writing its cache to a full disk
        if e.errno not in STORAGE_FULL:
            raise
        raise storage_error(e, "the compiled model's cache (numba, PyTensor; NUMBA_CACHE_DIR "
                               "and PYTENSOR_FLAGS=compiledir=... move it)") from None
    finally:
        for n, lvl in old.items():
            logging.getLogger(n).setLevel(lvl)
    t2 = time.perf_counter()
    # sampling_s includes compiling the model (compile_s)
    timings = {"sampler": used, "sampling_s": t1 - t0, "log_likelihood_s": t_ll - t1,
               **({"compile_s": compiled[0]["compile_s"], "compile_cache": compiled[0]["cache"]}
                  if compiled else {}),
               "predictive_s": t2 - t_ll, "postprocess_s": t2 - t1, "total_s": t2 - t0}
    return idata, timings


def _sample_nutpie(model, settings: FitSpec, show: bool, out: list[dict]):
    """nutpie on ``model``, compiled by :func:`biasstats.inference.compiled.compile_model` with
    ``settings.backend`` (loaded from the cache when its structure was compiled before); the
    compile info (backend, cache state, seconds) is appended to ``out``. nutpie is called
    directly, not through ``pm.sample``, whose step-method assignment builds the gradient
    graph once more (1-2 s) before handing the model to nutpie."""
    # heavy libraries load on first use, not on import
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    compiled, info = compile_model(model, settings.backend)
    out.append(info)
    t = time.time()
    idata = nutpie.sample(
        compiled, draws=settings.draws, tune=max(settings.tune, 1), chains=settings.chains,
        cores=min(settings.chains, os.cpu_count() or 1), seed=settings.seed,
        save_warmup=False, store_unconstrained=False, progress_bar=show,
        target_accept=settings.target_accept, **adaptation_options(settings.adaptation))
    patch_nutpie_idata(idata, model, sampling_time=time.time() - t)
    return idata


@contextmanager
def _timed_compile(out: list[float]):
    """Time nutpie's model compilation inside ``pm.sample`` (PyMC looks the function up on
    the nutpie module at call time), so the report can give compile and sampling apart."""
    # heavy libraries load on first use, not on import
    import nutpie

    orig = nutpie.compile_pymc_model

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return orig(*args, **kwargs)
        finally:
            out.append(time.perf_counter() - t)

    nutpie.compile_pymc_model = timed
    try:
        yield
    finally:
        nutpie.compile_pymc_model = orig


def pattern_predictive(fit, seed: int, chunk: int = 500):
    """Posterior predictive of a pattern-weighted model, drawn in numpy from the family's
    ``draw`` (no PyTensor random graph, so nothing runs in numba object mode).

    ``<response>``: one replicated trial per pattern (what LOO-PIT compares with the pattern's
    observed k); ``<response>__total``: the sum over the pattern's ``weights[p]`` trials, each
    drawn independently given the draw's parameters (what grouped rates need). Draws are made
    ``chunk`` posterior draws at a time, so memory stays bounded by chunk x trials."""
    # heavy libraries load on first use, not on import
    import xarray as xr


    spec = fit.spec
    fam = spec.family
    post = fit.idata["posterior"].to_dataset()
    C, D = post.sizes["chain"], post.sizes["draw"]
    eta = linear_predictor(fit)
    aux = {k: aux_draws(post, spec, k) for k in fam.aux}
    n = np.asarray(spec.trials)
    w = np.asarray(spec.weights, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(w)[:-1]])
    rep_n = np.repeat(n, w)
    rng = np.random.default_rng(seed)
    one = np.empty(eta.shape, dtype=np.int64)
    total = np.empty(eta.shape, dtype=np.int64)
    for s0 in range(0, eta.shape[0], chunk):
        sl = slice(s0, s0 + chunk)
        a = {k: v[sl] for k, v in aux.items()}
        one[sl] = fam.draw(rng, eta[sl], a, n)
        rep = fam.draw(rng, np.repeat(eta[sl], w, axis=1),
                       {k: (np.repeat(v, w, axis=1) if v.shape[1] > 1 else v)
                        for k, v in a.items()}, rep_n)
        total[sl] = np.add.reduceat(rep, starts, axis=1)
    resp, dim = spec.formula.response, spec.obs_dim
    dt = np.int16 if n.max() * w.max() < 32000 else np.int64
    ds = xr.Dataset({
        resp: (("chain", "draw", dim), one.reshape(C, D, -1).astype(dt)),
        f"{resp}__total": (("chain", "draw", dim), total.reshape(C, D, -1).astype(dt)),
    }, coords={"chain": post["chain"].values, "draw": post["draw"].values,
               dim: np.arange(eta.shape[1])})
    return ds



def _cell_ab(fit, stats):
    """(a, b) of the beta mixing p per draw and covariate cell (the family's ``beta_ab``):
    (S, C) each."""

    sub = rows_of(fit.spec, stats.rows)
    eta = linear_predictor(fit, spec=sub)
    post = fit.idata["posterior"].to_dataset()
    return fit.spec.family.beta_ab(eta, {k: aux_draws(post, sub, k) for k in fit.spec.family.aux})


CHUNK_DRAWS = 500


def pattern_log_likelihood(fit, stats):
    """The ``log_likelihood`` group of a sufficient-statistic beta-binomial model: per draw
    and pattern, the log density of *one* of the pattern's trials (as PyMC's
    ``compute_log_likelihood`` gives for the observed pattern variable), from rising-factorial
    tables per covariate cell (exact; no log-gamma per draw and pattern)."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    spec = fit.spec
    post = fit.idata["posterior"]
    C, D = post.sizes["chain"], post.sizes["draw"]
    a, b = _cell_ab(fit, stats)
    n = np.asarray(spec.trials, dtype=np.int64)
    k = np.asarray(spec.y, dtype=np.int64)
    J = stats.A.shape[1]
    ll = np.empty((a.shape[0], len(n)))
    for s0 in range(0, a.shape[0], CHUNK_DRAWS):
        sl = slice(s0, s0 + CHUNK_DRAWS)
        ll[sl] = beta_binomial_log_pmf(rising_tables(a[sl], b[sl], J), stats.cell, n, k, J)
    return xr.Dataset(
        {spec.formula.response: (("chain", "draw", spec.obs_dim), ll.reshape(C, D, -1))},
        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                spec.obs_dim: np.arange(ll.shape[1])})


def pattern_predictive_stats(fit, stats, seed: int):
    """Posterior predictive of a sufficient-statistic beta-binomial model, in numpy.

    ``<response>``: one replicated trial per pattern (what LOO-PIT compares with the pattern's
    observed k), drawn once per covariate cell and trial count and shared by that cell's
    patterns (each pattern's marginal is exact); ``<response>__total``: per pattern, the
    replicated total over the trials of its covariate cell and trial count (stored on the
    first pattern of each, 0 on the others), so any sum over patterns of whole cells — every
    grouped rate — is exact. The W trials of a cell are iid beta-binomial, so the number of
    them with each k = 0..n is multinomial with the beta-binomial probabilities: one
    multinomial draw per cell, not one draw per trial."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    spec = fit.spec
    post = fit.idata["posterior"]
    C, D = post.sizes["chain"], post.sizes["draw"]
    a, b = _cell_ab(fit, stats)
    S = a.shape[0]
    n = np.asarray(spec.trials, dtype=np.int64)
    w = np.asarray(spec.weights, dtype=np.int64)
    J = stats.A.shape[1]
    group_key = stats.cell * (J + 1) + n          # (cell, n)
    keys, first, inv = np.unique(group_key, return_index=True, return_inverse=True)
    g_cell, g_n = stats.cell[first], n[first]
    g_w = np.bincount(inv, weights=w).astype(np.int64)
    rng = np.random.default_rng(seed)
    one = np.zeros((S, len(keys)), dtype=np.int64)
    tot = np.zeros((S, len(keys)), dtype=np.int64)
    for s0 in range(0, S, CHUNK_DRAWS):
        sl = slice(s0, s0 + CHUNK_DRAWS)
        tables = rising_tables(a[sl], b[sl], J)
        for nv in np.unique(g_n):
            sel = np.flatnonzero(g_n == nv)
            kk = np.arange(nv + 1)
            logp = beta_binomial_log_pmf(tables, np.repeat(g_cell[sel], nv + 1), np.full(len(sel) * (nv + 1), nv),
                            np.tile(kk, len(sel)), J).reshape(-1, len(sel), nv + 1)
            pmf = np.exp(logp - logp.max(axis=-1, keepdims=True))
            pmf /= pmf.sum(axis=-1, keepdims=True)
            counts = rng.multinomial(np.broadcast_to(g_w[sel], pmf.shape[:-1]), pmf)
            tot[sl, sel] = counts @ kk
            u = rng.random(pmf.shape[:-1])[..., None]
            one[sl, sel] = np.minimum((np.cumsum(pmf, axis=-1) < u).sum(axis=-1), nv)
    total = np.zeros((S, len(n)), dtype=np.int64)
    total[:, first] = tot
    resp, dim = spec.formula.response, spec.obs_dim
    dt = np.int16 if int(g_w.max()) * int(n.max()) < 32000 else np.int64
    return xr.Dataset({
        resp: (("chain", "draw", dim), one[:, inv].reshape(C, D, -1).astype(dt)),
        f"{resp}__total": (("chain", "draw", dim), total.reshape(C, D, -1).astype(dt)),
    }, coords={"chain": post["chain"].values, "draw": post["draw"].values,
               dim: np.arange(len(n))})


def observed_patterns(spec):
    """The ``observed_data`` group of a pattern model: each pattern's k."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    return xr.Dataset({spec.formula.response: (spec.obs_dim, np.asarray(spec.y))},
                      coords={spec.obs_dim: np.arange(len(spec.y))})


def derived_groups(fit, seed: int) -> dict[str, float]:
    """Fill the ``observed_data``, ``log_likelihood`` and ``posterior_predictive`` groups of a
    sufficient-statistic model (:func:`biasstats.model.sufficient.count_stats`) from its posterior
    draws, in place; returns the seconds spent (``log_likelihood_s``, ``predictive_s``). They
    are not stored in posterior.nc (deterministic functions of the draws, the data and the
    seed, and ~25x the size of the posterior): a cached fit recomputes them."""

    stats = count_stats(fit.spec)
    if stats is None:
        return {}
    out = {}
    resp = fit.spec.formula.response

    def lacks(group: str) -> bool:  # pm.sample leaves an empty observed_data group
        return group not in fit.idata.children or resp not in fit.idata[group].data_vars

    if lacks("observed_data"):
        fit.idata["observed_data"] = observed_patterns(fit.spec)
    if lacks("log_likelihood"):
        t0 = time.perf_counter()
        fit.idata["log_likelihood"] = pattern_log_likelihood(fit, stats)
        out["log_likelihood_s"] = time.perf_counter() - t0
    if lacks("posterior_predictive"):
        t0 = time.perf_counter()
        fit.idata["posterior_predictive"] = pattern_predictive_stats(fit, stats, seed)
        out["predictive_s"] = time.perf_counter() - t0
    return out
