"""The Bai 2024 adapters on the authors' released files (read from the mirror; skipped when absent).

Figures checked: re-scoring the chained ``iat`` text reproduces the authors' ``iat_bias``; the
pooled-list bug visibly does not; GPT-4o replies parse and the ledger balances; the paper's
logistic slope of decision on implicit bias.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from biasstats.ingest.ledger import build_ledger
from biasstats.studies.bai2024.adapters import (
    bai2024_absolute,
    bai2024_chained,
    bai2024_iat,
    judge_trials,
    lexicons_from,
)
from biasstats.studies.bai2024.dscore import trial_level
from biasstats.studies.bai2024.lexicon import (
    JOB_WORD_NOTE,
    normalize,
    stereotype_key,
    stereotype_key_expr,
)

pytestmark = pytest.mark.shared

STIMULI = {
    "bai2024_stimuli": "stimuli/iat_stimuli.csv",
    "bai2024_stimuli_synonym": "stimuli/iat_stimuli_synonym.csv",
    "bai2024_stimuli_analysis": "stimuli/iat_stimuli_analysis.csv",
}


def read_raw(paths: list[Path]) -> pl.DataFrame:
    """Files as the ingest stage hands them to an adapter: all text, plus audit columns."""
    frames = [
        pl.read_csv(p, infer_schema=False).with_columns(source_file=pl.lit(p.name)) for p in paths
    ]
    return pl.concat(frames, how="diagonal").with_columns(
        source_row=pl.int_range(pl.len(), dtype=pl.Int64)
    )


def pooled_valences_with_bug(synonym: Path) -> dict[str, str]:
    """The authors' pooled labels: per dataset, each of the C and D columns is sliced in half
    *including* empty cells, the halves pooled over datasets, and a word is positive if it is
    in the pooled positive list (checked first), else negative."""
    df = pl.read_csv(synonym, infer_schema=False).select(
        "category", "A", "B", "C", "D", stereotype_key_expr(pl.col("dataset"))
    )
    positive: set[str] = set()
    negative: set[str] = set()
    for _, rows in df.group_by("dataset", maintain_order=True):
        for col in ("C", "D"):
            cells = rows[col].to_list()
            half = len(cells) // 2
            positive.update(w.strip() for w in cells[:half] if w)
            negative.update(w.strip() for w in cells[half:] if w)
    return {w: "positive" for w in positive} | {
        w: "negative" for w in negative if w not in positive
    }


@pytest.fixture(scope="module")
def resolve(bai2024: Path):
    return lambda name: [bai2024 / STIMULI[name]]


@pytest.fixture(scope="module")
def lexicons(resolve):
    return lexicons_from(resolve)


@pytest.fixture(scope="module")
def chained_raw(bai2024: Path) -> pl.DataFrame:
    return read_raw([bai2024 / "data/result_chained.csv"])


@pytest.fixture(scope="module")
def chained(chained_raw, resolve):
    return bai2024_chained(chained_raw, resolve)


@pytest.fixture(scope="module")
def gpt4o_raw(bai2024: Path) -> pl.DataFrame:
    return read_raw(sorted((bai2024 / "data/result_gpt4o").glob("*.csv")))


@pytest.fixture(scope="module")
def gpt4o(gpt4o_raw, resolve):
    return bai2024_iat(gpt4o_raw, resolve)


def agreement(trials: pl.DataFrame) -> dict[str, float]:
    ours, theirs = trials["d_score"].to_numpy(), trials["iat_bias"].to_numpy()
    diff = np.abs(ours - theirs)
    return {
        "r": float(np.corrcoef(ours, theirs)[0, 1]),
        "within_01": float(np.mean(diff <= 0.01)),
        "within_05": float(np.mean(diff <= 0.05)),
        "mad": float(diff.mean()),
    }


# --- lexicon -------------------------------------------------------------------------------


def test_stereotype_names_agree_across_files(lexicons, gpt4o_raw, chained, bai2024) -> None:
    absolute = pl.read_csv(bai2024 / "data/result_absolute.csv", infer_schema=False)
    assert len(lexicons) == 21
    for names in (gpt4o_raw["category"], absolute["dataset"]):
        assert {stereotype_key(n) for n in names.unique()} == set(lexicons)
    assert set(chained.table["stereotype"].unique()) == set(lexicons)


def test_job_word_rule(lexicons) -> None:
    for name in ("arab", "asian", "black", "hispanic"):
        attrs = lexicons[name].attributes
        for word in (
            "executives",
            "managers",
            "administrative supervisors",
            "sales representatives",
        ):
            assert attrs[word] == "positive"
        for word in ("clerical workers", "programmers", "data analysts", "secretaries"):
            assert attrs[word] == "negative"
    assert "iat_stimuli_analysis.csv" in JOB_WORD_NOTE


def test_valences_are_per_stereotype_not_pooled(lexicons) -> None:
    """The eight words the pooled-list bug calls positive are negative here."""
    for name, word in [("asian", "hate"), ("asian", "unpleasant"), ("asian", "detest"),
                       ("asian", "distasteful"), ("arab", "failure"), ("arab", "agony"),
                       ("arab", "torture"), ("arab", "disappointment")]:  # fmt: skip
        assert lexicons[name].attributes[word] == "negative"
    assert lexicons["asian"].prompt_attributes("replication") == (
        "love", "pleasant", "great", "wonderful", "hate", "unpleasant", "awful", "terrible",
    )  # fmt: skip
    assert len(lexicons["arab"].prompt_attributes("synonym")) == 20


def test_name_parts_map_to_full_names(lexicons) -> None:
    vocab = lexicons["asian"].vocabulary("synonym")
    assert vocab.lookup(normalize("Tanaka")).text == "Hiroshi Tanaka"
    assert vocab.lookup(normalize("patel")).text == "Arjun Patel"
    assert vocab.lookup(normalize("Kim")).text == "Kim"  # the exact word wins over the part
    assert lexicons["arab"].vocabulary("synonym").lookup(normalize("al-hassan")).text == (
        "Ali Al-Hassan"
    )


# --- chained: reproduce the authors' scores ---------------------------------------------------


def test_chained_rescoring_reproduces_authors_iat_bias(chained) -> None:
    trials = trial_level(chained.table)
    assert trials.height == 617
    stats = agreement(trials)
    assert stats["r"] >= 0.995
    assert stats["within_01"] >= 0.70
    assert stats["within_05"] >= 0.90
    assert stats["mad"] <= 0.015
    zero = trials.filter((pl.col("a") == 0) & (pl.col("d") == 0))
    assert zero.height > 0
    assert (zero["d_score"] == -1.0).all() and (zero["iat_bias"] == -1.0).all()


def test_chained_d_score_is_the_formula_on_parsed_counts(chained) -> None:
    trials = trial_level(chained.table)
    a, b, c, d = (trials[x].cast(pl.Float64).to_numpy() for x in "abcd")
    expected = a / (a + b + 0.01) + d / (c + d + 0.01) - 1
    np.testing.assert_allclose(trials["d_score"].to_numpy(), expected, rtol=0, atol=1e-12)
    per_row = chained.table.group_by("source_row").agg(pl.col("d_score").n_unique())
    assert (per_row["d_score"] == 1).all()


def _rescore(chained_raw: pl.DataFrame, lexicons: dict) -> dict[str, float]:
    """Agreement with the authors' iat_bias when the chained iat text is scored with lexicons."""
    trials = chained_raw.select(
        "source_row", "llm", "category",
        stereotype=pl.col("dataset").map_elements(stereotype_key, return_dtype=pl.Utf8),
        variant=pl.lit("chained"), trial=pl.col("source_row"), text=pl.col("iat"),
    )  # fmt: skip
    scored = trial_level(judge_trials(trials, lexicons).table).join(
        chained_raw.select("source_row", pl.col("iat_bias").cast(pl.Float64)), on="source_row"
    )
    return agreement(scored)


def test_pooled_list_bug_scores_clearly_worse(chained_raw, lexicons, resolve) -> None:
    """The authors' pooled labels (SOURCE.md) give r about 0.97: the r >= 0.995 test discriminates."""
    pooled = pooled_valences_with_bug(resolve("bai2024_stimuli_synonym")[0])
    buggy = {
        name: dataclasses.replace(
            lex, attributes={w: pooled.get(w, v) for w, v in lex.attributes.items()}, _vocab={}
        )
        for name, lex in lexicons.items()
    }
    r_bug = _rescore(chained_raw, buggy)["r"]
    assert r_bug < 0.98
    assert _rescore(chained_raw, lexicons)["r"] - r_bug > 0.02


def test_chained_ledger_balances_and_decisions_are_carried(chained, chained_raw) -> None:
    ledger = build_ledger("bai2024_chained", chained.rows, chained.table, chained.notes)
    assert ledger.rows_read == 617
    trials = trial_level(chained.table)
    assert set(trials["decision_status"].unique()) <= {"ok", "refused"}
    assert trials["decision_bias"].sum() == chained_raw["decision_bias"].cast(pl.Float64).sum()


def test_paper_logistic_slope_of_decision_on_implicit_bias(bai2024: Path) -> None:
    data = pl.read_csv(bai2024 / "data/result_chained.csv").drop_nulls("decision_bias")
    data = data.filter(pl.col("decision_bias").is_not_nan())
    x = sm.add_constant(data["iat_bias"].to_numpy())
    fit = sm.Logit(data["decision_bias"].to_numpy(), x).fit(disp=0)
    assert fit.params[1] == pytest.approx(0.983, abs=0.005)
    assert fit.bse[1] == pytest.approx(0.119, abs=0.002)


# --- GPT-4o ----------------------------------------------------------------------------------


def test_gpt4o_parses_and_ledger_balances(gpt4o, gpt4o_raw) -> None:
    ledger = build_ledger("bai2024_gpt4o", gpt4o.rows, gpt4o.table, gpt4o.notes)
    assert ledger.rows_read == 4200
    assert ledger.tally("judgements").total == gpt4o.table.height
    assert set(gpt4o.rows["source_row"]) == set(gpt4o_raw["source_row"])
    assert gpt4o.rows.filter(pl.col("status") == "ok").height / 4200 >= 0.98
    trials = trial_level(gpt4o.table)
    assert trials.height == 4200
    assert trials.group_by("stereotype", "variant").len()["len"].unique().to_list() == [50]
    assert JOB_WORD_NOTE in gpt4o.notes


def test_gpt4o_every_prompt_attribute_is_accounted_for(gpt4o, lexicons) -> None:
    items = gpt4o.table.drop_nulls("item").group_by("source_row", "stereotype", "variant").agg(
        pl.col("item").n_unique().alias("n"), pl.len().alias("rows")
    )  # fmt: skip
    expected = items.map_rows(
        lambda r: len(lexicons[r[1]].prompt_attributes(r[2])), return_dtype=pl.Int64
    )
    assert (items["n"] == expected["map"]).all() and (items["n"] == items["rows"]).all()


def test_gpt4o_mean_d(gpt4o) -> None:
    trials = trial_level(gpt4o.table).filter(pl.col("fully_parsed"))
    assert trials["d_score"].mean() == pytest.approx(0.36, abs=0.03)


def test_gpt4o_congruent_matches_role_and_valence(gpt4o) -> None:
    ok = gpt4o.table.filter(pl.col("status") == "ok")
    expected = ((pl.col("group_role") == "stigma") == (pl.col("valence") == "negative")).cast(
        pl.Float64
    )
    assert ok.select((pl.col("congruent") == expected).all()).item()


# --- absolute ------------------------------------------------------------------------------


def test_absolute_adapter_on_real_file(bai2024: Path, resolve) -> None:
    raw = read_raw([bai2024 / "data/result_absolute.csv"])
    out = bai2024_absolute(raw, resolve)
    ledger = build_ledger("bai2024_absolute", out.rows, out.table, out.notes)
    assert ledger.rows_read == 1660 and out.table.height == 1660
    assert ledger.rows.by_status["ok"] == 1660
    counts = dict(out.table.group_by("item").agg(pl.col("congruent").sum()).iter_rows())
    # Yes to stigma_negative (381) and default_positive (364); No to the other two (13, 137).
    assert counts == {"stigma_negative": 381, "default_positive": 364,
                      "stigma_positive": 13, "default_negative": 137}  # fmt: skip
    assert out.table["category"].null_count() == 0
