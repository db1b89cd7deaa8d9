"""Sampling: nutpie by default (compiled with numba, low-rank mass-matrix adaptation), PyMC's
own NUTS as the fallback, then log-likelihood and posterior predictive so LOO and PPCs need no
extra switch."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from biasstats.spec.schema import FitSpec

__all__ = ["sample_model", "want_progress"]


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


def sample_model(model, settings: FitSpec, progress: bool | None = None):
    """Sample ``model`` with the (already validated) ``[fit]`` settings; return (DataTree,
    timings dict)."""
    import pymc as pm

    chains, tune, draws, seed = settings.chains, settings.tune, settings.draws, settings.seed
    sampler, target_accept = settings.sampler, settings.target_accept
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
        with model, warnings.catch_warnings():  # filters set while sampling stay local
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
            idata = pm.compute_log_likelihood(idata, model=model, progressbar=False,
                                              extend_inferencedata=True)
            pm.sample_posterior_predictive(idata, model=model, random_seed=seed + 1,
                                           progressbar=False, extend_inferencedata=True)
    finally:
        for n, lvl in old.items():
            logging.getLogger(n).setLevel(lvl)
    t2 = time.perf_counter()
    timings = {"sampler": used, "sampling_s": t1 - t0, "postprocess_s": t2 - t1,
               "total_s": t2 - t0}
    return idata, timings
