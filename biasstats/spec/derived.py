"""Derived estimands: ``[effects.derived.<name>]``, a function of the model's expected outcome
written in a small, safe grammar (parsed, never run) or named by a registered score.

::

    [effects.derived.bias_disambiguated]
    score = "qa_bias_disambiguated"       # a named score (biasstats.registry.scores) ...
    categories = { biased = "biased", anti = "anti" }   # its categories (these are defaults)
    within = "category:context"           # evaluated in each combination of levels

    [effects.derived.gap]
    expr = "P('biased', context='ambiguous') - P('biased', context='disambiguated')"
    within = "category"
    label = "ambiguity gap"
    unit = "probability"
    rope = 0.02                           # a half-width around null, or [low, high]
    null = 0                              # P(> null) is reported (default 0, a score's own)

The grammar: numbers; ``+ - * /``; unary minus; parentheses; ``min(a, b, ...)``,
``max(...)``, ``log(x)``, ``exp(x)``, ``abs(x)``; ``P('cat')`` the probability of an outcome
category (categorical / cumulative families), ``P()`` the probability of a 1 (bernoulli,
binomial families); ``E()`` the expected outcome (an ordinal outcome's expected rating);
``P('cat', f='level')`` / ``E(f='level')`` at a level of a model factor ``f`` not in
``within``. Text is checked against :data:`biasstats.limits.DERIVED` before Python's parser
(``ast.parse``, parse only) sees it, and every node must be one of the whitelist; anything
else is a one-line SpecError naming ``[effects.derived.<name>] expr`` and the token.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from biasstats.errors import SpecError
from biasstats.limits import DERIVED, MAX_DERIVED_ESTIMANDS, check_expression
from biasstats.model.families import get_family
from biasstats.model.formula import parse_formula
from biasstats.registry.scores import expand_score, score, score_names

__all__ = ["DerivedSpec", "Num", "Neg", "Bin", "Fn", "Prob", "Expect", "FUNCTIONS",
           "parse_expr", "derived_expression", "check_derived_table", "check_derived_model",
           "known_categories", "expression_factors", "where_of"]

FUNCTIONS = {"min": (1, None), "max": (1, None), "log": (1, 1), "exp": (1, 1), "abs": (1, 1)}
_KNOWN = "P, E, " + ", ".join(FUNCTIONS)
_ALLOWED = f"numbers, + - * /, parentheses, {_KNOWN}"
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class DerivedSpec(BaseModel):
    """``[effects.derived.<name>]``: ``expr`` or ``score`` (with its ``categories`` and
    ``over``), optional ``within``, ``label``, ``unit``, ``rope``, ``null``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    expr: str | None = None
    score: str | None = None
    categories: dict[str, str] = Field(default_factory=dict)  # a score's roles -> categories
    over: str | None = None            # a score over the levels of this factor
    within: str | None = None          # "category:context": one value per combination
    label: str | None = None
    unit: str | None = None
    rope: float | list[float] | None = None   # half-width around null, or [low, high]
    null: float | None = Field(default=None, allow_inf_nan=False)  # default 0 (a score's own)


# ----------------------------------------------------------------------------- the tree
@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Neg:
    arg: object


@dataclass(frozen=True)
class Bin:
    op: str           # + - * /
    left: object
    right: object


@dataclass(frozen=True)
class Fn:
    name: str         # min max log exp abs
    args: tuple


@dataclass(frozen=True)
class Prob:
    category: str | None            # None: P(1) of a 0/1 outcome
    at: tuple[tuple[str, str], ...]  # (factor, level) pairs


@dataclass(frozen=True)
class Expect:
    at: tuple[tuple[str, str], ...]


def where_of(name: str, key: str = "expr") -> str:
    return f"[effects.derived.{name}] {key}"


def parse_expr(text: str, where: str):
    """The tree of ``text`` (:class:`Num`, :class:`Neg`, :class:`Bin`, :class:`Fn`,
    :class:`Prob`, :class:`Expect`); a one-line SpecError starting with ``where`` for
    anything outside the grammar. The limits are checked before any parser runs."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"{where}: expected an expression, e.g. \"P('a') - P('b')\"")
    check_expression(text, DERIVED, where)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        at = f", at column {e.offset}" if e.offset else ""
        raise SpecError(f"{where}: not a valid expression ({e.msg}{at})") from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError(f"{where}: the expression is too complex") from None
    return _Walker(text.strip(), where).node(tree.body)


def _quoted(text: str) -> str:
    return f'"{text}"' if "'" in text else f"'{text}'"


class _Walker:
    def __init__(self, text: str, where: str):
        self.text, self.where = text, where

    def seg(self, node) -> str:
        return ast.get_source_segment(self.text, node) or type(node).__name__

    def refuse(self, node, what: str) -> SpecError:
        return SpecError(f"{self.where}: {what} {_quoted(self.seg(node))} is not allowed "
                         f"(allowed: {_ALLOWED})")

    def node(self, n):
        if isinstance(n, ast.Constant) and type(n.value) in (int, float):
            try:
                v = float(n.value)
            except OverflowError:
                v = math.inf
            if not math.isfinite(v):
                raise SpecError(f"{self.where}: number '{self.seg(n)}' is not finite")
            return Num(v)
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return Bin(_OPS[type(n.op)], self.node(n.left), self.node(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub | ast.UAdd):
            arg = self.node(n.operand)
            return Neg(arg) if isinstance(n.op, ast.USub) else arg
        if isinstance(n, ast.Call):
            return self.call(n)
        raise self.rejected(n)

    def rejected(self, n) -> SpecError:
        if isinstance(n, ast.Attribute):
            return self.refuse(n, "attribute access")
        if isinstance(n, ast.Subscript):
            return self.refuse(n, "subscript")
        if isinstance(n, ast.Lambda):
            return self.refuse(n, "lambda")
        if isinstance(n, ast.JoinedStr):
            return self.refuse(n, "f-string")
        if isinstance(n, ast.Name):
            return SpecError(f"{self.where}: unknown name '{n.id}' (an expression holds "
                             f"numbers and calls of {_KNOWN})")
        if isinstance(n, ast.Constant):
            return self.refuse(n, "constant")
        if isinstance(n, ast.BinOp | ast.UnaryOp):
            return self.refuse(n, "operator")
        return self.refuse(n, "construct")

    def call(self, n: ast.Call):
        if not isinstance(n.func, ast.Name):
            raise self.rejected(n.func) if isinstance(n.func, ast.Attribute | ast.Subscript
                                                      | ast.Lambda) else self.refuse(n, "call")
        name = n.func.id
        if name in ("P", "E"):
            return self.outcome_call(n, name)
        if name not in FUNCTIONS:
            raise SpecError(f"{self.where}: unknown function '{name}' (known: {_KNOWN})")
        lo, hi = FUNCTIONS[name]
        if n.keywords or any(isinstance(a, ast.Starred) for a in n.args):
            raise self.refuse(n, f"keyword or * argument of {name}()")
        if len(n.args) < lo or (hi is not None and len(n.args) > hi):
            want = f"{lo}" if hi == lo else f"at least {lo}"
            raise SpecError(f"{self.where}: {name}() takes {want} argument"
                            f"{'s' if (hi or 2) > 1 else ''}, got {len(n.args)} in "
                            f"'{self.seg(n)}'")
        return Fn(name, tuple(self.node(a) for a in n.args))

    def outcome_call(self, n: ast.Call, name: str):
        args = list(n.args)
        if any(isinstance(a, ast.Starred) for a in args):
            raise self.refuse(n, "* argument in")
        most = 1 if name == "P" else 0
        if len(args) > most:
            what = "at most one category name" if most else "no category"
            raise SpecError(f"{self.where}: {name}() takes {what}, got '{self.seg(n)}' (a "
                            f"level of a factor is a keyword: {name}(f='level'))")
        cat = None
        if args:
            a = args[0]
            if not (isinstance(a, ast.Constant) and isinstance(a.value, str)):
                raise SpecError(f"{self.where}: P() takes a category name in quotes, got "
                                f"'{self.seg(a)}'")
            cat = a.value
        at = []
        for kw in n.keywords:
            if kw.arg is None:
                raise self.refuse(n, "** argument in")
            v = kw.value
            if not (isinstance(v, ast.Constant) and isinstance(v.value, str | int)
                    and not isinstance(v.value, bool)):
                raise SpecError(f"{self.where}: {kw.arg}= takes a level name in quotes, got "
                                f"'{self.seg(v)}'")
            at.append((kw.arg, str(v.value)))
        return Prob(cat, tuple(at)) if name == "P" else Expect(tuple(at))


def walk(node):
    """Every node of a tree, depth first."""
    yield node
    for child in (node.args if isinstance(node, Fn) else (node.arg,) if isinstance(node, Neg)
                  else (node.left, node.right) if isinstance(node, Bin) else ()):
        yield from walk(child)


def expression_factors(node) -> list[str]:
    """The factors an expression conditions on (``P(f='a')``), in order."""
    return list(dict.fromkeys(f for x in walk(node) if isinstance(x, Prob | Expect)
                              for f, _ in x.at))


# ----------------------------------------------------------------------------- the table
def derived_expression(name: str, d: DerivedSpec, levels=None) -> str:
    """The expression text of ``[effects.derived.<name>]``: its ``expr``, or its score filled
    in (``levels``: the levels of ``over``; placeholders when not known yet)."""
    if d.expr is not None:
        return d.expr
    s = score(d.score)
    if s is None:
        raise SpecError(f"{where_of(name, 'score')}: unknown score '{d.score}' (known: "
                        f"{', '.join(score_names())})")
    return expand_score(s, d.categories, d.over,
                        levels if levels is not None else ("level1", "level2"))


def check_derived_table(name: str, d: DerivedSpec) -> None:
    """What a derived table says on its own: a name, one of ``expr`` / ``score``, a score's
    parameters, the ROPE, and the expression's grammar."""
    if not name.strip() or len(name) > 100:
        raise SpecError(f"[effects.derived] '{name}': a name of 1 to 100 characters")
    if (d.expr is None) == (d.score is None):
        raise SpecError(f"[effects.derived.{name}]: give exactly one of expr (an expression) "
                        f"or score (one of: {', '.join(score_names())})")
    if d.score is not None:
        s = score(d.score)
        if s is None:
            raise SpecError(f"{where_of(name, 'score')}: unknown score '{d.score}' (known: "
                            f"{', '.join(score_names())})")
        for role in d.categories:
            if role not in s.roles:
                raise SpecError(f"{where_of(name, 'categories')}: '{role}' is not a category "
                                f"role of score {d.score} (its roles: "
                                f"{', '.join(s.roles) or 'none'})")
        if s.needs_over and not d.over:
            raise SpecError(f"{where_of(name, 'over')}: score {d.score} compares the levels "
                            "of a factor: name it, e.g. over = \"group\"")
        if not s.needs_over and d.over:
            raise SpecError(f"{where_of(name, 'over')}: score {d.score} takes no 'over'")
        if d.over is not None and not d.over.isidentifier():
            raise SpecError(f"{where_of(name, 'over')}: '{d.over}' must be a plain column name "
                            "(letters, digits, _)")
    elif d.categories or d.over:
        raise SpecError(f"[effects.derived.{name}]: categories and over belong to a score; an "
                        "expr names its categories and levels itself")
    if isinstance(d.rope, list) and (len(d.rope) != 2 or d.rope[0] >= d.rope[1]
                                     or not all(math.isfinite(x) for x in d.rope)):
        raise SpecError(f"{where_of(name, 'rope')}: expected a half-width or [low, high] with "
                        f"low < high, got {d.rope}")
    if isinstance(d.rope, float | int) and not (0 <= d.rope < math.inf):
        raise SpecError(f"{where_of(name, 'rope')}: expected a half-width >= 0, got {d.rope}")
    parse_expr(derived_expression(name, d), where_of(name))


def known_categories(data) -> list[str] | None:
    """The outcome's categories when the spec itself says them (the ``map`` values or
    ``values`` of the ``[data.parse]`` rule that makes the outcome column), else None."""
    if data is None:
        return None
    rule = data.parse.get(data.outcome)
    if rule is None:
        return None
    if rule.map:
        return list(dict.fromkeys(rule.map.values()))
    return list(rule.values) or None


def check_derived_model(name: str, d: DerivedSpec, columns: list[str], family,
                        categories: list[str] | None = None, levels=None) -> object:
    """What a derived table asks of the model: ``within``, ``over`` and every keyword of
    ``P()`` / ``E()`` name factors of the formula (keywords not in ``within``); ``P('x')``
    needs an outcome with categories and ``x`` among them (when ``categories`` are known),
    ``P()`` a 0/1 outcome, ``E()`` one expected value per row. ``levels(factor)``: the levels
    in the data, once known (before sampling), checked too. Returns the parsed tree."""
    listing = ", ".join(columns) or "none"
    within = [f.strip() for f in d.within.split(":")] if d.within else []
    for f in within:
        if f not in columns:
            raise SpecError(f"{where_of(name, 'within')}: '{f}' is not a factor of the model "
                            f"formula (its factors: {listing})")
    if d.over is not None:
        if d.over not in columns:
            raise SpecError(f"{where_of(name, 'over')}: '{d.over}' is not a factor of the "
                            f"model formula (its factors: {listing})")
        if d.over in within:
            raise SpecError(f"{where_of(name, 'over')}: '{d.over}' is also in within")
        if levels is not None and len(levels(d.over)) < 2:
            raise SpecError(f"{where_of(name, 'over')}: '{d.over}' has fewer than two levels "
                            "in the data")
    where = where_of(name)
    text = derived_expression(name, d, levels(d.over) if levels and d.over else None)
    tree = parse_expr(text, where)
    for node in walk(tree):
        if not isinstance(node, Prob | Expect):
            continue
        _check_outcome_call(where, node, family, categories)
        for f, lv in node.at:
            if f not in columns:
                raise SpecError(f"{where}: '{f}' is not a factor of the model formula (its "
                                f"factors: {listing})")
            if f in within:
                raise SpecError(f"{where}: '{f}=' names a factor of within ({d.within}); a "
                                "level is taken of a factor inside the stratum")
            if levels is not None and lv not in levels(f):
                shown = ", ".join(levels(f)[:12])
                raise SpecError(f"{where}: level '{lv}' of {f} is not in the data (levels: "
                                f"{shown})")
    return tree


def _check_outcome_call(where: str, node, family, categories) -> None:
    if isinstance(node, Expect):
        if family.has_categories and not family.ordered:
            raise SpecError(f"{where}: E() needs one expected value per row; family "
                            f"'{family.name}' gives one probability per category (use "
                            "P('<category>'))")
        return
    if node.category is None and not family.binary_outcomes:
        raise SpecError(f"{where}: P() is the probability of a 1 (a 0/1 outcome); family "
                        f"'{family.name}' needs a category, P('<category>')"
                        if family.has_categories else
                        f"{where}: P() needs a 0/1 or categorical outcome; family "
                        f"'{family.name}' has none (use E())")
    if node.category is not None:
        if not family.has_categories:
            raise SpecError(f"{where}: P('{node.category}') needs an outcome with categories "
                            f"(categorical or cumulative); family '{family.name}' has none"
                            + (" (use P())" if family.binary_outcomes else " (use E())"))
        if categories is not None and node.category not in categories:
            raise SpecError(f"{where}: '{node.category}' is not a category of the outcome "
                            f"(its categories: {', '.join(map(str, categories))})")


def check_derived(derived: dict, model=None, data=None) -> None:
    """Every ``[effects.derived]`` table on its own and, when the spec has a ``[model]``,
    against its formula and family, when the spec loads (before any data is read)."""
    if len(derived) > MAX_DERIVED_ESTIMANDS:
        raise SpecError(f"[effects.derived]: {len(derived)} tables, above the limit of "
                        f"{MAX_DERIVED_ESTIMANDS}")
    for name, d in derived.items():
        check_derived_table(name, d)
    if model is None or not derived:
        return
    try:
        family = get_family(model.family)
        formula = parse_formula(model.formula)
    except SpecError:
        return  # reported against [model] itself
    cols = [c for c in formula.columns() if c not in (formula.response, formula.trials)]
    cats = known_categories(data)
    for name, d in derived.items():
        check_derived_model(name, d, cols, family, cats)
