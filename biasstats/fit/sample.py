"""Sampling: nutpie by default (compiled with numba, low-rank mass-matrix adaptation), PyMC's
own NUTS as the fallback, then log-likelihood and posterior predictive so LOO and PPCs need no
extra switch."""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from biasstats.spec.schema import FitSpec

__all__ = ["sample_model", "want_progress", "auto_target_accept", "pattern_predictive"]

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
    value = next(v for bound, v in TARGET_ACCEPT_STEPS if risk <= bound)
    side = "centred" if g.centered else "non-centred"
    return value, (f"automatic: largest funnel risk {risk:.2g} ({g.name}, {side}; "
                   f"0.9 up to 0.5, 0.95 up to 1, 0.99 above)")


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
    import pymc as pm
    import pytensor

    chains, tune, draws, seed = settings.chains, settings.tune, settings.draws, settings.seed
    sampler, target_accept = settings.sampler, settings.target_accept
    if target_accept is None:
        raise ValueError("sample_model: target_accept must be resolved (fit_prepared does this)")
    adaptation = settings.adaptation
    show = want_progress(progress)
    used = sampler
    if sampler == "nutpie" and not _nutpie_available():
        warnings.warn("nutpie is not installed; falling back to PyMC's NUTS sampler",
                      stacklevel=3)
        used = "pymc"
    t0 = time.perf_counter()
    quiet_loggers = [] if show else ["pymc", "pymc.sampling", "pymc.stats.convergence"]
    old = {n: logging.getLogger(n).level for n in quiet_loggers}
    for n in quiet_loggers:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        # IEEE arithmetic in the compiled log density: with numba's fastmath (reassociation,
        # contraction) a freshly compiled function inlined into nutpie's wrapper and the same
        # function loaded from PyTensor's cache round differently, and NUTS turns 1e-16 into
        # different draws: the same seed gave different posteriors depending on the state of
        # the compile cache. PyTensor keys its cache by the flag, so the two never mix.
        with (model, warnings.catch_warnings(),  # filters set while sampling stay local
              pytensor.config.change_flags(numba__fastmath=False)):
            if used == "nutpie":
                idata = pm.sample(
                    draws=draws, tune=tune, chains=chains, cores=min(chains, os.cpu_count() or 1),
                    random_seed=seed, progressbar=show, nuts_sampler="nutpie",
                    nuts={"target_accept": target_accept, "adaptation": adaptation},
                    compute_convergence_checks=False, quiet=not show,
                )
            else:
                idata = pm.sample(
                    draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=show,
                    nuts_sampler="pymc", target_accept=target_accept,
                    compute_convergence_checks=False, quiet=not show,
                )
            t1 = time.perf_counter()
            # nothing a user can act on: PyTensor random ops without a numba kernel
            warnings.filterwarnings("ignore", message="Numba will use object mode")
            idata = pm.compute_log_likelihood(idata, model=model, progressbar=False,
                                              extend_inferencedata=True)
            t_ll = time.perf_counter()
            if predictive:
                pm.sample_posterior_predictive(idata, model=model, random_seed=seed + 1,
                                               progressbar=False, extend_inferencedata=True)
    finally:
        for n, lvl in old.items():
            logging.getLogger(n).setLevel(lvl)
    t2 = time.perf_counter()
    # sampling_s includes compiling the model (nutpie compiles inside pm.sample)
    timings = {"sampler": used, "sampling_s": t1 - t0, "log_likelihood_s": t_ll - t1,
               "predictive_s": t2 - t_ll, "postprocess_s": t2 - t1, "total_s": t2 - t0}
    return idata, timings


def pattern_predictive(fit, seed: int, chunk: int = 500):
    """Posterior predictive of a pattern-weighted model, drawn in numpy from the family's
    ``draw`` (no PyTensor random graph, so nothing runs in numba object mode).

    ``<response>``: one replicated trial per pattern (what LOO-PIT compares with the pattern's
    observed k); ``<response>__total``: the sum over the pattern's ``weights[p]`` trials, each
    drawn independently given the draw's parameters (what grouped rates need). Draws are made
    ``chunk`` posterior draws at a time, so memory stays bounded by chunk x trials."""
    import numpy as np
    import xarray as xr

    from biasstats.effects.predict import linear_predictor
    from biasstats.model.build import aux_draws

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

