"""Coverage of the shipped models on studies drawn from the calibrated simulator.

``python -m biasstats.studies.bai2024.validate`` (``nox -s validate``): for each seed, draw a study from
the ``[simulate]`` preset of ``analyses/simulated_8llm.toml`` (the simulator calibrated to the
published figures), fit the shipped default model and the judgement-level sensitivity model
(``analyses/simulated_8llm_judgement.toml``), and check the 50/90/95% HDIs of the bias
(2 P − 1, P = P(congruent)) per LLM, per stereotype and per LLM × stereotype cell against the
simulator's truth:

    P_cell = mean over the prompt variants of E_u[logistic(eta[llm, stereotype] + v + u)],
    u ~ Normal(0, sigma[llm])  (Gauss–Hermite, 40 nodes)

with the study's own variant effects ``v`` (truth.json), i.e. the marginal probability a reply
to that LLM and stereotype has, the estimand the effect tables report. Per-LLM and
per-stereotype truths average the cells over the balanced design (refusals remove ~2% of the
trials at random, which the fitted level means weight by; the difference is far below the
intervals' width).

Writes ``validation_levels.parquet`` (one row per seed × model × level × interval),
``validation_coverage.csv`` (pooled coverage with its binomial standard error, RMSE, mean
interval width, per model × term × nominal level) and ``validation_coverage.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from biasstats.inference import fit_prepared
from biasstats.inference.convergence import convergence_gate, thresholds_from
from biasstats.inference.from_spec import model_data
from biasstats.ingest import ingest
from biasstats.io import atomic_path, write_csv_atomic, write_parquet_atomic, write_text_atomic
from biasstats.model.build import prepare
from biasstats.spec import load_spec
from biasstats.studies.bai2024.effects import compute_effects

ROOT = Path(__file__).resolve().parents[3]  # the repository (analyses/, reports/)
MODELS = {"default": ROOT / "analyses" / "simulated_8llm.toml",
          "judgement": ROOT / "analyses" / "simulated_8llm_judgement.toml"}
TERMS = ("llm", "stereotype", "llm:stereotype")
PROBS = (0.5, 0.9, 0.95)


def true_bias(truth: dict) -> dict[str, dict[str, float]]:
    """Per term (llm, stereotype, llm:stereotype) and level, the true bias 2 P - 1."""
    # heavy libraries load on first use, not on import
    from scipy.special import expit

    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    v = np.array(list(truth["variants"].values()))
    cells = {}
    for c in truth["cells"]:
        z = c["eta"] + v[:, None] + c["sigma"] * x[None, :]
        cells[(c["llm"], c["stereotype"])] = float(np.mean(expit(z) @ w))
    out: dict[str, dict[str, float]] = {t: {} for t in TERMS}
    for (llm, st), p in cells.items():
        out["llm:stereotype"][f"{llm}:{st}"] = 2 * p - 1
    for i, term in enumerate(("llm", "stereotype")):
        keys = sorted({k[i] for k in cells})
        for key in keys:
            ps = [p for k, p in cells.items() if k[i] == key]
            out[term][key] = 2 * float(np.mean(ps)) - 1
    return out


def level_rows(fit, truth: dict[str, dict[str, float]], probs=PROBS) -> list[dict]:
    """Coverage rows of one fit: each term's levels, each interval."""

    rows = []
    for prob in probs:
        eff = compute_effects(fit, None, terms=("llm", "stereotype", ("llm", "stereotype")),
                              prob=prob).table
        eff = eff.filter(pl.col("scale") == "bias")
        for r in eff.iter_rows(named=True):
            t = truth.get(r["term"], {}).get(r["level"])
            if t is None:
                continue
            rows.append({"term": r["term"], "level": r["level"], "prob": prob, "truth": t,
                         "mean": r["mean"], "low": r["hdi_low"], "high": r["hdi_high"],
                         "covered": bool(r["hdi_low"] <= t <= r["hdi_high"])})
    return rows


def summarise(levels: pl.DataFrame) -> pl.DataFrame:
    """Pooled coverage (with its binomial SE at the nominal rate), RMSE of the posterior means
    and mean interval width, per model x term x nominal level."""
    return (levels.group_by(["model", "term", "prob"], maintain_order=True)
            .agg(pl.len().alias("n"), pl.col("covered").mean().alias("coverage"),
                 ((pl.col("mean") - pl.col("truth")) ** 2).mean().sqrt().alias("rmse"),
                 (pl.col("high") - pl.col("low")).mean().alias("width"))
            .with_columns(((pl.col("prob") * (1 - pl.col("prob")) / pl.col("n")).sqrt())
                          .alias("binomial_se"))
            .sort(["model", "term", "prob"]))


def figure(summary: pl.DataFrame, path: Path) -> Path:
    # heavy libraries load on first use, not on import
    import matplotlib

    matplotlib.use("Agg")
    # heavy libraries load on first use, not on import
    import matplotlib.pyplot as plt


    fig, axes = plt.subplots(1, len(TERMS), figsize=(9, 3.2), sharey=True)
    for ax, term in zip(axes, TERMS, strict=True):
        ax.plot([0.4, 1], [0.4, 1], color="0.6", lw=0.8, ls="--")
        for model, marker in zip(MODELS, "os", strict=False):
            d = summary.filter((pl.col("term") == term) & (pl.col("model") == model))
            if d.height:
                ax.errorbar(d["prob"], d["coverage"], yerr=2 * d["binomial_se"], marker=marker,
                            capsize=2, label=model, lw=1)
        ax.set_title(term)
        ax.set_xlabel("nominal")
    axes[0].set_ylabel("coverage of the HDI")
    axes[0].set_ylim(0, 1.02)
    axes[-1].legend(frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    plt.close(fig)
    return path


def validate(seeds, out: str | Path, *, trials: int | None = None, models=tuple(MODELS),
             chains: int | None = None, tune: int | None = None, draws: int | None = None,
             progress: bool | None = False) -> pl.DataFrame:
    """Fit ``models`` to one simulated study per seed; write and return the summary table."""

    out = Path(out)
    rows, runs = [], []
    for seed in seeds:
        for name in models:
            spec = load_spec(MODELS[name])
            sim = spec.content.simulate.model_copy(update={
                "seed": int(seed), **({"trials": trials} if trials else {})})
            fit_over = {k: v for k, v in (("chains", chains), ("tune", tune), ("draws", draws))
                        if v is not None}
            content = spec.content.model_copy(update={
                "simulate": sim, "fit": spec.fit.model_copy(update=fit_over)})
            spec = type(spec)(path=spec.path, content=content, text=spec.text)
            t0 = time.perf_counter()
            ing = ingest(spec)
            m = spec.model
            data = model_data(spec, ing.table)
            prepared = prepare(m.formula, data, m.family, dict(m.priors), dict(m.centered),
                               aux=dict(m.aux))
            fit = fit_prepared(prepared, spec.fit, progress,
                               thresholds=thresholds_from(spec.content.checks))
            gate = convergence_gate(fit.diagnostics(), thresholds_from(spec.content.checks))
            truth = true_bias(ing.truth)
            for r in level_rows(fit, truth):
                rows.append({"seed": int(seed), "model": name, **r})
            runs.append({"seed": int(seed), "model": name, "rows": data.height,
                         "observations": len(prepared.y), "gate_passed": gate.passed,
                         "failures": list(gate.failures),
                         "attempts": len(fit.settings.get("attempts", [])),
                         "attempt_failures": [a.get("failures", []) for a in
                                              fit.settings.get("attempts", [])],
                         "sampling_s": round(fit.timings.get("sampling_s", 0.0), 1),
                         "total_s": round(time.perf_counter() - t0, 1)})
            print(json.dumps(runs[-1]), flush=True)
            levels = pl.DataFrame(rows)
            write_parquet_atomic(out / "validation_levels.parquet", levels)
            write_text_atomic(out / "validation_runs.json", json.dumps(runs, indent=2) + "\n")
    summary = summarise(pl.DataFrame(rows))
    write_csv_atomic(out / "validation_coverage.csv", summary)
    figure(summary, out / "validation_coverage.png")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m biasstats.studies.bai2024.validate",
                                description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--trials", type=int, default=None,
                   help="trials per LLM x stereotype x variant cell (default: the spec's, 50)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--chains", type=int)
    p.add_argument("--tune", type=int)
    p.add_argument("--draws", type=int)
    p.add_argument("--out", default=str(ROOT / "reports" / "validation"))
    a = p.parse_args(argv)
    summary = validate(a.seeds, a.out, trials=a.trials, models=tuple(a.models), chains=a.chains,
                       tune=a.tune, draws=a.draws)
    with pl.Config(tbl_rows=-1, tbl_cols=-1):
        print(summary)
    print(f"wrote {Path(a.out) / 'validation_coverage.csv'} and validation_coverage.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
