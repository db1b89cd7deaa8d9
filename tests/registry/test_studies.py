"""The study registry: generic stages never import a study's module, and what a study
registers (a simulation preset, a per-trial aggregation, its words) is what a spec gets."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from biasstats import registry
from biasstats.cli import main
from biasstats.inference.from_spec import model_data
from biasstats.ingest import ingest
from biasstats.simulate import SimulatedStudy
from biasstats.spec import load_spec
from biasstats.spec.outcome import outcome_kind, outcome_study

PKG = Path(registry.__file__).resolve().parents[1]  # .../biasstats
STUDY_DIR = PKG / "studies" / "bai2024"
REGISTRY = PKG / "registry" / "__init__.py"


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` / ``from ... import`` statement of the file names (absolute
    names; ``from biasstats.studies import bai2024`` counts as biasstats.studies.bai2024)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_module_outside_the_study_imports_it():
    offenders = []
    files = sorted(PKG.rglob("*.py"))
    assert len(files) > 50  # the walk really sees the package
    for f in files:
        if f.is_relative_to(STUDY_DIR) or f == REGISTRY:
            continue
        bad = {m for m in _imported_modules(f) if m == "biasstats.studies.bai2024"
               or m.startswith("biasstats.studies.bai2024.")}
        if bad:
            offenders.append(f"{f.relative_to(PKG.parent)}: {sorted(bad)}")
    assert offenders == []
    # the checker itself finds such an import (the study's own package does import it)
    assert "biasstats.studies.bai2024.dscore" in _imported_modules(STUDY_DIR / "__init__.py")


def test_importing_the_generic_stages_does_not_load_the_study():
    code = ("import sys, biasstats.cli, biasstats.pipeline, biasstats.ingest.run, "
            "biasstats.inference.from_spec, biasstats.effects, biasstats.effects.estimands, "
            "biasstats.checks, biasstats.checks.sbc, biasstats.report, biasstats.report.analysis, "
            "biasstats.report.figures, biasstats.simulate.from_formula, biasstats.spec; "
            "print(sorted(m for m in sys.modules if m.startswith('biasstats.studies.')))")
    env_path = str(PKG.parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_load_builtin_registers_the_bai_study_hooks():
    (bai,) = [s for s in registry.studies() if s.name == "bai2024"]
    assert set(bai.presets) == {"bai2024"}
    assert registry.preset("bai2024") is bai.presets["bai2024"]
    assert registry.scale("d_score").label == "D score (−1 … +1)"
    assert registry.congruence_effects() is bai.effects
    with pytest.raises(ValueError, match=r"unknown preset 'nope' \(registered: .*bai2024"):
        registry.preset("nope")
    from biasstats.studies.bai2024.simulate import reduced_bai_design

    got = registry.design("bai2024_reduced")(llms=2, stereotypes_per_category=1, variants=2,
                                            trials=3)
    assert got.equals(reduced_bai_design(2, 1, 2, 3))
    assert got.height == 2 * 4 * 1 * 2 * 3 * 16  # llms x categories x stereotypes x variants x trials x words


def test_a_third_party_study_registers_from_its_entry_point(monkeypatch):
    import importlib.metadata

    class EntryPoint:
        name = "toy_ep"

        def load(self):
            return lambda: registry.register_study(registry.Study(
                "toy_ep", presets={"toy_ep_preset": _toy_preset}))

    def fake_entry_points(*, group):
        assert group == "biasstats.studies"
        return [EntryPoint()]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        assert registry.preset("toy_ep_preset") is _toy_preset
        assert {"bai2024", "toy_ep"} <= {s.name for s in registry.studies()}
    finally:
        registry.unregister_study("toy_ep")


# --------------------------------------------------------------------- a toy study
TOY_P = 0.8  # the toy preset's known P(congruent)


def _toy_preset(sim) -> SimulatedStudy:
    rng = np.random.default_rng(sim.seed)
    n = sim.trials * 4
    y = (rng.random(n) < TOY_P).astype(float)
    table = pl.DataFrame({
        "source_row": np.repeat(np.arange(sim.trials), 4).astype(np.int64),
        "llm": np.repeat([f"m{i % 2}" for i in range(sim.trials)], 4),
        "item": [f"w{j}" for _ in range(sim.trials) for j in range(4)],
        "congruent": y,
        "status": ["ok"] * n,
        "reason": pl.Series([None] * n, dtype=pl.Utf8),
    })
    return SimulatedStudy(table, {"generator": "toy", "p": TOY_P, "seed": sim.seed})


def _toy_per_trial(rows: pl.DataFrame) -> pl.DataFrame | None:
    if "item" not in rows.columns:
        return None
    return rows.group_by("source_row").agg(
        pl.col("item").filter(pl.col("congruent") == 1).sort().str.join(",").alias("hit_items"))


@pytest.fixture
def toy_study():
    study = registry.register_study(registry.Study(
        "toy", presets={"toy_preset": _toy_preset}, trial_aggregations=(_toy_per_trial,)))
    yield study
    registry.unregister_study("toy")


def test_a_registered_preset_is_what_a_spec_simulates(tmp_path, toy_study):
    s = tmp_path / "toy.toml"
    s.write_text('[simulate]\npreset = "toy_preset"\nseed = 5\ntrials = 200\n'
                 '[model]\nformula = "k | trials(n) ~ 1 + (1|llm)"\nunit = "trial"\n'
                 'family = "binomial"\n')
    res = ingest(load_spec(s))
    want = _toy_preset(load_spec(s).simulate)
    assert res.truth == {"generator": "toy", "p": TOY_P, "seed": 5}
    assert res.ledger.source == "simulated:toy_preset (seed 5)"
    assert res.table.height == 800
    assert res.table["congruent"].to_list() == want.table["congruent"].to_list()
    assert abs(res.table["congruent"].mean() - TOY_P) < 0.05  # 800 draws: SE 0.014
    assert outcome_kind(res.spec) == "outcome"  # the toy declares no congruence coding
    # unit = "trial": the study's aggregation adds its column to each trial
    trials = model_data(res.spec, res.table)
    assert trials.height == 200
    first = res.table.filter(pl.col("source_row") == 0)
    hits = ",".join(sorted(first.filter(pl.col("congruent") == 1)["item"].to_list()))
    assert trials.filter(pl.col("source_row") == 0)["hit_items"][0] == hits
    n_hits = [len(h.split(",")) if h else 0 for h in trials["hit_items"].to_list()]
    assert trials["k"].to_list() == n_hits  # k (the generic count) agrees with the study's column


def test_an_unregistered_preset_is_one_line_exit_2(tmp_path, capsys):
    s = tmp_path / "s.toml"
    s.write_text('[simulate]\npreset = "toy_preset"\n[model]\nformula = "congruent ~ 1"\n')
    rc = main(["ingest", str(s), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert rc == 2
    assert err == (f"error: {s}: [simulate] preset: unknown preset 'toy_preset' "
                   "(registered: bai2024)\n")
    assert not (tmp_path / "out").exists()


def test_a_preset_cannot_be_registered_by_two_studies():
    registry.load_builtin()
    with pytest.raises(ValueError, match=r"presets \['bai2024'\] already provided by study 'bai2024'"):
        registry.register_study(registry.Study("clash", presets={"bai2024": _toy_preset}))
    assert "clash" not in registry.STUDIES


# --------------------------------------------------------------------- a study's words
def _spec(formula="y ~ 1", kind=None, preset=None):
    """What outcome_kind / outcome_study read of a spec."""
    from types import SimpleNamespace

    return SimpleNamespace(
        content=SimpleNamespace(effects=SimpleNamespace(kind=kind)),
        model=SimpleNamespace(formula=formula),
        simulate=None if preset is None else SimpleNamespace(preset=preset))


@pytest.fixture
def worded_study():
    study = registry.register_study(registry.Study(
        "worded", congruence_adapters=("worded_adapter",), congruence_presets=("worded_sim",),
        vocabulary=registry.Vocabulary(
            "toy coding", answers={"hit": "toy hits"},
            verdicts={"outside ROPE": "toyish", "inside ROPE": "not toyish"})))
    yield study
    registry.unregister_study("worded")


def test_the_study_that_codes_the_outcome_is_the_one_that_words_it(worded_study):
    (bai,) = [s for s in registry.studies() if s.name == "bai2024"]
    assert outcome_study(_spec(), "worded_adapter") is worded_study
    assert outcome_study(_spec(preset="worded_sim")) is worded_study
    assert outcome_study(_spec(), "bai2024_iat") is bai
    # a congruence coding no adapter declares: the study that provides congruence effects
    assert outcome_study(_spec("congruent ~ 1")) is bai
    assert outcome_study(_spec(kind="congruence")) is bai
    # neutral outcomes have no study, whatever adapter reads them
    assert outcome_study(_spec(kind="outcome"), "worded_adapter") is None
    assert outcome_study(_spec(), "tidy") is None
    assert outcome_study(_spec(preset="bai2024_nope")) is None


def test_generic_words_come_from_the_outcome_or_its_study(worded_study):
    from types import SimpleNamespace

    from biasstats.report.estimand_outputs import wording_for
    from biasstats.report.figures.kit import verdict_styles
    from biasstats.report.style import VERDICT_STYLE

    spec = SimpleNamespace(content=SimpleNamespace(
        effects=SimpleNamespace(outcome_label=None, unit=None)))
    fit = SimpleNamespace(spec=SimpleNamespace(
        formula=SimpleNamespace(response="hit"),
        family=SimpleNamespace(response_scale="probability")))
    assert wording_for(spec, fit).rate_axis == "Rate of hit"
    assert wording_for(spec, fit, worded_study).rate_axis == "Rate of toy hits"
    styles = verdict_styles()  # a study's verdict words are drawn as the verdict they stand for
    assert styles["toyish"] is VERDICT_STYLE["outside ROPE"]
    assert styles["not toyish"] is VERDICT_STYLE["inside ROPE"]
    assert styles["biased"] is VERDICT_STYLE["outside ROPE"]  # the Bai study's word
    # legend order: the studies' words first, then the generic verdicts in their own order
    assert list(styles)[:3] == ["biased", "practically unbiased", "undecided"]
    assert [v for v in styles if v in VERDICT_STYLE] == list(VERDICT_STYLE)
    assert list(styles).index("not toyish") < list(styles).index("outside ROPE")
