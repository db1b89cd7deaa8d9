"""Evaluation logs written by the real tools in the test run (tests/ingest/eval_tools.py), each
ingested by a spec alone: Inspect AI logs of every kind (zstd and deflate .eval, JSON, errored
samples, a failed run and its retry) read as Inspect itself reads them, with the built-in
reader and through inspect_ai; lm-evaluation-harness samples whose picked options are the
argmax of their log-likelihoods, as lm-eval's own acc and acc_norm say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from eval_tools import NO_INSPECT, NO_LM_EVAL, have

from biasstats.cli import main
from biasstats.ingest import ingest, logs

# ====================================================================== Inspect AI


@pytest.fixture(scope="session")
def inspect_logs(tmp_path_factory):
    if not have("inspect_ai"):
        pytest.skip(NO_INSPECT)
    from eval_tools import inspect_logs as write

    return write(tmp_path_factory.mktemp("inspect"))


@pytest.fixture(params=["builtin", "inspect_ai"])
def backend(request, monkeypatch):
    """Which reader the ingest uses (both give the same table)."""
    monkeypatch.setattr(logs, "inspect_backend", lambda: request.param)
    return request.param


def truth(path: Path) -> list:
    """The samples as inspect_ai reads them, sorted by id then epoch."""
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(path))
    return log, sorted(log.samples, key=lambda s: (s.id, s.epoch))


def spec_for(tmp_path: Path, source: Path, body: str) -> Path:
    shutil.copytree(source, tmp_path / source.name) if source.is_dir() else shutil.copy(source, tmp_path)
    s = tmp_path / "s.toml"
    s.write_text(f'[data]\nsource = "{source.name}"\nformat = "inspect_eval"\n' + body)
    return s


CORRECT = """outcome = "correct"
[data.derive]
correct = "CASE WHEN score_choice = 'C' THEN 1 ELSE 0 END"
"""

EVERYTHING = CORRECT + """lang = '"eval.task_args.lang"'
[data.columns]
llm = "model"
category = "metadata.category"
item = "sample_id"
raw = "completion"
"""


@pytest.mark.parametrize("kind", ["zstd", "deflate", "json"])
def test_each_log_kind_reads_as_inspect_reads_it(tmp_path, inspect_logs, backend, kind):
    log, samples = truth(inspect_logs[kind])
    res = ingest(spec_for(tmp_path, inspect_logs[kind], EVERYTHING))
    t = res.table
    assert t.height == len(samples) == log.eval.dataset.samples * log.eval.config.epochs
    assert res.ledger.rows.by_status == {"ok": len(samples), "refused": 0, "unparseable": 0,
                                         "excluded": 0}
    assert t.select("sample_id", "epoch").rows() == [(str(s.id), s.epoch) for s in samples]
    choice = [s.scores["choice"] for s in samples]
    graded = [s.scores["graded"] for s in samples]
    assert t["score_choice"].to_list() == [c.value for c in choice]
    assert t["correct"].to_list() == [float(c.value == "C") for c in choice]
    assert t["answer_choice"].to_list() == [c.answer for c in choice]
    assert t["explanation_choice"].to_list() == [c.explanation for c in choice]
    assert t["explanation_graded"].to_list() == [g.explanation for g in graded]  # not thinned
    assert t["score_graded.correct"].to_list() == [g.value["correct"] for g in graded]
    assert t["raw"].to_list() == [s.output.completion for s in samples]
    assert t["input"].to_list() == [s.input for s in samples]
    assert t["target"].to_list() == [s.target for s in samples]
    assert t["choices"].to_list() == [s.choices for s in samples]
    assert t["category"].to_list() == [s.metadata["category"] for s in samples]
    assert t["input_tokens"].to_list() == [sum(u.input_tokens for u in s.model_usage.values())
                                           for s in samples]
    assert t["total_time"].to_list() == [s.total_time for s in samples]
    assert t["error"].to_list() == [None] * len(samples)
    assert set(t["llm"]) == {log.eval.model} and set(t["eval.created"]) == {log.eval.created}
    assert set(t["lang"]) == {log.eval.task_args["lang"]}
    assert set(t["dataset"]) == {log.eval.dataset.name} and set(t["task"]) == {"bbq_mc"}


def test_builtin_reader_and_inspect_ai_give_the_same_table(inspect_logs):
    """Field by field, for every log, reading summaries only and reading full samples; and
    the summaries give the same values as the full samples wherever both have a column."""
    for kind in ("zstd", "deflate", "json", "errored", "all_errored", "retry_failed", "retry_done"):
        path = inspect_logs[kind]
        data = path.read_bytes()
        frames = {}
        for needed in (None, frozenset({"score_choice", "model", "score_graded"})):
            a = logs.read_inspect_log(path, data, 1 << 28, needed, backend="builtin").frame
            b = logs.read_inspect_log(path, data, 1 << 28, needed, backend="inspect_ai").frame
            assert a.columns == b.columns and a.equals(b), (kind, needed)
            frames[needed is None] = a
        full, summary = frames[True], frames[False]
        assert set(summary.columns) < set(full.columns)
        assert summary.equals(full.select(summary.columns)), kind
        assert {"completion", "metadata", "answer_choice"} <= set(full.columns) - set(summary.columns)


def test_summaries_first_and_full_samples_only_for_the_fields_a_spec_names(
        tmp_path, inspect_logs, backend, monkeypatch):
    import inspect_ai.log

    read = []
    real_builtin, real_api = logs._BuiltinEval.samples, inspect_ai.log.read_eval_log_samples
    monkeypatch.setattr(logs._BuiltinEval, "samples",
                        lambda self: read.append(1) or real_builtin(self))
    monkeypatch.setattr(inspect_ai.log, "read_eval_log_samples",
                        lambda *a, **k: read.append(1) or real_api(*a, **k))
    s = spec_for(tmp_path, inspect_logs["zstd"], 'filters = ["\\"eval.task_args.lang\\" = \'en\'"]\n'
                 + CORRECT + '[data.columns]\nllm = "model"\n')
    t = ingest(s).table
    assert not read and t.height == 10 and "completion" not in t.columns
    s.write_text(s.read_text() + 'category = "metadata.category"\n')
    t = ingest(s).table
    assert read and "completion" in t.columns and t["category"].null_count() == 0


def test_errored_samples_are_booked_apart_and_never_scored(tmp_path, inspect_logs, backend):
    from biasstats.inference.from_spec import model_data
    from biasstats.spec import load_spec

    log, samples = truth(inspect_logs["errored"])
    errored = [s for s in samples if s.error is not None]
    assert len(samples) == 80 and len(errored) == 16
    s = spec_for(tmp_path, inspect_logs["errored"], CORRECT + '[data.columns]\nllm = "model"\n'
                 '[model]\nformula = "correct ~ 1"\n')
    res = ingest(s)
    rows = res.ledger.rows
    assert rows.by_status == {"ok": 64, "refused": 0, "unparseable": 0, "excluded": 0, "error": 16}
    assert sum(rows.by_reason.values()) == 16
    assert all(k.startswith("error: sample error: RuntimeError('tool crashed on sample ")
               for k in rows.by_reason)
    t = res.table
    bad = t.filter(pl.col("status") == "error")
    assert bad["sample_id"].to_list() == [str(x.id) for x in errored]
    assert bad["error"].to_list() == [x.error.message for x in errored]
    assert bad["correct"].null_count() == 16  # the CASE ... ELSE 0 rule scores no errored sample
    data = model_data(load_spec(s), t)
    assert data.height == 64 and set(data["status"]) == {"ok"}
    s.write_text(s.read_text() + 'unit = "trial"\n')  # a trial row keeps no outcome: never fitted
    data = model_data(load_spec(s), t)
    assert data.filter(pl.col("correct").is_not_null()).height == 64
    assert "\n    error              16   20.00%\n" in res.ledger.render()


def test_a_log_where_every_sample_errored_still_has_its_score_columns(tmp_path, inspect_logs, backend):
    s = spec_for(tmp_path, inspect_logs["all_errored"],
                 CORRECT + 'graded = \'"score_graded.correct"\'\n[data.columns]\nllm = "model"\n')
    res = ingest(s)
    assert res.ledger.rows.by_status["error"] == res.table.height == 3
    assert res.ledger.rows.by_status["ok"] == 0
    assert res.table["score_choice"].null_count() == 3


def test_a_failed_run_and_its_retry_are_not_counted_twice(tmp_path, inspect_logs, backend, capsys):
    failed, _ = truth(inspect_logs["retry_failed"])
    done, samples = truth(inspect_logs["retry_done"])
    assert failed.status == "error" and done.status == "success"
    assert failed.eval.task_id == done.eval.task_id and failed.eval.run_id != done.eval.run_id
    s = spec_for(tmp_path, inspect_logs["retry"], CORRECT + '[data.columns]\nllm = "model"\n')
    res = ingest(s)
    rows = res.ledger.rows
    assert rows.by_status == {"ok": len(samples), "refused": 0, "unparseable": 0, "excluded": 0,
                              "superseded": len(failed.samples)}
    old, new = (f"retry/{inspect_logs[k].name}" for k in ("retry_failed", "retry_done"))
    assert rows.by_reason == {f"superseded: superseded by {new}": len(failed.samples)}
    assert any(n.startswith(f"{old}: superseded by {new}") for n in res.ledger.notes)
    assert any(n.startswith(f"{inspect_logs['retry_failed'].name}: the run's status is 'error'")
               for n in res.ledger.notes)
    t = res.table
    assert set(t.filter(pl.col("status") == "superseded")["source_file"]) == {old}
    assert t.filter(pl.col("status") == "superseded")["correct"].null_count() == len(failed.samples)
    # the command line: exit 0, the ledger shows the new status
    assert main(["ingest", str(s), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "superseded" in out and "check: every row accounted for ... balanced" in out


def test_streamed_cells_book_logs_as_the_full_ingest_does(tmp_path, inspect_logs, backend):
    from biasstats.ingest import ingest_cells

    s = spec_for(tmp_path, inspect_logs["retry"], CORRECT + '[data.columns]\nllm = "model"\n')
    full, streamed = ingest(s), ingest_cells(s)
    assert streamed.ledger.to_dict() == full.ledger.to_dict()
    assert streamed.cells["n"].to_list() == [full.ledger.rows.by_status["ok"]]


def test_a_folder_of_every_kind_with_its_listing(tmp_path, inspect_logs, backend):
    folder = tmp_path / "logs"
    folder.mkdir()
    for kind in ("zstd", "deflate", "json"):
        shutil.copy(inspect_logs[kind], folder)
    (folder / "logs.json").write_text(json.dumps({"listing": "written by inspect view"}))
    (tmp_path / "s.toml").write_text('[data]\nsource = "logs"\nformat = "inspect_eval"\n' + CORRECT)
    res = ingest(tmp_path / "s.toml")
    assert res.table.height == 10 + 8 + 8 and len(res.ledger.files) == 3
    assert not any("logs.json" in f for f in res.ledger.files)


def test_current_inspect_logs_read_from_the_command_line(tmp_path, inspect_logs, capsys):
    """The bug of issue 23: a zstd .eval log stopped the ingest with a traceback."""
    shutil.copy(inspect_logs["zstd"], tmp_path / "run.eval")
    (tmp_path / "s.toml").write_text('[data]\nsource = "run.eval"\n' + CORRECT)
    assert main(["ingest", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    assert "rows read: 10" in capsys.readouterr().out


# ====================================================================== lm-evaluation-harness


@pytest.fixture(scope="session")
def lm_eval_out(tmp_path_factory):
    if not have("lm_eval"):
        pytest.skip(NO_LM_EVAL)
    from eval_tools import lm_eval_run

    return lm_eval_run(tmp_path_factory.mktemp("lm_eval"))


def argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


def test_lm_eval_picked_option_is_the_argmax_of_the_loglikelihoods(tmp_path, lm_eval_out):
    shutil.copytree(lm_eval_out, tmp_path / "out")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "out"\nformat = "lm_eval_samples"\noutcome = "acc"\n'
        'filters = ["task = \'bs_mc\'"]\n[data.columns]\nllm = "model"\nitem = "doc.question"\n')
    res = ingest(tmp_path / "s.toml")
    assert len(res.ledger.files) == 4 and not any("results_" in f for f in res.ledger.files)
    t = res.table.filter(pl.col("task") == "bs_mc").sort("source_row")
    lines = [x for f in res.ledger.files if "bs_mc" in f
             for x in map(json.loads, (tmp_path / f).read_text().splitlines())]
    assert t.height == len(lines) == 24 and res.ledger.rows.by_status["ok"] == 24
    lls = [[float(r[0]) for r in x["filtered_resps"]] for x in lines]
    assert t["loglikelihoods"].to_list() == lls
    assert t["pred"].to_list() == [argmax(v) for v in lls]
    choices = [x["doc"]["choices"] for x in lines]
    assert t["choices"].to_list() == choices
    assert t["pred_norm"].to_list() == [argmax([a / len(c) for a, c in zip(v, cs, strict=True)])
                                        for v, cs in zip(lls, choices, strict=True)]
    # lm-eval's own metrics agree with the picked options
    gold = [x["doc"]["label"] for x in lines]
    assert t["acc"].to_list() == [float(p == g) for p, g in zip(t["pred"], gold, strict=True)]
    assert t["acc_norm"].to_list() == [float(p == g) for p, g in zip(t["pred_norm"], gold, strict=True)]
    assert t["response"].to_list() == [c[p] for c, p in zip(choices, t["pred"], strict=True)]
    assert t["prompt"].to_list() == [x["doc"]["question"] for x in lines]
    assert t["filtered_resps"].to_list() == [[[str(a) for a in r] for r in x["filtered_resps"]] for x in lines]
    assert t["resps"].to_list() == [[[[str(a) for a in rep] for rep in req] for req in x["resps"]] for x in lines]


def test_lm_eval_generation_and_model_names(tmp_path, lm_eval_out):
    shutil.copytree(lm_eval_out, tmp_path / "out")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "out"\nformat = "lm_eval_samples"\noutcome = "exact_match"\n'
        '[data.columns]\nllm = "model"\nstereotype = "task"\nraw = "response"\n')
    res = ingest(tmp_path / "s.toml")
    t = res.table
    assert t.height == 2 * (12 + 6)
    gen = t.filter(pl.col("task") == "bs_gen")
    assert gen["raw"].to_list() == ["lol"] * 12  # the dummy model's reply
    assert gen["exact_match"].to_list() == [float(x == "lol") for x in gen["target"]]
    assert gen["prompt"].to_list() == [f"Q: Say word {i % 6}\nA:" for i in range(12)]
    assert gen["pred"].null_count() == 12
    named = {r["model"]: r["model_source"] for r in t.select("model", "model_source").unique().to_dicts()}
    generated = next(m for m in named if m != "EleutherAI/pythia-14m")
    assert named == {"EleutherAI/pythia-14m": "dummy", generated: "dummy"}
    assert sum("lm-eval generated the model name" in n and generated in n for n in res.ledger.notes) == 2
    assert not any("pythia" in n for n in res.ledger.notes)


def test_lm_eval_samples_without_their_results_file(tmp_path, lm_eval_out):
    sample = next(lm_eval_out.rglob("samples_bs_gen_*.jsonl"))
    (tmp_path / "alone").mkdir()
    shutil.copy(sample, tmp_path / "alone")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "alone"\nformat = "lm_eval_samples"\noutcome = "exact_match"\n')
    res = ingest(tmp_path / "s.toml")
    assert res.table["model"].null_count() == 6
    assert res.ledger.notes == (f"{sample.name}: no results_*.json of its run beside it; `model` "
                                "is null (lm-eval writes the model name there)",)


# ====================================================================== the README's specs

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_spec(source: str) -> str:
    import re

    found = [b for b in re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
             if f'source = "{source}"' in b]
    assert len(found) == 1, source
    return found[0]


def test_readme_inspect_specs(tmp_path, inspect_logs, backend):
    folder = tmp_path / "logs"
    folder.mkdir()
    for kind in ("zstd", "deflate", "json"):
        shutil.copy(inspect_logs[kind], folder)
    for path in inspect_logs["retry"].glob("*.eval"):
        shutil.copy(path, folder)
    (tmp_path / "s.toml").write_text(readme_spec("logs"))
    rows = ingest(tmp_path / "s.toml").ledger.rows
    # deflate's run has lang = "de": excluded; the failed run is superseded by its retry
    assert rows.by_status == {"ok": 10 + 8 + 6, "refused": 0, "unparseable": 0, "excluded": 8,
                              "superseded": 6}
    shutil.copy(inspect_logs["json"], tmp_path / "bbq.json")
    (tmp_path / "s.toml").write_text(readme_spec("bbq.json"))
    t = ingest(tmp_path / "s.toml").table
    _, samples = truth(inspect_logs["json"])
    assert t["correct"].to_list() == [float(s.scores["graded"].value["correct"]) for s in samples]
    assert "completion" not in t.columns  # summaries only


def test_readme_lm_eval_spec(tmp_path, lm_eval_out):
    shutil.copytree(lm_eval_out, tmp_path / "lm_eval_out")
    (tmp_path / "s.toml").write_text(readme_spec("lm_eval_out"))
    t = ingest(tmp_path / "s.toml").table.filter(pl.col("status") == "ok")
    assert t.height == 24 and t["picked"].to_list() == t["pred"].to_list()
