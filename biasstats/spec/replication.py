"""``[[replication]]``: published numbers set beside the reanalysis of the same estimand.

Each entry names one row of the analysis' estimands (``estimands.csv`` / the report's
tables) and the number a paper published for it::

    [[replication]]
    estimand = "contrast:condition | model:test"   # <estimand>:<term> of estimands.csv
    stratum = "m1:t2"                # the row's stratum (within-strata terms only)
    level = "incongruent − congruent"   # the row's level ("-" is read as "−")
    scale = "ratio"                  # the row's scale, when the level has several
    published = 1.31
    interval = [1.12, 1.53]          # or se = 0.1 (then ± 1.96 se); optional
    citation = "Author et al. (2025), Table 2"

The address is the row's columns of ``estimands.csv``: ``estimand`` is its ``estimand`` and
``term`` columns joined by ``:`` (kinds: ``mean``, ``contrast``, ``slope``, ``impact``,
``derived`` with the name of an ``[effects.derived.<name>]`` table; the
term as ``[effects]`` declares it, e.g. ``"mean:group"``, ``"impact:demo | llm:job"``,
``"mean:overall"``), then ``stratum``, ``level``, ``scale`` and ``category`` pick the row
among the estimand's rows. ``published`` is in that row's unit (its ``unit`` column:
percentage points for a difference of probabilities, a ratio, ...).

Checked in three steps, each a one-line error naming the entry: when the spec loads (keys,
types, the kind, the term's columns in the formula and, where ``[effects]`` lists them, in
its list), before sampling (the address against the rows the data and request will give:
:mod:`biasstats.effects.replication`) and against the computed estimands.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict

from biasstats.spec.schema import toml_value

__all__ = ["KINDS", "REQUIRED", "ReplicationSpec", "check_entries", "check_terms",
           "normal_level", "normal_term", "split_address"]

KINDS = ("mean", "contrast", "slope", "impact", "derived")
REQUIRED = ("estimand", "published", "citation")
_TEXT_KEYS = ("estimand", "level", "stratum", "category", "scale", "citation")


class ReplicationSpec(BaseModel):
    """One ``[[replication]]`` entry (validated by :func:`check_entries` first, so every
    problem is one line naming the entry)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    estimand: str
    level: str | None = None
    stratum: str | None = None
    category: str | None = None
    scale: str | None = None
    published: float
    interval: list[float] | None = None
    se: float | None = None
    citation: str

    @property
    def kind(self) -> str:
        return split_address(self.estimand)[0]

    @property
    def term(self) -> str:
        return split_address(self.estimand)[1]

    def describe(self) -> str:
        """``"contrast:condition", level "a − b"`` (the address as written)."""
        parts = [f'"{self.estimand}"']
        for key in ("stratum", "level", "scale", "category"):
            v = getattr(self, key)
            if v is not None:
                parts.append(f'{key} "{v}"')
        return ", ".join(parts)


def split_address(estimand: str) -> tuple[str, str]:
    """``"contrast:condition | model:test"`` -> ("contrast", "condition | model:test")."""
    kind, _, term = estimand.partition(":")
    return kind.strip(), normal_term(term)


def normal_term(term: str) -> str:
    """A term with canonical spacing: ``"a|s1 : s2"`` -> ``"a | s1:s2"``."""
    t = re.sub(r"\s*:\s*", ":", term.strip())
    return re.sub(r"\s*\|\s*", " | ", t)


def normal_level(level: str) -> str:
    """A level as the estimands name it: ``"a - b"`` -> ``"a − b"`` (a typographic minus)."""
    return re.sub(r" - ", " \u2212 ", level.strip())




def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_entries(value) -> list:
    """The raw ``[[replication]]`` list, checked entry by entry: ValueError with one line
    (``[[replication]] entry 2: ...``) for the first problem."""
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise ValueError("[[replication]]: expected [[replication]] tables (one per published "
                         f"number), got {toml_value(value)}")
    allowed = list(ReplicationSpec.model_fields)
    for i, raw in enumerate(value, 1):
        where = f"[[replication]] entry {i}"
        for key in raw:
            if key not in allowed:
                raise ValueError(f"{where}: unknown key '{key}' (expected one of: "
                                 f"{', '.join(allowed)})")
        for key in REQUIRED:
            if key not in raw:
                raise ValueError(f"{where}: missing required key '{key}'")
        for key in _TEXT_KEYS:
            if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
                raise ValueError(f"{where}: {key}: expected a non-empty string, got "
                                 f"{toml_value(raw[key])}")
        if not _number(raw["published"]):
            raise ValueError(f"{where}: published: expected a number, got "
                             f"{toml_value(raw['published'])}")
        _check_kind(where, raw["estimand"])
        _check_uncertainty(where, raw)
    return value


def _check_kind(where: str, estimand: str) -> None:
    kind, term = split_address(estimand)
    if kind not in KINDS or not term:
        what = (f"unknown kind '{kind}'" if kind not in KINDS else "no term after the kind")
        raise ValueError(f'{where}: estimand "{estimand}": {what} (expected '
                         f'"<kind>:<term>" with kind one of {", ".join(KINDS)}, e.g. '
                         '"contrast:condition" or "impact:group | llm:job")')


def _check_uncertainty(where: str, raw: dict) -> None:
    if "interval" in raw and "se" in raw:
        raise ValueError(f"{where}: give interval or se, not both")
    if "se" in raw and (not _number(raw["se"]) or raw["se"] <= 0):
        raise ValueError(f"{where}: se: expected a positive number, got {toml_value(raw['se'])}")
    if "interval" in raw:
        iv = raw["interval"]
        if (not isinstance(iv, list) or len(iv) != 2 or not all(_number(x) for x in iv)
                or not iv[0] < iv[1]):
            raise ValueError(f"{where}: interval: expected [low, high] with low < high, got "
                             f"{toml_value(iv)}")
        if not iv[0] <= raw["published"] <= iv[1]:
            raise ValueError(f"{where}: interval {toml_value(iv)} does not contain published = "
                             f"{toml_value(raw['published'])}")


_LIST_OF = {"mean": "by", "contrast": "contrasts", "impact": "impact"}


def check_terms(entries, columns: list[str], effects) -> None:
    """Every entry's term names columns of the model formula (``columns``: its factors and
    predictors) and, where ``[effects]`` lists its kind's terms explicitly (``effects``: the
    :class:`~biasstats.spec.schema.EffectsSpec`), is one of them: ValueError, one line."""
    for i, e in enumerate(entries, 1):
        where = f'[[replication]] entry {i}: estimand "{e.estimand}"'
        kind, term = e.kind, e.term
        if kind == "derived":  # a name of [effects.derived], not a term of the formula
            if term not in effects.derived:
                raise ValueError(f"{where}: [effects.derived] has no '{term}' (its names: "
                                 f"{', '.join(effects.derived) or 'none'})")
            continue
        if (kind == "mean" and term == "overall") or (kind == "slope" and "|" in term):
            continue  # the overall mean; a level slope "x | g" (checked before sampling)
        names = re.split(r"[|:]", term)
        for col in (c.strip() for c in names):
            if col not in columns:
                raise ValueError(f"{where}: '{col}' is not in the model formula (its factors "
                                 f"and predictors: {', '.join(columns) or 'none'})")
        key = _LIST_OF.get(kind)
        if key is None:
            continue
        declared = getattr(effects, key)
        if key == "impact" and not declared:
            raise ValueError(f"{where}: [effects] impact does not list '{term}' (add it there: "
                             "a replication compares an estimand the analysis reports)")
        if declared is not None and term not in {normal_term(t) for t in declared}:
            raise ValueError(f"{where}: [effects] {key} does not list '{term}' (its terms: "
                             f"{', '.join(declared) or 'none'}; add it there: a replication "
                             "compares an estimand the analysis reports)")
