"""A new user's first hour (issue 23, item 4): ``biasstats effects`` never fits unless asked,
a run not on a terminal prints no progress bar, and the report index lists built analyses
first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from biasstats.cli import main
from biasstats.run.analysis import AnalysisOutcome
from biasstats.run.many import write_index

ROOT = Path(__file__).resolve().parents[2]
SPEC = """
[analysis]
name = "first"
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
[checks]
allow_failure = true
"""


def _spec(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    rows = "".join(f"{rng.normal():.4f},{'abcd'[i % 4]}\n" for i in range(40))
    (tmp_path / "d.csv").write_text("y,g\n" + rows)
    (tmp_path / "s.toml").write_text(SPEC)
    return tmp_path / "s.toml"


def test_effects_without_a_posterior_says_so_and_fits_only_with_fit(tmp_path, capsys):
    spec = _spec(tmp_path)
    out = tmp_path / "out"
    assert main(["effects", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {spec}: no posterior of this model and data in "
                   f"{out / 'posterior.nc'} (run 'biasstats fit' first, or pass --fit to fit "
                   "now)\n")
    assert not (out / "posterior.nc").exists()
    assert main(["effects", str(spec), "--out", str(out), "--fit"]) == 0
    assert (out / "posterior.nc").is_file() and (out / "estimands.csv").is_file()
    capsys.readouterr()
    stamp = (out / "posterior.nc").stat().st_mtime_ns
    assert main(["effects", str(spec), "--out", str(out)]) == 0  # from the cached posterior
    assert (out / "posterior.nc").stat().st_mtime_ns == stamp


def test_a_run_not_on_a_terminal_prints_no_progress_bar(tmp_path):
    spec = _spec(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, "-m", "biasstats", "fit", str(spec), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode in (0, 1), run.stderr
    both = run.stdout + run.stderr
    # no progress bar (nutpie's or PyMC's), no carriage-return redraws, no library warning
    for mark in ("\r", "━", "█", "Sampling", "draws/s", "Warning", "warn("):
        assert mark not in both, (mark, both[-2000:])


def test_the_index_lists_built_analyses_first(tmp_path):
    def outcome(name, status, message):
        return AnalysisOutcome(name, name.title(), tmp_path / f"{name}.toml", status, message,
                               gate_passed=True if status == "built" else None)

    page = write_index([outcome("gone", "unavailable",
                                "data not found — to get it: biasstats fetch gone_data"),
                        outcome("alpha", "built", "100 rows; gate passed"),
                        outcome("beta", "built", "50 rows; gate passed")], tmp_path)
    html = page.read_text()
    assert html.index("Alpha") < html.index("Beta") < html.index("Gone")
    assert "biasstats fetch gone_data" in html


def test_report_shows_its_stages_on_a_terminal_only(tmp_path, capsys):
    from biasstats.run import run_analysis

    spec = _spec(tmp_path)
    run_analysis(spec, tmp_path / "quiet")  # progress=None: stderr is not a terminal here
    assert "first: ingest" not in capsys.readouterr().err
    run_analysis(spec, tmp_path / "shown", progress=True)
    err = capsys.readouterr().err
    stages = [line.strip() for line in err.splitlines() if line.startswith("  first: ")
              and not line.startswith("  first: refit: ")]  # the tiny fit's refits, always said
    assert stages == ["first: ingest...", "first: fit (sampling shows its own progress)...",
                      "first: effects and checks...", "first: figures and tables..."]
