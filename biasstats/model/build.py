"""From (formula, data, family, priors) to a :class:`~biasstats.model.design.ModelSpec`.

:func:`prepare` validates the user's data and turns it into the numeric arrays the model
needs, each step in its own room: the design (:mod:`biasstats.model.design`: the response
coded, rows collapsed into binomial cells or weighted patterns, fixed and group-term designs,
auxiliary formulas, zero-sum constraints), the priors actually used
(:mod:`biasstats.model.default_priors`), the per-term centring decision
(:mod:`biasstats.model.centring`), the separation notes (:mod:`biasstats.model.separation`)
and the design diagnosis (:mod:`biasstats.model.diagnosis`).
:func:`biasstats.model.graph.build_model` then writes the PyMC model.
"""

from __future__ import annotations

from biasstats.errors import SpecError
from biasstats.model.centring import choose_centring
from biasstats.model.data import (
    check_design,
    check_magnitudes,
    complete_rows,
    data_hash,
    design_frame,
    to_polars,
)
from biasstats.model.default_priors import default_priors
from biasstats.model.design import (
    ModelSpec,
    aux_design,
    code_response,
    constraints,
    fixed_design,
    group_specs,
    observations,
)
from biasstats.model.diagnosis import diagnose
from biasstats.model.families import Family, get_family
from biasstats.model.formula import check_columns, parse_aux, parse_formula
from biasstats.model.separation import separation

__all__ = ["prepare"]


def prepare(
    formula: str,
    data,
    family: str | Family = "bernoulli",
    priors: dict | None = None,
    centered: dict[str, bool] | None = None,
    collapse: bool | None = None,
    aux: dict[str, str] | None = None,
    joint: bool = False,
) -> ModelSpec:
    """Validate and turn (formula, data) into the arrays and priors of a model.

    ``collapse``: None (default) collapses whatever the family allows (binomial cells,
    beta-binomial patterns); False keeps one observation per row.
    ``aux``: distributional formulas of auxiliary parameters, ``{"phi": "~ 1 + (1|llm)"}``
    (log link; intercept, fixed terms and varying intercepts).
    ``joint``: a part of a joint model (:func:`biasstats.model.joint.prepare_joint`), whose
    correlation ids ``(1 | p | g)`` link it to the other parts; a single model has none."""
    fam = family if isinstance(family, Family) else get_family(family)
    pf = parse_formula(formula)
    linked = [g for g in pf.groups if g.cor_id is not None]
    if linked and not joint:
        g = linked[0]
        raise SpecError(f"term '{g.source}' has a correlation id ('{g.cor_id}'), which "
                        "correlates the parts of a joint model; a single model has none: "
                        f"write (1|{g.name})")
    for g in linked:  # always non-centred: its funnel risk (target_accept) is that side's
        if (centered or {}).get(g.name):
            raise SpecError(f"centered: term '{g.source}' has a correlation id, and a "
                            "correlated term is always non-centred")
    centered = {**(centered or {}), **{g.name: False for g in linked}}
    df = to_polars(data)
    check_columns(pf, df.columns)
    fam.check_trials(pf.response, pf.trials)

    aux_pf = parse_aux(aux or {}, fam, pf)
    used = pf.columns()
    for apf in aux_pf.values():
        check_columns(apf, df.columns)
        used += [c for c in apf.columns() if c not in used]
    df = df.select(used)
    n_all = df.height
    df = complete_rows(df, used)
    n_dropped = n_all - df.height
    if df.height == 0:
        raise SpecError(f"no rows left after dropping missing values in columns {used}")
    check_magnitudes(df, used)
    dhash = data_hash(df)

    df, response_levels = code_response(df, pf, fam)
    obs = observations(df, pf, fam, used, collapse)
    pdf = design_frame(obs.frame, len(obs.y))
    covariates = obs.frame if obs.frame.width else df
    X, fixed_names, has_int, dm = fixed_design(pf, pdf, fam)
    check_design(X, fixed_names)
    groups = group_specs(pf, covariates, pdf, fam)
    # the observations' dimension ("cell" when collapsed) never takes the name of a grouping
    # factor's (a factor called "cell" would give one dimension two lengths)
    obs_dim = obs.obs_dim
    while obs_dim in {g.name for g in groups}:
        obs_dim += "_"
    spec = ModelSpec(
        formula=pf, family=fam, y=obs.y, trials=obs.trials, X=X, fixed_names=fixed_names,
        has_intercept=has_int, groups=groups, priors={},
        cells=obs.cells, collapsed=obs.collapsed, n_rows=df.height, n_dropped=n_dropped,
        obs_dim=obs_dim, response_levels=response_levels, data_hash=dhash,
        fixed_info=dm.design_info, weights=obs.weights, row_pattern=obs.row_pattern,
        aux={k: aux_design(k, apf, pdf, covariates) for k, apf in aux_pf.items()},
    )
    constraints(spec)
    spec.priors = default_priors(spec, priors or {})
    choose_centring(spec, centered or {})
    spec.separation = separation(spec)
    spec.diagnosis = diagnose(spec)
    return spec
