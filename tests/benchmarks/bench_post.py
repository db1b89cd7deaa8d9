"""A report's post-processing by stage, against its fit: ``biasstats report`` of one analysis
twice in fresh processes, first fitting (``--refit``) and then from the cached posterior;
each stage of the cached run in seconds and as a ratio to the fit (compile + sampling, an
automatic refit's first attempt included), with wall time and peak RSS of both runs.

    python tests/benchmarks/bench_post.py [analyses/simulated_qa.toml] [--out DIR] [--runs 2]

Stages: loading the cached posterior (with what is derived from the draws), effects and
estimands, checks (PPC, LOO, LOO-PIT), figures (drawn and saved), tables and page.
One JSON line per run, then the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIT_STAGES = ("compile", "sample", "first attempt (refitted)", "log-likelihood", "predictive")

CHILD = """
import json, resource, sys, time
from biasstats.run.analysis import run_analysis
t0 = time.perf_counter()
o = run_analysis(sys.argv[1], sys.argv[2], refit=sys.argv[3] == "1", progress=False)
print(json.dumps({"wall_s": time.perf_counter() - t0, "status": o.status, "message": o.message,
                  "stages": dict(o.stages),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(spec: str, out: str, refit: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    load = os.getloadavg()[0]
    p = subprocess.run([sys.executable, "-c", CHILD, spec, out, "1" if refit else "0"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"report failed:\n{p.stderr[-2000:]}")
    row = json.loads(p.stdout.strip().splitlines()[-1])
    row["load"] = load
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", nargs="?", default=str(ROOT / "analyses" / "simulated_qa.toml"))
    ap.add_argument("--out", default=None, help="reports folder (default: a temporary one)")
    ap.add_argument("--runs", type=int, default=2, help="cached runs (the best is shown)")
    a = ap.parse_args(argv)
    out = a.out or tempfile.mkdtemp(prefix="bench_post_")
    fitted = run(a.spec, out, refit=True)
    print(json.dumps({"run": "fit", **fitted}), flush=True)
    cached = []
    for i in range(a.runs):
        cached.append(run(a.spec, out, refit=False))
        print(json.dumps({"run": f"cached {i + 1}", **cached[-1]}), flush=True)
    best = min(cached, key=lambda r: r["wall_s"])
    fit_s = sum(fitted["stages"].get(k, 0.0) for k in FIT_STAGES[:3])
    print(f"\n{Path(a.spec).name}: fit {fit_s:.1f} s (compile + sampling), wall {fitted['wall_s']:.1f}"
          f" s, peak {fitted['peak_mb']:.0f} MB; cached report (best of {a.runs}) wall "
          f"{best['wall_s']:.1f} s, peak {best['peak_mb']:.0f} MB, load {best['load']:.1f}")
    print(f"{'stage':<28}{'seconds':>9}{'/ fit':>8}")
    for k, v in best["stages"].items():
        print(f"{k:<28}{v:>9.2f}{v / fit_s if fit_s else float('nan'):>8.2f}")
    post = sum(v for k, v in best["stages"].items() if k != "ingest")
    print(f"{'post-processing':<28}{post:>9.2f}{post / fit_s if fit_s else float('nan'):>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
