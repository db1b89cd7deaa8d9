"""Bad input: every user mistake is one line naming the file / key / column, exit code 2.

Each case asserts the exact message, that there is no traceback, and that nothing was written.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from biasstats.cli import main

GOOD_CSV = "model,answer,temp\ngpt,1,0\ngpt,0,0\n"
SPEC = """[data]
source = "{source}"
[data.columns]
llm = "model"
congruent = "answer"
"""


def run(args, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def make(tmp_path: Path, spec: str, data: bytes | str | None = None, name: str = "d.csv") -> Path:
    if data is not None:
        p = tmp_path / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    s = tmp_path / "s.toml"
    s.write_text(spec)
    return s


def assert_user_error(tmp_path, capsys, spec_path, expected: str):
    out_dir = tmp_path / "out"
    rc, out, err = run(["ingest", spec_path, "--out", out_dir], capsys)
    assert rc == 2
    assert err == f"error: {expected}\n"
    assert "Traceback" not in err + out
    assert not out_dir.exists() or not any(out_dir.iterdir())  # no half-written output


def test_empty_file(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv"), b"")
    assert_user_error(tmp_path, capsys, s, f"{tmp_path}/d.csv: file is empty (expected a header row and data rows)")


def test_header_only(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv"), "model,answer\n")
    assert_user_error(tmp_path, capsys, s, f"{tmp_path}/d.csv: file has a header but no data rows")


def test_missing_mapped_column(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv"), "model,biased\ngpt,1\n")
    assert_user_error(
        tmp_path, capsys, s,
        f'{s}: [data.columns] congruent = "answer": no column \'answer\' in the data (columns: model, biased)',
    )


def test_wrong_delimiter(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv"), "model;answer\ngpt;1\n")
    assert_user_error(
        tmp_path, capsys, s,
        f"{tmp_path}/d.csv: found a single column 'model;answer'; the file looks ';'-delimited: "
        f'set [data] delimiter = ";"',
    )


def test_bom_is_read_cleanly(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv"), "\ufeff" + GOOD_CSV)
    rc, out, err = run(["ingest", s, "--out", tmp_path / "out"], capsys)
    assert (rc, err) == (0, "")  # the BOM must not end up in the first column's name
    assert "rows read: 2" in out


def test_non_utf8_bytes(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv"), b"model,answer\ngpt,1\ncaf\xe9,0\n")
    assert_user_error(
        tmp_path, capsys, s,
        f"{tmp_path}/d.csv: not valid UTF-8 (byte 0xe9 on line 3); re-save the file as UTF-8 "
        f'or set [data] encoding = "latin-1"',
    )


def test_latin1_declared_is_read(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv") + 'encoding = "latin-1"\n'.replace("", ""), None)
    (tmp_path / "d.csv").write_bytes(b"model,answer\ncaf\xe9,1\n")
    s.write_text('[data]\nsource = "d.csv"\nencoding = "latin-1"\n[data.columns]\nllm = "model"\ncongruent = "answer"\n')
    rc, out, err = run(["ingest", s, "--out", tmp_path / "out"], capsys)
    assert (rc, err) == (0, "")


def test_nan_outcomes_are_accounted_not_dropped(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv"), "model,answer\ngpt,1\ngpt,NaN\ngpt,\n")
    rc, out, err = run(["ingest", s, "--out", tmp_path / "out"], capsys)
    assert (rc, err) == (0, "")
    assert "        2  unparseable: missing outcome (column 'congruent' is empty or NaN)" in out
    assert "rows read: 3" in out


def test_unknown_dataset_name(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="bai2024_gpt5"))
    assert_user_error(
        tmp_path, capsys, s,
        f'{s}: [data] source = "bai2024_gpt5": not a registered dataset (known: bai2024_absolute, '
        "bai2024_chained, bai2024_decision, bai2024_digitized, bai2024_gpt4o, bai2024_implicit, "
        "bai2024_stimuli, bai2024_stimuli_analysis, bai2024_stimuli_synonym) and not a file path",
    )


def test_data_file_not_found(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="nope.csv"))
    assert_user_error(tmp_path, capsys, s, f'{s}: [data] source = "nope.csv": file not found ({tmp_path}/nope.csv)')


def test_unknown_spec_key(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv") + "", GOOD_CSV)
    s.write_text('[data]\nsource = "d.csv"\nsourse = "x"\n')
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: unknown key 'sourse' in [data] (expected one of: source, adapter, format, path_pattern, "
        "delimiter, encoding, rename, parse, explode, columns, derive, filters, refusals, "
        "refusal_pattern, outcome, outcome_type, missing_outcome, max_rows, max_decompressed_bytes)",
    )


def test_unknown_top_level_table(tmp_path, capsys):
    s = make(tmp_path, '[data]\nsource = "d.csv"\n[modle]\nformula = "y ~ 1"\n', GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: unknown key 'modle' at the top level (expected one of: analysis, data, simulate, model, fit, effects, checks)",
    )


def test_wrong_type(tmp_path, capsys):
    s = make(tmp_path, '[data]\nsource = "d.csv"\n[fit]\nchains = "4"\n', GOOD_CSV)
    assert_user_error(tmp_path, capsys, s, f'{s}: [fit] chains: expected an integer, got "4"')


def test_missing_source_key(tmp_path, capsys):
    s = make(tmp_path, '[data]\nadapter = "tidy"\n', GOOD_CSV)
    assert_user_error(tmp_path, capsys, s, f"{s}: missing required key [data] source")


def test_invalid_toml(tmp_path, capsys):
    s = make(tmp_path, '[data\nsource = "d.csv"\n', GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s, f"{s}: invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)"
    )


def test_spec_not_found(tmp_path, capsys):
    assert_user_error(tmp_path, capsys, tmp_path / "missing.toml", f"{tmp_path}/missing.toml: spec file not found")


def test_filter_on_missing_column(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv").replace("[data.columns]", 'filters = ["temperature = 0"]\n[data.columns]'), GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: [data] filters[0] 'temperature = 0' references column 'temperature', which is not "
        "in the data (columns: model, answer, temp, llm, congruent, trial, status, reason)",
    )


def test_filter_syntax_error(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv").replace("[data.columns]", 'filters = ["temp >"]\n[data.columns]'), GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s, f"{s}: [data] filters[0] 'temp >' is not a valid SQL expression (unable to parse 'temp >' as Expr)"
    )


def test_derive_on_missing_column(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv") + '[data.derive]\nvariant = "upper(template)"\n', GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: [data] derive.variant 'upper(template)' references column 'template', which is not "
        "in the data (columns: model, answer, temp, llm, congruent)",
    )


def test_unknown_canonical_column(tmp_path, capsys):
    s = make(tmp_path, '[data]\nsource = "d.csv"\n[data.columns]\nmodel = "model"\n', GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: [data] columns: unknown canonical column 'model' (expected one of: llm, category, "
        "stereotype, variant, trial, item, congruent, raw)",
    )


def test_no_outcome_column(tmp_path, capsys):
    s = make(tmp_path, '[data]\nsource = "d.csv"\n[data.columns]\nllm = "model"\n', GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f'{s}: [data] outcome = "congruent": no such column after mapping (map it in [data.columns], '
        'e.g. congruent = "<source column>"; columns: model, answer, temp, llm, trial)',
    )


def test_malformed_jsonl(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.jsonl"), '{"model": "gpt", "answer": 1}\n{"model": "gpt", answer: 0}\n', "d.jsonl")
    assert_user_error(
        tmp_path, capsys, s, f"{tmp_path}/d.jsonl: line 2 is not valid JSON (Expecting property name enclosed in double quotes)"
    )


def test_corrupt_parquet(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.parquet"), b"PAR1 this is not parquet", "d.parquet")
    assert_user_error(tmp_path, capsys, s, f"{tmp_path}/d.parquet: not a valid Parquet file (ComputeError)")


def test_bad_gzip(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv.gz"), b"not gzip at all", "d.csv.gz")
    assert_user_error(
        tmp_path, capsys, s, f"{tmp_path}/d.csv.gz: not a valid gzip file (Not a gzipped file (b'no'))"
    )


def test_gzip_csv_is_read(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv.gz"), gzip.compress(GOOD_CSV.encode()), "d.csv.gz")
    rc, out, err = run(["ingest", s, "--out", tmp_path / "out"], capsys)
    assert (rc, err) == (0, "")


def test_unknown_extension(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.xlsx"), b"whatever", "d.xlsx")
    assert_user_error(
        tmp_path, capsys, s,
        f"{tmp_path}/d.xlsx: cannot tell the file format from its extension (expected .csv, .tsv, "
        ".jsonl, .json, .parquet or .eval, optionally .gz or .zst); set [data] format",
    )


def test_unknown_adapter(tmp_path, capsys):
    s = make(tmp_path, '[data]\nsource = "d.csv"\nadapter = "bai2024_iatt"\n', GOOD_CSV)
    rc, out, err = run(["ingest", s, "--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert err.startswith(f'error: {s}: [data] adapter = "bai2024_iatt": unknown adapter (known: tidy, bai2024_absolute')
    assert err.count("\n") == 1


def test_bad_refusal_regex(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv").replace("[data.columns]", 'refusal_pattern = "(unclosed"\n[data.columns]'), GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: [data] refusal_pattern: not a valid regex (Rust regex syntax, as polars runs it): "
        "unclosed group",
    )


def test_checksum_mismatch_refuses_mirror_file(tmp_path, capsys, monkeypatch, bai2024):
    mirror = tmp_path / "mirror"
    target = mirror / "bai2024" / "data" / "result_chained.csv"
    target.parent.mkdir(parents=True)
    shutil.copy(bai2024 / "data" / "result_chained.csv", target)
    with open(target, "ab") as f:
        f.write(b"tampered\n")
    monkeypatch.setenv("BIASSTATS_DATA", str(mirror))
    s = make(tmp_path, '[data]\nsource = "bai2024_chained"\n')
    rc, out, err = run(["ingest", s, "--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert err.startswith(f"error: checksum mismatch for {target}")
    assert "the file is refused" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_unavailable_dataset_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BIASSTATS_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("BIASSTATS_OFFLINE", "1")
    s = make(tmp_path, '[data]\nsource = "bai2024_implicit"\n')
    rc, out, err = run(["ingest", s, "--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert err.startswith("error: dataset 'bai2024_implicit' is not available")
    assert "https://raw.githubusercontent.com/baixuechunzi/llm-implicit-bias/" in err
    assert "BIASSTATS_DATA" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["ingest"], ["frobnicate"]])
def test_cli_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_both_data_and_simulate(tmp_path, capsys):
    s = make(tmp_path, '[data]\nsource = "d.csv"\n[simulate]\nseed = 1\n', GOOD_CSV)
    assert_user_error(tmp_path, capsys, s, f"{s}: give exactly one of [data] (a dataset or file) or [simulate]")
