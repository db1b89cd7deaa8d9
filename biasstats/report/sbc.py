"""The figure of a simulation-based calibration run: ECDF difference of the normalised ranks
per variable, with the simultaneous band (:func:`plot_ecdf_difference`)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import polars as pl

from biasstats.checks.sbc import SBCResult
from biasstats.report.style import save_figure

__all__ = ["plot_ecdf_difference"]


def plot_ecdf_difference(result: SBCResult, folder: str | os.PathLike,
                         name: str = "sbc_ecdf", ci_prob: float = 0.95) -> dict[str, Path]:
    """ECDF difference (ECDF(u) - u) per variable, every element of a vector variable in one
    panel, with the simultaneous ``ci_prob`` band for that number of simulations."""
    # heavy libraries load on first use, not on import
    import matplotlib

    matplotlib.use("Agg")
    # heavy libraries load on first use, not on import
    import matplotlib.pyplot as plt
    from arviz_stats.ecdf_utils import compute_ecdf, ecdf_pit

    ranks = result.ranks
    variables = list(dict.fromkeys(p.split("[")[0] for p in ranks["parameter"].to_list()))
    ncol = min(3, len(variables))
    nrow = math.ceil(len(variables) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.0, 2.0 * nrow + 0.3), squeeze=False,
                             layout="constrained")
    rng = np.random.default_rng(214)
    pmin = dict(zip(result.tests["parameter"], np.minimum(result.tests["p_chisq"],
                                                          result.tests["p_ecdf"]), strict=True))
    grid = np.linspace(0.0, 1.0, 501)
    parameters = list(dict.fromkeys(ranks["parameter"].to_list()))
    n_of = dict(ranks.group_by("parameter").len().iter_rows())
    # the band depends only on n (the number of simulations, the same for every parameter of a
    # run_sbc result), so it is simulated once per distinct n rather than once per panel
    bands: dict[int, tuple] = {}
    for ax, var in zip(axes.ravel(), variables, strict=False):
        names = [p for p in parameters if p == var or p.startswith(var + "[")]
        n = n_of[names[0]]
        if n not in bands:
            bands[n] = ecdf_pit(rng.random(n), ci_prob, 1000, rng=rng)
        x, _, lo, hi = bands[n]
        ax.fill_between(x, lo - x, hi - x, step="post", color="#E69F00", alpha=0.25, lw=0)
        for p in names:
            u = ranks.filter(pl.col("parameter") == p)["u"].to_numpy()
            single = len(names) == 1
            ax.plot(grid, compute_ecdf(u, grid) - grid, lw=0.8,
                    color="0.2" if single else "#0072B2", alpha=1.0 if single else 0.5)
        ax.axhline(0, color="0.5", lw=0.5)
        worst = min(pmin[p] for p in names)
        ax.set_title(f"{var} (min p {worst:.2g})", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(variables):]:
        ax.set_visible(False)
    fig.supxlabel("normalised rank u", fontsize=8)
    fig.supylabel("ECDF(u) - u", fontsize=8)
    try:
        return save_figure(fig, folder, name, formats=("svg", "png"))
    finally:
        plt.close(fig)
