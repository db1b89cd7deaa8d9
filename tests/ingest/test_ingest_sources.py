"""Third-party release shapes, each ingested by a spec alone (no Python): per-condition CSVs
with path columns, a folder of JSON ranking replies (explode + first_mention), multiple-choice
JSONL (regex -> categorical outcome)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from ingest_fixtures import (
    CONDITIONS,
    LETTERS,
    multiple_choice_jsonl,
    per_condition_csvs,
    ranking_requests,
)

from biasstats.cli import main
from biasstats.ingest import ingest

CSV_SPEC = """
[data]
source = "runs/*/*.csv"
path_pattern = "{llm}/{stereotype}.csv"
[data.columns]
congruent = "biased"
[data.derive]
prompt_key = "coalesce(prompt, prompt_id)"
"""


def test_per_condition_csvs_union_path_columns_and_per_file_ledger(tmp_path):
    counts = per_condition_csvs(tmp_path)
    (tmp_path / "s.toml").write_text(CSV_SPEC)
    res = ingest(tmp_path / "s.toml")
    t = res.table
    assert res.ledger.files == counts  # every file, its own row count, in path order
    assert res.ledger.rows_read == sum(counts.values()) == t.height == 14
    # llm and stereotype come from the path, per row
    got = t.group_by("llm", "stereotype").len().sort("llm", "stereotype").rows()
    want = sorted((llm, test, n) for llm, (_, tests) in CONDITIONS.items() for test, n in tests.items())
    assert got == want
    # columns are unioned: a column a file lacks is null there
    assert t.filter(pl.col("llm") == "gpt4o")["prompt_id"].null_count() == 8
    assert t.filter(pl.col("llm") == "claude3")["temperature"].to_list() == [0.7] * 6
    assert t["prompt_key"].null_count() == 0
    # source_file carries each row's file; [data.columns] copies (biased is still there)
    assert t.filter(pl.col("source_file") == "runs/claude3/age.csv").height == 2
    assert t["biased"].to_list() == t["congruent"].cast(pl.Int64).to_list()
    assert t["trial"].to_list()[:5] == [0, 1, 0, 1, 2]  # numbered within llm x stereotype


@pytest.mark.parametrize("source", ['"runs"', '["runs/gpt4o/*.csv", "runs/claude3/**/*.csv"]'])
def test_folder_and_list_sources_read_the_same_files(tmp_path, source):
    counts = per_condition_csvs(tmp_path)
    spec = CSV_SPEC.replace('"runs/*/*.csv"', source)
    if source.startswith("["):  # globs in a list: each matched below its own fixed prefix
        spec = spec.replace('"{llm}/{stereotype}.csv"', '"{stereotype}.csv"')
    (tmp_path / "s.toml").write_text(spec)
    res = ingest(tmp_path / "s.toml")
    assert sorted(res.ledger.files) == sorted(counts)
    assert res.ledger.rows_read == sum(counts.values())


RANKING_SPEC = """
[data]
source = "requests"
explode = ["request.names", "request.groups"]
refusal_pattern = "(?i)can't|cannot"
outcome = "top1"
[data.parse.rank]
kind = "first_mention"
text = "response.choices[0].message.content"
candidates = "request.names"
[data.columns]
llm = "response.model"
item = "request.names"
stereotype = "request.job"
[data.derive]
top1 = "CASE WHEN rank = 1 THEN 1 ELSE 0 END"
"""


def test_json_ranking_requests_top1_share_per_group_equals_hand_count(tmp_path):
    truth = ranking_requests(tmp_path, n=40)
    (tmp_path / "s.toml").write_text(RANKING_SPEC)
    res = ingest(tmp_path / "s.toml")
    t = res.table
    assert t.height == 4 * 40  # one row per shown candidate
    assert t["position"].to_list()[:4] == [0, 1, 2, 3]
    ok = t.filter(pl.col("status") == "ok")
    got = ok.group_by("request.groups").agg(pl.len().alias("shown"), pl.col("top1").sum().alias("top"))
    for group, shown, top in got.rows():
        assert shown == truth["shown"][group] and top == truth["top"][group], group
    # exactly one rank-1 candidate per parsed request, ranks 1..4 within a request
    assert ok.group_by("source_row").agg(pl.col("rank").sort()).get_column("rank").to_list() == [[1, 2, 3, 4]] * 32
    rows = res.ledger.rows
    assert rows.by_status == {"ok": 32, "refused": 4, "unparseable": 4, "excluded": 0}
    assert rows.by_reason == {"refused: parse.rank: response matches refusal_pattern": 4,
                              "unparseable: parse.rank: no candidate mentioned": 4}
    per_request = t.group_by("source_row", maintain_order=True).agg(pl.col("status").first())
    assert per_request["status"].to_list() == truth["expected"]
    # one trial per request (its candidates share it)
    assert t.group_by("source_row").agg(pl.col("trial").n_unique())["trial"].max() == 1


def test_first_mention_ranks_unmentioned_after_mentioned_in_list_order(tmp_path):
    rec = {"names": ["Ann", "Bob", "Cy", "Di"], "reply": "bob first, then di"}
    (tmp_path / "r.json").write_text(json.dumps([rec]))
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "r.json"\noutcome = "rank"\nexplode = ["names"]\n'
        '[data.parse.rank]\nkind = "first_mention"\ntext = "reply"\ncandidates = "names"\n'
    )
    t = ingest(tmp_path / "s.toml").table
    assert dict(zip(t["names"], t["rank"], strict=True)) == {"Bob": 1.0, "Di": 2.0, "Ann": 3.0, "Cy": 4.0}


MC_SPEC = """
[data]
source = "mc.jsonl.gz"
outcome = "choice"
[data.parse.choice]
kind = "regex"
text = "completion"
pattern = "answer is \\\\(([A-C])\\\\)"
map = {A = "stereotyped", B = "anti-stereotyped", C = "unknown"}
[data.columns]
llm = "model"
item = "qid"
category = "category"
"""


def test_multiple_choice_regex_gives_a_categorical_outcome(tmp_path, capsys):
    truth = multiple_choice_jsonl(tmp_path / "mc.jsonl.gz", n=30)
    (tmp_path / "s.toml").write_text(MC_SPEC)
    assert main(["ingest", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    t = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    assert t["choice"].to_list() == truth
    assert set(t["choice"].drop_nulls()) <= set(LETTERS.values())
    n_bad = sum(v is None for v in truth)
    assert t["status"].to_list() == ["ok" if v else "unparseable" for v in truth]
    ledger = json.loads((tmp_path / "out" / "ledger.json").read_text())
    assert ledger["tallies"][0]["by_reason"] == {"unparseable: parse.choice: no match for pattern": n_bad}
    assert ledger["files"] == {"mc.jsonl.gz": 30}


def test_one_of_rule_trims_and_case_folds(tmp_path):
    (tmp_path / "d.csv").write_text("m,reply\na, Yes \na,no\na,maybe\n")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "d.csv"\noutcome = "answer"\n[data.parse.answer]\nkind = "one_of"\n'
        'text = "reply"\nvalues = ["yes", "no"]\n'
    )
    t = ingest(tmp_path / "s.toml").table
    assert t["answer"].to_list() == ["yes", "no", None]
    assert t["reason"].to_list() == [None, None, "parse.answer: not one of yes, no"]


def test_filter_never_overwrites_refused_or_unparseable(tmp_path):
    (tmp_path / "d.csv").write_text("model,answer,temp\ngpt,REFUSED,1\ngpt,maybe,1\ngpt,1,1\ngpt,0,0\n")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "d.csv"\nrefusals = ["REFUSED"]\nfilters = ["temp = 0"]\n'
        '[data.columns]\nllm = "model"\ncongruent = "answer"\n'
    )
    res = ingest(tmp_path / "s.toml")
    assert res.table["status"].to_list() == ["refused", "unparseable", "excluded", "ok"]
    assert res.ledger.notes == (
        "filters[0] 'temp = 0': 2 row(s) already refused or unparseable also fail it; "
        "their first status stands",
    )


def test_two_canonical_names_from_one_column_are_both_filled(tmp_path):
    (tmp_path / "d.csv").write_text("model,answer\ngpt,1\n")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "d.csv"\n[data.columns]\nllm = "model"\nvariant = "model"\ncongruent = "answer"\n'
    )
    t = ingest(tmp_path / "s.toml").table
    row = t.row(0, named=True)
    assert (row["llm"], row["variant"], row["model"]) == ("gpt", "gpt", "gpt")


@pytest.mark.parametrize("ext", ["csv.gz", "csv.zst", "tsv", "parquet", "json"])
def test_formats_read_the_same_rows(tmp_path, ext):
    import gzip

    import zstandard

    df = pl.DataFrame({"model": ["a", "b"], "answer": [1, 0]})
    p = tmp_path / f"d.{ext}"
    if ext == "tsv":
        df.write_csv(p, separator="\t")
    elif ext == "parquet":
        df.write_parquet(p)
    elif ext == "json":
        p.write_text(json.dumps(df.to_dicts()))
    else:
        raw = df.write_csv().encode()
        p.write_bytes(gzip.compress(raw) if ext.endswith("gz") else zstandard.ZstdCompressor().compress(raw))
    (tmp_path / "s.toml").write_text(
        f'[data]\nsource = "d.{ext}"\n[data.columns]\nllm = "model"\ncongruent = "answer"\n'
    )
    t = ingest(tmp_path / "s.toml").table
    assert t["llm"].to_list() == ["a", "b"] and t["congruent"].to_list() == [1.0, 0.0]


def test_inspect_eval_log_one_row_per_sample_and_epoch(tmp_path):
    from ingest_fixtures import inspect_eval_log

    truth = inspect_eval_log(tmp_path / "bbq.eval", n=6, epochs=2)
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "bbq.eval"\noutcome = "correct"\n'
        'derive.correct = "CASE WHEN score_choice = \'C\' THEN 1 ELSE 0 END"\n'
        '[data.columns]\nllm = "model"\ncategory = "metadata.category"\nitem = "sample_id"\n'
    )
    t = ingest(tmp_path / "s.toml").table
    assert t.height == len(truth) == 12
    assert t.select("sample_id", "epoch").rows() == [(r["sample_id"], r["epoch"]) for r in truth]
    assert t["answer_choice"].to_list() == [r["answer"] for r in truth]
    assert t["completion"].to_list() == [f"ANSWER: {r['answer']}" for r in truth]
    assert t["category"].to_list() == [r["category"] for r in truth]
    assert t["correct"].to_list() == [float(r["correct"]) for r in truth]
    assert set(t["llm"]) == {"openai/gpt-4o"} and set(t["task"]) == {"bbq_ambig"}


def test_lm_eval_samples_named_format(tmp_path):
    from ingest_fixtures import lm_eval_samples

    truth = lm_eval_samples(tmp_path / "out" / "pythia")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "out/**/samples_*.jsonl"\nformat = "lm_eval_samples"\noutcome = "acc"\n'
        '[data.columns]\nllm = "model"\nstereotype = "task"\nitem = "doc.question"\nraw = "response"\n'
    )
    t = ingest(tmp_path / "s.toml").table
    assert t["doc_id"].to_list() == [r["doc_id"] for r in truth]
    assert t["acc"].to_list() == [r["acc"] for r in truth]
    assert t["raw"].to_list() == [r["response"] for r in truth]
    assert set(t["llm"]) == {"EleutherAI/pythia-160m"} and set(t["stereotype"]) == {"bbq_lite"}


def test_streamed_cells_and_ledger_equal_those_of_the_full_table(tmp_path):
    from biasstats.ingest import ingest_cells

    per_condition_csvs(tmp_path)
    (tmp_path / "s.toml").write_text(CSV_SPEC.replace("[data.columns]", 'filters = ["prompt_key <> \'race-0\'"]\n'
                                                      'refusals = ["1"]\n[data.columns]'))
    full = ingest(tmp_path / "s.toml")
    streamed = ingest_cells(tmp_path / "s.toml")
    ok = full.table.filter(pl.col("status") == "ok")
    want = ok.group_by("llm", "stereotype").agg(pl.col("congruent").sum().alias("k"), pl.len().alias("n"))
    assert streamed.cells.sort("llm", "stereotype").rows() == want.sort("llm", "stereotype").rows()
    assert streamed.ledger.to_dict() == full.ledger.to_dict()
    assert streamed.ledger.rows.by_status["refused"] > 0 and streamed.ledger.rows.by_status["excluded"] > 0


def test_streamed_cells_stop_at_max_rows_naming_the_file(tmp_path):
    from biasstats.errors import DataError
    from biasstats.ingest import ingest_cells

    (tmp_path / "a.csv").write_text("congruent\n1\n1\n")
    (tmp_path / "b.csv").write_text("congruent\n1\n1\n")
    (tmp_path / "s.toml").write_text('[data]\nsource = "*.csv"\nmax_rows = 3\n')
    with pytest.raises(DataError) as e:
        ingest_cells(tmp_path / "s.toml")
    assert str(e.value) == (f"{tmp_path}/b.csv: the source passes 3 rows at this file ([data] max_rows); "
                            "raise the limit if this is expected")


def test_a_zst_file_of_several_frames_is_read_whole(tmp_path):
    import zstandard

    c = zstandard.ZstdCompressor()
    (tmp_path / "d.jsonl.zst").write_bytes(c.compress(b'{"congruent": 1}\n') + c.compress(b'{"congruent": 0}\n'))
    (tmp_path / "s.toml").write_text('[data]\nsource = "d.jsonl.zst"\n')
    assert ingest(tmp_path / "s.toml").table["congruent"].to_list() == [1.0, 0.0]


# lines as lm-evaluation-harness 0.4.13 wrote them (--model dummy, a local multiple-choice task)
LM_EVAL_MC = [
    {"doc_id": 0, "doc": {"question": "Who was late?", "choices": ["the old man", "the young man", "unknown"],
                          "label": 1},
     "target": "1",
     "arguments": {f"gen_args_{i}": {"arg_0": "Who was late?", "arg_1": " " + c}
                   for i, c in enumerate(["the old man", "the young man", "unknown"])},
     "resps": [[["-0.9", "False"]], [["-0.5", "False"]], [["-0.45", "False"]]],
     "filtered_resps": [["-0.9", "False"], ["-0.5", "False"], ["-0.45", "False"]],
     "filter": "none", "metrics": ["acc", "acc_norm"], "acc": 0.0, "acc_norm": 1.0},
    {"doc_id": 1, "doc": {"question": "Who forgot?", "choices": ["a", "bb"], "label": 0},
     "target": "0",
     "arguments": {"gen_args_0": {"arg_0": "Who forgot?", "arg_1": " a"},
                   "gen_args_1": {"arg_0": "Who forgot?", "arg_1": " bb"}},
     "resps": [[["-2.0", "True"]], [["-2.0", "False"]]],
     "filtered_resps": [["-2.0", "True"], ["-2.0", "False"]],
     "filter": "none", "metrics": ["acc", "acc_norm"], "acc": 1.0, "acc_norm": 0.0},
]


def test_lm_eval_multiple_choice_keeps_the_option_picked(tmp_path):
    """pred: the first highest log-likelihood (lm-eval's acc rule); pred_norm: per character
    of the option (its acc_norm rule; 'the young man' is 13 characters, 'unknown' 7)."""
    run = tmp_path / "out" / "run"
    run.mkdir(parents=True)
    stamp = "2025-01-02T03-04-05.678901"
    (run / f"samples_bbq_mc_{stamp}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in LM_EVAL_MC))
    (run / f"results_{stamp}.json").write_text(json.dumps({
        "model_name": "org/m", "config": {"model": "hf", "model_args": "pretrained=org/m,dtype=float16"},
        "configs": {"bbq_mc": {"output_type": "multiple_choice", "target_delimiter": " "}}}))
    (tmp_path / "s.toml").write_text('[data]\nsource = "out"\nformat = "lm_eval_samples"\noutcome = "acc"\n')
    res = ingest(tmp_path / "s.toml")
    t = res.table
    assert res.ledger.files == {f"out/run/samples_bbq_mc_{stamp}.jsonl": 2}  # not the results file
    assert t["pred"].to_list() == [2, 0] and t["pred_norm"].to_list() == [1, 1]
    assert t["acc"].to_list() == [float(p == g) for p, g in zip(t["pred"], [1, 0], strict=True)]
    assert t["acc_norm"].to_list() == [float(p == g) for p, g in zip(t["pred_norm"], [1, 0], strict=True)]
    assert t["choices"].to_list() == [x["doc"]["choices"] for x in LM_EVAL_MC]
    assert t["response"].to_list() == ["unknown", "a"]
    assert t["loglikelihoods"].to_list() == [[-0.9, -0.5, -0.45], [-2.0, -2.0]]
    assert t["is_greedy"].to_list() == [[False] * 3, [True, False]]
    assert t["prompt"].to_list() == ["Who was late?", "Who forgot?"]
    assert t["filtered_resps"].to_list() == [x["filtered_resps"] for x in LM_EVAL_MC]
    assert set(t["model"]) == {"org/m"} and set(t["model_source"]) == {"hf"}
    assert res.ledger.notes == ()


def test_lm_eval_notes_a_generated_or_missing_model_name(tmp_path):
    from ingest_fixtures import lm_eval_samples

    lm_eval_samples(tmp_path / "a")
    results = next((tmp_path / "a").glob("results_*.json"))
    results.write_text(json.dumps({"model_name": "x7k2p9qa", "config": {"model": "dummy", "model_args": {}}}))
    lm_eval_samples(tmp_path / "b")
    next((tmp_path / "b").glob("results_*.json")).unlink()
    (tmp_path / "s.toml").write_text('[data]\nsource = ["a", "b"]\nformat = "lm_eval_samples"\noutcome = "acc"\n')
    res = ingest(tmp_path / "s.toml")
    name = next((tmp_path / "a").glob("samples_*.jsonl")).name
    assert res.ledger.notes == (
        f"{name}: lm-eval generated the model name 'x7k2p9qa' (the run's --model_args name no "
        "pretrained=, model=, path= or engine=); `model` holds that id, `model_source` the model "
        "type 'dummy'",
        f"{name}: no results_*.json of its run beside it; `model` is null (lm-eval writes the "
        "model name there)",
    )
    assert res.table["model"].to_list() == ["x7k2p9qa"] * 8 + [None] * 8
