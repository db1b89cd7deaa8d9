"""Formula terms without Python ``eval``.

patsy turns a formula string into *terms* (its term algebra: ``+ - * : / **``, ``0``/``1``/
``-1``) without evaluating anything; it is only when a design matrix is built that its default
factor class, ``EvalFactor``, hands each factor's text to Python ``eval``. A shared spec must
never run code, so biasstats replaces every factor by a :class:`SafeFactor`: the factor's text
is parsed with :mod:`ast` (never evaluated), checked against a fixed whitelist, and computed by
a small interpreter over the data columns. The design matrices are built by patsy from these
factors (same coding, same column names, same ``DesignInfo`` for new data as before).

What a factor may contain:

* column names; a name that is not a Python identifier is quoted with backticks in the
  formula (`` `reply length` ``), which becomes ``Q("reply length")``;
* numbers, and ``+ - * / ** //`` and unary minus inside ``I(...)`` or a function's argument;
* the functions ``C(x)``, ``C(x, Treatment('ref'))`` (also ``Treatment(reference='ref')``,
  ``Sum``), ``I(...)``, ``Q('name')``, ``log``, ``log1p``, ``log2``, ``log10``, ``exp``,
  ``sqrt``, ``abs`` (also spelled ``np.log`` etc.) and the stateful transforms ``center(x)``,
  ``scale(x)`` (= ``standardize``; R's ``scale``: mean 0, SD 1 with the n - 1 divisor) and
  ``poly(x, k)`` (R's orthogonal polynomials). Stateful transforms remember their centre,
  scale or polynomial coefficients from the fitted data, so new data are coded the same way.

Anything else (attribute access, subscripts, other calls, lambdas, comparisons, strings outside
``Q``/``Treatment``) is a one-line :class:`~biasstats.errors.SpecError` naming the token.
"""

from __future__ import annotations

import ast
import json
import re
from functools import lru_cache

import numpy as np

from biasstats.errors import SpecError, first_line

__all__ = ["SafeFactor", "design_terms", "term_columns", "has_stateful", "quote_backticks",
           "ALLOWED_FUNCTIONS", "poly_coefs", "poly_apply"]

_MATH = {"log": np.log, "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "exp": np.exp,
         "sqrt": np.sqrt, "abs": np.abs}
_STATEFUL = ("center", "scale", "standardize", "poly")
_CONTRASTS = ("Treatment", "Sum")
ALLOWED_FUNCTIONS = ("C", "I", "Q", *_MATH, *_STATEFUL)
_NUMPY_ALIASES = ("np", "numpy")
_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
           ast.Pow: np.power, ast.FloorDiv: np.floor_divide}
_ALLOWED_TEXT = ("column names, numbers, arithmetic inside I(), and the functions "
                 + ", ".join(ALLOWED_FUNCTIONS))


# ----------------------------------------------------------------------------- backticks
_BACKTICK = re.compile(r"`([^`]*)`")
_Q_CALL = re.compile(r'Q\(("(?:[^"\\]|\\.)*")\)')


def quote_backticks(text: str) -> str:
    """```a b``` → ``Q("a b")`` (the quoting patsy's tokenizer and our interpreter read)."""
    if text.count("`") % 2:
        raise SpecError(f"unbalanced backtick in formula part '{text}'")

    def repl(m: re.Match) -> str:
        name = m.group(1)
        if not name:
            raise SpecError(f"empty backtick-quoted name in formula part '{text}'")
        return f"Q({json.dumps(name)})"

    return _BACKTICK.sub(repl, text)


# ----------------------------------------------------------------------------- validation
def _func_name(node: ast.expr) -> str | None:
    """The whitelisted name a call refers to (``np.log`` → ``log``), else None."""
    if isinstance(node, ast.Name):
        return node.id if node.id in ALLOWED_FUNCTIONS or node.id in _CONTRASTS else None
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in _NUMPY_ALIASES and node.attr in _MATH):
        return node.attr
    return None


def _not_allowed(token: str, code: str) -> SpecError:
    return SpecError(f"'{token}' in formula term '{code}' is not allowed; a formula may use "
                     f"{_ALLOWED_TEXT}")


def _string_arg(node: ast.expr, what: str, code: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise SpecError(f"{what} in formula term '{code}' must be a quoted string, "
                    f"got '{ast.unparse(node)}'")


def _int_arg(node: ast.expr, what: str, code: str) -> int:
    if (isinstance(node, ast.Constant) and isinstance(node.value, int)
            and not isinstance(node.value, bool) and 1 <= node.value <= 10):
        return node.value
    raise SpecError(f"{what} in formula term '{code}' must be a whole number from 1 to 10, "
                    f"got '{ast.unparse(node)}'")


def _check(node: ast.expr, code: str, *, in_stateful: bool = False) -> None:
    """Raise SpecError unless ``node`` is inside the whitelist (never evaluates anything)."""
    if isinstance(node, ast.Name):
        return  # a column
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return
        raise _not_allowed(ast.unparse(node), code)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check(node.operand, code, in_stateful=in_stateful)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left, code, in_stateful=in_stateful)
        _check(node.right, code, in_stateful=in_stateful)
        return
    if not isinstance(node, ast.Call):
        raise _not_allowed(ast.unparse(node), code)
    name = _func_name(node.func)
    if name is None or name in _CONTRASTS:
        raise _not_allowed(ast.unparse(node.func), code)
    args, kws = node.args, {k.arg: k.value for k in node.keywords}
    if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in args):
        raise _not_allowed("*", code)

    def arity(lo: int, hi: int, allowed_kw: tuple[str, ...] = ()) -> None:
        bad = [k for k in kws if k not in allowed_kw]
        if bad:
            raise _not_allowed(f"{bad[0]}=", code)
        if not lo <= len(args) + len(kws) <= hi or not args:
            raise SpecError(f"function '{name}' in formula term '{code}' takes "
                            f"{lo if lo == hi else f'{lo} to {hi}'} argument(s)")

    if name == "Q":
        arity(1, 1)
        _string_arg(args[0], "the argument of Q()", code)
        return
    if name == "C":
        arity(1, 2, ("contrast",))
        if not isinstance(args[0], (ast.Name, ast.Call)):
            raise SpecError(f"C() in formula term '{code}' takes a column, "
                            f"got '{ast.unparse(args[0])}'")
        _check(args[0], code, in_stateful=in_stateful)
        contrast = args[1] if len(args) > 1 else kws.get("contrast")
        if contrast is not None:
            _contrast(contrast, code)
        return
    if name in _STATEFUL:
        if in_stateful:
            raise SpecError(f"stateful transform '{name}' in formula term '{code}' cannot be "
                            "nested inside another one (center, scale, standardize, poly)")
        if name == "poly":
            arity(2, 2, ("degree",))
            _int_arg(args[1] if len(args) > 1 else kws["degree"], "the degree of poly()", code)
        else:
            arity(1, 1)
        _check(args[0], code, in_stateful=True)
        return
    arity(1, 1)  # I and the math functions
    _check(args[0], code, in_stateful=in_stateful)


def _contrast(node: ast.expr, code: str):
    """``Treatment``, ``Treatment('a')``, ``Treatment(reference='a')``, ``Sum`` → a patsy
    contrast object (built here, from checked constants; nothing is evaluated)."""
    # heavy libraries load on first use, not on import
    import patsy

    if isinstance(node, ast.Name) and node.id in _CONTRASTS:
        return getattr(patsy, node.id)()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id in _CONTRASTS:
        key = "reference" if node.func.id == "Treatment" else "omit"
        kws = {k.arg: k.value for k in node.keywords}
        if set(kws) - {key} or len(node.args) + len(kws) > 1:
            raise SpecError(f"contrast '{ast.unparse(node)}' in formula term '{code}' takes "
                            f"one argument, the {key} level")
        if not node.args and not kws:
            return getattr(patsy, node.func.id)()
        ref = node.args[0] if node.args else kws[key]
        if isinstance(ref, ast.Constant) and isinstance(ref.value, (str, int, float)) \
                and not isinstance(ref.value, bool):
            return getattr(patsy, node.func.id)(ref.value)
        raise SpecError(f"the {key} level in '{ast.unparse(node)}' (formula term '{code}') "
                        "must be a quoted level name")
    raise SpecError(f"contrast '{ast.unparse(node)}' in formula term '{code}' is not "
                    "allowed; use Treatment('level') or Sum")


@lru_cache(maxsize=1024)
def _parse_factor(code: str) -> ast.Expression:
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError as e:
        raise SpecError(f"formula term '{code}' is not understood: {e.msg}") from None
    _check(tree.body, code)
    return tree


# ----------------------------------------------------------------------------- stateful state
def poly_coefs(x: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """R's ``poly(x, degree)`` coefficients (alpha, norm2) by the three-term recurrence
    (Stieltjes): the same monic orthogonal polynomials R's QR gives."""
    x = np.asarray(x, dtype=float)
    if np.unique(x).size <= degree:
        raise SpecError(f"poly(…, {degree}) needs more than {degree} distinct values, "
                        f"the data have {np.unique(x).size}")
    alpha = np.zeros(degree)
    norm2 = [1.0, float(x.size)]
    p_prev, p = np.zeros_like(x), np.ones_like(x)
    for k in range(degree):
        alpha[k] = float(np.sum(x * p * p) / norm2[-1])
        p_next = (x - alpha[k]) * p - (norm2[-1] / norm2[-2]) * p_prev if k else x - alpha[k]
        p_prev, p = p, p_next
        norm2.append(float(np.sum(p * p)))
    return alpha, np.asarray(norm2)


def poly_apply(x: np.ndarray, alpha: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """Orthonormal polynomial columns of ``x`` (n × degree) from fitted (alpha, norm2)."""
    x = np.asarray(x, dtype=float)
    degree = len(alpha)
    Z = np.ones((x.size, degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    return (Z / np.sqrt(norm2[1:]))[:, 1:]


def _stateful_nodes(tree: ast.Expression) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and _func_name(n.func) in _STATEFUL]


# ----------------------------------------------------------------------------- the factor
class SafeFactor:
    """A patsy factor computed by interpreting a whitelisted expression (no ``eval``).

    Implements patsy's factor protocol (``name``, ``memorize_passes_needed``,
    ``memorize_chunk``, ``memorize_finish``, ``eval``).
    """

    def __init__(self, code: str, origin=None):
        self.code = code
        self.origin = origin
        self.tree = _parse_factor(code)

    def name(self) -> str:
        """The factor as the user wrote it (``Q("a b")`` shown as `` `a b` ``): patsy names the
        design columns, and so the priors' ``b_<column>`` keys, from it."""
        return _Q_CALL.sub(lambda m: f"`{json.loads(m.group(1))}`", self.code)

    def __repr__(self) -> str:
        return f"SafeFactor({self.code!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, SafeFactor) and self.code == other.code

    def __hash__(self) -> int:
        return hash((SafeFactor, self.code))

    # -- patsy's memorisation protocol (stateful transforms)
    def memorize_passes_needed(self, state: dict, eval_env) -> int:
        nodes = _stateful_nodes(self.tree)
        state["nodes"] = {id(n): n for n in nodes}
        state["chunks"] = {id(n): [] for n in nodes}
        state["params"] = {}
        return 1 if nodes else 0

    def memorize_chunk(self, state: dict, which_pass: int, data) -> None:
        for key, node in state["nodes"].items():
            state["chunks"][key].append(self._numeric(node.args[0], data, state))

    def memorize_finish(self, state: dict, which_pass: int) -> None:
        for key, node in state["nodes"].items():
            x = np.concatenate(state["chunks"][key])
            name = _func_name(node.func)
            if name == "poly":
                deg = node.args[1] if len(node.args) > 1 else node.keywords[0].value
                state["params"][key] = poly_coefs(x, deg.value)
            elif name == "center":
                state["params"][key] = (float(np.mean(x)), 1.0)
            else:
                sd = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
                if not sd > 0:
                    raise SpecError(f"{name}() in formula term '{self.code}' needs a column "
                                    "that varies in the data")
                state["params"][key] = (float(np.mean(x)), sd)
        state["chunks"] = {}

    def eval(self, state: dict, data):
        return self._value(self.tree.body, data, state)

    # -- the interpreter
    def _column(self, name: str, data):
        try:
            return data[name]
        except (KeyError, IndexError, ValueError):
            raise SpecError(f"unknown column '{name}' in formula term '{self.code}'") from None

    def _numeric(self, node: ast.expr, data, state) -> np.ndarray:
        value = self._value(node, data, state)
        arr = None if hasattr(value, "contrast") else np.asarray(value)
        if arr is None or arr.dtype.kind not in "biuf":
            raise SpecError(f"'{ast.unparse(node)}' in formula term '{self.code}' is not "
                            "numeric; arithmetic and transforms need a numeric column")
        return arr.astype(float)

    def _value(self, node: ast.expr, data, state):
        if isinstance(node, ast.Name):
            return self._column(node.id, data)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.UnaryOp):
            x = self._numeric(node.operand, data, state)
            return -x if isinstance(node.op, ast.USub) else x
        if isinstance(node, ast.BinOp):
            a = self._numeric(node.left, data, state)
            b = self._numeric(node.right, data, state)
            with np.errstate(all="ignore"):
                return self._finite(_BINOPS[type(node.op)](a, b), node, a, b)
        name = _func_name(node.func)
        if name == "Q":
            return self._column(node.args[0].value, data)
        if name == "I":
            return self._value(node.args[0], data, state)
        if name == "C":
            # heavy libraries load on first use, not on import
            from patsy.categorical import C

            contrast = node.args[1] if len(node.args) > 1 else (
                node.keywords[0].value if node.keywords else None)
            values = self._value(node.args[0], data, state)
            return C(values, _contrast(contrast, self.code) if contrast is not None
                           else None)
        x = self._numeric(node.args[0], data, state)
        if name in _MATH:
            with np.errstate(all="ignore"):
                return self._finite(_MATH[name](x), node, x)
        params = state["params"][id(node)]
        if name == "poly":
            return poly_apply(x, *params)
        centre, sd = params
        return (x - centre) / sd

    def _finite(self, out: np.ndarray, node: ast.expr, *inputs: np.ndarray) -> np.ndarray:
        ok_in = np.ones(np.shape(out), dtype=bool)
        for x in inputs:
            ok_in &= np.isfinite(x)
        bad = int(np.sum(ok_in & ~np.isfinite(out)))
        if bad:
            raise SpecError(f"'{ast.unparse(node)}' in formula term '{self.code}' is not finite "
                            f"in {bad} row(s) (e.g. log or sqrt of values <= 0, division by 0)")
        return out


# ----------------------------------------------------------------------------- terms
@lru_cache(maxsize=512)
def design_terms(expr: str) -> tuple:
    """The patsy terms of a right-hand side (``"1 + C(x) * z"``) with :class:`SafeFactor`
    factors: patsy's term algebra, validated factor by factor, never evaluated."""
    # heavy libraries load on first use, not on import
    from patsy import ModelDesc, PatsyError, Term

    text = quote_backticks(expr)
    try:
        desc = ModelDesc.from_formula(f"~ {text}")
    except PatsyError as e:
        raise SpecError(f"formula part '{expr}' is not understood: {first_line(e)}") from None
    terms = []
    for term in desc.rhs_termlist:
        terms.append(Term([SafeFactor(f.code) for f in term.factors]))
    return tuple(terms)


def term_columns(expr: str) -> list[str]:
    """Data columns a right-hand side references, in order of appearance."""
    out: list[str] = []
    for term in design_terms(expr):
        for f in term.factors:
            for node in ast.walk(f.tree):
                name = None
                if isinstance(node, ast.Name) and node.id not in _NUMPY_ALIASES \
                        and not _is_func(node, f.tree):
                    name = node.id
                elif isinstance(node, ast.Call) and _func_name(node.func) == "Q":
                    name = node.args[0].value
                if name is not None and name not in out:
                    out.append(name)
    return out


def _is_func(name: ast.Name, tree: ast.Expression) -> bool:
    """True if ``name`` is the function (or contrast) position of a call in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.func is name:
            return True
        if isinstance(node, ast.Call) and _func_name(node.func) == "C":
            contrast = node.args[1:] + [k.value for k in node.keywords]
            if any(c is name or (isinstance(c, ast.Call) and c.func is name) for c in contrast):
                return True
    return False


def has_stateful(expr: str) -> str | None:
    """The first stateful transform (center, scale, standardize, poly) used, else None."""
    for term in design_terms(expr):
        for f in term.factors:
            nodes = _stateful_nodes(f.tree)
            if nodes:
                return _func_name(nodes[0].func)
    return None


def build_design(expr: str, data, what: str):
    """patsy design matrix (DataFrame, with ``.design_info``) of a right-hand side."""
    # heavy libraries load on first use, not on import
    import patsy

    try:
        return patsy.dmatrix(patsy.ModelDesc([], list(design_terms(expr))), data,
                             return_type="dataframe", NA_action="raise")
    except patsy.PatsyError as e:
        raise SpecError(f"{what} not understood: {first_line(e)}") from None
