"""Formula grammar: every syntax form, and the exact one-line messages for bad formulas."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from biasstats.errors import BiasstatsError, SpecError
from biasstats.model.build import prepare
from biasstats.model.formula import GroupTerm, parse_formula


def test_random_intercept():
    pf = parse_formula("y ~ x + (1 | g)")
    assert pf.response == "y" and pf.trials is None
    assert pf.fixed == "x"
    assert pf.groups == (GroupTerm("1", ("g",), True, "(1 | g)"),)
    assert pf.groups[0].name == "g"


def test_crossed_terms():
    pf = parse_formula("y ~ 1 + (1|a) + (1|b)")
    assert [g.name for g in pf.groups] == ["a", "b"]
    assert pf.fixed == "1"


def test_nested_expands():
    pf = parse_formula("y ~ (1|a/b)")
    assert [g.factors for g in pf.groups] == [("a",), ("a", "b")]
    assert [g.name for g in pf.groups] == ["a", "a:b"]
    assert pf.fixed == "1"
    pf3 = parse_formula("y ~ (1|a/b/c)")
    assert [g.name for g in pf3.groups] == ["a", "a:b", "a:b:c"]


def test_interaction_group():
    pf = parse_formula("y ~ (1|category:stereotype)")
    assert pf.groups[0].factors == ("category", "stereotype")
    assert pf.groups[0].name == "category:stereotype"


def test_varying_slopes_correlated_and_not():
    pf = parse_formula("y ~ x + (x|g)")
    assert pf.groups[0].expr == "x" and pf.groups[0].correlated
    pf2 = parse_formula("y ~ x + (1 + x || g)")
    assert pf2.groups[0].expr == "1 + x" and not pf2.groups[0].correlated


def test_fixed_part_goes_to_patsy_verbatim():
    pf = parse_formula("y ~ 0 + C(llm) * variant + np.log(z) + (1|g)")
    assert pf.fixed == "0 + C(llm) * variant + np.log(z)"
    assert pf.fixed_formula == "y ~ 0 + C(llm) * variant + np.log(z)"
    assert set(pf.columns()) == {"y", "llm", "variant", "z", "g"}
    pf2 = parse_formula("y ~ x - 1 + (1|g)")
    assert pf2.fixed == "x - 1"


def test_binomial_response():
    pf = parse_formula("k | trials(n) ~ x + (1|g)")
    assert pf.response == "k" and pf.trials == "n"
    assert pf.columns()[:2] == ["k", "n"]


def test_whitespace_normalised():
    assert parse_formula("y~x+(1|g)").formula == "y~x+(1|g)"
    assert parse_formula("y ~  x\n + (1|g)").formula == "y ~ x + (1|g)"


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ x + (1|g", "unbalanced parentheses in formula 'y ~ x + (1|g'"),
        ("y ~ x + 1|g)", "unbalanced parentheses in formula 'y ~ x + 1|g)'"),
        ("y x", "formula 'y x' must contain exactly one '~'"),
        ("~ x", "formula '~ x' has no response on the left of '~'"),
        ("y ~", "formula 'y ~' has nothing on the right of '~'; use '~ 1'"),
        ("y ~ (|g)", "group term '(|g)' has nothing before '|'; write (1 | g)"),
        ("y ~ (1|)", "group term '(1|)' has no grouping factor after '|'"),
        ("k | n ~ x", "response term 'k | n' not understood; expected 'k | trials(n)'"),
        ("y ~ x + (1|g) + (x|g)",
         "grouping 'g' appears in more than one term ('(1|g)' and '(x|g)'); "
         "combine them as (1 + x | g)"),
        ("y ~ x + - (1|g)", "empty term in formula 'y ~ x + - (1|g)' (a dangling '+')"),
    ],
)
def test_bad_syntax_messages(formula, message):
    with pytest.raises(SpecError) as e:
        parse_formula(formula)
    assert str(e.value) == message
    assert "\n" not in str(e.value)


@pytest.fixture
def df():
    rng = np.random.default_rng(0)
    n = 40
    return pl.DataFrame({
        "y": rng.integers(0, 2, n).astype(float),
        "x": rng.normal(size=n),
        "c": np.ones(n),
        "g": [f"g{i % 4}" for i in range(n)],
        "one": ["only"] * n,
    })


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ x + (1|llm)",
         "unknown column 'llm' in term '(1|llm)' (data columns: c, g, one, x, y)"),
        ("y ~ zz + (1|g)", "unknown column 'zz' in term 'zz' (data columns: c, g, one, x, y)"),
        ("yy ~ x", "unknown column 'yy' in term 'yy' (data columns: c, g, one, x, y)"),
        ("y ~ x + (1|one)",
         "grouping factor 'one' in term '(1|one)' has only one level ('only'); "
         "a group term needs at least 2"),
        ("y ~ x + (c|g)",
         "slope 'c' in term '(c|g)' is constant in the data; drop it or use (1 | g)"),
        ("y ~ c + (1|g)", "fixed-effect column 'c' is constant in the data; drop it"),
    ],
)
def test_bad_formula_against_data(df, formula, message):
    with pytest.raises(BiasstatsError) as e:
        prepare(formula, df)
    assert str(e.value) == message


def test_family_response_mismatch(df):
    with pytest.raises(SpecError, match=r"^response 'x' must hold 0/1 values for family "
                                        r"'bernoulli' \(40 of 40 rows do not\)$"):
        prepare("x ~ 1 + (1|g)", df)
    with pytest.raises(SpecError, match="needs family 'binomial'"):
        prepare("y | trials(c) ~ 1", df)
    with pytest.raises(SpecError, match="^unknown family 'zeta'"):
        prepare("y ~ 1", df, family="zeta")


def test_interaction_levels_are_observed_combinations_only():
    d = pl.DataFrame({
        "y": [0.0, 1, 1, 0, 1, 0],
        "a": ["a1", "a1", "a2", "a2", "a3", "a3"],
        "b": ["b1", "b2", "b1", "b1", "b2", "b2"],
    })
    spec = prepare("y ~ 1 + (1|a:b)", d)
    assert spec.groups[0].levels == ["a1:b1", "a1:b2", "a2:b1", "a3:b2"]  # not the 3x2 cross


def test_missing_rows_dropped_and_pandas_accepted(df):
    pdf = df.to_pandas()
    pdf.loc[0, "y"] = np.nan
    spec = prepare("y ~ x + (1|g)", pdf)
    assert spec.n_dropped == 1 and spec.n_rows == 39
