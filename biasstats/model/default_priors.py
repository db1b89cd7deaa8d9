"""The priors a model uses: the data-scaled defaults (see :mod:`biasstats.model.priors`) with
the user's overrides, exact keys first, then the broad ones (``b``, ``sd``, ``cor``)."""

from __future__ import annotations

import math

import numpy as np

from biasstats.errors import SpecError
from biasstats.model.design import ModelSpec
from biasstats.model.priors import POSITIVE, Prior, parse_prior

__all__ = ["default_priors"]


def default_priors(spec: ModelSpec, user: dict) -> dict[str, Prior]:
    """Every prior of ``spec``'s model by key, ``user`` (key -> prior string) applied."""
    fam = spec.family
    loc, s = fam.prior_location(spec.y)
    out: dict[str, Prior] = {}
    if spec.has_intercept:
        out["Intercept"] = Prior("Normal", {"mu": round(loc, 4), "sigma": round(2.5 * s, 4)})
    # row-level spread of the covariates (cells weighted by their number of rows)
    w = spec.trials.astype(float) if spec.collapsed else spec.row_weights()

    def wstd(col: np.ndarray) -> float:
        m = np.average(col, weights=w)
        return float(np.sqrt(np.average((col - m) ** 2, weights=w)))

    sdx = [wstd(spec.X[:, j]) for j in range(spec.X.shape[1])]
    for c, sx in zip(spec.fixed_names, sdx, strict=True):
        out[f"b_{c}"] = Prior("Normal", {"mu": 0.0, "sigma": round(2.5 * s / max(sx, 1e-8), 4)})
    for g in spec.groups:
        for j, c in enumerate(g.coefs):
            sz = 1.0 if c == "Intercept" else wstd(g.Z[:, j])
            key = f"sd_{g.name}" if len(g.coefs) == 1 else f"sd_{g.name}__{c}"
            out[key] = Prior("HalfNormal", {"sigma": round(s / max(sz, 1e-8), 4)})
        if g.correlated:
            out[f"cor_{g.name}"] = Prior("LKJ", {"eta": 2.0})
    for k, txt in fam.aux_priors(spec.y).items():
        out[k] = parse_prior(txt, k)
    for k, a in spec.aux.items():
        # log link: the intercept centred on the log of the scalar default's scale, 1.5 wide
        base = out.pop(k)
        if a.has_intercept:
            out[f"{k}_Intercept"] = Prior("Normal", {"mu": round(math.log(base.scale()), 4),
                                                     "sigma": 1.5})
        for c in a.fixed_names:
            out[f"b_{k}_{c}"] = Prior("Normal", {"mu": 0.0, "sigma": 1.0})
        for name, _levels, _idx in a.groups:
            out[f"sd_{k}_{name}"] = Prior("HalfNormal", {"sigma": 1.0})

    # user overrides: exact keys, then the broad ones (b, sd, cor) for keys not set exactly
    broad = {"b": "b_", "sd": "sd_", "cor": "cor_"}
    for key in user:
        if key in out or key in broad:
            continue
        if any(key == f"sd_{g.name}" for g in spec.groups):  # sd_g for a multi-coef term
            continue
        raise SpecError(f"unknown prior key '{key}'; known keys: {', '.join(out)}")
    for key, pref in broad.items():
        if key in user:
            p = parse_prior(user[key], key)
            for k in out:
                if k.startswith(pref):
                    out[k] = p
    for g in spec.groups:
        key = f"sd_{g.name}"
        if key in user and len(g.coefs) > 1:
            p = parse_prior(user[key], key)
            for c in g.coefs:
                out[f"sd_{g.name}__{c}"] = p
    for key, val in user.items():
        if key in out and key not in broad:
            out[key] = parse_prior(val, key)
    for k, p in out.items():
        if k.startswith("cor_") and p.dist != "LKJ":
            raise SpecError(f"prior '{p}' for '{k}' must be LKJ(eta)")
        scale = k.startswith("sd_") or k in ("sigma", "alpha", "phi", "nu")
        if scale and p.dist not in POSITIVE:
            raise SpecError(f"prior '{p}' for '{k}' must be positive-only (e.g. HalfNormal(1))")
    return out
