"""Regenerate data/sim_bai2024_calibration.csv from the digitized published figures.

    python data/make_calibration.py [--mirror DIR]

Reads bai2024/digitized_from_figures/digitized_implicit_by_model_stereotype.csv (means and 95%
intervals of the authors' D score per LLM × stereotype, 200 trials each) and solves, per LLM,
for the per-trial spread ``sigma`` and, per cell, the logit ``eta`` that reproduce them under
the generative model of biasstats.studies.bai2024.simulate. The output holds only derived parameters
and the targets they were fitted to.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import polars as pl

from biasstats.studies.bai2024.dscore_grid import moment_grid
from biasstats.studies.bai2024.simulate import CATEGORY_OF

HERE = Path(__file__).resolve().parent
ETAS = np.linspace(-6, 6, 241)
SIGMAS = np.linspace(0, 4, 33)
N_CELL = 200  # trials per LLM × stereotype cell in the paper (4 variants × 50)


def _invert(means_row: np.ndarray, target: float) -> float:
    """eta with E[D] = target on one sigma row (E[D] increases with eta)."""
    m = np.maximum.accumulate(means_row)
    target = float(np.clip(target, m[0] + 1e-6, m[-1] - 1e-6))
    return float(np.interp(target, m, ETAS))


def calibrate(digitized: pl.DataFrame) -> pl.DataFrame:
    means, sds = moment_grid(ETAS, SIGMAS, n_trials=4000, seed=20240204)
    d = digitized.with_columns(
        ((pl.col("hi") - pl.col("lo")) / 3.92 * np.sqrt(N_CELL)).alias("target_sd")
    )
    out = []
    for (_llm,), g in d.group_by("llm", maintain_order=True):
        best = None
        for i, _ in enumerate(SIGMAS):
            etas = np.array([_invert(means[i], m) for m in g["mean"]])
            pred_sd = np.interp(etas, ETAS, sds[i])
            err = float(np.sum((pred_sd - g["target_sd"].to_numpy()) ** 2))
            if best is None or err < best[0]:
                best = (err, i, etas)
        _, i, etas = best
        out.append(g.with_columns(
            pl.Series("eta", np.round(etas, 4)), pl.lit(round(float(SIGMAS[i]), 4)).alias("sigma")
        ))
    res = pl.concat(out).rename({"mean": "target_mean"})
    res = res.with_columns(pl.col("stereotype").replace_strict(CATEGORY_OF).alias("category"))
    return res.select(
        "llm", "category", "stereotype", "eta", "sigma", "target_mean",
        pl.col("target_sd").round(4),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("BIASSTATS_DATA", str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--mirror", default=default)
    args = ap.parse_args()
    src = Path(args.mirror) / "bai2024" / "digitized_from_figures" / "digitized_implicit_by_model_stereotype.csv"
    res = calibrate(pl.read_csv(src))
    res.write_csv(HERE / "sim_bai2024_calibration.csv")
    print(res.group_by("llm", maintain_order=True).agg(pl.col("sigma").first(), pl.col("eta").mean()))


if __name__ == "__main__":
    main()
