"""The house rules (ARCHITECTURE.md), checked on the code: the stages import only down their
layers (import-linter contracts in pyproject.toml), no private name crosses a package, and
``import biasstats`` stays light."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "biasstats"


def test_the_stage_layers_hold():
    importlinter = pytest.importorskip("importlinter.cli", reason="import-linter not installed")
    cwd = os.getcwd()
    os.chdir(ROOT)  # the contracts are in pyproject.toml; the package is imported from here
    sys.path.insert(0, str(ROOT))
    try:
        assert importlinter.lint_imports(config_filename=str(ROOT / "pyproject.toml"),
                                         no_cache=True, no_logo=True) == 0
    finally:
        os.chdir(cwd)
        sys.path.remove(str(ROOT))


def _package_of(module: str) -> str:
    """``biasstats.model.build`` -> ``biasstats.model``; a top-level module is its own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_no_private_name_crosses_a_package():
    """``from biasstats.x.y import _name`` only inside package ``biasstats.x``."""
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        here = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                    and node.module.startswith("biasstats")):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") \
                        and _package_of(node.module) != _package_of(here):
                    offenders.append(f"{here}: {node.module}.{alias.name}")
    assert offenders == []


def test_importing_biasstats_does_not_import_the_heavy_libraries():
    code = ("import sys, biasstats; "
            "print(sorted(m for m in ('pymc', 'pytensor', 'nutpie', 'matplotlib', "
            "'arviz_stats', 'arviz_plots', 'statsmodels') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"
    # and the public face is plain functions
    import biasstats

    for name in ("fit", "load_spec", "run_analysis", "estimands", "register_adapter"):
        assert callable(getattr(biasstats, name)) and type(getattr(biasstats, name)).__name__ \
            == "function", name
    assert isinstance(biasstats.__version__, str)


# ----------------------------------------------------------------------------- study words
STUDY_DIR = PKG / "studies"
# A study's vocabulary (the Bai et al. congruence coding): generic stages word every outcome
# from [effects] outcome_label and unit, or from what the study registers
# (registry.Vocabulary, registry.Scale), never with these words of their own.
STUDY_WORDS = ("stereotype-congruent", "practically unbiased", "d score")
# (file, word) -> why that generic file may hold the word in a string literal
ALLOWED_STUDY_WORDS = {
    ("biasstats/spec/reference.py", "stereotype-congruent"):
        "the canonical `congruent` column belongs to the ingest schema (a tidy release may "
        "map its 0/1 answer onto it); its line in `biasstats spec` says what it codes",
}


def _string_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal of ``source`` but its docstrings (f-string parts
    included; implicitly joined literals as one)."""
    tree = ast.parse(source)
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                docs.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def _study_words_in(source: str) -> list[tuple[int, str]]:
    return [(line, w) for line, text in _string_literals(source) for w in STUDY_WORDS
            if w in text.casefold()]


def test_generic_modules_hold_no_study_words():
    """Everything under biasstats/ but biasstats/studies/ is generic: its string literals hold
    none of the study's words (docstrings and comments may name the study)."""
    offenders, used = [], set()
    for path in sorted(PKG.rglob("*.py")):
        if path.is_relative_to(STUDY_DIR):
            continue
        rel = path.relative_to(ROOT).as_posix()
        for line, word in _study_words_in(path.read_text(encoding="utf-8")):
            if (rel, word) in ALLOWED_STUDY_WORDS:
                used.add((rel, word))
            else:
                offenders.append(f"{rel}:{line}: {word!r}")
    assert offenders == []
    assert used == set(ALLOWED_STUDY_WORDS)  # the allow-list holds only what is still needed


def test_the_study_word_check_finds_a_literal_but_not_a_docstring_or_comment():
    source = ('"""Module on the D score."""\n'
              'def f():\n'
              '    """Practically unbiased, says the docstring."""\n'
              '    # a comment on stereotype-congruent answers\n'
              '    label = "P(" "Stereotype-" f"congruent {1})"\n'
              '    return label, f"{2} are practically unbiased", "d Score"\n')
    assert sorted(_study_words_in(source)) == [
        (5, "stereotype-congruent"), (6, "d score"), (6, "practically unbiased")]


# A family switch: comparing a family's name, response kind, link or PPC statistic to a
# literal (or naming a hand-kept list of families) anywhere but the family package. The same
# pattern as the house metrics (shared/tools/house.py), written out here.
FAMILY_SWITCH = re.compile(
    r"""(\.response|\.link(\.name)?|ppc_stat|\bfamily(\.name)?|\bfam(\.name)?)\s*"""
    r"""(==|!=|\bin\b|\bnot in\b)\s*[\(\["']|LOGIT_FAMILIES""")


def test_no_family_switch_outside_the_family_package():
    """Nothing outside ``model/families`` branches on which family it has: it reads the
    family's fields and calls its methods (a study's own package is its own business)."""
    exempt = (PKG / "model" / "families", PKG / "studies")
    sites = []
    for path in sorted(PKG.rglob("*.py")):
        if any(path.is_relative_to(e) for e in exempt):
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FAMILY_SWITCH.search(line.split("#", 1)[0]):
                sites.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert sites == []


def test_the_family_package_itself_has_no_switch_on_a_family():
    """Inside the family package too, behaviour is data (response kinds and links are
    records), not a comparison of names."""
    sites = [f"{p.relative_to(ROOT)}:{i}"
             for p in sorted((PKG / "model" / "families").rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if FAMILY_SWITCH.search(line.split("#", 1)[0])]
    assert sites == []


MAX_LINES = 600


def test_no_file_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in sorted(PKG.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def _function_imports(path: Path):
    """(line, module, has a comment) of every import inside a function of ``path``; an import
    in a block of imports is commented when the line above the block is a comment."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    out = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import | ast.ImportFrom):
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                first = node.lineno - 1
                while first > 0 and lines[first - 1].strip().startswith(("from ", "import ")):
                    first -= 1
                commented = "#" in lines[node.lineno - 1] or (
                    first > 0 and lines[first - 1].strip().startswith("#"))
                out.append((node.lineno, module or "", commented))
    return out


def test_function_level_imports_only_defer_heavy_libraries_and_say_so():
    """An import inside a function defers a heavy library (or, in a package's face and a
    study's registration, a module loaded on first use), with a comment saying so; every
    other import is at the top of its module, where the layers can be read."""
    lazy_faces = {PKG / "__init__.py", *PKG.glob("studies/*/__init__.py")}
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        for line, module, commented in _function_imports(path):
            where = f"{path.relative_to(ROOT)}:{line}: {module}"
            if not commented:
                offenders.append(f"{where} (no comment)")
            elif module.startswith("biasstats") and path not in lazy_faces:
                offenders.append(f"{where} (a biasstats module: import it at the top)")
    assert offenders == []


def test_at_most_two_functions_are_over_80_lines():
    long = [f"{p.relative_to(ROOT)}:{n.name} ({n.end_lineno - n.lineno + 1})"
            for p in sorted(PKG.rglob("*.py"))
            for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.end_lineno - n.lineno + 1 > 80]
    assert len(long) <= 2, long
