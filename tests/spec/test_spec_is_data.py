"""A spec is data: no spec string reads a file it does not name as a source, opens a socket
or runs code (issue 19, item 1).

Each attack is written where a spec may hold a string (derive, filters, adapter, parse rules,
column mapping, [model.aux], a spec reached through [checks] sensitivity), aimed at a canary
file and at a local HTTP server. Running ``biasstats ingest`` on it must end in one line and
exit 2, with no request reaching the server, the canary's text in no output, and the canary
not read (its access time unchanged, where the file system keeps one)."""

from __future__ import annotations

import http.server
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biasstats.cli import main
from biasstats.errors import SpecError
from biasstats.spec.sql import check_sql

SECRET = "CANARY-SECRET-7f3a"
DATA = "model,answer,text\ngpt,1,the answer is A\nclaude,0,the answer is B\n"


@pytest.fixture
def server():
    """A local HTTP server that records every request it gets (loopback only)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self):
            hits.append(f"{self.command} {self.path}")
            body = b"a\n1\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        do_GET = do_HEAD = _record

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", hits
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def canary(tmp_path):
    """A file with a secret line, its access time set in the past (relatime updates it on
    the next read)."""
    path = tmp_path / "secret" / "canary.csv"
    path.parent.mkdir()
    path.write_text(f"a\n{SECRET}\n")
    past = time.time() - 3 * 86400
    os.utime(path, (past, past + 86400))
    return path


def _atime_tracks_reads(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.write_text("x")
    past = time.time() - 3 * 86400
    os.utime(probe, (past, past + 86400))
    before = os.stat(probe).st_atime
    probe.read_text()
    return os.stat(probe).st_atime != before


def _attacks(canary: Path, url: str) -> list[tuple[str, str]]:
    """(label, spec text) per attack; every spec reads d.csv and maps its columns."""
    head = '[data]\nsource = "d.csv"\n'
    cols = '[data.columns]\nllm = "model"\ncongruent = "answer"\n'
    targets = {"file": str(canary), "url": f"{url}/x.csv"}
    out = []
    for kind, target in targets.items():
        sub = f"(SELECT a FROM read_csv('{target}'))"
        for i, expr in enumerate([
            f"llm IN {sub}",
            f"answer = {sub}",
            f"llm = (SELECT max(a) FROM read_csv('{target}'))",
            f"EXISTS (SELECT 1 FROM read_parquet('{target}'))",
            f"read_csv('{target}') IS NULL",
            f"llm IN (SELECT * FROM read_json('{target}'))",
            f"coalesce(llm, (SELECT a FROM read_ndjson('{target}')))",
            f"llm = 'x' OR llm IN (SELECT a FROM scan_csv('{target}'))",
            f"llm = 'x'; SELECT * FROM read_csv('{target}')",
        ]):
            q = expr.replace('"', '\\"')
            out.append((f"filters-{kind}-{i}", f'{head}filters = ["{q}"]\n{cols}'))
            out.append((f"derive-{kind}-{i}", f'{head}{cols}[data.derive]\nz = "{q}"\n'))
        out.append((f"parse-{kind}", f'{head}outcome = "y"\n[data.parse.y]\nkind = "regex"\n'
                    f'text = "read_csv(\'{target}\')"\npattern = "([AB])"\n{cols}'))
        out.append((f"columns-{kind}", f'{head}[data.columns]\nllm = "read_csv(\'{target}\')"\n'
                    'congruent = "answer"\n'))
        out.append((f"aux-{kind}", f'{head}{cols}[model]\nformula = "congruent ~ 1"\n'
                    'family = "beta_binomial"\nunit = "trial"\n[model.aux]\n'
                    f'phi = "~ 1 + read_csv(\'{target}\')"\n'))
    for name in ("os:system", "builtins:exit", "canarymod:run", "subprocess:run"):
        out.append((f"adapter-{name}", f'{head}adapter = "{name}"\n{cols}'))
    return out


def test_no_spec_string_reads_a_file_opens_a_socket_or_runs_code(
        tmp_path, capsys, canary, server, monkeypatch):
    url, hits = server
    tracks = _atime_tracks_reads(tmp_path)
    # a module whose import would write a file: an adapter string must never import it
    written = tmp_path / "PWNED"
    (tmp_path / "canarymod.py").write_text(
        f"open({str(written)!r}, 'w').write('x')\ndef run(raw):\n    return raw\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    attacks = _attacks(canary, url)
    # the same attacks reached through a spec named in [checks] sensitivity
    attacks += [(f"sensitivity<{label}>", "SENS:" + text) for label, text in attacks[:4]]
    assert len(attacks) > 40
    for label, text in attacks:
        case = tmp_path / label.replace(":", "_").replace("<", "_").replace(">", "_")
        case.mkdir()
        (case / "d.csv").write_text(DATA)
        if text.startswith("SENS:"):
            (case / "other.toml").write_text(
                text[5:] + ('' if "[model]" in text else '[model]\nformula = "congruent ~ 1"\n'))
            text = ('[data]\nsource = "d.csv"\n[data.columns]\nllm = "model"\n'
                    'congruent = "answer"\n[model]\nformula = "congruent ~ 1"\n'
                    '[checks]\nsensitivity = ["other.toml"]\n')
        spec = case / "s.toml"
        spec.write_text(text)
        rc = main(["ingest", str(spec), "--out", str(case / "out")])
        out, err = capsys.readouterr()
        assert rc == 2, (label, out, err)
        assert err.startswith(f"error: {spec}: ") and err.count("\n") == 1, (label, err)
        assert "Traceback" not in err and SECRET not in out + err, (label, err)
        assert not (case / "out").exists(), label
    assert hits == [], hits
    assert not written.exists()
    if tracks:
        assert os.stat(canary).st_atime < time.time() - 86400, "the canary file was read"


def test_the_refusal_names_the_token(tmp_path):
    cases = {
        "llm IN (SELECT a FROM read_csv('/etc/passwd'))": "a subquery (SELECT ...) is not allowed",
        "read_csv('/etc/passwd') IS NULL": "function read_csv() is not allowed",
        "columns('a.*') = 1": "function columns() is not allowed",
        "x = 1 -- hidden": "comments are not allowed in an expression",
        "x = 1; SELECT 1": "';' is not allowed",
        "x = $$a$$": "a dollar-quoted string is not allowed",
        "x IN (y, z)": "IN takes a list of literals, e.g. x IN ('a', 'b')",
        "cast(x AS int[]) IS NULL": "CAST to INT[] is not allowed (scalar types only)",
        "lag(x) OVER () = 1": "Window (LAG(x) OVER ()) is not allowed",
    }
    for text, why in cases.items():
        with pytest.raises(SpecError) as e:
            check_sql(text, "[data] filters[0]")
        msg = str(e.value)
        assert msg.startswith(f"[data] filters[0] '{text}': {why}"), msg


def test_allowed_expressions_still_run(tmp_path):
    """The whitelist admits the expressions real specs write, and polars computes them."""
    from biasstats.ingest import ingest

    (tmp_path / "d.csv").write_text(
        "model,answer,text,t,tags\n"
        "gpt,1,The answer is A,0.0,a|b\nclaude,0,no,0.5,c\nllama,1,The answer is B,0.0,\n")
    (tmp_path / "s.toml").write_text(
        '[data]\nsource = "d.csv"\n'
        'filters = ["t = 0 OR t IS NULL", "model NOT IN (\'x\', \'y\')", '
        '"text ~* \'^the\' AND length(text) BETWEEN 3 AND 40"]\n'
        '[data.columns]\nllm = "model"\ncongruent = "answer"\n'
        '[data.derive]\n'
        'letter = "CASE WHEN text LIKE \'%A\' THEN \'A\' ELSE right(text, 1) END"\n'
        'low = "lower(coalesce(nullif(tags, \'\'), \'none\'))"\n'
        'half = "cast(answer AS double) / 2 + abs(-1) * round(t, 1)"\n'
        'first_tag = "split_part(tags, \'|\', 1) || \'-\' || upper(model)"\n')
    res = ingest(tmp_path / "s.toml")
    t = res.table.sort("source_row")
    assert t["status"].to_list() == ["ok", "excluded", "ok"]
    ok = res.table.filter(status="ok").sort("source_row")
    assert ok["letter"].to_list() == ["A", "B"]
    assert ok["low"].to_list() == ["a|b", "none"]
    assert ok["half"].to_list() == [0.5, 0.5]
    assert ok["first_tag"].to_list() == ["a-GPT", None]


_DANGER = st.sampled_from([
    "(SELECT a FROM read_csv('f'))", "(select 1)", "read_csv('f')", "READ_PARQUET('f')",
    "scan_csv('f')", "read_json('f')", "read_ndjson('f')", "columns('.*')",
    "(SELECT * FROM t)", "EXISTS (SELECT 1)", "ANY (SELECT 1)", "unnest(x)", "count(*)",
    "(WITH q AS (SELECT 1) SELECT * FROM q)", "(SELECT 1 UNION SELECT 2)",
])
_BENIGN = st.sampled_from(["x", "1", "'a'", "lower(x)", "coalesce(x, 1)", "(y + 2)", "NULL"])
_OP = st.sampled_from([" = ", " + ", " || ", " AND ", " OR ", " < ", ", "])


@settings(max_examples=300, deadline=None)
@given(pre=st.lists(st.tuples(_BENIGN, _OP), max_size=3), danger=_DANGER,
       post=st.lists(st.tuples(_OP, _BENIGN), max_size=3),
       wrap=st.sampled_from(["{}", "coalesce({}, 0)", "CASE WHEN {} THEN 1 ELSE 0 END",
                             "x IN ({})", "lower({})", "cast({} AS int)", "NOT {}",
                             "x BETWEEN {} AND 2", "({})"]),
       upper=st.booleans())
def test_the_whitelist_never_admits_a_table_function_or_subquery(pre, danger, post, wrap,
                                                                 upper):
    body = "".join(b + o for b, o in pre) + danger + "".join(o + b for o, b in post)
    text = wrap.format(body)
    text = text.upper() if upper else text
    with pytest.raises(SpecError):
        check_sql(text, "[data] derive.z")


@pytest.mark.parametrize("name,text,where", [
    ("d.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "{path}"),
    ("d.jsonl", '{"a": 1}\n{"a": ' + "[" * 70 + "]" * 70 + "}\n", "{path}"),
])
def test_deeply_nested_json_is_one_line(tmp_path, capsys, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    depth = text.count("[") + 1
    spec = tmp_path / "s.toml"
    spec.write_text(f'[data]\nsource = "{name}"\n')
    rc = main(["ingest", str(spec), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 2 and "Traceback" not in err
    assert err == (f"error: {where.format(path=path)}: JSON nested {depth} levels deep, above "
                   "the limit of 64\n")


def test_json_lines_depth_restarts_at_each_line():
    """A truncated line's open brackets do not count against the next lines."""
    from biasstats.ingest.jsontext import json_depth

    text = ('{"a": [[\n' * 40) + '{"a": "[[[[ in a string"}\n'
    assert json_depth(text, lines=True) == 3
    assert json_depth(text) == 121


def test_a_spec_path_that_is_a_folder_says_so(tmp_path, capsys):
    rc = main(["ingest", str(tmp_path), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert rc == 2
    assert err == f"error: {tmp_path}: is a folder, not a spec file (expected a .toml file)\n"
