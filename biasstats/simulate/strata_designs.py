"""Simulated studies asked within strata, each with its estimands' truth and the standard
errors a paper would have printed (for the ``[[replication]]`` blocks of the shipped
analyses ``simulated_tokens_strata`` and ``simulated_ranking_audit``).

* :func:`token_strata`: reasoning tokens by association condition within each model x test
  stratum (negative binomial, log link), prompts nested in tests — whole prompt texts as
  their names, the long labels a real release has;
* :func:`ranking_strata`: a hiring-ranking audit, two LLMs x three jobs, one of eight shown
  candidates ranked first in each request; the adverse-impact ratio per LLM x job.

Truth keys follow :mod:`biasstats.simulate.designs`: ``"<scale>:<term>:<level>@<stratum>"``
(the quantity the within-stratum marginal means estimate: conditional on this design's
prompts, names and requests), and ``"se_<scale>:...@<stratum>"`` the standard error of a
simple frequentist estimate from the same data (for a ratio, of its log).
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["RANKING_UTILITY", "TOKEN_RATIOS", "ranking_strata", "token_strata"]

TERM_TOKENS = "condition | model:test"
TERM_RANKING = "group | llm:job"
AVERAGE = "average (equal weights)"

# the incongruent condition's multiplier of the expected tokens, per (model, test)
TOKEN_RATIOS = {("m1", "t1"): 1.30, ("m1", "t2"): 1.20, ("m1", "t3"): 1.05,
                ("m2", "t1"): 1.25, ("m2", "t2"): 1.10, ("m2", "t3"): 0.95}
_TOPICS = {"t1": "race", "t2": "gender", "t3": "age"}


def _prompt_text(test: str, k: int) -> str:
    """A whole prompt, as releases name their prompts (far longer than a label should be)."""
    return (f"Here is a list of words about {_TOPICS[test]}. For each word, choose one of "
            f"the two groups and write it after the word (template {k + 1}).")


def token_strata(seed: int = 1, prompts_per_test: int = 6, reps: int = 10,
                 alpha: float = 8.0, base: float = 300.0, sd_prompt: float = 0.25,
                 model_scale=(("m1", 1.0), ("m2", 1.4)),
                 test_scale=(("t1", 1.0), ("t2", 0.8), ("t3", 1.2))):
    """Reasoning tokens by condition within each model x test stratum.

    ``tokens ~ 0 + model:test:condition + (1|prompt)`` (negative binomial): the expected
    count is ``base`` x the model's and the test's scale x the prompt's exp(r) x
    :data:`TOKEN_RATIOS` for the incongruent condition; prompts (nested in tests) are
    crossed with models and conditions. Truth per stratum: each condition's mean count over
    the stratum's prompts, their difference and ratio, and the equal-weight average of the
    differences (and geometric mean of the ratios) over the six strata."""
    rng = np.random.default_rng(seed)
    ms, ts = dict(model_scale), dict(test_scale)
    rows = {"model": [], "test": [], "prompt": [], "condition": [], "tokens": []}
    truth: dict[str, float] = {}
    diffs, logs = [], []
    prompts = {t: [_prompt_text(t, k) for k in range(prompts_per_test)] for t in ts}
    r = {t: rng.normal(0.0, sd_prompt, prompts_per_test) for t in ts}
    for t in ts:
        r[t] -= r[t].mean()
    for m in ms:
        for t in ts:
            sn = f"{m}:{t}"
            mean, obs = {}, {}
            for cond in ("congruent", "incongruent"):
                mult = TOKEN_RATIOS[(m, t)] if cond == "incongruent" else 1.0
                mu = base * ms[m] * ts[t] * mult * np.exp(r[t])
                mean[cond] = float(mu.mean())
                ys = []
                for k, p in enumerate(prompts[t]):
                    y = rng.negative_binomial(alpha, alpha / (alpha + mu[k]), reps)
                    ys.append(y)
                    rows["model"] += [m] * reps
                    rows["test"] += [t] * reps
                    rows["prompt"] += [p] * reps
                    rows["condition"] += [cond] * reps
                    rows["tokens"] += y.tolist()
                obs[cond] = np.concatenate(ys).astype(float)
                truth[f"mean:{TERM_TOKENS}:{cond}@{sn}"] = mean[cond]
            d = mean["incongruent"] - mean["congruent"]
            q = mean["incongruent"] / mean["congruent"]
            diffs.append(d)
            logs.append(np.log(q))
            a, b = obs["incongruent"], obs["congruent"]
            se_d = float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
            se_l = float(np.sqrt(a.var(ddof=1) / (a.size * a.mean() ** 2)
                                 + b.var(ddof=1) / (b.size * b.mean() ** 2)))
            truth[f"difference:{TERM_TOKENS}:incongruent − congruent@{sn}"] = d
            truth[f"ratio:{TERM_TOKENS}:incongruent / congruent@{sn}"] = q
            truth[f"se_difference:{TERM_TOKENS}:incongruent − congruent@{sn}"] = se_d
            truth[f"se_log_ratio:{TERM_TOKENS}:incongruent / congruent@{sn}"] = se_l
    truth[f"difference:{TERM_TOKENS}:incongruent − congruent@{AVERAGE}"] = float(np.mean(diffs))
    truth[f"ratio:{TERM_TOKENS}:incongruent / congruent@{AVERAGE}"] = float(np.exp(np.mean(logs)))
    return pl.DataFrame(rows), truth


# group utilities (log scale of the odds of being ranked first) per (llm, job): A, B, C, D
RANKING_UTILITY = {("m1", "nurse"): (0.0, -0.1, -0.3, 0.2),
                   ("m1", "engineer"): (0.3, -0.2, -0.4, 0.4),
                   ("m1", "teacher"): (0.0, 0.0, -0.1, 0.0),
                   ("m2", "nurse"): (0.1, 0.0, -0.6, 0.1),
                   ("m2", "engineer"): (0.0, -0.3, -0.2, 0.3),
                   ("m2", "teacher"): (-0.1, 0.1, 0.0, -0.2)}


def ranking_strata(seed: int = 1, groups=("A", "B", "C", "D"), names_per_group: int = 8,
                   requests: int = 300, shown_per_group: int = 2, sd_name: float = 0.3,
                   design_seed: int | None = None, one_first: bool = True):
    """A hiring-ranking audit within LLM x job strata: each request (``requests`` per
    stratum) shows ``shown_per_group`` names of every group and ranks one first (a softmax
    of :data:`RANKING_UTILITY` + the name's effect, centred within its group, names shared
    by every stratum).

    One row per shown candidate: ``llm``, ``job``, ``request``, ``name``, ``group``, ``top1``.
    Truth per stratum: each group's average true P(ranked first) over its shown candidates
    (what ``top1 ~ 0 + llm:job:group + (1|name)`` marginal means estimate), its ratio to
    the best group and to the first group (``"B / A"``, a declared reference), and the
    adverse-impact ratio min / max; ``se_log_ratio`` of the
    adverse-impact ratio (and of each ratio to the first group) from the observed rates of
    the two groups that make it, and
    ``se_mean`` of each group's observed rate. ``design_seed``: which names each request
    shows drawn from their own generator, so that replications (other ``seed``) share one
    design (the estimand-coverage harness compiles it once); None: from ``seed``'s.
    ``one_first=False``: each shown candidate is shortlisted on its own (a Bernoulli draw of
    the same probability) instead of exactly one per request ranked first — the same truth,
    with outcomes as independent as a Bernoulli model assumes."""
    rng = np.random.default_rng(seed)
    shows = rng if design_seed is None else np.random.default_rng(design_seed)
    names = {g: [f"{g.lower()}{i}" for i in range(names_per_group)] for g in groups}
    r_name = {}
    for g in groups:  # centred within each group: a group's utility is its names' average
        r = rng.normal(0.0, sd_name, names_per_group)
        r_name.update(zip(names[g], r - r.mean(), strict=True))
    rows = {"llm": [], "job": [], "request": [], "name": [], "group": [], "top1": []}
    truth: dict[str, float] = {}
    for (llm, job), util in RANKING_UTILITY.items():
        u_group = dict(zip(groups, util, strict=True))
        p_sum, n_sum, k_sum = (dict.fromkeys(groups, 0.0) for _ in range(3))
        for q in range(requests):
            shown = [(g, n) for g in groups
                     for n in shows.choice(names[g], shown_per_group, replace=False)]
            u = np.array([u_group[g] + r_name[n] for g, n in shown])
            p = np.exp(u - u.max())
            p /= p.sum()
            first = rng.choice(len(shown), p=p) if one_first else None
            picked = (np.arange(len(shown)) == first) if one_first else \
                rng.random(len(shown)) < p
            for i, (g, n) in enumerate(shown):
                rows["llm"].append(llm)
                rows["job"].append(job)
                rows["request"].append(f"{llm}-{job}-q{q:04d}")
                rows["name"].append(str(n))
                rows["group"].append(g)
                rows["top1"].append(int(picked[i]))
                p_sum[g] += p[i]
                n_sum[g] += 1
                k_sum[g] += int(picked[i])
        sn = f"{llm}:{job}"
        mean = {g: p_sum[g] / n_sum[g] for g in groups}
        best, worst = max(mean, key=mean.get), min(mean, key=mean.get)
        for g in groups:
            truth[f"mean:{TERM_RANKING}:{g}@{sn}"] = mean[g]
            truth[f"ratio_to_best:{TERM_RANKING}:{g}@{sn}"] = mean[g] / mean[best]
            if g != groups[0]:  # the first group as a declared reference
                truth[f"ratio_to_reference:{TERM_RANKING}:{g} / {groups[0]}@{sn}"] = \
                    mean[g] / mean[groups[0]]
        truth[f"impact:{TERM_RANKING}:min / max@{sn}"] = mean[worst] / mean[best]
        rate = {g: k_sum[g] / n_sum[g] for g in groups}
        truth[f"se_log_ratio:{TERM_RANKING}:min / max@{sn}"] = float(np.sqrt(sum(
            (1 - rate[g]) / (n_sum[g] * rate[g]) for g in (best, worst))))
        for g in groups:
            truth[f"se_mean:{TERM_RANKING}:{g}@{sn}"] = float(np.sqrt(
                rate[g] * (1 - rate[g]) / n_sum[g]))
            if g != groups[0]:
                truth[f"se_log_ratio:{TERM_RANKING}:{g} / {groups[0]}@{sn}"] = float(np.sqrt(
                    sum((1 - rate[h]) / (n_sum[h] * rate[h]) for h in (g, groups[0]))))
    return pl.DataFrame(rows), truth
