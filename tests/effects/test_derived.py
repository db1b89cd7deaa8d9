"""Derived estimands (issue 21, items 3 and 6): ``[effects.derived.<name>]`` expressions and
named scores, evaluated draw by draw per stratum, held to closed forms and to the marginal
means they are built from."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import biasstats
from biasstats.effects.derived import as_derived
from biasstats.effects.estimands import EffectsRequest, check_request
from biasstats.errors import SpecError
from tests.effects.test_estimand_draws import assert_rows_have_their_draws

# counts per context: (biased, anti, unknown)
COUNTS = {"ambiguous": (150, 60, 390), "disambiguated": (290, 250, 60)}


@pytest.fixture(scope="module")
def counts_fit():
    """``answer ~ context`` (categorical, saturated) on exact counts: with the weak default
    priors its cell probabilities are the observed shares up to Monte Carlo error."""
    import warnings

    rows = [(ctx, a) for ctx, ns in COUNTS.items()
            for a, n in zip(("biased", "anti", "unknown"), ns, strict=True) for _ in range(n)]
    df = pl.DataFrame(rows, schema=["context", "answer"], orient="row")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return biasstats.fit("answer ~ context", data=df, family="categorical", chains=2,
                             tune=300, draws=400, seed=5, progress=False)


def _mcse(d: np.ndarray, chains: int = 2) -> float:
    """Monte Carlo standard error of the mean of ``d`` (draws of ``chains`` chains stacked),
    from the bulk ESS."""
    import arviz_stats as azs

    ess = float(azs.ess(d.reshape(chains, -1)))
    return float(d.std(ddof=1)) / np.sqrt(ess)


def test_qa_bias_scores_equal_the_closed_form_from_counts(counts_fit):
    est = biasstats.estimands(counts_fit, by=[], contrasts=[], rank=None, derived={
        "dis": {"score": "qa_bias_disambiguated", "within": "context"},
        "amb": {"score": "qa_bias_ambiguous", "within": "context"}})
    for name, closed in (("dis", lambda b, a, u: 2 * b / (b + a) - 1),
                         ("amb", lambda b, a, u: (b - a) / (b + a + u))):
        strata, d = est.draws[f"derived:{name}"]
        assert strata == ["ambiguous", "disambiguated"]
        for j, ctx in enumerate(strata):
            truth = closed(*COUNTS[ctx])
            row = est.derived.filter((pl.col("term") == name) & (pl.col("level") == ctx))
            mean = row["mean"][0]
            # the prior's pull at 600 answers per context is far below the MC error
            assert abs(mean - truth) < 4 * _mcse(d[:, j]), (name, ctx, mean, truth)
            assert row["hdi_low"][0] < truth < row["hdi_high"][0]
    assert est.derived["unit"].to_list() == ["−1 to 1"] * 4
    assert est.derived["null"].to_list() == [0.0] * 4


def test_derived_draws_are_the_expression_of_the_marginal_means(categorical_fit):
    fit = categorical_fit[0]  # answer (comply / hedge / refuse) ~ condition + (1|prompt)
    est = biasstats.estimands(fit, by=["condition"], contrasts=["condition"], rank=None,
                              derived={
        "s": {"score": "qa_bias_disambiguated", "within": "condition", "rope": 0.1,
              "categories": {"biased": "refuse", "anti": "comply"}},
        "gap": {"expr": "P('refuse', condition='sensitive') - P('refuse', condition='neutral')",
                "label": "refusal gap", "unit": "probability"},
        "mix": {"expr": "max(log(P('hedge')), -3) * abs(-2) + exp(0) / 4"}})
    levels, refuse = est.draws["mean:condition:probability:refuse"]
    _, comply = est.draws["mean:condition:probability:comply"]
    _, hedge = est.draws["mean:condition:probability:hedge"]
    strata, s = est.draws["derived:s"]
    assert strata == levels == ["neutral", "sensitive"]
    np.testing.assert_allclose(s, 2 * refuse / (refuse + comply) - 1)
    # a level of a factor inside the (single) stratum is that level's marginal mean
    _, gap = est.draws["derived:gap"]
    _, diff = est.draws["contrast:condition:difference:refuse"]  # percentage points
    np.testing.assert_allclose(gap[:, 0], diff[:, 0] / 100)
    # no stratum: the average over every observed row, weighted like the overall mean
    overall = est.means.filter((pl.col("term") == "overall") & (pl.col("category") == "hedge"))
    _, mix = est.draws["derived:mix"]
    h = hedge.mean(axis=1)  # balanced conditions: the overall mean is their average
    np.testing.assert_allclose(mix[:, 0], np.maximum(np.log(h), -3) * 2 + 0.25)
    assert abs(overall["mean"][0] - h.mean()) < 1e-9
    row = est.derived.filter(pl.col("term") == "s").row(1, named=True)
    assert (row["rope_low"], row["rope_high"]) == (-0.1, 0.1) and row["verdict"] in (
        "inside ROPE", "outside ROPE", "undecided")
    assert row["p_positive"] == pytest.approx(float((s[:, 1] > 0).mean()))
    assert est.derived.filter(pl.col("term") == "gap")["label"][0] == "refusal gap"
    # the draws behind every row, derived ones included (estimand_draws.parquet)
    assert_rows_have_their_draws(est)
    assert est.draws_table().filter(pl.col("estimand") == "derived").height == 600 * 4


def test_impact_ratio_score_is_the_ratio_of_the_cell_rates(bernoulli_fit):
    fit, df, _ = bernoulli_fit  # refused ~ condition + (1|prompt), balanced prompts
    est = biasstats.estimands(fit, by=["condition"], contrasts=[], rank=None, derived={
        "air": {"score": "adverse_impact_ratio", "over": "condition"},
        "dpd": {"score": "demographic_parity_difference", "over": "condition"}})
    _, m = est.draws["mean:condition:probability"]
    _, air = est.draws["derived:air"]
    _, dpd = est.draws["derived:dpd"]
    np.testing.assert_allclose(air[:, 0], m.min(axis=1) / m.max(axis=1))
    np.testing.assert_allclose(dpd[:, 0], m.max(axis=1) - m.min(axis=1))
    rates = df.group_by("condition").agg(pl.col("refused").mean())["refused"]
    row = est.derived.filter(pl.col("term") == "air").row(0, named=True)
    assert abs(row["mean"] - rates.min() / rates.max()) < 3 * row["sd"]
    assert row["null"] == 1.0 and row["unit"] == "ratio"
    assert row["p_positive"] == pytest.approx(float((air[:, 0] > 1).mean())) == 0.0


def test_expected_value_of_an_ordinal_outcome_is_the_expected_rating(cumulative_fit):
    fit = cumulative_fit[0]  # rating 1-5 ~ condition + (1|prompt)
    est = biasstats.estimands(fit, by=["condition"], contrasts=[], rank=None, derived={
        "shift": {"expr": "E(condition='treated') - E(condition='control')",
                  "unit": "rating points", "rope": [-0.1, 0.1]}})
    levels, rating = est.draws["mean:condition:expected rating"]
    _, shift = est.draws["derived:shift"]
    np.testing.assert_allclose(shift[:, 0], rating[:, levels.index("treated")]
                               - rating[:, levels.index("control")])
    row = est.derived.row(0, named=True)
    assert (row["rope_low"], row["rope_high"]) == (-0.1, 0.1)


def test_an_undefined_value_leaves_its_stratum_out_with_a_note(bernoulli_fit):
    fit = bernoulli_fit[0]
    est = biasstats.estimands(fit, by=[], contrasts=[], rank=None,
                              derived={"bad": {"expr": "log(P() - 1)", "within": "condition"}})
    assert est.derived.height == 0 and "derived:bad" not in est.draws
    assert est.notes[-1] == ("derived bad: not defined in neutral, sensitive (a level it names "
                             "is not observed there, or a division by zero or log of a "
                             "non-positive value)")


def test_levels_and_categories_are_checked_against_the_data_before_sampling(categorical_fit):
    spec = categorical_fit[0].spec

    def refused(table: dict) -> str:
        with pytest.raises(SpecError) as e:
            check_request(EffectsRequest(derived=as_derived({"x": table})), spec,
                          key="s.toml: [effects]")
        return str(e.value)

    assert refused({"expr": "P('refuse', condition='calm')"}) == (
        "s.toml: [effects.derived.x] expr: level 'calm' of condition is not in the data "
        "(levels: neutral, sensitive)")
    assert refused({"expr": "P('decline')"}) == (
        "s.toml: [effects.derived.x] expr: 'decline' is not a category of the outcome (its "
        "categories: comply, hedge, refuse)")
    assert refused({"score": "adverse_impact_ratio", "over": "prompt",
                    "categories": {"outcome": "nope"}}).startswith(
        "s.toml: [effects.derived.x] expr: 'nope' is not a category of the outcome")
