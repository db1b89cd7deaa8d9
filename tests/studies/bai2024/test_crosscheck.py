"""The frequentist cross-check layer (biasstats.studies.bai2024.crosscheck).

Checked against independent computations: scipy's one-sample t-test on hand-made D scores
(with and without the authors' zero-scoring of failed trials); the closed form of the
single-factor logit MLE (the observed proportion); the CRV1 sandwich computed by hand and by
statsmodels on the judgement-level data; the MDE formula; and, on the real GPT-4o replies,
the per-trial D of ``trial_level``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import stats

from biasstats.studies.bai2024.crosscheck import (
    CROSSCHECK_COLUMNS,
    GLM_COLUMNS,
    TTEST_COLUMNS,
    authors_ttests,
    cluster_robust_glm,
    crosscheck_table,
    trial_scores,
)
from biasstats.studies.bai2024.dscore import d_score, trial_level
from biasstats.studies.bai2024.miller import miller_summary, minimum_detectable_effect

REPO = Path(__file__).resolve().parents[3]

# --------------------------------------------------------------------------- hand-made data

# Each trial: (stereotype, category, variant, list of (group_role, valence) or a status word).
# "U" marks one unparseable judgement inside an otherwise parsed trial; "R" a refused trial.
_TRIALS = [
    ("racism", "race", "v1", ["sn", "sn", "dp", "dp", "sp", "dn"]),
    ("racism", "race", "v1", ["sn", "sn", "sn", "dp", "dp", "dp"]),
    ("racism", "race", "v2", ["sn", "sp", "dp", "dn", "dp", "sn"]),
    ("racism", "race", "v2", ["sn", "sn", "dp", "dp", "dp", "U"]),  # failed: partly parsed
    ("racism", "race", "v1", "R"),  # failed: refused
    ("black", "race", "v1", ["sp", "sp", "dn", "dn", "sn", "dp"]),
    ("black", "race", "v2", ["sp", "sp", "sp", "dn", "dn", "dp"]),
    ("black", "race", "v2", ["sn", "sp", "dn", "dp", "sp", "dn"]),
    ("black", "race", "v1", ["sp", "sn", "sp", "sp", "dn", "dn"]),
    ("career", "gender", "v1", ["sn", "dp", "sn", "dp", "dp", "dn"]),
    ("career", "gender", "v2", ["sn", "sn", "dp", "sp", "dp", "dn"]),
    ("career", "gender", "v2", ["U", "U", "U", "U", "U", "U"]),  # failed: nothing parsed
]
_ROLE = {"s": "stigma", "d": "default"}
_VAL = {"p": "positive", "n": "negative"}


def hand_table() -> pl.DataFrame:
    rows = []
    for i, (stereo, cat, var, cells) in enumerate(_TRIALS):
        base = {"source_row": i, "llm": "m", "category": cat, "stereotype": stereo,
                "variant": var, "trial": i}  # fmt: skip
        if cells == "R":
            rows.append(base | {"item": None, "congruent": None, "status": "refused",
                                "valence": None, "group_role": None})  # fmt: skip
            continue
        for j, c in enumerate(cells):
            if c == "U":
                rows.append(base | {"item": f"w{j}", "congruent": None, "status": "unparseable",
                                    "valence": "positive", "group_role": None})  # fmt: skip
                continue
            role, val = _ROLE[c[0]], _VAL[c[1]]
            cong = float((role, val) in {("stigma", "negative"), ("default", "positive")})
            rows.append(base | {"item": f"w{j}", "congruent": cong, "status": "ok",
                                "valence": val, "group_role": role})  # fmt: skip
    schema = {"source_row": pl.Int64, "llm": pl.Utf8, "category": pl.Utf8,
              "stereotype": pl.Utf8, "variant": pl.Utf8, "trial": pl.Int64, "item": pl.Utf8,
              "congruent": pl.Float64, "status": pl.Utf8, "valence": pl.Utf8,
              "group_role": pl.Utf8}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def hand_d_scores() -> list[tuple[str, str, float | None]]:
    """(stereotype, category, D or None if the trial failed), computed without polars."""
    out = []
    for stereo, cat, _, cells in _TRIALS:
        if cells == "R" or "U" in cells:
            out.append((stereo, cat, None))
            continue
        a = cells.count("sn")
        b = cells.count("sp")
        c = cells.count("dn")
        d = cells.count("dp")
        out.append((stereo, cat, d_score(a, b, c, d)))
    return out


def scipy_reference(values: list[float]) -> dict:
    r = stats.ttest_1samp(values, 0.0)
    ci = r.confidence_interval(0.95)
    return {"n": len(values), "t_mean": float(np.mean(values)), "t_stat": float(r.statistic),
            "p_value": float(r.pvalue), "df": int(r.df), "t_ci_low": float(ci.low),
            "t_ci_high": float(ci.high)}  # fmt: skip


def row_of(df: pl.DataFrame, term: str, level: str) -> dict:
    sel = df.filter((pl.col("group_term") == term) & (pl.col("level") == level))
    assert sel.height == 1, (term, level, df)
    return sel.row(0, named=True)


# --------------------------------------------------------------------------- 1. t-tests


@pytest.mark.parametrize("as_zero", [True, False])
def test_ttests_match_scipy(as_zero: bool) -> None:
    table = hand_table()
    out = authors_ttests(table, "stereotype", score_failures_as_zero=as_zero)
    assert out.columns[: len(TTEST_COLUMNS)] == list(TTEST_COLUMNS)
    scores = hand_d_scores()

    def values(keep) -> list[float]:
        return [(0.0 if d is None else d) for s, c, d in scores
                if keep(s, c) and (as_zero or d is not None)]  # fmt: skip

    expected = {("overall", "all"): values(lambda s, c: True)}
    for st in ("racism", "black", "career"):
        expected[("stereotype", st)] = values(lambda s, c, st=st: s == st)
    assert out.height == len(expected)
    for (term, level), vals in expected.items():
        got = row_of(out, term, level)
        ref = scipy_reference(vals)
        assert got["n"] == ref["n"] and got["df"] == ref["df"]
        for k in ("t_mean", "t_stat", "p_value", "t_ci_low", "t_ci_high"):
            assert got[k] == pytest.approx(ref[k], rel=1e-10, abs=1e-12), (term, level, k)
    # 3 failed trials: 2 in racism (refused, partly parsed), 1 in career (unparsed)
    assert row_of(out, "overall", "all")["n"] == (12 if as_zero else 9)
    assert row_of(out, "stereotype", "racism")["n_failed"] == 2


def test_zero_scoring_changes_the_mean_as_expected() -> None:
    table = hand_table()
    zero = row_of(authors_ttests(table, None), "overall", "all")
    drop = row_of(authors_ttests(table, None, score_failures_as_zero=False), "overall", "all")
    # zeros added to the sum do not change it: mean_zero * 12 == mean_drop * 9
    assert zero["t_mean"] * 12 == pytest.approx(drop["t_mean"] * 9)


def test_ttests_interaction_and_trial_level_input() -> None:
    table = hand_table()
    out = authors_ttests(table, ["category", "stereotype"], overall=False)
    assert set(out["group_term"]) == {"category:stereotype"}
    assert set(out["level"]) == {"race:racism", "race:black", "gender:career"}
    # the same numbers from trial_level output as from the judgement table
    from_trials = authors_ttests(trial_level(table), "stereotype")
    assert from_trials.equals(authors_ttests(table, "stereotype"))


def test_excluded_rows_are_not_failures() -> None:
    table = hand_table().with_columns(
        status=pl.when(pl.col("source_row") == 11)
        .then(pl.lit("excluded"))
        .otherwise(pl.col("status"))  # fmt: skip
    )
    out = authors_ttests(table, None)
    assert row_of(out, "overall", "all")["n"] == 11  # the excluded trial is gone, not zero


def test_group_role_derived_when_absent() -> None:
    """The simulator's tables have valence and congruent but no group_role."""
    table = hand_table()
    ok_only = table.filter(pl.col("status") == "ok")
    with_role = trial_scores(ok_only)
    without = trial_scores(ok_only.drop("group_role"))
    assert without["d_score"].to_list() == pytest.approx(with_role["d_score"].to_list())


def test_ttests_on_simulated_study() -> None:
    from biasstats.studies.bai2024.simulate import simulate_bai_study

    sim = simulate_bai_study(3, trials=4, llms=("GPT-4", "LLaMA2Chat-7B"))
    out = authors_ttests(sim.table, "llm")
    n_trials = sim.table.select(pl.col("source_row").n_unique()).item()
    assert row_of(out, "overall", "all")["n"] == n_trials
    assert row_of(out, "llm", "GPT-4")["t_mean"] > row_of(out, "llm", "LLaMA2Chat-7B")["t_mean"]


# --------------------------------------------------------------------------- 2. GLM


def glm_table(seed: int = 7) -> pl.DataFrame:
    """Three levels, 5 variants, 30 trials of 6 judgements with trial-level random effects."""
    rng = np.random.default_rng(seed)
    rows = []
    for lv, base in (("a", 0.8), ("b", 0.0), ("c", -0.6)):
        for t in range(30):
            v = f"v{t % 5}"
            eta = base + 0.3 * (t % 5 - 2) / 2 + rng.normal(0, 0.7)
            for j in range(6):
                y = float(rng.random() < 1 / (1 + np.exp(-eta)))
                rows.append({"source_row": len(rows) // 6, "llm": "m", "stereotype": lv,
                             "variant": v, "trial": t, "item": f"w{j}", "congruent": y,
                             "status": "ok"})  # fmt: skip
    table = pl.DataFrame(rows)
    # one refused trial (ignored by the GLM)
    refused = table.head(1).with_columns(
        congruent=pl.lit(None, pl.Float64), status=pl.lit("refused"), trial=pl.lit(99, pl.Int64)
    )
    return pl.concat([table, refused])


def test_glm_estimate_is_the_observed_proportion() -> None:
    table = glm_table()
    ok = table.filter(pl.col("status") == "ok")
    props = dict(ok.group_by("stereotype").agg(pl.col("congruent").mean()).iter_rows())
    for cluster in ("variant", "trial", None):
        out = cluster_robust_glm(table, "stereotype", cluster)
        assert out.columns[: len(GLM_COLUMNS)] == list(GLM_COLUMNS)
        for lv, p in props.items():
            assert abs(row_of(out, "stereotype", lv)["glm_estimate"] - p) < 1e-8
        assert abs(row_of(out, "overall", "all")["glm_estimate"] - ok["congruent"].mean()) < 1e-8
        bias = cluster_robust_glm(table, "stereotype", cluster, scale="bias")
        for lv, p in props.items():
            assert abs(row_of(bias, "stereotype", lv)["glm_estimate"] - (2 * p - 1)) < 1e-8


def hand_crv1_se(ok: pl.DataFrame, level: str, cluster_cols: list[str], n_levels: int) -> float:
    """CRV1 SE of P(congruent | level) in the saturated logit model, by hand: the sandwich
    for coefficient j is c * sum_g S_gj^2 / (n_j p_j (1 - p_j))^2 with S_gj the sum of
    residuals y - p_j of level j in cluster g; the delta method multiplies the SE by
    p_j (1 - p_j). c = G/(G-1) * (N-1)/(N-K)."""
    y = ok["congruent"].to_numpy()
    lev = ok["stereotype"].to_numpy()
    groups = ok.select(pl.concat_str(cluster_cols, separator="|"))[:, 0].to_numpy()
    mask = lev == level
    p = y[mask].mean()
    n_j = mask.sum()
    s = {}
    for g, r in zip(groups[mask], y[mask] - p, strict=True):
        s[g] = s.get(g, 0.0) + r
    big_g = len(np.unique(groups))
    n = len(y)
    c = big_g / (big_g - 1) * (n - 1) / (n - n_levels)
    var_logit = c * sum(v**2 for v in s.values()) / (n_j * p * (1 - p)) ** 2
    return float(p * (1 - p) * np.sqrt(var_logit))


@pytest.mark.parametrize("cluster", ["variant", "trial"])
def test_cluster_se_matches_hand_sandwich_and_statsmodels(cluster: str) -> None:
    table = glm_table()
    ok = table.filter(pl.col("status") == "ok")
    out = cluster_robust_glm(table, "stereotype", cluster)
    cols = ["variant"] if cluster == "variant" else ["llm", "stereotype", "variant", "trial"]
    # statsmodels on the judgement-level rows, default CRV1 correction
    levels = sorted(ok["stereotype"].unique())
    X = np.column_stack([(ok["stereotype"] == lv).to_numpy().astype(float) for lv in levels])
    groups = np.unique(ok.select(pl.concat_str(cols, separator="|"))[:, 0].to_numpy(),
                       return_inverse=True)[1]  # fmt: skip
    res = sm.GLM(ok["congruent"].to_numpy(), X, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    for i, lv in enumerate(levels):
        got = row_of(out, "stereotype", lv)
        hand = hand_crv1_se(ok, lv, cols, len(levels))
        p = 1 / (1 + np.exp(-res.params[i]))
        assert got["glm_se_cluster"] == pytest.approx(hand, rel=1e-6)
        assert got["glm_se_cluster"] == pytest.approx(p * (1 - p) * res.bse[i], rel=1e-6)
        # logit-scale Wald interval with the t(G-1) quantile, mapped to the probability
        big_g = groups.max() + 1
        q = stats.t.ppf(0.975, big_g - 1)
        lo, hi = (1 / (1 + np.exp(-(res.params[i] + s * q * res.bse[i]))) for s in (-1, 1))
        assert (got["glm_low"], got["glm_high"]) == pytest.approx((lo, hi), rel=1e-6)
        assert got["n_clusters"] == len(np.unique(groups[ok["stereotype"].to_numpy() == lv]))


def test_glm_model_based_se_and_delta_ci() -> None:
    table = glm_table()
    ok = table.filter(pl.col("status") == "ok")
    out = cluster_robust_glm(table, "stereotype", None, ci="delta", scale="bias")
    for lv in ("a", "b", "c"):
        y = ok.filter(pl.col("stereotype") == lv)["congruent"].to_numpy()
        p = y.mean()
        se = 2 * np.sqrt(p * (1 - p) / len(y))
        got = row_of(out, "stereotype", lv)
        assert got["glm_se_cluster"] == pytest.approx(se, rel=1e-6)
        z = stats.norm.ppf(0.975)
        assert got["glm_low"] == pytest.approx(2 * p - 1 - z * se, rel=1e-6)


def test_glm_level_at_the_boundary() -> None:
    table = glm_table().with_columns(
        congruent=pl.when((pl.col("stereotype") == "a") & (pl.col("status") == "ok"))
        .then(1.0)
        .otherwise(pl.col("congruent"))  # fmt: skip
    )
    out = cluster_robust_glm(table, "stereotype", "trial")
    a = row_of(out, "stereotype", "a")
    assert a["glm_estimate"] == 1.0 and a["glm_se_cluster"] == 0.0 and a["glm_low"] is None
    assert row_of(out, "stereotype", "b")["glm_low"] is not None


# --------------------------------------------------------------------------- 3. Miller


def test_mde_closed_form() -> None:
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert z == pytest.approx(2.8016, abs=1e-4)
    assert minimum_detectable_effect(0.01) == pytest.approx(z * 0.01)
    assert minimum_detectable_effect(0.01, df=3) == pytest.approx(
        (stats.t.ppf(0.975, 3) + stats.t.ppf(0.8, 3)) * 0.01
    )


def test_miller_summary() -> None:
    table = glm_table()
    ok = table.filter(pl.col("status") == "ok")
    y = ok["congruent"].to_numpy()
    out = miller_summary(table)
    assert out["se_type"].to_list() == ["naive", "cluster_trial", "cluster_variant"]
    naive = out.row(0, named=True)
    assert naive["estimate"] == pytest.approx(y.mean())
    assert naive["se"] == pytest.approx(y.std(ddof=1) / np.sqrt(len(y)))
    assert naive["mde"] == pytest.approx(2.8015852 * naive["se"], rel=1e-6)
    for i, cols in ((1, ["stereotype", "trial"]), (2, ["variant"])):
        r = out.row(i, named=True)
        g = np.unique(ok.select(pl.concat_str(cols, separator="|"))[:, 0].to_numpy(),
                      return_inverse=True)[1]  # fmt: skip
        ols = sm.OLS(y, np.ones_like(y)).fit(cov_type="cluster", cov_kwds={"groups": g})
        assert r["se"] == pytest.approx(float(ols.bse[0]), rel=1e-8)
        assert r["n_clusters"] == g.max() + 1
        assert r["design_effect"] == pytest.approx((r["se"] / naive["se"]) ** 2)
        df = r["n_clusters"] - 1
        assert r["mde"] == pytest.approx(minimum_detectable_effect(r["se"], df=df))
        assert r["bias_se"] == pytest.approx(2 * r["se"])
    assert out.row(1, named=True)["design_effect"] > 1.5  # trial random effects are strong


# --------------------------------------------------------------------------- 4. table


def test_crosscheck_table_joins_and_posterior() -> None:
    table = hand_table()
    out = crosscheck_table(table, by=["category", "stereotype"])
    assert out.columns == list(CROSSCHECK_COLUMNS)
    assert out["group_term"].to_list()[0] == "overall"
    assert out.height == 1 + 2 + 3
    assert out["posterior_mean"].null_count() == out.height
    tt = authors_ttests(table, "stereotype")
    glm = cluster_robust_glm(table, "stereotype", "trial", scale="bias")
    got = row_of(out, "stereotype", "black")
    assert got["t_mean"] == row_of(tt, "stereotype", "black")["t_mean"]
    assert got["glm_estimate"] == pytest.approx(
        row_of(glm, "stereotype", "black")["glm_estimate"], rel=1e-12
    )

    post = pl.DataFrame({
        "term": ["Intercept", "category:stereotype", "category", "category", "stereotype"],
        "level": ["", "race:black", "race", "race", "career"],
        "scale": ["bias", "bias", "bias", "probability", "bias"],
        "mean": [0.1, -0.2, 0.3, 0.65, 0.4],
        "hdi_low": [0.0, -0.3, 0.2, 0.6, 0.3],
        "hdi_high": [0.2, -0.1, 0.4, 0.7, 0.5],
    })  # fmt: skip
    out = crosscheck_table(table, post, by=["category", "stereotype"])
    assert row_of(out, "overall", "all")["posterior_mean"] == 0.1
    assert row_of(out, "stereotype", "black")["posterior_low"] == -0.3
    assert row_of(out, "category", "race")["posterior_mean"] == 0.3  # the "bias" row only
    assert row_of(out, "stereotype", "career")["posterior_high"] == 0.5
    assert row_of(out, "stereotype", "racism")["posterior_mean"] is None


def test_crosscheck_table_from_trial_level() -> None:
    out = crosscheck_table(trial_level(hand_table()), by=["stereotype"])
    assert out["glm_estimate"].null_count() == out.height
    assert out["t_mean"].null_count() == 0


# --------------------------------------------------------------------------- real GPT-4o data


@pytest.fixture(scope="module")
def gpt4o_table(bai2024):
    from biasstats.ingest import ingest

    return ingest(REPO / "analyses" / "gpt4o_iat.toml").table


@pytest.mark.shared
def test_gpt4o_authors_ttests_reproduce_trial_level(gpt4o_table) -> None:
    tl = trial_level(gpt4o_table).with_columns(
        d0=pl.when(pl.col("fully_parsed")).then(pl.col("d_score")).otherwise(0.0)
    )
    out = authors_ttests(gpt4o_table, "stereotype")
    overall = row_of(out, "overall", "all")
    assert overall["n"] == 4200 and overall["df"] == 4199
    assert overall["t_mean"] == pytest.approx(tl["d0"].mean(), abs=1e-12)
    ref = stats.ttest_1samp(tl["d0"].to_numpy(), 0.0)
    assert overall["t_stat"] == pytest.approx(ref.statistic, rel=1e-9)
    # measured on the copy at the pinned commit: mean 0.3563, t = 27.37
    assert overall["t_mean"] == pytest.approx(0.3563, abs=0.005)
    means = dict(tl.group_by("stereotype").agg(pl.col("d0").mean()).iter_rows())
    st = out.filter(pl.col("group_term") == "stereotype")
    assert st.height == 21 and set(st["n"]) == {200}
    for level, mean in zip(st["level"], st["t_mean"], strict=True):
        assert mean == pytest.approx(means[level], abs=1e-12)
    ranked = st.sort("t_mean", descending=True)["level"].to_list()
    assert set(ranked[:4]) >= {"racism", "skintone", "disability"}
    assert ranked[-1] == "sexuality"


@pytest.mark.shared
def test_gpt4o_glm_and_miller(gpt4o_table) -> None:
    ok = gpt4o_table.filter(pl.col("status") == "ok")
    out = cluster_robust_glm(gpt4o_table, "category", "trial")
    props = dict(ok.group_by("category").agg(pl.col("congruent").mean()).iter_rows())
    for lv, p in props.items():
        assert abs(row_of(out, "category", lv)["glm_estimate"] - p) < 1e-8
    m = miller_summary(gpt4o_table)
    trial = m.filter(pl.col("se_type") == "cluster_trial").row(0, named=True)
    assert trial["n_clusters"] > 4100 and trial["design_effect"] > 2
