"""What a synthesis is asked: a ``[summary]`` spec (TOML) or the ``biasstats summarize``
flags, as one :class:`SummaryRequest`.

```toml
[summary]
title = "Refusal gap across models"
analyses = ["../reports/*"]        # analysis folders, reports roots or globs (from this file)
estimand = "contrast:condition"    # <estimand>:<term>
level = "sensitive − neutral"      # where the term has several rows: level, scale,
scale = "difference"               # stratum, category
rank = "highest"                   # rank 1 = the highest value ("lowest": the lowest)
hdi_prob = 0.95
tau_prior = 0.05                   # Half-Normal scale of tau, in the estimand's units
```

Like an analysis spec it is data: nothing in it runs; a mistake is one line naming the file
and key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from biasstats.errors import SpecError
from biasstats.spec.schema import is_safe_name
from biasstats.synthesis.collect import Selector, parse_estimand
from biasstats.synthesis.leaderboard import ORDERS

__all__ = ["SummaryRequest", "load_summary", "request_from_flags"]


class _SummaryTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    title: str | None = None
    analyses: list[str] = Field(min_length=1)
    estimand: str
    level: str | None = None
    scale: str | None = None
    stratum: str | None = None
    category: str | None = None
    rank: Literal["highest", "lowest"] = "highest"
    hdi_prob: float = Field(default=0.95, gt=0, lt=1)
    tau_prior: float | None = Field(default=None, gt=0)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class _SummaryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: _SummaryTable


@dataclass(frozen=True)
class SummaryRequest:
    """The analyses (``sources``, relative to ``base``), the estimand, and how to rank and
    pool it."""

    sources: tuple[str, ...]
    selector: Selector
    name: str = "summary"
    title: str | None = None
    base: Path | None = None
    order: str = "highest"
    prob: float = 0.95
    tau_prior: float | None = None
    seed: int = 0
    spec_path: Path | None = None


def _describe(e: ValidationError) -> str:
    """One line for the first problem of a summary spec (unknown keys first)."""
    err = sorted(e.errors(), key=lambda x: {"extra_forbidden": 0, "missing": 1}.get(
        x["type"], 2))[0]
    loc = [str(p) for p in err["loc"]]
    where = f"[{loc[0]}] {'.'.join(loc[1:])}".strip() if len(loc) > 1 else (
        f"[{loc[0]}]" if loc else "(top level)")
    if err["type"] == "extra_forbidden":
        model, table = (_SummaryTable, f"[{loc[0]}]") if len(loc) > 1 else (_SummaryFile,
                                                                         "the file")
        return (f"unknown key {loc[-1]!r} in {table} "
                f"(expected one of: {', '.join(model.model_fields)})")
    if err["type"] == "missing":
        return f"missing required key {where}"
    return f"{where}: {err['msg']}, got {err.get('input')!r}"


def load_summary(path: str | Path) -> SummaryRequest:
    """A ``[summary]`` spec file -> :class:`SummaryRequest`; one SpecError line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: summary spec not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: invalid TOML: {e}") from None
    try:
        s = _SummaryFile.model_validate(raw).summary
    except ValidationError as e:
        raise SpecError(f"{path}: {_describe(e)}") from None
    name = s.name or path.stem
    if not is_safe_name(name):
        raise SpecError(f"{path}: [summary] name {name!r}: use letters, digits, '-' or '_'")
    sel = parse_estimand(s.estimand, key=f"{path}: [summary] estimand", level=s.level,
                         scale=s.scale, stratum=s.stratum, category=s.category)
    return SummaryRequest(tuple(s.analyses), sel, name=name, title=s.title,
                          base=path.parent, order=s.rank, prob=s.hdi_prob,
                          tau_prior=s.tau_prior, seed=s.seed, spec_path=path)


def request_from_flags(sources, estimand: str | None, *, level=None, scale=None, stratum=None,
                       category=None, order: str = "highest", prob: float = 0.95,
                       tau_prior: float | None = None, name: str = "summary") -> SummaryRequest:
    """The ``biasstats summarize FOLDER... --estimand ...`` flags -> :class:`SummaryRequest`."""
    if estimand is None:
        raise SpecError("--estimand is required with analysis folders (e.g. --estimand "
                        "contrast:condition), or give a [summary] spec file")
    if order not in ORDERS:
        raise SpecError(f"--rank {order!r}: expected one of {', '.join(ORDERS)}")
    if not 0 < prob < 1:
        raise SpecError(f"--hdi-prob {prob}: expected a probability between 0 and 1")
    if tau_prior is not None and not tau_prior > 0:
        raise SpecError(f"--tau-prior {tau_prior}: expected a positive number (the "
                        "Half-Normal scale of tau, in the estimand's units)")
    sel = parse_estimand(estimand, level=level, scale=scale, stratum=stratum,
                         category=category)
    return SummaryRequest(tuple(str(s) for s in sources), sel, name=name, order=order,
                          prob=prob, tau_prior=tau_prior)
