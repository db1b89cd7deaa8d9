"""Published vs reanalysis (issue 21 item 5): which estimand row a ``[[replication]]`` entry
names (checked before sampling against the rows the data will give, and after against the
computed rows), and the comparison's numbers against known posteriors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import biasstats
from biasstats.cli import main
from biasstats.effects.estimands import EffectsRequest, Estimands, compute_estimands
from biasstats.effects.replication import (
    Z95,
    compare_published,
    expected_rows,
    match_entries,
    row_draws,
)
from biasstats.errors import SpecError
from biasstats.inference.predict import hdi
from biasstats.simulate import designs
from biasstats.spec.replication import ReplicationSpec

KEYS = ["estimand", "term", "stratum", "level", "scale", "category"]


def entry(estimand, published, citation="Paper (2025)", **kw) -> ReplicationSpec:
    return ReplicationSpec(estimand=estimand, published=published, citation=citation, **kw)


def _row_set(rows: pl.DataFrame) -> set[tuple]:
    cols = [pl.col(c) if c in rows.columns else pl.lit(None, dtype=pl.Utf8).alias(c)
            for c in KEYS]
    return set(rows.select(cols).iter_rows())


# ----------------------------------------------------------------------------- known draws
def _known(d: np.ndarray) -> Estimands:
    """Estimands of one contrast row ``b − a`` whose draws are ``d``."""
    h = hdi(d[:, None], 0.95)[0]
    contrasts = pl.DataFrame({"term": ["c"], "level": ["b − a"], "scale": ["difference"],
                              "mean": [d.mean()], "hdi_low": [h[0]], "hdi_high": [h[1]]})
    empty = pl.DataFrame(schema={"term": pl.Utf8, "level": pl.Utf8, "scale": pl.Utf8})
    return Estimands(empty, contrasts, empty, empty, EffectsRequest(contrasts=("c",)), "mean",
                     draws={"contrast:c:difference": (["b − a"], d[:, None])})


def test_the_comparison_from_known_draws():
    d = np.random.default_rng(1).normal(2.0, 0.5, 4000)
    est = _known(d)
    lo, hi = hdi(d[:, None], 0.95)[0]
    cmp = compare_published(est, [
        entry("contrast:c", 2.0, level="b - a", interval=[1.0, 3.0]),
        entry("contrast:c", 10.0, level="b − a", se=1.0),
        entry("contrast:c", -1.0, level="b − a")])
    rows = list(cmp.iter_rows(named=True))
    assert [r["inside"] for r in rows] == [True, False, False]
    assert [r["overlap"] for r in rows] == [True, False, None]
    for r, pub in zip(rows, (2.0, 10.0, -1.0), strict=True):
        assert r["mean"] == pytest.approx(d.mean())
        assert (r["hdi_low"], r["hdi_high"]) == pytest.approx((lo, hi))
        assert r["ratio"] == pytest.approx(d.mean() / pub)
    assert rows[0]["p_same_sign"] == pytest.approx((d > 0).mean())
    assert rows[2]["p_same_sign"] == pytest.approx((d < 0).mean())
    assert (rows[1]["published_low"], rows[1]["published_high"]) == pytest.approx(
        (10 - Z95, 10 + Z95))
    assert rows[1]["published_interval"] == "± 1.96 SE" and rows[0]["published_interval"] \
        == "reported" and rows[2]["published_low"] is None


def test_published_truth_is_inside_and_a_wild_value_outside(negative_binomial_fit):
    # designs.token_counts(seed=4), "tokens ~ condition + (1|prompt)" (tests/conftest.py)
    fit, _, truth = negative_binomial_fit
    est = compute_estimands(fit)
    q = truth["ratio:condition:incongruent − congruent"]
    diff = truth["difference:condition:incongruent − congruent"]
    cmp = compare_published(est, [
        entry("contrast:condition", q, level="incongruent / congruent"),
        entry("contrast:condition", 3.0, level="incongruent / congruent"),
        entry("contrast:condition", diff, level="incongruent - congruent", se=10.0),
        entry("contrast:condition", -diff, level="incongruent - congruent")])
    levels, draws = est.draws["contrast:condition:ratio"]
    r = draws[:, levels.index("incongruent / congruent")]
    assert cmp["inside"].to_list() == [True, False, True, False]
    assert cmp["ratio"][0] == pytest.approx(r.mean() / q)
    assert cmp["ratio"][1] == pytest.approx(r.mean() / 3.0)
    # a ratio's sign is its side of 1
    assert cmp["p_same_sign"][1] == pytest.approx((r > 1).mean()) and cmp["p_same_sign"][1] > .99
    assert cmp["p_same_sign"][3] < 0.01  # the published difference has the wrong sign
    assert cmp["unit"].to_list() == ["ratio", "ratio", "outcome units", "outcome units"]


# ----------------------------------------------------------------------------- addresses
@pytest.mark.parametrize("name", ["gaussian_fit", "bernoulli_fit", "negative_binomial_fit",
                                  "categorical_fit", "cumulative_fit"])
def test_the_rows_known_before_sampling_are_the_computed_rows(name, request):
    fit, _, _ = request.getfixturevalue(name)
    est = compute_estimands(fit)
    rows = est.all_rows()
    assert _row_set(expected_rows(est.request, fit.spec)) == _row_set(rows)
    for r in rows.iter_rows(named=True):  # and each row's draws are found
        assert row_draws(est, r).mean() == pytest.approx(r["mean"]), r


@pytest.fixture(scope="module")
def strata_fit():
    df, truth = designs.stratified_condition(seed=4, reps=6)
    fit = biasstats.fit("y ~ 0 + test:condition + (1|prompt)", data=df, family="gaussian",
                        chains=2, tune=200, draws=200, seed=3, progress=False)
    term = "condition | test"
    est = biasstats.estimands(fit, by=[term, "condition"], contrasts=[term, "test"],
                              impact=[term], rank=None, slopes=[])
    return fit, est, truth


def test_within_strata_rows_before_sampling_and_their_draws(strata_fit):
    fit, est, truth = strata_fit
    rows = est.all_rows()
    assert _row_set(expected_rows(est.request, fit.spec)) == _row_set(rows)
    # every row's draws summarise to the row itself
    for r in rows.iter_rows(named=True):
        assert row_draws(est, r).mean() == pytest.approx(r["mean"]), r
    avg = "average (equal weights)"
    (got,) = compare_published(est, [entry(
        "contrast:condition | test", truth[f"difference:condition | test:treated − control@{avg}"],
        stratum=avg, level="treated - control")]).iter_rows(named=True)
    assert got["inside"] and got["stratum"] == avg


def test_an_address_matching_no_row_lists_the_rows(strata_fit):
    fit, est, _ = strata_fit
    for rows in (est.all_rows(), expected_rows(est.request, fit.spec)):
        with pytest.raises(SpecError) as e:
            match_entries([entry("mean:condition | test", 300, stratum="t9", level="treated")],
                          rows, "s.toml: ")
        assert str(e.value) == (
            's.toml: [[replication]] entry 1: "mean:condition | test", stratum "t9", level '
            '"treated": no such row (rows of "mean:condition | test": strata t1, t2, t3, t4)')
        with pytest.raises(SpecError) as e:
            match_entries([entry("contrast:test", 1)], rows)
        assert str(e.value) == (
            '[[replication]] entry 1: "contrast:test": 6 rows match; add level (rows of '
            '"contrast:test": levels t2 − t1, t3 − t1, t4 − t1, t3 − t2, t4 − t2, t4 − t3)')
        with pytest.raises(SpecError) as e:
            match_entries([entry("mean:prompt", 1, level="p1")], rows)
        assert str(e.value).startswith(
            '[[replication]] entry 1: "mean:prompt", level "p1": this analysis has no such '
            "estimand (its estimands: mean:overall, mean:condition")


def test_a_wrong_level_is_found_before_sampling(tmp_path, capsys):
    df, _ = designs.stratified_condition(seed=5, reps=2)
    df.write_csv(tmp_path / "d.csv")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "d.csv"\noutcome = "y"\n[model]\n'
        'formula = "y ~ 0 + test:condition + (1|prompt)"\nfamily = "gaussian"\n'
        '[effects]\ncontrasts = ["condition | test"]\n[[replication]]\n'
        'estimand = "contrast:condition | test"\nstratum = "t1"\nlevel = "treated - contrl"\n'
        'published = 20\ncitation = "Paper (2025)"\n')
    out = tmp_path / "out"
    assert main(["fit", str(tmp_path / "s.toml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f'error: {tmp_path / "s.toml"}: [[replication]] entry 1: '
                   '"contrast:condition | test", stratum "t1", level "treated - contrl": no '
                   'such row (rows of "contrast:condition | test" with stratum "t1": levels '
                   "treated − control)\n")
    assert not list(out.rglob("posterior.nc"))  # nothing was sampled
