"""Hard designs seen before sampling (issue 26 item 3): the design diagnosis
(:mod:`biasstats.model.diagnosis`) on simulated data with each known problem, each with its
exact line, and shown by ``biasstats fit`` before anything is sampled."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from biasstats.cli import main
from biasstats.model.build import prepare


def _rng():
    return np.random.default_rng(1)


def test_a_per_cell_scale_over_a_cell_with_zero_variance():
    rng = _rng()
    rows = [(m, s, 3.0 if (m, s) == ("A", "x") else float(rng.normal(3, 1)))
            for m in "ABC" for s in "xyz" for _ in range(8)]
    df = pl.DataFrame(rows, schema=["llm", "scaffold", "y"], orient="row")
    spec = prepare("y ~ 1 + (1|llm) + (1|scaffold)", df, "gaussian",
                   aux={"sigma": "~ 1 + (1|llm:scaffold)"})
    assert spec.diagnosis[0] == (
        "[model.aux] sigma = \"~ 1 + (1|llm:scaffold)\": 1 of 9 'llm:scaffold' cells has zero "
        "variance in 'y' ('A:x'): their sigma runs towards 0, bounded by its prior alone; pool "
        "the scale (drop (1|llm:scaffold) from sigma's formula) or give "
        "sd_sigma_llm:scaffold a tighter prior, e.g. \"HalfNormal(0.5)\"")
    # a fixed-effect scale formula: the cells are its factors' combinations
    spec = prepare("y ~ 1 + (1|llm)", df, "gaussian", aux={"sigma": "~ llm * scaffold"})
    assert spec.diagnosis[0] == (
        "[model.aux] sigma = \"~ llm * scaffold\": 1 of 9 cells has zero variance in 'y' "
        "('A:x'): their sigma runs towards 0, bounded by its prior alone; pool the scale (a "
        "coarser sigma formula) or give its coefficients a tighter prior")
    # the same data with one pooled scale: nothing to say about the scale
    assert not any("zero variance" in s
                   for s in prepare("y ~ 1 + (1|llm)", df, "gaussian").diagnosis)


def _ratings(top: str = "A"):
    rng = _rng()
    rows = [(m, "4" if m == top else str(rng.integers(1, 5))) for m in "ABCD"
            for _ in range(20)]
    return pl.DataFrame(rows, schema=["llm", "rating"], orient="row")


def test_ordinal_and_categorical_levels_in_one_category():
    df = _ratings()
    assert prepare("rating ~ 1 + (1|llm)", df, "cumulative").diagnosis == [
        "term '(1|llm)': 1 of 4 levels has every rating in the lowest or highest category "
        "('A'): their effects are bounded by the prior on sd_llm alone (separation); keep a "
        "proper prior such as sd_llm = \"HalfNormal(1)\", or pool or drop those levels"]
    assert prepare("rating ~ llm", df, "cumulative").diagnosis == [
        "fixed factor 'llm': 1 of 4 levels has every rating in the lowest or highest category "
        "('A'; separation): their coefficients are bounded by their priors alone; use weakly "
        "informative ones, e.g. [model.priors] b = \"Normal(0, 2.5)\", or pool those levels"]
    assert prepare("rating ~ 1 + (1|llm)", df, "categorical").diagnosis == [
        "term '(1|llm)': 1 of 4 levels has every response in one category ('A'): their "
        "effects are bounded by the prior on sd_llm alone (separation); keep a proper prior "
        "such as sd_llm = \"HalfNormal(1)\", or pool or drop those levels"]
    # an ordinal level all in an inner category is bounded by the cut-points: no line
    inner = df.with_columns(pl.when(pl.col("llm") == "A").then(pl.lit("2"))
                            .otherwise(pl.col("rating")).alias("rating"))
    assert prepare("rating ~ 1 + (1|llm)", inner, "cumulative").diagnosis == []


def test_binary_levels_in_one_class_named_when_few():
    rng = _rng()
    g = np.repeat(list("abcdef"), 20)
    y = np.where(g == "a", 1, rng.integers(0, 2, g.size))
    df = pl.DataFrame({"g": g, "y": y})
    assert prepare("y ~ 1 + (1|g)", df, "bernoulli").diagnosis == [
        "term '(1|g)': 1 of 6 levels has every outcome in one class ('a'): their effects are "
        "bounded by the prior on sd_g alone (separation); keep a proper prior such as "
        "sd_g = \"HalfNormal(1)\", or pool or drop those levels"]


def test_levels_with_one_observation_two_levels_and_aliased_terms():
    rng = _rng()
    rows = [(f"p{i}", "a" if i % 2 else "b", f"q{i}", float(rng.normal())) for i in range(10)]
    rows += [("p0", "a", "q0", 0.3)]
    df = pl.DataFrame(rows, schema=["prompt", "cond", "copy", "y"], orient="row")
    assert prepare("y ~ 1 + (1|prompt) + (1|cond) + (1|copy)", df, "gaussian").diagnosis == [
        "term '(1|prompt)': 9 of 10 levels have one observation ('p1', 'p2', 'p3', 'p4' and 5 "
        "more): their effects cannot be told from the residual; pool them with other levels "
        "or drop them",
        "term '(1|cond)' has 2 levels: the data inform sd_cond by one difference, its estimate "
        "is mostly the prior's; give it a tighter prior (e.g. sd_cond = \"HalfNormal(0.5)\") "
        "or make 'cond' a fixed effect",
        "term '(1|copy)': 9 of 10 levels have one observation ('q1', 'q2', 'q3', 'q4' and 5 "
        "more): their effects cannot be told from the residual; pool them with other levels "
        "or drop them",
        "terms '(1|prompt)' and '(1|copy)' have the same 10 levels (each level of one is one "
        "level of the other): sd_prompt and sd_copy split one variance the data cannot tell "
        "apart; drop one of them"]
    single = df.head(10)
    assert prepare("y ~ 1 + (1|prompt)", single, "gaussian").diagnosis == [
        "term '(1|prompt)': every one of its 10 levels has one observation: sd_prompt and the "
        "residual scale split one variance the data cannot tell apart; drop the term"]


def test_a_clean_design_says_nothing():
    rng = _rng()
    g = np.repeat(list("abcdef"), 20)
    df = pl.DataFrame({"g": g, "y": rng.normal(0, 1, g.size)})
    assert prepare("y ~ 1 + (1|g)", df, "gaussian").diagnosis == []


SPEC = """
[analysis]
name = "study"
[data]
source = "d.csv"
outcome = "rating"
[model]
formula = "rating ~ 1 + (1|llm)"
family = "cumulative"
[checks]
allow_failure = true
"""


def test_the_fit_command_shows_the_diagnosis_before_sampling(tmp_path, capsys, monkeypatch):
    import biasstats.inference.from_spec as from_spec

    _ratings().write_csv(tmp_path / "d.csv")
    (tmp_path / "s.toml").write_text(SPEC)

    def sampled(*a, **k):
        raise AssertionError("sampling reached")

    monkeypatch.setattr(from_spec, "fit_prepared", sampled)
    with pytest.raises(AssertionError, match="sampling reached"):
        main(["fit", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert out.startswith("design: term '(1|llm)': 1 of 4 levels has every rating in the "
                          "lowest or highest category ('A')")
