"""The study's own question (issue 21, items 1-2): contrasts, means and ranks within strata
(``"cond | test"``), their average over strata and spread across them, and the adverse-impact
ratio of ``impact``, held to known truth."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import biasstats
from biasstats.checks.estimand_coverage import run_estimand_coverage
from biasstats.cli import main
from biasstats.effects.replication import expected_rows, row_draws
from biasstats.simulate import designs

FAST = dict(chains=2, tune=300, draws=300, seed=3, progress=False)
TERM = "condition | test"


@pytest.fixture(scope="module")
def stratified():
    df, truth = designs.stratified_condition(seed=4, reps=12)
    fit = biasstats.fit("y ~ 0 + test:condition + (1|prompt)", data=df, family="gaussian",
                        **FAST)
    est = biasstats.estimands(fit, by=[TERM], contrasts=[TERM], rank=TERM, slopes=[])
    return df, truth, est


def test_within_strata_contrasts_recover_each_strata_effect_and_their_average(stratified):
    df, truth, est = stratified
    diff = est.contrasts.filter((pl.col("term") == TERM) & (pl.col("scale") == "difference"))
    assert diff["stratum"].to_list() == ["t1", "t2", "t3", "t4", "average (equal weights)"]
    for row in diff.iter_rows(named=True):
        t = truth[f"difference:{TERM}:{row['level']}@{row['stratum']}"]
        assert row["hdi_low"] <= t <= row["hdi_high"], (row["stratum"], t, row)
    # the average is the mean of the stratum contrasts, draw by draw
    levels, d = est.draws[f"contrast:{TERM}:difference:treated − control"]
    assert levels[-1] == "average (equal weights)"
    np.testing.assert_allclose(d[:, -1], d[:, :-1].mean(axis=1))
    # and the per-stratum contrast is the difference of the within-stratum means
    m_levels, m = est.draws[f"mean:{TERM}:t2"]
    i, j = m_levels.index("treated"), m_levels.index("control")
    np.testing.assert_allclose(d[:, 1], m[:, i] - m[:, j])


def test_spread_across_strata_and_the_same_sign_probability(stratified):
    _, truth, est = stratified
    het = est.heterogeneity.row(0, named=True)
    effects = [v for k, v in truth.items() if "average" not in k]
    assert het["strata"] == 4
    assert het["sd_low"] <= np.std(effects, ddof=1) <= het["sd_high"] + 5
    # effects of both signs (35 and -10): the posterior says the sign is not shared
    assert het["p_same_sign"] < 0.05


def test_means_and_ranks_within_strata(stratified):
    df, _, est = stratified
    means = est.means.filter(pl.col("term") == TERM)
    assert means.height == 8 and set(means["stratum"]) == {"t1", "t2", "t3", "t4"}
    # each within-stratum mean is near the observed mean of its rows (balanced cells)
    obs = df.group_by("test", "condition").agg(pl.col("y").mean()).rename(
        {"test": "stratum", "condition": "level", "y": "observed"})
    both = means.join(obs, on=["stratum", "level"])
    assert ((both["mean"] - both["observed"]).abs() < 4 * both["sd"] + 1).all()
    ranks = est.ranks.filter(pl.col("term") == TERM)
    assert ranks.height == 8
    t2 = ranks.filter(pl.col("stratum") == "t2").sort("rank_mean")
    assert t2["level"].to_list() == ["treated", "control"] and t2["p_best"][0] > 0.95


@pytest.fixture(scope="module")
def audit():
    df, _ = designs.ranking_audit(seed=2, requests=300)
    df = df.with_columns((pl.col("request").str.slice(1).cast(pl.Int64) % 2).cast(pl.Utf8)
                         .alias("job"))
    fit = biasstats.fit("top1 ~ 0 + group:job + (1|name)", data=df, family="bernoulli",
                        **FAST)
    return df, fit


def test_impact_ratio_is_the_ratio_of_the_worst_and_best_levels_rates_per_draw(audit):
    df, fit = audit
    est = biasstats.estimands(fit, by=["group | job"], contrasts=[], impact=["group | job"],
                              rank=None, slopes=[])
    imp = est.impact.filter(pl.col("stratum") == "0")
    levels, d = est.draws["impact:group | job:0"]
    _, m = est.draws["mean:group | job:0"]
    # the best and worst levels by posterior mean, fixed across draws (no winner's curse)
    b, w = int(np.argmax(m.mean(axis=0))), int(np.argmin(m.mean(axis=0)))
    np.testing.assert_allclose(d[:, -1], m[:, w] / m[:, b])
    np.testing.assert_allclose(d[:, :-1], m / m[:, [b]])
    air = imp.filter(pl.col("estimand") == "adverse-impact ratio").row(0, named=True)
    assert (air["worst"], air["best"]) == (levels[w], levels[b])
    assert 0 < air["hdi_low"] <= air["mean"] <= air["hdi_high"] <= 1
    assert air["p_below_four_fifths"] == pytest.approx(float((d[:, -1] < 0.8).mean()))
    # with weak priors and many requests, close to the observed rates' own ratio
    rates = df.filter(pl.col("job") == "0").group_by("group").agg(pl.col("top1").mean())
    observed = rates["top1"].min() / rates["top1"].max()
    assert abs(air["mean"] - observed) < 3 * air["sd"] + 0.05


def test_ratio_to_a_declared_reference_is_the_ratio_of_the_cell_means_draws(audit):
    """The reference ratio is each level's within-stratum mean over the reference level's,
    draw by draw (no selection); P(best) / P(worst) are the shares of draws in which a level
    has the highest / lowest mean, and the adverse-impact row flags an unsettled pair."""
    _, fit = audit
    term = "group | job"
    est = biasstats.estimands(fit, by=[term], contrasts=[], impact=[term], rank=None,
                              slopes=[], reference={term: "B"})
    for sn in ("0", "1"):
        m_levels, m = est.draws[f"mean:{term}:{sn}"]
        levels, d = est.draws[f"impact:{term}:{sn}"]
        r = m_levels.index("B")
        want = [f"{lv} / B" for lv in m_levels if lv != "B"]
        assert levels[:3] == want and levels[3:] == [*m_levels, "min / max"]
        others = [i for i in range(len(m_levels)) if i != r]
        np.testing.assert_allclose(d[:, :3], m[:, others] / m[:, [r]])
        rows = est.impact.filter((pl.col("stratum") == sn)
                                 & (pl.col("estimand") == "ratio to reference"))
        assert rows["level"].to_list() == want and set(rows["reference"]) == {"B"}
        for row, i in zip(rows.iter_rows(named=True), others, strict=True):
            q = m[:, i] / m[:, r]
            assert row["mean"] == pytest.approx(q.mean())
            assert row["p_positive"] == pytest.approx(float((q > 1).mean()))
            assert row["p_best"] == pytest.approx(float((m.argmax(axis=1) == i).mean()))
            assert row["p_worst"] == pytest.approx(float((m.argmin(axis=1) == i).mean()))
        air = est.impact.filter((pl.col("stratum") == sn)
                                & (pl.col("estimand") == "adverse-impact ratio")).row(0, named=True)
        b, w = m_levels.index(air["best"]), m_levels.index(air["worst"])
        p_b = float((m.argmax(axis=1) == b).mean())
        p_w = float((m.argmin(axis=1) == w).mean())
        assert (air["p_best"], air["p_worst"]) == pytest.approx((p_b, p_w))
        assert air["selection"] == ("clear" if min(p_b, p_w) >= 0.9 else "uncertain")
    # the rows a [[replication]] block may address, known before sampling, are these rows,
    # and each row's draws summarise to it ("A / B" addresses a ratio to the reference)
    rows = est.all_rows()
    assert sorted(map(tuple, expected_rows(est.request, fit.spec).select(
        "estimand", "term", "stratum", "level").rows())) == sorted(map(tuple, rows.select(
            "estimand", "term", "stratum", "level").rows()))
    for r in rows.filter(pl.col("estimand") == "impact").iter_rows(named=True):
        assert row_draws(est, r).mean() == pytest.approx(r["mean"]), r


def test_a_reference_keyed_by_an_undeclared_within_term_is_refused_at_load(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("y,g,h\n" + "".join(
        f"{i % 2},{'ab'[i % 3 == 0]},{'xy'[i % 4 == 0]}\n" for i in range(40)))
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "d.csv"\noutcome = "y"\n[model]\nformula = "y ~ g*h"\n'
        'family = "bernoulli"\n[effects]\nimpact = ["g | h"]\n'
        'reference = { "g|x" = "a" }\n')
    assert main(["fit", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    assert "[effects] reference: 'g|x'" in capsys.readouterr().err
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "d.csv"\noutcome = "y"\n[model]\nformula = "y ~ g*h"\n'
        'family = "bernoulli"\n[effects]\nimpact = ["g | h"]\n'
        'reference = { "g|h" = "c" }\n')
    assert main(["fit", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {tmp_path / 's.toml'}: [effects] reference: level 'c' of 'g|h' "
                   "is not in the data (levels: a, b)\n")


def test_impact_without_strata_is_refused_before_sampling(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("y,g,h\n" + "".join(
        f"{i % 2},{'ab'[i % 3 == 0]},{'xy'[i % 4 == 0]}\n" for i in range(40)))
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "d.csv"\noutcome = "y"\n[model]\nformula = "y ~ g + (1|h)"\n'
        'family = "bernoulli"\n[effects]\nimpact = ["g"]\n')
    assert main(["fit", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {tmp_path / 's.toml'}: [effects] impact: 'g' needs strata, e.g. "
                   "'g | llm' (each level's rate against the best level within each "
                   "stratum)\n")


def test_a_report_with_within_strata_estimands(tmp_path):
    df, _ = designs.stratified_condition(seed=5, reps=6)
    df.write_csv(tmp_path / "d.csv")
    (tmp_path / "s.toml").write_text(
        '[analysis]\nname = "strata"\n[data]\nsource = "d.csv"\noutcome = "y"\n'
        '[model]\nformula = "y ~ 0 + test:condition + (1|prompt)"\nfamily = "gaussian"\n'
        '[fit]\nchains = 2\ntune = 200\ndraws = 200\n[checks]\nallow_failure = true\n'
        'loo_pit = false\n'
        f'[effects]\nunit = "points"\ncontrasts = ["{TERM}"]\nby = ["{TERM}"]\n'
        f'impact = ["{TERM}"]\nreference = {{ condition = "control" }}\n')
    assert main(["report", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    tables = tmp_path / "out" / "strata" / "tables"
    names = sorted(p.name for p in tables.glob("*.csv"))
    assert any(n.startswith("contrasts_condition-test") for n in names), names
    assert any(n.startswith("heterogeneity_condition-test") for n in names), names
    contrasts = pl.read_csv(next(tables.glob("contrasts_condition-test*.csv")))
    assert contrasts["Stratum"].to_list()[-1] == "average (equal weights)"
    figures = tmp_path / "out" / "strata" / "figures"
    assert any(p.name.startswith("contrasts_condition-test") for p in figures.glob("*.svg"))
    html = (tmp_path / "out" / "strata" / "report.html").read_text()
    assert "within each level of test" in html
    # impact against the declared reference: "treated / control" per test, beside the
    # data-selected pair with P(best) / P(worst) and whether the data settle it
    impact = pl.read_csv(next(tables.glob("impact_condition-test*.csv")))
    ref = impact.filter(pl.col("Estimand") == "ratio to reference")
    assert ref["Level"].to_list() == ["treated / control"] * 4
    air = impact.filter(pl.col("Estimand") == "adverse-impact ratio")
    assert set(air["Selection"]) <= {"clear", "uncertain"} and air.height == 4
    assert {"P(best)", "P(worst)", "Pair"} <= set(impact.columns)
    assert "over the reference level control" in html and "(a fixed comparison)" in html
    assert "Ratio of each condition&#39;s mean y to control&#39;s within each test" in html
    unsure = air.filter(pl.col("Selection") == "uncertain")["Stratum"].to_list()
    assert ("is uncertain (posterior probability below 0.9) in "
            f"{len(unsure)} of 4 strata" in html) == bool(unsure)


@pytest.mark.slow
def test_within_strata_contrasts_cover_at_nominal_rate():
    """90% HDIs of the per-stratum contrasts and their average cover the truth at the nominal
    rate over 100 replications (5 estimands each: binomial SE of the rate about 0.013)."""
    cov = run_estimand_coverage(
        "gaussian", reps=100, prob=0.90,
        design=(designs.stratified_condition, {}, "y ~ 0 + test:condition + (1|prompt)"))
    print(cov.line())
    assert abs(cov.coverage - 0.90) < 3 * np.sqrt(0.9 * 0.1 / cov.table.height)


@pytest.mark.slow
def test_ratios_to_a_declared_reference_cover_at_nominal_rate():
    """90% HDIs of each group's ratio to the reference group (3 per stratum, 6 strata) cover
    the truth at the nominal rate over 100 replications of a ranking audit whose outcomes are
    as independent as the Bernoulli model assumes (measured: 0.897 over 200): a fixed
    comparison, unlike the ratios to the best and the adverse-impact ratio, whose pair is
    chosen from the data (0.80 and 0.84 there). The margin is 3 SEs of the coverage,
    clustered by replication."""
    cov = run_estimand_coverage("bernoulli_impact_independent", reps=100, prob=0.90, seed=1)
    t = cov.table.with_columns(pl.col("estimand").str.split(":").list.first().alias("kind"))
    ref = t.filter(pl.col("kind") == "ratio_to_reference")
    per = ref.group_by("replication").agg(pl.col("inside").mean())["inside"].to_numpy()
    se = per.std(ddof=1) / np.sqrt(per.size)
    print(cov.line()[:120], t.group_by("kind").agg(pl.col("inside").mean()))
    assert ref.height == 100 * 18
    assert abs(ref["inside"].mean() - 0.90) < 3 * se
    # the flag: every adverse-impact row says whether its pair is settled, from P(best/worst)
    air = t.filter(pl.col("kind") == "impact")
    want = air.select(pl.when(pl.min_horizontal("p_best", "p_worst") >= 0.9)
                      .then(pl.lit("clear")).otherwise(pl.lit("uncertain")))
    assert air["selection"].to_list() == want.to_series().to_list()
