"""The BBQ-shaped QA design (``biasstats.simulate.qa_design``) and the shipped analysis that
reads it: the data file is what the design makes, its truth is the bias scores of the
design's answer probabilities, and the spec declares the estimands the truth names."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from biasstats.simulate.qa_design import qa_bias
from biasstats.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_data_and_truth_are_what_the_design_makes():
    table, truth = qa_bias(seed=20220315)  # as data/make_simulated.py calls it
    shipped = pl.read_csv(ROOT / "data" / "sim_qa.csv")
    assert shipped.equals(table)
    assert json.loads((ROOT / "data" / "sim_qa_truth.json").read_text()) == truth
    spec = load_spec(ROOT / "analyses" / "simulated_qa.toml")
    named = {k.split(":")[1] for k in truth}
    assert named == set(spec.content.effects.derived)


def test_truth_is_the_bias_score_of_the_answer_shares_in_a_large_design():
    table, truth = qa_bias(seed=7, categories=("age", "race"), questions=3, reps=6000)
    shares = (table.group_by("category", "context")
              .agg(pl.len().alias("n"), *(pl.col("answer").eq(a).mean().alias(a)
                                          for a in ("biased", "anti", "unknown"))))
    for r in shares.iter_rows(named=True):
        cell = f"{r['category']}:{r['context']}"
        n, b, a, u = r["n"], r["biased"], r["anti"], r["unknown"]
        # within 4 binomial standard errors of the observed scores
        q = b / (b + a)
        se_dis = 2 * (q * (1 - q) / (n * (b + a))) ** 0.5
        se_amb = ((b + a - (b - a) ** 2) / n) ** 0.5
        assert abs(truth[f"derived:bias_disambiguated:{cell}"] - (2 * q - 1)) < 4 * se_dis
        assert abs(truth[f"derived:bias_ambiguous:{cell}"] - (b - a)) < 4 * se_amb
        if r["context"] == "ambiguous":
            se_u = (u * (1 - u) / n) ** 0.5
            assert abs(truth[f"derived:accuracy_ambiguous:{r['category']}"] - u) < 4 * se_u
