"""``[[replication]]`` entries are checked when the spec loads: keys, types, the estimand's
kind, the term's columns and its listing in ``[effects]`` — each problem one exact line
naming the entry (issue 21 item 5)."""

from __future__ import annotations

import pytest

from biasstats.errors import SpecError
from biasstats.spec import load_spec
from biasstats.spec.declared import declared_estimands

BASE = """[data]
source = "d.csv"
outcome = "y"
[model]
formula = "y ~ condition * test + (1|prompt)"
family = "gaussian"
[effects]
contrasts = ["condition | test"]
"""

GOOD = """[[replication]]
estimand = "contrast:condition | test"
stratum = "t1"
level = "treated - control"
published = 20
interval = [5, 35.5]
citation = "Paper (2025), Table 2"
"""


def _load(tmp_path, entries: str, base: str = BASE):
    p = tmp_path / "s.toml"
    p.write_text(base + entries)
    return load_spec(p)


def _error(tmp_path, entries: str, base: str = BASE) -> str:
    with pytest.raises(SpecError) as e:
        _load(tmp_path, entries, base)
    return str(e.value).removeprefix(f"{tmp_path / 's.toml'}: ")


def test_a_good_entry_loads_with_its_address(tmp_path):
    (e,) = _load(tmp_path, GOOD).content.replication
    assert (e.kind, e.term, e.stratum, e.level) == ("contrast", "condition | test", "t1",
                                                     "treated - control")
    assert e.published == 20.0 and e.interval == [5.0, 35.5] and e.se is None


@pytest.mark.parametrize("entry, message", [
    ('[[replication]]\nestimand = "mean:condition"\npublished = 1\n',
     "[[replication]] entry 1: missing required key 'citation'"),
    ('[[replication]]\nestimand = "mean:condition"\ncitation = "x"\n',
     "[[replication]] entry 1: missing required key 'published'"),
    ('[[replication]]\nestimand = "mean:condition"\npublished = 1\ncitation = "x"\n'
     'publshed = 2\n',
     "[[replication]] entry 1: unknown key 'publshed' (expected one of: estimand, level, "
     "stratum, category, scale, published, interval, se, citation)"),
    ('[[replication]]\nestimand = "means:condition"\npublished = 1\ncitation = "x"\n',
     '[[replication]] entry 1: estimand "means:condition": unknown kind \'means\' (expected '
     '"<kind>:<term>" with kind one of mean, contrast, slope, impact, derived, e.g. '
     '"contrast:condition" or "impact:group | llm:job")'),
    ('[[replication]]\nestimand = "contrast"\npublished = 1\ncitation = "x"\n',
     '[[replication]] entry 1: estimand "contrast": no term after the kind (expected '
     '"<kind>:<term>" with kind one of mean, contrast, slope, impact, derived, e.g. '
     '"contrast:condition" or "impact:group | llm:job")'),
    ('[[replication]]\nestimand = "mean:condition"\npublished = "0.3"\ncitation = "x"\n',
     '[[replication]] entry 1: published: expected a number, got "0.3"'),
    ('[[replication]]\nestimand = "mean:condition"\npublished = 1\ncitation = ""\n',
     '[[replication]] entry 1: citation: expected a non-empty string, got ""'),
    ('[[replication]]\nestimand = "mean:condition"\npublished = 1\ncitation = "x"\n'
     'interval = [2, 1]\n',
     "[[replication]] entry 1: interval: expected [low, high] with low < high, got [2, 1]"),
    ('[[replication]]\nestimand = "mean:condition"\npublished = 3\ncitation = "x"\n'
     'interval = [1, 2]\n',
     "[[replication]] entry 1: interval [1, 2] does not contain published = 3"),
    ('[[replication]]\nestimand = "mean:condition"\npublished = 1\ncitation = "x"\n'
     'interval = [0, 2]\nse = 0.5\n',
     "[[replication]] entry 1: give interval or se, not both"),
    ('[[replication]]\nestimand = "mean:condition"\npublished = 1\ncitation = "x"\n'
     'se = -1\n',
     "[[replication]] entry 1: se: expected a positive number, got -1"),
    ('[replication]\nestimand = "mean:condition"\n',
     "[[replication]]: expected [[replication]] tables (one per published number), got a "
     "table"),
])
def test_entry_problems_are_one_line_each(tmp_path, entry, message):
    assert _error(tmp_path, entry) == message


def test_the_second_entry_is_named(tmp_path):
    bad = GOOD + '[[replication]]\nestimand = "slopes:x"\npublished = 1\ncitation = "x"\n'
    assert _error(tmp_path, bad).startswith("[[replication]] entry 2: estimand \"slopes:x\"")


def test_the_term_must_be_in_the_formula_and_listed_in_effects(tmp_path):
    assert _error(tmp_path, GOOD.replace("condition | test", "cond | test")) == (
        '[[replication]] entry 1: estimand "contrast:cond | test": \'cond\' is not in the '
        "model formula (its factors and predictors: condition, test, prompt)")
    assert _error(tmp_path, GOOD.replace("condition | test", "condition")) == (
        '[[replication]] entry 1: estimand "contrast:condition": [effects] contrasts does not '
        "list 'condition' (its terms: condition | test; add it there: a replication compares "
        "an estimand the analysis reports)")
    impact = GOOD.replace('"contrast:condition | test"', '"impact:condition | test"')
    assert _error(tmp_path, impact) == (
        '[[replication]] entry 1: estimand "impact:condition | test": [effects] impact does '
        "not list 'condition | test' (add it there: a replication compares an estimand the "
        "analysis reports)")
    # spacing in the term is not part of the address
    (e,) = _load(tmp_path, GOOD.replace("condition | test", "condition|test")).content.replication
    assert e.term == "condition | test"


def test_declared_estimands_follow_the_spec_text(tmp_path):
    base = BASE.replace('contrasts = ["condition | test"]\n',
                        'rank = "prompt"\ncontrasts = ["condition | test", "test"]\n'
                        'by = ["test", "condition"]\n')
    spec = _load(tmp_path, "", base)
    assert declared_estimands(spec) == [("rank", "prompt"), ("contrasts", "condition | test"),
                                        ("contrasts", "test"), ("by", "test"),
                                        ("by", "condition")]
