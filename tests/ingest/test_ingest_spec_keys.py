"""Issue 23 item 4: any [data.columns] target, [data] exclude, what unit = "trial" collapses,
SQL errors in the user's terms."""

from __future__ import annotations

import json

import polars as pl
import pytest

from biasstats.cli import main
from biasstats.ingest import ingest, ingest_cells


def write(tmp_path, spec: str, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "s.toml").write_text(spec)
    return tmp_path / "s.toml"


REPLIES = [{"response": {"model": m, "text": t}, "temp": temp, "ok": ok}
           for m, t, temp, ok in [("a", "yes", 0, 1), ("b", "no", 0, 0), ("a", "REFUSED", 0, None),
                                  ("b", "yes", 1, 1), ("a", "no", 0, 0)]]
JSONL = "".join(json.dumps(r) + "\n" for r in REPLIES)


def test_any_mapping_target_is_a_copy_and_canonical_ones_keep_their_meaning(tmp_path):
    s = write(tmp_path, '[data]\nsource = "d.jsonl"\noutcome = "ok"\n[data.columns]\n'
              'judge = "response.model"\nllm = "response.model"\nreply = "response.text"\n',
              {"d.jsonl": JSONL})
    t = ingest(s).table
    assert t["judge"].to_list() == t["llm"].to_list() == ["a", "b", "a", "b", "a"]
    assert t["reply"].to_list() == [r["response"]["text"] for r in REPLIES]
    assert t.columns.index("llm") < t.columns.index("judge")  # llm is canonical: it comes first


def test_exclude_books_deliberate_exclusions_with_their_reason(tmp_path):
    s = write(tmp_path, '[data]\nsource = "d.jsonl"\noutcome = "ok"\nrefusals = ["REFUSED"]\n'
              'filters = ["temp = 0"]\nexclude = ["\\"response.model\\" = \'a\' AND temp = 0"]\n'
              '[data.columns]\nraw = "response.text"\n', {"d.jsonl": JSONL})
    res = ingest(s)
    t = res.table
    assert t["status"].to_list() == ["excluded", "ok", "refused", "excluded", "excluded"]
    assert t["reason"].to_list()[0] == "exclude: \"response.model\" = 'a' AND temp = 0"
    assert t["reason"].to_list()[3] == "filter: temp = 0"  # the first condition it fails stands
    assert res.ledger.rows.by_reason == {
        "excluded: exclude: \"response.model\" = 'a' AND temp = 0": 2,
        "excluded: filter: temp = 0": 1,
        "refused: refusal value 'REFUSED'": 1,
    }
    assert res.ledger.notes == ("exclude[0] '\"response.model\" = 'a' AND temp = 0': 1 row(s) already "
                                "refused or unparseable also match it; their first status stands",)
    assert t.filter(pl.col("status") != "ok")["ok"].null_count() == 4
    assert ingest_cells(s).ledger.to_dict() == res.ledger.to_dict()


@pytest.mark.parametrize("exclude,expected", [
    ('"(SELECT 1) = 1"', "<d>/s.toml: [data] exclude[0] '(SELECT 1) = 1': a subquery (SELECT ...) is not "
                         "allowed; an expression may use columns, literals, operators, CASE, CAST, IN / "
                         "BETWEEN / LIKE and the functions listed by 'biasstats spec'"),
    ('"temp + 1"', "<d>/s.toml: [data] exclude[0] 'temp + 1' is not a yes/no expression (it gives Int64 "
                   "values; write a comparison, e.g. 'temp = 0')"),
])
def test_exclude_conditions_are_checked_like_filters(tmp_path, capsys, exclude, expected):
    s = write(tmp_path, f'[data]\nsource = "d.jsonl"\noutcome = "ok"\nexclude = [{exclude}]\n',
              {"d.jsonl": JSONL})
    assert main(["ingest", str(s), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.removeprefix("error: ").rstrip("\n").replace(str(tmp_path), "<d>") == expected


RANKINGS = [{"names": ["Ann", "Bo", "Cy"], "top1": [1, 0, 0], "llm": "m"},
            {"names": ["Bo", "Ann"], "top1": [0, 1], "llm": "m"}]


def test_unit_trial_with_explode_says_what_it_collapsed(tmp_path):
    s = write(tmp_path, '[data]\nsource = "r.json"\nexplode = ["names", "top1"]\noutcome = "top1"\n'
              '[data.columns]\nitem = "names"\n[model]\nformula = "top1 ~ 1"\nunit = "trial"\n',
              {"r.json": json.dumps(RANKINGS)})
    notes = ingest(s).ledger.notes
    assert notes == ('[model] unit = "trial": the 5 rows (exploded by names, top1) of 2 source rows '
                     "become one row per source row; item vary within a source row and are left "
                     "out; names, top1, position vary within a source row and take its first "
                     "row's value",)
    (tmp_path / "s.toml").write_text(s.read_text().replace('unit = "trial"', 'unit = "judgement"'))
    assert ingest(s).ledger.notes == ()


def test_the_judgement_columns_named_in_the_note_are_those_the_model_collapses():
    from biasstats.inference.from_spec import JUDGEMENT_COLUMNS as model_side
    from biasstats.ingest.run import JUDGEMENT_COLUMNS as ingest_side

    assert ingest_side == model_side


SQL_CASES = {
    # a value written as a column name (bare or in double quotes)
    "lang = en": "filters[0] 'lang = en' references column 'en', which is not in the data (columns: "
                 "lang, score, x, trial, status, reason); to compare with the text en, write it in "
                 "single quotes: 'en'",
    'lang = "en"': "filters[0] 'lang = \"en\"' references column 'en', which is not in the data "
                   "(columns: lang, score, x, trial, status, reason); to compare with the text en, "
                   "write it in single quotes: 'en'",
    # text compared with a number, and the other way round
    "score = 1": "filters[0] 'score = 1' failed on the data (column 'score' holds text and is "
                 "compared with a number: write the number in single quotes, or CAST(score AS "
                 "DOUBLE) to compare numbers)",
    "x = '1'": "filters[0] 'x = '1'' failed on the data (column 'x' holds numbers (Float64) and is "
               "compared with text: write the value without quotes)",
    # syntax
    "lang = 'en": "filters[0] 'lang = 'en' is not a valid SQL expression (a text in single quotes "
                  "is not closed: write it as 'text')",
    "(x = 1": "filters[0] '(x = 1' is not a valid SQL expression (a '(' is not closed by the end of "
              "the expression (column 6))",
    "x = 1)": "filters[0] 'x = 1)' is not a valid SQL expression (unexpected ')' without its '(' at "
              "column 6)",
    "x = 1 AND": "filters[0] 'x = 1 AND' is not a valid SQL expression (incomplete expression: "
                 "something is missing after 'AND' (column 9))",
    "lang IN ['en']": "filters[0] 'lang IN ['en']': IN takes a list in parentheses, e.g. x IN ('a', 'b')",
    "lang = 'en' x": "filters[0] 'lang = 'en' x': 'x' follows a complete expression ('lang = 'en''); "
                     "join conditions with AND / OR, and write text in single quotes",
}


@pytest.mark.parametrize("text", list(SQL_CASES))
def test_sql_errors_are_one_line_in_the_users_terms(tmp_path, capsys, text):
    s = write(tmp_path, f'[data]\nsource = "d.csv"\noutcome = "x"\nfilters = [{json.dumps(text)}]\n',
              {"d.csv": "lang,score,x\nen,C,1\nde,I,2\n"})
    assert main(["ingest", str(s), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err == f"error: {s}: [data] {SQL_CASES[text]}\n"
