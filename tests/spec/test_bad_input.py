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
        "delimiter, encoding, rename, parse, explode, columns, derive, filters, exclude, refusals, "
        "refusal_pattern, outcome, outcome_type, missing_outcome, include, max_rows, "
        "max_decompressed_bytes, max_files)",
    )


def test_unknown_top_level_table(tmp_path, capsys):
    s = make(tmp_path, '[data]\nsource = "d.csv"\n[modle]\nformula = "y ~ 1"\n', GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: unknown key 'modle' at the top level (expected one of: analysis, data, simulate, model, fit, effects, checks, parts, joint, replication, sweep)",
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
        tmp_path, capsys, s, f"{s}: [data] filters[0] 'temp >' is not a valid SQL expression (incomplete expression: something is missing after '>' (column 6))"
    )


def test_derive_on_missing_column(tmp_path, capsys):
    s = make(tmp_path, SPEC.format(source="d.csv") + '[data.derive]\nvariant = "upper(template)"\n', GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: [data] derive.variant 'upper(template)' references column 'template', which is not "
        "in the data (columns: model, answer, temp, llm, congruent)",
    )


def test_a_mapping_target_that_is_not_a_plain_name(tmp_path, capsys):
    """Any plain name may be a [data.columns] target (issue 23 item 4: a non-canonical name is
    a copy); an audit column or a path is not."""
    s = make(tmp_path, '[data]\nsource = "d.csv"\n[data.columns]\n"a.b" = "model"\n', GOOD_CSV)
    assert_user_error(
        tmp_path, capsys, s,
        f"{s}: [data] columns: 'a.b': a target is a plain name (letters, digits, _), e.g. "
        'judge = "response.model"',
    )
    s.write_text('[data]\nsource = "d.csv"\n[data.columns]\nstatus = "model"\n')
    assert_user_error(tmp_path, capsys, s,
                      f"{s}: [data] columns: cannot write the audit column 'status'")


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


# ----------------------------------------------------------------------------- the corpus
# Each case: (command, spec text, extra argv, the exact message after "error: "). {spec} is
# the spec's path. A message ending in "…" is a prefix: the formula parser's own wording is
# being rewritten (issue 12 item 1); the file and key it names are fixed here.
# Every case must exit 2 with that one line, no traceback, and write nothing.
D = SPEC.format(source="d.csv")
M = '[model]\nformula = "congruent ~ 1 + (1|llm)"\n'
SIM = "[simulate]\n"
CORPUS_CSV = "model,answer,temp\n" + "".join(f"{m},{i % 2},0\n" for i in range(6) for m in "ab")
GAUSS = {  # gaussian outcomes (and a predictor) with infinite values
    "GAUSS+": ("model,answer,score,x\na,1,0.5,1\na,0,inf,2\nb,1,1.5,3\nb,0,1.5,4\na,1,0.2,5\n",
               "score ~ 1 + (1|llm)"),
    "GAUSS-": ("model,answer,score,x\na,1,-inf,1\na,0,-inf,2\nb,1,-inf,3\nb,0,1.5,4\na,1,0.2,5\n",
               "score ~ 1 + (1|llm)"),
    "GAUSSX": ("model,answer,score,x\na,1,0.5,inf\na,0,0.1,2\nb,1,1.5,3\nb,0,1.5,4\na,1,0.2,5\n",
               "score ~ 1 + x + (1|llm)"),
    # issue 19 item 4: numbers beyond 2^53 used to reach the default priors
    # (Exponential(scale=nan) blamed) or the sampler (a Rust panic)
    "HUGE+-": ("model,answer,score,x\na,1,1e308,1\na,0,-1e308,2\nb,1,1.5,3\nb,0,1.5,4\n"
               "a,1,0.2,5\n", "score ~ 1 + (1|llm)"),
    "HUGEX": ("model,answer,score,x\na,1,0.5,-1e300\na,0,0.1,2\nb,1,1.5,3\nb,0,1.5,4\n"
              "a,1,0.2,5\n", "score ~ 1 + x + (1|llm)"),
    "HUGECOUNT": ("model,answer,score,x\na,1,1000000000000000000,1\na,0,1,2\nb,1,3,3\n"
                  "b,0,2,4\na,1,0,5\n", "score ~ 1 + (1|llm)"),
}
FAMILY = {"HUGECOUNT": "negative_binomial"}


def fitk(line):
    return D + M + "[fit]\n" + line + "\n"


def simk(line):
    return SIM + line + "\n"


def prior(line):
    return D + M + "[model.priors]\n" + line + "\n"


def modelk(line):
    return D + "[model]\n" + line + "\n"


CORPUS = [

    # [fit] limits and types
    ("fit_chains_zero", "ingest", fitk("chains = 0"), [],
     '{spec}: [fit] chains: expected at least 1, got 0'),
    ("fit_chains_huge", "ingest", fitk("chains = 100000"), [],
     '{spec}: [fit] chains: expected at most 64, got 100000'),
    ("fit_chains_65", "ingest", fitk("chains = 65"), [],
     '{spec}: [fit] chains: expected at most 64, got 65'),
    ("fit_chains_float", "ingest", fitk("chains = 4.0"), [],
     '{spec}: [fit] chains: expected an integer, got 4.0'),
    ("fit_tune_negative", "ingest", fitk("tune = -1"), [],
     '{spec}: [fit] tune: expected at least 0, got -1'),
    ("fit_tune_huge", "ingest", fitk("tune = 100001"), [],
     '{spec}: [fit] tune: expected at most 100000, got 100001'),
    ("fit_draws_zero", "ingest", fitk("draws = 0"), [],
     '{spec}: [fit] draws: expected at least 1, got 0'),
    ("fit_draws_1e9", "ingest", fitk("draws = 1000000000"), [],
     '{spec}: [fit] draws: expected at most 100000, got 1000000000'),
    ("fit_seed_negative", "ingest", fitk("seed = -1"), [],
     '{spec}: [fit] seed: expected at least 0, got -1'),
    ("fit_seed_too_big", "ingest", fitk("seed = 4294967296"), [],
     '{spec}: [fit] seed: expected at most 4294967295, got 4294967296'),
    ("fit_seed_string", "ingest", fitk('seed = "1"'), [],
     '{spec}: [fit] seed: expected an integer, got "1"'),
    ("fit_target_accept_one", "ingest", fitk("target_accept = 1.0"), [],
     '{spec}: [fit] target_accept: expected less than 1, got 1.0'),
    ("fit_target_accept_zero", "ingest", fitk("target_accept = 0.0"), [],
     '{spec}: [fit] target_accept: expected more than 0, got 0.0'),
    ("fit_target_accept_nan", "ingest", fitk("target_accept = nan"), [],
     '{spec}: [fit] target_accept: expected a finite number, got nan'),
    ("fit_sampler_unknown", "ingest", fitk('sampler = "stan"'), [],
     '{spec}: [fit] sampler: expected \'nutpie\' or \'pymc\', got "stan"'),
    ("fit_adaptation_unknown", "ingest", fitk('adaptation = "full"'), [],
     '{spec}: [fit] adaptation: expected \'auto\', \'low_rank\' or \'diag\', got "full"'),
    ("fit_backend_unknown", "ingest", fitk('backend = "cuda"'), [],
     '{spec}: [fit] backend: expected \'auto\', \'numba\' or \'jax\', got "cuda"'),
    ("fit_memory_zero", "ingest", fitk("max_memory_gb = 0"), [],
     '{spec}: [fit] max_memory_gb: expected more than 0, got 0'),
    ("fit_memory_inf", "ingest", fitk("max_memory_gb = inf"), [],
     '{spec}: [fit] max_memory_gb: expected a finite number, got inf'),
    ("fit_memory_nan", "ingest", fitk("max_memory_gb = nan"), [],
     '{spec}: [fit] max_memory_gb: expected a finite number, got nan'),
    ("fit_memory_above_max", "ingest", fitk("max_memory_gb = 2048"), [],
     '{spec}: [fit] max_memory_gb: expected at most 1024, got 2048'),
    ("fit_device_gpu_numba", "ingest", fitk('device = "gpu"\nbackend = "numba"'), [],
     '{spec}: [fit] device = "gpu" needs backend = "jax" (or "auto"): numba compiles for the CPU'),
    ("fit_unknown_key", "ingest", fitk("chain = 4"), [],
     "{spec}: unknown key 'chain' in [fit] (expected one of: chains, tune, draws, seed, sampler, target_accept, adaptation, backend, device, max_memory_gb, refit)"),
    # [simulate] limits
    ("sim_trials_zero", "ingest", simk("trials = 0"), [],
     '{spec}: [simulate] trials: expected at least 1, got 0'),
    ("sim_trials_1e9", "ingest", simk("trials = 1000000000"), [],
     '{spec}: [simulate] trials: expected at most 10000, got 1000000000'),
    ("sim_rows_over_default", "ingest", simk("trials = 5000"), [],
     '{spec}: [simulate]: would make 53760000 judgements (8 LLMs x 21 stereotypes x 4 variants x 5000 trials x 16), above max_rows = 5000000; lower trials, or raise max_rows (at most 50000000)'),
    ("sim_rows_over_max_rows", "ingest", simk("trials = 10\nmax_rows = 1000"), [],
     '{spec}: [simulate]: would make 107520 judgements (8 LLMs x 21 stereotypes x 4 variants x 10 trials x 16), above max_rows = 1000; lower trials, or raise max_rows (at most 50000000)'),
    ("sim_max_rows_above_cap", "ingest", simk("max_rows = 100000000"), [],
     '{spec}: [simulate] max_rows: expected at most 50000000, got 100000000'),
    ("sim_seed_negative", "ingest", simk("seed = -1"), [],
     '{spec}: [simulate] seed: expected at least 0, got -1'),
    ("sim_seed_too_big", "ingest", simk("seed = 18446744073709551616"), [],
     '{spec}: [simulate] seed: expected at most 4294967295, got 18446744073709551616'),
    ("sim_refusal_rate_one", "ingest", simk("refusal_rate = 1.0"), [],
     '{spec}: [simulate] refusal_rate: expected less than 1, got 1.0'),
    ("sim_variant_sd_negative", "ingest", simk("variant_sd = -0.1"), [],
     '{spec}: [simulate] variant_sd: expected at least 0, got -0.1'),
    ("sim_variant_sd_inf", "ingest", simk("variant_sd = inf"), [],
     '{spec}: [simulate] variant_sd: expected a finite number, got inf'),
    ("sim_no_variants", "ingest", simk("variants = []"), [],
     '{spec}: [simulate] variants: expected at least 1 item, got none'),
    ("sim_unknown_preset", "ingest", simk('preset = "bai2025"'), [],
     "{spec}: [simulate] preset: unknown preset 'bai2025' (registered: bai2024)"),
    ("sim_unknown_key", "ingest", simk("trial = 5"), [],
     "{spec}: unknown key 'trial' in [simulate] (expected one of: preset, seed, trials, variants, variant_sd, refusal_rate, llms, max_rows)"),
    # priors, checked when the spec is read (ingest never touches the data)
    ("prior_uniform_reversed", "ingest", prior('sd_llm = "Uniform(1, 0)"'), [],
     "{spec}: [model] priors: prior 'Uniform(1, 0)' for 'sd_llm': lower must be below upper"),
    ("prior_uniform_empty", "ingest", prior('sd_llm = "Uniform(1, 1)"'), [],
     "{spec}: [model] priors: prior 'Uniform(1, 1)' for 'sd_llm': lower must be below upper"),
    ("prior_infinite_scale", "ingest", prior('sd_llm = "HalfNormal(inf)"'), [],
     "{spec}: [model] priors: prior 'HalfNormal(inf)' for 'sd_llm': arguments must be finite numbers"),
    ("prior_overflow_scale", "ingest", prior('sd_llm = "HalfNormal(1e999)"'), [],
     "{spec}: [model] priors: prior 'HalfNormal(1e999)' for 'sd_llm': arguments must be finite numbers"),
    ("prior_nan", "ingest", prior('Intercept = "Normal(nan, 1)"'), [],
     "{spec}: [model] priors: prior 'Normal(nan, 1)' for 'Intercept': arguments must be finite numbers"),
    ("prior_negative_scale", "ingest", prior('Intercept = "Normal(0, -1)"'), [],
     "{spec}: [model] priors: prior 'Normal(0, -1)' for 'Intercept': sigma must be positive"),
    ("prior_zero_scale", "ingest", prior('sd_llm = "HalfNormal(0)"'), [],
     "{spec}: [model] priors: prior 'HalfNormal(0)' for 'sd_llm': sigma must be positive"),
    ("prior_code_import", "ingest", prior("Intercept = \"__import__('os').system('touch PWNED')\""), [],
     "{spec}: [model] priors: prior '__import__('os').system('touch PWNED')' for 'Intercept' is not of the form Name(number, ...)"),
    ("prior_code_attribute", "ingest", prior('Intercept = "os.system(1)"'), [],
     "{spec}: [model] priors: prior 'os.system(1)' for 'Intercept' is not of the form Name(number, ...)"),
    ("prior_code_lambda", "ingest", prior('Intercept = "(lambda: 1)()"'), [],
     "{spec}: [model] priors: prior '(lambda: 1)()' for 'Intercept' is not of the form Name(number, ...)"),
    ("prior_code_in_argument", "ingest", prior("Intercept = \"Normal(__import__('os').getpid(), 1)\""), [],
     "{spec}: [model] priors: prior 'Normal(__import__('os').getpid(), 1)' for 'Intercept': arguments must be numbers"),
    ("prior_unknown_distribution", "ingest", prior('Intercept = "Foo(1)"'), [],
     "{spec}: [model] priors: prior 'Foo(1)' for 'Intercept': unknown distribution 'Foo'; use one of Normal, StudentT, Cauchy, Laplace, Logistic, Uniform, HalfNormal, HalfStudentT, HalfCauchy, Exponential, Gamma, InverseGamma, LogNormal, Beta, LKJ"),
    ("prior_too_many_args", "ingest", prior('Intercept = "Normal(0, 1, 2)"'), [],
     "{spec}: [model] priors: prior 'Normal(0, 1, 2)' for 'Intercept': Normal takes at most 2 arguments (mu, sigma)"),
    ("prior_unknown_keyword", "ingest", prior('Intercept = "Normal(0, tau=1)"'), [],
     "{spec}: [model] priors: prior 'Normal(0, tau=1)' for 'Intercept': Normal has no parameter 'tau'"),
    ("prior_lam_and_scale", "ingest", prior('sd_llm = "Exponential(lam=1, scale=2)"'), [],
     "{spec}: [model] priors: prior 'Exponential(lam=1, scale=2)' for 'sd_llm': give either lam or scale, not both"),
    ("prior_missing_parameter", "ingest", prior('sd_llm = "Gamma(2)"'), [],
     "{spec}: [model] priors: prior 'Gamma(2)' for 'sd_llm': missing beta"),
    ("prior_not_a_string", "ingest", prior("sd_llm = 1.5"), [],
     '{spec}: [model] priors.sd_llm: expected a string, got 1.5'),
    ("prior_string_argument", "ingest", prior("Intercept = \"Normal('a', 1)\""), [],
     "{spec}: [model] priors: prior 'Normal('a', 1)' for 'Intercept': arguments must be numbers"),
    ("prior_bool_argument", "ingest", prior('Intercept = "Normal(True, 1)"'), [],
     "{spec}: [model] priors: prior 'Normal(True, 1)' for 'Intercept': arguments must be numbers"),
    ("prior_lkj_zero", "ingest", prior('cor_llm = "LKJ(0)"'), [],
     "{spec}: [model] priors: prior 'LKJ(0)' for 'cor_llm': eta must be positive"),
    ("prior_syntax", "ingest", prior('Intercept = "Normal(0, 1"'), [],
     "{spec}: [model] priors: prior 'Normal(0, 1' for 'Intercept' is not of the form Name(number, ...)"),
    # [model] keys
    ("model_unknown_family", "ingest", modelk('formula = "congruent ~ 1"\nfamily = "poisonn"'), [],
     "{spec}: [model] family: unknown family 'poisonn'; choose one of bernoulli, binomial, beta_binomial, logitnormal_binomial, gaussian, student_t, lognormal, beta, negative_binomial, poisson, cumulative, categorical"),
    ("model_unknown_unit", "ingest", modelk('formula = "congruent ~ 1"\nunit = "row"'), [],
     '{spec}: [model] unit: expected \'judgement\' or \'trial\', got "row"'),
    ("model_formula_missing", "ingest", modelk('family = "bernoulli"'), [],
     '{spec}: missing required key [model] formula'),
    ("model_formula_number", "ingest", modelk("formula = 1"), [],
     '{spec}: [model] formula: expected a string, got 1'),
    ("model_centered_not_bool", "ingest", modelk('formula = "congruent ~ 1"\n[model.centered]\nllm = "yes"'), [],
     '{spec}: [model] centered.llm: expected true or false, got "yes"'),
    # [analysis] names
    ("analysis_name_dotdot", "ingest", '[analysis]\nname = ".."\n' + D, [],
     "{spec}: [analysis] name: must be letters, digits, '-' or '_' (it names the report folder)"),
    ("analysis_name_slash", "ingest", '[analysis]\nname = "../../etc"\n' + D, [],
     "{spec}: [analysis] name: must be letters, digits, '-' or '_' (it names the report folder)"),
    ("analysis_name_empty", "ingest", '[analysis]\nname = ""\n' + D, [],
     "{spec}: [analysis] name: must be letters, digits, '-' or '_' (it names the report folder)"),
    ("analysis_name_space", "ingest", '[analysis]\nname = "my analysis"\n' + D, [],
     "{spec}: [analysis] name: must be letters, digits, '-' or '_' (it names the report folder)"),
    # other spec tables
    ("data_delimiter_two_chars", "ingest", D.replace('[data.columns]', 'delimiter = ";;"\n[data.columns]'), [],
     '{spec}: [data] delimiter: must be a single character'),
    ("data_encoding_unknown", "ingest", D.replace('[data.columns]', 'encoding = "utf-16"\n[data.columns]'), [],
     '{spec}: [data] encoding: expected \'utf-8\', \'latin-1\' or \'cp1252\', got "utf-16"'),
    ("data_format_unknown", "ingest", D.replace('[data.columns]', 'format = "xlsx"\n[data.columns]'), [],
     '{spec}: [data] format: expected \'csv\', \'tsv\', \'jsonl\', \'json\', \'parquet\', \'inspect_eval\' or \'lm_eval_samples\', got "xlsx"'),
    ("data_missing_outcome_unknown", "ingest", D.replace('[data.columns]', 'missing_outcome = "drop"\n[data.columns]'), [],
     '{spec}: [data] missing_outcome: expected \'unparseable\' or \'refused\', got "drop"'),
    ("data_filters_not_list", "ingest", D.replace('[data.columns]', 'filters = "temp = 0"\n[data.columns]'), [],
     '{spec}: [data] filters: expected a list, got "temp = 0"'),
    ("checks_rhat_below_one", "ingest", D + "[checks]\nrhat_max = 0.5\n", [],
     '{spec}: [checks] rhat_max: expected at least 1, got 0.5'),
    ("checks_negative_ess", "ingest", D + "[checks]\ness_bulk_min = -1\n", [],
     '{spec}: [checks] ess_bulk_min: expected at least 0, got -1'),
    ("effects_hdi_prob_one", "ingest", D + "[effects]\nhdi_prob = 1.0\n", [],
     '{spec}: [effects] hdi_prob: expected less than 1, got 1.0'),
    ("effects_rope_negative", "ingest", D + "[effects]\nrope = -0.1\n", [],
     '{spec}: [effects] rope: expected at least 0, got -0.1'),
    ("no_data_no_simulate", "ingest", "[fit]\nchains = 2\n", [],
     '{spec}: give exactly one of [data] (a dataset or file) or [simulate]'),
    # fit stage: the message names the spec file and the key; nothing is written
    ("fit_formula_unknown_column", "fit", D + '[model]\nformula = "congruent ~ 1 + nope"\n', [],
     '{spec}: [model] formula: …'),
    ("fit_formula_unknown_group", "fit", D + '[model]\nformula = "congruent ~ 1 + (1|judge)"\n', [],
     '{spec}: [model] formula: …'),
    ("fit_formula_no_tilde", "fit", D + '[model]\nformula = "congruent"\n', [],
     '{spec}: [model] formula: …'),
    ("fit_formula_unbalanced", "fit", D + '[model]\nformula = "congruent ~ 1 + (1|llm"\n', [],
     '{spec}: [model] formula: …'),
    ("fit_prior_unknown_key", "fit", prior('sd_judge = "HalfNormal(1)"'), [],
     "{spec}: [model.priors]: unknown prior key 'sd_judge'; known keys: Intercept, sd_llm"),
    ("fit_prior_not_positive", "fit", prior('sd_llm = "Normal(0, 1)"'), [],
     "{spec}: [model.priors]: prior 'Normal(0, 1)' for 'sd_llm' must be positive-only (e.g. HalfNormal(1))"),
    ("fit_centered_unknown", "fit", D + M + "[model.centered]\njudge = true\n", [],
     "{spec}: [model.centered]: unknown grouping 'judge'; groupings are llm"),
    ("fit_binomial_without_trials", "fit", D + '[model]\nformula = "congruent ~ 1"\nfamily = "binomial"\n', [],
     "{spec}: [model] family: family 'binomial' needs a response like 'congruent | trials(n)'"),
    ("fit_memory_limit", "fit", D + M + "[fit]\nmax_memory_gb = 0.000001\n", [],
     '{spec}: [fit] the fit would hold about 0.00032 GB (4 chains x 1000 draws x (2 x 3 parameters + 2 x 2 observations) x 8 bytes), above max_memory_gb = 1e-06; lower draws or chains, or raise max_memory_gb (at most 1024)'),
    ("fit_no_model", "fit", D, [],
     '{spec}: no [model] table: nothing to fit'),
    ("fit_gaussian_plus_inf", "fit", "GAUSS+", [],
     "{spec}: [model] formula uses column 'score', which holds 1 infinite value (of 5 rows) in d.csv; expected finite numbers (fix the data or drop those rows with [data] filters)"),
    ("fit_gaussian_minus_inf", "fit", "GAUSS-", [],
     "{spec}: [model] formula uses column 'score', which holds 3 infinite values (of 5 rows) in d.csv; expected finite numbers (fix the data or drop those rows with [data] filters)"),
    ("fit_gaussian_predictor_inf", "fit", "GAUSSX", [],
     "{spec}: [model] formula uses column 'x', which holds 1 infinite value (of 5 rows) in d.csv; expected finite numbers (fix the data or drop those rows with [data] filters)"),
    ("fit_outcome_plus_minus_1e308", "fit", "HUGE+-", [],
     "{spec}: [model] formula uses column 'score', which holds 2 values too large for a model "
     "(of 5 rows, the largest 1e+308) in d.csv; expected magnitudes up to 9.01e+15 (2^53): "
     "rescale it with [data.derive] (e.g. 'score / 1e6') or drop those rows with [data] "
     "filters"),
    ("fit_predictor_minus_1e300", "fit", "HUGEX", [],
     "{spec}: [model] formula uses column 'x', which holds 1 value too large for a model "
     "(of 5 rows, the largest -1e+300) in d.csv; expected magnitudes up to 9.01e+15 (2^53): "
     "rescale it with [data.derive] (e.g. 'x / 1e6') or drop those rows with [data] filters"),
    ("fit_count_1e18", "fit", "HUGECOUNT", [],
     "{spec}: [model] formula uses column 'score', which holds 1 value too large for a model "
     "(of 5 rows, the largest 1e+18) in d.csv; expected magnitudes up to 9.01e+15 (2^53): "
     "rescale it with [data.derive] (e.g. 'score / 1e6') or drop those rows with [data] "
     "filters"),
    # simulate command
    ("simulate_seed_negative", "simulate", D + M, ["--seed", "-1"],
     '--seed -1: expected an integer from 0 to 4294967295'),
    ("simulate_seed_too_big", "simulate", D + M, ["--seed", "4294967296"],
     '--seed 4294967296: expected an integer from 0 to 4294967295'),
    ("simulate_set_malformed", "simulate", D + M, ["--seed", "1", "--set", "sd_llm"],
     "--set 'sd_llm': expected NAME=VALUE, e.g. sd_llm=0.5"),
    ("simulate_set_unknown", "simulate", D + M, ["--seed", "1", "--set", "sd_judge=1"],
     "unknown parameter 'sd_judge' to set; valid parameters: Intercept, sd_llm, r_llm"),
    ("simulate_set_negative_sd", "simulate", D + M, ["--seed", "1", "--set", "sd_llm=-1"],
     "parameter 'sd_llm' must be positive, got -1.0"),
    ("simulate_no_model", "simulate", D, ["--seed", "1"],
     '{spec}: no [model] table: nothing to simulate from'),
    # size and depth limits, checked before any recursive parser (issue 19, item 1)
    ("derive_20001_terms", "ingest", D + "[data.derive]\nz = \"" + " + ".join(["temp"] * 20001)
     + '"\n', [], "{spec}: [data] derive.z: the expression is 140,004 characters long, above "
     "the limit of 10,000"),
    ("derive_1500_terms", "ingest", D + "[data.derive]\nz = \"" + "+".join(["t"] * 1500)
     + '"\n', [], "{spec}: [data] derive.z: the expression has 1500 operands, above the "
     "limit of 1000"),
    ("filter_deep_parens", "ingest", D.replace("[data.columns]", 'filters = ["' + "(" * 30
     + "temp = 0" + ")" * 30 + '"]\n[data.columns]'), [],
     "{spec}: [data] filters[0]: the expression nests 30 levels deep (brackets and prefix "
     "signs), above the limit of 24"),
    ("derive_too_many", "ingest", D + "[data.derive]\n" + "".join(f'd{i} = "temp"\n'
     for i in range(201)), [], "{spec}: [data] derive: 201 derived columns, above the limit "
     "of 200"),
    ("prior_5000_unary_minus", "ingest", prior('Intercept = "Normal(' + "-" * 5000 + '1, 1)"'),
     [], "{spec}: [model] priors: prior for 'Intercept': the prior is 5,012 characters long, "
     "above the limit of 200"),
    ("prior_deep_unary_minus", "ingest", prior('Intercept = "Normal(' + "- " * 20 + '1, 1)"'),
     [], "{spec}: [model] priors: prior for 'Intercept': the prior nests 21 levels deep "
     "(brackets and prefix signs), above the limit of 4"),
    ("formula_600_terms", "ingest", modelk('formula = "congruent ~ ' + " + ".join(
     f"x{i}" for i in range(600)) + '"'), [], "{spec}: [model] formula: the formula has 601 "
     "operands, above the limit of 200"),
    ("formula_I_5000_terms", "ingest", modelk('formula = "congruent ~ I(' + "+".join(
     ["temp"] * 5000) + ')"'), [], "{spec}: [model] formula: the formula is 25,014 characters "
     "long, above the limit of 5,000"),
    ("formula_300_deep_log", "ingest", modelk('formula = "congruent ~ ' + "log(" * 300
     + "temp" + ")" * 300 + '"'), [], "{spec}: [model] formula: the formula nests 300 levels "
     "deep (brackets and prefix signs), above the limit of 24"),
    ("aux_deep", "ingest", D + '[model]\nformula = "congruent ~ 1"\nfamily = "beta_binomial"\n'
     'unit = "trial"\n[model.aux]\nphi = "~ ' + "(" * 30 + "1" + ")" * 30 + '"\n', [],
     "{spec}: [model.aux] phi: the formula nests 30 levels deep (brackets and prefix "
     "signs), above the limit of 24"),
    ("aux_code", "ingest", D + '[model]\nformula = "congruent ~ 1"\nfamily = "beta_binomial"\n'
     'unit = "trial"\n[model.aux]\nphi = "~ 1 + __import__(1)"\n', [],
     "{spec}: [model.aux] phi: …"),
    ("aux_wrong_parameter", "ingest", D + '[model]\nformula = "congruent ~ 1"\n'
     'family = "bernoulli"\n[model.aux]\nphi = "~ 1"\n', [],
     "{spec}: [model.aux] phi: family 'bernoulli' has no positive auxiliary parameter "
     "'phi' (it has: none)"),
]


@pytest.mark.parametrize(("command", "spec", "extra", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in CORPUS])
def test_corpus(tmp_path, capsys, command, spec, extra, expected):
    if spec in GAUSS:
        csv, formula = GAUSS[spec]
        family = FAMILY.get(spec, "gaussian")
        spec = D + f'[model]\nformula = "{formula}"\nfamily = "{family}"\n'
    else:
        csv = CORPUS_CSV
    s = make(tmp_path, spec, csv)
    out_dir = tmp_path / "out"
    before = sorted(tmp_path.rglob("*"))
    rc, out, err = run([command, s, "--out", out_dir, *extra], capsys)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written anywhere, inside or out
    expected = expected.format(spec=s)
    assert rc == 2 and "Traceback" not in err + out
    if expected.endswith("…"):
        assert err.startswith(f"error: {expected[:-1]}") and err.count("\n") == 1, err
    else:
        assert err == f"error: {expected}\n"
    assert not out_dir.exists()  # nothing written, not even the folder
    assert not (tmp_path / "PWNED").exists()
