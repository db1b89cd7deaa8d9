"""A source of many files (issue 19 item 4): read in time linear in their number, the same
table as reading them one by one, and refused past ``[data] max_files`` before any is read.

Polars planned a stack of one scan per file in time that grew with the square of their
number (2,000 one-row CSV files: 14 s; 100,000 ran past 10 minutes at 2.1 GB). The bench
lines (tests/benchmarks/bench_files.py) time 8,000 JSON and 2,000 CSV files; here the
structure that makes it linear is checked: files with one header are one scan.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from biasstats.cli import main
from biasstats.ingest import ingest
from biasstats.ingest import scan as scan_module
from biasstats.ingest.read import SourceRef, read_sources
from biasstats.ingest.scan import scan_sources


def _mixed(root: Path) -> list[SourceRef]:
    """Files of every kind the reader stacks, in an order that starts and ends runs:
    CSVs with one header (types differing between files), a CSV with another header,
    JSON, gzip CSV, Parquet, TSV, and the first header again; path columns per file."""
    root.mkdir(parents=True, exist_ok=True)
    files = []

    def add(name: str, content, **columns) -> None:
        p = root / name
        if isinstance(content, pl.DataFrame):
            content.write_parquet(p)
        else:
            p.write_bytes(content if isinstance(content, bytes) else content.encode())
        files.append(SourceRef(p, name, {"run": columns.get("run", name.split(".")[0])}))

    for i in range(6):  # one header; column v is a number in some files, text in one
        v = "x" if i == 3 else str(i)
        add(f"a{i}.csv", f"congruent,model,v\n{i % 2},m{i},{v}\n1,m{i},{i * 10}\n")
    add("b.csv", "congruent,model,w\n0,mb,1.5\n")
    add("c.json", json.dumps([{"congruent": 1, "model": "mc", "v": "j"},
                              {"congruent": 0, "model": "mc", "extra": [1, 2]}]))
    add("d.csv.gz", gzip.compress(b"congruent,model\n1,md\n"))
    add("e.parquet", pl.DataFrame({"congruent": [0, 1], "model": ["me", "me"], "v": [7, 8]}))
    add("f.tsv", "congruent\tmodel\n1\tmf\n")
    for i in range(6, 9):
        add(f"a{i}.csv", f"congruent,model,v\n{i % 2},m{i},{i}\n")
    return files


def test_the_scan_gives_the_table_of_reading_the_files_one_by_one(tmp_path):
    refs = _mixed(tmp_path / "runs")
    eager = read_sources(refs)
    lazy = scan_sources(refs).collect()
    assert sorted(lazy.columns) == sorted(eager.columns)
    lazy = lazy.select(eager.columns)
    assert lazy.schema == eager.schema
    assert lazy.to_dicts() == eager.to_dicts()
    # rows keep the order of the files, and each file its own label and path column
    assert lazy["source_file"].unique(maintain_order=True).to_list() == [r.label for r in refs]
    assert lazy.filter(pl.col("source_file") == "a3.csv")["v"].to_list() == ["x", "30"]
    assert lazy["run"].to_list()[:2] == ["a0", "a0"]


def test_small_files_with_one_header_are_one_scan(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    for i in range(400):
        (folder / f"r{i:04d}.csv").write_text(f"congruent,model\n{i % 2},m{i % 7}\n")
    (tmp_path / "s.toml").write_text('[data]\nsource = "runs"\n[data.columns]\nllm = "model"\n')
    calls = []
    real = pl.scan_csv

    def counted(source, *a, **k):
        calls.append(len(source) if isinstance(source, list) else 1)
        return real(source, *a, **k)

    monkeypatch.setattr(pl, "scan_csv", counted)
    res = ingest(tmp_path / "s.toml")
    assert calls == [400]  # one scan of the 400 files, not 400 scans stacked
    assert res.table.height == 400 and res.ledger.files["runs/r0399.csv"] == 1
    assert res.table["llm"].to_list()[:3] == ["m0", "m1", "m2"]


def test_a_file_name_holding_glob_characters_is_read_as_itself(tmp_path, capsys):
    (tmp_path / "run[1]*.csv").write_text("congruent\n1\n0\n")
    (tmp_path / "run1x.csv").write_text("congruent\n1\n1\n1\n")  # what a glob would match
    (tmp_path / "s.toml").write_text('[data]\nsource = "runs"\n')
    folder = tmp_path / "runs"
    folder.mkdir()
    for p in (tmp_path / "run[1]*.csv", tmp_path / "run1x.csv"):
        p.rename(folder / p.name)
    assert main(["ingest", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "rows read: 5" in out and "runs/run[1]*.csv" in out


def test_max_files_is_refused_before_any_file_is_read(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    for i in range(30):
        (folder / f"r{i}.json").write_text('{"congruent": 1}')
    (tmp_path / "s.toml").write_text('[data]\nsource = "runs/*.json"\nmax_files = 25\n')

    def never(*a, **k):
        raise AssertionError("a file was read")

    monkeypatch.setattr(scan_module, "_bytes", never)
    monkeypatch.setattr(scan_module, "_stream_check", never)
    assert main(["ingest", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f'error: {tmp_path}/s.toml: [data] source = "runs/*.json": the source names more than '
        "25 files ([data] max_files); raise the limit if this is expected\n")
    monkeypatch.undo()
    (tmp_path / "s.toml").write_text('[data]\nsource = "runs/*.json"\nmax_files = 30\n')
    assert main(["ingest", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0


def test_the_same_file_named_twice_is_read_once(tmp_path):
    (tmp_path / "d.csv").write_text("congruent\n1\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "d.csv")
    (tmp_path / "s.toml").write_text('[data]\nsource = ["d.csv", "*.csv", "link.csv"]\n')
    res = ingest(tmp_path / "s.toml")
    assert res.table.height == 1 and list(res.ledger.files) == ["d.csv"]


@pytest.mark.parametrize("kind", ["fifo", "proc", "device"])
def test_a_spec_path_that_is_not_a_regular_file_is_named_by_its_kind(tmp_path, capsys, kind):
    import os

    if kind == "fifo":
        path, what = tmp_path / "s.toml", "a FIFO (named pipe)"
        os.mkfifo(path)  # opening it would block until something writes to it
    elif kind == "proc":
        path, what = Path("/proc/self/status"), "a pseudo-file of the kernel (/proc)"
    else:
        path, what = Path("/dev/zero"), "a character device"
    assert main(["ingest", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"error: {path}: is {what}, not a spec file (expected "
                                       "a .toml file)\n")
    assert not (tmp_path / "out").exists()
