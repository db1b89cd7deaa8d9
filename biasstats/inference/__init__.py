"""Inference: formula + data -> hierarchical PyMC model -> sampled :class:`Fit`
(``biasstats.fit`` is this package's :func:`fit`)."""

from __future__ import annotations

import copy
import time

import numpy as np
from pydantic import ValidationError

from biasstats.errors import SpecError, first_line
from biasstats.inference.attempts import join_chains, run_attempts
from biasstats.inference.convergence import convergence_gate
from biasstats.inference.result import Fit, PriorTable, stored_precision
from biasstats.inference.sample import (
    adaptation_options,
    auto_adaptation,
    auto_backend,
    auto_device,
    auto_target_accept,
    derived_groups,
    pattern_predictive,
    sample_model,
)
from biasstats.model.build import prepare
from biasstats.model.graph import build_model
from biasstats.spec.load import describe_error
from biasstats.spec.schema import MAX_MEMORY_GB, FitSpec

__all__ = ["fit", "fit_prepared", "fit_settings", "flipped", "memory_estimate", "resolve_settings", "Fit",
           "PriorTable"]

BYTES_PER_VALUE = 8  # float64 draws


def fit(
    formula: str,
    data,
    family: str = "bernoulli",
    priors: dict | None = None,
    *,
    chains: int = 4,
    tune: int = 1000,
    draws: int = 1000,
    seed: int = 0,
    sampler: str = "nutpie",
    target_accept: float | None = None,
    centered: dict[str, bool] | None = None,
    progress: bool | None = None,
    adaptation: str = "auto",
    max_memory_gb: float = 4.0,
    backend: str = "auto",
    device: str = "auto",
) -> Fit:
    """Fit a hierarchical model.

    ``formula``  lme4/brms style, e.g. ``"congruent ~ 1 + (1|llm) + (1|category/stereotype)"``
    ``data``     polars or pandas DataFrame; rows with missing values in the referenced
                 columns are dropped (``Fit.spec.n_dropped``)
    ``family``   see :data:`biasstats.model.families.FAMILIES`
    ``priors``   overrides, e.g. ``{"sd_llm": "HalfNormal(1)", "Intercept": "Normal(0, 2)"}``
    ``centered`` per-grouping override of the automatic centring choice, ``{"llm": True}``
    ``sampler``  ``"nutpie"`` (default) or ``"pymc"``
    ``target_accept`` NUTS target acceptance; None (default) chooses 0.9, 0.95 or 0.99 from
                 how far the terms' parameterisations reach into their funnels
                 (:func:`biasstats.inference.sample.auto_target_accept`); the choice and its reason
                 are in ``Fit.settings``
    ``adaptation`` nutpie mass matrix: ``"auto"`` (default: ``"low_rank"`` up to
                 :data:`biasstats.inference.sample.LOW_RANK_MAX_PARAMS` unconstrained parameters,
                 or above with at least ``LOW_RANK_MIN_OBS_PER_PARAM`` (20) observations
                 per parameter, ``"diag"`` otherwise), ``"low_rank"`` (diagonal plus a low-rank
                 correction that adapts to posterior correlations) or ``"diag"``. Measured
                 on the Bai-shaped study with an llm:stereotype term (211 parameters):
                 diag 25 s, min bulk ESS 157, R-hat 1.027 (fails the gate); low_rank 90 s,
                 ESS 6573, R-hat 1.006 — 12x the ESS per second. On the GPT-4o canonical
                 model: diag ESS 475 (R-hat 1.011), low_rank ESS 3142 in less time.
    ``backend``  how nutpie compiles the log density and its gradient: ``"auto"`` (default:
                 numba, or JAX for a model holding a data array above
                 :data:`biasstats.inference.sample.JAX_MIN_BYTES`), ``"numba"`` or ``"jax"``;
                 the choice and its reason are in ``Fit.settings``. A compiled model is cached
                 by its structure (:mod:`biasstats.inference.compiled`)
    ``device``   where the JAX backend runs: ``"auto"`` (default: a GPU when JAX sees one,
                 else the CPU), ``"cpu"`` or ``"gpu"`` (a one-line error when JAX sees none);
                 numba always runs on the CPU. The choice and its reason are in ``Fit.settings``
    ``max_memory_gb`` cap on the fit's estimated memory (:func:`memory_estimate`), checked
                 before sampling; limits on chains, draws, tune and seed are the ``[fit]``
                 table's (:mod:`biasstats.spec.schema`)
    """

    settings = fit_settings(chains=chains, tune=tune, draws=draws, seed=seed, sampler=sampler,
                            target_accept=target_accept, adaptation=adaptation,
                            max_memory_gb=max_memory_gb, backend=backend, device=device)
    return fit_prepared(prepare(formula, data, family, priors, centered), settings, progress)


def fit_settings(**kw) -> FitSpec:
    """Sampler settings checked by the spec's own ``[fit]`` schema (one-line SpecError)."""
    try:
        return FitSpec(**kw)
    except ValidationError as e:
        err = e.errors()[0]
        raise SpecError(describe_error({**err, "loc": ("fit", *err["loc"])})) from None


def fit_prepared(spec, settings: FitSpec | None = None, progress: bool | None = None,
                 thresholds=None, derive: bool = True, on_attempt=None) -> Fit:
    """Sample a model already prepared by :func:`biasstats.model.build.prepare` with
    ``settings`` (the ``[fit]`` table; its defaults when None).

    With ``thresholds`` (:class:`biasstats.inference.convergence.Thresholds`) the fit is checked
    against the convergence gate; when it fails and ``settings.refit`` is on, the cause of the
    failure decides the next attempt (:mod:`biasstats.inference.attempts`: reparameterise and
    a smaller step for divergences or a low E-BFMI, more chains added to the draws kept for a
    low ESS alone, twice the warm-up and draws for a mild R-hat alone), up to
    :data:`biasstats.inference.attempts.MAX_ATTEMPTS` attempts in all. The returned Fit is the
    attempt that passed or, when none did, the one least far from the gate
    (:func:`biasstats.inference.attempts.best_attempt`); ``Fit.settings["attempts"]`` lists
    every attempt (what changed and why, its seed, gate failures, sampling seconds, ``kept``). ``on_attempt(line)`` is
    called with one line before each new attempt, and once more when the last one fails too.
    ``derive=False`` leaves a sufficient-statistic model's log-likelihood
    and predictions to the caller (:func:`biasstats.inference.sample.derived_groups`)."""
    settings = settings or FitSpec()
    fit = _fit_prepared(spec, settings, progress, thresholds, on_attempt)
    if derive:

        fit.timings.update(derived_groups(fit, settings.seed + 1))
    return fit


def _fit_prepared(spec, settings: FitSpec, progress: bool | None, thresholds,
                  on_attempt=None) -> Fit:
    fit = _fit_once(spec, settings, progress)
    if thresholds is None:
        return fit
    fit, flips = run_attempts(
        fit, lambda f: convergence_gate(f.diagnostics(), thresholds), thresholds, settings,
        on_attempt=on_attempt,
        terms=lambda f: ({g.name: g.centered for g in f.spec.groups},
                         {g.name: len(g.levels) for g in f.spec.groups}, f.idata),
        next_fit=lambda f, plan: _next_fit(f.spec, settings, f, plan, progress))
    if flips:
        # a cached posterior re-applies them (one term's name, or the list of several)
        fit.settings["flipped"] = flips[0] if len(flips) == 1 else list(flips)
    return fit


def _next_fit(spec, settings: FitSpec, fit: Fit, plan: dict, progress) -> Fit:
    """The attempt ``plan`` (:func:`biasstats.inference.attempts.next_attempt`) describes,
    after ``fit`` failed: its chains added to ``fit``'s, or a new fit."""
    ta1 = fit.settings["target_accept"]
    new = settings.model_copy(update={"target_accept": plan["target_accept"],
                                      "seed": plan["seed"], "chains": plan["chains"],
                                      "tune": plan["tune"], "draws": plan["draws"]})
    spec2 = flipped(spec, plan["flip"]) if plan["flip"] else spec
    nxt = _fit_once(spec2, new, progress, why="raised after a failed gate")
    if plan["target_accept"] != ta1:  # the attempt lines, the sampler line and the methods agree
        nxt.settings["target_accept_reason"] = (
            f"raised from {ta1:g} by the automatic refit after a failed gate")
    else:  # its reason still holds
        nxt.settings["target_accept_reason"] = fit.settings["target_accept_reason"]
    nxt.settings["seed"] = settings.seed  # the spec's; each attempt's own is in its record
    if not plan["keep_draws"]:
        return nxt
    joined = join_chains(fit.idata, nxt.idata)
    check_memory(memory_estimate(fit.model, spec, new.model_copy(
        update={"chains": joined["posterior"].sizes["chain"]})), new)
    return Fit(idata=joined, spec=spec, model=fit.model, timings=nxt.timings,
               settings={**fit.settings, "chains": int(joined["posterior"].sizes["chain"])})


def _start_failure(spec, e: Exception) -> str:
    """One line for a sampler that found no starting point with a finite log density, with
    the usual cause when the design shows it: predictors on a large scale (a slope's
    starting values, about ±2, times values of 1e8 put the mean far outside the data)."""
    scales = [(name, float(np.max(np.abs(spec.X[:, j])))) for j, name in
              enumerate(spec.fixed_names)] if spec.X.size else []
    large = sorted(((n, v) for n, v in scales if v > 1e3), key=lambda t: -t[1])
    if large:
        shown = ", ".join(f"{n} up to {v:.3g}" for n, v in large[:3])
        hint = (f"predictors on a large scale are the usual cause ({shown}): rescale them, "
                f"e.g. scale({large[0][0]}) in the formula")
    else:
        hint = "check the data for extreme values and the priors for scales far from the data's"
    return (f"sampling could not start: the log density is not finite at any of the "
            f"sampler's starting points ({first_line(e)}); {hint}")


def flipped(spec, term):
    """A copy of ``spec`` with group term ``term`` (a name, or several) in the other
    parameterisation."""
    terms = {term} if isinstance(term, str) else set(term)
    new = copy.copy(spec)
    new.groups = [copy.copy(g) for g in spec.groups]
    for g in new.groups:
        if g.name in terms and not g.correlated:
            g.centered = not g.centered
            g.reason = (f"by the automatic refit after a failed gate; was "
                        f"{'non-centred' if g.centered else 'centred'}: {g.reason}")
            g.funnel_risk = None
    return new


def _fit_once(spec, settings: FitSpec, progress: bool | None, why: str | None = None) -> Fit:
    if settings.target_accept is None:
        value, why = auto_target_accept(spec)
        settings = settings.model_copy(update={"target_accept": value})
    else:
        why = why or "set by user"
    model = build_model(spec)
    est = memory_estimate(model, spec, settings)  # counts the parameters once
    settings, reasons = resolve_settings(model, est, settings)
    own_pp = spec.weights is not None  # weighted patterns: replicated by Family.draw
    try:
        idata, timings = sample_model(model, settings, progress, predictive=not own_pp)
    except RuntimeError as e:  # nutpie's "All initialization points failed", PyMC's SamplingError
        if "initialization points failed" not in str(e) and type(e).__name__ != "SamplingError":
            raise
        raise SpecError(_start_failure(spec, e)) from None
    idata = stored_precision(idata)  # the gate sees the numbers a cached run will read
    fit = Fit(idata=idata, spec=spec, model=model, timings=timings,
              settings={**settings.model_dump(), "target_accept_reason": why,
                        **reasons,
                        **adaptation_options(settings.adaptation),
                        "sampler": timings["sampler"], "centered": spec.describe_centring(),
                        "separation": list(spec.separation),
                        "diagnosis": list(spec.diagnosis)})
    # a sufficient-statistic model (no observed variable) gets its log-likelihood and
    # predictions once, for the fit that is kept (fit_prepared / derived_groups)
    if own_pp and model.observed_RVs:
        t0 = time.perf_counter()
        idata["posterior_predictive"] = pattern_predictive(fit, settings.seed + 1)
        dt = time.perf_counter() - t0
        timings["predictive_s"] = timings.get("predictive_s", 0.0) + dt
        timings["postprocess_s"] += dt
        timings["total_s"] += dt
        stored_precision(fit.idata)
    return fit


def resolve_settings(model, est: dict, settings: FitSpec) -> tuple[FitSpec, dict]:
    """The ``"auto"`` choices of ``[fit]`` made for a built model — the mass-matrix adaptation
    by its parameters (``est``: :func:`memory_estimate`), the backend by its data, the device
    by what JAX sees — and its memory checked: (settings, ``{"adaptation_reason": ...,
    "backend_reason": ..., "device_reason": ...}``)."""
    reasons = {"adaptation_reason": "set by user", "backend_reason": "set by user"}
    if settings.adaptation == "auto":
        value, reasons["adaptation_reason"] = auto_adaptation(est["parameters"],
                                                              est["observations"])
        settings = settings.model_copy(update={"adaptation": value})
    if settings.backend == "auto" and settings.device == "gpu":
        reasons["backend_reason"] = 'device = "gpu": JAX compiles for the GPU'
        settings = settings.model_copy(update={"backend": "jax"})
    elif settings.backend == "auto":
        value, reasons["backend_reason"] = auto_backend(model)
        settings = settings.model_copy(update={"backend": value})
    value, reasons["device_reason"] = auto_device(settings.backend, settings.device)
    settings = settings.model_copy(update={"device": value})
    check_memory(est, settings)
    return settings, reasons


def memory_estimate(model, spec, settings: FitSpec) -> dict:
    """Bytes the fit's results hold at their peak (float64, as the sampler returns them;
    kept as float32 after), estimated before sampling.

    chains x draws x 8 bytes x (2 x the model's unconstrained parameters — the free
    variables and about as many deterministic level effects — plus 2 x the observations, or
    cells when collapsed: one log-likelihood and one posterior-predictive value each)."""
    n_params = int(sum(v.size for v in model.initial_point().values()))
    n_obs = int(len(spec.y))
    per_draw = 2 * n_params + 2 * n_obs
    total = settings.chains * settings.draws * BYTES_PER_VALUE * per_draw
    return {"bytes": total, "parameters": n_params, "observations": n_obs,
            "chains": settings.chains, "draws": settings.draws}


def check_memory(est: dict, settings: FitSpec) -> None:
    """One-line SpecError when the estimate exceeds ``[fit] max_memory_gb``."""

    gb = est["bytes"] / 1e9
    if gb > settings.max_memory_gb:
        raise SpecError(
            f"[fit] the fit would hold about {gb:.3g} GB ({est['chains']} chains x "
            f"{est['draws']} draws x (2 x {est['parameters']} parameters + 2 x "
            f"{est['observations']} observations) x {BYTES_PER_VALUE} bytes), above "
            f"max_memory_gb = {settings.max_memory_gb:g}; lower draws or chains, or raise "
            f"max_memory_gb (at most {MAX_MEMORY_GB:g})")
