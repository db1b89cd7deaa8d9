"""A synthesis across analyses (issue 25 item 3): the leaderboard's ranks and P(rank 1) from
known draws, the meta-analysis against the closed form of the normal case, the outputs and
the index, and every mistake as one line."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm
from synthesis_fixtures import fake_analysis

from biasstats.cli import main
from biasstats.synthesis.leaderboard import leaderboard
from biasstats.synthesis.meta import random_effects

EST = ["--estimand", "contrast:condition"]


def test_leaderboard_of_three_analyses_has_the_exact_rank_probabilities(tmp_path, capsys):
    # A is always 5, C always 1, B is 0 or 10 with probability 1/2: whatever the pairing of
    # draws, B is first or last half the time, A first or second, C second or third
    root = tmp_path / "reports"
    fake_analysis(root, "a", np.full(8, 5.0))
    fake_analysis(root, "b", np.array([0.0, 10.0] * 4))
    fake_analysis(root, "c", np.full(8, 1.0))
    assert main(["summarize", str(root), *EST]) == 0
    out = root / "summary"
    board = pl.read_csv(out / "tables" / "leaderboard.csv")
    p_best = dict(zip(board["analysis"], board["p_rank_1"], strict=True))
    assert p_best == {"a": 0.5, "b": 0.5, "c": 0.0}
    probs = {r["analysis"]: (r["rank_1"], r["rank_2"], r["rank_3"])
             for r in pl.read_csv(out / "tables" / "rank_probabilities.csv").iter_rows(named=True)}
    assert probs == {"a": (0.5, 0.5, 0.0), "b": (0.5, 0.0, 0.5), "c": (0.0, 0.5, 0.5)}
    assert board.filter(pl.col("analysis") == "b").row(0, named=True)["mean"] == 5.0
    # the outputs: tables in LaTeX too, the figure, the page linking each analysis' report,
    # and the reports index listing the summary
    assert (out / "tables" / "leaderboard.tex").read_text().count("\\\\") >= 3
    assert (out / "tables" / "meta_analysis.tex").is_file()
    assert {p.suffix for p in (out / "figures").iterdir()} == {".pdf", ".svg", ".png"}
    page = (out / "summary.html").read_text()
    for name in "abc":
        assert f'href="../{name}/report.html"' in page
    assert "Pooled effect" in page and "prediction interval" in page
    index = (root / "index.html").read_text()
    assert 'href="summary/summary.html"' in index and 'href="a/report.html"' in index
    s = json.loads((out / "summary.json").read_text())
    assert [a["name"] for a in s["analyses"]] == ["a", "b", "c"]
    assert "P(rank 1)" not in capsys.readouterr().err


def test_ranks_pair_independent_draws_not_their_stored_order():
    # two analyses whose draws share their noise in stored order (as fits with one seed on
    # similar data can): paired as stored, B would beat A in every draw
    z = np.random.default_rng(3).standard_normal(4000)
    board = leaderboard(["a", "b"], [z, z + 0.5], prob=0.9)
    p = dict(zip(board.table["analysis"], board.table["p_best"], strict=True))
    exact = norm.cdf(0.5 / np.sqrt(2))  # P(B > A) for independent N(0, 1) and N(0.5, 1)
    assert abs(p["b"] - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000)
    assert p["a"] + p["b"] == pytest.approx(1.0)
    low = leaderboard(["a", "b"], [z, z + 0.5], order="lowest")
    assert low.table["analysis"][0] == "a"


def _normal_case(seed=1, K=12, S=2000):
    """Draws that are exactly normal posteriors N(y_i, s_i) (deterministic quantiles)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.1, 0.3, K)
    y = rng.normal(rng.normal(0.3, 0.2, K), s)
    q = norm.ppf((np.arange(S) + 0.5) / S)
    return y, s, [yi + si * rng.permutation(q) for yi, si in zip(y, s, strict=True)]


def _closed_form(y, s, tau_prior):
    """The normal-normal model with a flat prior on mu and tau ~ Half-Normal(tau_prior):
    p(tau | y) and E[mu | tau, y], V[mu | tau, y] in closed form (Gelman et al., BDA 5.4),
    integrated over tau on a fine grid."""
    taus = np.linspace(1e-6, 6 * tau_prior, 40001)
    w = 1 / (s[None] ** 2 + taus[:, None] ** 2)
    V = 1 / w.sum(axis=1)
    mh = (w * y).sum(axis=1) * V
    lp = (-0.5 * (taus / tau_prior) ** 2 + 0.5 * np.log(V) + 0.5 * np.log(w).sum(axis=1)
          - 0.5 * (w * (y[None] - mh[:, None]) ** 2).sum(axis=1))
    p = np.exp(lp - lp.max())
    p /= p.sum()
    e_mu = (p * mh).sum()
    return e_mu, np.sqrt((p * (V + mh ** 2)).sum() - e_mu ** 2), (p * taus).sum(), \
        np.sqrt((p * taus ** 2).sum() - (p * taus).sum() ** 2)


def test_meta_analysis_of_normal_posteriors_is_the_closed_form():
    y, s, draws = _normal_case()
    m = random_effects(draws, prob=0.9, tau_prior=0.5)
    e_mu, sd_mu, e_tau, sd_tau = _closed_form(y, s, 0.5)
    n = len(m.mu)
    assert abs(m.mu.mean() - e_mu) < 4 * sd_mu / np.sqrt(n)
    assert m.mu.std() == pytest.approx(sd_mu, rel=0.03)
    assert abs(m.tau.mean() - e_tau) < 4 * sd_tau / np.sqrt(n)
    assert m.tau.std() == pytest.approx(sd_tau, rel=0.03)
    # the prediction: theta_new = mu + tau z, so its variance adds E[tau^2]
    assert m.predicted.var() == pytest.approx(sd_mu ** 2 + e_tau ** 2 + sd_tau ** 2, rel=0.05)
    assert not m.tau_prior_default and m.tau_prior == 0.5


def test_a_skewed_posterior_is_not_treated_as_normal():
    # one analysis' posterior is a lognormal (mean 1, heavily skewed): the pooled mean moves
    # toward where its mass is (its mode, below 1), not toward its mean as a normal would
    rng = np.random.default_rng(5)
    sk = rng.lognormal(-0.5 * 0.8 ** 2, 0.8, 8000)  # mean 1, median 0.73
    others = [rng.normal(1.0, 0.6, 8000) for _ in range(2)]
    as_draws = random_effects([sk, *others], tau_prior=0.05)
    as_normal = random_effects([rng.normal(sk.mean(), sk.std(), 8000), *others], tau_prior=0.05)
    assert as_draws.mu.mean() < as_normal.mu.mean() - 0.05


@pytest.mark.parametrize("setup, args, message", [
    ("empty", [], "analyses: no analyses found in {root} (an analysis folder holds "
                  "estimand_draws.parquet, written by biasstats report)"),
    ("missing", [], "estimand contrast:condition is not in analysis 'b' ({root}/b): its "
                    "contrast terms: group"),
    ("units", [], "estimand contrast:condition is on different units across analyses (a: "
                  "percentage points; b: outcome units): a synthesis compares one quantity "
                  "on one unit"),
    ("declared", [], "estimand contrast:condition is on different units across analyses (a: "
                     "tokens; b: seconds): a synthesis compares one quantity on one unit"),
    ("old", [], "{root}/b: no estimand_draws.parquet (built before biasstats kept the draws "
                "of its estimands): rebuild it with biasstats report (or biasstats effects) "
                "on its spec"),
    ("levels", [], "estimand contrast:condition has 2 levels in analysis 'a' ({root}/a): "
                   "choose one with level = ... (--level): treated − control, x − control"),
    ("levels", ["--level", "nope"], "estimand contrast:condition has no level 'nope' in "
                                    "analysis 'a' ({root}/a): its levels: treated − control, "
                                    "x − control"),
    ("one", [], "a synthesis needs at least two analyses; found one: 'a' ({root}/a)"),
    ("renamed", [], "estimand contrast:condition is a different level in different analyses "
                    "(a: treated − control; b: b − a): a synthesis compares one level, named "
                    "alike in every analysis (level = ..., --level)"),
])
def test_bad_input_is_one_line(tmp_path, capsys, setup, args, message):
    root = tmp_path / "reports"
    root.mkdir()
    d = np.linspace(-1, 1, 20)
    if setup != "empty":
        fake_analysis(root, "a", d, unit="outcome units" if setup == "declared" else
                      "percentage points", outcome_unit="tokens" if setup == "declared" else "",
                      extra_levels={"x − control": d} if setup == "levels" else None)
    if setup in ("missing", "units", "declared", "levels", "renamed"):
        fake_analysis(root, "b", d, term="group" if setup == "missing" else "condition",
                      level="b − a" if setup == "renamed" else "treated − control",
                      unit="percentage points" if setup in ("levels", "renamed")
                      else "outcome units",
                      outcome_unit="seconds" if setup == "declared" else "")
    if setup == "old":
        (root / "b").mkdir()
        pl.DataFrame({"estimand": ["contrast"]}).write_parquet(root / "b" / "estimands.parquet")
    rc = main(["summarize", str(root), *EST, *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == "error: " + message.format(root=root) + "\n"
    assert not (root / "summary").exists()  # nothing written


def test_a_summary_spec_names_its_analyses_and_estimand(tmp_path, capsys):
    root = tmp_path / "reports"
    rng = np.random.default_rng(0)
    for i, name in enumerate(["m1", "m2", "m3"]):
        fake_analysis(root, name, rng.normal(i, 0.5, 500))
    spec = tmp_path / "gap.toml"
    spec.write_text('[summary]\ntitle = "Gap across models"\nanalyses = ["reports/m*"]\n'
                    'estimand = "contrast:condition"\nrank = "lowest"\nhdi_prob = 0.9\n'
                    "tau_prior = 2.0\n")
    assert main(["summarize", str(spec)]) == 0
    s = json.loads((root / "gap" / "summary.json").read_text())
    assert s["title"] == "Gap across models" and s["rank"] == "lowest"
    assert [r["analysis"] for r in s["leaderboard"]] == ["m1", "m2", "m3"]
    assert s["tau_prior"] == 2.0 and s["hdi_prob"] == 0.9
    spec.write_text('[summary]\nanalyses = ["reports"]\nestimand = "contrast:condition"\n'
                    "tau = 1\n")
    assert main(["summarize", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec}: unknown key 'tau' in [summary] (expected one of: "
                          "name, title, analyses, estimand,")
    spec.write_text('[summary]\nanalyses = ["reports"]\nestimand = "condition"\n')
    assert main(["summarize", str(spec)]) == 2
    assert capsys.readouterr().err == (
        f"error: {spec}: [summary] estimand 'condition': expected <estimand>:<term> with the "
        "estimand one of mean, contrast, slope, impact (e.g. contrast:condition, "
        "mean:overall)\n")



def test_a_summary_spec_is_given_alone(tmp_path, capsys):
    spec = tmp_path / "gap.toml"
    spec.write_text('[summary]\nanalyses = ["reports"]\nestimand = "contrast:condition"\n')
    assert main(["summarize", str(spec), "--level", "b − a"]) == 2
    assert capsys.readouterr().err == (
        f"error: {spec}: a [summary] spec names its analyses and estimand itself; give it "
        "alone (with --out at most), not with --level\n")
