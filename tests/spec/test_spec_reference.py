"""`biasstats spec` lists every table and key the schema accepts, with its default, read from
the schema's own JSON Schema (an independent walk), plus every family."""

from __future__ import annotations

import json
import re

from biasstats.cli import main
from biasstats.model.families import FAMILIES
from biasstats.spec.analysis import AnalysisSpec
from biasstats.spec.reference import MEANINGS, schema_keys

FACTORY = object()  # a default_factory: JSON Schema does not record the value


def _json_schema_keys() -> dict[tuple[str, str], object]:
    """(table, key) -> default (or 'required') for every key, from pydantic's JSON Schema."""
    js = AnalysisSpec.model_json_schema()
    defs = js["$defs"]

    def model(node):
        for opt in [node, *node.get("anyOf", []), node.get("additionalProperties") or {},
                    node.get("items") or {}]:
            if "$ref" in opt:
                return defs[opt["$ref"].split("/")[-1]], "additionalProperties" in node
        for opt in node.get("anyOf", []):  # dict[str, X] | None
            if "$ref" in (opt.get("additionalProperties") or {}):
                return model(opt)[0], True
        return None, False

    out = {}
    walked = set()  # a table met again (parts.<column>.data) lists no keys of its own

    def walk(schema, table):
        required = set(schema.get("required", []))
        for key, node in schema["properties"].items():
            sub, dict_of = model(node)
            if sub is not None and id(sub) not in walked:
                walked.add(id(sub))
                walk(sub, f"{table}.{key}.<column>" if dict_of else f"{table}.{key}".lstrip("."))
            elif sub is not None:
                continue
            else:
                out[(table, key)] = "required" if key in required else node.get("default", FACTORY)

    walk(js, "")
    return out


def _listed(text: str) -> dict[tuple[str, str], str]:
    out, table = {}, None
    for line in text.splitlines():
        if line.startswith("biasstats analysis spec"):  # the top-level keys follow
            table = ""
        elif m := re.match(r"^\[\[?([^\[\]]+)\]", line):  # [table] or [[array of tables]]
            table = m[1]
        elif table is not None and (m := re.match(r"^  (\w+) = .*\((required|default: (.*))\)$", line)):
            out[(table, m[1])] = m[2] if m[2] == "required" else m[3]
        elif not line.strip() or not line.startswith("  "):
            table = None if not line.startswith("[") else table
    return out


def _toml(v) -> str:
    if v is None or v == {} or v == []:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else repr(v)


def test_spec_lists_every_schema_key_with_its_default(capsys):
    assert main(["spec"]) == 0
    listed = _listed(capsys.readouterr().out)
    expected = _json_schema_keys()
    assert set(listed) == set(expected)
    for key, default in expected.items():
        if default is FACTORY:
            assert listed[key] != "required", key
        else:
            assert listed[key] == (default if default == "required" else _toml(default)), key


def test_every_key_has_a_meaning_and_no_meaning_is_stale():
    assert set(schema_keys()) == set(MEANINGS)
    assert all(MEANINGS[k].strip() for k in MEANINGS)


def test_spec_lists_every_family_and_canonical_column(capsys):
    main(["spec"])
    out = capsys.readouterr().out
    for name in FAMILIES:
        assert re.search(rf"^  {name}\s+link ", out, re.M), name
    for col in ("llm", "category", "stereotype", "variant", "trial", "item", "congruent", "raw",
                "status", "reason", "source_row", "source_file"):
        assert re.search(rf"^  {col}\s+\S", out, re.M), col
    json.dumps(out)  # plain text
