"""``[effects.derived.<name>]`` expressions are data: parsed against a whitelist after the size
limits, never run; every refusal is one line naming ``[effects.derived.<name>] expr`` and the
token, raised when the spec loads (issue 21, items 3 and 6)."""

from __future__ import annotations

import builtins

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biasstats.errors import SpecError
from biasstats.registry.scores import SCORES, Score, expand_score, register_score
from biasstats.spec import load_spec
from biasstats.spec.derived import Bin, Fn, Num, Prob, derived_expression, parse_expr

ALLOWED = "(allowed: numbers, + - * /, parentheses, P, E, min, max, log, exp, abs)"
CATEGORICAL = """
[data]
source = "d.csv"
outcome = "answer"
outcome_type = "label"
[model]
formula = "answer ~ cond + (1|q)"
family = "{family}"
[effects.derived.s]
{body}
"""
PARSED = """
[data]
source = "d.csv"
outcome = "answer"
[data.parse.answer]
kind = "regex"
text = "reply"
pattern = "\\\\(([A-C])\\\\)"
map = {{ A = "biased", B = "anti", C = "unknown" }}
[model]
formula = "answer ~ cond + (1|q)"
family = "categorical"
[effects.derived.s]
{body}
"""


def _load(tmp_path, body: str, family: str = "categorical", template: str = CATEGORICAL):
    path = tmp_path / "s.toml"
    path.write_text(template.format(family=family, body=body), encoding="utf-8")
    return load_spec(path), path


def _refused(tmp_path, body: str, **kw) -> str:
    with pytest.raises(SpecError) as e:
        _load(tmp_path, body, **kw)
    return str(e.value)


@pytest.mark.parametrize(("expr", "message"), [
    ("P('a').real", f"attribute access \"P('a').real\" is not allowed {ALLOWED}"),
    ("__import__('os').system('x')", "attribute access \"__import__('os').system\" is not "
                                    f"allowed {ALLOWED}"),
    ("__import__('os')", "unknown function '__import__' (known: P, E, min, max, log, exp, "
                         "abs)"),
    ("open('f')", "unknown function 'open' (known: P, E, min, max, log, exp, abs)"),
    ("(lambda: 1)()", f"lambda 'lambda: 1' is not allowed {ALLOWED}"),
    ("P('a')[0]", f"subscript \"P('a')[0]\" is not allowed {ALLOWED}"),
    ("f'{P()}'", f"f-string \"f'{{P()}}'\" is not allowed {ALLOWED}"),
    ("2 ** P('a')", f"operator \"2 ** P('a')\" is not allowed {ALLOWED}"),
    ("[P('a')]", f"construct \"[P('a')]\" is not allowed {ALLOWED}"),
    ("x + 1", "unknown name 'x' (an expression holds numbers and calls of P, E, min, max, log, "
              "exp, abs)"),
    ("1e999", "number '1e999' is not finite"),
    ("log(1, 2)", "log() takes 1 argument, got 2 in 'log(1, 2)'"),
    ("P('a'", "not a valid expression ('(' was never closed, at column 2)"),
    ("(" * 17 + "1" + ")" * 17, "the expression nests 17 levels deep (brackets and prefix "
                                "signs), above the limit of 16"),
    ("-" * 20 + "1", "the expression nests 20 levels deep (brackets and prefix signs), above "
                     "the limit of 16"),
    ("1" + " + 1" * 200, "the expression has 201 operands, above the limit of 200"),
])
def test_grammar_refusals_name_the_key_and_the_token(tmp_path, expr, message):
    body = 'expr = """' + expr + '"""'  # a TOML basic string: quotes of both kinds inside
    assert _refused(tmp_path, body) == f"{tmp_path / 's.toml'}: [effects.derived.s] expr: {message}"


def test_an_expression_too_long_is_refused_before_any_parser():
    with pytest.raises(SpecError, match=r"expr: the expression is 2,001 characters long, above "
                                        r"the limit of 2,000"):
        parse_expr("1" * 2001, "[effects.derived.s] expr")


@pytest.mark.parametrize(("body", "message"), [
    ('expr = "P(\'biased\', llm=\'a\')"', "[effects.derived.s] expr: 'llm' is not a factor of "
                                          "the model formula (its factors: cond, q)"),
    ('expr = "P(\'biased\', cond=\'a\')"\nwithin = "cond"',
     "[effects.derived.s] expr: 'cond=' names a factor of within (cond); a level is taken of a "
     "factor inside the stratum"),
    ('expr = "P(\'biased\')"\nwithin = "cond:llm"', "[effects.derived.s] within: 'llm' is not a "
                                                    "factor of the model formula (its factors: "
                                                    "cond, q)"),
    ('expr = "P()"', "[effects.derived.s] expr: P() is the probability of a 1 (a 0/1 outcome); "
                     "family 'categorical' needs a category, P('<category>')"),
    ('expr = "E()"', "[effects.derived.s] expr: E() needs one expected value per row; family "
                     "'categorical' gives one probability per category (use P('<category>'))"),
    ('score = "qa_bias"', "[effects.derived.s] score: unknown score 'qa_bias' (known: "
                          "adverse_impact_ratio, demographic_parity_difference, "
                          "qa_bias_ambiguous, qa_bias_disambiguated)"),
    ('score = "adverse_impact_ratio"', "[effects.derived.s] over: score adverse_impact_ratio "
                                       "compares the levels of a factor: name it, e.g. over = "
                                       "\"group\""),
    ('score = "qa_bias_ambiguous"\ncategories = { stereotyped = "x" }',
     "[effects.derived.s] categories: 'stereotyped' is not a category role of score "
     "qa_bias_ambiguous (its roles: biased, anti)"),
    ('expr = "P(\'a\')"\nscore = "qa_bias_ambiguous"',
     "[effects.derived.s]: give exactly one of expr (an expression) or score (one of: "
     "adverse_impact_ratio, demographic_parity_difference, qa_bias_ambiguous, "
     "qa_bias_disambiguated)"),
    ('expr = "P(\'a\')"\nrope = [0.1, -0.1]', "[effects.derived.s] rope: expected a half-width "
                                              "or [low, high] with low < high, got [0.1, -0.1]"),
])
def test_what_a_derived_table_asks_of_the_model_is_checked_when_the_spec_loads(
        tmp_path, body, message):
    assert _refused(tmp_path, body) == f"{tmp_path / 's.toml'}: {message}"


def test_categories_the_spec_names_are_checked_when_it_loads(tmp_path):
    spec, _ = _load(tmp_path, 'score = "qa_bias_disambiguated"\nwithin = "cond"',
                    template=PARSED)
    assert spec.content.effects.derived["s"].within == "cond"
    assert _refused(tmp_path, 'expr = "P(\'stereotyped\') - P(\'anti\')"', template=PARSED) == (
        f"{tmp_path / 's.toml'}: [effects.derived.s] expr: 'stereotyped' is not a category of "
        "the outcome (its categories: biased, anti, unknown)")
    # a score's categories too
    assert "'pro' is not a category of the outcome" in _refused(
        tmp_path, 'score = "qa_bias_ambiguous"\ncategories = { biased = "pro" }',
        template=PARSED)


def test_a_probability_of_one_needs_a_binary_outcome(tmp_path):
    assert _refused(tmp_path, 'expr = "P(\'biased\')"', family="bernoulli") == (
        f"{tmp_path / 's.toml'}: [effects.derived.s] expr: P('biased') needs an outcome with "
        "categories (categorical or cumulative); family 'bernoulli' has none (use P())")
    assert _refused(tmp_path, 'expr = "P()"', family="gaussian").endswith(
        "P() needs a 0/1 or categorical outcome; family 'gaussian' has none (use E())")
    spec, _ = _load(tmp_path, 'expr = "E(cond=\'a\') - E(cond=\'b\')"', family="gaussian")
    assert spec.content.effects.derived["s"].expr.startswith("E(")


def test_the_parse_tree_and_score_templates():
    assert parse_expr("2 * P('b') / (P('b') + P('a', cond='x')) - 1", "w") == Bin(
        "-", Bin("/", Bin("*", Num(2.0), Prob("b", ())),
                 Bin("+", Prob("b", ()), Prob("a", (("cond", "x"),)))), Num(1.0))
    assert parse_expr("min(1, max(2, 3))", "w") == Fn("min", (Num(1.0), Fn("max", (Num(2.0),
                                                                                  Num(3.0)))))
    # a category name holding quotes cannot change the expression's shape
    text = expand_score(SCORES["qa_bias_ambiguous"], {"biased": "it's \") + x"})
    assert parse_expr(text, "w") == Bin("-", Prob("it's \") + x", ()), Prob("anti", ()))
    text = expand_score(SCORES["adverse_impact_ratio"], {}, "demo", ["a", "b"])
    assert text == "min(P(demo='a'), P(demo='b')) / max(P(demo='a'), P(demo='b'))"


TOKENS = ["P(", "E(", "min(", "max(", "log(", "exp(", "abs(", ")", "(", ",", "'a'", '"b"',
          "cond=", "'x'", "1", "2.5", "1e3", "+", "-", "*", "/", "**", ".", "[0]", "lambda:",
          "f'{1}'", "__import__", "os", " ", "if", "else", "x", "==", "not", ":=", "{", "}"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_random_text_parses_or_is_one_line_error_never_run(tokens):
    text = "".join(tokens)
    called = []
    real_import = builtins.__import__

    def canary(*a, **k):  # an expression that ran code would import through here
        called.append(a[0])
        return real_import(*a, **k)

    builtins.__import__ = canary
    try:
        parse_expr(text, "[effects.derived.s] expr")
    except SpecError as e:
        assert "\n" not in str(e) and str(e).startswith("[effects.derived.s] expr: ")
    finally:
        builtins.__import__ = real_import
    assert called == []


def test_a_registered_score_is_usable_by_name(tmp_path):
    gap = Score("answer_gap", "P({first}) - P({second})", "answer gap",
                {"first": "biased", "second": "anti"})
    register_score(gap)
    try:
        spec, _ = _load(tmp_path, 'score = "answer_gap"\ncategories = { second = "unknown" }',
                        template=PARSED)
        d = spec.content.effects.derived["s"]
        assert derived_expression("s", d) == "P('biased') - P('unknown')"
        with pytest.raises(ValueError, match="registered twice"):
            register_score(Score("answer_gap", "P({first})", "other", {"first": "x"}))
    finally:
        SCORES.pop("answer_gap")
