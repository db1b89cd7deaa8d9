"""Fitting: formula + data -> hierarchical PyMC model -> sampled :class:`Fit`."""

from __future__ import annotations

from biasstats.fit.result import Fit, PriorTable

__all__ = ["fit", "Fit", "PriorTable"]


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
    target_accept: float = 0.9,
    centered: dict[str, bool] | None = None,
    progress: bool | None = None,
    adaptation: str = "diag",
) -> Fit:
    """Fit a hierarchical model.

    ``formula``  lme4/brms style, e.g. ``"congruent ~ 1 + (1|llm) + (1|category/stereotype)"``
    ``data``     polars or pandas DataFrame; rows with missing values in the referenced
                 columns are dropped (``Fit.spec.n_dropped``)
    ``family``   see :data:`biasstats.model.families.FAMILIES`
    ``priors``   overrides, e.g. ``{"sd_llm": "HalfNormal(1)", "Intercept": "Normal(0, 2)"}``
    ``centered`` per-grouping override of the automatic centring choice, ``{"llm": True}``
    ``sampler``  ``"nutpie"`` (default) or ``"pymc"``
    ``adaptation`` nutpie mass matrix: ``"diag"`` (default; gradient-based diagonal) or
                 ``"low_rank"`` (adapts to correlations; ~10x slower per step above ~100
                 parameters on the Bai-shaped benchmark, so not the default)
    """
    from biasstats.fit.sample import sample_model
    from biasstats.model.build import build_model, prepare

    spec = prepare(formula, data, family, priors, centered)
    model = build_model(spec)
    idata, timings = sample_model(
        model, chains=chains, tune=tune, draws=draws, seed=seed, sampler=sampler,
        target_accept=target_accept, progress=progress, adaptation=adaptation,
    )
    settings = {"chains": chains, "tune": tune, "draws": draws, "seed": seed,
                "sampler": timings["sampler"], "target_accept": target_accept,
                "adaptation": adaptation, "centered": spec.describe_centring()}
    return Fit(idata=idata, formula=spec.formula.formula, family=spec.family.name,
               priors=PriorTable(spec.priors), data_hash=spec.data_hash, spec=spec, model=model,
               timings=timings, settings=settings)
