"""``biasstats report --jobs N``: several analyses built at once, each in its own process.

Truth: the same seed gives the same draws whether an analysis is built alone or in a worker
process beside another; the index lists the analyses in the order given; a failing analysis
gives its one-line error (exit 2) and leaves nothing of its own while the others are built;
an analysis that another fits as its sensitivity model waits for it (one sampling, reused)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xarray as xr

from biasstats.cli import main
from biasstats.run.many import waits_for
from biasstats.spec import load_spec

MODEL = """[analysis]
name = "{name}"
[data]
source = "study.csv"
[data.columns]
llm = "model"
variant = "prompt"
congruent = "{column}"
{rest}"""
FIT = """[model]
formula = "congruent ~ 1 + (1|llm) + (1|variant)"
[fit]
chains = 2
tune = 300
draws = 500
seed = 11
refit = false
[checks]
allow_failure = true
"""


@pytest.fixture
def study(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    llm, prompt = rng.integers(0, 3, 600), rng.integers(0, 3, 600)
    p = 1 / (1 + np.exp(-(np.array([-1.0, 0.0, 1.0])[llm] + np.array([-0.5, 0, 0.5])[prompt])))
    pl.DataFrame({
        "model": np.array(["A", "B", "C"])[llm],
        "prompt": np.array(["p1", "p2", "p3"])[prompt],
        "answer": (rng.random(600) < p).astype(int),
    }).write_csv(tmp_path / "study.csv")
    return tmp_path


def _spec(folder: Path, name: str, column: str = "answer", rest: str = "") -> Path:
    p = folder / f"{name}.toml"
    p.write_text(MODEL.format(name=name, column=column, rest=rest))
    return p


def _draws(path: Path) -> dict[str, np.ndarray]:
    with xr.open_datatree(path) as dt:
        return {k: dt["posterior"][k].values.copy() for k in dt["posterior"].data_vars}


def test_two_jobs_build_every_analysis_and_list_them_in_order(study, capsys):
    specs = [_spec(study, n) for n in ("zeta", "alpha", "mid")]
    out = study / "reports"
    assert main(["report", *map(str, specs), "--out", str(out), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    for n in ("zeta", "alpha", "mid"):
        assert f"{n}: 600 rows read (no [model]: ledger only)" in printed
        assert (out / n / "ledger.json").is_file()
    index = (out / "index.html").read_text()
    assert index.index("zeta") < index.index("alpha") < index.index("mid")


# Slow (31 s: two compilations of the model, one in a spawned worker): the draws of a worker
# equal those of the main process; the default run keeps the order, error and dependency
# tests, and test_determinism holds the same draws from a fresh and a warm compile cache.
@pytest.mark.slow
def test_two_jobs_build_the_same_draws_and_list_the_analyses_in_order(study, capsys):
    fitted = _spec(study, "fitted", rest=FIT)
    ledger = _spec(study, "ledger_only")
    alone, together = study / "alone", study / "together"
    assert main(["fit", str(fitted), "--out", str(alone / "fitted")]) == 0
    assert main(["report", str(ledger), str(fitted), "--out", str(together),
                 "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "ledger_only: 600 rows read (no [model]: ledger only)" in out
    assert "fitted: 600 rows; gate passed" in out
    a, b = _draws(alone / "fitted" / "posterior.nc"), _draws(together / "fitted" / "posterior.nc")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    index = (together / "index.html").read_text()
    assert index.index("ledger_only") < index.index("fitted")
    assert (together / "fitted" / "report.html").is_file()
    assert (together / "ledger_only" / "ledger.json").is_file()


def test_a_failing_analysis_in_a_worker_is_one_line_and_leaves_nothing(study, capsys):
    bad = _spec(study, "bad", column="verdict", rest=FIT)   # no such column in study.csv
    good = _spec(study, "good")
    out = study / "reports"
    assert main(["report", str(bad), str(good), "--out", str(out), "--jobs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "verdict" in err[0]
    assert not (out / "bad").exists()
    assert (out / "good" / "ledger.json").is_file()
    assert not (out / "index.html").exists()


def test_a_sensitivity_model_waits_for_the_analysis_that_fits_it(study):
    sens = '[model]\nformula = "congruent ~ 1"\n'
    first = _spec(study, "first", rest=FIT + 'sensitivity = ["second.toml"]\n')
    second = _spec(study, "second", rest=sens)
    third = _spec(study, "third")
    specs = [load_spec(p) for p in (second, third, first)]
    assert waits_for(specs) == [{2}, set(), set()]


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_integer_or_auto(study, capsys, value):
    with pytest.raises(SystemExit) as e:
        main(["report", str(_spec(study, "x")), "--jobs", value])
    assert e.value.code == 2
    assert (f"argument --jobs: expected a positive integer or 'auto', got {value!r}"
            in capsys.readouterr().err)
