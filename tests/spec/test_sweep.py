"""``[sweep]``: one spec expands into one analysis per value (biasstats.spec.sweep).

Truth: the members, names, titles and sources a sweep of known folders and lists gives; the
exact one-line error of each refused sweep, raised when the spec loads; a member loaded again
from its path and values (what a worker does) equals the expanded one; a sweep built by
``biasstats report`` writes one folder per member, ``sweep.json`` and a grouped index."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from biasstats.cli import main
from biasstats.errors import SpecError
from biasstats.limits import MAX_SWEEP
from biasstats.spec import load_member, load_spec, load_specs

BODY = """[data]
source = "{source}"
[data.columns]
variant = "prompt"
congruent = "answer"
"""


def _spec(folder: Path, sweep: str, source: str = "runs/{llm}/trials.csv",
          extra: str = "", name: str = "s") -> Path:
    p = folder / f"{name}.toml"
    p.write_text(f"{extra}[sweep]\n{sweep}\n" + BODY.format(source=source))
    return p


def _runs(folder: Path, llms=("gpt4", "claude")) -> None:
    for i, llm in enumerate(llms):
        (folder / "runs" / llm).mkdir(parents=True)
        pl.DataFrame({"prompt": ["p1", "p2", "p3"] * (i + 1),
                      "answer": [1, 0, 1] * (i + 1)}).write_csv(folder / "runs" / llm /
                                                                 "trials.csv")


def test_a_folder_glob_gives_one_analysis_per_folder(tmp_path):
    _runs(tmp_path)
    (tmp_path / "runs" / "notes.txt").write_text("a file, not a folder")
    specs = load_specs(_spec(tmp_path, 'llm = "runs/*/"'))
    assert [s.name for s in specs] == ["s--llm-claude", "s--llm-gpt4"]
    assert [s.title for s in specs] == ["s (llm = claude)", "s (llm = gpt4)"]
    assert [s.data.source for s in specs] == ["runs/claude/trials.csv", "runs/gpt4/trials.csv"]
    assert specs[1].member.sweep == "s" and specs[1].member.values == (("llm", "gpt4"),)
    assert specs[1] == load_member(specs[1].path, [("llm", "gpt4")])


def test_lists_and_file_globs_multiply_in_declared_order(tmp_path):
    (tmp_path / "logs").mkdir()
    for f in ("race.csv.gz", "age.jsonl"):
        (tmp_path / "logs" / f).write_text("")
    p = _spec(tmp_path, 'llm = ["gpt-4.1", 7]\nsuite = "logs/*"',
              source="data/{llm}/{suite}.csv",
              extra='[analysis]\nname = "board"\ntitle = "Bias of {llm} on {suite}"\n')
    specs = load_specs(p)
    assert [s.name for s in specs] == [
        "board--llm-gpt-4-1--suite-age", "board--llm-gpt-4-1--suite-race",
        "board--llm-7--suite-age", "board--llm-7--suite-race"]
    assert specs[0].title == "Bias of gpt-4.1 on age"
    assert specs[3].data.source == "data/7/race.csv"


@pytest.mark.parametrize("sweep, source, expected", [
    ('llm = "runs/*/"', "runs/{llm}/{suite}.csv",
     "[data] source: unknown variable {suite} (the [sweep] variables: llm)"),
    ('llm = "nothing/*/"', "runs/{llm}/trials.csv",
     '[sweep] llm = "nothing/*/": the glob matches nothing (relative to {folder}/)'),
    ('llm = ["gpt 4", "gpt/4"]', "runs/{llm}/trials.csv",
     "[sweep] llm: the values 'gpt 4' and 'gpt/4' give the same analysis name s--llm-gpt-4"),
    ('llm = ["A", "a"]', "runs/{llm}/trials.csv",
     "[sweep] llm: the values 'A' and 'a' give the same analysis name s--llm-A"),
    ('llm = ["a", "b"]\nsuite = ["x"]', "runs/{llm}/trials.csv",
     '[sweep] suite: used in no [data] source (each analysis of a sweep reads its own data: '
     'write {suite} in a path, e.g. source = "runs/{suite}/trials.csv")'),
    ("llm = []", "runs/{llm}/trials.csv", "[sweep] llm: expected at least one value, got none"),
    ('llm = ["a", 1.5]', "runs/{llm}/trials.csv",
     "[sweep] llm[1]: expected a string with a letter or digit, or an integer, got 1.5"),
    ('2llm = ["a"]', "runs/{llm}/trials.csv",
     "[sweep] '2llm': a variable name is letters, digits and '_', not starting with a digit"),
    ("llm = 3", "runs/{llm}/trials.csv",
     "[sweep] llm: expected a glob (a string) or a list of values, got 3"),
])
def test_a_bad_sweep_is_one_line_naming_the_key(tmp_path, sweep, source, expected):
    _runs(tmp_path)
    p = _spec(tmp_path, sweep, source=source)
    with pytest.raises(SpecError) as e:
        load_specs(p)
    assert str(e.value) == f"{p}: " + expected.replace("{folder}", str(tmp_path))


def test_a_sweep_above_the_limit_is_refused_before_any_member_is_made(tmp_path):
    a = ", ".join(f'"a{i}"' for i in range(101))
    b = ", ".join(f'"b{i}"' for i in range(100))
    p = _spec(tmp_path, f"llm = [{a}]\nsuite = [{b}]", source="{llm}/{suite}.csv")
    with pytest.raises(SpecError) as e:
        load_specs(p)
    assert str(e.value) == (f"{p}: [sweep]: llm (101 values) × suite (100 values) is 10,100 "
                            f"analyses, above the limit of {MAX_SWEEP:,}")


def test_a_command_on_one_analysis_refuses_a_sweep(tmp_path, capsys):
    _runs(tmp_path)
    p = _spec(tmp_path, 'llm = "runs/*/"')
    with pytest.raises(SpecError, match=r"\[sweep\]: this spec is a sweep"):
        load_spec(p)
    assert main(["ingest", str(p)]) == 2
    assert capsys.readouterr().err == (
        f"error: {p}: [sweep]: this spec is a sweep (one analysis per value); build its "
        f"analyses with 'biasstats report {p}' (a command on one analysis takes a spec "
        "without [sweep])\n")


def test_a_sweep_is_reported_as_a_set(tmp_path, capsys):
    _runs(tmp_path, ("gpt4", "claude", "llama"))
    p = _spec(tmp_path, 'llm = "runs/*/"')
    out = tmp_path / "reports"
    assert main(["report", str(p), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[3/3] ingested" in printed
    for llm, rows in (("claude", 6), ("gpt4", 3), ("llama", 9)):
        ledger = json.loads((out / f"s--llm-{llm}" / "ledger.json").read_text())
        assert ledger["rows_read"] == rows  # each member read its own file
    doc = json.loads((out / "s" / "sweep.json").read_text())
    assert doc["variables"] == {"llm": ["claude", "gpt4", "llama"]}
    assert [a["name"] for a in doc["analyses"]] == ["s--llm-claude", "s--llm-gpt4",
                                                     "s--llm-llama"]
    assert doc["analyses"][0]["values"] == {"llm": "claude"}
    index = (out / "index.html").read_text()
    assert "Sweep <code>s</code>: 3 analyses" in index and 'href="s/sweep.json"' in index
    assert index.index("Sweep <code>s</code>") < index.index("s--llm-claude")


def test_summarize_reads_a_sweeps_analyses_from_its_folder(tmp_path, monkeypatch):
    """``biasstats summarize reports/<sweep>``: the analyses sweep.json lists, in its order
    (the analysis folders here are stand-ins: a draws file each)."""
    from biasstats.synthesis.collect import find_analyses

    out = tmp_path / "reports"
    names = ["s--llm-b", "s--llm-a"]
    for n in [*names, "other"]:
        (out / n).mkdir(parents=True)
        (out / n / "estimand_draws.parquet").write_bytes(b"")
    (out / "s").mkdir()
    (out / "s" / "sweep.json").write_text(json.dumps(
        {"name": "s", "analyses": [{"name": n} for n in [*names, "../escape"]]}))
    assert find_analyses([out / "s"]) == [out / n for n in names]


def test_the_readme_sweep_expands_as_written(tmp_path):
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[sweep]" in b]
    for llm in ("gpt4", "claude"):
        (tmp_path / "runs" / llm).mkdir(parents=True)
    spec = tmp_path / "board.toml"
    spec.write_text(block)
    specs = load_specs(spec)
    assert [s.name for s in specs] == [
        "board--llm-claude--suite-race", "board--llm-claude--suite-gender",
        "board--llm-gpt4--suite-race", "board--llm-gpt4--suite-gender"]
    assert specs[2].title == "Bias of gpt4 on race"
    assert specs[2].data.source == "runs/gpt4/race.csv"
