"""Bench: a [sweep] of small analyses on a Dask LocalCluster of 1 vs 2 workers.

A sweep over ``--members`` simulated LLMs (one trials.csv each, 3 prompts × 3 categories,
``--rows`` rows), each a bernoulli model with two varying intercepts fitted with 2 chains
× ``--draws``. A first pass compiles every member's model (so both timed runs load them from
the compile cache, as a rerun of a leaderboard does), then the sweep is built with
``--scheduler local:1`` and ``local:2`` into fresh folders (no posterior cache). Prints one
JSON line per run (wall seconds, the analyses' own stage seconds summed, the machine's load, peak RSS of the whole process tree and of the largest
worker) and the ratio.

    python tests/benchmarks/bench_sweep.py [--members 6] [--rows 2000] [--draws 500]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

SPEC = """[sweep]
llm = "runs/*/"
[data]
source = "runs/{{llm}}/trials.csv"
[data.columns]
variant = "prompt"
category = "category"
congruent = "answer"
[model]
formula = "congruent ~ 1 + (1|variant) + (1|category)"
[fit]
chains = 2
tune = {draws}
draws = {draws}
seed = 7
refit = false
[checks]
allow_failure = true
"""


def make_study(folder: Path, members: int, rows: int, draws: int) -> Path:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(11)
    for i in range(members):
        d = folder / "runs" / f"llm{i:02d}"
        d.mkdir(parents=True)
        v, c = rng.integers(0, 3, rows), rng.integers(0, 3, rows)
        eta = -0.5 + 0.2 * i + np.array([-0.3, 0, 0.3])[v] + np.array([-0.6, 0, 0.6])[c]
        pl.DataFrame({"prompt": np.array(["p1", "p2", "p3"])[v],
                      "category": np.array(["c1", "c2", "c3"])[c],
                      "answer": (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(int)}
                     ).write_csv(d / "trials.csv")
    spec = folder / "board.toml"
    spec.write_text(SPEC.format(draws=draws))
    return spec


class PeakRSS:
    """Peak resident memory of this process and its descendants (the nannies and workers),
    sampled every 0.2 s: the total and the largest single process."""

    def __init__(self):
        import psutil

        self.me, self.total, self.largest = psutil.Process(), 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            rss = []
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    rss.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            self.total, self.largest = max(self.total, sum(rss)), max(self.largest, *rss)
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=6)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--draws", type=int, default=500)
    args = ap.parse_args()

    from biasstats.run import build_reports

    root = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    spec = make_study(root, args.members, args.rows, args.draws)
    t0 = time.perf_counter()
    build_reports([spec], root / "warmup", scheduler="local:2")  # compiles every member
    print(json.dumps({"bench": "sweep_warmup", "members": args.members,
                      "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    wall = {}
    for workers in (1, 2):
        with PeakRSS() as rss:
            t0 = time.perf_counter()
            outcomes = build_reports([spec], root / f"workers{workers}",
                                     scheduler=f"local:{workers}")
            wall[workers] = time.perf_counter() - t0
        assert all(o.status == "built" for o in outcomes)
        # the analyses' own stages (ingest ... figures): wall time minus this is the cluster's
        # start (worker processes importing biasstats) and the scheduling
        work = sum(t for o in outcomes for _, t in o.stages)
        print(json.dumps({"bench": "sweep", "workers": workers, "members": args.members,
                          "rows": args.rows, "draws": args.draws,
                          "seconds": round(wall[workers], 1),
                          "analysis_stage_seconds_sum": round(work, 1),
                          "load_average_1min": round(os.getloadavg()[0], 1),
                          "peak_rss_total_mib": round(rss.total / 2**20),
                          "peak_rss_largest_process_mib": round(rss.largest / 2**20)}),
              flush=True)
    print(json.dumps({"bench": "sweep_ratio", "seconds_1_over_2_workers":
                      round(wall[1] / wall[2], 2)}), flush=True)


if __name__ == "__main__":
    main()
