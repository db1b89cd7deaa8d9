"""The design diagnosis: what in the data will make a model hard to sample, found before
anything is sampled, one line per problem naming the cells and the remedy.

:func:`diagnose` runs in :func:`biasstats.model.build.prepare` after the separation notes
(:mod:`biasstats.model.separation`, whose lines it leads with) and finds:

* a per-cell scale (a ``[model.aux]`` formula of a scale parameter) over cells whose
  responses are all equal: that cell's scale runs towards 0 and only its prior stops it;
* group levels or fixed-factor levels with every response in one category: an ordinal
  outcome at its lowest or highest category, any category of a categorical one, or one class
  of a 0/1 outcome (a term the separation notes do not already name);
* group levels with one observation, where the family has its own observation-level scale;
* group terms whose SD the data cannot inform: two levels only (one difference), or levels
  that coincide with another term's (the two SDs split one variance).

None of these makes the model improper (every prior is proper): the run continues, with the
lines shown before sampling and kept in ``ModelSpec.diagnosis``.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from biasstats.model.design import GroupSpec, ModelSpec, model_factors

__all__ = ["diagnose", "MAX_NAMED"]

MAX_NAMED = 4  # cells named in one line; the rest are counted


def _named(labels: list[str]) -> str:
    shown = ", ".join(f"'{v}'" for v in labels[:MAX_NAMED])
    more = len(labels) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _have(n: int) -> str:
    return "has" if n == 1 else "have"


def _sd_key(g: GroupSpec) -> str:
    return f"sd_{g.name}" if len(g.coefs) == 1 else f"sd_{g.name}__{g.coefs[0]}"


def _obs_per_level(spec: ModelSpec, idx: np.ndarray, L: int) -> np.ndarray:
    """Observations (data rows) per level: a collapsed 0/1 cell counts its trials."""
    w = spec.row_weights()
    if spec.collapsed and spec.family.single_outcome and spec.trials is not None:
        w = w * np.asarray(spec.trials, dtype=float)
    return np.bincount(idx, weights=w, minlength=L)


def _one_category(spec: ModelSpec, idx: np.ndarray, L: int) -> tuple[list[int], str]:
    """Levels whose every response sits in one category that leaves their effect bounded by
    the prior alone, and the words for it."""
    fam = spec.family
    y = np.asarray(spec.y)
    if fam.has_categories:
        K = len(spec.response_levels or [])
        out = []
        for lvl in range(L):
            vals = np.unique(y[idx == lvl])
            if len(vals) != 1:
                continue
            if fam.multinomial or int(vals[0]) in (0, K - 1):
                out.append(lvl)
        what = ("every response in one category" if fam.multinomial
                else "every rating in the lowest or highest category")
        return out, what
    if fam.binary_outcomes:
        w = spec.row_weights()
        k = np.bincount(idx, weights=np.asarray(spec.y, dtype=float) * w, minlength=L)
        n = np.bincount(idx, weights=np.asarray(spec.trials, dtype=float) * w, minlength=L)
        return [i for i in range(L) if n[i] > 0 and (k[i] == 0 or k[i] == n[i])], \
            "every outcome in one class"
    return [], ""


def _rhs(formula: str) -> str:
    f = formula.strip()
    return f if f.startswith("~") else f"~ {f}"


def _per_cell_scale(spec: ModelSpec) -> list[str]:
    fam = spec.family
    if fam.has_categories or fam.binary_outcomes or not spec.aux:
        return []
    y = np.asarray(spec.y, dtype=float)
    out = []
    for name, aux in spec.aux.items():
        for gname, levels, idx in aux.groups:
            L = len(levels)
            n = np.bincount(idx, minlength=L)
            lo = np.full(L, np.inf)
            hi = np.full(L, -np.inf)
            np.minimum.at(lo, idx, y)
            np.maximum.at(hi, idx, y)
            flat = [levels[i] for i in range(L) if n[i] >= 2 and lo[i] == hi[i]]
            if flat:
                out.append(
                    f"[model.aux] {name} = \"{_rhs(aux.formula)}\": {len(flat)} of {L} "
                    f"'{gname}' cells {_have(len(flat))} zero variance in '{spec.formula.response}' "
                    f"({_named(flat)}): their {name} runs towards 0, bounded by its prior "
                    f"alone; pool the scale (drop (1|{gname}) from {name}'s formula) or give "
                    f"sd_{name}_{gname} a tighter prior, e.g. \"HalfNormal(0.5)\"")
        cols = [c for c in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", aux.formula)
                if c in spec.cells.columns]
        if aux.X.shape[1] and cols:
            keys = spec.cells.select(cols).with_columns(y=y)
            stats = keys.group_by(cols, maintain_order=True).agg(
                n=pl.len(), lo=pl.col("y").min(), hi=pl.col("y").max())
            flat = stats.filter((stats["n"] >= 2) & (stats["lo"] == stats["hi"]))
            if flat.height:
                labels = [":".join(str(v) for v in r) for r in flat.select(cols).iter_rows()]
                out.append(
                    f"[model.aux] {name} = \"{_rhs(aux.formula)}\": {flat.height} of "
                    f"{stats.height} cells {_have(flat.height)} zero variance in '{spec.formula.response}' "
                    f"({_named(labels)}): their {name} runs towards 0, bounded by its prior "
                    f"alone; pool the scale (a coarser {name} formula) or give its "
                    f"coefficients a tighter prior")
    return out


def _levels(spec: ModelSpec, g: GroupSpec, named: set[str]) -> list[str]:
    L = len(g.levels)
    out = []
    if g.name not in named:
        bad, what = _one_category(spec, g.idx, L)
        if bad:
            out.append(
                f"term '{g.term.source}': {len(bad)} of {L} levels {_have(len(bad))} {what} "
                f"({_named([g.levels[i] for i in bad])}): their effects are bounded by the "
                f"prior on {_sd_key(g)} alone (separation); keep a proper prior such as "
                f"{_sd_key(g)} = \"HalfNormal(1)\", or pool or drop those levels")
    fam = spec.family
    if fam.aux and not fam.has_categories and not fam.binary_outcomes:
        n = _obs_per_level(spec, g.idx, L)
        ones = [g.levels[i] for i in range(L) if n[i] == 1]
        if len(ones) == L:
            out.append(
                f"term '{g.term.source}': every one of its {L} levels has one observation: "
                f"{_sd_key(g)} and the residual scale split one variance the data cannot "
                f"tell apart; drop the term")
        elif ones:
            out.append(
                f"term '{g.term.source}': {len(ones)} of {L} levels {_have(len(ones))} one observation "
                f"({_named(ones)}): their effects cannot be told from the residual; pool "
                f"them with other levels or drop them")
    if L == 2:
        out.append(
            f"term '{g.term.source}' has 2 levels: the data inform {_sd_key(g)} by one "
            f"difference, its estimate is mostly the prior's; give it a tighter prior "
            f"(e.g. {_sd_key(g)} = \"HalfNormal(0.5)\") or make '{g.name}' a fixed effect")
    return out


def _aliased(spec: ModelSpec) -> list[str]:
    out = []
    gs = spec.groups
    for i, a in enumerate(gs):
        for b in gs[i + 1:]:
            if len(a.levels) != len(b.levels):
                continue
            pairs = np.unique(np.stack([a.idx, b.idx]), axis=1)
            if pairs.shape[1] == len(a.levels):
                out.append(
                    f"terms '{a.term.source}' and '{b.term.source}' have the same "
                    f"{len(a.levels)} levels (each level of one is one level of the other): "
                    f"{_sd_key(a)} and {_sd_key(b)} split one variance the data cannot tell "
                    f"apart; drop one of them")
    return out


def _fixed(spec: ModelSpec, named: set[str]) -> list[str]:
    """Levels of a fixed-effect factor with every response in one category (an ordinal or
    categorical outcome; the separation notes cover the 0/1 ones)."""
    if not spec.family.has_categories:
        return []
    out = []
    for f in model_factors(spec)[0]:
        if f in named or f not in spec.cells.columns:
            continue
        levels, idx = np.unique(np.asarray(spec.cells[f].cast(pl.Utf8).to_list(), dtype=str),
                                return_inverse=True)
        bad, what = _one_category(spec, idx.astype(np.int64), len(levels))
        if bad:
            out.append(
                f"fixed factor '{f}': {len(bad)} of {len(levels)} levels {_have(len(bad))} "
                f"{what} ({_named([str(levels[i]) for i in bad])}; separation): their "
                f"coefficients are bounded by their priors alone; use weakly informative ones, "
                f"e.g. [model.priors] b = \"Normal(0, 2.5)\", or pool those levels")
    return out


def diagnose(spec: ModelSpec) -> list[str]:
    """The design diagnosis of ``spec`` (see the module docstring): the separation notes,
    then one line per further problem."""
    sep = list(spec.separation)
    named = {g.name for g in spec.groups if any(f"'{g.term.source}'" in s for s in sep)}
    named |= {f for f in model_factors(spec)[0] if any(f"'{f}" in s for s in sep)}
    out = [*sep, *_per_cell_scale(spec)]
    for g in spec.groups:
        out += _levels(spec, g, named)
    out += _aliased(spec)
    out += _fixed(spec, named)
    return out
