"""[parts.<name>.checks] alternatives: a part's other formula fitted jointly with the other
parts and compared with the part's model by PSIS-LOO on the part's observations — here on a
simulated refusal-and-answer study whose answers truly depend on the condition, so the
part's model (with the condition) must beat the alternative without it; and a mistake in an
alternative is one line before sampling."""

from __future__ import annotations

import warnings

import polars as pl
import pytest

from biasstats.cli import main
from biasstats.run import run_analysis
from biasstats.simulate.joint import refusal_study

SPEC = """[analysis]
name = "alts"
[parts.refusal.data]
source = "replies.csv"
outcome = "y"
missing_outcome = "refused"
include = ["refused"]
[parts.refusal.model]
formula = "refused ~ condition + (1|p|prompt)"
[parts.answer.data]
source = "replies.csv"
outcome = "y"
missing_outcome = "refused"
[parts.answer.model]
formula = "y ~ condition + (1|p|prompt)"
[parts.answer.checks]
alternatives = [{alt}]
[fit]
chains = 2
tune = 150
draws = 150
seed = 2
refit = false
[checks]
allow_failure = true
"""


@pytest.mark.slow  # two joint fits and a whole report: about 2 minutes
def test_a_part_alternative_is_fitted_jointly_and_compared_on_the_part(tmp_path):
    # answers depend on the condition (0.9 on the logit scale): the alternative drops it
    table, _ = refusal_study(seed=3, prompts=12, replies=40, rho=0.5, outcome_effect=0.9)
    table.write_csv(tmp_path / "replies.csv")
    spec = tmp_path / "alts.toml"
    spec.write_text(SPEC.format(alt='"y ~ 1 + (1|p|prompt)"'))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_analysis(spec, tmp_path / "out", progress=False)
    assert out.status == "built", out.message
    folder = tmp_path / "out" / "alts"
    # the alternative is a joint fit of its own (both parts), cached beside the analysis
    assert (folder / "alternatives" / "answer" / "alt1" / "posterior.nc").is_file()
    comp = pl.read_csv(folder / "parts" / "answer" / "tables" / "model_comparison.csv")
    assert set(comp["model"]) == {"y ~ condition + (1|p|prompt)", "y ~ 1 + (1|p|prompt)"}
    best = comp.row(0, named=True)
    assert best["model"] == "y ~ condition + (1|p|prompt)" and best["elpd_diff"] == 0
    assert -comp["elpd_diff"][1] > 2 * comp["dse"][1]   # clearly worse, as the truth says
    # the refusal part has no alternatives: no comparison
    assert not (folder / "parts" / "refusal" / "tables" / "model_comparison.csv").exists()


def test_an_alternative_naming_a_missing_column_stops_before_sampling(tmp_path, capsys):
    table, _ = refusal_study(seed=3, prompts=6, replies=10)
    table.write_csv(tmp_path / "replies.csv")
    spec = tmp_path / "alts.toml"
    spec.write_text(SPEC.format(alt='"y ~ dose + (1|p|prompt)"'))
    assert main(["report", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec}: [parts.answer.checks] alternatives[0]: unknown "
                          "column 'dose'"), err
    assert err.count("\n") == 1
    assert not (tmp_path / "out" / "alts" / "posterior.nc").exists()


@pytest.mark.parametrize("alt", ['"y ~ condition + (1|prompt)"'])
def test_an_alternative_dropping_the_link_is_refused_when_the_spec_loads(tmp_path, alt, capsys):
    spec = tmp_path / "alts.toml"
    spec.write_text(SPEC.format(alt=alt))
    assert main(["report", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "must keep the part's correlation ids ((…|p|prompt))" in capsys.readouterr().err
