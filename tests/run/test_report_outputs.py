"""A report run leaves in its analysis folder exactly what it wrote, and the posterior cache.

Known truth: building a spec into a folder that holds an earlier model's report gives the same
files as building it into an empty folder (the earlier run's figures and tables, and the
temporary and backup files a killed run left, are gone); the posterior cache, files that
biasstats did not write and anything outside the analysis folder are never removed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from biasstats.io import recording, transaction, write_text_atomic
from biasstats.run import build_reports
from biasstats.run.analysis import OUTPUTS_FILE, tidy_outputs

SPEC = """
[analysis]
name = "study"
[data]
source = "d.csv"
[data.columns]
llm = "model"
variant = "prompt"
congruent = "answer"
[model]
formula = "{formula}"
[fit]
chains = 1
tune = 40
draws = 30
seed = 3
sampler = "pymc"
[checks]
allow_failure = true
loo_pit = false
"""
LEDGER_ONLY = """
[analysis]
name = "study"
[data]
source = "d.csv"
[data.columns]
llm = "model"
variant = "prompt"
congruent = "answer"
"""


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A small tidy study and the report of a model with a fixed factor (``variant``), built
    once into ``first/``: the earlier report the tests build over."""
    folder = tmp_path_factory.mktemp("outputs")
    rng = np.random.default_rng(4)
    rows = [(m, v, int(rng.random() < p))
            for m, p in (("a", 0.7), ("b", 0.4), ("c", 0.55)) for v in ("v1", "v2", "v3")
            for _ in range(20)]
    pl.DataFrame(rows, schema=["model", "prompt", "answer"], orient="row").write_csv(
        folder / "d.csv")
    spec = folder / "with_variant.toml"
    spec.write_text(SPEC.format(formula="congruent ~ 1 + variant + (1|llm)"))
    (first,) = build_reports([spec], folder / "first")
    assert first.status == "built", first.message
    return folder


def _earlier_report(study: Path, out: Path) -> Path:
    shutil.copytree(study / "first", out)
    return out / "study"


@pytest.mark.filterwarnings("ignore")
def test_rebuild_over_an_earlier_model_leaves_only_the_new_outputs(study, tmp_path):
    spec = study / "without_variant.toml"
    spec.write_text(SPEC.format(formula="congruent ~ 1 + (1|llm)"))
    fresh = tmp_path / "fresh"
    (o,) = build_reports([spec], fresh)
    assert o.status == "built" and not o.cached, o.message
    want = _files(fresh / "study")

    folder = _earlier_report(study, tmp_path / "out")
    before = _files(folder)
    dropped = {f for f in before - want if f.startswith(("figures/", "tables/"))}
    assert dropped, "the earlier model must have outputs the new one does not write"
    # what a run killed mid-write leaves: temporary files and a backup; and a user's file
    (folder / "figures" / ".effects_llm.png.k3x9q2ab.tmp").write_bytes(b"half a png")
    (folder / ".report.html.4242.bak").write_text("an older report")
    (folder / ".posterior.nc.zz9_0abc.tmp").write_bytes(b"CDF torn")
    (folder / "my_notes.txt").write_text("mine")
    # the new model's posterior is cached here (as after an earlier build of it): the rebuild
    # must reuse it, so the cache is kept, not removed with the earlier outputs
    shutil.copy2(fresh / "study" / "posterior.nc", folder / "posterior.nc")

    (again,) = build_reports([spec], tmp_path / "out")
    assert again.status == "built" and again.cached, again.message
    assert _files(folder) == want | {"my_notes.txt"}
    assert not (folder / "figures" / ".effects_llm.png.k3x9q2ab.tmp").exists()


@pytest.mark.filterwarnings("ignore")
def test_ledger_only_rebuild_keeps_the_posterior_cache(study, tmp_path):
    spec = study / "ledger.toml"
    spec.write_text(LEDGER_ONLY)
    (o,) = build_reports([spec], tmp_path / "fresh")
    assert o.status == "ingested", o.message
    want = _files(tmp_path / "fresh" / "study")
    assert want == {"trials.parquet", "ledger.json", "report.html", OUTPUTS_FILE}

    folder = _earlier_report(study, tmp_path / "out")
    cache = (folder / "posterior.nc").read_bytes()
    (o,) = build_reports([spec], tmp_path / "out")
    assert o.status == "ingested"
    assert _files(folder) == want | {"posterior.nc"}
    assert (folder / "posterior.nc").read_bytes() == cache
    assert not (folder / "figures").exists() and not (folder / "tables").exists()


# ------------------------------------------------------------ tidy_outputs alone (no fit)
def _folder(tmp_path: Path) -> Path:
    """An analysis folder after an earlier run: its list, a cached posterior (also one of an
    alternative model), figures and tables, a killed run's leftovers, a user's file."""
    folder = tmp_path / "out" / "study"
    for rel in ("report.html", "figures/a.png", "figures/b.png", "tables/t.csv",
                "effects.parquet", "posterior.nc", "alternatives/alt1/posterior.nc",
                "alternatives/alt1/.posterior.nc.abcd1234.tmp", "extra_output.parquet",
                "user.txt", ".user_hidden", "sub/.thing.9.bak.keep"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(rel)
    (folder / OUTPUTS_FILE).write_text(
        '["report.html", "figures/a.png", "extra_output.parquet", "../outside.txt", '
        '"/etc/hostname", "posterior.nc"]')
    (tmp_path / "out" / "outside.txt").write_text("another analysis' file")
    return folder


def _rewrite(folder: Path, rels) -> set[str]:
    with recording() as written:
        for rel in rels:
            write_text_atomic(folder / rel, "new " + rel)
    return written


def test_tidy_removes_earlier_outputs_only(tmp_path):
    folder = _folder(tmp_path)
    written = _rewrite(folder, ["report.html", "figures/a.png"])
    removed = tidy_outputs(folder, written)
    assert {p.relative_to(folder).as_posix() for p in removed} == {
        "figures/b.png", "tables/t.csv", "effects.parquet", "extra_output.parquet",
        "alternatives/alt1/.posterior.nc.abcd1234.tmp"}
    assert _files(folder) == {"report.html", "figures/a.png", "posterior.nc",
                              "alternatives/alt1/posterior.nc", "user.txt", ".user_hidden",
                              "sub/.thing.9.bak.keep", OUTPUTS_FILE}
    assert not (folder / "tables").exists()  # emptied folders go too
    assert (tmp_path / "out" / "outside.txt").exists()
    assert (folder / "report.html").read_text() == "new report.html"
    import json

    assert json.loads((folder / OUTPUTS_FILE).read_text()) == ["figures/a.png", "report.html"]


def test_tidy_never_follows_a_link_out_of_the_folder(tmp_path):
    folder = _folder(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.png").write_text("not ours")
    (elsewhere / ".y.png.abcd1234.tmp").write_text("not ours either")
    shutil.rmtree(folder / "figures")
    os.symlink(elsewhere, folder / "figures")
    (folder / OUTPUTS_FILE).write_text('["figures/x.png"]')
    tidy_outputs(folder, _rewrite(folder, ["report.html"]))
    assert sorted(p.name for p in elsewhere.iterdir()) == [".y.png.abcd1234.tmp", "x.png"]


def test_tidy_keeps_the_running_transactions_backups(tmp_path):
    folder = _folder(tmp_path)
    with transaction():
        # backs up the earlier report.html and figures/a.png
        written = _rewrite(folder, ["report.html", "figures/a.png"])
        backups = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.bak"))
        assert backups == [f".report.html.{os.getpid()}.bak",
                           f"figures/.a.png.{os.getpid()}.bak"]
        tidy_outputs(folder, written)
        assert all((folder / b).exists() for b in backups)
    assert not any((folder / b).exists() for b in backups)  # the commit removes them


def test_a_failed_run_gets_back_what_it_replaced_and_removed(tmp_path):
    folder = _folder(tmp_path)
    before = {rel: (folder / rel).read_text() for rel in _files(folder)}
    with pytest.raises(RuntimeError), transaction():
        tidy_outputs(folder, _rewrite(folder, ["report.html", "figures/a.png"]))
        raise RuntimeError("a later stage fails")
    assert {rel: (folder / rel).read_text() for rel in _files(folder)} == before
