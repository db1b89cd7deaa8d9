"""Validation of the simulated CV-rating design of issue 26 (too slow for a test: ~5-7 min of
sampling per attempt at the shipped 2,000 draws on 2 cores): per replication, the shipped
analysis fitted with its automatic refit plan (no hints), each attempt's cause, change and
gate verdict, and whether the 90% intervals of the E[rating] contrasts between names (n2…n7
− n1, averaged over the design's cells) cover the truth; then the coverage over every
replication, with its binomial SE and a replication (cluster) SE (the 6 contrasts of a fit
share its draws). One JSON line per replication, then the summary line.

    python tests/simulate/rating_coverage.py --seeds 1 2 3 4 5 6 7 8 9 10 [--draws 2000]

(``nox -s validate_rating``.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from test_rating_design import FORMULA, rating_contrasts  # noqa: E402


def one(seed: int, draws: int, prob: float) -> dict:
    import polars as pl

    from biasstats.inference import fit_prepared, fit_settings
    from biasstats.inference.convergence import Thresholds
    from biasstats.model.build import prepare
    from biasstats.simulate.designs import cv_ratings

    table, truth = cv_ratings(seed=seed)
    spec = prepare(FORMULA, table.with_columns(pl.col("rating").cast(pl.Utf8)), "cumulative")
    t0 = time.perf_counter()
    fit = fit_prepared(spec, fit_settings(seed=seed, draws=draws), progress=False,
                       thresholds=Thresholds(),
                       on_attempt=lambda line: print(f"seed {seed}: {line}", file=sys.stderr,
                                                     flush=True))
    attempts = fit.settings["attempts"]
    cover = {}
    for k, (lo, hi) in rating_contrasts(fit, table, prob).items():
        t = truth[f"difference_rating:name:{k}"]
        cover[k] = {"low": round(float(lo), 4), "high": round(float(hi), 4),
                    "truth": round(float(t), 4), "covered": bool(lo <= t <= hi)}
    return {"seed": seed, "draws": draws, "passed": bool(attempts[-1]["passed"]),
            "attempts": len(attempts), "chains_kept": int(fit.idata["posterior"].sizes["chain"]),
            "seconds": round(time.perf_counter() - t0, 1),
            "steps": [{k: a.get(k) for k in ("attempt", "cause", "action", "seed", "passed",
                                             "failures", "sampling_s", "target_accept")}
                      for a in attempts],
            "contrasts": cover}


def summary(rows: list[dict], prob: float) -> dict:
    per = np.array([np.mean([c["covered"] for c in r["contrasts"].values()]) for r in rows])
    n = sum(len(r["contrasts"]) for r in rows)
    covered = sum(c["covered"] for r in rows for c in r["contrasts"].values())
    p = covered / n
    return {"summary": True, "prob": prob, "replications": len(rows), "covered": covered,
            "contrasts": n, "coverage": round(p, 4),
            "binomial_se": round(float(np.sqrt(prob * (1 - prob) / n)), 4),
            "replication_se": round(float(per.std(ddof=1) / np.sqrt(len(per))), 4)
            if len(per) > 1 else None,
            "passed": sum(r["passed"] for r in rows),
            "attempts": [r["attempts"] for r in rows]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    ap.add_argument("--draws", type=int, default=2000, help="the shipped analysis' 2000")
    ap.add_argument("--prob", type=float, default=0.9)
    a = ap.parse_args(argv)
    rows = []
    for seed in a.seeds:
        rows.append(one(seed, a.draws, a.prob))
        print(json.dumps(rows[-1]), flush=True)
        print(json.dumps(summary(rows, a.prob)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
