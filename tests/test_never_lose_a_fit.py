"""Every posterior is kept (issue 26, item 2): a failure after sampling leaves the posterior in
its cache, says so in its one line, and the next run reuses it instead of sampling again."""

from __future__ import annotations

import numpy as np
import pytest

import biasstats.run.analysis as run_analysis_module
from biasstats.cli import main
from biasstats.errors import SpecError

SPEC = """
[analysis]
name = "study"
[data]
source = "d.csv"
outcome = "y"
[model]
formula = "y ~ 1 + (1|g)"
family = "gaussian"
[fit]
chains = 1
tune = 60
draws = 40
seed = 5
[checks]
allow_failure = true
loo_pit = false
"""


@pytest.fixture
def spec(tmp_path):
    rng = np.random.default_rng(2)
    g = np.repeat(list("abcde"), 8)
    y = rng.normal(0, 1, g.size) + np.repeat(rng.normal(0, 1, 5), 8)
    (tmp_path / "d.csv").write_text("y,g\n" + "".join(f"{a:.4f},{b}\n" for a, b in zip(y, g)))
    (tmp_path / "s.toml").write_text(SPEC)
    return tmp_path / "s.toml"


def test_a_failure_after_sampling_keeps_the_posterior_and_the_next_run_reuses_it(
        spec, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real = run_analysis_module.analyse

    def failing(*args, **kwargs):
        raise SpecError(f"{spec}: [effects] something found wrong after sampling")

    monkeypatch.setattr(run_analysis_module, "analyse", failing)
    assert main(["report", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    posterior = out / "study" / "posterior.nc"
    assert err == (f"error: {spec}: [effects] something found wrong after sampling (the "
                   f"posterior is kept in {posterior}: the next run reuses it; --refit "
                   "samples again)\n")
    # the failed run's other outputs are rolled back; the posterior stays
    assert sorted(p.name for p in (out / "study").iterdir()) == ["posterior.nc"]
    stamp = posterior.stat().st_mtime_ns

    monkeypatch.setattr(run_analysis_module, "analyse", real)
    assert main(["report", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "posterior cached" in printed
    assert posterior.stat().st_mtime_ns == stamp  # reused, not sampled again
    assert (out / "study" / "report.html").is_file()
