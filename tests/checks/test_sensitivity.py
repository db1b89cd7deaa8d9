"""``[checks] sensitivity``: other specs of the same data, fitted beside the analysis and
compared with it by PSIS-LOO per trial (a trial-level default and a judgement-level model).

Truth: the simulator's replies lean together (per-LLM trial SD 0.6-0.9 on the logit scale), so
the trial-level beta-binomial must predict held-out trials better than the judgement-level
Bernoulli model; and specs of other data are refused before anything is sampled."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from biasstats.cli import main

SIM = """[simulate]
preset = "bai2024"
seed = 3
trials = 3
variants = ["replication", "synonym"]
llms = ["GPT-4", "GPT-3.5-Turbo"]
"""
FIT = '[fit]\nchains = 2\ndraws = 200\ntune = 300\n[checks]\nallow_failure = true\n'
TRIAL = ('[analysis]\nname = "trial"\n' + SIM
         + '[model]\nformula = "k | trials(n) ~ 1 + (1|llm) + (1|stereotype) + (1|variant)"\n'
         'family = "beta_binomial"\nunit = "trial"\n' + FIT)
JUDGEMENT = ('[analysis]\nname = "judgement"\n' + SIM
             + '[model]\nformula = "congruent ~ 1 + (1|llm) + (1|stereotype) + (1|variant)"\n'
             'family = "bernoulli"\n' + FIT)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# Slow (47 s: two models fitted through the report): the per-trial LOO comparison itself is
# tested in the default run (tests/model/test_patterns.py::test_trial_level_loo_compares_a_judgement
# _model_with_a_trial_model), and the spec checks below stay in it.
@pytest.mark.slow
def test_trial_model_and_its_judgement_level_sensitivity_are_compared_per_trial(tmp_path):
    _write(tmp_path, "judgement.toml", JUDGEMENT)
    spec = _write(tmp_path, "trial.toml", TRIAL + 'sensitivity = ["judgement.toml"]\n')
    out = tmp_path / "reports"
    assert main(["report", str(spec), "--out", str(out)]) == 0
    table = pl.read_csv(out / "trial" / "tables" / "sensitivity_comparison.csv")
    assert table["model"].to_list() == ["trial", "judgement"]  # the trial model wins
    # the sensitivity fit sits in its own analysis folder: its own report reuses it
    assert (out / "judgement" / "posterior.nc").is_file()
    page = (out / "trial" / "report.html").read_text()
    assert "sensitivity (PSIS-LOO per trial): trial predicts held-out trials best" in page


@pytest.mark.parametrize(("other", "expected"), [
    ("missing.toml", '<d>/trial.toml: [checks] sensitivity[0] = "missing.toml": '
                     "<d>/missing.toml: spec file not found"),
    ("trial.toml", '<d>/trial.toml: [checks] sensitivity[0] = "trial.toml": is this spec '
                   "itself"),
    ("other_data.toml", '<d>/trial.toml: [checks] sensitivity[0] = "other_data.toml": that '
                        "spec reads different data (3987 rows; this spec reads 3957)"),
])
def test_sensitivity_specs_are_checked_before_sampling(tmp_path, capsys, other, expected):
    _write(tmp_path, "other_data.toml", JUDGEMENT.replace("seed = 3", "seed = 4"))
    spec = _write(tmp_path, "trial.toml", TRIAL + f'sensitivity = ["{other}"]\n')
    out = tmp_path / "reports"
    assert main(["report", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.removeprefix("error: ").strip().replace(str(tmp_path), "<d>") == expected
    assert not (out / "trial" / "posterior.nc").exists()
