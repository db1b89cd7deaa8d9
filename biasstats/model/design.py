"""From data to the design of a model: the :class:`ModelSpec` record and the steps
:func:`biasstats.model.build.prepare` takes — the response coded, rows collapsed into binomial
cells or weighted patterns, the fixed-effect and group-term designs (patsy), the designs of
distributional auxiliary formulas, and the zero-sum constraints of nested terms.

Collapsing: for ``bernoulli`` and ``binomial`` rows with identical covariates are summed into
binomial **cells** (k successes out of n): the likelihood is the same up to the constant
sum(log C(n, k)), and the cost follows the number of cells, not rows. The observed variable,
the posterior predictive and the ``log_likelihood`` group are then per cell (dimension
``cell``), so LOO leaves out one covariate pattern, not one judgement; ``ModelSpec.cells``
maps cells back to covariate values. For the k-of-n families whose n outcomes share a
probability (a sum of beta-binomials is not beta-binomial), rows with the same covariates
**and the same (n, k)** are one **pattern** with a count (``ModelSpec.weights``; dimension
``pattern``): a pattern's log density is its count times that of one of its trials, which is
exact, and :func:`biasstats.checks.compare.loo_patterns` weights the pointwise PSIS-LOO by the
counts (exactly per-trial PSIS-LOO).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from biasstats.errors import SpecError
from biasstats.model.data import distinct_labels, level_labels_of
from biasstats.model.families import Family
from biasstats.model.formula import GroupTerm, ParsedFormula
from biasstats.model.priors import Prior
from biasstats.model.terms import build_design, has_stateful, term_columns

__all__ = ["GroupSpec", "AuxSpec", "ModelSpec", "Observations", "code_response",
           "observations", "fixed_design", "group_specs", "aux_design", "aux_draws",
           "constraints", "nested_in", "rows_of", "model_factors", "has_interaction",
           "MAX_PROJECTED_LEVELS"]


@dataclass
class GroupSpec:
    term: GroupTerm
    levels: list[str]
    idx: np.ndarray                  # level index per observation/cell
    Z: np.ndarray                    # (n, k) varying-part design (column of ones for 1)
    coefs: list[str]                 # names of the Z columns ("Intercept", "x")
    centered: bool
    reason: str                      # why centred / non-centred
    correlated: bool
    parents: list[str] = field(default_factory=list)
    Q: np.ndarray | None = None      # (L, L-r) orthonormal basis of the zero-sum subspace
    # how far the chosen parameterisation reaches into its funnel: se/tau_lo when centred,
    # tau_hi/se when not (see model.centring); None when the family has no working response
    funnel_risk: float | None = None
    z_info: Any = None               # patsy DesignInfo of the varying part (for new data)

    @property
    def name(self) -> str:
        return self.term.name

    @property
    def coef_dim(self) -> str:
        return f"{self.name}__coef"


@dataclass
class AuxSpec:
    """A distributional (brms-style) formula for a positive auxiliary parameter, on the log
    scale: ``log phi = phi_Intercept + X @ phi_b + sum_g r_phi_g[idx]`` (group terms
    non-centred zero-sum, varying intercepts only). ``[model.aux] phi = "~ 1 + (1|llm)"``."""

    name: str                        # phi, sigma, alpha, nu
    formula: str                     # the right-hand side as given
    X: np.ndarray                    # fixed design without the intercept column
    fixed_names: list[str]
    has_intercept: bool
    groups: list[tuple[str, list[str], np.ndarray]]  # (grouping name, levels, idx)
    fixed_info: Any = None


@dataclass
class ModelSpec:
    formula: ParsedFormula
    family: Family
    y: np.ndarray
    trials: np.ndarray | None
    X: np.ndarray                    # fixed design without the intercept column
    fixed_names: list[str]
    has_intercept: bool
    groups: list[GroupSpec]
    priors: dict[str, Prior]
    cells: pl.DataFrame              # covariates per observation / cell (+ k, n when collapsed)
    collapsed: bool
    n_rows: int                      # rows used (after dropping missing)
    n_dropped: int                   # rows dropped for missing values
    obs_dim: str
    response_levels: list | None = None   # ordinal / categorical
    data_hash: str = ""
    fixed_info: Any = None                # patsy DesignInfo of the fixed part (for new data)
    # trials per pattern when identical (covariates, n, k) rows were collapsed (beta-binomial);
    # None when each row/cell stands for itself
    weights: np.ndarray | None = None
    separation: list[str] = field(default_factory=list)  # one line per separated term
    # the design diagnosis: the separation lines, then every other hard design, one line each
    diagnosis: list[str] = field(default_factory=list)
    aux: dict[str, AuxSpec] = field(default_factory=dict)  # distributional aux formulas
    row_pattern: np.ndarray | None = None  # pattern index of each data row (with weights)

    def row_weights(self) -> np.ndarray:
        """How many data rows each observation/pattern stands for (1 without patterns)."""
        return (np.ones(len(self.y)) if self.weights is None
                else np.asarray(self.weights, dtype=float))

    @property
    def n_linpred(self) -> int:
        return self.family.n_linpred(self.response_levels)

    def describe_centring(self) -> dict[str, str]:
        return {g.name: ("centred" if g.centered else "non-centred") + f" ({g.reason})"
                for g in self.groups}


# ----------------------------------------------------------------------------- the response
def code_response(df: pl.DataFrame, pf: ParsedFormula, fam: Family):
    """(``df`` with the response coded, the response categories or None): category codes
    0 … K-1 for a family with categories (levels in Enum order, else sorted), else the
    response as Float64, checked against the family."""
    if fam.has_categories:
        ys = df[pf.response]
        if isinstance(ys.dtype, pl.Enum):
            levels = list(ys.dtype.categories)
        else:
            levels = sorted(ys.unique().to_list())
        if len(levels) < 2:
            raise SpecError(f"response '{pf.response}' has one value only; "
                            f"family '{fam.name}' needs at least 2")
        code = {v: i for i, v in enumerate(levels)}
        return df.with_columns(pl.Series(pf.response, [code[v] for v in ys.to_list()],
                                         dtype=pl.Int64)), levels
    if not df[pf.response].dtype.is_numeric() and df[pf.response].dtype != pl.Boolean:
        raise SpecError(f"response '{pf.response}' must be numeric for family '{fam.name}'")
    df = df.with_columns(pl.col(pf.response).cast(pl.Float64))
    yv = df[pf.response].to_numpy()
    fam.check_response(yv, pf.response, df[pf.trials].to_numpy() if pf.trials else None)
    return df, None


# ----------------------------------------------------------------------------- observations
@dataclass
class Observations:
    """What the model's observations are: one per row, per binomial cell or per pattern."""

    y: np.ndarray
    trials: np.ndarray | None
    frame: pl.DataFrame              # the covariates of each observation
    cells: pl.DataFrame              # ModelSpec.cells
    collapsed: bool = False
    patterns: bool = False
    weights: np.ndarray | None = None
    row_pattern: np.ndarray | None = None

    @property
    def obs_dim(self) -> str:
        return "cell" if self.collapsed else ("pattern" if self.patterns else "obs")


def observations(df: pl.DataFrame, pf: ParsedFormula, fam: Family, used: list[str],
                 collapse: bool | None) -> Observations:
    """The observations of the (complete, coded) rows ``df``: binomial cells or weighted
    patterns where the family allows and ``collapse`` is not False, else the rows."""
    do_collapse = fam.collapse if collapse is None else (collapse and fam.collapse)
    do_patterns = (fam.patterns and collapse is not False and pf.trials is not None)
    covars = [c for c in used if c not in (pf.response, pf.trials)]
    if do_collapse or do_patterns:
        for expr in (pf.fixed, *(g.expr for g in pf.groups)):
            s = has_stateful(expr)
            if s:
                raise SpecError(
                    f"stateful transform '{s}' in formula '{pf.formula}' would be computed "
                    "over collapsed cells; standardise the column before fitting"
                )
    if do_patterns:
        return _patterns(df, pf, covars)
    if do_collapse:
        return _cells(df, pf, covars)
    y = df[pf.response].to_numpy()
    if fam.integer_response:
        y = y.astype(np.int64)
    trials = (df[pf.trials].to_numpy().astype(np.int64) if pf.trials
              else fam.default_trials(len(y)))
    frame = df.select(covars) if covars else pl.DataFrame({"__row": np.zeros(df.height)})
    return Observations(y=y, trials=trials, frame=frame, cells=df)


def _patterns(df: pl.DataFrame, pf: ParsedFormula, covars: list[str]) -> Observations:
    keys = [*covars, pf.response, pf.trials]
    pats = df.group_by(keys, maintain_order=True).agg(pl.len().alias("__w"))
    row_pattern = (df.select(keys).join(pats.select(keys).with_row_index("__p"), on=keys,
                                        how="left", nulls_equal=True,
                                        maintain_order="left")["__p"].to_numpy())
    y = pats[pf.response].to_numpy().astype(np.int64)
    frame = pats.select(covars) if covars else pl.DataFrame({"__row": np.zeros(len(y))})
    return Observations(y=y, trials=pats[pf.trials].to_numpy().astype(np.int64), frame=frame,
                        cells=pats.drop("__w"), patterns=True,
                        weights=pats["__w"].to_numpy().astype(np.int64),
                        row_pattern=row_pattern)


def _cells(df: pl.DataFrame, pf: ParsedFormula, covars: list[str]) -> Observations:
    n_expr = pl.col(pf.trials).sum() if pf.trials else pl.len()
    if covars:
        cells = df.group_by(covars, maintain_order=True).agg(
            pl.col(pf.response).sum().alias("__k"), n_expr.cast(pl.Float64).alias("__n"))
    else:
        cells = df.select(pl.col(pf.response).sum().alias("__k"),
                          n_expr.cast(pl.Float64).alias("__n"))
    return Observations(y=cells["__k"].to_numpy().astype(np.int64),
                        trials=cells["__n"].to_numpy().astype(np.int64),
                        frame=cells.drop(["__k", "__n"]),
                        cells=cells.rename({"__k": "k", "__n": "n"}), collapsed=True)


# ----------------------------------------------------------------------------- designs
def _constant_column(dm: pd.DataFrame) -> str | None:
    """The first column other than the intercept that is constant in the data, if any."""
    return next((c for c in dm.columns
                 if c != "Intercept" and np.ptp(dm[c].to_numpy(dtype=float)) == 0), None)


def fixed_design(pf: ParsedFormula, pdf: pd.DataFrame, fam: Family):
    """(X without the intercept column, its column names, whether the model has its own
    intercept, the patsy design) of the fixed-effects part."""
    dm = build_design(pf.fixed, pdf, f"fixed-effects part '{pf.fixed}'")
    names = list(dm.columns)
    has_int = "Intercept" in names and fam.intercept
    keep = [c for c in names if c != "Intercept"]
    X = dm[keep].to_numpy(dtype=float) if keep else np.zeros((len(pdf), 0))
    const = _constant_column(dm) if "Intercept" in names else None
    if const is not None:
        raise SpecError(f"fixed-effect column '{const}' is constant in the data; drop it")
    return X, keep, has_int, dm


def group_specs(pf: ParsedFormula, frame: pl.DataFrame, pdf: pd.DataFrame,
                fam: Family) -> list[GroupSpec]:
    """One :class:`GroupSpec` per group term (not centred yet: see
    :func:`biasstats.model.centring.choose_centring`)."""
    groups: list[GroupSpec] = []
    for t in pf.groups:
        labels = level_labels_of(frame, t.factors)
        distinct_labels(frame, t.factors, labels, f"grouping factor '{t.name}' in term '{t.source}'")
        levels, idx = np.unique(labels.astype(str), return_inverse=True)
        if len(levels) < 2:
            raise SpecError(f"grouping factor '{t.name}' in term '{t.source}' has only one level "
                            f"('{levels[0]}'); a group term needs at least 2")
        zm = build_design(t.expr, pdf, f"varying part '{t.expr}' of term '{t.source}'")
        coefs = list(zm.columns)
        const = _constant_column(zm)
        if const is not None:
            raise SpecError(f"slope '{const}' in term '{t.source}' is constant in the data; "
                            f"drop it or use (1 | {t.name})")
        if not coefs:
            raise SpecError(f"term '{t.source}' has no varying coefficient")
        if fam.multinomial and coefs != ["Intercept"]:
            raise SpecError(f"term '{t.source}': family '{fam.name}' supports varying "
                            "intercepts only")
        groups.append(GroupSpec(term=t, levels=[str(v) for v in levels], idx=idx.astype(np.int64),
                                Z=zm.to_numpy(dtype=float), coefs=coefs, centered=False,
                                reason="", correlated=t.correlated and len(coefs) > 1,
                                z_info=zm.design_info))
    return groups


# ----------------------------------------------------------------------------- aux formulas
def aux_design(k: str, apf: ParsedFormula, pdf: pd.DataFrame, frame: pl.DataFrame) -> AuxSpec:
    """The design of the distributional formula of auxiliary parameter ``k``."""
    dm = build_design(apf.fixed, pdf, f"[model.aux] {k} formula '{apf.fixed}'")
    names = list(dm.columns)
    keep = [c for c in names if c != "Intercept"]
    const = _constant_column(dm) if "Intercept" in names else None
    if const is not None:
        raise SpecError(f"[model.aux] {k}: column '{const}' is constant in the data; drop it")
    groups = []
    for t in apf.groups:
        labels = level_labels_of(frame, t.factors)
        distinct_labels(frame, t.factors, labels, f"[model.aux] {k}: grouping '{t.name}'")
        levels, idx = np.unique(labels.astype(str), return_inverse=True)
        if len(levels) < 2:
            raise SpecError(f"[model.aux] {k}: grouping '{t.name}' has only one level")
        groups.append((t.name, [str(v) for v in levels], idx.astype(np.int64)))
    return AuxSpec(name=k, formula=apf.fixed if not apf.groups else
                   " + ".join([apf.fixed, *(g.source for g in apf.groups)]),
                   X=dm[keep].to_numpy(dtype=float) if keep else np.zeros((len(pdf), 0)),
                   fixed_names=keep, has_intercept="Intercept" in names, groups=groups,
                   fixed_info=dm.design_info)


def aux_draws(post, spec: ModelSpec, k: str) -> np.ndarray:
    """Posterior draws of auxiliary parameter ``k``: (S, 1) when it is one number, (S, n) per
    observation/cell/pattern when it has a distributional formula."""
    a = spec.aux.get(k)
    if a is None:
        v = np.asarray(post[k].values, dtype=float)
        return v.reshape(-1, 1)
    S = post.sizes["chain"] * post.sizes["draw"]
    eta = np.zeros((S, len(spec.y)))
    if a.has_intercept:
        eta += np.asarray(post[f"{k}_Intercept"].values, dtype=float).reshape(S, 1)
    if a.fixed_names:
        eta += np.asarray(post[f"{k}_b"].values, dtype=float).reshape(S, -1) @ a.X.T
    for name, _levels, idx in a.groups:
        r = np.asarray(post[f"r_{k}_{name}"].values, dtype=float).reshape(S, -1)
        eta += r[:, idx]
    return np.exp(eta)


MAX_PROJECTED_LEVELS = 2000


def nested_in(g: GroupSpec, h: GroupSpec) -> bool:
    """True if every level of ``g`` lies inside one level of the coarser term ``h``.

    Judged from the data, not the syntax: ``llm:stereotype`` is nested in
    ``category:stereotype`` when each stereotype belongs to one category.
    """
    if len(h.levels) >= len(g.levels):
        return False
    pairs = np.unique(np.stack([g.idx, h.idx]), axis=1)
    return pairs.shape[1] == len(g.levels)


def constraints(spec: ModelSpec) -> None:
    """Zero-sum constraints of each group term.

    Every term sums to zero over its levels. A term nested in a coarser term (``a:b`` in
    ``a``; ``llm:stereotype`` in ``llm`` and, when each stereotype has one category, in
    ``category:stereotype``) also sums to zero *within each level of that parent*, so parent effects and the mean of
    their children cannot trade off (the nested / interaction analogue of ZeroSumNormal,
    ANOVA-style). Implemented with an orthonormal basis Q of the constrained subspace:
    r = Q @ u, u iid Normal(0, sd) (Q is levels x levels, independent of the data size).
    Terms with more than MAX_PROJECTED_LEVELS levels keep the global zero-sum only.
    """
    for g in spec.groups:
        parents = [h for h in spec.groups if h is not g and nested_in(g, h)]
        L = len(g.levels)
        if not parents or L > MAX_PROJECTED_LEVELS:
            continue
        rows = [np.ones(L)]
        for h in parents:
            pairs = np.unique(np.stack([g.idx, h.idx]), axis=1)  # (child level, parent level)
            A = np.zeros((len(h.levels), L))
            A[pairs[1], pairs[0]] = 1.0
            rows.extend(A[A.sum(axis=1) > 0])
        A = np.vstack(rows)
        u, sv, vt = np.linalg.svd(A, full_matrices=True)
        rank = int(np.sum(sv > 1e-9 * sv.max()))
        Q = vt[rank:].T
        if Q.shape[1] == 0:
            raise SpecError(
                f"term '{g.term.source}' has no levels left to vary once its parent terms "
                f"({', '.join(h.term.source for h in parents)}) are accounted for; drop it"
            )
        g.parents = [h.name for h in parents]
        g.Q = Q



def rows_of(spec: ModelSpec, rows: np.ndarray) -> ModelSpec:
    """A copy of ``spec`` whose design (X, group indices and Z, auxiliary designs) holds only
    ``rows`` (the linear predictors of those observations)."""
    sub = copy.copy(spec)
    sub.y = np.asarray(spec.y)[rows]
    sub.trials = None if spec.trials is None else np.asarray(spec.trials)[rows]
    sub.X = np.asarray(spec.X)[rows]
    sub.weights = None
    sub.groups = []
    for g in spec.groups:
        h = copy.copy(g)
        h.idx, h.Z = g.idx[rows], g.Z[rows]
        sub.groups.append(h)
    sub.aux = {k: AuxSpec(name=a.name, formula=a.formula, X=a.X[rows],
                          fixed_names=a.fixed_names, has_intercept=a.has_intercept,
                          groups=[(nm, lv, idx[rows]) for nm, lv, idx in a.groups],
                          fixed_info=a.fixed_info)
               for k, a in spec.aux.items()}
    return sub



def model_factors(spec) -> tuple[list[str], list[str], list[str], list[str]]:
    """(fixed-effect factors, numeric predictors, grouping factors, varying-slope terms) of a
    fitted :class:`ModelSpec`, read off its design."""
    factors: list[str] = []
    numeric: list[str] = []
    info = spec.fixed_info
    if info is not None:
        for f, fi in info.factor_infos.items():
            for col in term_columns(f.code):
                if col in (spec.formula.response, spec.formula.trials):
                    continue
                target = factors if fi.type == "categorical" else numeric
                if col not in factors and col not in numeric:
                    target.append(col)
    groups = [g.name for g in spec.groups]
    varying = [g.name for g in spec.groups if any(c != "Intercept" for c in g.coefs)]
    return factors, numeric, groups, varying


def has_interaction(spec, factors) -> bool:
    """True if the model estimates the interaction of ``factors`` (an a:b cell is more than the
    sum of a and b): a group term whose grouping covers them all (``(1|llm:stereotype)``), or a
    fixed-effect term whose factors use them all (``a:b``, ``a*b``)."""
    need = set(factors)
    if any(need <= set(g.term.factors) for g in spec.groups):
        return True
    info = spec.fixed_info
    if info is not None:
        for term in info.terms:
            cols = {c for f in term.factors for c in term_columns(f.code)}
            if need <= cols:
                return True
    return False
