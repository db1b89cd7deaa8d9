"""Bench lines of issue 11 (honest defaults), one JSON line each:

  posterior_size   posterior.nc of each shipped analysis that has a cached fit under
                   reports/ (or of --fit SPEC, fitted here), against the 50 MB target
  bernoulli_800    a bernoulli with 800 name levels and 8,000 rows (collapsed to name x
                   covariate cells): fit seconds, against the 60 s target
  default_8llm     the shipped default model on the full simulated 8-LLM study: prepare
                   (patterns), fit, posterior size
  report_8llm      the same study fitted and reported (every stage of `biasstats report`, its
                   sensitivity model left out), in a fresh folder: against the 2-minute target
  cold_report      `biasstats report analyses/*.toml --jobs auto` into a fresh folder (no
                   cached posterior; the compile cache as it is): wall time and the peak RSS
                   of one process, against the 5-minute target

    python tests/benchmarks/bench_honest.py [--only bernoulli_800] [--fit analyses/x.toml]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def line(**kw) -> None:
    print(json.dumps(kw), flush=True)


def posterior_sizes(fit_spec_path: str | None) -> None:
    paths = sorted((ROOT / "reports").glob("*/posterior.nc"))
    if fit_spec_path:
        from biasstats.inference.from_spec import fit_spec
        from biasstats.ingest import ingest
        from biasstats.spec import load_spec

        spec = load_spec(fit_spec_path)
        out = Path(tempfile.mkdtemp()) / spec.name
        t0 = time.perf_counter()
        outcome = fit_spec(spec, ingest(spec).table, out, progress=False)
        line(bench="fit", analysis=spec.name, seconds=round(time.perf_counter() - t0, 1),
             timings=outcome.fit.timings)
        paths.append(outcome.path)
    for p in paths:
        mb = p.stat().st_size / 2**20
        line(bench="posterior_size", file=str(p), mb=round(mb, 2), target_mb=50, ok=mb <= 50)


def bernoulli_800(seed: int = 1) -> None:
    import numpy as np
    import polars as pl
    from scipy.special import expit

    from biasstats.inference import fit

    rng = np.random.default_rng(seed)
    name = rng.integers(0, 800, 8000)
    x = rng.integers(0, 2, 8000)
    eta = -0.3 + 0.5 * x + rng.normal(0, 0.7, 800)[name]
    df = pl.DataFrame({"name": [f"n{i:03d}" for i in name], "x": x.astype(float),
                       "y": (rng.random(8000) < expit(eta)).astype(int)})
    t0 = time.perf_counter()
    f = fit("y ~ 1 + x + (1|name)", df, chains=4, draws=1000, seed=seed, progress=False)
    s = time.perf_counter() - t0
    d = f.diagnostics()
    line(bench="bernoulli_800", rows=8000, cells=len(f.spec.y), seconds=round(s, 1),
         target_s=60, ok=s <= 60, divergences=d["divergences"],
         min_ess_bulk=round(d["min_ess_bulk"]), max_rhat=round(d["max_rhat"], 4),
         target_accept=f.settings["target_accept"], centred=f.settings["centered"])


def default_8llm() -> None:
    from biasstats.inference.convergence import convergence_gate
    from biasstats.inference.from_spec import fit_spec, model_data
    from biasstats.ingest import ingest
    from biasstats.spec import load_spec

    spec = load_spec(ROOT / "analyses" / "simulated_8llm.toml")
    t0 = time.perf_counter()
    ing = ingest(spec)
    t1 = time.perf_counter()
    out = Path(tempfile.mkdtemp()) / spec.name
    outcome = fit_spec(spec, ing.table, out, progress=False)
    t2 = time.perf_counter()
    f = outcome.fit
    d = f.diagnostics()
    gate = convergence_gate(d)
    line(bench="default_8llm", trials=model_data(spec, ing.table).height,
         patterns=len(f.spec.y), ingest_s=round(t1 - t0, 1), fit_s=round(t2 - t1, 1),
         target_s=120, timings=f.timings, posterior_mb=round(outcome.path.stat().st_size / 2**20, 2),
         gate_passed=gate.passed, failures=list(gate.failures),
         min_ess_bulk_per_s=round(d.get("min_ess_bulk_per_s", 0.0), 2),
         attempts=f.settings.get("attempts"))


def report_8llm() -> None:
    from biasstats.run import run_analysis
    from biasstats.spec import load_spec

    spec = load_spec(ROOT / "analyses" / "simulated_8llm.toml")
    checks = spec.content.checks.model_copy(update={"sensitivity": []})
    spec = type(spec)(path=spec.path, text=spec.text,
                      content=spec.content.model_copy(update={"checks": checks}))
    t0 = time.perf_counter()
    o = run_analysis(spec, Path(tempfile.mkdtemp()), progress=False)
    s = time.perf_counter() - t0
    line(bench="report_8llm", seconds=round(s, 1), target_s=120, ok=s <= 120,
         gate_passed=o.gate_passed, stages={k: round(v, 1) for k, v in o.stages})


def cold_report() -> None:
    specs = sorted(str(p) for p in (ROOT / "analyses").glob("*.toml"))
    out = Path(tempfile.mkdtemp()) / "reports"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "biasstats", "report", *specs, "--out", str(out),
                        "--jobs", "auto"], capture_output=True, text=True)
    s = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    line(bench="cold_report", analyses=len(specs), seconds=round(s, 1), target_s=300,
         ok=s <= 300 and r.returncode == 0, exit_code=r.returncode,
         peak_rss_gb_one_process=round(rss, 2),
         built=sum(x.startswith("built") for x in r.stdout.splitlines()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["posterior_size", "bernoulli_800", "default_8llm",
                                       "report_8llm", "cold_report"])
    ap.add_argument("--fit", help="also fit this spec and report its posterior size")
    a = ap.parse_args(argv)
    if a.only in (None, "posterior_size"):
        posterior_sizes(a.fit)
    if a.only in (None, "bernoulli_800"):
        bernoulli_800()
    if a.only in (None, "default_8llm"):
        default_8llm()
    if a.only in (None, "report_8llm"):
        report_8llm()
    if a.only in (None, "cold_report"):
        cold_report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
