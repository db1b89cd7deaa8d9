"""The bench's models: each one a biasstats ``prepare()`` of simulated data, at three sizes.

    full    what ``nox -s bench`` measures
    quick   ``--quick``: smaller data, fewer draws (development)
    tiny    the port's tests (seconds)

Both contestants start from the same :class:`~biasstats.model.build.ModelSpec` (biasstats
samples it, :mod:`numpyro_port` writes the same posterior in NumPyro), and both read their
draws with :func:`estimands`, so the ESS and the agreement check are over the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = ROOT / "analyses" / "simulated_8llm.toml"
ADDITIVE = "congruent ~ 1 + (1|llm) + (1|category/stereotype) + (1|variant)"
MODELS = ("additive", "default", "tokens", "categorical", "bernoulli4")
SIZES = ("full", "quick", "tiny")


@dataclass
class Bench:
    name: str
    what: str          # one line: formula, family, rows
    spec: object       # ModelSpec
    tune: int
    draws: int
    rows: int          # data rows before any collapse (judgements, trials, replies)


def _draws(size: str, tune: int = 1000, draws: int = 1000) -> tuple[int, int]:
    return {"full": (tune, draws), "quick": (300, 300), "tiny": (100, 100)}[size]


def additive(size: str, seed: int = 1) -> Bench:
    """The judgement-level additive model of the Bai-shaped study (bernoulli, collapsed to
    llm x stereotype x variant binomial cells; nested category/stereotype with its basis)."""
    from biasstats.model.build import prepare
    from biasstats.studies.bai2024.simulate import simulate_bai_study

    trials = {"full": 50, "quick": 10, "tiny": 2}[size]
    t = simulate_bai_study(seed, trials=trials).table
    t = t.filter(t["status"] == "ok")
    spec = prepare(ADDITIVE, t, "bernoulli")
    return Bench("additive", f"{ADDITIVE} (bernoulli; {t.height:,} judgements -> "
                 f"{len(spec.y)} binomial cells)", spec, *_draws(size), t.height)


def default(size: str, seed: int = 1) -> Bench:
    """The shipped default model of analyses/simulated_8llm.toml (logit-normal binomial per
    reply, sufficient statistics per covariate cell, sigma ~ llm), with its [fit] tune/draws."""
    from biasstats.inference.from_spec import model_data
    from biasstats.ingest import ingest
    from biasstats.model.build import prepare
    from biasstats.model.sufficient import count_stats
    from biasstats.spec import load_spec

    spec = load_spec(DEFAULT_SPEC)
    trials = {"full": spec.content.simulate.trials, "quick": 10, "tiny": 2}[size]
    sim = spec.content.simulate.model_copy(update={"seed": seed, "trials": trials})
    spec = type(spec)(path=spec.path, content=spec.content.model_copy(update={"simulate": sim}),
                      text=spec.text)
    data = model_data(spec, ingest(spec).table)
    m = spec.model
    prepared = prepare(m.formula, data, m.family, dict(m.priors), dict(m.centered),
                       aux=dict(m.aux))
    cells = len(count_stats(prepared).rows)
    return Bench("default", f"{m.formula} (logitnormal_binomial, sigma {m.aux['sigma']}; "
                 f"{data.height:,} replies -> {len(prepared.y):,} patterns, {cells:,} "
                 "covariate cells)", prepared, *_draws(size, spec.fit.tune, spec.fit.draws),
                 data.height)


def tokens(size: str, seed: int = 1) -> Bench:
    """A per-test gaussian of the reasoning-token shape: tokens ~ 0 + test:cond + (1|prompt),
    sigma ~ test (20 tests x 2 conditions, 30 prompts per test, 25 replies per prompt and
    condition: 30,000 rows, ~665 parameters)."""
    import polars as pl

    from biasstats.model.build import prepare

    n_test, n_prompt, reps = {"full": (20, 30, 25), "quick": (20, 30, 5),
                              "tiny": (4, 5, 4)}[size]
    rng = np.random.default_rng(seed)
    test = np.repeat(np.arange(n_test), n_prompt * 2 * reps)
    prompt = np.repeat(np.arange(n_test * n_prompt), 2 * reps)
    cond = np.tile(np.repeat([0, 1], reps), n_test * n_prompt)
    base = rng.normal(600, 150, n_test)
    effect = rng.normal(40, 30, n_test)
    u = rng.normal(0, 60, n_test * n_prompt)
    sig = np.exp(rng.normal(np.log(120), 0.3, n_test))
    y = base[test] + effect[test] * cond + u[prompt] + rng.normal(0, sig[test])
    df = pl.DataFrame({"tokens": y, "test": [f"t{i:02d}" for i in test],
                       "cond": np.where(cond == 1, "treated", "control"),
                       "prompt": [f"p{i:03d}" for i in prompt]})
    formula = "tokens ~ 0 + test:cond + (1|prompt)"
    spec = prepare(formula, df, "gaussian", aux={"sigma": "~ test"})
    return Bench("tokens", f"{formula} (gaussian, sigma ~ test; {df.height:,} rows)", spec,
                 *_draws(size), df.height)


def categorical(size: str, seed: int = 1) -> Bench:
    """A categorical model: choice (4 options) ~ 1 + cond + (1|prompt), 100 prompts x 3
    conditions x 20 replies (6,000 rows, ~315 parameters)."""
    import polars as pl

    from biasstats.model.build import prepare

    n_prompt, reps = {"full": (100, 20), "quick": (40, 10), "tiny": (10, 5)}[size]
    rng = np.random.default_rng(seed)
    prompt = np.repeat(np.arange(n_prompt), 3 * reps)
    cond = np.tile(np.repeat(np.arange(3), reps), n_prompt)
    icpt = np.array([0.3, -0.2, -0.6])
    b = rng.normal(0, 0.5, (3, 3))
    b[0] = 0
    u = rng.normal(0, 0.6, (n_prompt, 3))
    eta = icpt + b[cond] + u[prompt]
    logits = np.concatenate([np.zeros((len(cond), 1)), eta], axis=1)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    choice = (p.cumsum(axis=1) < rng.random((len(cond), 1))).sum(axis=1)
    df = pl.DataFrame({"choice": np.array(["A", "B", "C", "D"])[np.minimum(choice, 3)],
                       "cond": [f"c{i}" for i in cond], "prompt": [f"p{i:03d}" for i in prompt]})
    formula = "choice ~ 1 + cond + (1|prompt)"
    spec = prepare(formula, df, "categorical")
    return Bench("categorical", f"{formula} (categorical, 4 options; {df.height:,} rows)", spec,
                 *_draws(size), df.height)


def bernoulli4(size: str, seed: int = 1) -> Bench:
    """A 4-parameter bernoulli: y ~ 1 + x1 + x2 + x3, continuous x (2,000 rows)."""
    import polars as pl
    from scipy.special import expit

    from biasstats.model.build import prepare

    n = {"full": 2000, "quick": 500, "tiny": 200}[size]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (rng.random(n) < expit(-0.4 + x @ np.array([0.8, -0.5, 0.2]))).astype(int)
    df = pl.DataFrame({"y": y, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2]})
    formula = "y ~ 1 + x1 + x2 + x3"
    spec = prepare(formula, df, "bernoulli")
    return Bench("bernoulli4", f"{formula} (bernoulli; {n:,} rows)", spec, *_draws(size), n)


BUILDERS = {"additive": additive, "default": default, "tokens": tokens,
            "categorical": categorical, "bernoulli4": bernoulli4}


def build(name: str, size: str, seed: int = 1) -> Bench:
    return BUILDERS[name](size, seed)


# ----------------------------------------------------------------------------- estimands
def cell_rows(spec) -> np.ndarray:
    """One row of ``spec`` per distinct linear predictor (covariate cell): a sufficient-
    statistic model's covariate cells, else the distinct rows of (X, group indices, Z)."""
    from biasstats.model.sufficient import count_stats

    st = count_stats(spec)
    if st is not None:
        return np.asarray(st.rows)
    cols = [np.asarray(spec.X, dtype=float)]
    for g in spec.groups:
        cols += [g.idx[:, None].astype(float), np.asarray(g.Z, dtype=float)]
    key = np.hstack(cols) if cols else np.zeros((len(spec.y), 1))
    _, first = np.unique(key, axis=0, return_index=True)
    return np.sort(first)


def estimands(post: dict[str, np.ndarray], spec) -> dict[str, np.ndarray]:
    """The common estimands of a posterior given as ``{name: (chain, draw, ...)}`` with
    biasstats' names: the intercept(s), fixed slopes, every ``sd_*``, every level effect
    ``r_*``, the auxiliary parameters, and the linear predictor of every covariate cell
    (biasstats' own ``eta_from`` on both sides). Each as (chain, draw, k)."""
    import xarray as xr

    from biasstats.inference.predict import eta_from, group_draws
    from biasstats.model.design import rows_of

    C, D = next(iter(post.values())).shape[:2]
    out: dict[str, np.ndarray] = {}
    fam = spec.family
    names = ["Intercept", "b"]
    names += sorted(k for k in post if k.startswith(("sd_", "r_")) and not k.startswith("r_raw"))
    for k in fam.aux:
        if k in spec.aux:
            names += [f"{k}_Intercept", f"{k}_b"]
        else:
            names.append(k)
    for k in names:
        if k in post:
            out[k] = np.asarray(post[k], dtype=float).reshape(C, D, -1)
    ds = xr.Dataset({k: (("chain", "draw", *[f"{k}_{i}" for i in range(np.ndim(v) - 2)]),
                         np.asarray(v, dtype=float)) for k, v in post.items()
                     if k in ("Intercept", "b") or k.startswith("r_")})
    sub = rows_of(spec, cell_rows(spec))
    X = sub.X if spec.fixed_names else np.zeros((len(sub.y), 0))
    eta = eta_from(ds, sub, X, [(group_draws(ds, g), g.idx, g.Z) for g in sub.groups])
    out["eta"] = eta.reshape(C, D, -1)
    return out


def summary(est: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per component (all estimands concatenated): bulk ESS, mean, sd, MCSE of the mean,
    kurtosis (for the standard error of the sd)."""
    from arviz_stats.base import array_stats

    a = np.concatenate([v for v in est.values()], axis=2)    # (chain, draw, k)
    arr = np.moveaxis(a, 2, 0)                                # (k, chain, draw)
    ess = np.asarray(array_stats.ess(arr, chain_axis=-2, draw_axis=-1, method="bulk"))
    mcse = np.asarray(array_stats.mcse(arr, chain_axis=-2, draw_axis=-1, method="mean"))
    labels = [f"{k}[{i}]" for k, v in est.items() for i in range(v.shape[2])]
    m, sd = a.mean(axis=(0, 1)), a.std(axis=(0, 1))
    kurt = (((a - m) / np.maximum(sd, 1e-300)) ** 4).mean(axis=(0, 1))
    return {"labels": np.array(labels), "ess": ess, "mean": m, "sd": sd, "mcse": mcse,
            "kurt": kurt}
