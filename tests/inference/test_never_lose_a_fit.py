"""Never lose a fit (issue 26): everything the analysis asks of a fit is checked before
anything is sampled (item 1), and a failure after sampling leaves the posterior in its cache,
says so in its one line, and the next run reuses it instead of sampling again (item 2)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import biasstats.run.analysis as run_analysis_module
from biasstats.cli import main
from biasstats.errors import SpecError
from biasstats.inference.result import read_posterior

SPEC = """
[analysis]
name = "study"
[data]
source = "d.csv"
outcome = "y"
[model]
formula = "y ~ 1 + (1|g)"
family = "gaussian"
[fit]
chains = 1
tune = 60
draws = 40
seed = 5
[checks]
allow_failure = true
loo_pit = false
"""


@pytest.fixture
def spec(tmp_path):
    rng = np.random.default_rng(2)
    g = np.repeat(list("abcde"), 8)
    y = rng.normal(0, 1, g.size) + np.repeat(rng.normal(0, 1, 5), 8)
    rows = "".join(f"{a:.4f},{b},{i % 2}\n" for i, (a, b) in enumerate(zip(y, g, strict=True)))
    (tmp_path / "d.csv").write_text("y,g,x\n" + rows)
    (tmp_path / "s.toml").write_text(SPEC)
    return tmp_path / "s.toml"


def test_a_failure_after_sampling_keeps_the_posterior_and_the_next_run_reuses_it(
        spec, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real = run_analysis_module.analyse

    def failing(*args, **kwargs):
        raise SpecError(f"{spec}: [effects] something found wrong after sampling")

    monkeypatch.setattr(run_analysis_module, "analyse", failing)
    assert main(["report", str(spec), "--out", str(out)]) == 2
    *refits, err = capsys.readouterr().err.splitlines(keepends=True)
    posterior = out / "study" / "posterior.nc"
    assert err == (f"error: {spec}: [effects] something found wrong after sampling (the "
                   f"posterior is kept in {posterior}: the next run reuses it; --refit "
                   "samples again)\n")
    # the tiny fit fails its gate: each automatic refit said in one line as it starts, and
    # the last attempt's failure said too
    assert [line[:37] for line in refits] == [
        "  study: refit: attempt 1 failed the ", "  study: refit: attempt 2 failed the ",
        "  study: refit: attempt 3 failed the "]
    assert "; attempt 2 of 3: " in refits[0] and "; attempt 3 of 3: " in refits[1]
    # none passed: the attempt least far from the gate is kept, and named
    kept = re.search(r"\): nothing left to try automatically; attempt ([123]) is kept \(the "
                     r"least far from the gate\)\n$", refits[2])
    assert kept, refits[2]
    # the failed run's other outputs are rolled back; the posterior stays
    assert sorted(p.name for p in (out / "study").iterdir()) == ["posterior.nc"]
    stamp = posterior.stat().st_mtime_ns

    monkeypatch.setattr(run_analysis_module, "analyse", real)
    assert main(["report", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "posterior cached" in printed
    assert posterior.stat().st_mtime_ns == stamp  # reused, not sampled again
    stored = json.loads(read_posterior(posterior).attrs["biasstats_settings"])
    assert [a["kept"] for a in stored["attempts"]] == [
        a["attempt"] == int(kept.group(1)) for a in stored["attempts"]]
    assert (out / "study" / "report.html").is_file()


def _no_sampling(monkeypatch):
    """Make any sampling an error: a check that passes this ran before sampling."""
    import biasstats.inference.from_spec as from_spec

    def sampled(*a, **k):
        raise AssertionError("sampled")

    monkeypatch.setattr(from_spec, "fit_prepared", sampled)


@pytest.mark.parametrize("effects,message", [
    ('by = ["x"]', "[effects] by: 'x' is not a factor of the model (its factors: g; within strata: 'a | b')"),
    ('contrasts = ["g"]\nreference = { g = "zz" }',
     "[effects] reference: level 'zz' of 'g' is not in the data (levels: a, b, c, d, e)"),
])
def test_an_effects_mistake_is_found_before_anything_is_sampled(
        spec, tmp_path, capsys, monkeypatch, effects, message):
    spec.write_text(SPEC.replace("formula = \"y ~ 1 + (1|g)\"", "formula = \"y ~ x + (1|g)\"")
                    + f"[effects]\n{effects}\n")
    _no_sampling(monkeypatch)
    for command in ("report", "fit", "effects"):
        out = tmp_path / f"out_{command}"
        assert main([command, str(spec), "--out", str(out)]) == 2
        assert capsys.readouterr().err == f"error: {spec}: {message}\n"
        assert not (out / "study" / "posterior.nc").exists() and not (out / "posterior.nc").exists()


def test_a_factor_held_only_inside_an_interaction_is_a_valid_target(tmp_path):
    """``(1|llm:cond)`` holds llm and cond only inside the interaction: contrasts between the
    levels of each, and the ranks of the interaction's cells (asked: a grouping factor is
    never ranked by default), are estimands of the model (marginal means averaged over the
    rest), not errors."""
    import biasstats
    from biasstats.effects.estimands import EffectsRequest, check_request, default_request
    from biasstats.model.build import prepare

    rng = np.random.default_rng(4)
    llm = np.repeat(["m1", "m2", "m3"], 40)
    cond = np.tile(np.repeat(["c1", "c2"], 20), 3)
    y = rng.normal(0, 1, llm.size) + (cond == "c2") * 0.8
    import polars as pl

    df = pl.DataFrame({"y": y, "llm": llm, "cond": cond})
    prepared = prepare("y ~ 1 + (1|llm:cond)", df, "gaussian")
    req = default_request(prepared)
    assert req.rank is None and req.by == ("llm:cond",)
    check_request(req, prepared)  # the default applies
    check_request(EffectsRequest(rank="llm:cond"), prepared)  # and its cells' ranks, asked
    asked = EffectsRequest(by=("llm", "cond"), contrasts=("cond", "llm"), rank="llm")
    check_request(asked, prepared)
    fit = biasstats.fit("y ~ 1 + (1|llm:cond)", data=df, family="gaussian", chains=1,
                        tune=150, draws=150, seed=2, progress=False)
    est = biasstats.estimands(fit, by=["cond"], contrasts=["cond"], rank="llm")
    diff = est.contrasts.filter(pl.col("scale") == "difference")
    assert diff["level"].to_list() == ["c2 − c1"]
    # the marginal contrast equals the difference of the observed cell means' averages here
    # (balanced cells): within a few posterior SDs of the data's own difference
    observed = float(df.filter(pl.col("cond") == "c2")["y"].mean()
                     - df.filter(pl.col("cond") == "c1")["y"].mean())
    assert abs(diff["mean"][0] - observed) < 3 * diff["sd"][0] + 0.05
    assert sorted(est.ranks["level"].to_list()) == ["m1", "m2", "m3"]



@pytest.mark.parametrize("jobs", ["1", "2"])
def test_report_shows_the_design_diagnosis_before_sampling(tmp_path, capfd, monkeypatch, jobs):
    """``biasstats report`` prints each hard-design line on stderr before anything is sampled,
    in a worker process too (``--jobs 2``: spawned workers share the terminal's stderr)."""
    rng = np.random.default_rng(3)
    g = np.repeat(list("abcdef"), 20)
    y = np.where(g == "a", 1, rng.integers(0, 2, g.size))
    (tmp_path / "d.csv").write_text("y,g\n" + "".join(f"{a},{b}\n" for a, b in zip(y, g, strict=True)))
    bern = SPEC.replace('family = "gaussian"', 'family = "bernoulli"')
    # a mistake the checks find before sampling stops each run right after the diagnosis
    effects = '[effects]\ncontrasts = ["g"]\nreference = { g = "zz" }\n'
    specs = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.toml"
        path.write_text(bern.replace('name = "study"', f'name = "{name}"') + effects)
        specs.append(str(path))
    assert main(["report", *specs, "--out", str(tmp_path / "out"), "--jobs", jobs]) == 2
    err = capfd.readouterr().err
    assert ("one: design: term '(1|g)': 1 of 6 levels has every outcome in one class ('a')"
            in err)
    assert not list((tmp_path / "out").rglob("posterior.nc"))


# ------------------------------------------------------- a posterior that cannot be written
def _h5_files_open() -> int:
    import h5py

    return h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)


def test_a_disk_that_fills_while_the_posterior_is_written_is_one_line_and_nothing_is_left(
        spec, tmp_path, capsys, monkeypatch):
    """Issue 19 item 4: HDF5 used to write posterior.nc itself; when the disk filled midway
    the error line was right, then HDF5 flushed the half-written file again when it was
    collected and the process ended in a segfault. Now HDF5 builds the file in memory and
    Python writes the bytes: the write fails with ENOSPC halfway, the half-written file is
    removed, no HDF5 file is left open, exit 2 with one line, nothing in --out."""
    import errno
    import os

    import biasstats.inference.result as result

    written = []

    def half_then_full(path, data):
        view = memoryview(data)
        with open(path, "wb") as fh:
            fh.write(view[: len(view) // 2])
        written.append((path, len(view)))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(result, "write_bytes", half_then_full)
    before = _h5_files_open()
    out = tmp_path / "out"
    rc = main(["fit", str(spec), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2 and "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines(keepends=True)
              if not line.startswith("refit: attempt ")]  # the tiny fit's automatic refits
    assert errors == [f"error: cannot write {out}/posterior.nc: no space left on the device\n"]
    assert written and written[0][1] > 1000 and not written[0][0].exists()  # removed
    assert not out.exists() or list(out.rglob("*")) == []
    assert _h5_files_open() == before


@pytest.mark.slow
def test_a_real_failed_write_of_the_posterior_ends_without_a_crash(spec, tmp_path):
    """The same with a real failing write(2) (RLIMIT_FSIZE: the C library's write returns
    EFBIG, as it would ENOSPC on a full disk) in a child process, which must exit 2 with its
    one line, never a segfault (exit -11), and leave no file."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    child = (
        "import resource, signal, sys\n"
        "import biasstats.inference.result as r\n"
        "from biasstats.cli import main\n"
        "real = r.write_bytes\n"
        "def limited(path, data):\n"
        "    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (len(data) // 2, resource.RLIM_INFINITY))\n"
        "    real(path, data)\n"
        "r.write_bytes = limited\n"
        "sys.exit(main(['fit', sys.argv[1], '--out', sys.argv[2]]))\n")
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-c", child, str(spec), str(out)], cwd=root,
                       capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.endswith(f"error: cannot write {out}/posterior.nc: File too large\n")
    assert not out.exists() or list(out.rglob("*")) == []


def _huge_predictor(spec, tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(1e8, 3e8, 40)
    rows = "".join(f"{1 + 1e-8 * v + rng.normal():.4f},{'abcde'[i % 5]},{v:.1f}\n"
                   for i, v in enumerate(x))
    (tmp_path / "d.csv").write_text("y,g,x\n" + rows)
    spec.write_text(SPEC.replace('"y ~ 1 + (1|g)"', '"y ~ 1 + x + (1|g)"'))
    return (f"error: {spec}: [model] formula: sampling could not start: the log density is "
            "not finite at any of the sampler's starting points (All initialization points "
            f"failed); predictors on a large scale are the usual cause (x up to {max(x):.3g}): "
            "rescale them, e.g. scale(x) in the formula\n")


def test_a_sampler_that_cannot_start_is_one_line_naming_the_large_predictors(
        spec, tmp_path, capsys, monkeypatch):
    """nutpie's RuntimeError (with its Rust backtrace) when no starting point has a finite
    log density becomes one line naming the large-scale predictors (fast: the sampler's
    failure is raised by a stand-in; the slow test below makes nutpie fail for real)."""
    import biasstats.inference as inference

    expected = _huge_predictor(spec, tmp_path)

    def cannot_start(*a, **k):
        raise RuntimeError("All initialization points failed\n\nCaused by:\n    Logp function "
                           "returned error: ErrorCode(3)\n\nStack backtrace:\n   0: <unknown>")

    monkeypatch.setattr(inference, "sample_model", cannot_start)
    out = tmp_path / "out"
    assert main(["fit", str(spec), "--out", str(out)]) == 2
    assert capsys.readouterr().err == expected
    assert not out.exists() or list(out.rglob("*")) == []


@pytest.mark.slow
def test_a_predictor_on_a_huge_scale_is_one_line_naming_it(spec, tmp_path, capsys):
    """x up to ~1e8 (a timestamp, a byte count): nutpie found no starting point with a
    finite log density and the run ended with a Rust backtrace; now one line naming the
    predictor and how to rescale it."""
    expected = _huge_predictor(spec, tmp_path)
    out = tmp_path / "out"
    assert main(["fit", str(spec), "--out", str(out)]) == 2
    assert capsys.readouterr().err == expected
    assert not out.exists() or list(out.rglob("*")) == []


def test_a_full_disk_while_the_model_compiles_is_one_line(spec, tmp_path, capsys, monkeypatch):
    """numba and PyTensor write their caches while the model compiles: a full disk there was
    an OSError traceback (numba's caching.save); now one line saying which cache and how to
    move it, exit 2, nothing in --out."""
    import errno
    import os

    import biasstats.inference.sample as sample

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sample, "compile_model", full)  # where nutpie's model is compiled
    out = tmp_path / "out"
    assert main(["fit", str(spec), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "error: cannot write the compiled model's cache (numba, PyTensor; NUMBA_CACHE_DIR and "
        "PYTENSOR_FLAGS=compiledir=... move it): no space left on the device (the disk, the "
        "quota or the file-size limit is full)\n")
    assert not out.exists()
