"""nutpie's mass-matrix adaptation, diagonal against low-rank, on the models above
:data:`biasstats.inference.sample.LOW_RANK_MAX_PARAMS` parameters (where the automatic rule
decides): min bulk ESS over the bench's common estimands (:func:`bench_models.estimands`),
sampling seconds (compile excluded), ESS per second, leapfrog steps per draw, divergences.
Each fit in its own process (one at a time); one JSON line per fit, then a table.

    python tests/benchmarks/bench_adaptation.py [--models tokens,bernoulli_800] [--size quick]
        [--draws 1000] [--seeds 1]

Models: ``tokens`` (bench_models.tokens: 660 parameters, per-test gaussian; its prompts'
effects are confounded with their test's condition means) and ``bernoulli_800`` (800 name
levels, 803 parameters, nearly independent levels: bench_honest.bernoulli_800's data).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from bench_models import build, estimands, summary  # noqa: E402


def bernoulli_800(size: str, seed: int):
    import numpy as np
    import polars as pl
    from scipy.special import expit

    from biasstats.model.build import prepare

    n = {"full": 8000, "quick": 8000, "tiny": 1600}[size]
    rng = np.random.default_rng(seed)
    name = rng.integers(0, 800, n)
    x = rng.integers(0, 2, n)
    eta = -0.3 + 0.5 * x + rng.normal(0, 0.7, 800)[name]
    df = pl.DataFrame({"name": [f"n{i:03d}" for i in name], "x": x.astype(float),
                       "y": (rng.random(n) < expit(eta)).astype(int)})
    return prepare("y ~ 1 + x + (1|name)", df, "bernoulli")


def child(job: dict, out) -> None:
    import numpy as np

    from biasstats.inference import fit_prepared, fit_settings

    if job["model"] == "bernoulli_800":
        spec = bernoulli_800(job["size"], job["seed"])
    else:
        spec = build(job["model"], job["size"], job["seed"]).spec
    settings = fit_settings(chains=4, tune=job["draws"], draws=job["draws"], seed=job["seed"],
                            adaptation=job["adaptation"])
    t0 = time.perf_counter()
    f = fit_prepared(spec, settings, progress=False, derive=False)
    wall = time.perf_counter() - t0
    tm = f.timings
    sampling = tm["sampling_s"] - tm.get("compile_s", 0.0)
    post = f.idata["posterior"].to_dataset()  # parameters: posterior components (roughly)
    est = estimands({k: np.asarray(v.values) for k, v in post.data_vars.items()}, spec)
    ess = float(np.min(summary(est)["ess"]))
    ss = f.idata["sample_stats"]
    out.put({**job, "parameters": sum(int(np.prod(v.shape[2:])) for v in post.data_vars.values()), "wall_s": round(wall, 1),
             "sampling_s": round(sampling, 1), "min_ess": round(ess),
             "ess_per_s": round(ess / sampling, 2),
             "steps": round(float(ss["n_steps"].mean()), 1),
             "divergences": int(ss["diverging"].sum())})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tokens,bernoulli_800")
    ap.add_argument("--size", default="quick", choices=("full", "quick", "tiny"))
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    a = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    rows = []
    for model in a.models.split(","):
        for seed in a.seeds:
            for adaptation in ("diag", "low_rank"):
                job = {"model": model, "size": a.size, "seed": seed, "draws": a.draws,
                       "adaptation": adaptation}
                q = ctx.Queue()
                p = ctx.Process(target=child, args=(job, q))
                p.start()
                row = q.get()
                p.join()
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(f"\n{'model':<14}{'seed':>5}{'mass':>10}{'params':>8}{'sampling s':>12}"
          f"{'min ESS':>9}{'ESS/s':>8}{'steps':>7}{'div':>5}")
    for r in rows:
        print(f"{r['model']:<14}{r['seed']:>5}{r['adaptation']:>10}{r['parameters'] or '':>8}"
              f"{r['sampling_s']:>12}{r['min_ess']:>9}{r['ess_per_s']:>8}{r['steps']:>7}"
              f"{r['divergences']:>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
