"""Estimands for any study, checked against simulated data with known truth.

Each study is simulated the way such data are made (biasstats.simulate.designs) and fitted with
the formula a user would write; the estimands read off the formula must cover the truth of
this design. Also: the report of a non-congruence outcome never uses bias wording, and bad
``[effects]`` entries are one-line errors naming the key.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import biasstats
from biasstats.cli import main
from biasstats.effects.estimands import EffectsRequest, compute_estimands, default_request
from biasstats.errors import SpecError
from biasstats.model.design import model_factors
from biasstats.simulate import designs

FAST = dict(chains=2, tune=300, draws=300, seed=3, progress=False)


def _get(table: pl.DataFrame, term: str, level: str, scale: str) -> dict:
    rows = table.filter((pl.col("term") == term) & (pl.col("level") == level)
                        & (pl.col("scale") == scale))
    assert rows.height == 1, (term, level, scale, table)
    return rows.row(0, named=True)


def _covers(row: dict, truth: float) -> bool:
    return row["hdi_low"] <= truth <= row["hdi_high"]


def _near(row: dict, truth: float, k: float = 3.5) -> bool:
    """Several estimands from one data set: within k posterior SDs of the truth (a 95% HDI
    per level would miss one of four levels in one data set of five by design)."""
    return abs(row["mean"] - truth) < k * row["sd"]


def test_gaussian_condition_contrast_and_slope_cover_truth(gaussian_fit):
    # designs.gaussian_condition(seed=2), "y ~ condition + x + (1|prompt)" (tests/conftest.py)
    fit, _, truth = gaussian_fit
    assert model_factors(fit.spec)[:3] == (["condition"], ["x"], ["prompt"])
    est = compute_estimands(fit)
    d = _get(est.contrasts, "condition", "treated − control", "difference")
    assert _covers(d, truth["difference:condition:treated − control"])
    s = _get(est.slopes, "x", "average", "slope")
    assert _covers(s, truth["slope:x:average"])
    # marginal means: one row per level, in outcome units, difference = the contrast
    m = est.means.filter(pl.col("term") == "condition")
    assert m["level"].to_list() == ["control", "treated"]
    assert abs((m["mean"][1] - m["mean"][0]) - d["mean"]) < 1e-9
    assert est.ranks.height == 0  # a grouping factor is ranked only when asked


def test_negative_binomial_ratio_covers_truth(negative_binomial_fit):
    # designs.token_counts(seed=4), "tokens ~ condition + (1|prompt)" (tests/conftest.py)
    fit, _, truth = negative_binomial_fit
    est = compute_estimands(fit)
    key = "incongruent − congruent"
    assert _covers(_get(est.contrasts, "condition", "incongruent / congruent", "ratio"),
                   truth[f"ratio:condition:{key}"])
    assert _covers(_get(est.contrasts, "condition", key, "difference"),
                   truth[f"difference:condition:{key}"])
    for lv in ("congruent", "incongruent"):
        assert _near(_get(est.means, "condition", lv, "mean"), truth[f"mean:condition:{lv}"])


def test_poisson_ratio_covers_truth():
    rng = np.random.default_rng(5)
    prompts = [f"p{i}" for i in range(15)]
    r = dict(zip(prompts, rng.normal(0, 0.2, 15), strict=True))
    rows = [{"prompt": p, "condition": c, "n": int(rng.poisson(np.exp(2.0 + 0.4 * (c == "b")
                                                                     + r[p])))}
            for p in prompts for c in ("a", "b") for _ in range(20)]
    df = pl.DataFrame(rows)
    fit = biasstats.fit("n ~ condition + (1|prompt)", data=df, family="poisson", **FAST)
    est = compute_estimands(fit)
    ratio = _get(est.contrasts, "condition", "b / a", "ratio")
    # balanced prompts: the ratio of the two conditions' mean counts is its estimate (1.420
    # here); the truth exp(0.4) = 1.492 sits at this data set's 95% HDI edge (1.495-1.498
    # in 4 x 4,000 draws), so one interval would hang on Monte Carlo error
    means = df.group_by("condition").agg(pl.col("n").mean()).sort("condition")["n"]
    assert abs(ratio["mean"] - means[1] / means[0]) < 0.01
    assert _near(ratio, float(np.exp(0.4)))


def test_refusal_probability_and_percentage_points_cover_truth(bernoulli_fit):
    # designs.refusals(seed=6), "refused ~ condition + (1|prompt)" (tests/conftest.py)
    fit, _, truth = bernoulli_fit
    est = compute_estimands(fit)
    assert est.response_scale == "probability"
    for lv in ("neutral", "sensitive"):
        assert _near(_get(est.means, "condition", lv, "probability"),
                       truth[f"mean:condition:{lv}"])
    d = _get(est.contrasts, "condition", "sensitive − neutral", "difference")
    assert _covers(d, truth["difference:condition:sensitive − neutral"])
    assert 5 < d["mean"] < 25  # in percentage points, not a proportion
    _get(est.contrasts, "condition", "sensitive / neutral", "odds_ratio")


def test_ranking_audit_per_group_top1_and_ratio_to_best():
    df, truth = designs.ranking_audit(seed=1, requests=1000)
    fit = biasstats.fit("top1 ~ 0 + group + (1|name)", data=df, family="bernoulli", **FAST)
    best = truth["best"]
    req = EffectsRequest(by=("group",), contrasts=("group",), reference={"group": best},
                         pairs="reference", rank="group")
    est = compute_estimands(fit, req)
    for g in ("A", "B", "C", "D"):
        m = _get(est.means, "group", g, "probability")
        assert _near(m, truth[f"mean:group:{g}"]), (g, m, truth)
        # the marginal mean of a group is its share of first places (the model's average)
        share = df.filter(pl.col("group") == g)["top1"].mean()
        assert abs(m["mean"] - share) < 0.02
    for g in ("A", "B", "C", "D"):
        if g == best:
            continue
        assert _near(_get(est.contrasts, "group", f"{g} / {best}", "ratio"),
                     truth[f"ratio_to_best:group:{g}"])
        assert _near(_get(est.contrasts, "group", f"{g} − {best}", "difference"),
                       100 * (truth[f"mean:group:{g}"] - truth[f"mean:group:{best}"]))
    assert est.ranks.sort("p_best", descending=True)["level"][0] == best


def test_varying_slopes_per_level_cover_truth():
    df, truth = designs.varying_slopes(seed=8)
    fit = biasstats.fit("y ~ x + (x || g)", data=df, family="gaussian", **FAST)
    req = default_request(fit.spec)
    assert req.level_slopes == ("g",)
    est = compute_estimands(fit, req)
    rows = est.slopes.filter(pl.col("term") == "x | g")
    assert rows.height == 8
    covered = sum(_covers(r, truth[f"slope:x | g:{r['level']}"])
                  for r in rows.iter_rows(named=True))
    assert covered >= 6  # 95% intervals: P(two or fewer misses of eight) = 0.9996


def test_bad_requests_are_one_line(gaussian_fit):
    fit = gaussian_fit[0]  # y ~ condition + x + (1|prompt)
    with pytest.raises(SpecError, match=r"^\[effects\] by: 'nope' is not a factor of the model "
                                        r"\(its factors: condition, prompt; within strata: 'a \| b'\)$"):
        compute_estimands(fit, EffectsRequest(by=("nope",)))
    with pytest.raises(SpecError, match=r"^\[effects\] slopes: 'condition' is not a numeric "
                                        r"predictor of the model \(numeric predictors: x\)$"):
        compute_estimands(fit, EffectsRequest(slopes=("condition",)))
    # a contrast on a numeric predictor is reported as its slope
    est = compute_estimands(fit, EffectsRequest(contrasts=("x",)))
    assert est.contrasts.height == 0 and est.slopes["term"].to_list() == ["x"]


NEUTRAL_SPEC = """[analysis]
name = "refusals"
[data]
source = "refusals.csv"
outcome = "refusal"
[model]
formula = "refusal ~ condition + (1|prompt)"
family = "bernoulli"
unit = "trial"
[fit]
chains = 2
tune = 300
draws = 300
[effects]
outcome_label = "refusal"
{extra}
[checks]
allow_failure = true
"""


def test_report_of_a_refusal_outcome_has_no_bias_wording(tmp_path):
    df, truth = designs.refusals(seed=9, prompts=10, reps=20)
    df.rename({"refused": "refusal"}).write_csv(tmp_path / "refusals.csv")
    spec = tmp_path / "refusals.toml"
    spec.write_text(NEUTRAL_SPEC.format(extra=""))
    rc = main(["report", str(spec), "--out", str(tmp_path / "out")])
    assert rc == 0
    html = (tmp_path / "out" / "refusals" / "report.html").read_text()
    for phrase in ("stereotype-congruent", "D score", "practically unbiased", "biased"):
        assert phrase not in html, phrase
    assert "P(refusal)" in html and "percentage points" in html
    # the estimand tables lead the page, before the findings and the ledger
    assert html.index('id="estimands"') < html.index('id="summary"') < html.index('id="data"')
    est = pl.read_parquet(tmp_path / "out" / "refusals" / "estimands.parquet")
    assert set(est["estimand"]) == {"mean", "contrast"}
    assert (tmp_path / "out" / "refusals" / "tables" / "contrasts_condition.csv").is_file()
    _report_keeps_its_estimand_draws(tmp_path / "out", est)


def _report_keeps_its_estimand_draws(out, est):
    """The report keeps the draws behind its estimands, with what a synthesis checks, and
    the analysis enters a synthesis (``biasstats summarize``) with another on its unit."""
    folder = out / "refusals"
    meta = pl.read_parquet_metadata(folder / "estimand_draws.parquet")
    assert meta["biasstats_analysis"] == "refusals" and meta["outcome"] == "refusal"
    assert meta["response_scale"] == "probability" and meta["family"] == "bernoulli"
    draws = pl.read_parquet(folder / "estimand_draws.parquet")
    contrast = est.filter((pl.col("estimand") == "contrast") & (pl.col("scale") == "difference"))
    d = draws.filter((pl.col("estimand") == "contrast") & (pl.col("scale") == "difference"))
    # one contrast row: its draws are the posterior's (2 x 300, or twice that after the
    # automatic refit of a near miss)
    assert d.height == d["draw"].max() + 1 and d.height in (600, 1200)
    assert d["unit"].unique().to_list() == ["percentage points"]
    assert d["value"].mean() == pytest.approx(contrast["mean"][0], rel=1e-12)
    assert "estimand_draws.parquet" in (folder / ".biasstats-outputs.json").read_text()
    other = out / "other"
    other.mkdir()
    draws.with_columns(pl.col("value") + 3.0).write_parquet(
        other / "estimand_draws.parquet", metadata={**meta, "biasstats_analysis": "other"})
    assert main(["summarize", str(out), "--estimand", "contrast:condition", "--out",
                 str(out / "gap")]) == 0
    s = json.loads((out / "gap" / "summary.json").read_text())
    assert [r["analysis"] for r in s["leaderboard"]] == ["other", "refusals"]
    assert s["estimand"]["level"] == "sensitive − neutral"
    assert s["estimand"]["unit"] == "percentage points"
    index = (out / "index.html").read_text()  # the report run's index, with the summary
    assert 'href="refusals/report.html"' in index and 'href="gap/summary.html"' in index


@pytest.mark.parametrize("extra, message", [
    ('by = ["nope"]', "[effects] by: 'nope' is not in the model formula (its factors and "
                      "predictors: condition, prompt)"),
    ('level_slopes = ["prompt"]', None),
    ("rope = 5.0", "[effects] rope: 5.0 is not a difference of probabilities (give a "
                   "half-width between 0 and 1, e.g. 0.05 = 5 percentage points)"),
])
def test_bad_effects_keys_are_one_line_exit_2(tmp_path, capsys, extra, message):
    df, _ = designs.refusals(seed=9, prompts=4, reps=5)
    df.rename({"refused": "refusal"}).write_csv(tmp_path / "refusals.csv")
    spec = tmp_path / "refusals.toml"
    spec.write_text(NEUTRAL_SPEC.format(extra=extra).replace("draws = 300", "draws = 30")
                    .replace("tune = 300", "tune = 30"))
    rc = main(["report", str(spec), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    if message is None:  # a grouping without varying slopes: named with the model's terms
        assert rc == 2 and "level_slopes: 'prompt' is not a varying-slope term" in err
        return
    assert rc == 2
    assert err == f"error: {spec}: {message}\n"


def test_fit_effects_api(bernoulli_fit):
    fit = bernoulli_fit[0]  # refused ~ condition + (1|prompt), 2 chains x 300 draws
    est = biasstats.estimands(fit, by="condition", contrasts=["condition"], rank=None)
    levels, d = est.draws["contrast:condition:difference"]
    assert levels == ["sensitive − neutral"] and d.shape == (600, 1)
    row = est.contrasts.filter(pl.col("scale") == "difference").row(0, named=True)
    assert abs(row["mean"] - d.mean()) < 1e-12  # the summary is of these draws


# Slow (7 s, a second fit): the effects command is held in the default run by
# tests/effects/test_estimands_categories.py (ordinal ratings: printed, CSV and Parquet written).
@pytest.mark.slow
def test_effects_command_prints_and_writes_the_estimands(tmp_path, capsys):
    df, _ = designs.refusals(seed=10, prompts=8, reps=15)
    df.rename({"refused": "refusal"}).write_csv(tmp_path / "refusals.csv")
    spec = tmp_path / "refusals.toml"
    spec.write_text(NEUTRAL_SPEC.format(extra="").replace("draws = 300", "draws = 100")
                    .replace("tune = 300", "tune = 100"))
    rc = main(["effects", str(spec), "--out", str(tmp_path / "out"), "--fit"])
    out = capsys.readouterr().out
    assert rc == 0 and "sensitive − neutral" in out and "outcome: refusal" in out
    table = pl.read_csv(tmp_path / "out" / "estimands.csv")
    assert set(table["estimand"]) == {"mean", "contrast"}
    assert pl.read_parquet(tmp_path / "out" / "estimands.parquet").height == table.height


def test_interaction_cells_only_from_a_model_with_that_interaction(gaussian_fit):
    from biasstats.model.build import prepare
    from biasstats.model.design import has_interaction

    df, _ = designs.gaussian_condition(seed=2, prompts=4, reps=5)
    assert not has_interaction(prepare("y ~ condition + (1|prompt)", df, "gaussian"),
                               ("condition", "prompt"))
    assert has_interaction(prepare("y ~ condition + (1|prompt) + (1|prompt:condition)", df,
                                   "gaussian"), ("condition", "prompt"))
    assert has_interaction(prepare("y ~ condition * x + (1|prompt)", df, "gaussian"),
                           ("condition", "x"))
    fit = gaussian_fit[0]  # y ~ condition + x + (1|prompt): no condition:prompt term
    est = compute_estimands(fit, EffectsRequest(by=("condition:prompt", "condition")))
    assert set(est.means["term"]) == {"overall", "condition"}
    assert est.notes == ("condition:prompt cells not reported: the model has no "
                         "condition:prompt term, so its cells would be additive by construction "
                         "(add (1|condition:prompt) or condition * prompt to the formula)",)


def test_effects_rows_and_sections_follow_the_declaration_order():
    """``biasstats effects`` (estimands.csv and its terminal tables): the kinds and terms
    [effects] declares first, in its order, the rest after in their own order."""
    from biasstats.cli import _estimand_sections, _in_declared_order

    rows = pl.DataFrame({"estimand": ["mean", "mean", "contrast", "slope", "impact"],
                         "term": ["g", "h", "g", "x", "g | s"], "level": list("abcde"),
                         "mean": [0.1, 0.2, 0.3, 0.4, 0.5], "hdi_low": [0.0] * 5,
                         "hdi_high": [1.0] * 5})
    declared = [("impact", "g | s"), ("slopes", "x"), ("by", "h")]
    got = _in_declared_order(rows, declared)
    assert got["level"].to_list() == ["e", "d", "b", "a", "c"]
    assert [t for t, _ in _estimand_sections(got)] == ["impact ratios", "slopes",
                                                       "marginal means", "contrasts"]
    assert _in_declared_order(rows, []).equals(rows)
