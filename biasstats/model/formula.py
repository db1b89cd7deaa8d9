"""lme4/brms-style model formulas.

A small, fully tested grammar of our own for the parts patsy does not know (the response side
and the ``( ... | g)`` group terms). The fixed-effects part and each term's varying part use
patsy's term algebra (``+ - * : / **``, ``0 +`` / ``- 1``), so categorical coding and
interactions behave exactly as in statsmodels, but **no part of a formula ever reaches Python
``eval``**: every factor is parsed with :mod:`ast`, checked against a whitelist of columns,
numbers, arithmetic and a few transforms, and computed by :mod:`biasstats.model.terms`.
Column names that are not identifiers are quoted with backticks: ``y ~ `reply length` ``.

Supported::

    y ~ x + (1 | g)                      random intercept
    y ~ x + (1 | a) + (1 | b)            crossed
    y ~ x + (1 | a/b)                    nested  = (1|a) + (1|a:b)
    y ~ x + (1 | a:b)                    interaction group (observed combinations only)
    y ~ x + (x | g)                      varying slope, correlated (LKJ)
    y ~ x + (x || g)                     varying slope, uncorrelated
    y ~ x + (1 | p | g)                  correlation id p (brms): in a joint model, the
                                         effects of g in every part whose term carries p
                                         are correlated (one LKJ correlation matrix)
    y ~ x + (1 + x | p | g)              ... with the varying slopes: the matrix is over
                                         every part's intercept and slopes, stacked
    k | trials(n) ~ x + (1 | g)          binomial response
    y ~ C(x, Treatment('b')) + log(z)    whitelisted transforms (see biasstats.model.terms)

Every user mistake raises :class:`~biasstats.errors.SpecError` with a one-line message that
names the offending term.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from biasstats.errors import SpecError
from biasstats.limits import FORMULA, check_expression
from biasstats.model.terms import design_terms, term_columns

__all__ = ["GroupTerm", "ParsedFormula", "parse_aux", "parse_formula", "check_columns",
           "split_top_level"]

POSITIVE_AUX = ("phi", "sigma", "alpha", "nu")  # auxiliaries a [model.aux] formula may model

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z_0-9.]*$")
_QUOTED = re.compile(r"^`([^`]+)`$")


@dataclass(frozen=True)
class GroupTerm:
    """One group-level term ``(expr | factors)``.

    ``factors`` are the data columns whose observed combinations form the levels
    (``("a", "b")`` for ``a:b``). ``expr`` is the patsy formula of the varying part
    (``"1"``, ``"1 + x"``, ``"0 + x"``). ``correlated`` is False for ``||``. ``cor_id`` is
    the correlation id of ``(1 | p | g)`` (None without one): the parts of a joint model
    whose terms of ``g`` carry the same id have correlated effects of ``g``.
    """

    expr: str
    factors: tuple[str, ...]
    correlated: bool = True
    source: str = ""  # the term as the user wrote it, for messages
    cor_id: str | None = None

    @property
    def name(self) -> str:
        """brms-style name of the grouping: ``llm`` or ``category:stereotype``."""
        return ":".join(self.factors)


@dataclass(frozen=True)
class ParsedFormula:
    formula: str
    response: str                     # outcome column (successes for binomial)
    trials: str | None                # trials column for ``k | trials(n)``
    fixed: str                        # right-hand side for patsy (no group terms)
    groups: tuple[GroupTerm, ...] = field(default_factory=tuple)

    @property
    def fixed_formula(self) -> str:
        """A complete patsy/statsmodels formula for the fixed part."""
        return f"{self.response} ~ {self.fixed}"

    def columns(self) -> list[str]:
        """Every data column the formula references (response first)."""
        cols = [self.response] + ([self.trials] if self.trials else [])
        cols += term_columns(self.fixed)
        for g in self.groups:
            cols += term_columns(g.expr) + list(g.factors)
        out: list[str] = []
        for c in cols:
            if c not in out:
                out.append(c)
        return out


def _check_parens(formula: str) -> None:
    depth = 0
    for ch in formula:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
    if depth != 0:
        raise SpecError(f"unbalanced parentheses in formula '{formula}'")


def split_top_level(text: str, seps: str = "+") -> list[tuple[str, str]]:
    """Split ``text`` at top-level separator characters; return (separator, piece) pairs.

    The first piece's separator is ``""``. Parentheses nest.
    """
    out: list[tuple[str, str]] = []
    depth, start, sep, quote = 0, 0, "", ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "`'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch in seps and depth == 0:
            out.append((sep, text[start:i].strip()))
            sep, start = ch, i + 1
    out.append((sep, text[start:].strip()))
    return out


def _column_name(name: str) -> str | None:
    """``name`` or the inside of `` `name` ``; None if it is neither."""
    m = _QUOTED.match(name)
    if m:
        return m.group(1)
    return name if _IDENT.match(name) else None


_COR_ID = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def _cor_id(term: str, expr: str, grp: str) -> tuple[str | None, str]:
    """(correlation id, grouping) of the part after the first '|': ``p | g`` or ``g``."""
    if "|" not in grp:
        return None, grp
    cid, _, grp = (s.strip() for s in grp.partition("|"))
    if "|" in grp:
        raise SpecError(f"group term '{term}' has more than two '|'; write (1 | p | g) with "
                        "a correlation id p")
    if not _COR_ID.match(cid):
        raise SpecError(f"correlation id '{cid}' in term '{term}' must be a plain name "
                        "(letters, digits, _), as in (1 | p | g)")
    if expr.replace(" ", "").startswith("0+") or expr.replace(" ", "") in ("0", "-1"):
        raise SpecError(f"term '{term}': a correlation id correlates a varying intercept "
                        f"(and the term's varying slopes with it); write (1 | {cid} | "
                        f"{grp or 'g'}) or (1 + x | {cid} | {grp or 'g'})")
    if "/" in grp:
        raise SpecError(f"term '{term}': a correlation id needs one grouping, not a nested "
                        f"one; write (1 | {cid} | {grp.replace('/', ':')}) for the inner term")
    return cid, grp


def _parse_group(term: str, inner: str) -> list[GroupTerm]:
    if "||" in inner:
        expr, _, grp = inner.partition("||")
        correlated = False
        if "|" in grp:
            raise SpecError(f"group term '{term}' has more than one '|'")
    else:
        expr, _, grp = inner.partition("|")
        correlated = True
    expr, grp = expr.strip(), grp.strip()
    if not expr:
        raise SpecError(f"group term '{term}' has nothing before '|'; write (1 | {grp or 'g'})")
    cor_id, grp = _cor_id(term, expr, grp) if correlated else (None, grp)
    if not grp:
        raise SpecError(f"group term '{term}' has no grouping factor after '|'")
    if "/" in grp:
        parts = [p.strip() for p in grp.split("/")]
        if any(not p for p in parts):
            raise SpecError(f"nested grouping '{grp}' in term '{term}' has an empty level")
        chain = []
        for i in range(len(parts)):
            chain.append(tuple(":".join(parts[: i + 1]).split(":")))
    else:
        chain = [tuple(p.strip() for p in grp.split(":"))]
    out = []
    for factors in chain:
        names = []
        for f in factors:
            name = _column_name(f)
            if name is None:
                raise SpecError(f"grouping factor '{f}' in term '{term}' must be a column name")
            names.append(name)
        design_terms(expr)  # validates the varying part (one-line error naming the token)
        out.append(GroupTerm(expr=expr, factors=tuple(names), correlated=correlated,
                             source=term, cor_id=cor_id))
    return out


def parse_formula(formula: str) -> ParsedFormula:
    """Parse a formula string (syntax only; see :func:`check_columns` for the data checks).
    Each text is parsed once per process: the stages that read a formula share the result
    (:class:`ParsedFormula` is immutable)."""
    if not isinstance(formula, str):
        return _parse_checked(formula)
    return _parse_cached(formula)


@functools.lru_cache(maxsize=512)
def _parse_cached(formula: str) -> ParsedFormula:
    return _parse_checked(formula)


# functools' cache interface on the public name: how often a formula text was really parsed
parse_formula.cache_info = _parse_cached.cache_info  # type: ignore[attr-defined]
parse_formula.cache_clear = _parse_cached.cache_clear  # type: ignore[attr-defined]


def _parse_checked(formula) -> ParsedFormula:
    if not isinstance(formula, str) or not formula.strip():
        raise SpecError("formula must be a non-empty string like 'y ~ x + (1 | g)'")
    if "\x00" in formula:  # a level may hold one (escaped in posterior.nc); a name may not
        raise SpecError("formula names a column holding a NUL character (\\x00), which "
                        "neither the sampler's parameter names nor NetCDF can hold; rename "
                        "the column")
    check_expression(formula, FORMULA, "")  # before any recursive parser sees it
    try:
        return _parse_formula(formula)
    except RecursionError:  # pragma: no cover - the limits come first
        raise SpecError("the formula nests too deeply") from None


def _parse_formula(formula: str) -> ParsedFormula:
    formula = " ".join(formula.split())
    _check_parens(formula)
    if formula.count("~") != 1:
        raise SpecError(f"formula '{formula}' must contain exactly one '~'")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not lhs:
        raise SpecError(f"formula '{formula}' has no response on the left of '~'")
    if not rhs:
        raise SpecError(f"formula '{formula}' has nothing on the right of '~'; use '~ 1'")

    # Response side: ``y`` or ``k | trials(n)``.
    trials = None
    if "|" in lhs:
        resp, _, add = (s.strip() for s in lhs.partition("|"))
        m = re.fullmatch(r"trials\(\s*([^()]+?)\s*\)", add)
        trials = _column_name(m.group(1)) if m else None
        if trials is None:
            raise SpecError(f"response term '{lhs}' not understood; expected 'k | trials(n)'")
    else:
        resp = lhs
    response = _column_name(resp)
    if response is None:
        raise SpecError(f"response '{resp}' must be a column name (quote other names with "
                        "backticks: `my outcome`)")
    resp = response

    fixed_parts: list[str] = []
    groups: list[GroupTerm] = []
    for sep, piece in split_top_level(rhs, "+-"):
        if not piece:
            if sep == "" and rhs.lstrip().startswith("-"):
                continue
            raise SpecError(f"empty term in formula '{formula}' (a dangling '{sep or '+'}')")
        if piece.startswith("(") and piece.endswith(")") and _outer_pair(piece):
            inner = piece[1:-1].strip()
            if "|" in inner:
                if sep == "-":
                    raise SpecError(f"group term '{piece}' cannot be subtracted")
                groups.extend(_parse_group(piece, inner))
                continue
        fixed_parts.append(f"{sep} {piece}" if sep else piece)
    fixed = " ".join(fixed_parts).strip()
    if fixed.startswith("+"):
        fixed = fixed[1:].strip()
    if not fixed:
        fixed = "1"
    elif fixed.startswith("-"):
        fixed = "1 " + fixed
    for g in groups:
        if "|" in g.expr:
            raise SpecError(f"group term '{g.source}' has more than one '|'")
    design_terms(fixed)  # validates every fixed-effect factor (never evaluated)
    seen: dict[str, str] = {}
    for g in groups:
        if g.name in seen:
            raise SpecError(
                f"grouping '{g.name}' appears in more than one term ('{seen[g.name]}' and "
                f"'{g.source}'); combine them as (1 + x | {g.name})"
            )
        seen[g.name] = g.source
    return ParsedFormula(formula=formula, response=resp, trials=trials, fixed=fixed,
                         groups=tuple(groups))


def parse_aux(aux: dict[str, str], fam, pf: ParsedFormula) -> dict[str, ParsedFormula]:
    """Parse ``{"phi": "~ 1 + (1|llm)"}`` (``[model.aux]``: distributional formulas of the
    family ``fam``'s positive auxiliary parameters) with the model formula's grammar."""
    out = {}
    for k, rhs in aux.items():
        if k not in fam.aux or k in fam.vector_aux or k not in POSITIVE_AUX:
            known = [a for a in fam.aux if a in POSITIVE_AUX and a not in fam.vector_aux]
            raise SpecError(f"[model.aux] {k}: family '{fam.name}' has no positive auxiliary "
                            f"parameter '{k}' (it has: {', '.join(known) or 'none'})")
        if not isinstance(rhs, str):
            raise SpecError(f"[model.aux] {k}: expected a formula string, e.g. \"~ 1 + (1|llm)\"")
        check_expression(rhs, FORMULA, f"[model.aux] {k}")
        text = rhs.strip()
        if not text.startswith("~"):
            raise SpecError(f"[model.aux] {k} = '{rhs}': expected a right-hand side starting "
                            "with '~', e.g. \"~ 1 + (1|llm)\"")
        try:
            apf = parse_formula(f"{pf.response} ~ {text[1:].strip()}")
        except SpecError as e:
            raise SpecError(f"[model.aux] {k}: {e}") from None
        for g in apf.groups:
            if g.cor_id is not None:
                raise SpecError(f"[model.aux] {k}: term '{g.source}': a correlation id "
                                "belongs to the terms of a joint model's parts; write (1|g)")
            if g.expr.replace(" ", "") != "1":
                raise SpecError(f"[model.aux] {k}: term '{g.source}' must be a varying "
                                "intercept (1|g)")
        out[k] = apf
    return out


def _outer_pair(piece: str) -> bool:
    """True if the first '(' of ``piece`` closes at its last character."""
    depth = 0
    for i, ch in enumerate(piece):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(piece) - 1
    return False


def check_columns(pf: ParsedFormula, columns) -> None:
    """Raise SpecError naming the term if the formula uses a column the data lack."""
    cols = set(columns)

    def need(name: str, term: str) -> None:
        if name not in cols:
            raise SpecError(f"unknown column '{name}' in term '{term}' (data columns: "
                            f"{', '.join(sorted(map(str, cols))[:20])})")

    need(pf.response, pf.response)
    if pf.trials:
        need(pf.trials, f"trials({pf.trials})")
    for _sep, piece in split_top_level(pf.fixed, "+-"):
        for name in term_columns(piece) if piece not in ("", "0", "1") else []:
            need(name, piece)
    for g in pf.groups:
        for name in term_columns(g.expr) + list(g.factors):
            need(name, g.source)
