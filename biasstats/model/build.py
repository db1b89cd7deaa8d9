"""From (formula, data, family, priors) to a PyMC model.

Two steps, both public so other parts of biasstats (effects, checks, design analysis) can use
them:

:func:`prepare` turns the user's data into a :class:`ModelSpec`: the numeric arrays the model
needs (fixed design matrix from patsy, integer level indices per group term, slope columns),
the priors actually used, and the per-term centring decision. For ``bernoulli`` and
``binomial`` families rows with identical covariates are **collapsed into binomial cells**
(successes k out of n) before sampling: the likelihood is the same up to the constant
sum(log C(n, k)), and the cost follows the number of cells, not rows. The observed variable,
the posterior predictive and the ``log_likelihood`` group are then **per cell** (dimension
``cell``), so LOO computed from a Fit leaves out one *cell* (a covariate pattern), not one
judgement. ``ModelSpec.cells`` maps cells back to covariate values.

For ``beta_binomial`` (a sum of beta-binomials is not beta-binomial, so trials cannot be summed)
rows with the same covariate pattern **and the same (n, k)** are collapsed into one **pattern**
with a count (``ModelSpec.weights``; dimension ``pattern``): the log density of a pattern is its
count times the log density of one of its trials, which is exact. The observed variable, the
posterior predictive and the ``log_likelihood`` group hold *one trial* of each pattern;
:func:`biasstats.checks.compare.loo_patterns` weights the pointwise PSIS-LOO by the counts, which
equals per-trial PSIS-LOO exactly (identical trials have identical leave-one-out densities).
With 16 judgements per trial a covariate cell has at most 17 patterns, whatever its trials.

:func:`build_model` writes the PyMC model:

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
  how informative the data are about the term (see :func:`_centring`), overridable with
  ``centered={"llm": True}``; correlated varying slopes ``(x | g)`` use an LKJ Cholesky factor
  and are always non-centred.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from biasstats.errors import SpecError
from biasstats.model.families import Family, get_family, log_choose
from biasstats.model.formula import (
    GroupTerm,
    ParsedFormula,
    check_columns,
    parse_aux,
    parse_formula,
)
from biasstats.model.priors import POSITIVE, Prior, parse_prior
from biasstats.model.terms import build_design, has_stateful, term_columns

__all__ = ["GroupSpec", "ModelSpec", "prepare", "build_model", "data_hash", "design_frame"]


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
    # tau_hi/se when not (see _centring); None when the family has no working response
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
    aux: dict[str, AuxSpec] = field(default_factory=dict)  # distributional aux formulas
    row_pattern: np.ndarray | None = None  # pattern index of each data row (with weights)

    def row_weights(self) -> np.ndarray:
        """How many data rows each observation/pattern stands for (1 without patterns)."""
        return (np.ones(len(self.y)) if self.weights is None
                else np.asarray(self.weights, dtype=float))

    @property
    def n_linpred(self) -> int:
        if self.family.response == "categorical":
            return len(self.response_levels) - 1
        return 1

    def describe_centring(self) -> dict[str, str]:
        return {g.name: ("centred" if g.centered else "non-centred") + f" ({g.reason})"
                for g in self.groups}


# ----------------------------------------------------------------------------- data utilities
def to_polars(data) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pd.DataFrame):
        return pl.from_pandas(data.reset_index(drop=True))
    raise SpecError(f"data must be a polars or pandas DataFrame, got {type(data).__name__}")


# numeric dtypes that do not reach patsy as numbers through pandas: a Decimal column becomes
# Python objects (which patsy codes as a factor, one coefficient per value), a 128-bit integer
# cannot be converted, a Float16 would be computed in half precision. Cast to Float64 (exact
# for Float16 and for integers below 2**53); other integers and floats pass as they are.
_CAST_FOR_DESIGN = (pl.Float16, pl.Int128, pl.UInt128)


def design_frame(frame: pl.DataFrame, n: int | None = None) -> pd.DataFrame:
    """``frame`` as the pandas frame patsy builds the design from (a frame of ``n`` rows and no
    columns when ``frame`` has none). Every numeric column is numeric there — Decimal,
    8- to 128-bit signed and unsigned integers, Float16/32/64 — so each gives one slope
    column, never a factor; Boolean and text columns are left to patsy as factors."""
    if not frame.width:
        return pd.DataFrame(index=range(frame.height if n is None else n))
    cast = [pl.col(c).cast(pl.Float64) for c, t in frame.schema.items()
            if isinstance(t, pl.Decimal) or t in _CAST_FOR_DESIGN]
    return (frame.with_columns(cast) if cast else frame).to_pandas()


_HASH_FORMAT = b"biasstats data hash 2\0"  # bump when the encoding below changes


def _put(h, data: bytes) -> None:
    """Feed ``data`` to the hash with its length in front: concatenated fields can never be
    read back in two ways (``["p\\x1fq", "r"]`` and ``["p", "q\\x1fr"]`` differ)."""
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _value_bytes(s: pl.Series) -> bytes:
    """The values of one column as bytes that determine them exactly, given the column's dtype
    and missing-value mask (hashed beside them): fixed-width little-endian numbers (integers
    as integers, not as floats that merge 2**53 and 2**53 + 1), length-prefixed text."""
    dtype = s.dtype
    if dtype == pl.Boolean:
        return s.fill_null(False).cast(pl.UInt8).to_numpy().astype("<u1").tobytes()
    if dtype.is_float():
        return s.cast(pl.Float64).fill_null(0.0).to_numpy().astype("<f8").tobytes()
    if dtype in (pl.Int8, pl.Int16, pl.Int32, pl.Int64):
        return s.cast(pl.Int64).fill_null(0).to_numpy().astype("<i8").tobytes()
    if dtype in (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64):
        return s.cast(pl.UInt64).fill_null(0).to_numpy().astype("<u8").tobytes()
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        text = s.cast(pl.String).fill_null("")
        lengths = text.str.len_bytes().cast(pl.UInt64).to_numpy().astype("<u8")
        return lengths.tobytes() + text.str.join("").item().encode()
    # anything else (Decimal, 128-bit integers, dates, lists, ...): Python's exact text of each
    # value (Decimal('1.500') -> "1.500"), each length-prefixed
    parts = [b"" if v is None else str(v).encode() for v in s.to_list()]
    lengths = np.array([len(b) for b in parts], dtype="<u8")
    return lengths.tobytes() + b"".join(parts)


def data_hash(df: pl.DataFrame) -> str:
    """sha256 of an unambiguous encoding of the table: its shape, then per column its name,
    dtype, missing-value mask and values (:func:`_value_bytes`), every field length-prefixed.
    Two tables get the same hash only if they have the same columns, dtypes and values in
    the same order; the encoding does not depend on how polars prints or chunks a column."""
    h = hashlib.sha256(_HASH_FORMAT)
    h.update(df.height.to_bytes(8, "little") + df.width.to_bytes(8, "little"))
    for name in df.columns:
        s = df[name]
        _put(h, name.encode())
        _put(h, str(s.dtype).encode())
        _put(h, np.packbits(s.is_null().to_numpy()).tobytes())
        _put(h, _value_bytes(s))
    return h.hexdigest()


def complete_rows(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The rows of ``df`` with no missing value (null, or NaN in a float column) in
    ``columns``: the rows a fit uses (other columns are kept as they are)."""
    keep = [pl.col(c).is_not_null() for c in columns]
    keep += [pl.col(c).is_not_nan() for c in columns if df[c].dtype.is_float()]
    return df.filter(pl.all_horizontal(keep))


def _constant_column(dm: pd.DataFrame) -> str | None:
    """The first column other than the intercept that is constant in the data, if any."""
    return next((c for c in dm.columns
                 if c != "Intercept" and np.ptp(dm[c].to_numpy(dtype=float)) == 0), None)


def level_labels_of(df: pl.DataFrame, factors: tuple[str, ...]) -> np.ndarray:
    cols = [df[f].cast(pl.Utf8) for f in factors]
    if len(cols) == 1:
        return np.asarray(cols[0].to_list(), dtype=object)
    joined = pl.DataFrame(cols).select(pl.concat_str(list(factors), separator=":"))
    return np.asarray(joined.to_series().to_list(), dtype=object)


def _distinct_labels(df: pl.DataFrame, factors: tuple[str, ...], labels: np.ndarray,
                     where: str) -> None:
    """SpecError unless different combinations of ``factors`` get different labels: the level
    ``a:b`` is the values joined with ':', so ('x:y', 'z') and ('x', 'y:z') would both be
    'x:y:z' and be fitted as one level."""
    if len(factors) < 2:
        return
    combos = df.select(factors).with_columns(pl.Series("__label", labels, dtype=pl.Utf8))
    clash = combos.unique().filter(pl.col("__label").is_duplicated()).sort(factors)
    if clash.height:
        a, b = (tuple(str(v) for v in clash.row(i)[:len(factors)]) for i in (0, 1))
        raise SpecError(f"{where}: levels {a} and {b} of {' x '.join(factors)} would both be "
                        f"named '{clash['__label'][0]}'; a value containing ':' makes an "
                        "interaction's level names ambiguous: rename those values")


# ----------------------------------------------------------------------------- prepare
def prepare(
    formula: str,
    data,
    family: str | Family = "bernoulli",
    priors: dict | None = None,
    centered: dict[str, bool] | None = None,
    collapse: bool | None = None,
    aux: dict[str, str] | None = None,
) -> ModelSpec:
    """Validate and turn (formula, data) into the arrays and priors of a model.

    ``collapse``: None (default) collapses whatever the family allows (binomial cells,
    beta-binomial patterns); False keeps one observation per row.
    ``aux``: distributional formulas of auxiliary parameters, ``{"phi": "~ 1 + (1|llm)"}``
    (log link; intercept, fixed terms and varying intercepts)."""
    fam = family if isinstance(family, Family) else get_family(family)
    pf = parse_formula(formula)
    df = to_polars(data)
    check_columns(pf, df.columns)
    if fam.response == "count_trials" and not pf.trials:
        raise SpecError(f"family 'binomial' needs a response like '{pf.response} | trials(n)'")
    if pf.trials and fam.response != "count_trials":
        raise SpecError(f"response '{pf.response} | trials({pf.trials})' needs family 'binomial'")

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
    dhash = data_hash(df)

    # ---- response
    response_levels = None
    if fam.response in ("ordinal", "categorical"):
        ys = df[pf.response]
        if isinstance(ys.dtype, pl.Enum):
            levels = list(ys.dtype.categories)
        else:
            levels = sorted(ys.unique().to_list())
        if len(levels) < 2:
            raise SpecError(f"response '{pf.response}' has one value only; "
                            f"family '{fam.name}' needs at least 2")
        code = {v: i for i, v in enumerate(levels)}
        df = df.with_columns(pl.Series(pf.response, [code[v] for v in ys.to_list()],
                                       dtype=pl.Int64))
        response_levels = levels
    else:
        if not df[pf.response].dtype.is_numeric() and df[pf.response].dtype != pl.Boolean:
            raise SpecError(f"response '{pf.response}' must be numeric for family '{fam.name}'")
        df = df.with_columns(pl.col(pf.response).cast(pl.Float64))
        yv = df[pf.response].to_numpy()
        fam.check_response(yv, pf.response, df[pf.trials].to_numpy() if pf.trials else None)

    # ---- collapse Bernoulli / binomial rows into cells
    do_collapse = fam.collapse if collapse is None else (collapse and fam.collapse)
    do_patterns = (fam.patterns and collapse is not False and pf.trials is not None)
    covars = [c for c in used if c not in (pf.response, pf.trials)]
    weights = row_pattern = None
    if do_collapse or do_patterns:
        for expr in (pf.fixed, *(g.expr for g in pf.groups)):
            s = has_stateful(expr)
            if s:
                raise SpecError(
                    f"stateful transform '{s}' in formula '{pf.formula}' would be computed "
                    "over collapsed cells; standardise the column before fitting"
                )
    if do_patterns:
        keys = [*covars, pf.response, pf.trials]
        pats = df.group_by(keys, maintain_order=True).agg(pl.len().alias("__w"))
        row_pattern = (df.select(keys).join(pats.select(keys).with_row_index("__p"), on=keys,
                                            how="left", nulls_equal=True,
                                            maintain_order="left")["__p"].to_numpy())
        y = pats[pf.response].to_numpy().astype(np.int64)
        trials = pats[pf.trials].to_numpy().astype(np.int64)
        weights = pats["__w"].to_numpy().astype(np.int64)
        frame = pats.select(covars) if covars else pl.DataFrame({"__row": np.zeros(len(y))})
        cells_out = pats.drop("__w")
    elif do_collapse:
        n_expr = pl.col(pf.trials).sum() if pf.trials else pl.len()
        if covars:
            cells = df.group_by(covars, maintain_order=True).agg(
                pl.col(pf.response).sum().alias("__k"), n_expr.cast(pl.Float64).alias("__n"))
        else:
            cells = df.select(pl.col(pf.response).sum().alias("__k"),
                              n_expr.cast(pl.Float64).alias("__n"))
        y = cells["__k"].to_numpy().astype(np.int64)
        trials = cells["__n"].to_numpy().astype(np.int64)
        frame = cells.drop(["__k", "__n"])
        cells_out = cells.rename({"__k": "k", "__n": "n"})
    else:
        y = df[pf.response].to_numpy()
        if fam.response in ("binary", "count", "count_trials", "ordinal", "categorical"):
            y = y.astype(np.int64)
        trials = (df[pf.trials].to_numpy().astype(np.int64) if pf.trials
                  else (np.ones(len(y), dtype=np.int64) if fam.response == "binary" else None))
        frame = df.select(covars) if covars else pl.DataFrame({"__row": np.zeros(df.height)})
        cells_out = df
    n = len(y)
    pdf = design_frame(frame, n)

    # ---- fixed effects (patsy)
    dm = build_design(pf.fixed, pdf, f"fixed-effects part '{pf.fixed}'")
    names = list(dm.columns)
    has_int = "Intercept" in names and fam.intercept
    keep = [c for c in names if c != "Intercept"]
    X = dm[keep].to_numpy(dtype=float) if keep else np.zeros((n, 0))
    const = _constant_column(dm) if "Intercept" in names else None
    if const is not None:
        raise SpecError(f"fixed-effect column '{const}' is constant in the data; drop it")

    # ---- group terms
    groups: list[GroupSpec] = []
    for t in pf.groups:
        labels = level_labels_of(frame if frame.width else df, t.factors)
        _distinct_labels(frame if frame.width else df, t.factors, labels,
                         f"grouping factor '{t.name}' in term '{t.source}'")
        levels, idx = np.unique(labels.astype(str), return_inverse=True)
        if len(levels) < 2:
            raise SpecError(f"grouping factor '{t.name}' in term '{t.source}' has only one level "
                            f"('{levels[0]}'); a group term needs at least 2")
        zm = build_design(t.expr, pdf, f"varying part '{t.expr}' of term '{t.source}'")
        coefs = list(zm.columns)
        Z = zm.to_numpy(dtype=float)
        const = _constant_column(zm)
        if const is not None:
            raise SpecError(f"slope '{const}' in term '{t.source}' is constant in the data; "
                            f"drop it or use (1 | {t.name})")
        if not coefs:
            raise SpecError(f"term '{t.source}' has no varying coefficient")
        if fam.response == "categorical" and coefs != ["Intercept"]:
            raise SpecError(f"term '{t.source}': family 'categorical' supports varying "
                            "intercepts only")
        groups.append(GroupSpec(term=t, levels=[str(v) for v in levels], idx=idx.astype(np.int64),
                                Z=Z, coefs=coefs, centered=False, reason="",
                                correlated=t.correlated and len(coefs) > 1,
                                z_info=zm.design_info))

    aux_specs = {k: _aux_design(k, apf, pdf, frame if frame.width else df, fam)
                 for k, apf in aux_pf.items()}

    spec = ModelSpec(
        formula=pf, family=fam, y=np.asarray(y), trials=trials, X=X, fixed_names=keep,
        has_intercept=has_int, groups=groups, priors={},
        cells=cells_out, collapsed=do_collapse, n_rows=df.height, n_dropped=n_dropped,
        obs_dim="cell" if do_collapse else ("pattern" if do_patterns else "obs"),
        response_levels=response_levels, data_hash=dhash, fixed_info=dm.design_info,
        weights=weights, row_pattern=row_pattern, aux=aux_specs,
    )
    _constraints(spec)
    spec.priors = _priors(spec, priors or {})
    _centring(spec, centered or {})
    spec.separation = separation(spec)
    return spec


def separation(spec: ModelSpec) -> list[str]:
    """One line per term whose data are (quasi-)completely separated, for the binomial
    families: the likelihood then has no finite maximum along that term, only the prior
    bounds it, and the sampler meets a ridge or funnel that no reparameterisation fixes.

    * the response: every observation in one class, or all but at most 1% (and at most 5) of
      them;
    * a fixed-effect 0/1 column: every row where it is 1 (or every row where it is 0) in one
      class;
    * a continuous fixed-effect column of a 0/1 response: a threshold on it splits the
      classes exactly;
    * a group term: more than half of its levels (and at least 3) with every observation in
      one class (its SD is then set by how far the levels' rates sit from 0 / 1, i.e. by the
      prior)."""
    fam = spec.family
    if fam.response not in ("binary", "count_trials"):
        return []
    w = spec.row_weights()
    k = np.asarray(spec.y, dtype=float) * w
    n = np.asarray(spec.trials, dtype=float) * w
    out = []
    total, hits = n.sum(), k.sum()
    minority = min(hits, total - hits)
    resp = spec.formula.response
    if minority == 0 or (minority <= 5 and minority <= 0.01 * total):
        cls = 1 if hits > total / 2 else 0
        what = "complete" if minority == 0 else "near-complete"
        out.append(f"response '{resp}': {int(total - minority)} of {int(total)} outcomes are "
                   f"{cls} ({what} separation): the intercept is bounded by its prior alone; "
                   f"keep a proper prior such as [model.priors] Intercept = \"Normal(0, 2.5)\" "
                   f"and read its estimate as a bound")
        return out
    one = (k == n) & (n > 0)
    zero = (k == 0) & (n > 0)
    for j, name in enumerate(spec.fixed_names):
        x = spec.X[:, j]
        if np.isin(x, (0.0, 1.0)).all():
            for val in (1.0, 0.0):
                sel = (x == val) & (n > 0)
                if sel.any() and (one[sel].all() or zero[sel].all()):
                    cls = 1 if one[sel].all() else 0
                    out.append(f"fixed effect '{name}': every outcome where it is {val:g} is "
                               f"{cls} (complete separation): b_{name} is set by its prior; "
                               f"use a weakly informative one, e.g. [model.priors] "
                               f"b_{name} = \"Normal(0, 2.5)\"")
                    break
        elif fam.response == "binary" or np.all(spec.trials == 1):
            x1, x0 = x[k > 0], x[k < n]
            if len(x1) and len(x0) and (x1.min() > x0.max() or x1.max() < x0.min()):
                out.append(f"fixed effect '{name}': a threshold on it splits the outcomes exactly "
                           f"(complete separation): b_{name} is set by its prior; use a weakly "
                           f"informative one, e.g. [model.priors] b_{name} = \"Normal(0, 2.5)\"")
    for g in spec.groups:
        L = len(g.levels)
        lk = np.bincount(g.idx, weights=k, minlength=L)
        ln = np.bincount(g.idx, weights=n, minlength=L)
        degenerate = int(np.sum((ln > 0) & ((lk == 0) | (lk == ln))))
        if degenerate >= 3 and degenerate > L / 2:
            key = f"sd_{g.name}" if len(g.coefs) == 1 else f"sd_{g.name}__{g.coefs[0]}"
            out.append(f"term '{g.term.source}': {degenerate} of {L} levels have every outcome "
                       f"in one class (separation): {key} is set by its prior, not the data; "
                       f"use a weakly informative one, e.g. [model.priors] "
                       f"{key} = \"HalfNormal(1)\"")
    return out


def _aux_design(k: str, apf: ParsedFormula, pdf: pd.DataFrame, frame: pl.DataFrame,
                fam: Family) -> AuxSpec:
    dm = build_design(apf.fixed, pdf, f"[model.aux] {k} formula '{apf.fixed}'")
    names = list(dm.columns)
    keep = [c for c in names if c != "Intercept"]
    const = _constant_column(dm) if "Intercept" in names else None
    if const is not None:
        raise SpecError(f"[model.aux] {k}: column '{const}' is constant in the data; drop it")
    groups = []
    for t in apf.groups:
        labels = level_labels_of(frame, t.factors)
        _distinct_labels(frame, t.factors, labels, f"[model.aux] {k}: grouping '{t.name}'")
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


def _nested_in(g: GroupSpec, h: GroupSpec) -> bool:
    """True if every level of ``g`` lies inside one level of the coarser term ``h``.

    Judged from the data, not the syntax: ``llm:stereotype`` is nested in
    ``category:stereotype`` when each stereotype belongs to one category.
    """
    if len(h.levels) >= len(g.levels):
        return False
    pairs = np.unique(np.stack([g.idx, h.idx]), axis=1)
    return pairs.shape[1] == len(g.levels)


def _constraints(spec: ModelSpec) -> None:
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
        parents = [h for h in spec.groups if h is not g and _nested_in(g, h)]
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


# ----------------------------------------------------------------------------- priors
def _scales(spec: ModelSpec) -> tuple[float, float]:
    """(location, scale) of the response on the link scale, for default priors."""
    fam, y = spec.family, spec.y.astype(float)
    if fam.scale == "y":
        return float(np.mean(y)), float(np.std(y)) or 1.0
    if fam.scale == "logy":
        ly = np.log(y)
        return float(np.mean(ly)), float(np.std(ly)) or 1.0
    if fam.link == "log":
        return float(np.log(max(np.mean(y), 1e-3))), 1.0
    return 0.0, 1.0


def _priors(spec: ModelSpec, user: dict) -> dict[str, Prior]:
    loc, s = _scales(spec)
    fam = spec.family
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
    sd_y = float(np.std(spec.y)) or 1.0
    sd_logy = float(np.std(np.log(spec.y))) if fam.scale == "logy" else 1.0
    for k, txt in fam.aux.items():
        out[k] = parse_prior(txt.format(sd_y=round(sd_y, 4), sd_logy=round(sd_logy or 1.0, 4)), k)
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


# ----------------------------------------------------------------------------- centring
def _intraclass(y: np.ndarray, n: np.ndarray, p: float, w: np.ndarray | None = None) -> float:
    """Moment estimate of the intra-group correlation of k-of-n counts (0 … 0.99); ``w``
    counts how many groups each (y, n) stands for.

    Between-group variation from covariates counts as correlation too, so this errs on the
    side of less information (more terms non-centred)."""
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)
    ok = n > 1
    if w[ok].sum() < 2:
        return 0.0
    phat = y[ok] / n[ok]
    s2 = np.sum(w[ok] * n[ok] * (phat - p) ** 2) / (w[ok].sum() - 1)
    nbar = float(np.average(n[ok], weights=w[ok]))
    rho = (s2 / (p * (1 - p)) - 1) / max(nbar - 1, 1e-9)
    return float(np.clip(rho, 0.0, 0.99))


_EXACT_MAX_N = 400
SMALL_CELL_N = 20  # cells up to this many 0/1 outcomes get the exact empirical-logit moments
# (30 put a 3 x 3-level SBC design of 30-outcome cells at centred + 0.9: 15 divergences in
# one of 25 simulations; at 20 outcomes and more the asymptotic information is close enough)


def _empirical_logit_moments(n: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Var and slope of the smoothed empirical logit z = log((k + 0.5) / (n - k + 0.5)) of
    k ~ Binomial(n, p), per element of ``n``: Var(z) and dE[z]/d logit(p) = Cov(z, k).

    For small n the empirical logit is bounded: its variance is well below the asymptotic
    1/(n p (1-p)) and a shift on the logit scale moves E[z] by less than the shift (slope
    < 1). Exact sums for n <= 400, the asymptotic values (1/(n p q), 1) above."""
    from scipy.stats import binom

    var = np.empty(len(n))
    slope = np.ones(len(n))
    big = n > _EXACT_MAX_N
    var[big] = 1.0 / (n[big] * p * (1 - p))
    for nn in np.unique(n[~big]):
        k = np.arange(int(nn) + 1)
        pk = binom.pmf(k, nn, p)
        z = np.log((k + 0.5) / (nn - k + 0.5))
        ez = np.sum(pk * z)
        sel = n == nn
        var[sel] = np.sum(pk * (z - ez) ** 2)
        slope[sel] = np.sum(pk * (z - ez) * (k - nn * p))
    return var, slope


def _working(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """Working response on the link scale and its Fisher information per observation/cell."""
    fam, y = spec.family, spec.y.astype(float)
    if fam.response in ("binary", "count_trials"):
        n = spec.trials.astype(float)
        w = spec.row_weights()
        p = np.clip((w * y).sum() / (w * n).sum(), 0.02, 0.98)
        z = np.log((y + 0.5) / (n - y + 0.5))
        # Information of each cell at its own (smoothed) proportion, the IRLS weight: a cell
        # near 0 or 1 says little on the logit scale. (The pooled p instead overstates it for
        # heterogeneous cells, which understates se and overstates tau.)
        pc = (y + 0.5) / (n + 1.0)
        info = w * n * pc * (1 - pc)
        if fam.beta_ab is not None:  # the n judgements share p; deflate the information
            return z, info / (1 + (n - 1) * _intraclass(y, n, p, w))
        # Small cells (<= SMALL_CELL_N outcomes): the empirical logit rescaled by its exact
        # slope at the pooled p, with its exact information 1/Var. With the asymptotic
        # information at each cell's own proportion, sparse cells (ten 0/1 outcomes per level
        # of an 800-level term) read as having no spread at all: their bounded logits vary
        # less than 1/(n p q) says, the noise was overstated, tau came out 0 ("funnel risk
        # 0") and the term sampled at target_accept 0.9.
        small = n <= SMALL_CELL_N
        if small.any():
            var1, slope = _empirical_logit_moments(n[small], float(p))
            z[small] = z[small] / slope
            info[small] = w[small] * slope ** 2 / var1
        return z, info
    if fam.scale == "y":
        v = np.var(y) or 1.0
        return y, np.full(len(y), 1.0 / v)
    if fam.scale == "logy":
        v = np.var(np.log(y)) or 1.0
        return np.log(y), np.full(len(y), 1.0 / v)
    if fam.link == "log":
        m, v = max(np.mean(y), 1e-3), max(np.var(y), 1e-3)
        return np.log(y + 0.5), np.full(len(y), m * m / v)
    if fam.response == "unit":
        z = np.log(y / (1 - y))
        return z, np.full(len(y), 1.0 / (np.var(z) or 1.0))
    return None  # ordinal / categorical: information rule only


# A term with at least PINNED_DF degrees of freedom whose effects' conditional scale varies
# less than PINNED_SCALE-fold over the 90% range of its SD has no funnel: its funnel risk is
# capped at PINNED_RISK (the default target acceptance). Few-level terms never qualify: their
# chi-square interval for the SD is too unreliable (SBC of the canonical model).
PINNED_DF = 30
PINNED_SCALE = 1.5
PINNED_RISK = 0.5


def _centring(spec: ModelSpec, user: dict[str, bool]) -> None:
    """Choose centred vs non-centred per term.

    Per level l of a term, the data give an estimate of its effect with standard error
    se_l = 1/sqrt(I_l) (I_l = summed Fisher information on the link scale, each cell at its
    own proportion). The between-level sd tau is estimated by moments from the level means of
    a working response: s^2 = weighted var(level means) estimates tau^2 + se^2, with
    df = (free levels) degrees of freedom.

    Each parameterisation has a funnel on one side: a centred term where tau is small next to
    se (the posterior of the effects is squeezed by tau), a non-centred one where tau is large
    next to se (the standardised effects are squeezed by se/tau). How far into its bad side
    each would go is read off the 90% chi-square interval of tau (tau_lo, tau_hi; tau_hi no
    larger than the prior allows): centred risks se/tau_lo, non-centred tau_hi/se; the term
    takes the smaller risk. With many levels the interval is narrow and this is the usual
    shrinkage rule (centred when tau > se, i.e. B = se^2/(se^2+tau^2) < 0.5); with few levels
    (2 variants, 4 categories) tau is barely estimated, tau_lo is 0 unless the levels clearly
    differ, and the term is non-centred: its funnel is bounded by the prior on tau, the
    centred one reaches down to tau = 0.
    Families without a working response (ordinal, categorical) use tau = prior scale of sd
    and the shrinkage rule.
    ``user`` maps a grouping name (``llm``, ``category:stereotype``) to a forced choice.
    """
    names = {g.name for g in spec.groups}
    for k in user:
        if k not in names:
            raise SpecError(f"centered: unknown grouping '{k}'; groupings are "
                            f"{', '.join(sorted(names)) or '(none)'}")
    from scipy.stats import chi2

    w = _working(spec)
    stats = []
    for g in spec.groups:
        L = len(g.levels)
        if w is not None:
            z, info = w
        else:
            z, info = np.zeros(len(spec.y)), np.full(len(spec.y), 0.2)
        info_l = np.bincount(g.idx, weights=info, minlength=L)
        se2 = 1.0 / np.maximum(info_l, 1e-12)
        key = f"sd_{g.name}" if len(g.coefs) == 1 else f"sd_{g.name}__{g.coefs[0]}"
        prior_scale = spec.priors[key].scale()
        if w is not None:
            m = np.bincount(g.idx, weights=info * z, minlength=L) / np.maximum(info_l, 1e-12)
            wts = info_l / info_l.sum()
            grand = np.sum(wts * m)
            s2 = float(np.sum(wts * (m - grand) ** 2) * L / max(L - 1, 1))
            tau2 = max(s2 - np.mean(se2), 0.0)
        else:
            s2, tau2 = None, prior_scale ** 2
        stats.append((info_l, se2, tau2, s2, prior_scale))
    for gi, g in enumerate(spec.groups):
        info_l, se2, tau2, s2, prior_scale = stats[gi]
        # A term with a finer term inside it (a within a:b, llm within llm:stereotype) is only
        # identified up to the mean of its children: add their spread tau_child^2 / m_l.
        for hi, h in enumerate(spec.groups):
            if hi != gi and h.Q is None and _nested_in(h, g):
                pairs = np.unique(np.stack([g.idx, h.idx]), axis=1)
                m_l = np.bincount(pairs[0], minlength=len(g.levels))
                se2 = se2 + stats[hi][2] / np.maximum(m_l, 1)
        tau2 = max(tau2 - float(np.mean(se2 - stats[gi][1])), 0.0)
        med_se2 = float(np.median(se2))
        B = med_se2 / (med_se2 + tau2) if (med_se2 + tau2) > 0 else 1.0
        reason = f"shrinkage B={B:.2f}, median info/level={float(np.median(info_l)):.3g}"
        risk_c = risk_nc = None
        if s2 is None:
            auto = B < 0.5
        else:
            df = max(1, g.Q.shape[1] if g.Q is not None else len(g.levels) - 1)
            noise = float(np.mean(se2))
            tau_lo = math.sqrt(max(s2 * df / chi2.ppf(0.95, df) - noise, 0.0))
            tau_hi = math.sqrt(max(s2 * df / chi2.ppf(0.05, df) - noise, 0.0))
            tau_hi = min(tau_hi, 2.6 * prior_scale)  # the prior's ~99% point (half-normal)
            se = math.sqrt(med_se2)
            risk_c = se / max(tau_lo, 1e-6 * se)
            risk_nc = tau_hi / se
            auto = risk_c < risk_nc
            reason += (f", tau/se 90% range {tau_lo / se:.2g}-{tau_hi / se:.2g} "
                       f"({df} df)")
        auto = auto and not g.correlated
        if g.name in user:
            forced = bool(user[g.name])
            if forced and g.correlated:
                raise SpecError(f"centered: term '{g.term.source}' has correlated varying slopes, "
                                "which are always non-centred; use '||' to centre them")
            g.centered, g.reason = forced, "set by user"
        else:
            g.centered = auto
            g.reason = reason + ("; correlated slopes" if g.correlated else "")
        if risk_c is not None:
            g.funnel_risk = risk_c if g.centered else risk_nc
            if df >= PINNED_DF and g.funnel_risk > PINNED_RISK:
                # A funnel is the effects' scale changing with tau across the posterior. With
                # many levels tau is pinned: if the effects' conditional scale (centred:
                # (1/se^2 + 1/tau^2)^-1/2; non-centred: that over tau) changes less than
                # PINNED_SCALE-fold over tau's 90% range, the geometry is near Gaussian
                # whatever se/tau is (e.g. 800 levels with tau ~ se).
                se_ = se if se > 0 else 1.0
                scale = [1.0 / math.sqrt(1.0 / se_ ** 2 + 1.0 / max(t, 1e-12) ** 2)
                         for t in (tau_lo, tau_hi)]
                if not g.centered:
                    scale = [c / max(t, 1e-12) for c, t in zip(scale, (tau_lo, tau_hi),
                                                                strict=True)]
                ratio = max(scale) / max(min(scale), 1e-300)
                if ratio < PINNED_SCALE:
                    g.funnel_risk = PINNED_RISK
                    g.reason += (f"; SD pinned by {df} df (effects' scale varies "
                                 f"{ratio:.2f}-fold over its range): no funnel")


# ----------------------------------------------------------------------------- model
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


# Beta-binomial patterns with at most this many trials per observation use the sufficient-
# statistic likelihood (:func:`count_stats`); cost ~ covariate cells x 3 x max n logs.
COUNT_STATS_MAX_N = 64


@dataclass(frozen=True)
class CountStats:
    """Sufficient statistics of a pattern-weighted beta-binomial model per covariate cell.

    With a = mu phi and b = (1 - mu) phi, one trial's log density is

        log C(n, k) + sum_{j<k} log(a + j) + sum_{j<n-k} log(b + j) - sum_{j<n} log(phi + j)

    (the ratio of Beta functions written as rising factorials), so the total over every trial of
    a cell (one a, b per cell) is ``sum_j A[c, j] log(a_c + j) + B[c, j] log(b_c + j) - T[c, j]
    log(phi_c + j)``, with A[c, j] = trials of c with k > j, B[c, j] = trials with n - k > j,
    T[c, j] = trials with n > j. Exact; no log-gamma or digamma in the sampler's gradient and one
    linear predictor per covariate cell instead of one per pattern."""

    rows: np.ndarray       # (C,) a representative pattern of each covariate cell
    cell: np.ndarray       # (P,) covariate cell of each pattern
    A: np.ndarray          # (C, J) trial counts, J = max n
    B: np.ndarray
    T: np.ndarray
    const: float           # sum over trials of log C(n, k)


def count_stats(spec: ModelSpec) -> CountStats | None:
    """:class:`CountStats` of a beta-binomial pattern model (None for any other model, or when
    some observation has more than :data:`COUNT_STATS_MAX_N` trials)."""
    if spec.family.beta_ab is None or spec.weights is None or spec.trials is None:
        return None
    n = np.asarray(spec.trials, dtype=np.int64)
    k = np.asarray(spec.y, dtype=np.int64)
    w = np.asarray(spec.weights, dtype=float)
    J = int(n.max()) if len(n) else 0
    if J < 1 or J > COUNT_STATS_MAX_N:
        return None
    pf = spec.formula
    covars = [c for c in spec.cells.columns if c not in (pf.response, pf.trials)]
    if covars:
        frame = spec.cells.select(covars)
        uniq = frame.unique(maintain_order=True).with_row_index("__c")
        cell = frame.join(uniq, on=covars, how="left", nulls_equal=True,
                          maintain_order="left")["__c"].to_numpy().astype(np.int64)
    else:
        cell = np.zeros(len(n), dtype=np.int64)
    n_cells = int(cell.max()) + 1
    _, rows = np.unique(cell, return_index=True)
    j = np.arange(J)
    A, B, T = (np.zeros((n_cells, J)) for _ in range(3))
    np.add.at(A, cell, (k[:, None] > j) * w[:, None])
    np.add.at(B, cell, ((n - k)[:, None] > j) * w[:, None])
    np.add.at(T, cell, (n[:, None] > j) * w[:, None])
    const = float(np.sum(w * log_choose(n, k)))
    return CountStats(rows=rows.astype(np.int64), cell=cell, A=A, B=B, T=T, const=const)


def rows_of(spec: ModelSpec, rows: np.ndarray) -> ModelSpec:
    """A copy of ``spec`` whose design (X, group indices and Z, auxiliary designs) holds only
    ``rows`` (the linear predictors of those observations)."""
    import copy

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
    import pymc as pm
    import pytensor.tensor as pt

    fam = spec.family
    K = spec.n_linpred
    cat_dim = f"{spec.formula.response}__cat"
    coords: dict[str, Any] = {spec.obs_dim: np.arange(len(full.y))}
    lead: tuple[str, ...] = ()
    if K > 1:
        coords[cat_dim] = [str(v) for v in spec.response_levels[1:]]
        lead = (cat_dim,)
    if spec.fixed_names:
        coords["coef"] = spec.fixed_names
    for g in spec.groups:
        coords[g.name] = g.levels
        if len(g.coefs) > 1:
            coords[g.coef_dim] = g.coefs
            if g.correlated:
                coords[g.coef_dim + "_"] = g.coefs

    with pm.Model(coords=coords) as model:
        eta = 0.0
        if spec.has_intercept:
            icpt = spec.priors["Intercept"].create("Intercept", dims=lead or None)
            eta = icpt
        if spec.fixed_names:
            bp = _vector_prior([spec.priors[f"b_{c}"] for c in spec.fixed_names], "b")
            if K > 1:
                bp = Prior(bp.dist, {k: np.broadcast_to(v, (K, len(spec.fixed_names)))
                                     for k, v in bp.params.items()})
            b = bp.create("b", dims=lead + ("coef",))
            X = pt.as_tensor_variable(spec.X)
            eta = eta + (pt.dot(X, b.T) if K > 1 else pt.dot(X, b))
        for g in spec.groups:
            eta = eta + _group_effect(pm, pt, spec, g, lead, K)

        aux = {}
        for k in fam.aux:
            if k in fam.vector_aux:
                nthr = len(spec.response_levels) - 1
                model.add_coord("threshold", list(range(nthr)))
                p = spec.priors[k]
                if p.dist == "Normal":  # centred on the equal-probability cut-points
                    base = np.log(np.arange(1, nthr + 1) / (nthr + 1 - np.arange(1, nthr + 1)))
                    p = Prior("Normal", {**p.params, "mu": p.params["mu"] + base})
                aux[k] = p.create(k, dims="threshold",
                                  transform=pm.distributions.transforms.ordered)
            elif k in spec.aux:
                aux[k] = _aux_effect(pm, pt, model, spec, spec.aux[k])
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
            return model
        extra = {"trials": spec.trials}
        obs = fam.likelihood(spec.formula.response, eta, aux, spec.y, extra, spec.obs_dim)
        if spec.weights is not None and np.any(spec.weights > 1):
            # a pattern of c identical trials: the observed term counts one trial, this adds
            # the other c - 1 (exact); log_likelihood and predictions stay per trial
            extra_w = pt.as_tensor_variable(spec.weights.astype(float) - 1.0)
            pm.Potential("pattern_counts", pt.sum(extra_w * pm.logp(obs, spec.y)))
    return model


def _aux_effect(pm, pt, model, spec: ModelSpec, a: AuxSpec):
    """exp(linear predictor) of a distributional auxiliary parameter, one per observation."""
    k = a.name
    eta = pt.zeros(len(spec.y))
    if a.has_intercept:
        eta = eta + spec.priors[f"{k}_Intercept"].create(f"{k}_Intercept")
    if a.fixed_names:
        cdim = f"{k}_coef"
        model.add_coord(cdim, a.fixed_names)
        bp = _vector_prior([spec.priors[f"b_{k}_{c}"] for c in a.fixed_names], f"b_{k}")
        eta = eta + pt.dot(pt.as_tensor_variable(a.X), bp.create(f"{k}_b", dims=cdim))
    for name, levels, idx in a.groups:
        dim = f"{k}_{name}"
        model.add_coord(dim, levels)
        sd = spec.priors[f"sd_{k}_{name}"].create(f"sd_{k}_{name}")
        z = pm.ZeroSumNormal(f"z_{k}_{name}", sigma=1.0, dims=dim)
        r = pm.Deterministic(f"r_{k}_{name}", sd * z, dims=dim)
        eta = eta + r[idx]
    return pt.exp(eta)


def _zero_sum(pm, pt, model, g: GroupSpec, raw_name: str, sigma, dims: tuple[str, ...]):
    """A zero-sum vector over the levels (last axis) of ``g``; returns the tensor.

    Without parent terms: ``pm.ZeroSumNormal``. With parents: ``u ~ Normal(0, sigma)`` on the
    constrained basis and ``Q @ u`` (see :func:`_constraints`).
    """
    if g.Q is None:
        return pm.ZeroSumNormal(raw_name, sigma=sigma, dims=dims)
    bdim = f"{g.name}__basis"
    if bdim not in model.coords:
        model.add_coord(bdim, list(range(g.Q.shape[1])))
    u = pm.Normal(raw_name, mu=0.0, sigma=sigma, dims=dims[:-1] + (bdim,))
    return pt.dot(u, pt.as_tensor_variable(g.Q.T))


def _group_effect(pm, pt, spec: ModelSpec, g: GroupSpec, lead: tuple[str, ...], K: int):
    model = pm.modelcontext(None)
    name = g.name
    k = len(g.coefs)
    idx = g.idx
    if k == 1:
        sd = spec.priors[f"sd_{name}"].create(f"sd_{name}", dims=lead or None)
        sdb = sd[:, None] if K > 1 else sd
        dims = lead + (name,)
        if g.centered:
            if g.Q is None:
                r = pm.ZeroSumNormal(f"r_{name}", sigma=sdb, dims=dims)
            else:
                r = pm.Deterministic(f"r_{name}", _zero_sum(pm, pt, model, g, f"u_{name}", sdb,
                                                            dims), dims=dims)
        else:
            z = _zero_sum(pm, pt, model, g, f"z_{name}", 1.0, dims)
            r = pm.Deterministic(f"r_{name}", sdb * z, dims=dims)
        if K > 1:
            return r[:, idx].T
        col = g.Z[:, 0]
        return r[idx] if np.all(col == 1.0) else r[idx] * col
    sdp = _vector_prior([spec.priors[f"sd_{name}__{c}"] for c in g.coefs], f"sd_{name}")
    dims = (g.coef_dim, name)
    if g.correlated:
        eta_lkj = spec.priors[f"cor_{name}"].params["eta"]
        chol, corr, stds = pm.LKJCholeskyCov(
            f"chol_{name}", n=k, eta=eta_lkj, sd_dist=sdp.dist_(shape=k), compute_corr=True,
            store_in_trace=False,
        )
        pm.Deterministic(f"sd_{name}", stds, dims=g.coef_dim)
        pm.Deterministic(f"cor_{name}", corr, dims=(g.coef_dim, g.coef_dim + "_"))
        z = _zero_sum(pm, pt, model, g, f"z_{name}", 1.0, dims)
        r = pm.Deterministic(f"r_{name}", pt.dot(chol, z), dims=dims)
    else:
        sd = sdp.create(f"sd_{name}", dims=g.coef_dim)
        if g.centered:
            if g.Q is None:
                r = pm.ZeroSumNormal(f"r_{name}", sigma=sd[:, None], dims=dims)
            else:
                r = pm.Deterministic(f"r_{name}", _zero_sum(pm, pt, model, g, f"u_{name}",
                                                            sd[:, None], dims), dims=dims)
        else:
            z = _zero_sum(pm, pt, model, g, f"z_{name}", 1.0, dims)
            r = pm.Deterministic(f"r_{name}", sd[:, None] * z, dims=dims)
    Z = pt.as_tensor_variable(g.Z)
    return (r[:, idx].T * Z).sum(axis=1)


def log_binomial_constant(spec: ModelSpec) -> float:
    """sum log C(n, k) over cells: the constant separating the collapsed and row likelihoods."""
    return float(np.sum(log_choose(spec.trials, spec.y)))


def model_factors(spec) -> tuple[list[str], list[str], list[str], list[str]]:
    """(fixed-effect factors, numeric predictors, grouping factors, varying-slope terms) of a
    fitted :class:`~biasstats.model.build.ModelSpec`, read off its design."""
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
