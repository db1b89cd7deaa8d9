"""Benchmark: biasstats against NumPyro (and Bambi) on the same models and data, in one run.

    nox -s bench                                   # every model, full size
    python tests/benchmarks/bench_fit.py --quick --models additive,bernoulli4

Models (tests/benchmarks/bench_models.py): the judgement-level additive model of the
Bai-shaped study, the shipped default logit-normal model (analyses/simulated_8llm.toml), a
per-test gaussian of the reasoning-token shape, a categorical model and a 4-parameter
bernoulli. Each model is one biasstats ``prepare()``; both contestants start from it.

Contestants, each run in its own process (its peak RSS its own), twice with one compile cache
folder that starts empty: "cold" (empty cache) then "warm" (the same model compiled again by a
new process, its cache filled by the cold run):
  biasstats           ``fit_prepared`` with its defaults (nutpie; backend, target_accept and
                      mass matrix chosen automatically); cache: PyTensor's compiledir (its
                      numba cache), NUMBA_CACHE_DIR and BIASSTATS_CACHE (biasstats' compiled
                      models, JAX's cache) in the folder
  numpyro_<mass>      NumPyro NUTS on the same posterior (tests/benchmarks/numpyro_port.py:
                      the same arrays, priors, zero-sum/basis and centring choices,
                      target_accept, warm-up and draws), float64, 4 chains over 2 host
                      devices (pmap over the devices, each device running its chains in
                      turn: both cores busy, no lock-step), dense or diagonal mass matrix;
                      cache: JAX's persistent compilation cache in the folder
  bambi               (additive model only; skipped with --skip-bambi or when Bambi is not
                      installed) Bambi on the same binomial cells, noncentered=False, nutpie
                      low-rank: other priors and no zero-sum constraint, so its ESS is over
                      the sd_* and the cell linear predictors only, and it is not checked for
                      agreement

Measured per run: compile (everything from the prepared arrays to a sampler ready to draw:
biasstats' PyMC model build and nutpie compile; NumPyro's JAX tracing, lowering and XLA
compile or cache load, taken from JAX's own compile events), sampling (warm-up + draws, the
rest of the sampler's wall time), post-processing (biasstats' log-likelihood and posterior
predictive; none on the other side), divergences, leapfrog steps per draw, peak RSS. Data
preparation (``prepare()``) is the same for both and is not timed against either.

ESS is the minimum bulk ESS over the common estimands, computed from each posterior's draws
the same way (bench_models.estimands): the intercept(s), fixed slopes, every sd_*, every level
effect r_*, the auxiliary parameters and the linear predictor of every covariate cell.
ESS/s: compile + sampling (cold run; warm run), and sampling only (mean of the two runs).

Agreement with biasstats: every common estimand's posterior mean within 4 combined Monte
Carlo standard errors + 2% of its posterior SD, and its posterior SD within 4 combined
standard errors of an SD (relative sqrt((kurtosis - 1) / (4 ESS)), each side) + 3%.

Printed: a table per model, the ratios biasstats / NumPyro-best (each metric's best
configuration), and one JSON line per model (``BENCH {...}``) for machines.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(ROOT)):  # this checkout's biasstats first
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_models import MODELS, build, estimands, summary  # noqa: E402

JAX_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                      "/jax/core/compile/jaxpr_to_mlir_module_duration",
                      "/jax/core/compile/backend_compile_duration")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _union(spans, lo, hi) -> float:
    """Seconds covered by the union of (start, end) spans, clipped to [lo, hi]."""
    total, end = 0.0, lo
    for s, e in sorted((max(s, lo), min(e, hi)) for s, e in spans):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


# ----------------------------------------------------------------------------- contestants
def child_biasstats(job) -> dict:
    import numpy as np

    from biasstats.inference import fit_prepared, fit_settings

    t0 = time.perf_counter()
    b = build(job["model"], job["size"], job["seed"])
    prep = time.perf_counter() - t0
    settings = fit_settings(chains=job["chains"], tune=b.tune, draws=b.draws, seed=job["seed"])
    t1 = time.perf_counter()
    f = fit_prepared(b.spec, settings, progress=False)
    total = time.perf_counter() - t1
    tm = f.timings
    post_s = tm.get("log_likelihood_s", 0.0) + tm.get("predictive_s", 0.0)
    sampling = tm["sampling_s"] - tm.get("compile_s", 0.0)
    rss = _rss_mb()
    ss = f.idata["sample_stats"]
    posterior = f.idata["posterior"].to_dataset()
    est = estimands({k: np.asarray(v.values) for k, v in posterior.data_vars.items()}, b.spec)
    np.savez(job["npz"], **est)
    return {"prep_s": prep, "compile_s": total - sampling - post_s, "sampling_s": sampling,
            "post_s": post_s, "nutpie_compile_s": tm.get("compile_s"),
            "divergences": int(ss["diverging"].sum()),
            "steps_per_draw": float(ss["n_steps"].mean()), "peak_mb": rss,
            "target_accept": f.settings["target_accept"], "mass": f.settings["adaptation"],
            "backend": f.settings["backend"], "compile_cache": tm.get("compile_cache"),
            "what": b.what, "tune": b.tune, "draws": b.draws}


def over_devices(n_dev: int, n_chains: int):
    """A NumPyro ``chain_method``: the chains split over ``n_dev`` host devices (pmap), each
    device running its share one after another (lax.map), so every core is busy and no chain
    waits for another's tree (vmap would run a device's chains in lock-step)."""
    import jax

    def method(f):
        def run(args):
            split = jax.tree.map(lambda x: x.reshape((n_dev, n_chains // n_dev) + x.shape[1:]),
                                 args)
            out = jax.pmap(lambda a: jax.lax.map(f, a))(split)
            return jax.tree.map(lambda x: x.reshape((n_chains,) + x.shape[2:]), out)
        return run
    return method


def child_numpyro(job) -> dict:
    import numpyro

    numpyro.set_host_device_count(job["devices"])
    numpyro.enable_x64()
    import jax
    import numpy as np
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_compilation_cache_dir", str(Path(job["cache"]) / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    spans: list[tuple[float, float]] = []

    def listen(event, start, end, **_kw):
        if event in JAX_COMPILE_EVENTS:
            spans.append((start, end))

    jax.monitoring.register_event_time_span_listener(listen)
    from numpyro_port import model_and_data

    from biasstats.inference.sample import auto_target_accept

    t0 = time.perf_counter()
    b = build(job["model"], job["size"], job["seed"])
    model, data = model_and_data(b.spec)
    target_accept = auto_target_accept(b.spec)[0]
    prep = time.perf_counter() - t0
    chains, dev = job["chains"], job["devices"]
    method = (over_devices(dev, chains) if dev > 1 and chains % dev == 0 and chains > 1
              else "sequential")
    kernel = NUTS(model, target_accept_prob=target_accept, dense_mass=job["mass"] == "dense",
                  max_tree_depth=10)
    mcmc = MCMC(kernel, num_warmup=b.tune, num_samples=b.draws, num_chains=chains,
                chain_method=method, progress_bar=False)
    w0, p0 = time.time(), time.perf_counter()
    mcmc.run(jax.random.PRNGKey(job["seed"]), extra_fields=("diverging", "num_steps"), **data)
    samples = jax.device_get(mcmc.get_samples(group_by_chain=True))
    extra = jax.device_get(mcmc.get_extra_fields(group_by_chain=True))
    total, w1 = time.perf_counter() - p0, time.time()
    compile_s = _union(spans, w0, w1)
    rss = _rss_mb()
    est = estimands({k: np.asarray(v) for k, v in samples.items()}, b.spec)
    np.savez(job["npz"], **est)
    return {"prep_s": prep, "compile_s": compile_s, "sampling_s": total - compile_s,
            "post_s": 0.0, "divergences": int(np.sum(extra["diverging"])),
            "steps_per_draw": float(np.mean(extra["num_steps"])), "peak_mb": rss,
            "target_accept": target_accept, "mass": job["mass"], "what": b.what,
            "tune": b.tune, "draws": b.draws, "devices": dev}


def child_bambi(job) -> dict:
    import bambi as bmb
    import numpy as np
    from scipy.special import logit

    from biasstats.inference.sample import _timed_compile

    t0 = time.perf_counter()
    b = build(job["model"], job["size"], job["seed"])
    df = b.spec.cells.to_pandas()            # biasstats' binomial cells, in its order
    df["stereotype"] = df["category"] + ":" + df["stereotype"]   # unique labels
    prep = time.perf_counter() - t0
    compile_s: list[float] = []
    t1 = time.perf_counter()
    with _timed_compile(compile_s):
        m = bmb.Model("p(k, n) ~ 1 + (1|llm) + (1|category) + (1|stereotype) + (1|variant)",
                      df, family="binomial", noncentered=False)
        t_model = time.perf_counter() - t1
        idata = m.fit(draws=b.draws, tune=b.tune, chains=job["chains"],
                      random_seed=job["seed"], inference_method="nutpie", progressbar=False,
                      nuts={"adaptation": "low_rank",
                            "target_accept": job.get("target_accept", 0.8)})
    total = time.perf_counter() - t1
    rss = _rss_mb()
    comp = t_model + sum(compile_s)
    m.predict(idata, kind="response_params", inplace=True)
    post = idata["posterior"].to_dataset()
    est = {f"sd_{n}": np.asarray(post[f"1|{src}_sigma"].values).reshape(
        post.sizes["chain"], post.sizes["draw"], -1)
        for n, src in (("llm", "llm"), ("category", "category"),
                       ("category:stereotype", "stereotype"), ("variant", "variant"))}
    est["eta"] = logit(np.asarray(post["p"].values))
    np.savez(job["npz"], **est)
    ss = idata["sample_stats"]
    return {"prep_s": prep, "compile_s": comp, "sampling_s": total - comp, "post_s": 0.0,
            "divergences": int(ss["diverging"].sum()),
            "steps_per_draw": float(ss["n_steps"].mean()), "peak_mb": rss, "mass": "low_rank",
            "what": b.what, "tune": b.tune, "draws": b.draws}


CHILDREN = {"biasstats": child_biasstats, "numpyro": child_numpyro, "bambi": child_bambi}


# ----------------------------------------------------------------------------- the parent
def run_child(job: dict, limit: float) -> dict:
    """Run one contestant in a new process with its compile caches in ``job['cache']``."""
    cache = Path(job["cache"])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
             if f and not f.startswith(("base_compiledir", "compiledir"))]
    env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={cache / 'pytensor'}"])
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    env["BIASSTATS_CACHE"] = str(cache / "biasstats")  # its compiled models (and JAX's cache)
    out = Path(job["npz"]).with_suffix(".json")
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, __file__, "--child", json.dumps(job), str(out)],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"failed": f"time limit {limit:.0f} s", "wall_s": time.perf_counter() - t0}
    if r.returncode != 0 or not out.exists():
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return {"failed": f"exit code {r.returncode}: {' | '.join(tail)}",
                "wall_s": time.perf_counter() - t0}
    return {**json.loads(out.read_text()), "wall_s": time.perf_counter() - t0}


def _agreement(ref: dict, other: dict) -> dict:
    import numpy as np

    same = [i for i, lab in enumerate(other["labels"]) if lab in set(ref["labels"])]
    pos = {lab: i for i, lab in enumerate(ref["labels"])}
    j = np.array([pos[other["labels"][i]] for i in same])
    i = np.array(same)
    d = np.abs(ref["mean"][j] - other["mean"][i])
    se = np.sqrt(ref["mcse"][j] ** 2 + other["mcse"][i] ** 2)
    sd_ref = np.maximum(ref["sd"][j], 1e-12)
    z = d / np.maximum(se, 1e-12)
    mean_ok = d <= 4 * se + 0.02 * sd_ref
    ratio = other["sd"][i] / sd_ref
    # relative standard error of a sample sd: sqrt((kurtosis - 1) / (4 ESS)), each side
    sd_se = np.sqrt((np.maximum(ref["kurt"][j], 1.5) - 1) / (4 * ref["ess"][j])
                    + (np.maximum(other["kurt"][i], 1.5) - 1) / (4 * other["ess"][i]))
    sd_ok = np.abs(ratio - 1) <= 4 * sd_se + 0.03
    worst = int(np.argmax(z))
    return {"estimands": int(len(i)), "agree": bool(mean_ok.all() and sd_ok.all()),
            "mean_fail": int((~mean_ok).sum()), "sd_fail": int((~sd_ok).sum()),
            "worst_z": float(z[worst]), "worst": str(ref["labels"][j[worst]]),
            "sd_ratio": [float(ratio.min()), float(ratio.max())],
            "off": [str(ref["labels"][j[k]]) for k in np.flatnonzero(~(mean_ok & sd_ok))[:5]]}


def _same_draws(a: str, b: str) -> bool | None:
    import numpy as np

    if not (Path(a).exists() and Path(b).exists()):
        return None
    x, y = np.load(a), np.load(b)
    return set(x.files) == set(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)


def _fmt(v, spec=".1f", width=8):
    return f"{'-' if v is None else format(v, spec):>{width}}"


def bench_model(model: str, a, contestants: list[tuple[str, dict]], tmp: Path, step: list) -> dict:
    import numpy as np

    size = "quick" if a.quick else "full"
    rows = []
    for name, extra in contestants:
        cache = tmp / model / name
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        runs = {}
        for phase in ("cold", "warm"):
            step[0] += 1
            job = {"kind": name.split("_")[0], "model": model, "size": size, "seed": a.seed,
                   "chains": a.chains, "cache": str(cache), "npz": str(cache / f"{phase}.npz"),
                   **extra}
            print(f"[{step[0]}/{step[1]} {time.strftime('%H:%M:%S')}] {model}: {name} "
                  f"{phase} ...", end=" ", flush=True)
            r = run_child(job, a.limit)
            runs[phase] = r
            if "failed" in r:
                print(f"failed ({r['failed']})", flush=True)
                break
            print(f"{r['wall_s']:.0f} s (compile {r['compile_s']:.1f}, sampling "
                  f"{r['sampling_s']:.1f}, post {r['post_s']:.1f}; {r['divergences']} div, "
                  f"{r['steps_per_draw']:.1f} steps/draw"
                  + (f"; {r['backend']}, {r['compile_cache']}" if r.get("backend") else "")
                  + ")", flush=True)
        row = {"name": name, "cold": runs.get("cold"), "warm": runs.get("warm")}
        if "failed" not in runs["cold"]:
            row["summary"] = summary(dict(np.load(cache / "cold.npz")))
            if "warm" in runs and "failed" not in runs["warm"]:
                same = _same_draws(str(cache / "cold.npz"), str(cache / "warm.npz"))
                row["warm_same_draws"] = same
                row["summary_warm"] = (row["summary"] if same
                                       else summary(dict(np.load(cache / "warm.npz"))))
        rows.append(row)
    return _report(model, a, rows)


def _report(model: str, a, rows: list[dict]) -> dict:
    ok = [r for r in rows if "summary" in r]
    ref = next((r for r in ok if r["name"] == "biasstats"), None)
    what = next((r["cold"]["what"] for r in ok), model)
    first = ok[0]["cold"] if ok else {}
    print(f"\n== {model}: {what}; {a.chains} chains x ({first.get('tune')} warm-up + "
          f"{first.get('draws')} draws)" if ok else f"\n== {model}: no run finished")
    print(f"{'contestant':<16}{'compile s':>18}{'sampling s':>16}{'post s':>8}{'min ESS':>9}"
          f"{'ESS/s cold':>11}{'ESS/s warm':>11}{'ESS/s samp':>11}{'div':>5}{'steps':>7}"
          f"{'peak MB':>9}  agreement")
    print(f"{'':<16}{'cold':>9}{'warm':>9}{'cold':>8}{'warm':>8}")
    out_rows = []
    for r in rows:
        c, w = r["cold"], r.get("warm") or {}
        if "summary" not in r:
            why = c.get("failed") or w.get("failed")
            bound = None
            if why.startswith("time limit"):
                # its least-mixing estimand would have had an ESS of at most about its number
                # of draws: an upper bound on its ESS/s
                bound = a.chains * first.get("draws", 1000) / c["wall_s"]
                why += f": ESS/s (compile+sampling) below {bound:.1f}"
            print(f"{r['name']:<16}  failed: {why}")
            out_rows.append({"name": r["name"], "failed": why, "ess_per_s_at_most": bound})
            continue
        s = r["summary"]
        ess = float(s["ess"].min())
        ess_w = float(r["summary_warm"]["ess"].min()) if "summary_warm" in r else None
        e_cold = ess / (c["compile_s"] + c["sampling_s"])
        e_warm = (ess_w / (w["compile_s"] + w["sampling_s"])) if ess_w else None
        samp = [x["sampling_s"] for x in (c, w) if x and "sampling_s" in x]
        e_samp = ess / (sum(samp) / len(samp))
        if ref is None or r is ref:
            agree = "reference" if r is ref else "-"
        elif r["name"] == "bambi":
            agree = "n/a (other priors)"
            r["agreement"] = None
        else:
            r["agreement"] = _agreement(ref["summary"], s)
            g = r["agreement"]
            agree = (f"{'yes' if g['agree'] else 'NO'} ({g['estimands']} estimands; worst "
                     f"|diff|/se {g['worst_z']:.1f} at {g['worst']}; sd ratio "
                     f"{g['sd_ratio'][0]:.2f}-{g['sd_ratio'][1]:.2f}"
                     + (f"; {g['mean_fail']} means, {g['sd_fail']} sds off: "
                        f"{', '.join(g['off'])}" if not g["agree"]
                        else "") + ")")
        print(f"{r['name']:<16}{_fmt(c['compile_s'], '.1f', 9)}{_fmt(w.get('compile_s'), '.1f', 9)}"
              f"{_fmt(c['sampling_s'], '.1f')}{_fmt(w.get('sampling_s'), '.1f')}"
              f"{_fmt(c['post_s'], '.1f')}{ess:>9.0f}{e_cold:>11.1f}{_fmt(e_warm, '.1f', 11)}"
              f"{e_samp:>11.1f}{c['divergences']:>5}{c['steps_per_draw']:>7.1f}"
              f"{c['peak_mb']:>9.0f}  {agree}")
        wi = s["labels"][int(s["ess"].argmin())]
        out_rows.append({
            "name": r["name"], "compile_cold_s": c["compile_s"], "compile_warm_s": w.get("compile_s"),
            "sampling_cold_s": c["sampling_s"], "sampling_warm_s": w.get("sampling_s"),
            "post_s": c["post_s"], "prep_s": c["prep_s"], "min_ess_bulk": ess,
            "min_ess_at": str(wi), "ess_per_s_cold": e_cold, "ess_per_s_warm": e_warm,
            "ess_per_s_sampling": e_samp, "divergences": c["divergences"],
            "divergences_warm": w.get("divergences"), "steps_per_draw": c["steps_per_draw"],
            "peak_mb": c["peak_mb"], "peak_mb_warm": w.get("peak_mb"),
            "target_accept": c.get("target_accept"), "mass": c.get("mass"),
            "backend": c.get("backend"),
            "warm_same_draws": r.get("warm_same_draws"), "agreement": r.get("agreement")})
    ratios = {}
    mine = next((x for x in out_rows if x["name"] == "biasstats" and "failed" not in x), None)
    theirs = [x for x in out_rows if x["name"].startswith("numpyro") and "failed" not in x]
    if mine and theirs:
        for key in ("ess_per_s_cold", "ess_per_s_warm", "ess_per_s_sampling"):
            vals = [x for x in theirs if x[key]]
            if mine[key] and vals:
                best = max(vals, key=lambda x: x[key])
                ratios[key] = {"ratio": mine[key] / best[key], "numpyro_best": best["name"]}
        labels = {"ess_per_s_cold": "compile+sampling, both cold",
                  "ess_per_s_warm": "compile+sampling, both warm",
                  "ess_per_s_sampling": "sampling only"}
        print("biasstats / NumPyro-best ESS/s: " + "; ".join(
            f"{labels[k]} {v['ratio']:.2f}x ({v['numpyro_best']})" for k, v in ratios.items()))
        print(f"(issue 22 target: >= 1.5x cold and warm; compile s = model build + compile; "
              f"min ESS at {mine['min_ess_at']} for biasstats)")
    line = {"bench": "fit", "model": model, "what": what, "size": "quick" if a.quick else "full",
            "chains": a.chains, "rows": out_rows, "ratios": ratios}
    print("BENCH " + json.dumps(line), flush=True)
    return line


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--quick", action="store_true", help="smaller data, 300 + 300 draws")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--devices", type=int, default=2, help="NumPyro's host devices")
    ap.add_argument("--mass", default="dense,diag", help="NumPyro configurations")
    ap.add_argument("--skip-bambi", action="store_true")
    ap.add_argument("--skip-numpyro", action="store_true")
    ap.add_argument("--limit", type=float, default=3600, help="seconds per run")
    ap.add_argument("--json", help="also write every model's line here (a JSON list)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        job = json.loads(a.child[0])
        res = CHILDREN[job["kind"]](job)
        Path(a.child[1]).write_text(json.dumps(res))
        return 0
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(MODELS)}")
    import importlib.util

    have = {m: importlib.util.find_spec(m) is not None for m in ("numpyro", "bambi")}
    if not have["numpyro"] and not a.skip_numpyro:
        print("NumPyro is not installed: pip install numpyro jax (or --skip-numpyro)")
        return 2
    contest: dict[str, list[tuple[str, dict]]] = {}
    for m in models:
        c = [("biasstats", {})]
        if not a.skip_numpyro:
            c += [(f"numpyro_{mass}", {"mass": mass, "devices": a.devices})
                  for mass in a.mass.split(",")]
        if m == "additive" and not a.skip_bambi and have["bambi"]:
            c.append(("bambi", {}))
        contest[m] = c
    if not a.skip_bambi and not have["bambi"]:
        print("(Bambi is not installed: its contestant is skipped)")
    step = [0, 2 * sum(len(c) for c in contest.values())]
    print(f"bench: {', '.join(models)} ({'quick' if a.quick else 'full'} size), {a.chains} "
          f"chains, {os.cpu_count()} cores; {step[1]} runs, each its own process", flush=True)
    lines = []
    with tempfile.TemporaryDirectory(prefix="biasstats-bench-") as tmp:
        for m in models:
            lines.append(bench_model(m, a, contest[m], Path(tmp), step))
    if a.json:
        Path(a.json).write_text(json.dumps(lines, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
