"""Each result computed once per fit (issue 20 item 4): one analysis run, from spec to report,
parses each formula once and computes the posterior summary, the
PSIS-LOO and the fit's own linear predictor once each, whoever asks for them (gate, effects,
variance, PPC, LOO, figures, methods)."""

from __future__ import annotations

from collections import Counter

import arviz_stats
import numpy as np

import biasstats.checks.psis as psis
import biasstats.inference.predict as predict
from biasstats.model.formula import parse_formula
from biasstats.run.analysis import run_analysis

SPEC = """
[analysis]
name = "once"
[data]
source = "d.csv"
outcome = "y"
[model]
formula = "y ~ x + (1|g)"
family = "{family}"
[fit]
chains = 1
tune = 80
draws = 60
seed = 9
refit = false
[checks]
allow_failure = true
"""


def _counting(monkeypatch, module, name, counter, key=None):
    real = getattr(module, name)

    def wrapped(*args, **kwargs):
        counter[key(*args, **kwargs) if key else name] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def test_one_run_computes_each_result_once(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    g = np.repeat(list("abcdef"), 10)
    x = rng.integers(0, 2, g.size)
    y = rng.integers(0, 2, g.size)
    (tmp_path / "d.csv").write_text("y,x,g\n" + "".join(
        f"{a},{b},{c}\n" for a, b, c in zip(y, x, g, strict=True)))
    (tmp_path / "s.toml").write_text(SPEC.format(family="bernoulli"))

    calls: Counter = Counter()
    parse_formula.cache_clear()
    _counting(monkeypatch, psis, "loo", calls)
    # a summary of every parameter (the one the gate, tables and methods read)
    _counting(monkeypatch, arviz_stats, "summary", calls,
              key=lambda *a, var_names=None, **k: f"summary of {len(var_names or [])} variables")
    # the linear predictor over the fit's own cells: eta_from with the fit's full design
    _counting(monkeypatch, predict, "eta_from", calls,
              key=lambda post, spec, X, groups: f"eta over {X.shape[0]} rows")

    outcome = run_analysis(tmp_path / "s.toml", tmp_path / "out", progress=False)
    assert outcome.status == "built" and outcome.report.is_file()

    assert parse_formula.cache_info().misses == 1, parse_formula.cache_info()
    assert calls["loo"] == 1, calls
    full = [k for k in calls if k.startswith("summary of") and not k.startswith("summary of 0")]
    assert all(calls[k] == 1 for k in full) and len(full) == 1, calls
    etas = {k: n for k, n in calls.items() if k.startswith("eta over")}
    assert etas and max(etas.values()) == 1, calls
