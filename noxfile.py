"""Sessions: ``tests`` (default, CI), ``report`` (the main job), ``lint``, ``logs``, ``cluster``,
``inspect_legacy``, ``bench``, ``sbc``,
``validate`` (coverage of the shipped models on simulated studies), ``validate_rating``
(the rating design's refits and E[rating] coverage), ``slow`` (the tests marked slow),
``draws`` (the shipped analyses' draws against recorded fingerprints).

Python ≥ 3.12 is required. When ``python3.12`` is not on PATH (e.g. a pyenv machine whose
global Python is older), the newest pyenv-installed 3.12+ interpreter is used.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent


def _works(exe: str) -> bool:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "True"


def _python() -> str:
    """An interpreter ≥ 3.12: on PATH, else from pyenv's versions folder."""
    for name in ("python3.12", "python3.13", "python3"):
        exe = shutil.which(name)
        if exe and _works(exe):
            return exe
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in (12, 13, 14):  # the oldest supported first: it has the most wheels
        for exe in sorted(glob.glob(f"{root}/versions/3.{minor}.*/bin/python3"), reverse=True):
            if _works(exe):
                return exe
    return "3.12"  # let nox report that it cannot find one


PYTHON = _python()


def _install(session: nox.Session, extras: str = "test,dask") -> None:
    session.install("-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (what CI runs). Extra arguments go to pytest."""
    _install(session)
    # pytest exits 5 when it collects no test: that must fail loudly, never pass.
    session.run("pytest", *session.posargs, success_codes=[0])


@nox.session(python=PYTHON)
def cluster(session: nox.Session) -> None:
    """The slow Dask tests: a sweep of fitted analyses on a LocalCluster of 2 workers, every
    draw compared with the local run, and a rerun from the caches (about a minute)."""
    _install(session)
    session.run("pytest", "tests/run/test_cluster.py", "-m", "slow or not slow", "-n", "0",
                *session.posargs, success_codes=[0])


@nox.session(python=PYTHON)
def logs(session: nox.Session) -> None:
    """The evaluation-log tests with both tools installed: inspect-ai (also in ``tests``) and
    lm-evaluation-harness (``.[test-lmeval]``: datasets, scikit-learn and more, too heavy for
    the default run), each writing its logs in the test run. Extra arguments go to pytest."""
    _install(session, "test,test-lmeval")
    session.run("python", "-c", "import inspect_ai, lm_eval")  # never a silent skip here
    session.run("pytest", "tests/ingest/test_eval_logs.py", "tests/ingest/test_eval_logs_bad_input.py",
                "tests/ingest/test_ingest_sources.py", "tests/ingest/test_ingest_readme.py", *session.posargs,
                success_codes=[0])


@nox.session(python=PYTHON)
def inspect_legacy(session: nox.Session) -> None:
    """The Inspect log tests with inspect-ai 0.3.200 writing and reading the logs (the last
    releases before zstd .eval members)."""
    _install(session)
    session.install("inspect-ai==0.3.200")
    session.run("pytest", "tests/ingest/test_eval_logs.py", "tests/ingest/test_eval_logs_bad_input.py",
                "-k", "not lm_eval", *session.posargs, success_codes=[0])


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Every analysis in analyses/ → reports/<analysis>/ (ingest, fit, effects, checks,
    figures, tables, report.html) and reports/index.html, several analyses at once (--jobs
    auto: one per core, at most 4)."""
    _install(session)
    specs = sorted(str(p) for p in (ROOT / "analyses").glob("*.toml"))
    if not specs:
        session.error("no analyses/*.toml found")
    session.run("biasstats", "report", *specs, "--out", str(ROOT / "reports"), "--jobs", "auto",
                *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint, and the stage layers (import-linter contracts in pyproject.toml)."""
    _install(session)
    session.run("ruff", "check", "biasstats", "tests", "noxfile.py")
    session.run("lint-imports", "--no-cache")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """biasstats against NumPyro (its best of a dense and a diagonal mass matrix, 4 chains
    over 2 host devices) and Bambi on the same models and data, in one run: the additive
    judgement model, the default logit-normal model, a per-test gaussian of the
    reasoning-token shape, a categorical model, a 4-parameter bernoulli; each contestant in
    its own process, cold and warm compile caches; compile, sampling and post-processing
    apart, min bulk ESS over the common estimands, ESS/s ratios, posterior agreement
    (tests/benchmarks/bench_fit.py). Extra arguments go to it (``--quick``: smaller data and
    fewer draws, and nothing else; ``--models additive,tokens``; ``--skip-bambi``). Then
    ingest at scale (10 million rows in 100 CSV files -> cells, seconds and peak RSS), many
    small files (8,000 JSON, 2,000 CSV: bench_files.py), the lines of issue 11
    (bench_honest.py) and a [sweep] of 6 analyses on a Dask LocalCluster of 1 vs 2 workers
    (bench_sweep.py: seconds, ratio, peak RSS). Also: a report's post-processing by stage
    against its fit (bench_post.py, analyses/simulated_qa.toml) and the mass-matrix
    adaptation, diagonal against low-rank, on the models above the rule's threshold
    (bench_adaptation.py)."""
    _install(session, "test,bench,dask")
    session.run("python", "tests/benchmarks/bench_fit.py", *session.posargs)
    # a report's post-processing by stage, as a ratio to its fit
    session.run("python", "tests/benchmarks/bench_post.py", "analyses/simulated_qa.toml")
    if "--quick" in session.posargs:
        return
    session.run("python", "tests/benchmarks/bench_adaptation.py")
    session.run("python", "tests/benchmarks/bench_ingest.py", "--rows", "10000000", "--files", "100")
    session.run("python", "tests/benchmarks/bench_files.py", "--refused")
    session.run("python", "tests/benchmarks/bench_honest.py")
    session.run("python", "tests/benchmarks/bench_sweep.py")


@nox.session(python=PYTHON)
def validate(session: nox.Session) -> None:
    """Coverage of the 50/90/95% intervals of the shipped default model and the
    judgement-level sensitivity model on 5 studies from the calibrated simulator (per LLM,
    per stereotype, per LLM x stereotype; RMSE) -> reports/validation/. Extra arguments go to
    ``python -m biasstats.studies.bai2024.validate`` (e.g. ``--seeds 1 2 3 4 5 6 --trials 20``)."""
    _install(session)
    session.run("python", "-m", "biasstats.studies.bai2024.validate", "--out",
                str(ROOT / "reports" / "validation"), *session.posargs)


@nox.session(python=PYTHON)
def validate_rating(session: nox.Session) -> None:
    """The simulated CV-rating design of issue 26 over replications (hours on 2 cores): per
    seed, the attempts its automatic refit plan takes and whether the gate passes; the 90%
    coverage of the E[rating] contrasts with its binomial and replication SEs
    (tests/simulate/rating_coverage.py; extra arguments go to it, e.g. ``--seeds 1 2 3``)."""
    _install(session)
    session.run("python", "tests/simulate/rating_coverage.py", *session.posargs)


@nox.session(python=PYTHON)
def sbc(session: nox.Session) -> None:
    """Simulation-based calibration of the canonical bias model (200 fits; minutes)."""
    _install(session)
    session.run("python", "-m", "biasstats.studies.bai2024.sbc", "--sims", "200", "--out",
                str(ROOT / "reports" / "sbc"), *session.posargs)


@nox.session(python=PYTHON)
def draws(session: nox.Session) -> None:
    """Same seed, same draws: every shipped analysis with data in the repository, fitted
    short, against the fingerprints in tests/run/same_draws.json (skips on another library
    stack; ``python tests/run/test_same_draws.py --record`` records them again)."""
    _install(session)
    session.run("pytest", "-m", "draws", "-n", "0", *session.posargs, success_codes=[0])


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """The slow statistical validation tests (``pytest -m slow``: coverage over replications,
    recovery of every family; tens of minutes)."""
    _install(session)
    session.run("pytest", "-m", "slow", *session.posargs, success_codes=[0])
