"""The parameters of one simulated study, and its outcome.

Every simulated study takes one **parameter set** of the analysis' model: a draw of its fitted
posterior (the analysis was fitted: its cached ``posterior.nc``), or of its prior (nothing is
fitted yet). The same parameter set serves the same simulation number at every design size
(common random numbers: the sizes differ by their design, not by their luck of the draw).

On a new design the parameter set is completed level by level:

* the intercept, fixed effects, SDs, correlations and auxiliary parameters are the draw's;
* a group term whose levels all exist in the analysis' data (a term of factors not varied)
  keeps the draw's effect of each level, matched by name;
* a term with new levels (its factors include a varied one) draws them from the population
  the draw describes: independent ``Normal(0, sd)`` effects (with the draw's correlation for
  correlated slopes), as a new sample of prompts would be. The model reports level effects as
  deviations from their mean (zero-sum) with the mean in the intercept (or in the fixed slope
  of the same name), so their mean is moved there: the linear predictor is exactly that of
  the independent draws. For a term nested in a coarser one, the effects are projected onto
  its zero-sum constraints (the within-parent means are dropped, not moved to the parent).

The outcome is drawn row by row from the family's own random draw
(:attr:`biasstats.model.families.Family.draw`) at the linear predictor of the design's rows.
"""

from __future__ import annotations

import warnings

import numpy as np

from biasstats.errors import SpecError
from biasstats.inference.predict import aux_of, eta_from, group_draws
from biasstats.inference.result import Fit
from biasstats.model.graph import build_model
from biasstats.simulate.from_formula import prior_draw

__all__ = ["parameter_draws", "truth_draw", "simulate_outcome", "one_draw_fit"]

_HIDDEN = ("z_", "u_", "chol_")


def parameter_draws(base, fit=None, n_sims: int = 1, seed: int = 0):
    """(Dataset with chain and draw dims, the flat draw index of each simulation, source):
    the posterior of ``fit`` (``source`` "posterior"), else ``n_sims`` draws of the prior of
    the model ``base`` (a prepared ModelSpec; ``source`` "prior")."""
    rng = np.random.default_rng([seed, 7])
    if fit is not None:
        post = fit.idata["posterior"].to_dataset()
        S = post.sizes["chain"] * post.sizes["draw"]
        return post, rng.choice(S, size=n_sims, replace=S < n_sims), "posterior"
    model = build_model(base)
    ordered = [k for k in base.family.vector_aux if k in base.family.aux]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the effect of Potentials ... ignored": no Potential
        if not ordered:
            return prior_draw(model, seed, draws=n_sims).prior.to_dataset(), \
                np.arange(n_sims), "prior"
        return _ordered_prior(model, ordered, n_sims, seed), np.arange(n_sims), "prior"


MAX_PRIOR_ROUNDS = 20


def _ordered_prior(model, names: list[str], n_sims: int, seed: int):
    """``n_sims`` prior draws whose ordered vectors (cut-points) are in order. Forward
    sampling ignores the ordered transform: it draws each cut-point from its own Normal, out
    of order as often as not; the prior the model fits is that Normal restricted to ordered
    vectors, whose exact draws are the ordered ones among the forward draws (rejection)."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    kept, have = [], 0
    for r in range(MAX_PRIOR_ROUNDS):
        ds = prior_draw(model, seed + 1000 * r, draws=max(4 * n_sims, 100)).prior.to_dataset()
        ok = np.ones(ds.sizes["draw"], dtype=bool)
        for k in names:
            v = np.asarray(ds[k].values, dtype=float).reshape(ds.sizes["draw"], -1)
            ok &= np.all(np.diff(v, axis=1) > 0, axis=1)
        if ok.any():
            kept.append(ds.isel(draw=np.flatnonzero(ok)))
            have += int(ok.sum())
        if have >= n_sims:
            out = xr.concat(kept, dim="draw").isel(draw=slice(0, n_sims))
            return out.assign_coords(draw=np.arange(n_sims))
    raise SpecError(f"[model.priors] {names[0]}: {have} of the prior's draws in "
                    f"{MAX_PRIOR_ROUNDS} rounds have ordered {names[0]}, fewer than the "
                    f"{n_sims} simulations; give {names[0]} a prior on the data's scale or "
                    "fit the analysis first (its posterior is then used)")


def _one(params, flat: int):
    """Draw ``flat`` (chains stacked) of ``params`` as a (chain=1, draw=1) Dataset."""
    D = params.sizes["draw"]
    c, d = divmod(int(flat), D)
    return params.isel(chain=[c], draw=[d])


def _bare(values, dims):
    # heavy libraries load on first use, not on import
    import xarray as xr

    return xr.DataArray(np.asarray(values, dtype=float), dims=dims)


def _by_name(da, dim: str, labels):
    """``da`` with its ``dim`` in the order of ``labels`` (the model's level or coefficient
    names), read by name where the draws carry their labels; K = 1 models only."""
    if dim in da.dims and dim in da.coords:
        da = da.sel({dim: [str(v) for v in labels]})
    return da.transpose("chain", "draw", *(d for d in da.dims if d not in ("chain", "draw")))


def _new_levels(r_iid: np.ndarray, Q) -> tuple[np.ndarray, np.ndarray]:
    """Zero-sum level effects (coefs, L) from independent ones, and the mean moved out (one
    per coefficient; zero for a nested term, whose effects are projected instead)."""
    if Q is None:
        mean = r_iid.mean(axis=-1)
        return r_iid - mean[:, None], mean
    return r_iid @ Q @ Q.T, np.zeros(r_iid.shape[0])


def truth_draw(params, flat: int, base, rows, varied: set[str], rng):
    """The parameter set of one simulated study on the design ``rows`` (a prepared
    ModelSpec of the design's rows), from draw ``flat`` of ``params`` of the model ``base``
    (the analysis' prepared ModelSpec): a (chain=1, draw=1) Dataset holding every variable
    the linear predictor and the auxiliaries read (see the module docstring)."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    one = _one(params, flat)
    out = {}
    for name in one.data_vars:
        name = str(name)
        da = one[name]
        if name.startswith(_HIDDEN) or name.startswith("r_") or name == "b" \
                or rows.obs_dim in da.dims:
            continue
        out[name] = _bare(da.values, da.dims)
    if rows.fixed_names:
        b = _by_name(one["b"], "coef", base.fixed_names)
        pos = [list(base.fixed_names).index(c) for c in rows.fixed_names]
        out["b"] = _bare(b.values[..., pos], b.dims)
    base_groups = {g.name: g for g in base.groups}
    K = rows.n_linpred  # the categorical family's K - 1 linear predictors: one row each
    for g in rows.groups:
        bg = base_groups[g.name]
        r = _by_name(_by_name(one[f"r_{g.name}"], g.name, bg.levels), bg.coef_dim, bg.coefs)
        n_rows = K if K > 1 else len(bg.coefs)  # (varying intercepts only when K > 1)
        r = np.asarray(r.values, dtype=float).reshape(n_rows, len(bg.levels))
        if not set(g.term.factors) & varied and set(g.levels) <= set(bg.levels):
            pos = {lv: i for i, lv in enumerate(bg.levels)}
            new = r[:, [pos[lv] for lv in g.levels]]
        else:
            sd = np.asarray(one[f"sd_{g.name}"].values, dtype=float).reshape(-1)
            z = rng.standard_normal((n_rows, len(g.levels)))
            if g.correlated and len(g.coefs) > 1:
                cor = np.asarray(one[f"cor_{g.name}"].values, dtype=float).reshape(
                    len(g.coefs), len(g.coefs))
                z = np.linalg.cholesky(cor) @ z
            new, mean = _new_levels(sd[:, None] * z, g.Q)
            if K > 1:  # one mean per linear predictor, into its intercept
                _move_mean(out, rows, "Intercept", mean)
            else:
                for k, coef in enumerate(g.coefs):
                    _move_mean(out, rows, coef, mean[k])
        if K > 1:  # stored as (chain, draw, category, levels)
            out[f"r_{g.name}"] = _bare(new[None, None], ("chain", "draw", f"{rows.formula.response}__cat", g.name))
        elif len(g.coefs) == 1:  # stored as (chain, draw, levels)
            out[f"r_{g.name}"] = _bare(new[0][None, None], ("chain", "draw", g.name))
        else:
            out[f"r_{g.name}"] = _bare(new[None, None], ("chain", "draw", g.coef_dim, g.name))
    _aux_levels(one, out, base, rows, varied, rng)
    return xr.Dataset(out)


def _move_mean(out: dict, rows, coef: str, mean) -> None:
    """Add the mean of new level effects to the intercept, or to the fixed slope ``coef``
    (without an intercept, to every fixed effect of a cell-means design, whose rows each
    hold one 1). ``mean``: one number, or one per linear predictor (categorical family),
    added along the intercept's and fixed effects' category axis."""
    if np.ndim(mean) == 1:  # (K - 1,): the intercept is (chain, draw, K - 1), b (.., K - 1, coef)
        m = np.asarray(mean, dtype=float)
        if rows.has_intercept:
            out["Intercept"] = _bare(out["Intercept"].values + m, out["Intercept"].dims)
        elif rows.fixed_names and np.allclose(rows.X.sum(axis=1), 1.0):
            out["b"] = _bare(out["b"].values + m[:, None], out["b"].dims)
        return
    if coef == "Intercept" and rows.has_intercept:
        out["Intercept"] = out["Intercept"] + mean
    elif coef == "Intercept" and rows.fixed_names and np.allclose(rows.X.sum(axis=1), 1.0):
        out["b"] = out["b"] + mean
    elif coef in rows.fixed_names:
        k = list(rows.fixed_names).index(coef)
        b = out["b"].values.copy()
        b[..., k] += mean
        out["b"] = _bare(b, out["b"].dims)


def _aux_levels(one, out: dict, base, rows, varied: set[str], rng) -> None:
    """Group effects of distributional auxiliary formulas (``[model.aux]``), as for the
    linear predictor's terms."""
    for k, a in rows.aux.items():
        ba = {name: levels for name, levels, _ in base.aux[k].groups}
        for name, levels, _idx in a.groups:
            r = np.asarray(one[f"r_{k}_{name}"].values, dtype=float).reshape(-1)
            if not set(name.split(":")) & varied and set(levels) <= set(ba[name]):
                pos = {lv: i for i, lv in enumerate(ba[name])}
                new = r[[pos[lv] for lv in levels]]
            else:
                sd = float(np.asarray(one[f"sd_{k}_{name}"].values).reshape(-1)[0])
                new, mean = _new_levels(sd * rng.standard_normal((1, len(levels))), None)
                new = new[0]
                if a.has_intercept:
                    out[f"{k}_Intercept"] = out[f"{k}_Intercept"] + mean[0]
            out[f"r_{k}_{name}"] = _bare(new[None, None, :], ("chain", "draw", f"{k}_{name}"))


def one_draw_fit(ds, spec, copies: int = 1) -> Fit:
    """A Fit whose posterior is the one parameter set ``ds`` (its estimands are the truth),
    held ``copies`` times (two give every summary its defined value: a zero SD, an interval
    of zero width)."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    if copies > 1:
        ds = xr.concat([ds] * copies, dim="draw")
    return Fit(idata=xr.DataTree.from_dict({"posterior": ds}), spec=spec)


def simulate_outcome(truth, rows, rng) -> np.ndarray:
    """One outcome per row of the design ``rows`` under the parameter set ``truth``."""
    eta = eta_from(truth, rows, rows.X if rows.fixed_names else np.zeros((len(rows.y), 0)),
                   [(group_draws(truth, g), g.idx, g.Z) for g in rows.groups])
    aux = aux_of(one_draw_fit(truth, rows), rows)
    y = rows.family.draw(rng, eta, aux, rows.trials)
    return np.asarray(y)[0]
