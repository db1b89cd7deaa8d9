"""Derived estimands (``[effects.derived.<name>]``): an expression of the model's expected
outcome, evaluated draw by draw in each stratum of ``within``.

Every ``P('cat', f='level')`` / ``E(f='level')`` of the expression (parsed by
:func:`biasstats.spec.derived.parse_expr`, never run as code) is a marginal mean: the
posterior expected response averaged over the observed rows of the stratum (and of that level
of ``f``, when given), each row or binomial cell weighted by the observations it stands for —
the same average as the marginal means of :mod:`biasstats.effects.estimands`. The arithmetic
then runs on the (draws x strata) arrays, so every number is a function of the posterior
draws, summarised like any estimand (:func:`biasstats.effects.summaries.summarise`: mean, HDI,
P(> null), ROPE verdict). ``min`` / ``max`` skip a value that is not defined in a stratum (a
level of ``f`` not observed there); any other undefined value leaves the stratum out, with a
note.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from biasstats.effects.summaries import summarise
from biasstats.errors import SpecError
from biasstats.inference.predict import category_names, level_labels
from biasstats.registry.scores import score
from biasstats.spec.derived import (
    Bin,
    DerivedSpec,
    Expect,
    Fn,
    Neg,
    Num,
    Prob,
    check_derived_model,
    check_derived_table,
    derived_expression,
)

__all__ = ["DERIVED_SCALE", "as_derived", "check_derived_request", "derived_rows"]

DERIVED_SCALE = "derived"  # the scale column of a derived estimand's rows


def as_derived(items) -> tuple[tuple[str, DerivedSpec], ...]:
    """``{name: DerivedSpec or a dict of its keys}`` (the Python API, or ``[effects]``) as
    (name, DerivedSpec) pairs in declared order, each checked on its own."""
    out = []
    for name, d in dict(items or {}).items():
        d = d if isinstance(d, DerivedSpec) else DerivedSpec.model_validate(d)
        check_derived_table(str(name), d)
        out.append((str(name), d))
    return tuple(out)


def _levels_of(cells: pl.DataFrame):
    def levels(f: str) -> list[str]:
        if f not in cells.columns:
            return []
        _, labels = level_labels(cells, (f,))
        return sorted(set(map(str, labels)))
    return levels


def _columns(spec) -> list[str]:
    out = (spec.formula.response, spec.formula.trials)
    return [c for c in spec.formula.columns() if c not in out and c in spec.cells.columns]


def check_derived_request(derived, spec, key: str = "[effects]") -> None:
    """Before sampling (the design built): every derived table against the model's factors,
    its outcome's categories and the levels in the data. One-line SpecError."""
    cats = category_names(spec) if spec.family.has_categories else None
    prefix = key.removesuffix("[effects]")  # "<spec path>: ", before the table's own name
    for name, d in derived:
        try:
            check_derived_model(name, d, _columns(spec), spec.family, cats,
                                levels=_levels_of(spec.cells))
        except SpecError as e:
            raise SpecError(f"{prefix}{e}") from None


class _Evaluator:
    """Evaluates a tree on (S, strata) arrays: ``mu`` (S, cells, C) expected responses,
    ``w`` (cells,) weights, ``strata`` (cells,) labels, ``cells`` the covariates."""

    def __init__(self, mu, w, cells, strata, names, cats, values):
        self.mu, self.w, self.cells, self.cats, self.values = mu, w, cells, cats, values
        self.member = (np.asarray(strata).astype(str)[:, None] == np.asarray(names)[None, :])

    def average(self, y: np.ndarray, at) -> np.ndarray:
        """(S, strata): the weighted average of ``y`` (S, cells) over each stratum's cells at
        the levels ``at``; NaN where a stratum has none."""
        keep = np.ones(len(self.w), bool)
        for f, lv in at:
            _, labels = level_labels(self.cells, (f,))
            keep &= np.asarray(labels).astype(str) == lv
        W = self.member * (self.w * keep)[:, None]
        n = W.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (y @ W) / n
        out[:, n == 0] = np.nan
        return out

    def __call__(self, node):
        if isinstance(node, Num):
            return np.float64(node.value)
        if isinstance(node, Neg):
            return -self(node.arg)
        if isinstance(node, Prob):
            k = 0 if node.category is None else self.cats.index(node.category)
            return self.average(self.mu[:, :, k], node.at)
        if isinstance(node, Expect):
            y = self.mu[:, :, 0] if self.values is None else self.mu @ self.values
            return self.average(y, node.at)
        if isinstance(node, Bin):
            a, b = self(node.left), self(node.right)
            with np.errstate(all="ignore"):
                return {"+": np.add, "-": np.subtract, "*": np.multiply,
                        "/": np.divide}[node.op](a, b)
        if isinstance(node, Fn):
            args = [self(a) for a in node.args]
            with np.errstate(all="ignore"):
                if node.name in ("min", "max"):
                    red = np.fmin if node.name == "min" else np.fmax
                    return red.reduce(np.broadcast_arrays(*args)) if len(args) > 1 else args[0]
                return {"log": np.log, "exp": np.exp, "abs": np.abs}[node.name](args[0])
        raise TypeError(f"not a derived-expression node: {node!r}")  # pragma: no cover


def _rope(d: DerivedSpec, null: float):
    if d.rope is None:
        return None
    if isinstance(d.rope, list):
        return (float(d.rope[0]), float(d.rope[1]))
    return (null - float(d.rope), null + float(d.rope))


def derived_rows(derived, spec, mu, w, cells, cats, values, prob: float, draws,
                 notes: list[str]) -> list[dict]:
    """Summary rows of every derived estimand (term = its name, level = the stratum), and
    its draws kept in ``draws`` (a :class:`biasstats.effects.draws.DrawStore`) under
    ``"derived:<name>"`` = (strata, (S, strata))."""
    rows: list[dict] = []
    levels = _levels_of(cells)
    S = mu.shape[0]
    for name, d in derived:
        tree = check_derived_model(name, d, _columns(spec), spec.family, cats, levels=levels)
        within = tuple(f.strip() for f in d.within.split(":")) if d.within else ()
        _, strata = level_labels(cells, within)
        names = sorted(set(map(str, strata)))
        ev = _Evaluator(mu, w, cells, strata, names, cats, values)
        val = np.broadcast_to(np.asarray(ev(tree), dtype=float), (S, len(names)))
        ok = np.isfinite(val).all(axis=0)
        if not ok.all():
            bad = [s for s, good in zip(names, ok, strict=True) if not good]
            notes.append(f"derived {name}: not defined in {', '.join(bad[:6])}"
                         f"{' …' if len(bad) > 6 else ''} (a level it names is not observed "
                         "there, or a division by zero or log of a non-positive value)")
        if not ok.any():
            continue
        s = score(d.score) if d.score else None
        null = d.null if d.null is not None else (s.null if s else 0.0)
        label = d.label or (s.label if s else name)
        unit = d.unit if d.unit is not None else (s.unit if s else None)
        kept = [n for n, good in zip(names, ok, strict=True) if good]
        n_obs = ev.member.T @ w
        text = derived_expression(name, d, levels(d.over) if d.over else None)
        for j, r in zip(np.flatnonzero(ok), summarise(val[:, ok], prob=prob, null=null,
                                                        rope=_rope(d, null)), strict=True):
            rows.append({"term": name, "level": names[j], "scale": DERIVED_SCALE, "label": label,
                         **r, "null": float(null), "unit": unit, "n_obs": float(n_obs[j]),
                         "within": d.within or "", "expr": text})
        draws.put(f"derived:{name}", kept, np.ascontiguousarray(val[:, ok]),
                  estimand="derived", term=name, scale=DERIVED_SCALE, unit=unit or "")
    return rows

