"""A spec is data: no formula, prior, derive or filter ever reaches Python ``eval``.

The hostile inputs are the ones an adversarial review ran against the old patsy path (which
created files and read /etc/hostname). Each must give one line naming the token, exit 2 through
the CLI, and create nothing. The whitelisted transforms are checked against closed forms (R's
``poly`` and ``scale``), and a guard proves patsy's evaluating factor is never called.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from biasstats.cli import main
from biasstats.errors import SpecError
from biasstats.inference.predict import _new_design
from biasstats.model.build import prepare
from biasstats.model.formula import parse_formula
from biasstats.model.priors import parse_prior
from biasstats.model.terms import poly_apply, poly_coefs

ALLOWED = ("a formula may use column names, numbers, arithmetic inside I(), and the functions "
           "C, I, Q, log, log1p, log2, log10, exp, sqrt, abs, center, scale, standardize, poly")

HOSTILE = [
    ("y ~ 1 + I(__import__('os').system('touch PWNED'))",
     f"'__import__('os').system' in formula term "
     f"'I(__import__('os').system('touch PWNED'))' is not allowed; {ALLOWED}"),
    ("y ~ x + open('/etc/hostname').read()",
     f"'open('/etc/hostname').read' in formula term 'open('/etc/hostname').read()' is not "
     f"allowed; {ALLOWED}"),
    # code in a varying-slope term used to run before its error
    ("y ~ x + (x + __import__('os').system('touch PWNED') | g)",
     f"'__import__('os').system' in formula term \"__import__('os').system('touch PWNED')\" "
     f"is not allowed; {ALLOWED}"),
    ("y ~ np.linalg.inv(x)", f"'np.linalg.inv' in formula term 'np.linalg.inv(x)' is not "
                             f"allowed; {ALLOWED}"),
    ("y ~ x.__class__", f"'x.__class__' in formula term 'x.__class__' is not allowed; {ALLOWED}"),
    ("y ~ C(g, Treatment(__import__('os')))",
     "the reference level in 'Treatment(__import__('os'))' (formula term "
     "'C(g, Treatment(__import__('os')))') must be a quoted level name"),
    ("y ~ C(g, exec)", "contrast 'exec' in formula term 'C(g, exec)' is not allowed; use "
                       "Treatment('level') or Sum"),
    ("y ~ I([c for c in ()])",
     f"'[c for c in ()]' in formula term 'I([c for c in()])' is not allowed; {ALLOWED}"),
    ("y ~ log(x, **{})", f"'*' in formula term 'log(x, **{{}})' is not allowed; {ALLOWED}"),
    ("y ~ I('a' * 10)", f"''a'' in formula term \"I('a' * 10)\" is not allowed; {ALLOWED}"),
    ("y ~ (lambda: 1)()",
     "formula part '(lambda: 1)()' is not understood: expected an operator, not '('"),
    ("y ~ I(x > 0)", f"'x > 0' in formula term 'I(x > 0)' is not allowed; {ALLOWED}"),
    ("y ~ poly(x, 99)", "the degree of poly() in formula term 'poly(x, 99)' must be a whole "
                        "number from 1 to 10, got '99'"),
    ("y ~ scale(center(x))", "stateful transform 'center' in formula term 'scale(center(x))' "
                             "cannot be nested inside another one (center, scale, standardize, "
                             "poly)"),
]


@pytest.fixture
def df() -> pl.DataFrame:
    rng = np.random.default_rng(3)
    n = 48
    return pl.DataFrame({
        "y": rng.integers(0, 2, n).astype(float),
        "x": rng.normal(size=n) + 3.0,
        "g": [f"g{i % 3}" for i in range(n)],
        "reply length": rng.normal(size=n),
        "h": [f"h{i % 4}" for i in range(n)],
    })


@pytest.mark.parametrize("formula, message", HOSTILE)
def test_hostile_formula_is_one_line_and_runs_nothing(formula, message, df, tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as e:
        parse_formula(formula)
    assert str(e.value).replace('"', "'") == message.replace('"', "'")
    with pytest.raises(SpecError):
        prepare(formula, df)
    assert list(tmp_path.iterdir()) == []  # nothing created (no PWNED)


def test_hostile_spec_through_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "evil.toml"
    spec.write_text('[simulate]\npreset = "bai2024"\n[model]\n'
                    "formula = \"congruent ~ 1 + I(__import__('os').system('touch PWNED')) "
                    '+ (1|llm)"\n')
    for cmd in (["ingest"], ["fit"], ["report"], ["simulate", "--seed", "1"]):
        rc = main([*cmd, str(spec), "--out", str(tmp_path / "out")])
        out, err = capsys.readouterr()
        assert rc == 2, cmd
        assert err == (f"error: {spec}: [model] formula: '__import__('os').system' in formula "
                       f"term 'I(__import__('os').system('touch PWNED'))' is not allowed; "
                       f"{ALLOWED}\n"), cmd
        assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.toml"]


def test_hostile_alternative_formula_is_refused_at_load(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('[simulate]\npreset = "bai2024"\n[model]\nformula = "congruent ~ 1"\n'
                    "[checks]\nalternatives = [\"congruent ~ eval('1')\"]\n")
    rc = main(["ingest", str(spec), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == (f"error: {spec}: [checks] alternatives: 'eval' in formula term "
                   f"'eval('1')' is not allowed; {ALLOWED}\n")


def test_hostile_prior_derive_and_filter_run_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=r"^prior .*__import__"):
        parse_prior("__import__('os').system('touch PWNED')")
    (tmp_path / "d.csv").write_text("model,answer\ngpt,1\ngpt,0\nllama,1\n")
    for table, line in [("[data.derive]", "variant = \"__import__('os').system('touch PWNED')\""),
                        ("", "filters = [\"__import__('os').system('touch PWNED') = 0\"]")]:
        spec = tmp_path / "s.toml"
        data = '[data]\nsource = "d.csv"\n' + (line + "\n" if not table else "")
        spec.write_text(data + '[data.columns]\nllm = "model"\ncongruent = "answer"\n'
                        + (f"{table}\n{line}\n" if table else ""))
        rc = main(["ingest", str(spec), "--out", str(tmp_path / "out")])
        out, err = capsys.readouterr()
        assert rc == 2, (line, out, err)
        assert err.startswith(f"error: {spec}: ") and err.count("\n") == 1
        assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "s.toml"]


def test_patsy_eval_is_never_called(df, monkeypatch):
    """Fit-side design building and prediction on new data with every transform, while
    patsy's evaluating factor and environment raise if touched."""
    import patsy.eval

    def boom(*a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("patsy evaluated Python code")

    monkeypatch.setattr(patsy.eval.EvalEnvironment, "eval", boom)
    monkeypatch.setattr(patsy.eval.EvalFactor, "eval", boom)
    monkeypatch.setattr(patsy.eval.EvalFactor, "memorize_passes_needed", boom)
    f = ("y ~ C(g, Treatment('g2')) * x + poly(x, 2) + scale(`reply length`) + log(x) "
         "+ I(x ** 2 / 2 - 1) + np.sqrt(x) + (1 + center(x) | h)")
    spec = prepare(f, df, collapse=False)
    assert spec.fixed_names == [
        "C(g, Treatment('g2'))[T.g0]", "C(g, Treatment('g2'))[T.g1]", "x",
        "C(g, Treatment('g2'))[T.g0]:x", "C(g, Treatment('g2'))[T.g1]:x",
        "poly(x, 2)[0]", "poly(x, 2)[1]", "scale(`reply length`)", "log(x)",
        "I(x ** 2 / 2 - 1)", "np.sqrt(x)"]
    assert spec.groups[0].coefs == ["Intercept", "center(x)"]
    new = df.head(5).to_pandas()
    X_new = _new_design(spec.fixed_info, new, "fixed part")
    assert np.allclose(X_new[:, 1:], spec.X[:5])  # new data coded with the fitted state


def test_poly_matches_r_and_codes_new_data_with_fitted_coefficients():
    # R: poly(1:5, 2)
    r = np.array([[-0.6324555, 0.5345225], [-0.3162278, -0.2672612], [0.0, -0.5345225],
                  [0.3162278, -0.2672612], [0.6324555, 0.5345225]])
    x = np.arange(1.0, 6.0)
    coefs = poly_coefs(x, 2)
    assert np.allclose(poly_apply(x, *coefs), r, atol=1e-7)
    # orthonormal columns on any data, and new x coded with the *fitted* polynomials
    z = np.random.default_rng(0).gamma(2.0, size=200)
    P = poly_apply(z, *poly_coefs(z, 3))
    assert np.allclose(P.T @ P, np.eye(3), atol=1e-10) and np.allclose(P.sum(0), 0, atol=1e-10)
    assert np.allclose(poly_apply(np.array([1.0, 2.0]), *coefs), r[:2], atol=1e-7)


def test_scale_is_r_scale_and_stateful_on_new_data(df):
    spec = prepare("y ~ scale(x) + center(x)", df, collapse=False)
    x = df["x"].to_numpy()
    assert np.allclose(spec.X[:, 0], (x - x.mean()) / x.std(ddof=1))
    assert np.allclose(spec.X[:, 1], x - x.mean())
    new = pd.DataFrame({"x": [x.mean(), x.mean() + x.std(ddof=1)]})
    assert np.allclose(_new_design(spec.fixed_info, new, "fixed part"),
                       [[1, 0, 0], [1, 1, x.std(ddof=1)]])


def test_backticks_and_reference_levels(df):
    d = df.rename({"y": "my outcome", "g": "prompt id"})
    spec = prepare("`my outcome` ~ C(h, Treatment('h3')) + `reply length` + (1|`prompt id`)", d,
                   collapse=False)
    assert spec.formula.response == "my outcome"
    assert spec.fixed_names == ["C(h, Treatment('h3'))[T.h0]", "C(h, Treatment('h3'))[T.h1]",
                                "C(h, Treatment('h3'))[T.h2]", "`reply length`"]
    assert spec.groups[0].name == "prompt id" and len(spec.groups[0].levels) == 3
    assert parse_formula("y ~ `a+b` + (1|g)").columns() == ["y", "a+b", "g"]


@pytest.mark.parametrize("formula, message", [
    ("y ~ log(x - 3)", "'log(x - 3)' in formula term 'log(x - 3)' is not finite in"),
    ("y ~ log(g)", "'g' in formula term 'log(g)' is not numeric; arithmetic and transforms "
                   "need a numeric column"),
    ("y ~ `nope`", "unknown column 'nope' in term '`nope`'"),
    ("y ~ x + `unclosed", "unbalanced backtick in formula part 'x + `unclosed'"),
])
def test_transform_errors_are_one_line(df, formula, message):
    with pytest.raises(SpecError) as e:
        prepare(formula, df, collapse=False)
    assert str(e.value).startswith(message)
