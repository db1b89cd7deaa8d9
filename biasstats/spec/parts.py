"""A joint model of named parts: ``[parts.<name>]`` tables and the ``[joint]`` table.

Each part has its own data, model and estimands (the ``[data]``, ``[model]`` and ``[effects]``
keys, under ``[parts.<name>.data]`` and so on); the parts share grouping factors. A correlation
id between the bars of a varying intercept, ``(1 | p | cell)`` as in brms, makes the parts'
effects of that factor correlated (one LKJ correlation matrix per id); a term without one is
independent of the other parts::

    [parts.implicit.data]
    source = "implicit.csv"
    outcome = "y"
    [parts.implicit.model]
    formula = "y ~ 1 + (1|p|cell)"
    family = "bernoulli"
    [parts.decision.data]
    source = "decision.csv"
    outcome = "y"
    [parts.decision.model]
    formula = "y ~ 1 + (1|p|cell)"
    [joint]
    slope = ["implicit", "decision"]   # decision's cell effects regressed on implicit's

Everything that can be checked without data is checked here, when the spec loads, one line
naming the part and key: a part without data or model, a correlation id in one part only or
on different factors, ``[joint] slope`` naming parts that share no id. Whether the levels of
a correlated factor overlap between the parts is checked on the data, before sampling
(:func:`biasstats.model.joint.prepare_joint`).
"""

from __future__ import annotations

from contextlib import contextmanager

from pydantic import Field, field_validator

from biasstats.errors import BiasstatsError, SpecError
from biasstats.model.families import get_family
from biasstats.model.formula import parse_formula
from biasstats.spec.schema import (
    DataSpec,
    EffectsSpec,
    ModelSpec,
    _formula_syntax,
    _Strict,
    is_safe_name,
)

__all__ = ["PartSpec", "PartChecks", "JointTable", "check_effects", "check_parts",
           "correlation_ids", "in_part"]

_TABLES = ("model", "data", "effects", "checks")


class PartChecks(_Strict):
    """``[parts.<name>.checks]``: other formulas of this part, each fitted in the joint model
    in place of the part's own (the other parts as they are) and compared with it by PSIS-LOO
    on this part's observations."""

    alternatives: list[str] = Field(default_factory=list)

    @field_validator("alternatives")
    @classmethod
    def _alternatives(cls, v: list[str]) -> list[str]:
        return [_formula_syntax(f) for f in v]


class PartSpec(_Strict):
    """``[parts.<name>]``: one part of a joint model (its data, model and estimands)."""

    data: DataSpec | None = None
    model: ModelSpec | None = None
    effects: EffectsSpec = Field(default_factory=EffectsSpec)
    checks: PartChecks = Field(default_factory=PartChecks)


class JointTable(_Strict):
    """``[joint]``: what the joint model reports beyond each part's own estimands."""

    # [x, y]: the latent regression of part y's effects on part x's (per correlation id they
    # share), beside the two-step slope; default: the first two parts sharing an id
    slope: list[str] | None = Field(default=None, min_length=2, max_length=2)
    hdi_prob: float = Field(default=0.95, gt=0, lt=1)


def check_effects(e: EffectsSpec, model: ModelSpec, key: str = "[effects]") -> None:
    """Every column an ``[effects]`` entry names must be one the model formula uses; a ROPE
    must suit the family. ValueError (one line naming ``key``) otherwise."""
    pf = parse_formula(model.formula)
    cols = [c for c in pf.columns() if c not in (pf.response, pf.trials)]
    named = [("by", t) for t in e.by or []] + [("contrasts", t) for t in e.contrasts or []]
    named += [("impact", t) for t in e.impact or []]
    named += [("slopes", t) for t in e.slopes or []]
    named += [("reference", t) for t in e.reference]
    named += [("rank", e.rank)] if e.rank else []
    for k, term in named:
        for col in term.replace("|", ":").split(":"):
            col = col.strip()
            if col not in cols:
                raise ValueError(f"{key} {k}: '{term}' is not in the model formula "
                                 f"(its factors and predictors: {', '.join(cols) or 'none'})")
    _within_references(e, key)
    sloped = [t.name for t in pf.groups
              if any(p.strip() not in ("0", "1", "") for p in t.expr.split("+"))]
    for g in e.level_slopes or []:
        if g not in [t.name for t in pf.groups]:
            raise ValueError(f"{key} level_slopes: '{g}' is not a grouping term of the "
                             f"model formula (its groupings: "
                             f"{', '.join(t.name for t in pf.groups) or 'none'})")
        if g not in sloped:  # before sampling, not after it
            raise ValueError(f"{key} level_slopes: '{g}' is not a varying-slope term "
                             f"of the model (varying-slope terms: "
                             f"{', '.join(sloped) or 'none'})")
    if e.rope is not None:  # before sampling: the family alone decides whether a ROPE fits
        try:
            fam = get_family(model.family)
        except SpecError:
            return  # an unknown family is reported where the model is built
        try:
            fam.check_rope(e.rope, key=f"{key} rope")
        except SpecError as err:
            raise ValueError(str(err)) from None


def _within_references(e: EffectsSpec, key: str) -> None:
    """A reference keyed by a within-strata term (``"f | s"``) must name a term ``[effects]``
    declares (contrasts, by, impact or rank): else it would be silently unused."""
    def canon(t: str) -> str:
        f, _, s = t.partition("|")
        return ":".join(p.strip() for p in f.split(":")) + (
            " | " + ":".join(p.strip() for p in s.split(":")) if s else "")

    terms = [*(e.contrasts or []), *(e.by or []), *(e.impact or []), *([e.rank] if e.rank
                                                                       else [])]
    within = {canon(t) for t in terms if "|" in t}
    for t in e.reference:
        if "|" in t and canon(t) not in within:
            raise ValueError(f"{key} reference: '{t}' is not a within-strata term of "
                             f"[effects] (its terms: {', '.join(sorted(within)) or 'none'}; "
                             "or key the reference by the factor alone)")


def correlation_ids(formula: str) -> list[tuple[str, str, str]]:
    """(id, grouping name, term as written) of every ``(1 | id | g)`` term of ``formula``."""
    return [(g.cor_id, g.name, g.source) for g in parse_formula(formula).groups
            if g.cor_id is not None]


def no_correlation_ids(formula: str, key: str) -> None:
    """A single model has no other part to correlate with: ValueError naming ``key``."""
    ids = correlation_ids(formula)
    if ids:
        cid, _, term = ids[0]
        raise ValueError(f"{key}: term '{term}' has a correlation id ('{cid}'), which "
                         "correlates the parts of a joint model ([parts.<name>.model]); a "
                         f"single model has none: write (1|{ids[0][1]})")


def check_parts(parts: dict[str, PartSpec], joint: JointTable | None) -> None:
    """The parts of a joint spec, checked together (ValueError, one line naming the part and
    key): at least two, each with data and a model, each part's ``[effects]`` against its
    formula, every correlation id on one grouping factor in at least two parts, and ``[joint]
    slope`` naming two parts that share one."""
    if len(parts) < 2:
        raise ValueError(f"[parts]: a joint model needs at least two parts (got "
                         f"{len(parts)}: {', '.join(parts) or 'none'}); a single model is "
                         "[data] with [model]")
    for name, part in parts.items():
        if not is_safe_name(name):
            raise ValueError(f"[parts.{name}]: a part's name must be letters, digits, '-' or "
                             "'_' (it names the part's variables and report folder)")
        for table in ("data", "model"):
            if getattr(part, table) is None:
                raise ValueError(f"[parts.{name}]: missing [parts.{name}.{table}]; every part "
                                 "needs its own data and model")
        check_effects(part.effects, part.model, key=f"[parts.{name}.effects]")
    ids: dict[str, list[tuple[str, str]]] = {}
    for name, part in parts.items():
        key = f"[parts.{name}.model] formula"
        seen: dict[str, str] = {}
        fam = get_family(part.model.family)
        for cid, grouping, term in correlation_ids(part.model.formula):
            if part.model.centered.get(grouping):
                raise ValueError(f"[parts.{name}.model.centered] {grouping}: a correlated term "
                                 f"(id '{cid}') is always non-centred; remove the key")
            if cid in seen:
                raise ValueError(f"{key}: correlation id '{cid}' is on '{seen[cid]}' and on "
                                 f"'{grouping}'; one id correlates one grouping factor "
                                 "across parts")
            seen[cid] = grouping
            if fam.multinomial:
                raise ValueError(f"{key}: term '{term}': family '{fam.name}' has one linear "
                                 "predictor per category; a correlation id needs one")
            for other, g in ids.get(cid, []):
                if g != grouping:
                    raise ValueError(f"{key}: correlation id '{cid}' is on '{grouping}' here "
                                     f"but on '{g}' in part '{other}'; one id correlates the "
                                     "effects of one grouping factor")
            ids.setdefault(cid, []).append((name, grouping))
        own = sorted((cid, g) for cid, g, _ in correlation_ids(part.model.formula))
        for i, alt in enumerate(part.checks.alternatives):
            theirs = sorted((cid, g) for cid, g, _ in correlation_ids(alt))
            if theirs != own:
                shown = ", ".join(f"(…|{c}|{g})" for c, g in own) or "none"
                raise ValueError(
                    f"[parts.{name}.checks] alternatives[{i}]: '{alt}' must keep the part's "
                    f"correlation ids ({shown}) as they are: an alternative changes the part's "
                    "own terms, fitted jointly with the other parts, so that PSIS-LOO compares "
                    "formulas of this part and not the links between parts")
    for cid, where in ids.items():
        if len(where) < 2:
            name, grouping = where[0]
            raise ValueError(f"[parts.{name}.model] formula: correlation id '{cid}' appears "
                             f"in no other part; it correlates the effects of '{grouping}' "
                             f"across parts (write (1|{cid}|{grouping}) in another part, or "
                             f"(1|{grouping}) here)")
    if joint is not None and joint.slope is not None:
        x, y = joint.slope
        for p in (x, y):
            if p not in parts:
                raise ValueError(f"[joint] slope: '{p}' is not a part (parts: "
                                 f"{', '.join(parts)})")
        if x == y:
            raise ValueError(f"[joint] slope: names part '{x}' twice; give two parts, "
                             "[x, y] (y's effects regressed on x's)")
        if not any({x, y} <= {p for p, _ in where} for where in ids.values()):
            raise ValueError(f"[joint] slope: parts '{x}' and '{y}' share no correlation id; "
                             "the slope regresses one part's correlated effects on the other's")


@contextmanager
def in_part(spec, part: str):
    """A user error raised for part ``part`` of joint spec ``spec`` (a part names its tables
    ``[model]``,
    ``[data]``, ``[effects]``) names them as the joint spec does: ``[parts.<part>.model]``."""
    try:
        yield
    except BiasstatsError as e:
        msg = str(e)
        head = f"{spec.path}: "
        body = msg.removeprefix(head)
        for t in _TABLES:
            for form in (f"[{t}]", f"[{t}."):
                if body.startswith(form):
                    body = f"[parts.{part}.{t}" + body[len(f"[{t}"):]
                    break
            else:
                continue
            break
        else:
            if not body.startswith("[parts."):
                body = f"[parts.{part}] {body}"
        raise type(e)(head + body) from None
