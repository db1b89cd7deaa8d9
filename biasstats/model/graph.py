"""The PyMC graph of a prepared model (:func:`build_model`).

* fixed part ``Intercept + X @ b`` (``b`` has dim ``coef`` with patsy column names);
* each group term ``(expr | g)`` adds ``r_g[idx] * Z`` as an indexed gather (never an indicator
  matrix). Group effects are ``pm.ZeroSumNormal`` over the levels of the term: the intercept
  and the group means cannot trade off, and ``r_g`` is reported as the **deviation of a level
  from the mean of the levels** of that term (the fixed intercept is the grand mean of the
  levels, not the value of a "typical" new level). ``sd_g`` is the scale of the unconstrained
  effects: a ZeroSumNormal with L levels has marginal sd ``sd_g * sqrt(1 - 1/L)``. For nested
  terms ``(1|a/b)`` the zero-sum of ``a:b`` is over all its levels (not within each ``a``),
  so the within-parent mean of the ``a:b`` effects is identified only through the sum
  ``r_a + r_a:b``; interpret nested child effects together with their parent;
* centred (``r ~ ZSN(sd)``) or non-centred (``r = sd * z``, ``z ~ ZSN(1)``) per term, chosen by
  how informative the data are about the term (:mod:`biasstats.model.centring`), overridable
  with ``centered={"llm": True}``; correlated varying slopes ``(x | g)`` use an LKJ Cholesky
  factor and are always non-centred;
* the family's likelihood (:attr:`biasstats.model.families.Family.likelihood`), or for a
  beta-binomial pattern model the exact sufficient-statistic term
  (:mod:`biasstats.model.sufficient`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from biasstats.errors import SpecError
from biasstats.model.design import AuxSpec, GroupSpec, ModelSpec, rows_of
from biasstats.model.families import cutpoint_centres
from biasstats.model.priors import Prior
from biasstats.model.sufficient import CountStats, count_stats

__all__ = ["build_model", "write_part"]


def _vector_prior(priors: list[Prior], what: str) -> Prior:
    dists = {p.dist for p in priors}
    if len(dists) > 1:
        raise SpecError(f"priors for {what} must use one distribution family, got "
                        f"{', '.join(sorted(dists))}")
    keys = list(priors[0].params)
    for p in priors:
        if list(p.params) != keys:
            raise SpecError(f"priors for {what} must give the same parameters, got "
                            f"{', '.join(map(str, priors))}")
    return Prior(priors[0].dist, {k: np.array([p.params[k] for p in priors]) for k in keys})



def build_model(spec: ModelSpec):
    """Return the PyMC model for ``spec``.

    A beta-binomial pattern model (:func:`count_stats`) has no observed variable: its
    likelihood is the exact sufficient-statistic term ``<response>_loglik`` (a Potential), and
    the pointwise log-likelihood and predictions are computed from the draws
    (:func:`biasstats.inference.sample.pattern_log_likelihood`, ``pattern_predictive``)."""
    stats = count_stats(spec)
    if stats is not None:
        return _build(rows_of(spec, stats.rows), stats, spec)
    return _build(spec, None, spec)


def _build(spec: ModelSpec, stats: CountStats | None, full: ModelSpec):
    """The model over ``spec``'s rows; with ``stats``, those rows are one per covariate cell
    of ``full`` and the likelihood is the sufficient-statistic term."""
    import pymc as pm  # heavy libraries: imported on first use

    # check_bounds=False: no parameter checks in the log density (sigma > 0, 0 <= p <= 1, ...):
    # every parameter is valid by construction (transforms, links), and the checks cost a
    # logistic per observation on a bernoulli
    with pm.Model(check_bounds=False) as model:
        _write(spec, stats, full, _Dims(""), {})
    return model


def write_part(spec: ModelSpec, prefix: str, shared: dict[str, Any]) -> None:
    """Write ``spec``'s model into the current PyMC model (a named sub-model of a joint
    model, which prefixes every variable's name): its dimensions are prefixed with
    ``prefix``, and the group terms named in ``shared`` take their effects from it (grouping
    name -> (effects over the term's levels, their SD, None), or (standardised effects, None,
    None) to scale by the term's own SD: the part's row of a correlated term; with varying
    slopes (coefficients x levels, SDs, the part's block of the correlation matrix); see
    :mod:`biasstats.model.joint`)."""
    stats = count_stats(spec)
    if stats is not None:
        _write(rows_of(spec, stats.rows), stats, spec, _Dims(prefix), shared)
    else:
        _write(spec, None, spec, _Dims(prefix), shared)


class _Dims:
    """Dimension names of one model: as they are, or prefixed (a part of a joint model)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self, *names: str):
        out = tuple(f"{self.prefix}{n}" for n in names)
        return out[0] if len(out) == 1 else out


def _write(spec: ModelSpec, stats: CountStats | None, full: ModelSpec, D: _Dims,
           shared: dict[str, Any]) -> None:
    """The variables of ``spec``'s model, in the current PyMC model."""
    import pymc as pm  # heavy libraries: imported on first use

    # heavy libraries load on first use, not on import
    import pytensor.tensor as pt

    model = pm.modelcontext(None)
    fam = spec.family
    K = spec.n_linpred
    cat_dim = f"{spec.formula.response}__cat"
    coords: dict[str, Any] = {spec.obs_dim: np.arange(len(full.y))}
    lead: tuple[str, ...] = ()
    if K > 1:
        coords[cat_dim] = [str(v) for v in spec.response_levels[1:]]
        lead = (D(cat_dim),)
    if spec.fixed_names:
        coords["coef"] = spec.fixed_names
    for g in spec.groups:
        coords[g.name] = g.levels
        if len(g.coefs) > 1:
            coords[g.coef_dim] = g.coefs
            if g.correlated:
                coords[g.coef_dim + "_"] = g.coefs
    model.add_coords({D(k): v for k, v in coords.items()})

    eta = 0.0
    if spec.has_intercept:
        icpt = spec.priors["Intercept"].create("Intercept", dims=lead or None)
        eta = icpt
    if spec.fixed_names:
        bp = _vector_prior([spec.priors[f"b_{c}"] for c in spec.fixed_names], "b")
        if K > 1:
            bp = Prior(bp.dist, {k: np.broadcast_to(v, (K, len(spec.fixed_names)))
                                 for k, v in bp.params.items()})
        b = bp.create("b", dims=lead + (D("coef"),))
        eta = eta + design_dot(pt, spec.X, b.T if K > 1 else b)
    for g in spec.groups:
        eta = eta + _group_effect(pm, pt, spec, g, lead, K, D, shared.get(g.name))

    aux = {}
    for k in fam.aux:
        if k in fam.vector_aux:
            nthr = len(spec.response_levels) - 1
            model.add_coord(D("threshold"), list(range(nthr)))
            p = spec.priors[k]
            if p.dist == "Normal":  # centred on the equal-probability cut-points
                p = Prior("Normal", {**p.params, "mu": p.params["mu"] + cutpoint_centres(nthr)})
            aux[k] = p.create(k, dims=D("threshold"),
                              transform=pm.distributions.transforms.ordered)
        elif k in spec.aux:
            aux[k] = _aux_effect(pm, pt, model, spec, spec.aux[k], D)
        else:
            aux[k] = spec.priors[k].create(k)
    if not isinstance(eta, pt.TensorVariable):
        eta = pt.zeros(len(spec.y)) + eta
    if K > 1 and eta.ndim == 1:
        eta = pt.zeros((len(spec.y), K)) + eta
    if K == 1 and eta.ndim == 0:
        eta = pt.zeros(len(spec.y)) + eta
    if stats is not None:
        j = pt.as_tensor_variable(np.arange(stats.A.shape[1], dtype=float))
        a, b = fam.beta_ab(eta, aux, tensor=True)
        a, b = a[:, None], b[:, None]
        pm.Potential(f"{spec.formula.response}_loglik", stats.const
                     + pt.sum(stats.A * pt.log(a + j)) + pt.sum(stats.B * pt.log(b + j))
                     - pt.sum(stats.T * pt.log(a + b + j)))
        return
    extra = {"trials": spec.trials}
    obs = fam.likelihood(spec.formula.response, eta, aux, spec.y, extra, D(spec.obs_dim))
    if spec.weights is not None and np.any(spec.weights > 1):
        # a pattern of c identical trials: the observed term counts one trial, this adds
        # the other c - 1 (exact); log_likelihood and predictions stay per trial
        extra_w = pt.as_tensor_variable(spec.weights.astype(float) - 1.0)
        pm.Potential("pattern_counts", pt.sum(extra_w * pm.logp(obs, spec.y)))


def design_dot(pt, X: np.ndarray, b):
    """``X @ b`` for a design matrix ``X`` (rows x columns), over X's distinct rows when they
    are at most half its rows: ``(U @ b)[row]``, U the distinct rows. Exact (each row's dot
    product is the same sum), and a factor design of 30,000 rows and 40 columns (one
    ``test:cond`` cell per row) costs a 40 x 40 product and a gather instead of a 30,000 x 40
    one (and the same again for the gradient, whose scatter-add replaces X'g)."""
    X = np.asarray(X, dtype=float)
    if X.shape[0] > 1:
        U, row = np.unique(X, axis=0, return_inverse=True)
        if 2 * U.shape[0] <= X.shape[0]:
            return pt.dot(pt.as_tensor_variable(U), b)[row.reshape(-1)]
    return pt.dot(pt.as_tensor_variable(X), b)


def _aux_effect(pm, pt, model, spec: ModelSpec, a: AuxSpec, D: _Dims):
    """exp(linear predictor) of a distributional auxiliary parameter, one per observation."""
    k = a.name
    eta = pt.zeros(len(spec.y))
    if a.has_intercept:
        eta = eta + spec.priors[f"{k}_Intercept"].create(f"{k}_Intercept")
    if a.fixed_names:
        cdim = D(f"{k}_coef")
        model.add_coord(cdim, a.fixed_names)
        bp = _vector_prior([spec.priors[f"b_{k}_{c}"] for c in a.fixed_names], f"b_{k}")
        eta = eta + design_dot(pt, a.X, bp.create(f"{k}_b", dims=cdim))
    for name, levels, idx in a.groups:
        dim = D(f"{k}_{name}")
        model.add_coord(dim, levels)
        sd = spec.priors[f"sd_{k}_{name}"].create(f"sd_{k}_{name}")
        z = pm.ZeroSumNormal(f"z_{k}_{name}", sigma=1.0, dims=dim)
        r = pm.Deterministic(f"r_{k}_{name}", sd * z, dims=dim)
        eta = eta + r[idx]
    return pt.exp(eta)


def _zero_sum(pm, pt, model, g: GroupSpec, raw_name: str, sigma, dims: tuple[str, ...],
              D: _Dims):
    """A zero-sum vector over the levels (last axis) of ``g``; returns the tensor.

    Without parent terms: ``pm.ZeroSumNormal``. With parents: ``u ~ Normal(0, sigma)`` on the
    constrained basis and ``Q @ u`` (see :func:`biasstats.model.design.constraints`).
    """
    if g.Q is None:
        return pm.ZeroSumNormal(raw_name, sigma=sigma, dims=dims)
    bdim = D(f"{g.name}__basis")
    if bdim not in model.coords:
        model.add_coord(bdim, list(range(g.Q.shape[1])))
    u = pm.Normal(raw_name, mu=0.0, sigma=sigma, dims=dims[:-1] + (bdim,))
    return pt.dot(u, pt.as_tensor_variable(g.Q.T))


def _group_effect(pm, pt, spec: ModelSpec, g: GroupSpec, lead: tuple[str, ...], K: int,
                  D: _Dims, shared=None):
    model = pm.modelcontext(None)
    name = g.name
    k = len(g.coefs)
    idx = g.idx
    if shared is not None:  # a correlated term of a joint model (see model.joint)
        row, sd, cor = shared
        if k > 1:  # (coefficients x levels), its SDs and its block of the correlation
            if sd is None:  # standardised effects: this part's own SDs scale them
                sdp = _vector_prior([spec.priors[f"sd_{name}__{c}"] for c in g.coefs],
                                    f"sd_{name}")
                sd = sdp.create(f"sd_{name}", dims=D(g.coef_dim))
                row = sd[:, None] * row
            else:
                pm.Deterministic(f"sd_{name}", sd, dims=D(g.coef_dim))
            pm.Deterministic(f"cor_{name}", cor, dims=D(g.coef_dim, g.coef_dim + "_"))
            r = pm.Deterministic(f"r_{name}", row, dims=D(g.coef_dim, name))
            return (r[:, idx].T * pt.as_tensor_variable(g.Z)).sum(axis=1)
        if sd is None:  # standardised effects: this part's own SD scales them
            sd = spec.priors[f"sd_{name}"].create(f"sd_{name}")
            row = sd * row
        else:
            pm.Deterministic(f"sd_{name}", sd)
        r = pm.Deterministic(f"r_{name}", row, dims=D(name))
        col = g.Z[:, 0]
        return r[idx] if np.all(col == 1.0) else r[idx] * col
    if k == 1:
        sd = spec.priors[f"sd_{name}"].create(f"sd_{name}", dims=lead or None)
        sdb = sd[:, None] if K > 1 else sd
        dims = lead + (D(name),)
        if g.centered:
            if g.Q is None:
                r = pm.ZeroSumNormal(f"r_{name}", sigma=sdb, dims=dims)
            else:
                r = pm.Deterministic(f"r_{name}", _zero_sum(pm, pt, model, g, f"u_{name}", sdb,
                                                            dims, D), dims=dims)
        else:
            z = _zero_sum(pm, pt, model, g, f"z_{name}", 1.0, dims, D)
            r = pm.Deterministic(f"r_{name}", sdb * z, dims=dims)
        if K > 1:
            return r[:, idx].T
        col = g.Z[:, 0]
        return r[idx] if np.all(col == 1.0) else r[idx] * col
    sdp = _vector_prior([spec.priors[f"sd_{name}__{c}"] for c in g.coefs], f"sd_{name}")
    dims = D(g.coef_dim, name)
    if g.correlated:
        eta_lkj = spec.priors[f"cor_{name}"].params["eta"]
        chol, corr, stds = pm.LKJCholeskyCov(
            f"chol_{name}", n=k, eta=eta_lkj, sd_dist=sdp.dist_(shape=k), compute_corr=True,
            store_in_trace=False,
        )
        pm.Deterministic(f"sd_{name}", stds, dims=D(g.coef_dim))
        pm.Deterministic(f"cor_{name}", corr, dims=D(g.coef_dim, g.coef_dim + "_"))
        z = _zero_sum(pm, pt, model, g, f"z_{name}", 1.0, dims, D)
        r = pm.Deterministic(f"r_{name}", pt.dot(chol, z), dims=dims)
    else:
        sd = sdp.create(f"sd_{name}", dims=D(g.coef_dim))
        if g.centered:
            if g.Q is None:
                r = pm.ZeroSumNormal(f"r_{name}", sigma=sd[:, None], dims=dims)
            else:
                r = pm.Deterministic(f"r_{name}", _zero_sum(pm, pt, model, g, f"u_{name}",
                                                            sd[:, None], dims, D), dims=dims)
        else:
            z = _zero_sum(pm, pt, model, g, f"z_{name}", 1.0, dims, D)
            r = pm.Deterministic(f"r_{name}", sd[:, None] * z, dims=dims)
    Z = pt.as_tensor_variable(g.Z)
    return (r[:, idx].T * Z).sum(axis=1)

