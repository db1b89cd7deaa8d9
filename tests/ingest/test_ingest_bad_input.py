"""Each ingest bug of issue 10 as an exact one-line message: exit 2, no traceback, nothing
written (and the new keys' validation)."""

from __future__ import annotations

import gzip
import os
import socket
import sys
from pathlib import Path

import pytest

from biasstats.cli import main


def setup(tmp_path: Path, spec: str, files: dict) -> Path:
    """``files``: name -> text, bytes, or a function making the file at that path (a FIFO,
    a socket, a link)."""
    for name, content in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(p)
        else:
            p.write_bytes(content if isinstance(content, bytes) else content.encode())
    s = tmp_path / "s.toml"
    s.write_text(spec)
    return s


def error_of(tmp_path: Path, capsys, spec: Path) -> str:
    out_dir = tmp_path / "out"
    before = sorted(tmp_path.rglob("*"))
    rc = main(["ingest", str(spec), "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "Traceback" not in out + err and err.count("\n") == 1
    assert not out_dir.exists()  # nothing half-written
    assert sorted(tmp_path.rglob("*")) == before  # nor anything anywhere else
    return err.removeprefix("error: ").rstrip("\n").replace(str(tmp_path), "<d>")


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _socket(p: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(p))
    _SOCKETS.append(sock)  # closed at exit; the file stays a socket


_SOCKETS: list[socket.socket] = []


def _link_to(target: str):
    return lambda p: p.symlink_to(target)


CSV1 = "congruent\n1\n"
CASES = {
    # issue 19 item 4: not a regular file, named by its kind and never opened (a FIFO blocks
    # whoever opens it until something writes to it): "file not found" before
    "a FIFO as the source": (
        '[data]\nsource = "d.csv"\n', {"d.csv": _fifo},
        '<d>/s.toml: [data] source = "d.csv": <d>/d.csv is a FIFO (named pipe), not a data file',
    ),
    "a socket as the source": (
        '[data]\nsource = "d.csv"\n', {"d.csv": _socket},
        '<d>/s.toml: [data] source = "d.csv": <d>/d.csv is a socket, not a data file',
    ),
    "a device as the source": (
        '[data]\nsource = "d.csv"\n', {"d.csv": _link_to("/dev/zero")},
        '<d>/s.toml: [data] source = "d.csv": <d>/d.csv is a character device, not a data file',
    ),
    "a /proc pseudo-file as the source": (
        '[data]\nsource = "/proc/self/status"\n', {},
        '<d>/s.toml: [data] source = "/proc/self/status": /proc/self/status is a pseudo-file of '
        "the kernel (/proc), not a data file",
    ),
    "a link to a /proc pseudo-file named like a CSV": (
        '[data]\nsource = "d.csv"\n', {"d.csv": _link_to("/proc/self/mounts")},
        '<d>/s.toml: [data] source = "d.csv": <d>/d.csv is a pseudo-file of the kernel (/proc), '
        "not a data file",
    ),
    "a FIFO among a folder's files": (
        '[data]\nsource = "runs"\n', {"runs/a.csv": CSV1, "runs/b.csv": _fifo},
        '<d>/s.toml: [data] source = "runs": <d>/runs/b.csv is a FIFO (named pipe), not a data file',
    ),
    "a FIFO matched by a glob": (
        '[data]\nsource = "runs/*.csv"\n', {"runs/a.csv": CSV1, "runs/b.csv": _fifo},
        '<d>/s.toml: [data] source = "runs/*.csv": <d>/runs/b.csv is a FIFO (named pipe), not a '
        "data file",
    ),
    "a broken link among a folder's files": (
        '[data]\nsource = "runs"\n', {"runs/a.csv": CSV1, "runs/b.csv": _link_to("gone.csv")},
        '<d>/s.toml: [data] source = "runs": <d>/runs/b.csv is a broken symbolic link, not a '
        "data file",
    ),
    # [data] max_files: refused while the files are listed, before any is read
    "more files than max_files in a folder": (
        '[data]\nsource = "runs"\nmax_files = 3\n', {f"runs/{i}.csv": CSV1 for i in range(5)},
        '<d>/s.toml: [data] source = "runs": the source names more than 3 files ([data] '
        "max_files); raise the limit if this is expected",
    ),
    "more files than max_files over a list of entries": (
        '[data]\nsource = ["a/*.csv", "b"]\nmax_files = 3\n',
        {"a/1.csv": CSV1, "a/2.csv": CSV1, "b/3.csv": CSV1, "b/4.csv": CSV1},
        '<d>/s.toml: [data] source = "b": the source names more than 3 files ([data] '
        "max_files); raise the limit if this is expected",
    ),
    "max_files above its ceiling": (
        '[data]\nsource = "d.csv"\nmax_files = 20000000\n', {},
        "<d>/s.toml: [data] max_files: expected at most 10000000, got 20000000",
    ),
    "max_files zero": (
        '[data]\nsource = "d.csv"\nmax_files = 0\n', {},
        "<d>/s.toml: [data] max_files: expected at least 1, got 0",
    ),
    "glob matching nothing": (
        '[data]\nsource = "runs/*/*.csv"\n', {},
        '<d>/s.toml: [data] source = "runs/*/*.csv": no file matches (searched \'*/*.csv\' in <d>/runs)',
    ),
    "folder without data files": (
        '[data]\nsource = "runs"\n', {"runs/readme.txt": "x"},
        '<d>/s.toml: [data] source = "runs": the folder <d>/runs holds no data files (expected .csv, '
        ".tsv, .jsonl, .json, .parquet or .eval, optionally .gz or .zst)",
    ),
    "a list with a missing file": (
        '[data]\nsource = ["d.csv", "e.csv"]\n', {"d.csv": "congruent\n1\n"},
        '<d>/s.toml: [data] source = "e.csv": file not found (<d>/e.csv)',
    ),
    "a list with a number": (
        '[data]\nsource = ["d.csv", 3]\n', {},
        '<d>/s.toml: [data] source: expected a path, glob, folder or dataset name, or a list of '
        'them (got ["d.csv", 3])',
    ),
    "a file that does not match path_pattern": (
        '[data]\nsource = "runs/**/*.csv"\npath_pattern = "{llm}/{test}.csv"\n',
        {"runs/a/x.csv": "congruent\n1\n", "runs/c/sub/z.csv": "congruent\n1\n"},
        '<d>/runs/c/sub/z.csv: path does not match [data] path_pattern = "{llm}/{test}.csv" '
        "(its path below <d>/runs is 'c/sub/z.csv')",
    ),
    "a path column clashing with a file column": (
        '[data]\nsource = "runs/*.csv"\npath_pattern = "{llm}.csv"\n', {"runs/a.csv": "congruent,llm\n1,x\n"},
        "<d>/runs/a.csv: column 'llm' clashes with a path_pattern placeholder of the same name "
        "(rename it with [data] rename)",
    ),
    "trial mapped to a text column": (
        '[data]\nsource = "d.csv"\n[data.columns]\ncongruent = "answer"\ntrial = "t"\n',
        {"d.csv": "t,answer\n1,1\nx7,0\nq,1\n"},
        '<d>/s.toml: [data.columns] trial = "t": expected whole numbers, found \'x7\' (d.csv, source '
        "row 1; 2 rows in all)",
    ),
    "refusal_pattern valid in Python re but not in the engine that runs it": (
        '[data]\nsource = "d.csv"\nrefusal_pattern = "^(?!As an AI)"\n', {"d.csv": "congruent\n1\n"},
        "<d>/s.toml: [data] refusal_pattern: not a valid regex (Rust regex syntax, as polars runs "
        "it): look-around, including look-ahead and look-behind, is not supported",
    ),
    "duplicate header names": (
        '[data]\nsource = "d.csv"\n', {"d.csv": "congruent,model,model\n1,a,b\n"},
        "<d>/d.csv: column name 'model' appears twice in the header (expected unique column names)",
    ),
    "a filter that is not yes/no": (
        '[data]\nsource = "d.csv"\nfilters = ["temp + 1"]\n', {"d.csv": "congruent,temp\n1,0\n"},
        "<d>/s.toml: [data] filters[0] 'temp + 1' is not a yes/no expression (it gives Int64 "
        "values; write a comparison, e.g. 'temp = 0')",
    ),
    "derive writing an audit column": (
        '[data]\nsource = "d.csv"\n[data.derive]\nsource_row = "temp"\n', {"d.csv": "congruent,temp\n1,0\n"},
        "<d>/s.toml: [data] derive: cannot write the audit column 'source_row'",
    ),
    "a canonical name the data already has": (
        '[data]\nsource = "d.csv"\n[data.columns]\nllm = "model"\n', {"d.csv": "congruent,model,llm\n1,a,b\n"},
        '<d>/s.toml: [data.columns] llm = "model": the data already has a column \'llm\'; map llm = '
        '"llm" or rename one of them with [data.rename]',
    ),
    "a source column named status": (
        '[data]\nsource = "d.csv"\n', {"d.csv": "congruent,status\n1,done\n"},
        "<d>/d.csv: column 'status' clashes with the reserved column 'status' (each row's "
        'ingest status); rename it with [data.rename] status = "..."',
    ),
    "JSONL list values in a text column": (
        '[data]\nsource = "d.jsonl"\n[data.columns]\nraw = "completion"\n',
        {"d.jsonl": '{"congruent": 1, "completion": ["a", "b"]}\n'},
        '<d>/s.toml: [data.columns] raw = "completion": the column holds lists, not single values; '
        'explode it ([data] explode = ["completion"]) or pick a part (e.g. completion[0])',
    ),
    "a compressed file expanding past the limit": (
        '[data]\nsource = "d.csv.gz"\nmax_decompressed_bytes = 100000\n',
        {"d.csv.gz": gzip.compress(b"congruent\n" + b"1\n" * 1_000_000)},
        "<d>/d.csv.gz: expands to more than 100,000 bytes when decompressed ([data] "
        "max_decompressed_bytes); raise the limit if the file is genuine",
    ),
    "more rows than max_rows": (
        '[data]\nsource = "*.csv"\nmax_rows = 3\n', {"a.csv": "congruent\n1\n1\n", "b.csv": "congruent\n1\n1\n"},
        "<d>/b.csv: the source passes 3 rows at this file ([data] max_rows); raise the limit if "
        "this is expected",
    ),
    "max_rows above the stated maximum": (
        '[data]\nsource = "d.csv"\nmax_rows = 2000000000\n', {},
        "<d>/s.toml: [data] max_rows: expected at most 1000000000, got 2000000000",
    ),
    "a regex rule without a pattern": (
        '[data]\nsource = "d.csv"\n[data.parse.x]\nkind = "regex"\ntext = "r"\n', {},
        '<d>/s.toml: [data] parse.x: kind = "regex" needs pattern',
    ),
    "a regex rule without a capture group": (
        '[data]\nsource = "d.csv"\n[data.parse.x]\nkind = "regex"\ntext = "r"\npattern = "[A-D]"\n', {},
        "<d>/s.toml: [data] parse.x: pattern '[A-D]' needs a capture group, e.g. ([A-D])",
    ),
    "a typo in a parse rule": (
        '[data]\nsource = "d.csv"\n[data.parse.x]\nkind = "regex"\ntext = "r"\npatern = "([A-D])"\n', {},
        "<d>/s.toml: unknown key 'patern' in [data] parse.x (expected one of: kind, text, pattern, "
        "map, candidates, values)",
    ),
    "a key of another kind of rule": (
        '[data]\nsource = "d.csv"\n[data.parse.x]\nkind = "one_of"\ntext = "r"\nvalues = ["a"]\n'
        'pattern = "([A-D])"\n', {},
        '<d>/s.toml: [data] parse.x: pattern does not apply to kind = "one_of"',
    ),
    "a parse output named like a source column": (
        '[data]\nsource = "d.csv"\n[data.parse.r]\nkind = "one_of"\ntext = "r"\nvalues = ["a"]\n',
        {"d.csv": "congruent,r\n1,a\n"},
        "<d>/s.toml: [data.parse.r]: the data already has a column 'r' (name the parsed column "
        "differently)",
    ),
    "exploded lists of unequal length": (
        '[data]\nsource = "d.json"\nexplode = ["a", "b"]\n', {"d.json": '[{"congruent": 1, "a": [1, 2], "b": [1]}]'},
        "<d>/s.toml: [data] explode: lists of unequal length in source row 0 (a has 2, b has 1); "
        "lists exploded together must match",
    ),
    "explode of a field that is not a list": (
        '[data]\nsource = "d.json"\nexplode = ["congruent"]\n', {"d.json": '[{"congruent": 1}]'},
        '<d>/s.toml: [data] explode[0] "congruent": expected a list, got Int64',
    ),
    "a misspelt nested field": (
        '[data]\nsource = "d.json"\n[data.columns]\nraw = "response.choices[0].mesage.content"\n',
        {"d.json": '[{"congruent": 1, "response": {"choices": [{"message": {"content": "x"}}]}}]'},
        '<d>/s.toml: [data.columns] raw = "response.choices[0].mesage.content": no field \'mesage\' '
        "in 'response.choices[0]' (fields: message)",
    ),
    "a ragged CSV line in one of several files": (
        '[data]\nsource = "*.csv"\n', {"a.csv": "congruent,b\n1,2\n", "b.csv": "congruent,b\n1,2\n1,2,3\n"},
        "<d>/b.csv: cannot parse as CSV with delimiter ',' (found more fields than defined in 'Schema')",
    ),
    "a derive that fails on the data": (
        '[data]\nsource = "d.csv"\n[data.derive]\nz = "cast(b as int)"\n', {"d.csv": "congruent,b\n1,2\n1,x\n"},
        "<d>/s.toml: [data] derive.z 'cast(b as int)' failed on the data (conversion from "
        "`str` to `i32` failed in column 'b' for 1 out of 2 values: [\"x\"])",
    ),
    "a filter that fails on the data": (
        '[data]\nsource = "d.csv"\nfilters = ["congruent = 1", "cast(b as int) > 0"]\n',
        {"d.csv": "congruent,b\n1,2\n1,x\n"},
        "<d>/s.toml: [data] filters[1] 'cast(b as int) > 0' failed on the data (conversion from "
        "`str` to `i32` failed in column 'b' for 1 out of 2 values: [\"x\"])",
    ),
    "a derive that fails on the data, in a folder of files": (
        '[data]\nsource = "runs"\n[data.derive]\nok = "congruent = 1"\nz = "cast(b as int) + 1"\n',
        {"runs/a.csv": "congruent,b\n1,2\n", "runs/b.csv": "congruent,b\n1,y\n"},
        "<d>/s.toml: [data] derive.z 'cast(b as int) + 1' failed on the data (conversion from "
        "`str` to `i32` failed in column 'b' for 1 out of 2 values: [\"y\"])",
    ),
    "a reserved path_pattern placeholder": (
        '[data]\nsource = "d.csv"\npath_pattern = "{status}.csv"\n', {},
        "<d>/s.toml: [data] path_pattern: placeholder {status} is a reserved audit column",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_error(tmp_path, capsys, case):
    spec, files, expected = CASES[case]
    assert error_of(tmp_path, capsys, setup(tmp_path, spec, files)) == expected


def test_a_folder_source_is_read_not_file_not_found(tmp_path, capsys):
    s = setup(tmp_path, '[data]\nsource = "runs"\n',
              {"runs/a.csv": "congruent\n1\n", "runs/b/c.csv": "congruent\n0\n", "runs/.hidden.csv": "x"})
    assert main(["ingest", str(s), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "rows per file (2 files):" in out
    assert "            1  runs/a.csv\n            1  runs/b/c.csv\n" in out


def test_family_support_error_counts_the_offending_rows():
    import numpy as np

    from biasstats.errors import SpecError
    from biasstats.model.families import get_family

    y = np.array([1.0, 2.5, 0.0, -1.0, 3.0])
    with pytest.raises(SpecError) as e:
        get_family("lognormal").check_response(y, "rt")
    assert str(e.value) == "response 'rt' must hold positive values for family 'lognormal' (2 of 5 rows do not)"


ADAPTER_CODE = '''
import polars as pl

def not_a_frame(raw):
    return raw.to_dicts()

def drops_source_row(raw):
    return raw.drop("source_row")

def first_only(raw):
    return raw.head(1).with_columns(pl.lit(1).alias("congruent"))
'''


@pytest.fixture
def bad_adapters(tmp_path, monkeypatch):
    """The functions of ADAPTER_CODE registered as user adapters (removed afterwards)."""
    import importlib

    from biasstats import register_adapter
    from biasstats.registry import unregister_adapter

    (tmp_path / "badadapt.py").write_text(ADAPTER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("badadapt")
    names = ("not_a_frame", "drops_source_row", "first_only")
    for name in names:
        register_adapter(name, getattr(mod, name))
    yield mod
    for name in names:
        unregister_adapter(name)
    monkeypatch.delitem(sys.modules, "badadapt", raising=False)


@pytest.mark.parametrize("fn,expected", [
    ("not_a_frame", 'adapter = "not_a_frame": returned list, expected a polars DataFrame'),
    ("drops_source_row", 'adapter = "drops_source_row": returned no \'source_row\' column '
                         "(keep it from the input)"),
])
def test_user_adapter_errors(tmp_path, capsys, bad_adapters, fn, expected):
    s = setup(tmp_path, f'[data]\nsource = "d.csv"\nadapter = "{fn}"\n', {"d.csv": "x\n1\n2\n"})
    assert error_of(tmp_path, capsys, s) == f"<d>/s.toml: [data] {expected}"


def test_a_spec_never_imports_code_it_names(tmp_path, capsys, monkeypatch):
    """``module:function`` is refused when the spec loads: the module is never imported, so
    code at its top level (here: writing a file) never runs."""
    canary = tmp_path / "PWNED"
    (tmp_path / "evil.py").write_text(f"open({str(canary)!r}, 'w').write('x')\n"
                                      "def run(raw):\n    return raw\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("evil:run", "os:system", "builtins:exit"):
        s = setup(tmp_path, f'[data]\nsource = "d.csv"\nadapter = "{name}"\n',
                  {"d.csv": "x\n1\n"})
        module, _, attr = name.partition(":")
        assert error_of(tmp_path, capsys, s) == (
            f'<d>/s.toml: [data] adapter = "{name}": a spec names a registered adapter, never '
            f'Python code to import; register the function first, e.g. '
            f'biasstats.register_adapter("{attr}", {module}.{attr}), and write adapter = '
            f'"{attr}", or declare it as an entry point in the \'biasstats.adapters\' group of '
            "an installed package")
    assert not canary.exists() and "evil" not in sys.modules


def test_a_sensitivity_spec_is_held_to_the_same_rules(tmp_path, capsys):
    """A spec reached through [checks] sensitivity is loaded and checked with the spec that
    names it: its code adapter is refused before anything runs."""
    (tmp_path / "other.toml").write_text('[data]\nsource = "d.csv"\nadapter = "os:system"\n'
                                         '[model]\nformula = "x ~ 1"\nfamily = "gaussian"\n')
    s = setup(tmp_path, '[data]\nsource = "d.csv"\n[model]\nformula = "x ~ 1"\n'
              'family = "gaussian"\n[checks]\nsensitivity = ["other.toml"]\n',
              {"d.csv": "x\n1\n2\n"})
    err = error_of(tmp_path, capsys, s)
    assert err.startswith('<d>/s.toml: [checks] sensitivity[0] = "other.toml": <d>/other.toml: '
                          '[data] adapter = "os:system": a spec names a registered adapter, '
                          "never Python code to import")


def test_register_adapter_refuses_bad_names_and_a_second_function():
    from biasstats import register_adapter
    from biasstats.registry import unregister_adapter

    def f(raw):
        return raw

    for bad in ("mod:fn", "tidy", "", "a b", "bai2024_iat"):
        with pytest.raises(ValueError):
            register_adapter(bad, f)
    register_adapter("twice", f)
    try:
        register_adapter("twice", f)  # the same function again: idempotent
        with pytest.raises(ValueError, match="registered twice"):
            register_adapter("twice", lambda raw: raw)
        register_adapter("twice", lambda raw: raw, replace=True)
    finally:
        unregister_adapter("twice")


def test_user_adapter_from_an_entry_point_and_rows_it_drops_are_counted(tmp_path, monkeypatch):
    import importlib.metadata

    from biasstats.ingest import ingest

    (tmp_path / "badadapt.py").write_text(ADAPTER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "badadapt", raising=False)
    ep = importlib.metadata.EntryPoint("firstonly", "badadapt:first_only", "biasstats.adapters")
    real = importlib.metadata.entry_points

    def fake(**kw):
        if kw.get("group") == "biasstats.adapters":
            return importlib.metadata.EntryPoints([ep]).select(**kw)
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    s = setup(tmp_path, '[data]\nsource = "d.csv"\nadapter = "firstonly"\n', {"d.csv": "x\n1\n2\n3\n"})
    res = ingest(s)
    assert res.ledger.rows_read == 3
    assert res.ledger.rows.by_status == {"ok": 1, "refused": 0, "unparseable": 0, "excluded": 2}
    assert res.ledger.rows.by_reason == {"excluded: adapter returned no row for it": 2}


def test_family_support_error_names_the_data_file_and_row(tmp_path, capsys):
    """Across many files, the one holding the unsupported outcome is named (fit stage,
    before sampling: exit 2, nothing written)."""
    spec = setup(tmp_path, '[data]\nsource = "runs/*.csv"\noutcome = "y"\n'
                           '[data.columns]\nllm = "model"\n'
                           '[model]\nformula = "y ~ 1 + (1|llm)"\nfamily = "lognormal"\n',
                 {"runs/a.csv": "model,y\na,1.5\nb,2\n", "runs/b.csv": "model,y\na,3\nb,-2\nb,0\n"})
    out = tmp_path / "out"
    rc = main(["fit", str(spec), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == (f"error: {spec}: [model] family = \"lognormal\": response 'y' must hold "
                   "positive values (2 of 5 rows do not, in runs/b.csv, first at source_row 3)\n")
    assert not out.exists() or not any(out.iterdir())


def test_streamed_cells_name_the_failing_filter(tmp_path):
    """ingest_cells (the streaming path) blames the same key as ingest."""
    from biasstats.errors import SpecError
    from biasstats.ingest import ingest_cells

    spec = setup(tmp_path, '[data]\nsource = "*.csv"\nfilters = ["cast(b as int) > 0"]\n',
                 {"a.csv": "congruent,b,llm\n1,2,m\n", "b.csv": "congruent,b,llm\n0,z,m\n"})
    with pytest.raises(SpecError) as e:
        ingest_cells(spec)
    assert str(e.value).startswith(
        f"{spec}: [data] filters[0] 'cast(b as int) > 0' failed on the data (conversion from "
    )
