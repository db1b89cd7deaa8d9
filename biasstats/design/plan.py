"""A design analysis, checked before anything is simulated or sampled: the analysis' model
on its data, the sizes to compare (each design built and prepared once), the estimand and
the target.

Every mistake is a one-line SpecError naming the option or key: an unknown or fixed factor
(:mod:`biasstats.design.sizes`), a design size that cannot be simulated (the model cannot be
built on it: a grouping factor left with one level, a level of a fixed factor lost), an
estimand the model cannot give or one that compares levels of a varied factor. Families
with categories (ordinal, categorical) are planned on each category's probability: every
simulated study keeps the analysis' categories (:func:`category_response`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from biasstats.design.sizes import (
    TRIALS,
    Vary,
    design_rows,
    grid,
    resolve_factors,
    size_text,
)
from biasstats.effects.estimands import EffectsRequest, check_request, request_from_spec
from biasstats.effects.strata import split_term
from biasstats.errors import BiasstatsError, SpecError
from biasstats.inference.from_spec import (
    POSTERIOR_FILE,
    check_factor_names,
    check_finite,
    check_support,
    fit_spec,
    model_data,
)
from biasstats.model.build import prepare
from biasstats.model.data import complete_rows
from biasstats.model.families import get_family
from biasstats.model.formula import parse_aux, parse_formula
from biasstats.simulate.from_formula import placeholder_response
from biasstats.spec import Spec
from biasstats.spec.outcome import outcome_study

__all__ = ["Target", "DesignSize", "Plan", "make_plan", "analysis_posterior",
           "category_response"]


@dataclass(frozen=True)
class Target:
    """What a design must reach: ``power`` (the share of studies whose interval excludes zero,
    or reaches a ROPE decision) at least ``value``, or a median interval ``width`` at most
    ``value`` (in the estimand's units)."""

    kind: str   # "power" | "width"
    value: float

    def text(self, unit: str = "") -> str:
        if self.kind == "power":
            return f"power >= {self.value:g}"
        return f"median width <= {self.value:g}" + (f" {unit}" if unit else "")


@dataclass
class DesignSize:
    """One design: its sizes, its rows (covariates, no response) and their prepared model
    (one observation per row, a placeholder response: its design, not its priors, is
    used)."""

    size: dict[str, int]
    rows: pl.DataFrame
    spec: object  # ModelSpec of the rows, one observation per row

    @property
    def text(self) -> str:
        return size_text(self.size)


@dataclass
class Plan:
    spec: Spec
    base: object                 # ModelSpec of the analysis' rows (one observation per row)
    data: pl.DataFrame           # the analysis' rows
    factors: list[str]           # the varied factors, in the order given
    designs: list[DesignSize]
    estimand: str                # "cond" or "cond | test"
    request: EffectsRequest
    prob: float
    rope: float | None           # the ROPE half-width in the estimand's units, if any
    collapse: bool | None        # prepare's collapse for the refits
    target: Target | None = None

    @property
    def varied(self) -> set[str]:
        return {f for f in self.factors if f != TRIALS}


def _prepare(spec: Spec, rows: pl.DataFrame, priors=None, centered=None, collapse=None):
    m = spec.model
    return prepare(m.formula, rows, m.family, dict(m.priors) if priors is None else priors,
                   dict(m.centered) if centered is None else centered, collapse=collapse,
                   aux=dict(m.aux))


def _estimand(spec: Spec, base, given: str | None, varied: set[str], adapter) -> tuple:
    """(term, request) of the estimand: ``given`` (``--estimand``) or the spec's first
    contrast (``[effects] contrasts``, else the formula's first fixed factor)."""
    eff = spec.content.effects
    declared = request_from_spec(eff, base, study=outcome_study(spec, adapter))
    if given is None:
        if not declared.contrasts:
            raise SpecError(f"{spec.path}: [effects] contrasts: no contrast to plan for (the "
                            "formula has no fixed factor); give --estimand FACTOR")
        term, key = declared.contrasts[0], f"{spec.path}: [effects]"
    else:
        term, key = given.strip(), "--estimand"
    req = EffectsRequest(contrasts=(term,), reference=dict(declared.reference),
                         pairs=declared.pairs, prob=declared.prob, rope=declared.rope,
                         strata_weights=declared.strata_weights)
    check_request(req, base, key=key)
    f, stratum = split_term(term)
    for col in (*f.split(":"), *(stratum.split(":") if stratum else ())):
        if col.strip() in varied:
            raise SpecError(f"{key}: '{term}': '{col.strip()}' is varied (--vary "
                            f"{col.strip()}), so its levels change with the design; plan for "
                            "a contrast of factors that are not varied")
    return term, req


def _design(spec: Spec, data: pl.DataFrame, base, columns: list[str], size: dict[str, int],
            collapse) -> DesignSize:
    """Build and prepare the design of ``size``; a one-line SpecError when it cannot be
    simulated."""
    what = f"--vary {size_text(size)}: this design cannot be simulated"
    try:
        rows = design_rows(data, columns, size)
        pf = base.formula
        filled = (rows.with_columns(category_response(
            np.arange(rows.height) % len(base.response_levels), base, pf.response))
            if base.family.has_categories else placeholder_response(rows, pf, base.family))
        prepared = _prepare(spec, filled, collapse=False)  # its priors are not used
    except BiasstatsError as e:
        raise SpecError(f"{what}: {e}") from None
    lost = [c for c in base.fixed_names if c not in prepared.fixed_names]
    if lost:
        raise SpecError(f"{what}: it lacks the fixed-effect column '{lost[0]}' (its rows "
                        "come only with levels this size leaves out)")
    return DesignSize(dict(size), rows, prepared)


def category_response(codes, base, name: str) -> pl.Series:
    """Category codes 0 … K-1 (a family with categories: ordinal, categorical) as the
    analysis' response categories, every one of them kept as a level (an Enum in the
    analysis' order) whether or not a simulated study draws it: each study is prepared with
    the analysis' K categories, as the design's one compiled model needs."""
    levels = [str(v) for v in base.response_levels]
    return pl.Series(name, [levels[int(c)] for c in np.asarray(codes).reshape(-1)],
                     dtype=pl.Enum(levels))


def make_plan(spec: Spec, table: pl.DataFrame, vary: list[Vary], *, estimand: str | None = None,
              prob: float | None = None, target: Target | None = None,
              adapter: str | None = None) -> Plan:
    """Check everything a design analysis of ``spec`` (its ingested ``table``) will ask, and
    build its designs: before any simulation or sampling."""
    if spec.model is None:
        raise SpecError(f"{spec.path}: no [model] table: nothing to plan")
    m = spec.model
    fam = get_family(m.family)
    pf = parse_formula(m.formula)
    aux_pfs = tuple(parse_aux(dict(m.aux), fam, pf).values())
    vary = resolve_factors(vary, pf, aux_pfs)
    data = model_data(spec, table)
    check_finite(spec, data)
    check_support(spec, data)
    used = list(dict.fromkeys([*pf.columns(), *(c for a in aux_pfs for c in a.columns())]))
    data = complete_rows(data.select([c for c in used if c in data.columns]),
                         [c for c in used if c in data.columns])
    collapse = False if fam.patterns else None  # weighted patterns change with the outcome
    try:
        base = _prepare(spec, data, collapse=False)
        check_factor_names(base)
    except BiasstatsError as e:
        raise SpecError(f"{spec.path}: [model] formula: {e}") from None
    varied = {v.factor for v in vary if v.factor != TRIALS}
    term, req = _estimand(spec, base, estimand, varied, adapter)
    if prob is not None:
        req = replace(req, prob=prob)
    fam.check_rope(req.rope)
    pct = 100.0 if fam.response_scale == "probability" else 1.0
    columns = [c for c in used if c != pf.response]
    designs = [_design(spec, data, base, columns, size, collapse) for size in grid(vary)]
    return Plan(spec, base, data, [v.factor for v in vary], designs, term, req, req.prob,
                None if req.rope is None else req.rope * pct, collapse, target)


def analysis_posterior(spec: Spec, table: pl.DataFrame, folder: str | Path, ledger=None):
    """(the analysis' cached Fit or None, a note): the fitted posterior in ``folder`` when its
    cache holds this model and data, else None (the prior is used) with the reason."""
    path = Path(folder) / POSTERIOR_FILE
    if not path.is_file():
        return None, f"no fitted posterior ({path}): parameters drawn from the prior"
    try:
        outcome = fit_spec(spec, table, folder, ledger=ledger, cached_only=True)
    except SpecError:
        return None, (f"the posterior in {path} is not of this model and data (refit with "
                      "'biasstats fit'): parameters drawn from the prior")
    return outcome.fit, f"parameters drawn from the fitted posterior ({path})"
