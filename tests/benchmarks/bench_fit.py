"""Benchmark: biasstats vs Bambi on the Bai-shaped simulated study, in one run.

    nox -s bench                    # full size: 8 LLMs x 21 stereotypes x 4 variants x 50 trials
    python tests/benchmarks/bench_fit.py --trials 10 --bambi-rows-limit 60

Contestants (each in its own process, so peak memory is its own):
  biasstats            the canonical bias model with default settings
  bambi_counts_tuned   Bambi's best shot: aggregated binomial counts, (1|stereotype) with labels
                       unique across categories, noncentered=False, nutpie low-rank mass matrix
  bambi_counts         Bambi as a user would call it on counts: its defaults, nutpie
  bambi_rows           Bambi on the trial rows with its default sampler, capped by a time limit
                       (reported as a lower bound on wall time when it does not finish)

With ``--model default`` the contest is the shipped default model of analyses/simulated_8llm.toml
(a logit-normal binomial per reply, (1|llm:stereotype), sigma varying by LLM):
  biasstats_default    biasstats on that spec (trial patterns, sufficient statistics)
  bambi_default        Bambi's nearest model (Bambi has no logit-normal binomial; its binomial
                       with a per-reply (1|reply) term has one sigma for all LLMs and 33,600
                       latent effects): the beta-binomial per reply, p(k, n) ~ ... with
                       kappa ~ 1 + (1|llm), one row per reply, noncentered=False, nutpie
                       low-rank

Printed: wall time (model build + compile + sampling), min bulk ESS over every parameter,
ESS/s, divergences, peak RSS, and ratios against biasstats. Timings are noisy: compare ratios
from one run, never absolute seconds across machines.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

FORMULA = "congruent ~ 1 + (1|llm) + (1|category/stereotype) + (1|variant)"


def _study(seed: int, trials: int):
    from biasstats.studies.bai2024.simulate import simulate_bai_study

    t = simulate_bai_study(seed, trials=trials).table
    return t.filter(t["status"] == "ok")


def _counts(table):
    import polars as pl

    keys = ["llm", "category", "stereotype", "variant"]
    return table.group_by(keys).agg(
        pl.col("congruent").sum().cast(pl.Int64).alias("k"), pl.len().cast(pl.Int64).alias("n")
    ).sort(keys).to_pandas()


def _min_ess(posterior) -> float:
    import arviz_stats as azs
    import numpy as np

    ess = azs.ess(posterior, method="bulk")
    vals = [np.nanmin(np.asarray(ess[v])) for v in ess.data_vars if np.asarray(ess[v]).size]
    return float(min(vals))


def _divergences(idata) -> int:
    ss = idata["sample_stats"]
    return int(ss["diverging"].sum()) if "diverging" in ss else -1


def run_biasstats(table, chains, draws, seed):
    from biasstats.inference import fit

    t0 = time.perf_counter()
    f = fit(FORMULA, table, family="bernoulli", chains=chains, draws=draws, tune=draws, seed=seed,
            progress=False)
    wall = time.perf_counter() - t0
    post = f.idata["posterior"].to_dataset()
    return wall, _min_ess(post), _divergences(f.idata)


def _bambi_fit(data, formula, family, chains, draws, seed, tuned, method):
    import bambi as bmb

    model = bmb.Model(formula, data, family=family, noncentered=not tuned)
    kw = {"nuts": {"adaptation": "low_rank"}} if tuned and method == "nutpie" else {}
    idata = model.fit(draws=draws, tune=draws, chains=chains, random_seed=seed,
                      inference_method=method, progressbar=False, **kw)
    post = idata["posterior"].to_dataset()
    keep = [v for v in post.data_vars if not v.endswith("_mean") and v != "p"]
    return _min_ess(post[keep]), _divergences(idata)


def run_bambi_counts(table, chains, draws, seed, tuned):
    data = _counts(table)
    data["stereotype"] = data["category"] + ":" + data["stereotype"]  # unique labels
    formula = "p(k, n) ~ 1 + (1|llm) + (1|category) + (1|stereotype) + (1|variant)"
    t0 = time.perf_counter()
    ess, div = _bambi_fit(data, formula, "binomial", chains, draws, seed, tuned, "nutpie")
    return time.perf_counter() - t0, ess, div


def run_bambi_rows(table, chains, draws, seed):
    data = table.select("congruent", "llm", "category", "stereotype", "variant").to_pandas()
    data["stereotype"] = data["category"] + ":" + data["stereotype"]
    formula = "congruent ~ 1 + (1|llm) + (1|category) + (1|stereotype) + (1|variant)"
    t0 = time.perf_counter()
    ess, div = _bambi_fit(data, formula, "bernoulli", chains, draws, seed, False, "pymc")
    return time.perf_counter() - t0, ess, div


DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "analyses" / "simulated_8llm.toml"
DEFAULT_TERMS = "1 + (1|llm) + (1|category/stereotype) + (1|llm:stereotype) + (1|variant)"


def _default_trials(seed: int, trials: int):
    """(spec, one row per reply: k, n, llm, category, stereotype, variant) of the shipped
    default model's study, drawn with ``seed`` and ``trials`` per cell."""
    from biasstats.inference.from_spec import model_data
    from biasstats.ingest import ingest
    from biasstats.spec import load_spec

    spec = load_spec(DEFAULT_SPEC)
    sim = spec.content.simulate.model_copy(update={"seed": seed, "trials": trials})
    spec = type(spec)(path=spec.path, content=spec.content.model_copy(update={"simulate": sim}),
                      text=spec.text)
    return spec, model_data(spec, ingest(spec).table)


def run_biasstats_default(seed, trials, chains, draws):
    from biasstats.inference import fit_prepared
    from biasstats.model.build import prepare

    spec, data = _default_trials(seed, trials)
    m = spec.model
    t0 = time.perf_counter()
    prepared = prepare(m.formula, data, m.family, dict(m.priors), dict(m.centered),
                       aux=dict(m.aux))
    settings = spec.fit.model_copy(update={"chains": chains, "draws": draws, "tune": draws,
                                           "seed": seed})
    f = fit_prepared(prepared, settings, progress=False)
    wall = time.perf_counter() - t0
    print("biasstats_default attempts:", json.dumps(
        [{k: at[k] for k in ("change", "passed", "failures", "sampling_s")}
         for at in f.settings.get("attempts", [])]), "steps per draw",
        round(float(f.idata["sample_stats"]["n_steps"].mean()), 1), flush=True)
    post = f.idata["posterior"].to_dataset()
    keep = [v for v in post.data_vars if not str(v).startswith(("z_", "u_"))]
    return wall, _min_ess(post[keep]), _divergences(f.idata), data.height


def run_bambi_default(seed, trials, chains, draws):
    import bambi as bmb

    _, data = _default_trials(seed, trials)
    df = data.select("k", "n", "llm", "category", "stereotype", "variant").to_pandas()
    df["stereotype"] = df["category"] + ":" + df["stereotype"]   # unique labels
    df["llm_stereotype"] = df["llm"] + ":" + df["stereotype"]
    t0 = time.perf_counter()
    formula = bmb.Formula("p(k, n) ~ 1 + (1|llm) + (1|category) + (1|stereotype) "
                          "+ (1|llm_stereotype) + (1|variant)", "kappa ~ 1 + (1|llm)")
    model = bmb.Model(formula, df, family="beta_binomial", noncentered=False)
    idata = model.fit(draws=draws, tune=draws, chains=chains, random_seed=seed,
                      inference_method="nutpie", progressbar=False,
                      nuts={"adaptation": "low_rank", "target_accept": 0.95})
    wall = time.perf_counter() - t0
    post = idata["posterior"].to_dataset()
    keep = [v for v in post.data_vars if not v.endswith("_mean") and v not in ("p", "mu")
            and post[v].ndim <= 3 and "__obs__" not in post[v].dims]
    return wall, _min_ess(post[keep]), _divergences(idata), df.shape[0]


def _child(name, args, out_path):
    c, d, s = args["chains"], args["draws"], args["seed"]
    if name in ("biasstats_default", "bambi_default"):
        fn = run_biasstats_default if name == "biasstats_default" else run_bambi_default
        wall, ess, div, rows = fn(s, args["trials"], c, d)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        Path(out_path).write_text(json.dumps({"wall_s": wall, "min_ess_bulk": ess,
                                              "divergences": div, "peak_mb": rss,
                                              "rows": rows}))
        return
    table = _study(args["seed"], args["trials"])
    runners = {
        "biasstats": lambda: run_biasstats(table, c, d, s),
        "bambi_counts_tuned": lambda: run_bambi_counts(table, c, d, s, tuned=True),
        "bambi_counts": lambda: run_bambi_counts(table, c, d, s, tuned=False),
        "bambi_rows": lambda: run_bambi_rows(table, c, d, s),
    }
    wall, ess, div = runners[name]()
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    Path(out_path).write_text(json.dumps(
        {"wall_s": wall, "min_ess_bulk": ess, "divergences": div, "peak_mb": rss, "rows": table.height}
    ))


def measure(name, args, limit_s):
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        p = ctx.Process(target=_child, args=(name, args, str(out)))
        t0 = time.perf_counter()
        p.start()
        p.join(limit_s)
        if p.is_alive():
            p.terminate()
            p.join()
            return {"name": name, "wall_s": time.perf_counter() - t0, "timed_out": True}
        if not out.exists():
            return {"name": name, "failed": f"exit code {p.exitcode}"}
        return {"name": name, **json.loads(out.read_text())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bambi-rows-limit", type=float, default=900, help="seconds (0 = skip)")
    ap.add_argument("--limit", type=float, default=1800, help="seconds per other contestant")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--model", choices=["additive", "default"], default="additive",
                    help="additive: the judgement-level model; default: the shipped default "
                    "trial-level model of analyses/simulated_8llm.toml")
    a = ap.parse_args(argv)
    args = {"trials": a.trials, "chains": a.chains, "draws": a.draws, "seed": a.seed}
    names = (["biasstats_default", "bambi_default"] if a.model == "default"
             else ["biasstats", "bambi_counts_tuned", "bambi_counts"])
    results = [measure(n, args, a.limit) for n in names]
    if a.bambi_rows_limit > 0 and a.model == "additive":
        results.append(measure("bambi_rows", args, a.bambi_rows_limit))
    base = results[0]
    print(f"\nBai-shaped study ({a.model} model): {a.trials} trials/cell, {a.chains} chains x "
          f"{a.draws} draws")
    print(f"{'contestant':<20}{'wall s':>10}{'min ESS':>10}{'ESS/s':>9}{'div':>6}{'peak MB':>9}"
          f"{'ESS/s ratio':>13}")
    for r in results:
        if r.get("timed_out"):
            # had it finished at the limit, its least-mixing parameter would have had an ESS of
            # at most about its number of draws: a lower bound on the ratio
            best = a.chains * a.draws / r["wall_s"]
            r["ess_per_s_at_most"] = best
            bound = base.get("ess_per_s", base["min_ess_bulk"] / base["wall_s"]) / best
            print(f"{r['name']:<20}{'>' + format(r['wall_s'], '.0f'):>10}{'':>10}"
                  f"{'<' + format(best, '.1f'):>9}{'':>6}{'':>9}{'>' + format(bound, '.1f'):>12}x"
                  "  (time limit; ESS/s at most draws/limit)")
            continue
        if "failed" in r:
            print(f"{r['name']:<20}  failed: {r['failed']}")
            continue
        r["ess_per_s"] = r["min_ess_bulk"] / r["wall_s"]
        ratio = base.get("ess_per_s", base["min_ess_bulk"] / base["wall_s"]) / r["ess_per_s"]
        print(f"{r['name']:<20}{r['wall_s']:>10.1f}{r['min_ess_bulk']:>10.0f}{r['ess_per_s']:>9.1f}"
              f"{r['divergences']:>6}{r['peak_mb']:>9.0f}{ratio:>12.1f}x")
    print("(ratio = biasstats ESS/s divided by the contestant's)")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
