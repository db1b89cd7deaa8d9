"""A simulated Bai et al. (2024)-shaped study, calibrated to the published figures.

8 LLMs × 4 categories × 21 stereotypes × prompt variants × trials × 16 word judgements
(8 positive, 8 negative). Generative model, per judgement::

    congruent ~ Bernoulli(logistic(eta[llm, stereotype] + v[variant] + u[trial]))
    u[trial]  ~ Normal(0, sigma[llm])           # whole replies lean together
    v[variant] ~ Normal(0, variant_sd)          # prompt wording
    a trial is refused with probability refusal_rate (one 'refused' row, no judgements)

``eta`` and ``sigma`` come from ``data/sim_bai2024_calibration.csv`` (made by
``data/make_calibration.py`` from the per-model × stereotype means and 95% intervals read off
the paper's figure): for each LLM, ``sigma`` is chosen so the simulated spread of D across
trials matches the published intervals, then each cell's ``eta`` so that E[D] matches its mean.
The published means count refused/unparseable trials as D = 0; the calibration treats them as
means over scored trials (the refusal share per cell is not published for the implicit task).
The refusal rate is therefore an assumption (default 2%), not calibrated.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import expit

from biasstats.errors import SpecError
from biasstats.simulate import SimulatedStudy
from biasstats.spec.schema import MAX_SEED, MAX_SIM_ROWS

CATEGORY_OF = {
    "racism": "race", "guilt": "race", "skintone": "race", "weapon": "race", "black": "race",
    "hispanic": "race", "asian": "race", "arab": "race", "english": "race",
    "career": "gender", "science": "gender", "power": "gender", "sexuality": "gender",
    "islam": "religion", "judaism": "religion", "buddhism": "religion",
    "disability": "health", "weight": "health", "age": "health", "mentalill": "health",
    "eating": "health",
}
VARIANTS = ("replication", "instruction1", "instruction2", "synonym")
N_POS = N_NEG = 8
N_LLMS = 8                       # LLMs in the calibration table
N_STEREOTYPES = len(CATEGORY_OF)  # 21
CALIBRATION_FILE = "sim_bai2024_calibration.csv"


def calibration_path() -> Path:
    """The calibration table: in the source tree's data/, else packaged with the wheel."""
    src = Path(__file__).resolve().parents[3] / "data" / CALIBRATION_FILE
    if src.is_file():
        return src
    return Path(str(resources.files("biasstats") / "_data" / CALIBRATION_FILE))


def load_calibration(path: str | Path | None = None) -> pl.DataFrame:
    return pl.read_csv(path or calibration_path())


def simulate_bai_study(
    seed: int = 0,
    *,
    trials: int = 50,
    variants: tuple[str, ...] = VARIANTS,
    variant_sd: float = 0.15,
    refusal_rate: float = 0.02,
    llms: tuple[str, ...] | None = None,
    calibration: pl.DataFrame | None = None,
) -> SimulatedStudy:
    """Draw one simulated study. The same seed gives the same table, row for row.

    At most ``[simulate] max_rows``'s ceiling (:data:`biasstats.spec.schema.MAX_SIM_ROWS`)
    judgements are drawn, and the seed must be in 0 ... 2**32 - 1 (one-line SpecError)."""

    if not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise SpecError(f"simulation seed {seed!r}: expected an integer from 0 to {MAX_SEED}")
    cal = calibration if calibration is not None else load_calibration()
    if llms is not None:
        cal = cal.filter(pl.col("llm").is_in(list(llms)))
    rows = cal.height * len(variants) * trials * (N_POS + N_NEG)
    if trials < 1 or rows > MAX_SIM_ROWS:
        raise SpecError(f"simulation of {trials} trials would make {rows} judgements; expected "
                        f"1 to {MAX_SIM_ROWS} (lower trials)")
    rng = np.random.default_rng(seed)
    v_eff = rng.normal(0.0, variant_sd, size=len(variants))
    cells = cal.sort(["llm", "stereotype"])
    n_cells, n_var = cells.height, len(variants)
    shape = (n_cells, n_var, trials)
    u = rng.normal(0.0, 1.0, size=shape) * cells["sigma"].to_numpy()[:, None, None]
    eta = cells["eta"].to_numpy()[:, None, None] + v_eff[None, :, None] + u
    p = expit(eta)
    judged = rng.random(shape + (N_POS + N_NEG,)) < p[..., None]
    refused = rng.random(shape) < refusal_rate

    ci, vi, ti = (a.ravel() for a in np.meshgrid(
        np.arange(n_cells), np.arange(n_var), np.arange(trials), indexing="ij"))
    trial_frame = pl.DataFrame({
        "llm": cells["llm"].to_numpy()[ci],
        "category": cells["category"].to_numpy()[ci],
        "stereotype": cells["stereotype"].to_numpy()[ci],
        "variant": np.asarray(variants)[vi],
        "trial": ti.astype(np.int64),
        "refused": refused.ravel(),
    }).with_row_index("source_row").with_columns(pl.col("source_row").cast(pl.Int64))

    words = [f"pos{i + 1}" for i in range(N_POS)] + [f"neg{i + 1}" for i in range(N_NEG)]
    flat = judged.reshape(-1, N_POS + N_NEG)
    ok = trial_frame.filter(~pl.col("refused"))
    ok_idx = ok["source_row"].to_numpy()
    judgements = ok.select(pl.exclude("refused")).join(
        pl.DataFrame({"item": words, "valence": ["positive"] * N_POS + ["negative"] * N_NEG}),
        how="cross",
    ).with_columns(
        pl.Series("congruent", flat[ok_idx].ravel().astype(np.float64)),
        pl.lit("ok").alias("status"),
        pl.lit(None, dtype=pl.Utf8).alias("reason"),
    )
    refusals = trial_frame.filter(pl.col("refused")).select(pl.exclude("refused")).with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("item"),
        pl.lit(None, dtype=pl.Utf8).alias("valence"),
        pl.lit(None, dtype=pl.Float64).alias("congruent"),
        pl.lit("refused").alias("status"),
        pl.lit("simulated refusal").alias("reason"),
    )
    table = pl.concat([judgements, refusals]).sort(["source_row", "item"], nulls_last=True)
    truth = {
        "generator": "biasstats.studies.bai2024.simulate",
        "seed": seed,
        "trials": trials,
        "variants": dict(zip(variants, map(float, v_eff), strict=False)),
        "variant_sd": variant_sd,
        "refusal_rate": refusal_rate,
        "cells": [
            {"llm": r["llm"], "stereotype": r["stereotype"], "eta": r["eta"], "sigma": r["sigma"]}
            for r in cells.iter_rows(named=True)
        ],
    }
    return SimulatedStudy(table=table, truth=truth)


def preset(sim) -> SimulatedStudy:
    """``[simulate] preset = "bai2024"``: :func:`simulate_bai_study` with the spec's settings."""
    study = simulate_bai_study(
        sim.seed,
        trials=sim.trials,
        variants=tuple(sim.variants),
        variant_sd=sim.variant_sd,
        refusal_rate=sim.refusal_rate,
        llms=tuple(sim.llms) if sim.llms else None,
    )
    return SimulatedStudy(study.table, study.truth, sources=(calibration_path(),))


def reduced_bai_design(llms: int = 4, stereotypes_per_category: int = 2, variants: int = 2,
                       trials: int = 10, seed: int = 0) -> pl.DataFrame:
    """A reduced Bai et al.-shaped design (covariates only, one row per word judgement):
    ``llms`` LLMs x 4 categories x ``stereotypes_per_category`` stereotypes x ``variants``
    prompt variants x ``trials`` trials x 16 judgements, taken from the calibrated simulator."""
    cal = load_calibration()
    names = sorted(cal["llm"].unique().to_list())[:llms]
    by_cat: dict[str, list[str]] = {}
    for s, c in CATEGORY_OF.items():
        by_cat.setdefault(c, []).append(s)
    keep = [s for c in sorted(by_cat) for s in by_cat[c][:stereotypes_per_category]]
    rows = [(m, CATEGORY_OF[s], s, v, t, w)
            for m in names for s in keep for v in VARIANTS[:variants]
            for t in range(trials) for w in range(16)]
    return pl.DataFrame(rows, schema=["llm", "category", "stereotype", "variant", "trial",
                                      "item"], orient="row").with_columns(pl.col("item").cast(pl.Utf8))
