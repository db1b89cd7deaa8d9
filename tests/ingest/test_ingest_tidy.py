"""Generic (spec-declared) ingestion of a tidy third-party table: no Python needed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from biasstats.cli import main
from biasstats.ingest import ingest

ROWS = [
    # model, bias_type, template, answer, completion, temp
    ("gpt", "race", "t1", "1", "white - good", "0"),
    ("gpt", "race", "t2", "0", "black - good", "0"),
    ("gpt", "gender", "t1", "", "", "0"),
    ("gpt", "gender", "t1", "REFUSED", "I cannot help with that", "0"),
    ("gpt", "gender", "t2", "maybe", "x", "0"),
    ("claude", "race", "t1", "1", "a", "1"),
    ("claude", "race", "t1", "0", "As an AI, I won't", "0"),
    ("claude", "gender", "t2", "1", "b", "0"),
]
HEADER = "model,bias_type,template,answer,completion,temp"

SPEC = """
[analysis]
name = "tidy_demo"
[data]
source = "{source}"
refusals = ["REFUSED"]
refusal_pattern = "^As an AI"
filters = ["temp = 0"]
[data.columns]
llm = "model"
stereotype = "bias_type"
congruent = "answer"
raw = "completion"
[data.derive]
variant = "concat(template, '-en')"
"""


def _csv(path: Path) -> Path:
    lines = [HEADER] + [",".join(f'"{v}"' if " " in v else v for v in r) for r in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl_gz(path: Path) -> Path:
    keys = HEADER.split(",")
    recs = []
    for r in ROWS:
        rec = dict(zip(keys, r, strict=False))
        rec["temp"] = int(rec["temp"])
        recs.append(json.dumps(rec))
    path.write_bytes(gzip.compress(("\n".join(recs) + "\n").encode()))
    return path


def _parquet(path: Path) -> Path:
    keys = HEADER.split(",")
    df = pl.DataFrame([dict(zip(keys, r, strict=False)) for r in ROWS]).with_columns(pl.col("temp").cast(pl.Int64))
    df.write_parquet(path)
    return path


@pytest.mark.parametrize("maker,name", [(_csv, "d.csv"), (_jsonl_gz, "d.jsonl.gz"), (_parquet, "d.parquet")])
def test_tidy_ingest_accounts_for_every_row(tmp_path, maker, name):
    data = maker(tmp_path / name)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(source=data.name))
    res = ingest(spec)
    t = res.table
    assert t.height == len(ROWS)
    assert t["status"].to_list() == [
        "ok", "ok", "unparseable", "refused", "unparseable", "excluded", "refused", "ok",
    ]
    assert t["reason"].to_list() == [
        None,
        None,
        "missing outcome (column 'congruent' is empty or NaN)",
        "refusal value 'REFUSED'",
        "outcome 'maybe' is not 0 or 1",
        "filter: temp = 0",
        "response matches refusal_pattern",
        None,
    ]
    assert t["congruent"].to_list() == [1.0, 0.0, None, None, None, None, None, 1.0]
    assert t["variant"].to_list()[:2] == ["t1-en", "t2-en"]
    assert t["llm"].to_list() == [r[0] for r in ROWS]
    # trial ids number rows within (llm, stereotype, variant) cells
    assert t["trial"].to_list() == [0, 0, 0, 1, 0, 0, 1, 0]
    led = res.ledger
    assert led.rows_read == 8
    assert led.rows.by_status == {"ok": 3, "refused": 2, "unparseable": 2, "excluded": 1}
    assert sum(led.rows.by_reason.values()) == 5
    assert len(led.tallies) == 1  # one row per trial: no separate judgement tally
    led.check()


def test_cli_ingest_writes_table_and_ledger(tmp_path, capsys, monkeypatch):
    _csv(tmp_path / "d.csv")
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(source="d.csv"))
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "rows read: 8" in out
    assert "check: every row accounted for ... balanced" in out
    table = pl.read_parquet(tmp_path / "reports" / "tidy_demo" / "trials.parquet")
    ledger = json.loads((tmp_path / "reports" / "tidy_demo" / "ledger.json").read_text())
    assert table.height == 8
    assert ledger["rows_read"] == 8 and ledger["balanced"] is True
    assert ledger["tallies"][0]["by_status"]["refused"] == 2
    assert not list((tmp_path / "reports" / "tidy_demo").glob(".*tmp"))  # no temp files left


def test_same_input_gives_identical_output(tmp_path):
    _csv(tmp_path / "d.csv")
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(source="d.csv"))
    a, b = ingest(spec), ingest(spec)
    assert a.table.equals(b.table)
    assert a.ledger.to_json() == b.ledger.to_json()
    assert a.data_hash == b.data_hash


def test_raw_text_read_keeps_every_value_as_written(tmp_path):
    """Raw-reply adapters read every column as text: a column that looks integer for the
    first 10,000+ rows and then holds 0.5 must not fail type inference, and True stays 'True'."""
    from biasstats.ingest.read import read_table

    path = tmp_path / "late_float.csv"
    values = [str(i % 7) for i in range(10_001)] + ["0.5"]
    flags = ["True"] * len(values)
    pl.DataFrame({"score": values, "flag": flags}).write_csv(path)
    out = read_table(path, text=True)
    assert out.schema == {"score": pl.Utf8, "flag": pl.Utf8}
    assert out["score"][-1] == "0.5" and out["flag"][0] == "True" and out.height == 10_002
