"""Estimands of ordinal and categorical outcomes: the probability of each response category.

A categorical answer (multinomial logit) and a 1–5 rating (ordered logistic) are simulated by
condition with prompt effects (biasstats.simulate.designs); the per-category probability of
each condition and the differences between conditions (percentage points) must lie within
3.5 posterior SDs of this design's truth, and the categories' probabilities must sum to 1.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import biasstats
from biasstats.cli import main
from biasstats.effects.estimands import EffectsRequest, compute_estimands
from biasstats.simulate import designs


def _get(table: pl.DataFrame, term: str, level: str, category: str, scale: str) -> dict:
    rows = table.filter((pl.col("term") == term) & (pl.col("level") == level)
                        & (pl.col("category") == category) & (pl.col("scale") == scale))
    assert rows.height == 1, (term, level, category, scale, table)
    return rows.row(0, named=True)


def _near(row: dict, truth: float, k: float = 3.5) -> bool:
    return abs(row["mean"] - truth) < k * row["sd"]


def _check_against_truth(est, truth, conditions, categories, pair):
    assert est.categories == tuple(categories)
    for cond in conditions:
        total = 0.0
        for cat in categories:
            row = _get(est.means, "condition", cond, cat, "probability")
            assert _near(row, truth[f"mean:condition:{cond}:{cat}"]), (cond, cat, row, truth)
            total += row["mean"]
        assert abs(total - 1.0) < 1e-9
        # the draws behind the rows sum to 1 draw by draw
        s = sum(est.draws[f"mean:condition:probability:{cat}"][1] for cat in categories)
        assert np.allclose(s, 1.0)
    for cat in categories:
        d = _get(est.contrasts, "condition", pair, cat, "difference")
        assert _near(d, truth[f"difference:condition:{pair}:{cat}"]), (cat, d, truth)
    diffs = est.contrasts.filter((pl.col("level") == pair)
                                 & (pl.col("scale") == "difference"))["mean"].sum()
    assert abs(diffs) < 1e-9  # percentage points over the categories sum to 0


def test_categorical_per_category_probabilities_cover_truth(categorical_fit):
    # designs.categorical_choice(seed=4, prompts=10, reps=30), "answer ~ condition + (1|prompt)"
    # (tests/conftest.py)
    fit, df, truth = categorical_fit
    est = compute_estimands(fit)
    cats = ["comply", "hedge", "refuse"]
    _check_against_truth(est, truth, ["neutral", "sensitive"], cats, "sensitive − neutral")
    # the model's average of a condition is near its observed shares (a saturated condition)
    obs = df.filter(pl.col("condition") == "sensitive")["answer"].value_counts(normalize=True)
    for cat, share in obs.iter_rows():
        assert abs(_get(est.means, "condition", "sensitive", cat, "probability")["mean"]
                   - share) < 0.03
    assert est.ranks.height == 0 and not any("ranks" in n for n in est.notes)  # none asked
    asked = biasstats.estimands(fit, rank="prompt")
    assert asked.ranks.height == 0 and any("ranks of prompt not computed" in n
                                           for n in asked.notes)
    assert set(est.contrasts["scale"]) == {"difference"}


def test_ordinal_per_category_probabilities_cover_truth(cumulative_fit):
    # designs.ordinal_rating(seed=5, prompts=10, reps=30), "rating ~ condition + (1|prompt)"
    # (tests/conftest.py)
    fit, _, truth = cumulative_fit
    est = compute_estimands(fit, EffectsRequest(by=("condition",), contrasts=("condition",)))
    _check_against_truth(est, truth, ["control", "treated"], ["1", "2", "3", "4", "5"],
                         "treated − control")
    # a positive effect moves mass to the top: P(5) rises, P(1) falls
    assert _get(est.contrasts, "condition", "treated − control", "5", "difference")["mean"] > 0
    assert _get(est.contrasts, "condition", "treated − control", "1", "difference")["mean"] < 0


RATINGS_SPEC = """[analysis]
name = "ratings"
[data]
source = "ratings.csv"
outcome = "rating"
[model]
formula = "rating ~ condition + (1|prompt)"
family = "{family}"
unit = "trial"
[fit]
chains = 2
tune = 200
draws = 150
[effects]
{effects}
[checks]
allow_failure = true
"""


def _report(tmp_path, df: pl.DataFrame, family: str, effects: str):
    """``biasstats report`` of ratings.csv (``df``) with a family and ``[effects]`` lines:
    (exit code, spec path)."""
    df.write_csv(tmp_path / "ratings.csv")
    spec = tmp_path / "ratings.toml"
    spec.write_text(RATINGS_SPEC.format(family=family, effects=effects))
    return main(["report", str(spec), "--out", str(tmp_path / "out")]), spec


@pytest.mark.parametrize("family", ["cumulative", "categorical", "ordinal"])
def test_rope_on_a_categorical_family_is_one_line_before_sampling(tmp_path, capsys, family):
    df, _ = designs.ordinal_rating(seed=5, prompts=4, reps=5)
    rc, spec = _report(tmp_path, df, family, "rope = 0.05")
    name = "cumulative" if family == "ordinal" else family
    assert rc == 2
    assert capsys.readouterr().err == (
        f"error: {spec}: [effects] rope: family '{name}' has no single outcome scale for a "
        "ROPE (it reports one probability per response category); remove the key\n")
    assert not (tmp_path / "out").exists()  # refused at spec load: nothing ingested or fitted


# slow (25 s): a whole ordinal report; per-category estimands, shares checks and the
# category probabilities have their own default-run tests
@pytest.mark.slow
def test_ordinal_report_shows_each_category(tmp_path, capsys):
    df, _ = designs.ordinal_rating(seed=6, prompts=6, reps=15)
    assert _report(tmp_path, df, "cumulative", 'outcome_label = "rating"\nrank = "prompt"'
                   )[0] == 0
    out = tmp_path / "out" / "ratings"
    est = pl.read_parquet(out / "estimands.parquet")
    means = est.filter((pl.col("estimand") == "mean") & (pl.col("term") == "condition"))
    assert sorted(means["category"].unique()) == ["1", "2", "3", "4", "5"]
    assert np.allclose(means.group_by("level").agg(pl.col("mean").sum())["mean"], 1.0)
    # grouped shares check: observed shares per condition are the data's
    ppc = pl.read_csv(out / "tables" / "ppc_condition.csv")
    for r in ppc.iter_rows(named=True):
        sub = df.filter(pl.col("condition") == r["level"])
        assert abs(r["observed"] - (sub["rating"] == int(r["category"])).mean()) < 1e-12
    for fig in ("estimand_condition", "ppc_condition", "ppc_overall"):
        assert (out / "figures" / f"{fig}.svg").is_file(), fig
    html = (out / "report.html").read_text()
    assert "P(rating = 5)" in html and "percentage points" in html
    assert "not drawn by this version" not in html and "does not summarise" not in html
    # biasstats effects: the same posterior (cached), the category column kept
    capsys.readouterr()
    assert main(["effects", str(tmp_path / "ratings.toml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "note: ranks of prompt not computed" in printed
    table = pl.read_csv(out / "estimands.csv")
    assert "category" in table.columns and table.height == est.height


def test_category_probabilities_match_the_pymc_likelihoods():
    """The family table's categories(eta, aux) equal the probabilities the models sample
    from: PyMC's OrderedLogistic and Categorical(logit_p = (0, eta))."""
    import pymc as pm

    from biasstats.model.families import FAMILIES

    eta = np.array([[-0.7, 0.0, 1.3]])                      # (S = 1, rows = 3)
    cut = np.array([-1.0, 0.4, 2.0])
    p = FAMILIES["cumulative"].categories(eta, {"cutpoints": cut[None, None, :]})
    for i, e in enumerate(eta[0]):
        d = pm.OrderedLogistic.dist(eta=e, cutpoints=cut)
        want = [float(np.exp(pm.logp(d, k).eval())) for k in range(4)]
        np.testing.assert_allclose(p[0, i], want, rtol=1e-10)
    eta2 = np.array([[[0.5, -1.0], [2.0, 0.3]]])            # (S = 1, rows = 2, K-1 = 2)
    p2 = FAMILIES["categorical"].categories(eta2, {})
    for i in range(2):
        d = pm.Categorical.dist(logit_p=np.concatenate([[0.0], eta2[0, i]]))
        want = [float(np.exp(pm.logp(d, k).eval())) for k in range(3)]
        np.testing.assert_allclose(p2[0, i], want, rtol=1e-10)


def test_ordinal_expected_rating_is_the_category_values_weighted_by_their_probabilities():
    """E[rating] per level (issue 26 item 5): sum_k k P(y = k) of the same draws, and its
    contrast in rating points equals the difference of the two levels' expected ratings."""
    df, truth = designs.ordinal_rating(seed=3)
    fit = biasstats.fit("rating ~ condition + (1|prompt)", data=df, family="cumulative",
                        chains=2, tune=300, draws=300, seed=2, progress=False)
    est = biasstats.estimands(fit, by=["condition"], contrasts=["condition"], rank=None,
                              slopes=[])
    cats = list(est.categories)
    for level in ("control", "treated"):
        _, p = zip(*[(c, est.draws[f"mean:condition:probability:{c}"]) for c in cats],
                   strict=True)
        levels = p[0][0]
        probs = np.stack([x[1][:, levels.index(level)] for x in p], axis=1)  # (S, K)
        rating = probs @ np.array([float(c) for c in cats])
        row = est.means.filter((pl.col("term") == "condition") & (pl.col("level") == level)
                               & (pl.col("scale") == "expected rating")).row(0, named=True)
        assert row["mean"] == pytest.approx(rating.mean())
        # the truth of the design: the category probabilities of the truth, weighted
        true = sum(float(c) * truth[f"mean:condition:{level}:{c}"] for c in cats
                   if f"mean:condition:{level}:{c}" in truth)
        if true:
            assert row["hdi_low"] - 0.05 <= true <= row["hdi_high"] + 0.05
    d = est.contrasts.filter(pl.col("scale") == "difference (rating points)").row(0, named=True)
    means = est.means.filter(pl.col("scale") == "expected rating")
    t = means.filter(pl.col("level") == "treated")["mean"][0]
    c = means.filter(pl.col("level") == "control")["mean"][0]
    assert d["level"] == "treated − control" and d["mean"] == pytest.approx(t - c)
    assert set(est.all_rows().filter(pl.col("scale") == "difference (rating points)")["unit"]) \
        == {"rating points"}
    assert set(est.all_rows().filter((pl.col("scale") == "difference")
                                     & pl.col("category").is_not_null())["unit"]) \
        == {"percentage points"}
