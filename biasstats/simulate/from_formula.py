"""Simulate a trial-level dataset from a spec's ``[model]`` formula and family.

The design (which rows exist: llm, stereotype, variant, ... per judgement) comes from data:
the rows the model would see in a spec's ingested table (or in its ``[simulate]`` preset
study), or any DataFrame holding the formula's covariates. The parameters are drawn from the
priors of the model :func:`biasstats.model.build.prepare` / :func:`~biasstats.model.graph.build_model` build for that
design (the same default, data-scaled priors and ``[model.priors]`` overrides a fit uses), or
fixed to given values with :func:`pymc.do`; the outcome is then drawn from the likelihood with
:func:`pymc.sample_prior_predictive`. One seed gives the same table and truth, bit for bit.

**Rows, not cells.** ``prepare`` collapses Bernoulli rows into binomial cells for fitting. Here
the model is built with ``collapse=False`` so every judgement row gets its own Bernoulli draw
(``n = 1``): the output has exactly the design's rows and no expansion step is needed. Summed
per covariate pattern this is the same k-out-of-n binomial draw the collapsed model makes.

**Setting parameters** (``given``, the CLI's ``--set NAME=VALUE``): scalar names are
``Intercept``, ``b_<coef>`` (patsy column name), ``sd_<group>`` (``sd_<group>__<coef>`` for a
term with varying slopes) and the family's auxiliaries (``sigma``, ``nu``, ``alpha``, ``phi``);
vector names take one value per level, comma-separated in level order (``r_llm=0.3,-0.1,-0.2``,
``cutpoints=-1,0,1``; levels sorted as in the fit, listed in ``truth.json``). Level effects
must sum to zero (within each parent level for a nested term), as the model's do. Setting ``sd_llm`` draws ``r_llm`` from the prior *given* that sd;
setting ``r_llm`` fixes the level effects (``sd_llm`` is then still drawn but unused). Entries
of a fixed-effect vector that are not given are drawn from their (independent) priors.
Correlated varying-slope terms (``(x | g)``) can be simulated but not set.

``truth.json`` holds every parameter value used, with level names: scalars as numbers,
per-level effects as ``{level: value}`` (``{coef: {level: value}}`` for varying slopes).
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from biasstats.errors import SpecError
from biasstats.inference.from_spec import model_data
from biasstats.ingest import ingest
from biasstats.ingest.schema import CANONICAL, conform
from biasstats.model.build import prepare
from biasstats.model.data import complete_rows, to_polars
from biasstats.model.families import get_family
from biasstats.model.formula import parse_formula
from biasstats.model.graph import build_model
from biasstats.simulate import SimulatedStudy
from biasstats.spec import Spec, load_spec
from biasstats.spec.schema import MAX_SEED

__all__ = ["simulate_from_formula", "simulate_from_spec", "parse_set", "settable_parameters",
           "SimulatedStudy"]

_HIDDEN = ("z_", "u_", "chol_")
_POSITIVE = ("sd_", "sigma", "nu", "alpha", "phi")


# ----------------------------------------------------------------------------- parameters
def settable_parameters(mspec) -> dict[str, tuple[str, int | None, int]]:
    """``name -> (model variable, index into it or None for the whole variable, length)``."""
    out: dict[str, tuple[str, int | None, int]] = {}
    K = mspec.n_linpred
    if mspec.has_intercept:
        out["Intercept"] = ("Intercept", None, K)
    if mspec.fixed_names and K == 1:
        for j, c in enumerate(mspec.fixed_names):
            out[f"b_{c}"] = ("b", j, 1)
    for g in mspec.groups:
        if len(g.coefs) == 1:
            out[f"sd_{g.name}"] = (f"sd_{g.name}", None, K)
            if K == 1:
                out[f"r_{g.name}"] = (f"r_{g.name}", None, len(g.levels))
        elif not g.correlated:
            for j, c in enumerate(g.coefs):
                out[f"sd_{g.name}__{c}"] = (f"sd_{g.name}", j, 1)
    for k in mspec.family.aux:
        n = len(mspec.response_levels) - 1 if k in mspec.family.vector_aux else 1
        out[k] = (k, None, n)
    return out


def parse_set(items: list[str] | None) -> dict[str, float | list[float]]:
    """``["sd_llm=0.5", "r_llm=0.1,-0.1"]`` -> ``{"sd_llm": 0.5, "r_llm": [0.1, -0.1]}``."""
    out: dict[str, float | list[float]] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise SpecError(f"--set '{item}': expected NAME=VALUE, e.g. sd_llm=0.5")
        try:
            vals = [float(v) for v in value.split(",")]
        except ValueError:
            raise SpecError(f"--set '{item}': value must be a number or comma-separated "
                            "numbers") from None
        out[name] = vals[0] if len(vals) == 1 else vals
    return out


def _interventions(mspec, given: dict, model, seed: int) -> dict:
    """Check ``given`` against the model and assemble full-variable values for :func:`pm.do`.

    An element set by index (``b_x`` of the vector ``b``) keeps the other elements at one
    prior draw of the model (drawn only then)."""
    valid = settable_parameters(mspec)
    for name in given:  # before any sampling: a typo is an instant one-line error
        if name not in valid:
            raise SpecError(f"unknown parameter '{name}' to set; valid parameters: "
                            f"{', '.join(valid)}")
    fixed: dict[str, np.ndarray] = {}
    base: dict[str, np.ndarray] | None = None
    for name, value in given.items():
        var, index, length = valid[name]
        arr = np.atleast_1d(np.asarray(value, dtype=float))
        if arr.size != length:
            what = "one value" if length == 1 else f"{length} comma-separated values"
            raise SpecError(f"parameter '{name}' takes {what}, got {arr.size}")
        if not np.all(np.isfinite(arr)):
            raise SpecError(f"parameter '{name}' must be finite, got {value}")
        if name.startswith(_POSITIVE) and np.any(arr <= 0):
            raise SpecError(f"parameter '{name}' must be positive, got {value}")
        if name == "cutpoints" and np.any(np.diff(arr) <= 0):
            raise SpecError(f"parameter 'cutpoints' must be increasing, got {value}")
        if name.startswith("r_"):
            _check_zero_sum(mspec, name, arr)
        if index is None:
            fixed[var] = arr if length > 1 else np.asarray(arr[0])
        else:
            cur = fixed.get(var)
            if cur is None:
                if base is None:
                    draw = prior_draw(model, seed).prior.to_dataset()
                    base = {k: draw[k].values[0, 0] for k in draw.data_vars}
                cur = np.array(base[var], dtype=float, copy=True)
            cur[index] = arr[0]
            fixed[var] = cur
    return fixed


def _check_zero_sum(mspec, name: str, r: np.ndarray) -> None:
    """Level effects are deviations from the mean of the levels (and, for a nested term,
    from its parent level's mean): given values must satisfy the model's constraints."""
    g = next(g for g in mspec.groups if f"r_{g.name}" == name)
    if g.Q is None:
        if abs(r.sum()) > 1e-6 * max(1.0, np.abs(r).sum()):
            raise SpecError(f"parameter '{name}' must sum to zero over the levels "
                            f"({', '.join(g.levels)}): level effects are deviations from "
                            f"their mean; got sum {r.sum():.4g}")
        return
    resid = r - g.Q @ (g.Q.T @ r)
    if np.abs(resid).max() > 1e-6 * max(1.0, np.abs(r).max()):
        raise SpecError(f"parameter '{name}' must sum to zero over all levels and within each "
                        f"level of {', '.join(g.parents)} (deviations from the parent's mean)")


# ----------------------------------------------------------------------------- truth
def _nested(da) -> float | dict | list:
    """A DataArray (one draw) -> a number, or nested ``{coord label: ...}`` dicts."""
    if da.ndim == 0:
        return float(da.values)
    dim = da.dims[0]
    labels = [str(v) for v in da.coords[dim].values] if dim in da.coords else None
    items = [_nested(da.isel({dim: i})) for i in range(da.sizes[dim])]
    return dict(zip(labels, items, strict=True)) if labels else items


def truth_of(prior_ds, model=None, fixed: dict | None = None, draw: int = 0) -> dict:
    """Every reported parameter of one prior draw (helpers ``z_``/``u_``/``chol_`` left out),
    in the model's order, with the values ``fixed`` by intervention filled in."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    values = {}
    for name in prior_ds.data_vars:
        values[str(name)] = prior_ds[name].isel(chain=0, draw=draw, drop=True)
    for name, val in (fixed or {}).items():
        dims = model.named_vars_to_dims.get(name, ()) if model is not None else ()
        coords = {d: list(model.coords[d]) for d in dims} if dims else None
        values[name] = xr.DataArray(np.asarray(val, dtype=float), dims=dims or None,
                                    coords=coords)
    order = list(model.named_vars) if model is not None else []
    names = sorted(values, key=lambda n: (order.index(n) if n in order else len(order), n))
    return {n: _nested(values[n]) for n in names if not n.startswith(_HIDDEN)}


# ----------------------------------------------------------------------------- simulation
def placeholder_response(df: pl.DataFrame, pf, fam) -> pl.DataFrame:
    """Add a response column when the design has none (it only scales data-based priors)."""
    if pf.response in df.columns and df[pf.response].null_count() < df.height:
        return df
    df = df.drop(pf.response, strict=False)
    try:
        values = fam.placeholder(df.height)
    except SpecError:
        raise SpecError(f"design has no response column '{pf.response}'; family '{fam.name}' "
                        "needs it to know the response categories") from None
    return df.with_columns(pl.Series(pf.response, values))


def prior_draw(model, seed: int, draws: int = 1):
    """``pm.sample_prior_predictive`` without its "Sampling: [...]" log line."""

    # heavy libraries load on first use, not on import
    import pymc as pm

    log = logging.getLogger("pymc")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with model:
            return pm.sample_prior_predictive(draws=draws, random_seed=seed)
    finally:
        log.setLevel(level)


def simulate_from_formula(
    formula: str,
    design,
    family: str = "bernoulli",
    priors: dict | None = None,
    *,
    seed: int = 0,
    given: dict | None = None,
) -> SimulatedStudy:
    """Simulate the response of ``formula`` on the rows of ``design`` (polars or pandas).

    Returns a :class:`SimulatedStudy`: ``table`` is ``design`` (rows with missing covariates
    dropped, as a fit would) with the response column replaced by the simulated outcome;
    ``truth`` holds the parameters used (see the module docstring).
    """

    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED):
        raise SpecError(f"seed {seed!r}: expected an integer from 0 to {MAX_SEED}")
    fam = get_family(family)
    pf = parse_formula(formula)
    df = to_polars(design)
    df = placeholder_response(df, pf, fam)
    used = pf.columns()
    missing = [c for c in used if c not in df.columns]
    if missing:
        raise SpecError(f"design has no column '{missing[0]}' (formula '{formula}'); columns: "
                        f"{', '.join(df.columns)}")
    rows = complete_rows(df, used)
    mspec = prepare(formula, rows, fam, priors, collapse=False)
    given = dict(given or {})
    model = original = build_model(mspec)
    fixed: dict[str, np.ndarray] = {}
    if given:
        # heavy libraries load on first use, not on import
        import pymc as pm

        fixed = _interventions(mspec, given, model, seed)
        model = pm.do(model, fixed, make_interventions_shared=False)
    tree = prior_draw(model, seed)
    prior = tree.prior.to_dataset()
    y = np.asarray(tree.prior_predictive[pf.response].values[0, 0])
    if mspec.response_levels is not None:
        levels = mspec.response_levels
        sim = pl.Series(pf.response, [levels[int(i)] for i in y], dtype=rows[pf.response].dtype)
    elif rows[pf.response].dtype in (pl.Float32, pl.Float64):
        sim = pl.Series(pf.response, y.astype(float))
    else:
        sim = pl.Series(pf.response, y).cast(rows[pf.response].dtype)
    table = rows.with_columns(sim)
    truth = {
        "generator": "biasstats.simulate.from_formula",
        "seed": int(seed),
        "formula": mspec.formula.formula,
        "family": fam.name,
        "rows": table.height,
        "priors": {k: str(v) for k, v in mspec.priors.items()},
        "given": {k: v for k, v in given.items()},
        "parameters": truth_of(prior, original, fixed),
    }
    return SimulatedStudy(table=table, truth=truth)


def simulate_from_spec(spec, seed: int, given: dict | None = None) -> SimulatedStudy:
    """Simulate the spec's ``[model]`` on the design of its data (a spec or a path to it).

    The design is the rows the model would be fitted to: the ``ok`` judgements of the
    ingested table (or one row per trial for ``[model] unit = "trial"``), from ``[data]`` or
    the ``[simulate]`` preset. The result's ``table`` has the canonical-table columns (the
    judgements' keys; ``raw`` emptied, ``status`` ok) with the response column replaced by the
    simulated outcome, and any non-canonical response column after them.
    """

    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    spec.single("biasstats simulate")
    if spec.model is None:
        raise SpecError(f"{spec.path}: no [model] table: nothing to simulate from")
    m = spec.model
    result = ingest(spec)
    design = model_data(spec, result.table)
    study = simulate_from_formula(m.formula, design, m.family, dict(m.priors), seed=seed,
                                  given=given)
    pf = parse_formula(m.formula)
    table = study.table.with_columns(
        pl.lit("ok").alias("status"), pl.lit(None, dtype=pl.Utf8).alias("reason"),
        pl.lit(None, dtype=pl.Utf8).alias("raw"),
    )
    if "source_row" in table.columns:
        table = table.sort("source_row", maintain_order=True)
    extra = [c for c in (pf.response, pf.trials) if c and c not in CANONICAL]
    table = conform(table.select([c for c in table.columns if c in CANONICAL or c in extra]))
    truth = {"analysis": spec.name, "design": result.ledger.source, **study.truth}
    return SimulatedStudy(table=table, truth=truth)


