"""A joint analysis end to end (biasstats report on a [parts] spec): a refusal part and an
answer part on one simulated source with known truth — the source read once, each part's
own report, the correlation / slope / refusal-sensitivity rows of estimands.parquet, the
bounds' closed form, the cache; and the data-level mistakes as one line before sampling."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

import biasstats.ingest.run as ingest_run
from biasstats.cli import main
from biasstats.run import run_analysis
from biasstats.simulate.joint import refusal_study

SPEC = """[analysis]
name = "refusals"
[parts.refusal.data]
source = "replies.csv"
outcome = "y"
missing_outcome = "refused"
include = ["refused"]
[parts.refusal.model]
formula = "refused ~ condition + (1|p|prompt)"
[parts.refusal.effects]
reference = {{ condition = "a" }}
[parts.answer.data]
source = "replies.csv"
outcome = "y"
missing_outcome = "refused"
[parts.answer.model]
formula = "y ~ condition + (1|p|prompt)"
[parts.answer.effects]
outcome_label = "y = 1"
reference = {{ condition = "a" }}
[fit]
chains = 2
tune = {tune}
draws = {draws}
seed = 11
[checks]
allow_failure = true
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("joint")
    table, truth = refusal_study(seed=7, prompts=16, replies=30, rho=0.6)
    table.write_csv(root / "replies.csv")
    spec = root / "refusals.toml"
    spec.write_text(SPEC.format(tune=300, draws=300))
    calls = []
    real = ingest_run.ingest
    mp = pytest.MonkeyPatch()
    mp.setattr(ingest_run, "ingest", lambda s: calls.append(s.name) or real(s))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = run_analysis(spec, root / "out", progress=False)
            first_calls = list(calls)
            second = run_analysis(spec, root / "out", progress=False)
    finally:
        mp.undo()
    return root / "out" / "refusals", first, second, truth, table, first_calls


def test_one_source_is_ingested_once_and_each_part_has_its_report(built):
    folder, first, _, _, table, calls = built
    assert first.status == "built" and calls == ["refusal"]   # the answer part shares it
    for part in ("refusal", "answer"):
        assert (folder / "parts" / part / "report.html").is_file()
    trials = pl.read_parquet(folder / "parts" / "refusal" / "trials.parquet")
    refused = trials.filter(pl.col("status") == "refused")
    assert refused.height == table["y"].null_count() and refused["refused"].unique().to_list() == [1]
    assert trials.filter(pl.col("status") == "ok")["refused"].unique().to_list() == [0]
    page = (folder / "report.html").read_text()
    assert "parts/refusal/report.html" in page and "Refusals and answers" in page


def test_estimands_hold_each_part_and_the_joint_rows(built):
    folder, _, _, truth, table, _ = built
    est = pl.read_parquet(folder / "estimands.parquet")
    overall = est.filter((pl.col("term") == "overall") & (pl.col("estimand") == "mean"))
    n = dict(zip(overall["part"], overall["n_obs"], strict=True))
    assert n == {"refusal": table.height, "answer": table["y"].is_not_null().sum()}
    cor = est.filter(pl.col("estimand") == "correlation")
    assert set(cor["method"]) == {"latent", "two-step"}
    lat = cor.filter(pl.col("method") == "latent").row(0, named=True)
    assert lat["term"] == "prompt" and lat["parts"] == "refusal, answer"
    assert lat["hdi_low"] < truth["rho"] < lat["hdi_high"]
    slope = est.filter(pl.col("estimand") == "slope")
    assert set(slope["method"]) == {"latent", "two-step"} and slope["parts"][0] == "answer on refusal"
    # both parts' condition contrasts recover the truth (percentage points)
    for part, key in (("refusal", "refusal_contrast"), ("answer", "outcome_contrast")):
        row = est.filter((pl.col("part") == part) & (pl.col("estimand") == "contrast")
                         & (pl.col("scale") == "difference")).row(0, named=True)
        assert row["level"] == "b − a"
        assert row["hdi_low"] < 100 * truth[key] < row["hdi_high"], (part, row)


def test_the_refusal_bounds_are_as_wide_as_the_refusals(built):
    folder, _, _, _, _, _ = built
    est = pl.read_parquet(folder / "estimands.parquet")
    sens = est.filter(pl.col("estimand") == "refusal_sensitivity")
    m = {r["method"]: r for r in sens.iter_rows(named=True)}
    assert set(m) == {"answers only", "lower bound", "upper bound", "model-based"}
    assert m["lower bound"]["mean"] < m["answers only"]["mean"] < m["upper bound"]["mean"]
    shares = pl.read_csv(folder / "tables" / "refusals_refusal.csv")
    # upper − lower = 100 (P(refusal | a) + P(refusal | b)), draw by draw: so in the mean too
    width = m["upper bound"]["mean"] - m["lower bound"]["mean"]
    assert width == pytest.approx(100 * shares["p_refusal_mean"].sum(), rel=1e-6)
    answers = est.filter((pl.col("part") == "answer") & (pl.col("estimand") == "contrast")
                         & (pl.col("scale") == "difference")).row(0, named=True)
    assert m["answers only"]["mean"] == pytest.approx(answers["mean"], abs=1e-6)


def test_a_second_run_reuses_the_joint_posterior(built):
    folder, first, second, _, _, _ = built
    assert not first.cached and second.cached
    est = pl.read_parquet(folder / "estimands.parquet")
    assert est.filter(pl.col("estimand") == "correlation")["mean"].is_finite().all()
    assert np.isfinite(est["mean"].drop_nulls().to_numpy()).all()


def test_levels_without_overlap_stop_before_sampling(tmp_path, capsys):
    pl.DataFrame({"cell": ["a", "a", "b", "b"], "y": [0, 1, 1, 0]}).write_csv(tmp_path / "x.csv")
    pl.DataFrame({"cell": ["u", "u", "v", "v"], "y": [0, 1, 1, 0]}).write_csv(tmp_path / "z.csv")
    spec = tmp_path / "j.toml"
    spec.write_text(
        '[parts.implicit.data]\nsource = "x.csv"\noutcome = "y"\n[parts.implicit.model]\n'
        'formula = "y ~ 1 + (1|p|cell)"\n[parts.decision.data]\nsource = "z.csv"\n'
        'outcome = "y"\n[parts.decision.model]\nformula = "y ~ 1 + (1|p|cell)"\n')
    assert main(["report", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {spec}: [parts.decision.model] formula: correlation id 'p' on "
                   "'cell': no level of part 'decision' ('u', 'v') is a level of part "
                   "'implicit' ('a', 'b'); the parts' effects of a factor correlate over the "
                   "levels they share\n")
    assert not (tmp_path / "out" / "j" / "posterior.nc").exists()


def test_a_part_data_error_names_the_part(tmp_path, capsys):
    pl.DataFrame({"cell": ["a", "b"], "y": [0, 1]}).write_csv(tmp_path / "x.csv")
    spec = tmp_path / "j.toml"
    spec.write_text(
        '[parts.implicit.data]\nsource = "x.csv"\noutcome = "y"\n[parts.implicit.model]\n'
        'formula = "y ~ 1 + (1|p|cell)"\n[parts.decision.data]\nsource = "x.csv"\n'
        'outcome = "y"\n[parts.decision.model]\nformula = "y ~ 1 + x + (1|p|cell)"\n')
    assert main(["report", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {spec}: [parts.decision.model] formula: unknown column 'x' in "
                   "term 'x' (data columns: category, cell, congruent, item, llm, raw, "
                   "reason, refused, source_file, source_row, status, stereotype, trial, "
                   "variant, y)\n")
