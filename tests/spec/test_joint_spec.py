"""Joint specs ([parts.<name>], [joint]): what loads, and every mistake as one exact line
naming the part and key, before any data is read."""

from __future__ import annotations

import pytest

from biasstats.cli import main
from biasstats.errors import SpecError
from biasstats.model.formula import parse_formula
from biasstats.spec import load_spec

BASE = """[parts.implicit.data]
source = "implicit.csv"
outcome = "y"
[parts.implicit.model]
formula = "y ~ 1 + (1|p|cell)"
family = "bernoulli"
[parts.decision.data]
source = "decision.csv"
outcome = "y"
[parts.decision.model]
formula = "y ~ 1 + (1|p|cell)"
family = "bernoulli"
"""
IMPLICIT_FAMILY = 'family = "bernoulli"\n[parts.decision'


def _load(tmp_path, text: str):
    path = tmp_path / "joint.toml"
    path.write_text(text)
    return path, load_spec(path)


def test_a_joint_spec_loads_with_its_parts_in_order(tmp_path):
    _, spec = _load(tmp_path, BASE + '[joint]\nslope = ["implicit", "decision"]\n')
    assert list(spec.parts) == ["implicit", "decision"]
    assert spec.model is None and spec.data is None
    g = parse_formula(spec.parts["decision"].model.formula).groups[0]
    assert (g.cor_id, g.name, g.expr) == ("p", "cell", "1")
    assert spec.content.joint.slope == ["implicit", "decision"]


def _swap(old: str, new: str, count: int = 1) -> str:
    assert old in BASE
    return BASE.replace(old, new, count)


@pytest.mark.parametrize("text, message", [
    (_swap('[parts.decision.model]\nformula = "y ~ 1 + (1|p|cell)"\nfamily = "bernoulli"\n', ""),
     "[parts.decision]: missing [parts.decision.model]; every part needs its own data and model"),
    (_swap('[parts.decision.data]\nsource = "decision.csv"\noutcome = "y"\n', ""),
     "[parts.decision]: missing [parts.decision.data]; every part needs its own data and model"),
    (_swap('(1|p|cell)"\n' + IMPLICIT_FAMILY, '(1|p|llm)"\n' + IMPLICIT_FAMILY),
     "[parts.decision.model] formula: correlation id 'p' is on 'cell' here but on 'llm' in "
     "part 'implicit'; one id correlates the effects of one grouping factor"),
    (_swap('(1|p|cell)"\n' + IMPLICIT_FAMILY, '(1|cell)"\n' + IMPLICIT_FAMILY),
     "[parts.decision.model] formula: correlation id 'p' appears in no other part; it "
     "correlates the effects of 'cell' across parts (write (1|p|cell) in another part, or "
     "(1|cell) here)"),
    (_swap('(1|p|cell)"\n' + IMPLICIT_FAMILY, '(1|p|cell) + (1|p|llm)"\n' + IMPLICIT_FAMILY),
     "[parts.implicit.model] formula: correlation id 'p' is on 'cell' and on 'llm'; one id "
     "correlates one grouping factor across parts"),
    (_swap('(1|p|cell)"\n' + IMPLICIT_FAMILY, '(0 + x|p|cell)"\n' + IMPLICIT_FAMILY),
     "[parts.implicit.model] formula: term '(0 + x|p|cell)': a correlation id correlates a "
     "varying intercept (and the term's varying slopes with it); write (1 | p | cell) or "
     "(1 + x | p | cell)"),
    (_swap(IMPLICIT_FAMILY, 'family = "categorical"\n[parts.decision'),
     "[parts.implicit.model] formula: term '(1|p|cell)': family 'categorical' has one linear "
     "predictor per category; a correlation id needs one"),
    (_swap(IMPLICIT_FAMILY, 'famly = "bernoulli"\n[parts.decision'),
     "unknown key 'famly' in [parts.implicit.model] (expected one of: formula, family, unit, "
     "priors, centered, aux)"),
    (BASE + '[parts.decision.model.centered]\ncell = true\n',
     "[parts.decision.model.centered] cell: a correlated term (id 'p') is always "
     "non-centred; remove the key"),
    (BASE + '[parts.decision.effects]\nby = ["llm"]\n',
     "[parts.decision.effects] by: 'llm' is not in the model formula (its factors and "
     "predictors: cell)"),
    (BASE.split("[parts.decision.data]")[0],
     "[parts]: a joint model needs at least two parts (got 1: implicit); a single model is "
     "[data] with [model]"),
    (BASE.replace("parts.decision", 'parts."a b"'),
     "[parts.a b]: a part's name must be letters, digits, '-' or '_' (it names the part's "
     "variables and report folder)"),
    (BASE + '[data]\nsource = "x.csv"\n',
     "[data]: a joint spec ([parts]) gives each part its own [parts.<name>.data] and "
     "[parts.<name>.model]; move it into a part"),
    (BASE + "[effects]\nhdi_prob = 0.9\n",
     "[effects]: a joint spec declares each part's estimands in [parts.<name>.effects] (and "
     "the joint ones in [joint])"),
    (BASE + '[joint]\nslope = ["implicit", "x"]\n',
     "[joint] slope: 'x' is not a part (parts: implicit, decision)"),
    (BASE + '[joint]\nslope = ["implicit", "implicit"]\n',
     "[joint] slope: names part 'implicit' twice; give two parts, [x, y] (y's effects "
     "regressed on x's)"),
    ('[data]\nsource = "x.csv"\n[model]\nformula = "y ~ 1 + (1|p|g)"\n',
     "[model] formula: term '(1|p|g)' has a correlation id ('p'), which correlates the parts "
     "of a joint model ([parts.<name>.model]); a single model has none: write (1|g)"),
    (BASE + '[checks]\nalternatives = ["y ~ 1 + (1|p|cell)"]\n',
     "[checks] alternatives: a joint model compares each part's formulas in "
     "[parts.<name>.checks] alternatives (each fitted jointly with the other parts)"),
    (BASE + '[checks]\nsensitivity = ["other.toml"]\n',
     "[checks] sensitivity: not available for a joint model ([parts]): it compares whole "
     "specs by per-trial PSIS-LOO, and a joint model's pointwise log-likelihood belongs to one "
     "part; compare a part's formulas with [parts.<name>.checks] alternatives"),
    (BASE + '[parts.decision.checks]\nalternatives = ["y ~ 1 + (1|cell)"]\n',
     "[parts.decision.checks] alternatives[0]: 'y ~ 1 + (1|cell)' must keep the part's "
     "correlation ids ((…|p|cell)) as they are: an alternative changes the part's own terms, "
     "fitted jointly with the other parts, so that PSIS-LOO compares formulas of this part and "
     "not the links between parts"),
    (BASE + '[parts.decision.checks]\nalternatives = ["y ~ 1 + (1|p|cell"]\n',
     None),
    ('[data]\nsource = "x.csv"\n[model]\nformula = "y ~ 1"\n[joint]\nhdi_prob = 0.9\n',
     "[joint]: describes a joint model, which needs [parts.<name>] tables (each with its own "
     "data and model)"),
])
def test_bad_joint_specs_are_one_line(tmp_path, text, message):
    path = tmp_path / "joint.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as e:
        load_spec(path)
    if message is None:  # a formula's syntax: the single-model message, under the part's key
        assert str(e.value).startswith(f"{path}: [parts.decision.checks] alternatives")
        assert "\n" not in str(e.value)
        return
    assert str(e.value) == f"{path}: {message}"


def test_a_part_alternative_that_keeps_the_ids_loads(tmp_path):
    _, spec = _load(tmp_path, BASE + '[parts.decision.checks]\nalternatives = '
                    '["y ~ 1 + (1|p|cell) + (1|llm)"]\n')
    assert spec.parts["decision"].checks.alternatives == ["y ~ 1 + (1|p|cell) + (1|llm)"]
    assert spec.parts["implicit"].checks.alternatives == []
    # the part as a single model keeps the whole spec's [checks]: nothing fitted twice
    assert spec.part("decision").content.checks.alternatives == []


def test_the_single_model_commands_refuse_a_joint_spec_in_one_line(tmp_path, capsys):
    path, _ = _load(tmp_path, BASE)
    assert main(["ingest", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {path}: [parts]: biasstats ingest takes a spec with one model; a "
                   f"joint spec is ingested, fitted and reported part by part by 'biasstats "
                   f"report {path}'\n")
    assert not (tmp_path / "out").exists()
    for command, more in (("fit", []), ("effects", []), ("simulate", ["--seed", "1"])):
        assert main([command, str(path), *more]) == 2
        assert capsys.readouterr().err.startswith(
            f"error: {path}: [parts]: biasstats {command} takes a spec with one model")


@pytest.mark.parametrize("formula, message", [
    ("y ~ (1|p q|g)", "correlation id 'p q' in term '(1|p q|g)' must be a plain name "
                      "(letters, digits, _), as in (1 | p | g)"),
    ("y ~ (1|p|g|h)", "group term '(1|p|g|h)' has more than two '|'; write (1 | p | g) with a "
                      "correlation id p"),
    ("y ~ (1|p|a/b)", "term '(1|p|a/b)': a correlation id needs one grouping, not a nested "
                      "one; write (1 | p | a:b) for the inner term"),
    ("y ~ (1||p|g)", "group term '(1||p|g)' has more than one '|'"),
    ("y ~ (1|p|)", "group term '(1|p|)' has no grouping factor after '|'"),
])
def test_correlation_id_syntax_errors(formula, message):
    with pytest.raises(SpecError) as e:
        parse_formula(formula)
    assert str(e.value) == message


def test_a_correlation_id_keeps_the_term_otherwise_as_it_was():
    with_id = parse_formula("y ~ x + (1|p|a:b) + (1|g)")
    plain = parse_formula("y ~ x + (1|a:b) + (1|g)")
    assert [g.cor_id for g in with_id.groups] == ["p", None]
    assert [(g.expr, g.factors, g.correlated) for g in with_id.groups] == \
        [(g.expr, g.factors, g.correlated) for g in plain.groups]
    assert with_id.columns() == plain.columns()


def test_the_readme_joint_specs_load(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[parts." in b]
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"joint{i}.toml"
        path.write_text(block)
        spec = load_spec(path)
        assert len(spec.parts) == 2
        ids = {parse_formula(p.model.formula).groups[0].cor_id for p in spec.parts.values()}
        assert ids == {"p"}
