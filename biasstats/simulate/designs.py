"""Small simulated studies of other shapes than the IAT, each with its estimands' truth.

They are made the way such data are made (a condition effect on counts of reasoning tokens
with prompt-to-prompt variation; a ranking audit where one of the shown candidates is ranked
first; a refusal indicator by condition), so the estimands a report prints can be checked
against a known truth. Each returns ``(table, truth)`` where ``truth`` maps estimand names to
their true values *for this design* (conditional on the simulated prompts, names and
requests — the quantity the model's marginal means estimate).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import expit

__all__ = ["token_counts", "ranking_audit", "refusals", "gaussian_condition", "varying_slopes",
           "stratified_condition", "categorical_choice", "ordinal_rating", "cv_ratings"]


def token_counts(seed: int = 1, prompts: int = 24, reps: int = 20, alpha: float = 8.0,
                 base: float = 300.0, ratio: float = 1.25, sd_prompt: float = 0.25):
    """Reasoning tokens by association condition (negative binomial, log link).

    ``tokens ~ condition + (1|prompt)``: the incongruent condition multiplies the expected
    count by ``ratio``; prompts vary by ``sd_prompt`` on the log scale. Truth: the mean count
    per condition over this design's prompts, their difference and ratio."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, sd_prompt, prompts)
    r -= r.mean()
    rows = {"prompt": [], "condition": [], "tokens": []}
    mean = {}
    for cond, mult in (("congruent", 1.0), ("incongruent", ratio)):
        mu = base * mult * np.exp(r)
        mean[cond] = float(mu.mean())
        for p in range(prompts):
            y = rng.negative_binomial(alpha, alpha / (alpha + mu[p]), reps)
            rows["prompt"] += [f"p{p:02d}"] * reps
            rows["condition"] += [cond] * reps
            rows["tokens"] += y.tolist()
    truth = {"mean:condition:congruent": mean["congruent"],
             "mean:condition:incongruent": mean["incongruent"],
             "difference:condition:incongruent − congruent": mean["incongruent"] - mean["congruent"],
             "ratio:condition:incongruent − congruent": mean["incongruent"] / mean["congruent"]}
    return pl.DataFrame(rows), truth


def ranking_audit(seed: int = 1, groups=("A", "B", "C", "D"), names_per_group: int = 8,
                  requests: int = 400, shown_per_group: int = 2,
                  utility=(0.0, -0.2, -0.4, 0.3), sd_name: float = 0.3):
    """A résumé-ranking audit: each request shows ``shown_per_group`` names of every group and
    the model ranks one first (a softmax of group utility + name effect).

    One row per shown candidate: ``request``, ``name``, ``group``, ``top1`` (0/1). Truth: per
    group, the average over this design's shown candidates of that group of the true
    P(ranked first) — what ``top1 ~ 0 + group + (1|name)`` marginal means estimate — and its
    ratio to the best group."""
    rng = np.random.default_rng(seed)
    names = {g: [f"{g.lower()}{i}" for i in range(names_per_group)] for g in groups}
    r_name = {n: rng.normal(0.0, sd_name) for g in groups for n in names[g]}
    u_group = dict(zip(groups, utility, strict=True))
    rows = {"request": [], "name": [], "group": [], "top1": []}
    p_sum = dict.fromkeys(groups, 0.0)
    n_sum = dict.fromkeys(groups, 0)
    for q in range(requests):
        shown = [(g, n) for g in groups
                 for n in rng.choice(names[g], shown_per_group, replace=False)]
        u = np.array([u_group[g] + r_name[n] for g, n in shown])
        p = np.exp(u - u.max())
        p /= p.sum()
        first = rng.choice(len(shown), p=p)
        for i, (g, n) in enumerate(shown):
            rows["request"].append(f"q{q:04d}")
            rows["name"].append(str(n))
            rows["group"].append(g)
            rows["top1"].append(int(i == first))
            p_sum[g] += p[i]
            n_sum[g] += 1
    mean = {g: p_sum[g] / n_sum[g] for g in groups}
    truth = {f"mean:group:{g}": mean[g] for g in groups}
    best = max(mean, key=mean.get)
    truth.update({f"ratio_to_best:group:{g}": mean[g] / mean[best] for g in groups})
    truth["best"] = best
    return pl.DataFrame(rows), truth


def refusals(seed: int = 1, prompts: int = 30, reps: int = 25,
             rates=(("neutral", 0.08), ("sensitive", 0.20)), sd_prompt: float = 0.5):
    """A refusal indicator by condition (bernoulli, logit link), prompts varying.

    Truth: P(refusal) per condition averaged over this design's prompts, and the difference
    in percentage points."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, sd_prompt, prompts)
    r -= r.mean()
    rows = {"prompt": [], "condition": [], "refused": []}
    mean = {}
    for cond, rate in rates:
        p = expit(np.log(rate / (1 - rate)) + r)
        mean[cond] = float(p.mean())
        for i in range(prompts):
            rows["prompt"] += [f"p{i:02d}"] * reps
            rows["condition"] += [cond] * reps
            rows["refused"] += rng.binomial(1, p[i], reps).tolist()
    (a, _), (b, _) = rates
    truth = {f"mean:condition:{c}": v for c, v in mean.items()}
    truth[f"difference:condition:{b} − {a}"] = 100 * (mean[b] - mean[a])
    return pl.DataFrame(rows), truth


def gaussian_condition(seed: int = 1, prompts: int = 12, reps: int = 30, effect: float = 35.0,
                       sd_prompt: float = 20.0, sigma: float = 30.0, slope: float = 10.0,
                       x_seed: int | None = None):
    """``y ~ condition + x + (1|prompt)`` with a gaussian outcome. Truth: the condition
    difference (units) and the slope of x. ``x_seed``: draw x from its own seed, so
    replications (different ``seed``) share one design."""
    rng = np.random.default_rng(seed)
    rng_x = rng if x_seed is None else np.random.default_rng([x_seed, 17])
    r = rng.normal(0.0, sd_prompt, prompts)
    rows = {"prompt": [], "condition": [], "x": [], "y": []}
    for p in range(prompts):
        for cond, eff in (("control", 0.0), ("treated", effect)):
            x = rng_x.normal(size=reps)
            rows["prompt"] += [f"p{p:02d}"] * reps
            rows["condition"] += [cond] * reps
            rows["x"] += x.tolist()
            rows["y"] += (300 + eff + r[p] + slope * x + rng.normal(0, sigma, reps)).tolist()
    return pl.DataFrame(rows), {"difference:condition:treated − control": effect,
                                "slope:x:average": slope}


def stratified_condition(seed: int = 1, effects=(20.0, 35.0, 0.0, -10.0), prompts: int = 5,
                         reps: int = 8, sd_prompt: float = 20.0, sigma: float = 30.0):
    """``y ~ 0 + test:condition + (1|prompt)``: a condition effect of its own within each
    test (``effects``, in units), prompts nested in tests and crossed with the condition.
    Truth (the quantity the within-test marginal means estimate): each test's difference
    ``"difference:condition | test:treated − control@<test>"`` and their equal-weight average
    ``"...@average (equal weights)"``."""
    rng = np.random.default_rng(seed)
    rows = {"test": [], "prompt": [], "condition": [], "y": []}
    truth = {}
    for t, eff in enumerate(effects):
        test = f"t{t + 1}"
        r = rng.normal(0.0, sd_prompt, prompts)
        for p in range(prompts):
            for cond, e in (("control", 0.0), ("treated", eff)):
                rows["test"] += [test] * reps
                rows["prompt"] += [f"{test}p{p}"] * reps
                rows["condition"] += [cond] * reps
                rows["y"] += (300 + 10 * t + e + r[p] + rng.normal(0, sigma, reps)).tolist()
        truth[f"difference:condition | test:treated − control@{test}"] = float(eff)
    truth["difference:condition | test:treated − control@average (equal weights)"] = float(
        np.mean(effects))
    return pl.DataFrame(rows), truth


def varying_slopes(seed: int = 1, groups: int = 8, reps: int = 60, b: float = 1.0,
                   sd_slope: float = 0.6, sigma: float = 1.0):
    """``y ~ x + (x || g)``: each group's slope is b + r_g. Truth: every level's slope."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, sd_slope, groups)
    a = rng.normal(0.0, 0.5, groups)
    rows = {"g": [], "x": [], "y": []}
    for k in range(groups):
        x = rng.normal(size=reps)
        rows["g"] += [f"g{k}"] * reps
        rows["x"] += x.tolist()
        rows["y"] += (a[k] + (b + r[k]) * x + rng.normal(0, sigma, reps)).tolist()
    return pl.DataFrame(rows), {f"slope:x | g:g{k}": b + r[k] for k in range(groups)}


def _category_truth(probs: dict[str, np.ndarray], categories, a: str, b: str) -> dict:
    """Per-condition mean probability of each category over the design's prompts, and the
    difference b − a in percentage points: ``mean:condition:<level>:<category>``,
    ``difference:condition:<b> − <a>:<category>``."""
    truth = {}
    for cond, p in probs.items():
        for k, cat in enumerate(categories):
            truth[f"mean:condition:{cond}:{cat}"] = float(p[:, k].mean())
    for k, cat in enumerate(categories):
        truth[f"difference:condition:{b} − {a}:{cat}"] = float(
            100 * (probs[b][:, k].mean() - probs[a][:, k].mean()))
    return truth


def categorical_choice(seed: int = 1, prompts: int = 12, reps: int = 25,
                       categories=("comply", "hedge", "refuse"),
                       logits=(("neutral", (0.0, -0.5, -1.5)), ("sensitive", (0.0, 0.2, 0.3))),
                       sd_prompt: float = 0.4):
    """An unordered answer category by condition (multinomial logit against the first
    category), each prompt shifting each non-reference category's logit by its own effect.

    ``answer ~ condition + (1|prompt)`` (family categorical). Truth: per condition, the mean
    over this design's prompts of P(answer = category), and the differences between the
    conditions in percentage points."""
    rng = np.random.default_rng(seed)
    K = len(categories)
    r = rng.normal(0.0, sd_prompt, (prompts, K))
    r[:, 0] = 0.0
    r -= r.mean(axis=0)
    rows = {"prompt": [], "condition": [], "answer": []}
    probs = {}
    for cond, lg in logits:
        eta = np.asarray(lg, dtype=float)[None, :] + r
        p = np.exp(eta - eta.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        probs[cond] = p
        for i in range(prompts):
            rows["prompt"] += [f"p{i:02d}"] * reps
            rows["condition"] += [cond] * reps
            rows["answer"] += [categories[j] for j in rng.choice(K, reps, p=p[i])]
    (a, _), (b, _) = logits
    return pl.DataFrame(rows), _category_truth(probs, categories, a, b)


def ordinal_rating(seed: int = 1, prompts: int = 12, reps: int = 25,
                   cutpoints=(-1.5, 0.0, 1.0, 2.5), effect: float = 0.8, sd_prompt: float = 0.5):
    """A 1–5 rating by condition (ordered logistic: P(y <= k) = expit(c_k − eta), eta =
    ``effect`` for the "treated" condition + the prompt's effect).

    ``rating ~ condition + (1|prompt)`` (family cumulative). Truth: per condition the mean
    over this design's prompts of P(rating = k), and the differences in percentage points."""
    rng = np.random.default_rng(seed)
    c = np.asarray(cutpoints, dtype=float)
    categories = [str(k) for k in range(1, len(c) + 2)]
    r = rng.normal(0.0, sd_prompt, prompts)
    r -= r.mean()
    rows = {"prompt": [], "condition": [], "rating": []}
    probs = {}
    for cond, eff in (("control", 0.0), ("treated", effect)):
        eta = eff + r
        cum = expit(c[None, :] - eta[:, None])
        p = np.diff(np.concatenate([np.zeros((prompts, 1)), cum, np.ones((prompts, 1))],
                                   axis=1), axis=1)
        probs[cond] = p
        for i in range(prompts):
            rows["prompt"] += [f"p{i:02d}"] * reps
            rows["condition"] += [cond] * reps
            rows["rating"] += (1 + np.searchsorted(c, eta[i] + rng.logistic(size=reps))).tolist()
    return pl.DataFrame(rows), _category_truth(probs, categories, "control", "treated")


CV_SDS = {"llm": 0.3, "scaffold": 0.15, "cv": 0.2, "llm:scaffold": 0.1, "llm:name": 0.08}


def cv_ratings(seed: int = 1, llms: int = 6, scaffolds: int = 4, cvs: int = 3, names: int = 7,
               iterations: int = 10, cutpoints=(-1.8, 0.0, 1.8), name_sd: float = 0.25,
               sds: dict | None = None, degenerate=("m6", "s4")):
    """CV ratings on a 1–4 scale (the shape of issue 26's fourth release): ``llms`` LLMs x
    ``scaffolds`` prompting scaffolds x ``cvs`` CVs x ``names`` name variants x
    ``iterations``, from a cumulative logit (P(y <= k) = expit(c_k − eta)) with a fixed
    effect per name and five crossed small-SD terms (:data:`CV_SDS`: llm, scaffold, cv,
    llm:scaffold, llm:name), and one degenerate LLM x scaffold cell (``degenerate``) whose
    every rating is 4.

    ``rating ~ name + (1|llm) + (1|scaffold) + (1|cv) + (1|llm:scaffold) + (1|llm:name)``
    (family cumulative). Truth: per name the expected rating E[rating] averaged over this
    design's cells (the degenerate cell at 4), ``mean_rating:name:<level>``, and its
    difference to the first name, ``difference_rating:name:<level> − n1``."""
    rng = np.random.default_rng(seed)
    sds = {**CV_SDS, **(sds or {})}
    c = np.asarray(cutpoints, dtype=float)
    L = {"llm": [f"m{i + 1}" for i in range(llms)],
         "scaffold": [f"s{i + 1}" for i in range(scaffolds)],
         "cv": [f"cv{i + 1}" for i in range(cvs)], "name": [f"n{i + 1}" for i in range(names)]}
    b = rng.normal(0.0, name_sd, names)
    b -= b[0]
    eff = {k: rng.normal(0.0, sd, tuple(len(L[f]) for f in k.split(":")))
           for k, sd in sds.items()}
    grid = np.stack(np.meshgrid(*(np.arange(len(L[f])) for f in ("llm", "scaffold", "cv",
                                                                   "name")),
                                indexing="ij"), axis=-1).reshape(-1, 4)
    m, s_, v, n = grid.T
    eta = (b[n] + eff["llm"][m] + eff["scaffold"][s_] + eff["cv"][v]
           + eff["llm:scaffold"][m, s_] + eff["llm:name"][m, n])
    cum = expit(c[None, :] - eta[:, None])
    p = np.diff(np.concatenate([np.zeros((len(eta), 1)), cum, np.ones((len(eta), 1))], axis=1),
                axis=1)
    stuck = np.zeros(len(eta), bool)
    if degenerate is not None:
        stuck = (m == L["llm"].index(degenerate[0])) & (s_ == L["scaffold"].index(degenerate[1]))
        p[stuck] = np.eye(len(c) + 1)[-1]
    expected = p @ np.arange(1, len(c) + 2)
    rows = {"llm": [], "scaffold": [], "cv": [], "name": [], "iteration": [], "rating": []}
    for i in range(len(eta)):
        draws = 1 + np.searchsorted(c, eta[i] + rng.logistic(size=iterations))
        if stuck[i]:
            draws = np.full(iterations, len(c) + 1)
        for f, j in zip(("llm", "scaffold", "cv", "name"), grid[i], strict=True):
            rows[f] += [L[f][j]] * iterations
        rows["iteration"] += list(range(1, iterations + 1))
        rows["rating"] += draws.tolist()
    truth = {"analysis": "simulated_ratings"}
    means = [float(expected[n == j].mean()) for j in range(names)]
    for j, name in enumerate(L["name"]):
        truth[f"mean_rating:name:{name}"] = means[j]
        if j:
            truth[f"difference_rating:name:{name} − {L['name'][0]}"] = means[j] - means[0]
    truth.update({f"sd_{k}": float(sd) for k, sd in sds.items()})
    return pl.DataFrame(rows), truth
