"""Property tests of the formula parser (hypothesis): a formula string is data.

Random well-formed formulas over known columns parse and build a design; random text of any
kind either parses or raises a one-line SpecError — never another exception, and never runs
code (a canary builtin records any call)."""

from __future__ import annotations

import builtins

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biasstats.errors import SpecError
from biasstats.model.build import prepare
from biasstats.model.formula import parse_formula

COLS = ["x", "z", "g", "h"]
NUMERIC = ["x", "z"]
FACTORS = ["g", "h"]

rng = np.random.default_rng(0)
DATA = pl.DataFrame({
    "y": rng.normal(size=60), "x": rng.normal(size=60) + 3, "z": rng.gamma(2.0, size=60) + 0.5,
    "g": [f"g{i % 3}" for i in range(60)], "h": [f"h{i % 4}" for i in range(60)],
})

numeric_atom = st.one_of(
    st.sampled_from(NUMERIC),
    st.sampled_from(NUMERIC).map(lambda c: f"log({c})"),
    st.sampled_from(NUMERIC).map(lambda c: f"scale({c})"),
    st.sampled_from(NUMERIC).map(lambda c: f"I({c} ** 2)"),
    st.tuples(st.sampled_from(NUMERIC), st.integers(1, 3)).map(lambda t: f"poly({t[0]}, {t[1]})"),
)
factor_atom = st.one_of(
    st.sampled_from(FACTORS),
    st.sampled_from(FACTORS).map(lambda c: f"C({c})"),
    st.just("C(g, Treatment('g1'))"),
)
term = st.one_of(
    numeric_atom, factor_atom,
    st.tuples(factor_atom, numeric_atom).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(factor_atom, numeric_atom).map(lambda t: f"{t[0]} * {t[1]}"),
)
group = st.one_of(
    st.sampled_from(FACTORS).map(lambda g: f"(1|{g})"),
    st.tuples(st.sampled_from(NUMERIC), st.sampled_from(FACTORS))
      .map(lambda t: f"({t[0]} || {t[1]})"),
)


@st.composite
def formulas(draw) -> str:
    fixed = draw(st.lists(term, min_size=0, max_size=3))
    groups = draw(st.lists(group, min_size=0, max_size=2, unique_by=lambda s: s.split("|")[-1].strip(" )")))
    intercept = draw(st.sampled_from(["1", "0", ""]))
    rhs = [intercept] if intercept else []
    rhs += fixed + groups
    return "y ~ " + (" + ".join(rhs) if rhs else "1")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formulas())
def test_random_valid_formulas_parse_and_build(formula):
    pf = parse_formula(formula)
    assert set(pf.columns()) <= {"y", *COLS}
    try:
        spec = prepare(formula, DATA, family="gaussian")
    except SpecError as e:  # data-dependent refusals (a constant or duplicated column) only
        msg = str(e)
        assert "\n" not in msg and ("constant" in msg or "appears in more than one" in msg
                                    or "not understood" in msg), msg
        return
    assert spec.X.shape[0] == DATA.height and np.isfinite(spec.X).all()


ALPHABET = st.sampled_from(list("yxgz ~+-*:/|()[]{}'\"`,.=_!@#$%^&0123456789")
                           + ["__import__", "os", "system", "open", "eval", "lambda", "C",
                              "I", "log", "poly", "Treatment", "np.", "exec", "getattr"])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, min_size=1, max_size=30).map("".join))
def test_random_text_is_a_formula_or_one_line_error(text):
    calls = []
    saved = {name: getattr(builtins, name) for name in ("__import__", "eval", "exec", "open")}

    def canary(name):
        def f(*a, **k):
            calls.append(name)
            return saved[name](*a, **k)
        return f

    try:
        for name in ("eval", "exec", "open"):
            setattr(builtins, name, canary(name))
        try:
            parse_formula(text)
        except SpecError as e:
            assert "\n" not in str(e) and str(e)
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)
    assert calls == [], (text, calls)
