"""Design sizes: what ``--vary`` may change, and the rows of a design of a given size.

A design is read off the rows the analysis' model sees. Its **cells** are the distinct
combinations of every column the model uses but the response (the covariates, the grouping
factors and a ``trials(n)`` column), each with the number of rows it holds (its replicates).

* ``--vary <factor>=n1,n2,...`` sets the number of levels of a grouping factor of the formula
  (a column that groups a term ``(... | factor)``, alone or with others). The new design's
  level j (of n) is a copy of the cells of the original level j mod L (of L, in order of
  appearance), relabelled ``<factor>001``, ...: what each level is crossed with, nested in or
  replicated by is kept. A plural (``prompts``) names the factor (``prompt``) when no
  column has the plural's name.
* ``--vary trials=n1,...`` sets the rows per design cell (replicates); without it each cell
  keeps the rows it had.
* A fixed factor (a column of the fixed part, of a varying slope or of an auxiliary formula)
  cannot be varied: its levels are the design.

Several ``--vary`` options give the grid of all their combinations.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import polars as pl

from biasstats.errors import SpecError
from biasstats.model.terms import term_columns

__all__ = ["TRIALS", "MAX_DESIGN_ROWS", "Vary", "parse_vary", "resolve_factors", "grid",
           "design_rows", "label", "size_text"]

TRIALS = "trials"  # the size of replicate rows per design cell
MAX_DESIGN_ROWS = 2_000_000  # rows of one simulated design (each simulation holds them)


@dataclass(frozen=True)
class Vary:
    """One ``--vary`` option: a factor (a column, or ``trials``) and its sizes."""

    factor: str
    sizes: tuple[int, ...]
    given: str = ""  # as the user wrote it, for messages


def parse_vary(items: list[str] | None) -> list[Vary]:
    """``["trials=5,10", "prompt=8"]`` -> Vary options, each checked: FACTOR=N1,N2,... with
    positive integer sizes, no factor twice."""
    out: list[Vary] = []
    for item in items or []:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise SpecError(f"--vary '{item}': expected FACTOR=N1,N2,... (e.g. trials=5,10,20 "
                            "or prompt=8,16)")
        sizes = []
        for v in values.split(","):
            v = v.strip()
            if not v.isdigit() or int(v) < 1:
                raise SpecError(f"--vary {name}: sizes must be positive integers, got '{v}'")
            sizes.append(int(v))
        if len(set(sizes)) != len(sizes):
            raise SpecError(f"--vary {name}: a size is given twice ({values.strip()})")
        if any(o.factor == name for o in out):
            raise SpecError(f"--vary {name}: given twice; give every size in one option "
                            f"({name}=N1,N2,...)")
        out.append(Vary(name, tuple(sizes), item))
    if not out:
        raise SpecError("--vary: give at least one design size to vary, e.g. --vary "
                        "trials=5,10,20")
    return out


def grouping_factors(pf, aux_pfs=()) -> list[str]:
    """The columns that group a term of the formula (or of an auxiliary formula)."""
    out: list[str] = []
    for f in (pf, *aux_pfs):
        for g in f.groups:
            out += [c for c in g.factors if c not in out]
    return out


def fixed_columns(pf, aux_pfs=()) -> list[str]:
    """The columns of the fixed parts and of the varying parts (slopes) of the formulas."""
    out: list[str] = []
    for f in (pf, *aux_pfs):
        for expr in (f.fixed, *(g.expr for g in f.groups)):
            out += [c for c in term_columns(expr) if c not in out]
    return out


def resolve_factors(vary: list[Vary], pf, aux_pfs=()) -> list[Vary]:
    """Each option's factor as a column of the formula (or ``trials``); one-line SpecErrors
    for an unknown factor (listing the grouping factors) and for a fixed factor."""
    groups = grouping_factors(pf, aux_pfs)
    fixed = fixed_columns(pf, aux_pfs)
    can = [g for g in groups if g not in fixed]
    listing = (", ".join(can) or "none") + f"; or '{TRIALS}' for the rows per design cell"
    out = []
    for v in vary:
        name = v.factor
        if name != TRIALS and name not in groups and name not in fixed \
                and name.endswith("s") and name[:-1] in groups:
            name = name[:-1]  # "prompts": the number of levels of "prompt"
        if name in fixed:
            raise SpecError(f"--vary {v.factor}: '{name}' is a fixed factor of [model] formula "
                            f"'{pf.formula}': its levels are the design and cannot be varied "
                            f"(grouping factors: {listing})")
        if name != TRIALS and name not in groups:
            raise SpecError(f"--vary {v.factor}: '{name}' is not a grouping factor of [model] "
                            f"formula '{pf.formula}' (grouping factors: {listing})")
        if any(o.factor == name for o in out):
            raise SpecError(f"--vary {v.factor}: '{name}' is varied twice")
        out.append(Vary(name, v.sizes, v.given))
    return out


def grid(vary: list[Vary]) -> list[dict[str, int]]:
    """Every combination of the sizes, the first option's sizes changing slowest."""
    return [dict(zip([v.factor for v in vary], combo, strict=True))
            for combo in itertools.product(*(v.sizes for v in vary))]


def size_text(size: dict[str, int]) -> str:
    """``trials=10 prompt=8``."""
    return " ".join(f"{k}={v}" for k, v in size.items())


def label(factor: str, j: int, n: int) -> str:
    """The name of new level ``j`` (0-based) of ``n``: ``prompt001``."""
    return f"{factor}{j + 1:0{max(3, len(str(n)))}d}"


def design_rows(rows: pl.DataFrame, columns: list[str], size: dict[str, int]) -> pl.DataFrame:
    """The rows of the design of ``size`` built from ``rows`` (the model's rows), keeping
    ``columns`` (every column the model uses but the response). See the module docstring."""
    cells = (rows.select(columns).group_by(columns, maintain_order=True)
             .agg(pl.len().alias("__reps")))
    for factor, n in size.items():
        if factor == TRIALS:
            continue
        col = cells[factor].cast(pl.Utf8)
        cells = cells.with_columns(col.alias(factor))
        levels = col.unique(maintain_order=True).to_list()
        parts = [cells.filter(pl.col(factor) == levels[j % len(levels)])
                 .with_columns(pl.lit(label(factor, j, n)).alias(factor)) for j in range(n)]
        cells = pl.concat(parts)
    if TRIALS in size:
        cells = cells.with_columns(pl.lit(size[TRIALS], dtype=pl.UInt32).alias("__reps"))
    total = int(cells["__reps"].sum())
    if total > MAX_DESIGN_ROWS:
        raise SpecError(f"it would hold {total} rows, above {MAX_DESIGN_ROWS}")
    idx = pl.int_range(pl.len(), dtype=pl.UInt32).repeat_by(pl.col("__reps")).explode()
    take = cells.select(idx.alias("__i"))["__i"]
    return cells.drop("__reps")[take]
