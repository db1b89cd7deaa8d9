"""Checks for every family: grouped category shares, count rootograms, LOO comparison.

The predictive-check tables are checked against counts taken from the data directly (exact),
and the comparison against a known truth: with a real condition effect, the model with the
condition term has the larger elpd.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import xarray as xr

import biasstats
from biasstats.checks.compare import compare_models
from biasstats.checks.ppc import count_frequencies, grouped_shares
from biasstats.cli import main
from biasstats.simulate import designs


def _fake_fit(y: np.ndarray, rep: np.ndarray, name: str = "y"):
    """Just what count_frequencies reads: spec.y, the formula's response and replicated y."""
    pp = xr.Dataset({name: (("chain", "draw", "obs"), rep[None])})
    return SimpleNamespace(spec=SimpleNamespace(y=y, formula=SimpleNamespace(response=name)),
                           idata=xr.DataTree.from_dict({"posterior_predictive": pp}))


def test_count_frequencies_per_value_and_per_bin():
    rng = np.random.default_rng(0)
    y = rng.poisson(3.0, 500)
    rep = np.stack([y, y, y])  # replications identical to the data: no misfit anywhere
    t = count_frequencies(_fake_fit(y, rep))
    assert t["low"].to_list() == list(range(y.max() + 1))  # one row per value 0..max
    assert t["observed"].to_list() == np.bincount(y).astype(float).tolist()
    assert t["rep_mean"].to_list() == t["observed"].to_list()
    # counts in the hundreds: equal-width bins, the last open to the right
    y = rng.negative_binomial(8, 8 / (8 + 300.0), 400)
    rep = np.stack([rng.permutation(y) for _ in range(20)])
    t = count_frequencies(_fake_fit(y, rep), max_bins=40)
    w = int(t["low"][1] - t["low"][0])
    assert w == int(np.ceil((max(y.max(), np.percentile(rep, 99.5)) + 1) / 40))
    nb = t.height
    assert t["observed"].to_list() == np.bincount(np.minimum(y // w, nb - 1),
                                                  minlength=nb).astype(float).tolist()
    assert t["observed"].sum() == len(y) and np.allclose(t["rep_mean"].sum(), len(y))


def test_grouped_shares_match_the_data():
    df, _ = designs.categorical_choice(seed=1, prompts=4, reps=10)
    cats = ["comply", "hedge", "refuse"]
    code = {c: i for i, c in enumerate(cats)}
    y = np.array([code[a] for a in df["answer"]])
    spec = SimpleNamespace(cells=df, y=y, response_levels=cats)
    rep = np.stack([y] * 5)
    t = grouped_shares(spec, rep, ("condition",))
    assert set(t.columns) >= {"group_term", "level", "category", "observed", "rep_low"}
    for cond in ("neutral", "sensitive"):
        sub = df.filter(pl.col("condition") == cond)
        for cat in cats:
            row = t.filter((pl.col("level") == cond) & (pl.col("category") == cat)).row(
                0, named=True)
            assert row["observed"] == (sub["answer"] == cat).mean()
            assert row["rep_mean"] == row["observed"] and row["n"] == sub.height
    assert np.allclose(t.group_by("level").agg(pl.col("observed").sum())["observed"], 1.0)


# slow (9-11 s, two fits): the default run's count report compares two models by LOO on
# the same rows and asserts the true one ranks first
@pytest.mark.slow
def test_loo_comparison_of_a_gaussian_model_prefers_the_true_one():
    df, _ = designs.gaussian_condition(seed=3, prompts=6, reps=15)
    kw = dict(family="gaussian", chains=2, tune=300, draws=300, seed=2, progress=False)
    fits = {"with condition": biasstats.fit("y ~ condition + x + (1|prompt)", data=df, **kw),
            "without": biasstats.fit("y ~ x + (1|prompt)", data=df, **kw)}
    table = compare_models(fits, df)
    best = table.row(0, named=True)
    assert best["model"] == "with condition"
    worse = table.row(1, named=True)
    gap = table["elpd"][0] - table["elpd"][1]
    assert np.isclose(abs(worse["elpd_diff"]), gap)
    # a 35-unit effect with sigma 30 over 180 rows: expected gap about 26 (n/2 log(1 + 35²/4
    # / 30²)); here more than two standard errors of the difference
    assert gap > 2 * worse["dse"], table


SPEC = """[analysis]
name = "{name}"
[data]
source = "{name}.csv"
outcome = "{outcome}"
[model]
formula = "{formula}"
family = "{family}"
unit = "trial"
[fit]
chains = 2
tune = 200
draws = 200
[effects]
outcome_label = "reasoning tokens"
unit = "tokens"
[checks]
allow_failure = true
alternatives = ["{alternative}"]
"""


def _report(tmp_path, df: pl.DataFrame, **fields) -> tuple[int, object]:
    """``biasstats report`` of ``df`` written as <name>.csv with SPEC's fields filled."""
    df.write_csv(tmp_path / f"{fields['name']}.csv")
    spec = tmp_path / f"{fields['name']}.toml"
    spec.write_text(SPEC.format(**fields))
    return main(["report", str(spec), "--out", str(tmp_path / "out")]), spec


def test_count_report_has_rootogram_and_loo_comparison(tmp_path):
    df, _ = designs.token_counts(seed=2, prompts=8, reps=10, ratio=1.6)
    rc, _ = _report(tmp_path, df, name="tokens", outcome="tokens",
                    formula="tokens ~ condition + (1|prompt)", family="negative_binomial",
                    alternative="tokens ~ 1 + (1|prompt)")
    assert rc == 0
    out = tmp_path / "out" / "tokens"
    assert (out / "figures" / "rootogram.svg").is_file()
    freq = pl.read_csv(out / "tables" / "rootogram.csv")
    assert freq["observed"].sum() == df.height
    comp = pl.read_csv(out / "tables" / "model_comparison.csv")
    assert comp["model"][0] == "tokens ~ condition + (1|prompt)"
    html = (out / "report.html").read_text()
    assert "Hanging rootogram" in html and "on the same rows" in html


def test_alternatives_on_other_rows_are_refused_before_sampling(tmp_path, capsys):
    df, _ = designs.gaussian_condition(seed=3, prompts=4, reps=5)
    df = df.with_columns(pl.when(pl.int_range(pl.len()) % 7 == 0).then(None)
                         .otherwise(pl.col("x")).alias("x"))
    rc, spec = _report(tmp_path, df, name="scores", outcome="y",
                       formula="y ~ condition + (1|prompt)", family="gaussian",
                       alternative="y ~ condition + x")
    assert rc == 2
    n = df.height
    assert capsys.readouterr().err == (
        f"error: {spec}: [checks] alternatives: 'y ~ condition + x' uses "
        f"{n - len(range(0, n, 7))} rows and the model formula {n} (missing values in different "
        "rows); models compared by PSIS-LOO must be fitted to the same rows\n")
    assert not (tmp_path / "out").exists()
