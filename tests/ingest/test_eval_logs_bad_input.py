"""Damaged or hostile evaluation logs: exit 2, one line naming the file, no traceback, with
the built-in reader and through inspect_ai (the same line: a log inspect_ai cannot read is
read again by the built-in reader for its error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_tools import NO_INSPECT, have
from ingest_fixtures import eval_log_members, zip_bytes

from biasstats.cli import main
from biasstats.ingest import logs


@pytest.fixture(params=["builtin", "inspect_ai"])
def backend(request, monkeypatch):
    if request.param == "inspect_ai" and not have("inspect_ai"):
        pytest.skip(NO_INSPECT)
    monkeypatch.setattr(logs, "inspect_backend", lambda: request.param)
    return request.param


def error_of(tmp_path: Path, capsys, spec: str, files: dict[str, bytes]) -> str:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "s.toml").write_text(spec)
    out_dir = tmp_path / "out"
    before = sorted(tmp_path.rglob("*"))
    rc = main(["ingest", str(tmp_path / "s.toml"), "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert "Traceback" not in out + err and err.count("\n") == 1
    assert not out_dir.exists()
    assert sorted(tmp_path.rglob("*")) == before  # nothing written anywhere
    return err.removeprefix("error: ").rstrip("\n").replace(str(tmp_path), "<d>")


def spoiled(index: int, **change) -> bytes:
    """A valid small .eval log whose member ``index`` is changed."""
    members = eval_log_members()
    members[index] = {**members[index], **change}
    return zip_bytes(members)


# the spec reads summaries only (score_match, model); FULL reads the full samples too
SUMMARY = ('[data]\nsource = "log.eval"\noutcome = "ok"\n[data.derive]\n'
           'ok = "CASE WHEN score_match = \'C\' THEN 1 ELSE 0 END"\n[data.columns]\nllm = "model"\n')
FULL = SUMMARY + 'raw = "completion"\n'
HEADER, SAMPLE, SUMMARIES = 0, 1, 3
LM, RS = "samples_t_2025-01-02T03-04-05.678901.jsonl", "results_2025-01-02T03-04-05.678901.json"
LMS = '[data]\nsource = "."\nformat = "lm_eval_samples"\noutcome = "acc"\n'
BIG = b"[" + b" " * 2_000_000 + b"]"

CASES = {
    "a member failing its CRC": (
        SUMMARY, {"log.eval": spoiled(HEADER, crc=1234)},
        "<d>/log.eval: header.json in the archive fails its CRC-32 check (the archive is damaged)",
    ),
    "a member larger than it says": (
        SUMMARY, {"log.eval": spoiled(SUMMARIES, size=10)},
        "<d>/log.eval: summaries.json in the archive expands past its declared size of 10 bytes",
    ),
    "a member smaller than it says": (
        SUMMARY, {"log.eval": spoiled(HEADER, size=100_000)},
        "<d>/log.eval: header.json in the archive expands to 232 bytes, not its declared 100,000",
    ),
    "members expanding past max_decompressed_bytes": (
        SUMMARY.replace('outcome', 'max_decompressed_bytes = 100000\noutcome'),
        {"log.eval": spoiled(SUMMARIES, data=BIG)},
        "<d>/log.eval: expands to more than 100,000 bytes when decompressed ([data] "
        "max_decompressed_bytes); raise the limit if the file is genuine",
    ),
    "a lying size that hides a bomb": (
        SUMMARY.replace('outcome', 'max_decompressed_bytes = 100000\noutcome'),
        {"log.eval": spoiled(SUMMARIES, data=BIG, size=50)},
        "<d>/log.eval: summaries.json in the archive expands past its declared size of 50 bytes",
    ),
    "header.json holding a list": (
        SUMMARY, {"log.eval": spoiled(HEADER, data=b"[1, 2]")},
        "<d>/log.eval: header.json in the archive is not a JSON object (expected an object, "
        "found list)",
    ),
    "a sample that is a list": (
        FULL, {"log.eval": spoiled(SAMPLE, data=b"[]")},
        "<d>/log.eval: samples/1_epoch_1.json in the archive is not a JSON object (expected an "
        "object, found list)",
    ),
    "a summary that is a list": (
        SUMMARY, {"log.eval": spoiled(SUMMARIES, data=b"[[1]]")},
        "<d>/log.eval: a sample summary in the archive is not a JSON object (found list)",
    ),
    "summaries.json that is not valid JSON": (
        SUMMARY, {"log.eval": spoiled(SUMMARIES, data=b"[{")},
        "<d>/log.eval: summaries.json in the archive is not valid JSON (Expecting property name "
        "enclosed in double quotes: line 1 column 3 (char 2))",
    ),
    "a compression method it does not know": (
        SUMMARY, {"log.eval": spoiled(HEADER, method=12, payload=b"xx")},
        "<d>/log.eval: header.json in the archive uses compression method 12 (expected stored, "
        "deflate or zstd)",
    ),
    "damaged zstd data": (
        SUMMARY, {"log.eval": spoiled(HEADER, payload=b"\x28\xb5\x2f\xfd garbage")},
        "<d>/log.eval: header.json in the archive: not valid zstd data",
    ),
    "a log cut short": (
        SUMMARY, {"log.eval": zip_bytes(eval_log_members())[:300]},
        "<d>/log.eval: not a readable Inspect AI .eval log (no end of central directory record: "
        "the file is cut short or not a zip archive)",
    ),
    "an .eval file that is not a zip archive": (
        SUMMARY, {"log.eval": b'{"eval": {}}'},
        "<d>/log.eval: not an Inspect AI .eval log (expected a zip archive)",
    ),
    "an archive without header.json": (
        SUMMARY, {"log.eval": zip_bytes(eval_log_members()[1:])},
        "<d>/log.eval: not an Inspect AI .eval log (no header.json in the archive)",
    ),
    "a JSON log that is a list": (
        SUMMARY.replace('"log.eval"', '"log.json"\nformat = "inspect_eval"'), {"log.json": b"[1]"},
        "<d>/log.json: not an Inspect AI log (expected a JSON object with an 'eval' object, as "
        "inspect eval --log-format json writes)",
    ),
    # issue 19 item 4: a field of another JSON type was a traceback
    "a summary whose scores are a list": (
        SUMMARY, {"log.eval": spoiled(SUMMARIES, data=b'[{"id": 1, "epoch": 1, "scores": [1]}]')},
        "<d>/log.eval: sample 1 (epoch 1): scores is not a JSON object (found list)",
    ),
    "a sample whose score is text": (
        FULL, {"log.eval": spoiled(SAMPLE, data=b'{"id": 1, "epoch": 1, "scores": {"match": "C"}}')},
        "<d>/log.eval: sample 1 (epoch 1): scores.match is not a JSON object (found str)",
    ),
    "a sample whose output is a number": (
        FULL, {"log.eval": spoiled(SAMPLE, data=b'{"id": 1, "epoch": 1, "output": 3}')},
        "<d>/log.eval: sample 1 (epoch 1): output is not a JSON object (found int)",
    ),
    "a sample whose epoch is a list": (
        SUMMARY, {"log.eval": spoiled(SUMMARIES, data=b'[{"id": 1, "epoch": [1]}]')},
        "<d>/log.eval: a sample has id 1 and epoch [1] (expected a text or number id and a "
        "whole-number epoch)",
    ),
    "a header whose dataset is a list": (
        SUMMARY, {"log.eval": spoiled(HEADER, data=json.dumps(
            {"eval": {"task": "t", "dataset": ["d"]}}).encode())},
        "<d>/log.eval: the log header's eval.dataset is not a JSON object (found list)",
    ),
    "lm-eval: metrics that are a number": (
        LMS, {LM: b'{"doc_id": 1, "metrics": 5, "acc": 1}\n', RS: b'{"model_name": "m"}'},
        f"<d>/{LM}: line 1: 'metrics' is not a list of metric names (found 5)",
    ),
    "lm-eval: a results file that is a list": (
        LMS, {LM: b'{"doc_id": 1, "metrics": ["acc"], "acc": 1}\n', RS: b"[1, 2]"},
        f"<d>/{RS}: not an lm-evaluation-harness results file (expected a JSON object, found "
        "list)",
    ),
    "lm-eval: a results file whose config is a list": (
        LMS, {LM: b'{"doc_id": 1, "metrics": ["acc"], "acc": 1}\n', RS: b'{"config": [1]}'},
        f"<d>/{RS}: 'config' is not a JSON object (found list; not an lm-evaluation-harness "
        "results file)",
    ),
    "lm-eval: a results file that is not JSON": (
        LMS, {LM: b'{"doc_id": 1, "metrics": ["acc"], "acc": 1}\n', RS: b'{"model_name": '},
        f"<d>/{RS}: not a readable lm-evaluation-harness results file (Expecting value: line 1 "
        "column 16 (char 15))",
    ),
    "lm-eval: a results file nested too deeply": (
        LMS, {LM: b'{"doc_id": 1, "metrics": ["acc"], "acc": 1}\n',
              RS: b"[" * 100_000 + b"]" * 100_000},
        f"<d>/{RS}: JSON nested 100000 levels deep, above the limit of 64",
    ),
    "a JSON log nested too deeply": (
        SUMMARY.replace('"log.eval"', '"log.json"\nformat = "inspect_eval"'),
        {"log.json": b"[" * 5000 + b"]" * 5000},
        "<d>/log.json: JSON nested 5000 levels deep, above the limit of 64",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_error(tmp_path, capsys, backend, case):
    spec, files, expected = CASES[case]
    got = error_of(tmp_path, capsys, spec, files)
    if case == "damaged zstd data":
        assert got.startswith(expected)
    else:
        assert got == expected


def test_the_spoiled_archives_are_valid_when_not_spoiled(tmp_path, backend):
    """The bad-input archives above differ from a readable log in the one thing they spoil."""
    from biasstats.ingest import ingest

    (tmp_path / "log.eval").write_bytes(zip_bytes(eval_log_members()))
    (tmp_path / "s.toml").write_text(FULL)
    t = ingest(tmp_path / "s.toml").table
    assert t["ok"].to_list() == [1.0, 1.0] and t["raw"].to_list() == ["A", "A"]
    members = eval_log_members()
    assert json.loads(members[HEADER]["data"])["eval"]["task"] == "t"


def test_full_samples_count_against_the_budget_only_when_read(tmp_path, capsys, backend):
    """Samples with large events are never decompressed for a spec the summaries answer, so
    they do not count against max_decompressed_bytes; a spec naming `completion` reads them."""
    members = eval_log_members()
    for m in members[1:3]:
        sample = json.loads(m["data"])
        sample["events"] = [{"event": "model", "text": "x" * 200_000}]
        m["data"] = json.dumps(sample).encode()
    files = {"log.eval": zip_bytes(members)}
    limit = 'max_decompressed_bytes = 100000\n'
    spec = SUMMARY.replace("outcome", limit + "outcome")
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "s.toml").write_text(spec)
    from biasstats.ingest import ingest

    assert ingest(tmp_path / "s.toml").table.height == 2
    assert error_of(tmp_path, capsys, FULL.replace("outcome", limit + "outcome"), files) == (
        "<d>/log.eval: expands to more than 100,000 bytes when decompressed ([data] "
        "max_decompressed_bytes); raise the limit if the file is genuine")


def test_a_member_of_several_zstd_frames_is_read_whole(tmp_path, backend):
    """Inspect splits large members into several zstd frames; every frame is read."""
    import zstandard

    from biasstats.ingest import ingest

    members = eval_log_members()
    data = members[SUMMARIES]["data"]
    c = zstandard.ZstdCompressor()
    members[SUMMARIES]["payload"] = c.compress(data[:40]) + c.compress(data[40:])
    (tmp_path / "log.eval").write_bytes(zip_bytes(members))
    (tmp_path / "s.toml").write_text(SUMMARY)
    assert ingest(tmp_path / "s.toml").table["ok"].to_list() == [1.0, 1.0]


def test_deflate_and_stored_members_read_like_zstd(tmp_path, backend):
    from biasstats.ingest import ingest

    members = eval_log_members()
    for i, m in enumerate(members):
        m["method"] = 8 if i % 2 else 0
    (tmp_path / "log.eval").write_bytes(zip_bytes(members))
    (tmp_path / "s.toml").write_text(FULL)
    t = ingest(tmp_path / "s.toml").table
    assert t["raw"].to_list() == ["A", "A"] and t["sample_id"].to_list() == ["1", "2"]


def test_the_log_statuses_show_in_the_ledger_and_the_reports_table_only_when_present():
    import polars as pl

    from biasstats.ingest.ledger import build_ledger
    from biasstats.report.page import _ledger_view

    rows = pl.DataFrame({"status": ["ok", "error", "superseded", "ok"],
                         "reason": [None, "sample error: x", "superseded by b.eval", None]})
    ledger = build_ledger("logs", rows)
    assert ledger.rows.by_status == {"ok": 2, "refused": 0, "unparseable": 0, "excluded": 0,
                                     "error": 1, "superseded": 1}
    shown = [s["status"] for s in _ledger_view(ledger)["tallies"][0]["statuses"]]
    assert shown == ["ok", "refused", "unparseable", "excluded", "error", "superseded"]
    assert "    superseded          1   25.00%" in ledger.render()
    plain = build_ledger("csv", rows.filter(pl.col("status") == "ok"))
    assert list(plain.rows.by_status) == ["ok", "refused", "unparseable", "excluded"]
    assert "error" not in plain.render() and "superseded" not in plain.render()


def test_a_log_that_never_finished_is_read_from_its_journal(tmp_path, backend):
    """A run killed mid-way leaves no header.json or summaries.json: the journal's start
    record and summaries are read, and the ledger notes the run's status."""
    from biasstats.ingest import ingest

    members = eval_log_members()
    header = json.loads(members[HEADER]["data"])
    members[HEADER] = {"name": "_journal/start.json",
                       "data": json.dumps({"version": 2, "eval": header["eval"], "plan": {}}).encode()}
    members[SUMMARIES]["name"] = "_journal/summaries/1.json"
    (tmp_path / "log.eval").write_bytes(zip_bytes(members))
    (tmp_path / "s.toml").write_text(SUMMARY.replace('llm = "model"', 'llm = "model"\nraw = "output.completion"'))
    res = ingest(tmp_path / "s.toml")
    assert res.table["raw"].to_list() == ["A", "A"] and set(res.table["log_status"]) == {"started"}
    assert any(n.startswith("log.eval: the run's status is 'started'") for n in res.ledger.notes)


# every field of a log replaced by a value of each other JSON type: read, or one line
_OTHER_TYPES = [5, "x", [1], {"a": 1}, None, True, 1.5, [{"a": 1}]]
_HEADER_FIELDS = [("status",), ("eval", "task"), ("eval", "task_id"), ("eval", "model"),
                  ("eval", "created"), ("eval", "dataset"), ("eval", "scorers"),
                  ("eval", "tags"), ("eval", "task_args"), ("eval", "metadata"), ("stats",),
                  ("results",), ("error",)]
_SAMPLE_FIELDS = ["id", "epoch", "input", "target", "choices", "scores", "output",
                  "model_usage", "total_time", "limit", "retries", "error", "metadata"]
_LM_FIELDS = ["doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter",
              "metrics", "acc"]
_RESULT_FIELDS = [("model_name",), ("config",), ("configs",), ("results",),
                  ("config", "model_args"), ("configs", "t"), ("configs", "t", "output_type")]


def _replaced(obj: dict, path: tuple, value) -> dict:
    out = json.loads(json.dumps(obj))
    d = out
    for k in path[:-1]:
        d = d.setdefault(k, {}) if isinstance(d.get(k), dict | None) else d[k]
    d[path[-1]] = value
    return out


def _read_or_one_line(tmp_path: Path, capsys, spec: str, files: dict[str, bytes]) -> None:
    for f in tmp_path.iterdir():
        if f.is_file():
            f.unlink()
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "s.toml").write_text(spec)
    rc = main(["ingest", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc in (0, 2) and "Traceback" not in out + err, (files, err[-500:])
    assert rc == 0 or err.count("\n") == 1, err


@pytest.mark.slow
def test_any_field_of_another_json_type_is_read_or_one_line(tmp_path, capsys, backend):
    """585 logs (about a minute): header, summary, sample, lm-eval line and results fields."""
    header = json.loads(eval_log_members()[HEADER]["data"])
    for path in _HEADER_FIELDS:
        for v in _OTHER_TYPES:
            members = eval_log_members()
            members[HEADER] = {**members[HEADER],
                               "data": json.dumps(_replaced(header, path, v)).encode()}
            _read_or_one_line(tmp_path, capsys, SUMMARY, {"log.eval": zip_bytes(members)})
    for key in _SAMPLE_FIELDS:
        for v in _OTHER_TYPES:
            members = eval_log_members()
            sample = json.loads(members[SAMPLE]["data"])
            members[SAMPLE] = {**members[SAMPLE],
                               "data": json.dumps({**sample, key: v}).encode()}
            _read_or_one_line(tmp_path, capsys, FULL, {"log.eval": zip_bytes(members)})
            members = eval_log_members()
            summaries = json.loads(members[SUMMARIES]["data"])
            summaries[0][key] = v
            members[SUMMARIES] = {**members[SUMMARIES], "data": json.dumps(summaries).encode()}
            _read_or_one_line(tmp_path, capsys, SUMMARY, {"log.eval": zip_bytes(members)})
    line = {"doc_id": 1, "doc": {"q": "a"}, "target": "yes", "filter": "none",
            "arguments": {"gen_args_0": {"arg_0": "q", "arg_1": {}}}, "resps": [["yes"]],
            "filtered_resps": ["yes"], "metrics": ["acc"], "acc": 1.0}
    results = {"model_name": "m", "config": {"model": "hf", "model_args": "pretrained=x"},
               "configs": {"t": {"output_type": "generate_until"}}, "results": {"t": {}}}
    for key in _LM_FIELDS:
        for v in _OTHER_TYPES:
            _read_or_one_line(tmp_path, capsys, LMS, {
                LM: json.dumps({**line, key: v}).encode() + b"\n", RS: json.dumps(results).encode()})
    for path in _RESULT_FIELDS:
        for v in _OTHER_TYPES:
            _read_or_one_line(tmp_path, capsys, LMS, {
                LM: json.dumps(line).encode() + b"\n",
                RS: json.dumps(_replaced(results, path, v)).encode()})
