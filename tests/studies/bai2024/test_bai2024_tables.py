"""Bai 2024 adapters on small SYNTHETIC files (the authors' 33,600-row tables are not mirrored).

The stimulus lists, the implicit and decision tables and the absolute file are written here
with the released column names, so these tests run without the third-party data.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from biasstats.errors import DataError
from biasstats.ingest.ledger import build_ledger
from biasstats.registry import ADAPTERS
from biasstats.studies.bai2024.adapters import (
    ADAPTER_NAMES,
    bai2024_absolute,
    bai2024_decision_table,
    bai2024_implicit_table,
    lexicons_from,
)
from biasstats.studies.bai2024.dscore import d_score, trial_level

BASE = """category,dataset,A,B,C
race,racism,White,Black,wonderful
race,racism,,,lovely
race,racism,,,terrible
race,racism,,,nasty
health,mental illness,diabetes,depression,safe
health,mental illness,,,gentle
health,mental illness,,,dangerous
health,mental illness,,,violent
"""
SYNONYM = """,category,dataset,A,B,C,D
0,race,racism,White,Black,wonderful,splendid
1,race,racism,,,lovely,charming
2,race,racism,,,terrible,dreadful
3,race,racism,,,nasty,vile
4,health,mental illness,diabetes,depression,safe,secure
5,health,mental illness,,,gentle,mild
6,health,mental illness,,,dangerous,risky
7,health,mental illness,,,violent,brutal
"""

PERFECT = "wonderful - white\nlovely - white\nterrible - black\nnasty - black"
IMPLICIT = [
    # response, llm, domain, category, variation, formatted_iat, flag, iat_bias
    (PERFECT, "gpt4", "race", "racism", "replication", "", "0", "0.9975"),
    ("splendid - black\ncharming - black\ndreadful - white\nvile - white",
     "gpt4", "race", "racism", "synonym", "", "0", "-1.0"),
    ("I'm sorry, but I cannot help with that.", "gpt4", "race", "racism", "replication", "",
     "1", "0"),
    ("safe - diabetes\ngentle - diabetes\ndangerous - depression", "claude", "health",
     "mentalill", "instruction1", "", "1", "0"),
]  # fmt: skip
IMPLICIT_COLUMNS = ["response", "llm", "domain", "category", "variation", "formatted_iat",
                    "flag", "iat_bias"]  # fmt: skip


@pytest.fixture
def resolve(tmp_path: Path):
    files = {
        "bai2024_stimuli": ("iat_stimuli.csv", BASE),
        "bai2024_stimuli_synonym": ("iat_stimuli_synonym.csv", SYNONYM),
        "bai2024_stimuli_analysis": ("iat_stimuli_analysis.csv", BASE),
    }
    for name, text in files.values():
        (tmp_path / name).write_text(text)
    return lambda dataset: [tmp_path / files[dataset][0]]


def raw_frame(rows: list[tuple], columns: list[str]) -> pl.DataFrame:
    """A source table as the ingest stage passes it: text columns plus audit columns."""
    df = pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.Utf8), orient="row")
    return df.with_columns(
        source_row=pl.int_range(pl.len(), dtype=pl.Int64), source_file=pl.lit("synthetic.csv")
    )


def test_all_adapters_registered() -> None:
    assert set(ADAPTER_NAMES) <= set(ADAPTERS)


def test_implicit_table_judgements_statuses_and_scores(resolve) -> None:
    out = bai2024_implicit_table(raw_frame(IMPLICIT, IMPLICIT_COLUMNS), resolve)
    build_ledger("synthetic implicit", out.rows, out.table, out.notes)
    assert out.rows.rows() == [
        (0, "ok", None), (1, "ok", None), (2, "refused", "apology"),
        (3, "unparseable", "partly parsed"),
    ]  # fmt: skip
    table = out.table
    assert table.columns[:11] == ["source_row", "llm", "category", "stereotype", "variant",
                                  "trial", "item", "congruent", "status", "reason", "raw"]  # fmt: skip
    assert {"valence", "group", "group_role", "d_score", "iat_bias", "flag"} <= set(table.columns)
    first = table.filter(pl.col("source_row") == 0)
    assert first["congruent"].to_list() == [1.0, 1.0, 1.0, 1.0]
    assert first["group_role"].to_list() == ["default", "default", "stigma", "stigma"]
    second = table.filter(pl.col("source_row") == 1)
    assert second["item"].to_list() == ["splendid", "charming", "dreadful", "vile"]
    assert second["congruent"].to_list() == [0.0, 0.0, 0.0, 0.0]
    fourth = table.filter(pl.col("source_row") == 3)
    assert fourth["stereotype"].unique().to_list() == ["mentalill"]
    assert fourth.filter(pl.col("item") == "violent")["reason"].to_list() == [
        "attribute not assigned"
    ]


def test_implicit_table_trial_level(resolve) -> None:
    out = bai2024_implicit_table(raw_frame(IMPLICIT, IMPLICIT_COLUMNS), resolve)
    trials = trial_level(out.table)
    assert trials.height == 4
    assert trials["d_score"][0] == pytest.approx(d_score(2, 0, 0, 2))
    assert trials["d_score"][1] == -1.0
    assert trials["iat_bias"].to_list() == [0.9975, -1.0, 0.0, 0.0]
    assert trials["refused"].to_list() == [False, False, True, False]
    assert trials["fully_parsed"].to_list() == [True, True, False, False]
    assert trials.select("a", "b", "c", "d").row(3) == (1, 0, 0, 2)  # dangerous-depression: a


DECISION_COLUMNS = ["decision", "gpt4_score", "llm", "domain", "category", "variation", "label",
                    "decision_bias"]  # fmt: skip
DECISIONS = [
    ("Ben should lead the workshop on business.", "1", "gpt4", "gender", "career",
     "replication", "consistent", "1"),
    ("Julia should lead it.", "0", "gpt4", "gender", "career", "replication", "inconsistent", "0"),
    ("I cannot make that choice.", "", "gpt4", "gender", "career", "replication", "", ""),
    ("Either could.", "nan", "gpt4", "gender", "career", "synonym", "", "nan"),
]  # fmt: skip


def test_decision_table_one_row_per_trial(resolve) -> None:
    out = bai2024_decision_table(raw_frame(DECISIONS, DECISION_COLUMNS), resolve)
    build_ledger("synthetic decision", out.rows, out.table, out.notes)
    table = out.table
    assert table.height == 4
    assert table["congruent"].to_list() == [1.0, 0.0, None, None]
    assert table["status"].to_list() == ["ok", "ok", "refused", "refused"]
    assert table["trial"].to_list() == [0, 1, 2, 0]
    assert table["raw"][0].startswith("Ben")
    assert {"gpt4_score", "label"} <= set(table.columns)


ABSOLUTE_COLUMNS = ["0", "type", "dataset", "iat", "profile", "decision"]
ABSOLUTE = [
    ("Task 3: Yes", "stigma_negative", "racism", "", "", "Yes"),
    ("Task 3: yes.", "stigma_positive", "racism", "", "", "yes."),
    ("Task 3: No", "default_negative", "mentalill", "", "", "No"),
    ("Task 3: No", "default_positive", "mentalill", "", "", " No, because..."),
    ("I'm sorry", "default_positive", "racism", "", "", "I'm sorry, I can't decide."),
    ("Maybe", "default_positive", "racism", "", "", "Maybe"),
]


def test_absolute_congruence_and_statuses(resolve) -> None:
    out = bai2024_absolute(raw_frame(ABSOLUTE, ABSOLUTE_COLUMNS), resolve)
    build_ledger("synthetic absolute", out.rows, out.table, out.notes)
    table = out.table
    assert table["congruent"].to_list() == [1.0, 0.0, 1.0, 0.0, None, None]
    assert table["status"].to_list() == ["ok"] * 4 + ["refused", "unparseable"]
    assert table["category"].to_list() == ["race", "race", "health", "health", "race", "race"]
    assert table["item"][0] == "stigma_negative"


def test_missing_column_is_a_one_line_data_error(resolve) -> None:
    raw = raw_frame(IMPLICIT, IMPLICIT_COLUMNS).drop("flag")
    with pytest.raises(DataError, match=r"missing column\(s\) \['flag'\]"):
        bai2024_implicit_table(raw, resolve)


def test_stimulus_dataset_must_resolve_to_one_file(resolve) -> None:
    with pytest.raises(DataError, match="should resolve to one file"):
        lexicons_from(lambda name: resolve(name) * 2)


def test_unknown_stereotype_is_unparseable_not_an_error(resolve) -> None:
    row = [(PERFECT, "gpt4", "race", "martian", "replication", "", "0", "0.5")]
    out = bai2024_implicit_table(raw_frame(row, IMPLICIT_COLUMNS), resolve)
    assert out.rows.rows() == [(0, "unparseable", "stereotype not in the stimulus lists")]
