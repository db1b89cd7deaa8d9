"""The NumPyro contestant's model, written from the arrays biasstats' own ``prepare()`` builds.

:func:`model_and_data` takes a :class:`biasstats.model.build.ModelSpec` and returns a NumPyro
model and the arrays it reads, so that NumPyro samples the very posterior biasstats samples:

* the same design: ``spec.X`` (patsy's fixed columns), each group term's level index and
  ``Z``, each auxiliary formula's design; the rows are biasstats' own (binomial cells, or one
  row per covariate cell of a sufficient-statistic model, ``count_stats``);
* the same priors (``spec.priors``, the data-scaled defaults and any override), the same
  parameterisation per term (``GroupSpec.centered``: centred ``r ~ ZSN(sd)`` or non-centred
  ``r = sd * z``), the same zero-sum constraints: PyMC's ZeroSumNormal is n - 1 iid normals
  mapped by the same Householder-type transform (``ZeroSumTransform``, ported from PyMC);
  a nested term's basis ``Q`` (``r = Q @ u``, ``u`` iid normal) as biasstats builds it;
* the same likelihood: the binomial of collapsed cells, the gaussian (sigma from its aux
  formula), the categorical against the first category, and the sufficient-statistic
  beta-binomial of the trial-level families (``logitnormal_binomial``: the beta with the
  logit-normal's mean and variance by the same 24 Gauss-Hermite nodes, the Zeger-Liang-Albert
  location scaling; ``beta_binomial``), term for term as ``model.build._build`` writes it.

Deterministic sites carry biasstats' names (``r_<term>``, ``Intercept``, ``b``, ``sd_<term>``,
the aux parameters), so both posteriors are read by the same code. Correlated varying slopes,
ordinal cut-points and the other families are not ported (NotImplementedError).

``tests/benchmarks/test_numpyro_port.py`` holds the log density to PyMC's at random points.
"""

from __future__ import annotations

import numpy as np

__all__ = ["model_and_data", "SUPPORTED_FAMILIES"]

SUPPORTED_FAMILIES = ("bernoulli", "binomial", "gaussian", "categorical", "logitnormal_binomial",
                      "beta_binomial")


def prior_dist(p, shape=None):
    """The NumPyro distribution of a biasstats :class:`~biasstats.model.priors.Prior` (PyMC's
    parameterisations: Exponential(lam | scale), Gamma(alpha, beta = rate), ...)."""
    import jax.numpy as jnp
    import numpyro.distributions as dist

    q = {k: jnp.asarray(v) for k, v in p.params.items()}
    d = p.dist
    if d == "Normal":
        out = dist.Normal(q.get("mu", 0.0), q["sigma"])
    elif d == "HalfNormal":
        out = dist.HalfNormal(q["sigma"])
    elif d == "Exponential":
        out = dist.Exponential(1.0 / q["scale"] if "scale" in q else q["lam"])
    elif d == "Gamma":
        out = dist.Gamma(q["alpha"], q["beta"])
    elif d == "StudentT":
        out = dist.StudentT(q["nu"], q.get("mu", 0.0), q["sigma"])
    elif d == "HalfStudentT":
        out = dist.HalfStudentT(q["nu"], q["sigma"]) if hasattr(dist, "HalfStudentT") else None
    elif d == "HalfCauchy":
        out = dist.HalfCauchy(q["beta"])
    elif d == "LogNormal":
        out = dist.LogNormal(q.get("mu", 0.0), q["sigma"])
    elif d == "Cauchy":
        out = dist.Cauchy(q.get("alpha", 0.0), q["beta"])
    else:
        out = None
    if out is None:
        raise NotImplementedError(f"prior {p} has no NumPyro port here")
    if shape is not None and tuple(out.batch_shape) != tuple(shape):
        out = out.expand(tuple(shape))
    return out.to_event(len(out.batch_shape)) if out.batch_shape else out


def _zero_sum(name, sigma, lead, L, Q, centered_sd=None):
    """A zero-sum vector over the last axis (``lead + (L,)``): n - 1 iid Normal(0, sigma)
    mapped by PyMC's zero-sum transform, or ``u @ Q.T`` with u iid Normal(0, sigma) on
    biasstats' basis ``Q`` of a nested term."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions.transforms import ZeroSumTransform

    n_free = L - 1 if Q is None else Q.shape[1]
    shape = tuple(lead) + (n_free,)
    raw = numpyro.sample(name, dist.Normal(0.0, sigma).expand(shape).to_event(len(shape)))
    return ZeroSumTransform(1)(raw) if Q is None else raw @ Q.T


def _ln_ab(eta, sigma, nodes, weights, c2):
    """(a, b) of the beta with the logit-normal's mean and variance (biasstats'
    ``_ab_logitnormal``, the same nodes and guards)."""
    import jax
    import jax.numpy as jnp

    loc = eta * jnp.sqrt(1.0 + c2 * sigma ** 2)
    p = jax.nn.sigmoid(loc[..., None] + sigma[..., None] * nodes)
    mu, m2 = p @ weights, (p * p) @ weights
    tiny = 1e-300
    pq = mu - m2
    phi = (pq + tiny) / (jnp.maximum(m2 - mu * mu, 0.0) + 1e-10 * pq + tiny)
    return mu * phi, (1.0 - mu) * phi


def _design(name, X, data):
    """``data[name]`` = X, or its distinct rows and each row's index when they are at most half
    its rows (as :func:`biasstats.model.graph.design_dot`)."""
    X = np.asarray(X, dtype=float)
    if X.shape[0] > 1:
        U, row = np.unique(X, axis=0, return_inverse=True)
        if 2 * U.shape[0] <= X.shape[0]:
            data[name], data[f"{name}_row"] = U, row.reshape(-1).astype(np.int32)
            return
    data[name] = X


def _dot(d, name, b):
    out = d[name] @ b
    return out[d[f"{name}_row"]] if f"{name}_row" in d else out


def model_and_data(spec):
    """(model, data): ``model(**data)`` is the NumPyro model of ``spec``'s posterior."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from biasstats.model.design import rows_of
    from biasstats.model.families.binomial import _LN_W, _LN_X, LN_C2
    from biasstats.model.graph import _vector_prior
    from biasstats.model.sufficient import count_stats

    fam = spec.family
    if fam.name not in SUPPORTED_FAMILIES:
        raise NotImplementedError(f"family {fam.name} has no NumPyro port here")
    if any(g.correlated for g in spec.groups):
        raise NotImplementedError("correlated varying slopes have no NumPyro port here")
    stats = count_stats(spec)
    rows = rows_of(spec, stats.rows) if stats is not None else spec
    K = spec.n_linpred
    lead = (K,) if K > 1 else ()
    priors = spec.priors

    # a design with few distinct rows (a factor's cells) as biasstats writes it
    # (model.graph.design_dot): (U @ b)[row], U the distinct rows
    data = {}
    _design("X", rows.X, data)
    for i, g in enumerate(rows.groups):
        data[f"idx{i}"] = np.asarray(g.idx, dtype=np.int32)
        data[f"Z{i}"] = np.asarray(g.Z, dtype=float)
        if g.Q is not None:
            data[f"Q{i}"] = np.asarray(g.Q, dtype=float)
    for k, a in rows.aux.items():
        _design(f"aux_X_{k}", a.X, data)
        for j, (_n, _lv, idx) in enumerate(a.groups):
            data[f"aux_idx_{k}{j}"] = np.asarray(idx, dtype=np.int32)
    if stats is not None:
        data.update(A=stats.A, B=stats.B, T=stats.T)
    else:
        data["y"] = np.asarray(spec.y)
        if spec.trials is not None:
            data["n"] = np.asarray(spec.trials, dtype=float)
        if spec.weights is not None and np.any(spec.weights > 1):
            raise NotImplementedError("weighted patterns without sufficient statistics")
    nrow = len(rows.y)
    const = float(stats.const) if stats is not None else 0.0
    gh_x, gh_w = jnp.asarray(_LN_X), jnp.asarray(_LN_W)
    b_prior = None
    if spec.fixed_names:
        b_prior = _vector_prior([priors[f"b_{c}"] for c in spec.fixed_names], "b")
    groups = rows.groups

    def model(**d):
        eta = jnp.zeros((nrow, K) if K > 1 else (nrow,))
        if spec.has_intercept:
            icpt = numpyro.sample("Intercept", prior_dist(priors["Intercept"], lead or None))
            eta = eta + icpt
        if spec.fixed_names:
            nb = len(spec.fixed_names)
            b = numpyro.sample("b", prior_dist(b_prior, lead + (nb,)))
            eta = eta + _dot(d, "X", b.T if K > 1 else b)
        for i, g in enumerate(groups):
            L = len(g.levels)
            Q = d.get(f"Q{i}")
            if len(g.coefs) == 1:
                sd = numpyro.sample(f"sd_{g.name}", prior_dist(priors[f"sd_{g.name}"],
                                                               lead or None))
                sdb = sd[:, None] if K > 1 else sd
                if g.centered:
                    r = _zero_sum(f"r_raw_{g.name}", sdb, lead, L, Q)
                else:
                    r = sdb * _zero_sum(f"z_{g.name}", 1.0, lead, L, Q)
                numpyro.deterministic(f"r_{g.name}", r)
                if K > 1:
                    eta = eta + r[:, d[f"idx{i}"]].T
                else:
                    col = g.Z[:, 0]
                    eta = eta + (r[d[f"idx{i}"]] if np.all(col == 1.0)
                                 else r[d[f"idx{i}"]] * d[f"Z{i}"][:, 0])
            else:
                if K > 1:
                    raise NotImplementedError("categorical varying slopes")
                sdp = _vector_prior([priors[f"sd_{g.name}__{c}"] for c in g.coefs], "sd")
                sd = numpyro.sample(f"sd_{g.name}", prior_dist(sdp, (len(g.coefs),)))
                if g.centered:
                    r = _zero_sum(f"r_raw_{g.name}", sd[:, None], (len(g.coefs),), L, Q)
                else:
                    r = sd[:, None] * _zero_sum(f"z_{g.name}", 1.0, (len(g.coefs),), L, Q)
                numpyro.deterministic(f"r_{g.name}", r)
                eta = eta + (r[:, d[f"idx{i}"]].T * d[f"Z{i}"]).sum(axis=1)
        aux = {}
        for k in fam.aux:
            if k in fam.vector_aux:
                raise NotImplementedError("ordinal cut-points")
            if k in rows.aux:
                a = rows.aux[k]
                ae = jnp.zeros(nrow)
                if a.has_intercept:
                    ae = ae + numpyro.sample(f"{k}_Intercept",
                                             prior_dist(priors[f"{k}_Intercept"]))
                if a.fixed_names:
                    bp = _vector_prior([priors[f"b_{k}_{c}"] for c in a.fixed_names], f"b_{k}")
                    ae = ae + _dot(d, f"aux_X_{k}", numpyro.sample(
                        f"{k}_b", prior_dist(bp, (len(a.fixed_names),))))
                for j, (name, levels, _idx) in enumerate(a.groups):
                    sdk = numpyro.sample(f"sd_{k}_{name}", prior_dist(priors[f"sd_{k}_{name}"]))
                    rk = sdk * _zero_sum(f"z_{k}_{name}", 1.0, (), len(levels), None)
                    numpyro.deterministic(f"r_{k}_{name}", rk)
                    ae = ae + rk[d[f"aux_idx_{k}{j}"]]
                aux[k] = jnp.exp(ae)
            else:
                aux[k] = numpyro.sample(k, prior_dist(priors[k]))
        if stats is not None:
            if fam.name == "logitnormal_binomial":
                a_, b_ = _ln_ab(eta, jnp.broadcast_to(aux["sigma"], eta.shape), gh_x, gh_w,
                                LN_C2)
            else:  # beta_binomial: logistic(-eta), not 1 - mu (as biasstats)
                phi = aux["phi"]
                a_, b_ = jax.nn.sigmoid(eta) * phi, jax.nn.sigmoid(-eta) * phi
            j = jnp.arange(d["A"].shape[1], dtype=eta.dtype)
            a_, b_ = a_[:, None], b_[:, None]
            numpyro.factor("loglik", const + jnp.sum(d["A"] * jnp.log(a_ + j))
                           + jnp.sum(d["B"] * jnp.log(b_ + j))
                           - jnp.sum(d["T"] * jnp.log(a_ + b_ + j)))
        elif fam.name in ("bernoulli", "binomial"):
            numpyro.sample("obs", dist.Binomial(total_count=d["n"], logits=eta), obs=d["y"])
        elif fam.name == "gaussian":
            numpyro.sample("obs", dist.Normal(eta, aux["sigma"]), obs=d["y"])
        elif fam.name == "categorical":
            full = jnp.concatenate([jnp.zeros((nrow, 1)), eta], axis=1)
            numpyro.sample("obs", dist.Categorical(logits=full), obs=d["y"])
        else:  # pragma: no cover
            raise NotImplementedError(fam.name)

    return model, data
