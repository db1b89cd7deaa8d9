"""Priors: a small, safe prior-string grammar and data-scaled defaults.

A prior is written as ``Name(arg, ..., key=value)`` with numeric arguments only, e.g.
``"Normal(0, 2.5)"``, ``"HalfNormal(1)"``, ``"Exponential(scale=0.5)"``, ``"LKJ(2)"``.
Strings are parsed with :mod:`ast` (never evaluated); anything but a call of a known
distribution with numeric literals is refused with a one-line SpecError.

Prior keys (as in ``fit(..., priors={...})`` and ``Fit.priors``):

``Intercept``                   the fixed intercept
``b``                           every fixed slope;  ``b_<column>`` one slope (patsy column name)
``sd``                          every group SD;     ``sd_<group>`` one grouping (``sd_llm``,
                                ``sd_category:stereotype``); ``sd_<group>__<coef>`` one coef
``cor``/``cor_<group>``         LKJ prior on a correlated varying-slope term
family auxiliaries             ``sigma``, ``nu``, ``alpha``, ``phi``, ``cutpoints``

Defaults follow the rstanarm / Bambi "weakly informative, scaled to the data" idea: on a
logit/log link the intercept is Normal(0, 2.5) and slopes Normal(0, 2.5 / sd(x)); on an identity
link location and scale come from the response (mean(y), 2.5 sd(y)); group SDs are
HalfNormal(1) on the link scale (HalfNormal(sd(y)) on identity links), divided by sd(x) for
varying slopes.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field

from biasstats.errors import SpecError
from biasstats.limits import PRIOR, check_expression

__all__ = ["Prior", "parse_prior", "DISTRIBUTIONS"]

# name -> (pymc class name, positional parameter names, positive-only support?)
DISTRIBUTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Normal": ("Normal", ("mu", "sigma")),
    "StudentT": ("StudentT", ("nu", "mu", "sigma")),
    "Cauchy": ("Cauchy", ("alpha", "beta")),
    "Laplace": ("Laplace", ("mu", "b")),
    "Logistic": ("Logistic", ("mu", "s")),
    "Uniform": ("Uniform", ("lower", "upper")),
    "HalfNormal": ("HalfNormal", ("sigma",)),
    "HalfStudentT": ("HalfStudentT", ("nu", "sigma")),
    "HalfCauchy": ("HalfCauchy", ("beta",)),
    "Exponential": ("Exponential", ("lam",)),
    "Gamma": ("Gamma", ("alpha", "beta")),
    "InverseGamma": ("InverseGamma", ("alpha", "beta")),
    "LogNormal": ("LogNormal", ("mu", "sigma")),
    "Beta": ("Beta", ("alpha", "beta")),
    "LKJ": ("LKJ", ("eta",)),
}
_ALLOWED_KW = {"Exponential": {"lam", "scale"}}
# distributions accepted as priors of scales (group SDs, sigma, nu, alpha, phi)
POSITIVE = {"HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential", "Gamma", "InverseGamma",
            "LogNormal", "Uniform"}


@dataclass(frozen=True)
class Prior:
    dist: str
    params: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        pos = DISTRIBUTIONS[self.dist][1]
        parts = []
        for k, v in self.params.items():
            txt = f"{v:.4g}"
            parts.append(txt if k in pos else f"{k}={txt}")
        return f"{self.dist}({', '.join(parts)})"

    __repr__ = __str__

    def scale(self) -> float:
        """A rough scale (sd-like) of the prior, used by the centring rule."""
        p = self.params
        if self.dist in ("Normal", "HalfNormal", "LogNormal", "StudentT", "HalfStudentT"):
            return float(p.get("sigma", 1.0))
        if self.dist == "Exponential":
            return float(p["scale"]) if "scale" in p else 1.0 / float(p["lam"])
        if self.dist == "Gamma":
            return math.sqrt(p["alpha"]) / p["beta"]
        return 1.0

    def create(self, name: str, **kw):
        """Create the PyMC random variable ``name`` (inside a model context)."""
        # heavy libraries load on first use, not on import
        import pymc as pm

        if self.dist == "LKJ":
            raise SpecError(f"prior '{self}' for '{name}' is only valid for a correlation (cor_)")
        cls = getattr(pm, DISTRIBUTIONS[self.dist][0])
        return cls(name, **self.params, **kw)

    def dist_(self, **kw):
        # heavy libraries load on first use, not on import
        import pymc as pm

        cls = getattr(pm, DISTRIBUTIONS[self.dist][0])
        return cls.dist(**self.params, **kw)


def _number(node: ast.AST, text: str, key: str) -> float:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _number(node.operand, text, key)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(
        node.value, bool
    ):
        try:
            value = float(node.value)
        except OverflowError:  # an integer literal beyond float range
            value = math.inf
        if not math.isfinite(value):
            raise SpecError(f"prior '{text}' for '{key}': arguments must be finite numbers")
        return value
    if isinstance(node, ast.Name) and node.id.lower() in ("inf", "infinity", "nan"):
        raise SpecError(f"prior '{text}' for '{key}': arguments must be finite numbers")
    raise SpecError(f"prior '{text}' for '{key}': arguments must be numbers")


def parse_prior(text: str | Prior, key: str = "prior") -> Prior:
    """Parse ``"Normal(0, 2.5)"`` into a :class:`Prior` (no eval)."""
    if isinstance(text, Prior):
        return text
    if not isinstance(text, str):
        raise SpecError(f"prior for '{key}' must be a string like 'Normal(0, 1)', got {text!r}")
    check_expression(text, PRIOR, f"prior for '{key}'")  # before Python's recursive parser
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise SpecError(f"prior '{text}' for '{key}' is not of the form Name(number, ...)") from None
    node = tree.body
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise SpecError(f"prior '{text}' for '{key}' is not of the form Name(number, ...)")
    name = node.func.id
    if name not in DISTRIBUTIONS:
        raise SpecError(f"prior '{text}' for '{key}': unknown distribution '{name}'; "
                        f"use one of {', '.join(DISTRIBUTIONS)}")
    pos = DISTRIBUTIONS[name][1]
    if len(node.args) > len(pos):
        raise SpecError(f"prior '{text}' for '{key}': {name} takes at most {len(pos)} "
                        f"arguments ({', '.join(pos)})")
    params: dict[str, float] = {}
    for pname, arg in zip(pos, node.args, strict=False):
        params[pname] = _number(arg, text, key)
    allowed = set(pos) | _ALLOWED_KW.get(name, set())
    for kw in node.keywords:
        if kw.arg not in allowed:
            raise SpecError(f"prior '{text}' for '{key}': {name} has no parameter '{kw.arg}'")
        params[kw.arg] = _number(kw.value, text, key)
    if name == "Exponential" and "lam" in params and "scale" in params:
        raise SpecError(f"prior '{text}' for '{key}': give either lam or scale, not both")
    missing = [p for p in pos if p not in params and not (name == "Exponential" and "scale" in
                                                          params)]
    defaults = {"Normal": {"mu": 0.0}, "StudentT": {"mu": 0.0}, "Laplace": {"mu": 0.0},
                "Logistic": {"mu": 0.0}, "Cauchy": {"alpha": 0.0}, "LogNormal": {"mu": 0.0}}
    for p in list(missing):
        if p in defaults.get(name, {}):
            params = {p: defaults[name][p], **params}
            missing.remove(p)
    if missing:
        raise SpecError(f"prior '{text}' for '{key}': missing {', '.join(missing)}")
    for p in ("sigma", "beta", "lam", "scale", "nu", "alpha", "eta", "b", "s"):
        if p in params and params[p] <= 0 and not (name in ("Cauchy",) and p == "alpha"):
            raise SpecError(f"prior '{text}' for '{key}': {p} must be positive")
    if name == "Uniform" and not params["lower"] < params["upper"]:
        raise SpecError(f"prior '{text}' for '{key}': lower must be below upper")
    # keep positional order stable for printing
    ordered = {p: params[p] for p in pos if p in params}
    ordered.update({k: v for k, v in params.items() if k not in ordered})
    return Prior(name, ordered)


def fmt(x: float) -> str:
    return f"{x:.3g}"
