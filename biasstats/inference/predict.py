"""Posterior draws of the linear predictor for every cell of a fit.

Computed from the posterior and the model's design (``Fit.spec``), draw by draw, so every
effect size downstream is a function of draws — never of summaries.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from biasstats.errors import SpecError, first_line
from biasstats.model.data import design_frame, level_labels_of, to_polars
from biasstats.model.design import aux_draws, rows_of
from biasstats.model.sufficient import count_stats


def hdi(draws: np.ndarray, prob: float) -> np.ndarray:
    """HDI of each column of draws (S, K) → (K, 2)."""
    from arviz_stats.base import array_stats  # arviz-stats loads on first use, not on import

    d = np.asarray(draws, dtype=float)
    return np.asarray(array_stats.hdi(d.T, prob=prob, axis=-1))


def stack_draws(post, name: str | None = None) -> np.ndarray:
    """(S, ...) array of a variable (``post[name]``, or a DataArray) with chains and draws
    stacked."""
    a = np.asarray((post if name is None else post[name]).values)
    return a.reshape((-1,) + a.shape[2:])


def eta_from(post, spec, X: np.ndarray, terms) -> np.ndarray:
    """Intercept + X @ b + sum of r[:, :, idx] * Z over ``terms`` = [(r (S, coefs, levels),
    idx (rows,), Z (rows, coefs))], draw by draw: (S, rows).

    The categorical family's K-1 linear predictors (Intercept (S, K-1), b (S, K-1, coef),
    varying intercepts r (S, K-1, levels)) give (S, rows, K-1)."""
    S = post.sizes["chain"] * post.sizes["draw"]
    K = spec.n_linpred
    if K > 1:
        eta = np.zeros((S, X.shape[0], K))
        if spec.has_intercept:
            eta += stack_draws(post, "Intercept")[:, None, :]
        if spec.fixed_names:
            eta += np.einsum("skc,nc->snk", stack_draws(post, "b"), X)
        for r, idx, Z in terms:  # varying intercepts only (see model.design.group_specs)
            eta += r[:, :, idx].transpose(0, 2, 1) * Z[None, :, :1]
        return eta
    eta = np.zeros((S, X.shape[0]))
    if spec.has_intercept:
        eta += stack_draws(post, "Intercept")[:, None]
    if spec.fixed_names:
        eta += stack_draws(post, "b") @ X.T
    for r, idx, Z in terms:
        eta += np.einsum("skn,nk->sn", r[:, :, idx], Z)
    return eta


def group_draws(post, g) -> np.ndarray:
    """r_<term> draws as (S, coefs, levels)."""
    r = stack_draws(post, f"r_{g.name}")
    return r[:, None, :] if r.ndim == 2 else r


def covariate_cells(fit):
    """A fit's covariate cells: (rows, cell), ``rows`` a representative row per cell and
    ``cell`` each row's cell (rows of one cell share every linear predictor and auxiliary
    parameter, so every expected response). A pattern-weighted fit's patterns grouped by
    their covariates; any other fit's rows with the same covariates and design (a
    trial-level categorical model's 1,920 answers are 48 question x context cells). None when
    every row is its own cell."""
    st = count_stats(fit.spec)
    if st is not None:
        return st.rows, st.cell
    if hasattr(fit, "memo"):
        return fit.memo(("covariate_cells",), lambda: design_cells(fit.spec))
    return design_cells(fit.spec)


def design_cells(spec):
    """(rows, cell) of the distinct (covariates, design) rows of ``spec`` in order of first
    appearance (:func:`covariate_cells`), or None when all rows are distinct."""
    n = len(spec.y)
    pf = spec.formula
    keys = [spec.cells.select([c for c in spec.cells.columns
                               if c not in (pf.response, pf.trials)])]
    arrays = [np.asarray(spec.X, dtype=float).reshape(n, -1)]
    for g in spec.groups:
        arrays += [np.asarray(g.idx, dtype=float)[:, None],
                   np.asarray(g.Z, dtype=float).reshape(n, -1)]
    for a in getattr(spec, "aux", {}).values():
        arrays.append(np.asarray(a.X, dtype=float).reshape(n, -1))
        arrays += [np.asarray(idx, dtype=float)[:, None] for _, _, idx in a.groups]
    design = np.hstack(arrays)
    keys.append(pl.DataFrame({f"__d{j}": design[:, j] for j in range(design.shape[1])}))
    frame = pl.concat(keys, how="horizontal")
    if frame.width == 0 or n == 0:
        return None
    uniq = frame.unique(maintain_order=True)
    if uniq.height == n:
        return None
    uniq = uniq.with_row_index("__c")
    cell = frame.join(uniq, on=frame.columns, how="left", nulls_equal=True,
                      maintain_order="left")["__c"].to_numpy().astype(np.int64)
    _, rows = np.unique(cell, return_index=True)
    return rows.astype(np.int64), cell


def reduced(fit):
    """(spec, cells, weights) of ``fit`` on covariate cells: the design restricted to one
    pattern per cell, the cells' covariates and the observations each stands for (the sum of
    its patterns' :func:`cell_weights`). The fit's own when it has no patterns."""
    red = covariate_cells(fit)
    if red is None:
        return fit.spec, fit.spec.cells, cell_weights(fit)

    rows, cell = red
    w = np.bincount(cell, weights=cell_weights(fit), minlength=len(rows))
    return rows_of(fit.spec, rows), fit.spec.cells[rows.tolist()], w


def linear_predictor(fit, multi: bool = False, spec=None) -> np.ndarray:
    """eta[s, c]: draw s, cell c (``fit.spec.cells`` order, or the rows of ``spec``, e.g. the
    covariate cells of :func:`reduced`). Single-predictor families only, unless ``multi``:
    then the categorical family's (S, cells, K-1) too."""
    own = spec is None or spec is fit.spec
    spec = fit.spec if spec is None else spec
    if spec.n_linpred != 1 and not multi:
        raise ValueError(f"family '{spec.family.name}' has {spec.n_linpred} linear predictors")

    def compute():
        post = fit.idata["posterior"].to_dataset()
        return eta_from(post, spec, spec.X if spec.fixed_names else np.zeros((len(spec.y), 0)),
                        [(group_draws(post, g), g.idx, g.Z) for g in spec.groups])

    # the fit's own cells: once per posterior, whoever asks (PPC, LOO, estimands, variance)
    key = ("linpred", multi and spec.n_linpred != 1)  # one array when there is one predictor
    return fit.memo(key, compute) if own and hasattr(fit, "memo") else compute()


def category_names(spec) -> list[str]:
    """The response categories of an ordinal / categorical fit as text ("3", not "3.0", for
    a rating read as floats)."""
    return [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
            for v in spec.response_levels]


def expected_response(fam, eta: np.ndarray, aux: dict) -> np.ndarray:
    """(S, rows, C) posterior expected response: the family's mean (C = 1), or the
    probability of each of the C response categories (ordinal, categorical)."""
    if fam.categories is not None:
        return fam.categories(eta, aux)
    if fam.mean is None:

        raise SpecError(f"family '{fam.name}' has no expected response per row")
    return fam.mean(eta, aux)[:, :, None]


def cell_weights(fit) -> np.ndarray:
    """How many observations each cell stands for (trials for collapsed binomial cells)."""
    spec = fit.spec
    if spec.trials is not None:  # times the trials a weighted pattern stands for
        return np.asarray(spec.trials, dtype=float) * spec.row_weights()
    return np.ones(len(spec.y))


def level_labels(cells: pl.DataFrame, term) -> tuple[tuple[str, ...], np.ndarray] | None:
    """The grouping columns of ``term`` (``"llm"``, ``("llm", "stereotype")``, ``"overall"`` /
    ``()``) and each cell's level label (``"gpt4:guilt"``; ``"all"`` overall); None when the
    cells lack one of the columns."""
    key = () if term in ("overall", ()) else ((term,) if isinstance(term, str) else tuple(term))
    if not all(c in cells.columns for c in key):
        return None
    if not key:
        return key, np.full(cells.height, "all")

    return key, level_labels_of(cells, key)


# ----------------------------------------------------------------------------- new data
NEW_LEVELS = ("sample", "zero", "error")


def _new_design(info, pdf, what: str) -> np.ndarray:
    """The design of new rows from a fitted patsy DesignInfo (same coding and levels)."""
    # heavy libraries load on first use, not on import
    import patsy


    try:
        return np.asarray(patsy.build_design_matrices([info], pdf, NA_action="raise")[0],
                          dtype=float)
    except patsy.PatsyError as e:
        raise SpecError(f"newdata: {what}: {first_line(e)}") from None


def fixed_design(spec, pdf) -> np.ndarray:
    """The fitted model's fixed-effect columns (no intercept) for the rows of ``pdf``."""
    if not spec.fixed_names:
        return np.zeros((len(pdf), 0))
    full = _new_design(spec.fixed_info, pdf, f"fixed-effects part '{spec.formula.fixed}'")
    return full[:, [spec.fixed_info.column_names.index(c) for c in spec.fixed_names]]


def varying_design(g, pdf) -> np.ndarray:
    """Group term ``g``'s varying-part columns (its coefficients) for the rows of ``pdf``."""
    full = _new_design(g.z_info, pdf, f"varying part of term '{g.term.source}'")
    return full[:, [g.z_info.column_names.index(c) for c in g.coefs]]


def aux_of(fit, spec=None) -> dict[str, np.ndarray]:
    """A fit's auxiliary draws on its own rows (or the rows of ``spec``, e.g. the covariate
    cells of :func:`reduced`): (S, 1), or (S, cells) for a distributional ``[model.aux]``
    formula; vector parameters (cut-points) as (S, 1, K)."""

    post = fit.idata["posterior"].to_dataset()
    spec = fit.spec if spec is None else spec
    fam = spec.family
    out = {}
    for a in fam.aux:
        if a in fam.vector_aux:
            if a in post:
                out[a] = stack_draws(post, a)[:, None]
        elif a in post or a in getattr(spec, "aux", {}):
            out[a] = aux_draws(post, spec, a)
    return out


def posterior_linpred(fit, newdata, *, new_levels: str = "sample", seed: int = 0) -> np.ndarray:
    """Posterior draws of the linear predictor for each row of ``newdata``: (S, rows).

    ``newdata`` needs every covariate the formula uses (not the response). Fixed effects are
    coded with the fitted design (patsy), so factor levels must be ones the fit saw. A level
    of a grouping factor the fit did not see (a new prompt variant, a new LLM, a new
    llm:stereotype pair) is handled by ``new_levels``:

    * ``"sample"`` (default, brms' ``sample_new_levels = "gaussian"``): drawn from the fitted
      population, per posterior draw ``r_new ~ Normal(0, sd)`` (with the fitted correlation
      for correlated slopes), so predictions carry the between-level uncertainty;
    * ``"zero"``: the average level (effect 0), i.e. the population mean;
    * ``"error"``: refuse with a one-line error naming the level and term.

    The same ``seed`` gives the same draws. Single-predictor families only.
    """

    spec = fit.spec
    if spec.n_linpred != 1:
        raise SpecError(f"newdata: family '{spec.family.name}' has {spec.n_linpred} linear "
                        "predictors; prediction supports single-predictor families")
    if new_levels not in NEW_LEVELS:
        raise SpecError(f"new_levels must be one of {', '.join(NEW_LEVELS)}; got '{new_levels}'")
    nd = to_polars(newdata)
    pf = spec.formula
    need = [c for c in pf.columns() if c not in (pf.response, pf.trials)]
    for c in need:
        if c not in nd.columns:
            raise SpecError(f"newdata: missing column '{c}' (the model uses "
                            f"{', '.join(need)})")
        if nd[c].null_count():
            raise SpecError(f"newdata: column '{c}' has {nd[c].null_count()} missing value(s)")
    if nd.height == 0:
        raise SpecError("newdata: no rows")
    pdf = design_frame(nd.select(need), nd.height)
    post = fit.idata["posterior"].to_dataset()
    S = post.sizes["chain"] * post.sizes["draw"]
    X = fixed_design(spec, pdf)
    rng = np.random.default_rng(seed)
    terms = []
    for g in spec.groups:
        labels = level_labels(nd, g.term.factors)[1].astype(str)
        pos = {lvl: i for i, lvl in enumerate(g.levels)}
        idx = np.array([pos.get(lvl, -1) for lvl in labels], dtype=np.int64)
        Z = varying_design(g, pdf)
        r = group_draws(post, g)
        new = sorted(set(labels[idx < 0].tolist()))
        if new:
            if new_levels == "error":
                raise SpecError(f"newdata: level '{new[0]}' of '{g.name}' is not in the fitted "
                                "data; use new_levels='sample' (drawn from the fitted "
                                "population) or 'zero' (the average level)")
            k = r.shape[1]
            extra = np.zeros((S, k, len(new)))
            if new_levels == "sample":
                sd = stack_draws(post, f"sd_{g.name}").reshape(S, k)
                z = rng.standard_normal((S, k, len(new)))
                if g.correlated:
                    chol = np.linalg.cholesky(stack_draws(post, f"cor_{g.name}"))
                    z = np.einsum("sij,sjn->sin", chol, z)
                extra = sd[:, :, None] * z
            r = np.concatenate([r, extra], axis=2)
            at = {lvl: len(g.levels) + i for i, lvl in enumerate(new)}
            idx = np.where(idx >= 0, idx, [at.get(lvl, 0) for lvl in labels])
        terms.append((r, idx, Z))
    return eta_from(post, spec, X, terms)


def posterior_epred(fit, newdata, *, new_levels: str = "sample", seed: int = 0) -> np.ndarray:
    """Posterior draws of the expected response for each row of ``newdata``: (S, rows).

    The family's mean (:attr:`biasstats.model.families.Family.mean`): the probability of a
    congruent answer for the binomial families (per trial, whatever ``n`` is), the mean for
    gaussian / lognormal / count families. See :func:`posterior_linpred` for ``new_levels``."""

    fam = fit.spec.family
    if fam.mean is None:
        raise SpecError(f"newdata: family '{fam.name}' has no single expected value per row")
    eta = posterior_linpred(fit, newdata, new_levels=new_levels, seed=seed)
    post = fit.idata["posterior"].to_dataset()
    aux = {a: stack_draws(post, a)[:, None] for a in fam.aux if a in post}
    return fam.mean(eta, aux)
