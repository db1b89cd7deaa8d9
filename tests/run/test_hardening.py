"""Hardening (issue 12, items 2-6): safe outputs, one transaction per run, resource limits.

Known truths: the mode a file gets from ``open()`` under a umask; the literal text of a level
name in the saved SVG; the bytes of a file before a failed run; the size of the arrays a fit
actually returns against the memory estimate made before sampling.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from biasstats import io
from biasstats.cli import main
from biasstats.errors import BiasstatsError, SpecError
from biasstats.pipeline import analysis_folder
from biasstats.report.tables import latex_escape, neutralise_text, to_latex, write_table
from biasstats.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
CSV = "model,answer\n" + "".join(f"{m},{i % 2}\n" for i in range(8) for m in ("a", "b"))
SPEC = '[data]\nsource = "d.csv"\n[data.columns]\nllm = "model"\ncongruent = "answer"\n'


def _study(tmp_path: Path, spec: str = SPEC, name: str = "s.toml") -> Path:
    (tmp_path / "d.csv").write_text(CSV)
    p = tmp_path / name
    p.write_text(spec)
    return p


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _disk_full_on(monkeypatch, name: str) -> None:
    """Writing the temporary file of output ``name`` fails with ENOSPC."""
    real = Path.write_text

    def full(self, *a, **k):
        if self.name.startswith(f".{name}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# ----------------------------------------------------------------------------- umask
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_outputs_honour_the_umask(tmp_path, umask, mode):
    """Each output gets exactly the mode open() gives under the umask (not mkstemp's 0600)."""
    code = ("import sys, polars as pl; from biasstats.io import write_text_atomic, "
            "write_parquet_atomic; write_text_atomic(sys.argv[1] + '/a.txt', 'x'); "
            "write_parquet_atomic(sys.argv[1] + '/b.parquet', pl.DataFrame({'x': [1]})); "
            "open(sys.argv[1] + '/plain.txt', 'w').close()")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env,
                   preexec_fn=lambda: os.umask(umask))
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"a.txt": mode, "b.parquet": mode, "plain.txt": mode}


# ----------------------------------------------------------------------------- transactions
def test_failed_run_removes_what_it_created_and_restores_what_it_replaced(tmp_path):
    out = tmp_path / "out" / "deep"
    io.write_text_atomic(tmp_path / "out" / "keep.txt", "before")
    with pytest.raises(RuntimeError), io.transaction():
        io.write_text_atomic(tmp_path / "out" / "keep.txt", "after")
        io.write_text_atomic(out / "new.txt", "new")
        assert (tmp_path / "out" / "keep.txt").read_text() == "after"
        raise RuntimeError("a later stage fails")
    assert _tree(tmp_path / "out") == ["keep.txt"]
    assert (tmp_path / "out" / "keep.txt").read_text() == "before"
    with io.transaction():  # a run that succeeds keeps everything and leaves no backup
        io.write_text_atomic(tmp_path / "out" / "keep.txt", "after")
    assert _tree(tmp_path / "out") == ["keep.txt"]
    assert (tmp_path / "out" / "keep.txt").read_text() == "after"


def test_rerun_that_fails_leaves_the_previous_outputs_byte_identical(tmp_path, capsys,
                                                                      monkeypatch):
    spec = _study(tmp_path)
    out = tmp_path / "out"
    assert _run(["ingest", spec, "--out", out], capsys)[0] == 0
    before = {p: (out / p).read_bytes() for p in _tree(out)}
    (tmp_path / "d.csv").write_text(CSV + "c,1\n")  # new data: a different table

    _disk_full_on(monkeypatch, "ledger.json")  # the disk fills up while the ledger is written
    rc, _, err = _run(["ingest", spec, "--out", out], capsys)
    assert (rc, err) == (2, f"error: cannot write {out}/ledger.json: no space left on the "
                            "device\n")
    assert {p: (out / p).read_bytes() for p in _tree(out)} == before


@pytest.mark.parametrize(("err", "reason"), [
    (errno.ENOSPC, "no space left on the device"),
    (errno.EACCES, os.strerror(errno.EACCES)),
    (errno.EROFS, os.strerror(errno.EROFS)),
    (errno.EPERM, os.strerror(errno.EPERM)),  # an immutable folder (chattr +i)
])
def test_unwritable_output_is_one_line_and_nothing_is_left(tmp_path, capsys, monkeypatch, err,
                                                           reason):
    spec = _study(tmp_path)
    out = tmp_path / "out"

    def refuse(*a, **k):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    rc, out_text, msg = _run(["ingest", spec, "--out", out], capsys)
    assert (rc, msg) == (2, f"error: cannot write {out}/trials.parquet: {reason}\n")
    assert not out.exists()


def test_disk_full_while_writing_the_report_leaves_nothing(tmp_path, capsys, monkeypatch):
    spec = _study(tmp_path, '[analysis]\nname = "r"\n' + SPEC)
    out = tmp_path / "reports"
    _disk_full_on(monkeypatch, "report.html")
    rc, _, err = _run(["report", spec, "--out", out], capsys)
    assert (rc, err) == (2, f"error: cannot write {out}/r/report.html: no space left on the "
                            "device\n")
    assert _tree(out) == []  # trials.parquet and ledger.json were rolled back


@pytest.mark.parametrize("command", ["ingest", "fit", "report", "simulate"])
def test_out_onto_a_file(tmp_path, capsys, command):
    spec = _study(tmp_path)
    target = tmp_path / "taken"
    target.write_text("mine")
    argv = [command, spec, "--out", target] + (["--seed", "1"] if command == "simulate" else [])
    rc, _, err = _run(argv, capsys)
    assert (rc, err) == (2, f"error: --out {target}: {target} is a file; expected a folder\n")
    assert target.read_text() == "mine"


# ----------------------------------------------------------------------------- confinement
@pytest.mark.parametrize("name", ["...toml", ".toml", "a b.toml", "x.y.toml"])
def test_spec_file_name_never_names_a_folder_outside_out(tmp_path, capsys, name):
    spec = _study(tmp_path, SPEC, name)
    rc, _, err = _run(["report", spec, "--out", tmp_path / "reports"], capsys)
    stem = Path(name).stem
    assert (rc, err) == (2, f"error: {spec}: the file name gives the analysis name {stem!r}, "
                            "which must be letters, digits, '-' or '_' (it names the report "
                            "folder); rename the file or set [analysis] name\n")
    assert _tree(tmp_path / "reports") == [] and not (tmp_path.parent / "d").exists()


def test_analysis_folder_is_confined(tmp_path):
    spec = load_spec(_study(tmp_path))
    assert analysis_folder(tmp_path / "reports", spec) == tmp_path / "reports" / "s"
    hostile = type(spec)(path=spec.path, content=spec.content.model_copy(update={
        "analysis": spec.content.analysis.model_construct(name="..")}), text=spec.text)
    with pytest.raises(BiasstatsError, match="would write outside"):
        analysis_folder(tmp_path / "reports", hostile)


# ----------------------------------------------------------------------------- tables
HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
           "\tTAB", "\rCR", "gpt-4", "-0.5", "-1e3"]


def test_csv_cells_that_spreadsheets_would_run_are_neutralised(tmp_path):
    df = pl.DataFrame({"Level": HOSTILE, "Mean": [-0.5, 1.0, -2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
                                                   -8.0]})
    files = write_table(df, tmp_path, "t", "caption", "tab:t")
    back = pl.read_csv(files["csv"])
    assert back["Level"].to_list() == [
        "'=HYPERLINK(\"http://x\",\"y\")", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)",
        "'\tTAB", "'\rCR", "gpt-4", "-0.5", "-1e3"]
    assert back["Mean"].to_list() == df["Mean"].to_list()  # negative numbers untouched
    tex = files["tex"].read_text()  # LaTeX runs no formula: it shows the real value
    assert "\n=HYPERLINK" in tex and "'=HYPERLINK" not in tex and "\n@SUM(A1) & " in tex
    assert "\n\\textbackslash{}tTAB & " in tex  # the tab written out, not raw
    assert neutralise_text(3) == 3 and neutralise_text(None) is None


def test_level_names_are_escaped_in_latex():
    name = "gpt-$\\foo{$ & 100%_#1 ~^"
    tex = to_latex(pl.DataFrame({"Level": [name], "Mean": [0.1]}), "c", "tab:c")
    assert latex_escape(name) == ("gpt-\\$\\textbackslash{}foo\\{\\$ \\& 100\\%\\_\\#1 "
                                  "\\textasciitilde{}\\textasciicircum{}")
    assert latex_escape(name) + " & 0.10 \\\\" in tex


# ----------------------------------------------------------------------------- figures
@pytest.mark.parametrize("level", ["gpt-$\\foo{$", "$5 and $10", "$\\alpha$"])
def test_level_names_print_literally_in_figures(tmp_path, level):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
    from test_report_render import fake_effects

    from biasstats.report import figures as F
    from biasstats.report.style import save_figure

    eff = fake_effects(llms=[level, "plain"], stereotypes={"racism": "race"})
    files = save_figure(F.forest(eff, "llm", "bias"), tmp_path, "forest")
    svg = files["svg"].read_text()
    escaped = level.replace("&", "&amp;").replace("<", "&lt;")
    assert escaped in svg  # the name itself, as text, not typeset math
    assert files["png"].stat().st_size > 1000 and files["pdf"].stat().st_size > 1000


# ----------------------------------------------------------------------------- memory
@pytest.mark.filterwarnings("ignore")
def test_memory_estimate_matches_the_arrays_a_fit_returns():
    from biasstats.inference import fit_prepared, fit_settings, memory_estimate
    from biasstats.model.build import prepare
    from biasstats.model.graph import build_model

    rng = np.random.default_rng(3)
    df = pl.DataFrame({"g": rng.choice(list("abcde"), 300).tolist(),
                       "x": rng.normal(size=300), "y": rng.normal(size=300)})
    spec = prepare("y ~ 1 + x + (1|g)", df, "gaussian")
    settings = fit_settings(chains=2, tune=30, draws=25, seed=1, sampler="pymc")
    est = memory_estimate(build_model(spec), spec, settings)
    fit = fit_prepared(spec, settings, progress=False)
    # the sampler returns float64 arrays (the peak); the fit keeps them as float32, as stored
    values = sum(v.size for g in ("posterior", "log_likelihood", "posterior_predictive")
                 for v in fit.idata[g].to_dataset().data_vars.values())
    actual = 8 * values
    assert {v.dtype for v in fit.idata["posterior"].to_dataset().data_vars.values()} == {
        np.dtype("float32")}
    # 2 chains x 25 draws x 8 bytes x (2 x (Intercept, b, sd_g, zero-sum z_g[4], sigma)
    # + 2 x 300 observations)
    assert est == {"bytes": 2 * 25 * 8 * (2 * 8 + 2 * 300), "parameters": 8,
                   "observations": 300, "chains": 2, "draws": 25}
    assert 0.9 * actual <= est["bytes"] <= 1.2 * actual


def test_memory_limit_is_checked_before_sampling(tmp_path, capsys, monkeypatch):
    spec = _study(tmp_path, SPEC + '[model]\nformula = "congruent ~ 1 + (1|llm)"\n'
                  "[fit]\nchains = 2\ndraws = 100000\nmax_memory_gb = 0.01\n")

    def never(*a, **k):
        raise AssertionError("sampling started")

    monkeypatch.setattr("biasstats.inference.sample_model", never)  # as inference binds it
    rc, _, err = _run(["fit", spec, "--out", tmp_path / "out"], capsys)
    assert (rc, err) == (2, f"error: {spec}: [fit] the fit would hold about 0.016 GB (2 chains "
                            "x 100000 draws x (2 x 3 parameters + 2 x 2 observations) x 8 "
                            "bytes), above max_memory_gb = 0.01; lower draws or chains, or "
                            "raise max_memory_gb (at most 1024)\n")
    assert not (tmp_path / "out").exists()


def test_simulation_size_is_capped_before_drawing():
    from biasstats.studies.bai2024.simulate import simulate_bai_study

    with pytest.raises(SpecError, match=r"^simulation of 1000000000 trials would make "
                       r"10752000000000 judgements; expected 1 to 50000000 \(lower trials\)$"):
        simulate_bai_study(0, trials=10**9)
    with pytest.raises(SpecError, match=r"^simulation seed -1: expected an integer from 0 to "
                                        r"4294967295$"):
        simulate_bai_study(-1, trials=1)


def test_report_fit_stage_error_names_spec_and_key_and_leaves_nothing(tmp_path, capsys):
    spec = _study(tmp_path, '[analysis]\nname = "r"\n' + SPEC
                  + '[model]\nformula = "congruent ~ 1 + (1|llm)"\n'
                  + '[model.centered]\njudge = true\n')
    out = tmp_path / "reports"
    rc, _, err = _run(["report", spec, "--out", out], capsys)
    assert (rc, err) == (2, f"error: {spec}: [model.centered]: unknown grouping 'judge'; "
                            "groupings are llm\n")
    assert _tree(out) == []  # no trials.parquet / ledger.json from the failed analysis


def test_polars_full_disk_error_is_one_line(tmp_path, capsys, monkeypatch):
    """polars wraps ENOSPC in a ComputeError (measured on a 64 KiB tmpfs); still one line."""
    spec = _study(tmp_path)

    def full(self, *a, **k):
        raise pl.exceptions.ComputeError("parquet: File out of specification: underlying IO "
                                         "error: No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    rc, _, err = _run(["ingest", spec, "--out", tmp_path / "out"], capsys)
    assert (rc, err) == (2, f"error: cannot write {tmp_path}/out/trials.parquet: no space left "
                            "on the device\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("exc", [
    pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device "
                               "(os error 28)"),
    RuntimeError("Disable slist on flush dest failure failed (file write failed: time = x, "
                  "filename = 'p.nc', file descriptor = 6, errno = 28, error message = 'No "
                  "space left on device', buf = 0x1, total write size = 388)"),  # h5py
])
def test_library_errors_wrapping_enospc_are_output_errors(tmp_path, exc):
    with pytest.raises(io.OutputError, match=r"^cannot write .*p\.nc: no space left on the "
                                             r"device$"):
        with io.atomic_path(tmp_path / "p.nc"):
            raise exc
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError), io.atomic_path(tmp_path / "p.nc"):  # others pass through
        raise ValueError("errno-free bug")


@pytest.mark.filterwarnings("ignore")
def test_bad_alternative_formula_names_its_key_and_rolls_back_the_analysis(tmp_path, capsys):
    spec = _study(tmp_path, '[analysis]\nname = "r"\n' + SPEC
                  + '[model]\nformula = "congruent ~ 1 + (1|llm)"\n'
                  + '[fit]\nchains = 1\ntune = 20\ndraws = 20\nsampler = "pymc"\n'
                  + '[checks]\nalternatives = ["congruent ~ 1 + (1|judge)"]\n')
    out = tmp_path / "reports"
    rc, _, err = _run(["report", spec, "--out", out], capsys)
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {spec}: [checks] alternatives[0]: "), err
    assert "'judge'" in err
    assert _tree(out) == []  # checked before anything is sampled or written


def test_a_full_disk_met_anywhere_is_one_line(tmp_path, capsys, monkeypatch):
    """A library writing its own file (a cache, a temporary file) on a full disk or quota:
    one line naming the file, exit 2, the run rolled back (not an OSError traceback)."""
    import biasstats.cli as cli

    spec = _study(tmp_path)

    def quota(*a, **k):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/var/cache/lib/x.bin")

    monkeypatch.setattr(cli, "ingest", quota)
    rc, _, err = _run(["ingest", spec, "--out", tmp_path / "out"], capsys)
    assert (rc, err) == (2, f"error: cannot write /var/cache/lib/x.bin: {os.strerror(errno.EDQUOT)}"
                            " (the disk, the quota or the file-size limit is full)\n")
    assert not (tmp_path / "out").exists()
