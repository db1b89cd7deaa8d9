"""Property-based tests (hypothesis) of the spec loader, the prior parser and tidy ingest.

Properties: a random *valid* spec always loads and keeps its values; a random *invalid* one
(one key broken: wrong type, out of range, unknown key, bad prior, or arbitrary text) never
escapes as anything but one ``error: <spec path>: ...`` line with exit code 2 and no output;
random prior strings are parsed or refused with a SpecError, never evaluated; random tidy CSV
files are ingested or refused with one line.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from biasstats.cli import main
from biasstats.errors import SpecError
from biasstats.model.families import FAMILIES
from biasstats.model.priors import DISTRIBUTIONS, Prior, parse_prior
from biasstats.spec import load_spec
from biasstats.spec.schema import (
    CANONICAL_TARGETS,
    MAX_CHAINS,
    MAX_DRAWS,
    MAX_SEED,
    MAX_TUNE,
)

# BIASSTATS_FUZZ_EXAMPLES raises the number of examples for a longer hunt
FUZZ = settings(max_examples=int(os.environ.get("BIASSTATS_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# ----------------------------------------------------------------------------- a TOML writer
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


def _toml_str(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)  # TOML basic strings share JSON's escapes...
    return out.replace("\x7f", "\\u007F")   # ...except DEL, which TOML wants escaped


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else
                                            "-inf" if v == -math.inf else repr(v))
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def to_toml(spec: dict) -> str:
    lines = []
    for table, body in spec.items():
        subtables = {k: v for k, v in body.items() if isinstance(v, dict)}
        lines.append(f"[{table}]")
        lines += [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in body.items()
                  if not isinstance(v, dict)]
        for name, sub in subtables.items():
            lines.append(f"[{table}.{name}]")
            lines += [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in sub.items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- valid specs
_NAME = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1,
                max_size=12)
_POS = st.floats(0.01, 100, allow_nan=False)
_REAL = st.floats(-100, 100, allow_nan=False)


@st.composite
def valid_prior(draw) -> str:
    name = draw(st.sampled_from(sorted(set(DISTRIBUTIONS) - {"Uniform"})))
    pos = DISTRIBUTIONS[name][1]
    args = [draw(_REAL if p in ("mu", "alpha") and name not in (
        "Gamma", "InverseGamma", "Beta") else _POS) for p in pos]
    if name == "StudentT":
        args[0] = draw(_POS)
    return f"{name}({', '.join(repr(a) for a in args)})"


# a random filter the SQL whitelist accepts: a (quoted) column, an operator, a literal
_FILTER = st.builds(
    lambda col, op, lit: f'"{col}" {op} {lit}',
    st.text(st.characters(codec="utf-8", exclude_characters='"\x00'), min_size=1,
            max_size=12),
    st.sampled_from(["=", "!=", "<", ">=", "LIKE"]),
    st.one_of(st.integers(-5, 5).map(str),
              st.text(st.characters(codec="utf-8", exclude_characters="'\x00"),
                      max_size=8).map(lambda t: f"'{t}'")),
)


@st.composite
def valid_spec(draw, data: bool | None = None) -> dict:
    """A random valid spec; ``data=True`` always a [data] spec, False always [simulate]."""
    spec: dict = {}
    if draw(st.booleans()):
        spec["analysis"] = {"name": draw(_NAME), "title": draw(_TEXT)}
    if draw(st.booleans()) if data is None else data:
        spec["data"] = {
            "source": "d.csv",
            "delimiter": draw(st.sampled_from([",", ";", "\t", "|"])),
            "encoding": draw(st.sampled_from(["utf-8", "latin-1", "cp1252"])),
            # half the time keys the fuzz CSV (model, answer, temp) really has
            "filters": draw(st.one_of(
                st.lists(st.sampled_from(["temp = 0", "llm != 'x'", "answer >= 0"]),
                         max_size=2),
                st.lists(_FILTER, max_size=3))),
            "columns": draw(st.one_of(
                st.just({"llm": "model", "congruent": "answer"}),
                st.dictionaries(st.sampled_from(CANONICAL_TARGETS), _TEXT, max_size=3))),
        }
    else:
        spec["simulate"] = {"seed": draw(st.integers(0, MAX_SEED)),
                            "trials": draw(st.integers(1, 20)),
                            "refusal_rate": draw(st.floats(0, 0.99))}
    if draw(st.booleans()):
        spec["model"] = {"formula": draw(st.sampled_from(
                             ["y ~ 1", "congruent ~ 1 + (1|llm)", "y ~ x + (x || g)",
                              "k | trials(n) ~ C(a, Treatment('b')) + log(z)"])),
                         "family": draw(st.sampled_from(sorted(FAMILIES))),
                         "unit": draw(st.sampled_from(["judgement", "trial"])),
                         "priors": draw(st.dictionaries(_NAME, valid_prior(), max_size=3))}
    spec["fit"] = {"chains": draw(st.integers(1, MAX_CHAINS)),
                   "tune": draw(st.integers(0, MAX_TUNE)),
                   "draws": draw(st.integers(1, MAX_DRAWS)),
                   "seed": draw(st.integers(0, MAX_SEED)),
                   "max_memory_gb": draw(st.floats(0.001, 1024))}
    if draw(st.booleans()):
        spec["fit"]["target_accept"] = draw(st.floats(0.01, 0.99))
    return spec


def _write(text: str, folder: Path) -> Path:
    path = folder / "fuzz.toml"
    path.write_bytes(text.encode("utf-8"))
    return path


@FUZZ
@given(spec=valid_spec())
def test_random_valid_specs_load_and_keep_their_values(spec):
    with tempfile.TemporaryDirectory() as d:
        loaded = load_spec(_write(to_toml(spec), Path(d)))
    assert loaded.fit.model_dump(include=set(spec["fit"])) == spec["fit"]
    if "analysis" in spec:
        assert loaded.name == spec["analysis"]["name"]
    if "model" in spec:
        assert dict(loaded.model.priors) == spec["model"]["priors"]


# ----------------------------------------------------------------------------- invalid specs
BREAKERS = {
    ("fit", "chains"): st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_CHAINS + 1),
                                 _TEXT, st.floats()),
    ("fit", "draws"): st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_DRAWS + 1)),
    ("fit", "tune"): st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_TUNE + 1)),
    ("fit", "seed"): st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_SEED + 1,
                                                                      max_value=2**63 - 1)),
    ("fit", "max_memory_gb"): st.one_of(st.floats(max_value=0), st.floats(min_value=1024.001),
                                        st.just(math.nan)),
    ("fit", "target_accept"): st.one_of(st.floats(max_value=0), st.floats(min_value=1)),
    ("fit", "sampler"): _TEXT.filter(lambda s: s not in ("nutpie", "pymc")),
    ("fit", "bogus_key"): st.integers(),
}
_BAD_PRIOR = st.one_of(
    _TEXT,
    st.sampled_from(["Uniform(1, 0)", "HalfNormal(inf)", "HalfNormal(-1)", "Normal(0, 1e999)",
                     "__import__('os').system('touch PWNED')", "open('/etc/hostname').read()",
                     "Normal(0, (lambda: 1)())", "Normal(0, 1, 2)", "Gamma(1)", "LKJ(-1)"]),
).filter(lambda s: not _parses(s))


def _parses(s: str) -> bool:
    try:
        parse_prior(s)
    except SpecError:
        return False
    return True


@st.composite
def invalid_spec(draw) -> str:
    spec = draw(valid_spec())
    how = draw(st.sampled_from(["value", "prior", "unknown_table", "name", "text"]))
    if how == "value":
        (table, key), bad = draw(st.sampled_from(sorted(BREAKERS.items())))
        spec[table][key] = draw(bad)
    elif how == "prior":
        spec.setdefault("model", {"formula": "y ~ 1"})
        spec["model"]["priors"] = {"sd_x": draw(_BAD_PRIOR)}
    elif how == "unknown_table":
        spec[draw(_NAME.filter(lambda s: s not in ("analysis", "data", "simulate", "model",
                                                    "fit", "effects", "checks")))] = {"a": 1}
    elif how == "name":
        spec["analysis"] = {"name": draw(_TEXT.filter(lambda s: not s or not all(
            c.isalnum() or c in "-_" for c in s)))}
    else:
        return draw(st.text(max_size=80))
    return to_toml(spec)


@FUZZ
@given(text=invalid_spec())
def test_random_invalid_specs_are_one_line_exit_2(text, capsys):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.toml"
        try:
            path.write_text(text, encoding="utf-8")
        except UnicodeEncodeError:  # lone surrogates: write the bytes a broken editor would
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            load_spec(path)
        except SpecError as e:
            msg = str(e)
            assert msg.startswith(f"{path}: ") and "\n" not in msg
        else:  # arbitrary text can be a valid spec by chance; then nothing to check here
            return
        capsys.readouterr()
        out = Path(d) / "out"
        rc = main(["ingest", str(path), "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"error: {path}: ") and err.count("\n") == 1
        assert not out.exists()
        assert not Path("PWNED").exists() and not (Path(d) / "PWNED").exists()


# ----------------------------------------------------------------------------- priors
@FUZZ
@given(text=st.one_of(st.text(max_size=40), st.from_regex(
    r"\A[A-Z][a-zA-Z]{1,11}\((-?[0-9.e]{1,6}(, )?){0,3}\)\Z")))
def test_random_prior_strings_parse_or_fail_with_one_line(text):
    try:
        p = parse_prior(text, "k")
    except SpecError as e:
        assert "\n" not in str(e) and "'k'" in str(e)
        return
    assert isinstance(p, Prior) and p.dist in DISTRIBUTIONS
    assert all(math.isfinite(v) for v in p.params.values())
    assert parse_prior(str(p), "k").dist == p.dist  # its printed form parses again


@FUZZ
@given(text=valid_prior())
def test_valid_priors_round_trip(text):
    p = parse_prior(text, "k")
    again = parse_prior(str(p), "k")
    assert again.dist == p.dist and again.params.keys() == p.params.keys()
    for k, v in p.params.items():
        assert math.isclose(again.params[k], v, rel_tol=1e-3, abs_tol=1e-3)


# ----------------------------------------------------------------------------- tidy ingest
_CELL = st.one_of(st.sampled_from(["", "NA", "NaN", "inf", "-inf", "0", "1", "1.5", "-2",
                                   "true", "x,y", '"q"', "=1+1"]),
                  st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r"),
                          max_size=6))


@FUZZ
@given(rows=st.lists(st.tuples(_CELL, _CELL, _CELL), min_size=0, max_size=8),
       header=st.lists(_NAME, min_size=1, max_size=3, unique=True))
def test_random_tidy_csv_is_ingested_or_one_line(rows, header, capsys):
    import csv
    import io as _io

    buf = _io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(r[:len(header)])
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "d.csv").write_text(buf.getvalue(), encoding="utf-8")
        spec = Path(d) / "s.toml"
        spec.write_text(to_toml({"data": {"source": "d.csv", "columns": {
            "llm": header[0], "congruent": header[-1]}}}))
        capsys.readouterr()
        out = Path(d) / "out"
        rc = main(["ingest", str(spec), "--out", str(out)])
        captured = capsys.readouterr()
        event(f"exit code {rc}")
        if rc == 0:
            assert (out / "trials.parquet").is_file() and (out / "ledger.json").is_file()
        else:
            assert rc == 2 and captured.err.startswith("error: ")
            assert captured.err.count("\n") == 1, captured.err
            assert not out.exists()


def test_fuzz_strategies_cover_both_sources():
    """The valid-spec strategy reaches [data] and [simulate] specs (a guard on the guard)."""
    from hypothesis import find

    assert "simulate" in find(valid_spec(), lambda s: "simulate" in s)
    assert "data" in find(valid_spec(), lambda s: "data" in s)


pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX paths in messages")


@FUZZ
@given(spec=valid_spec(data=True))
def test_random_valid_data_specs_ingest_or_fail_in_one_line(spec, capsys):
    """A spec that loads never crashes ingest: it succeeds or gives one ``error:`` line."""
    with tempfile.TemporaryDirectory() as d:
        delim = spec["data"]["delimiter"]
        rows = ["model", "answer", "temp"], ["gpt", "1", "0"], ["gpt", "0", "1"], ["x", "1", "0"]
        (Path(d) / "d.csv").write_text("\n".join(delim.join(r) for r in rows) + "\n")
        path = _write(to_toml(spec), Path(d))
        out = Path(d) / "out"
        capsys.readouterr()
        rc = main(["ingest", str(path), "--out", str(out)])
        err = capsys.readouterr().err
        event(f"exit code {rc}")
        if rc == 0:
            assert (out / "trials.parquet").is_file()
        else:
            assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
            assert not out.exists()
