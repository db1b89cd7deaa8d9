"""Simulation-based calibration of the Bai et al.-shaped canonical bias model on the study's
reduced design: the run behind ``nox -s sbc``.

    python -m biasstats.studies.bai2024.sbc --sims 200 --out reports/sbc
"""

from __future__ import annotations

import argparse
import sys

import polars as pl

from biasstats.checks.sbc import SBC_SETTINGS, run_sbc
from biasstats.report.sbc import plot_ecdf_difference
from biasstats.studies.bai2024.simulate import reduced_bai_design

__all__ = ["CANONICAL_FORMULA", "main"]

CANONICAL_FORMULA = "congruent ~ 1 + (1|llm) + (1|category/stereotype) + (1|variant)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m biasstats.studies.bai2024.sbc",
        description="Simulation-based calibration of the canonical bias model on a reduced "
                    "Bai et al.-shaped design; writes ranks, tests and an ECDF plot.")
    p.add_argument("--sims", type=int, default=200)
    p.add_argument("--out", default="reports/sbc")
    p.add_argument("--formula", default=CANONICAL_FORMULA)
    p.add_argument("--seed", type=int, default=20240204)
    p.add_argument("--draws", type=int, default=SBC_SETTINGS["draws"])
    p.add_argument("--tune", type=int, default=SBC_SETTINGS["tune"])
    p.add_argument("--chains", type=int, default=SBC_SETTINGS["chains"])
    p.add_argument("--target-accept", type=float, default=SBC_SETTINGS["target_accept"],
                   help="NUTS target acceptance (default: automatic per simulation, as in fit)")
    p.add_argument("--adaptation", default=SBC_SETTINGS["adaptation"],
                   choices=("diag", "low_rank"))
    p.add_argument("--llms", type=int, default=4)
    p.add_argument("--stereotypes-per-category", type=int, default=2)
    p.add_argument("--variants", type=int, default=2)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--centered", action="append", default=[], metavar="GROUP=true|false",
                   help="force the centring of a grouping (default: automatic, as in fit)")
    p.add_argument("--alpha", type=float, default=0.001,
                   help="fail (exit 1) if any per-parameter p-value is at or below this")
    a = p.parse_args(argv)
    design = reduced_bai_design(
        llms=a.llms, stereotypes_per_category=a.stereotypes_per_category, variants=a.variants,
        trials=a.trials)
    centered = {}
    for item in a.centered:
        k, _, v = item.partition("=")
        if v.lower() not in ("true", "false"):
            p.error(f"--centered {item}: expected GROUP=true or GROUP=false")
        centered[k] = v.lower() == "true"

    def progress(i, n):
        if i == n or i % max(1, n // 20) == 0:
            print(f"  simulation {i}/{n}", flush=True)

    print(f"SBC: {a.formula} on {design.height} judgements, {a.sims} simulations", flush=True)
    res = run_sbc(a.formula, design, "bernoulli", a.sims, draws=a.draws, chains=a.chains,
                  tune=a.tune, seed=a.seed, centered=centered or None,
                  target_accept=a.target_accept, adaptation=a.adaptation, on_sim=progress)
    paths = {**res.write(a.out), **plot_ecdf_difference(res, a.out)}
    with pl.Config(tbl_rows=200, tbl_width_chars=120):
        print(res.tests)
    t = res.timings
    print(f"compile {t['compile_s']:.1f} s ({t['compiled_variants']} variants), sampling "
          f"{t['sampling_s']:.1f} s, total {t['total_s']:.1f} s; min p = {res.min_p():.3g}")
    print("wrote " + ", ".join(str(v) for v in paths.values()))
    if not res.passed(a.alpha):
        print(f"SBC: some parameter has p <= {a.alpha} (see {paths['json']})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
