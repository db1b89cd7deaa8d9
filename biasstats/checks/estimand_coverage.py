"""Coverage of the default estimands' intervals over replications of a simulated design.

Each replication simulates one of the studies of :mod:`biasstats.simulate.designs` with its
own seed (new prompt effects and noise on one shared design: the same prompts, conditions and
covariate values), fits the formula a user would write, computes the estimands read off the
formula (:func:`biasstats.effects.estimands.default_request`, ``prob`` HDIs) and scores every
estimand the design knows the truth of (marginal means, contrasts, slopes — the truth *of
this replication's design*, the quantity the marginal means estimate) as inside or outside
its interval.

The model is compiled once per design (the shortcut of :mod:`biasstats.checks.sbc`): the
first replication's spec fixes the priors (the data-scaled defaults of that replication) and
the centring, and each replication's response is swapped in with nutpie's ``with_data``. The
estimands of a replication are computed from its own spec (cells, weights) and posterior.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from biasstats.checks.sbc import Compiled
from biasstats.effects.derived import as_derived
from biasstats.effects.estimands import EffectsRequest, compute_estimands, default_request
from biasstats.inference.result import Fit
from biasstats.model.build import prepare
from biasstats.model.formula import parse_formula
from biasstats.simulate import designs, qa_design, strata_designs

__all__ = ["DESIGNS", "EstimandCoverage", "run_estimand_coverage"]

# family -> (design function, keyword arguments shared by all replications, formula[, the
# [effects.derived] tables whose truth the design gives, the family when the key is not one])
DESIGNS: dict[str, tuple] = {
    "gaussian": (designs.gaussian_condition, {"prompts": 8, "reps": 10, "x_seed": 0},
                 "y ~ condition + x + (1|prompt)"),
    "negative_binomial": (designs.token_counts, {"prompts": 12, "reps": 10},
                          "tokens ~ condition + (1|prompt)"),
    "bernoulli": (designs.refusals, {"prompts": 20, "reps": 15},
                  "refused ~ condition + (1|prompt)"),
    # a BBQ-shaped QA benchmark (categorical): the bias scores per category x context
    "categorical_qa": (qa_design.qa_bias, {"categories": ("age", "race"), "questions": 4,
                                           "reps": 30},
                       "answer ~ category*context + (1|question)", qa_design.QA_DERIVED,
                       "categorical"),
    # a ranking audit within LLM x job strata: each group's ratio to the best group and the
    # adverse-impact ratio min / max, per stratum
    "bernoulli_impact": (strata_designs.ranking_strata, {"requests": 100, "design_seed": 7},
                         "top1 ~ 0 + llm:job:group + (1|name)", (), "bernoulli"),
    # the same audit with each candidate's outcome drawn on its own (no "exactly one ranked
    # first per request"): the outcomes as independent as the Bernoulli model assumes
    "bernoulli_impact_independent": (strata_designs.ranking_strata,
                                     {"requests": 100, "design_seed": 7, "one_first": False},
                                     "top1 ~ 0 + llm:job:group + (1|name)", (), "bernoulli"),
    # the one-first audit fitted as Poisson counts (the multinomial-Poisson transformation:
    # the ratio of two groups' rates has the multinomial's variance, which the Bernoulli
    # model, blind to "one per request", understates)
    "poisson_impact": (strata_designs.ranking_strata, {"requests": 100, "design_seed": 7},
                       "top1 ~ 0 + llm:job:group + (1|name)", (), "poisson"),
}


@dataclass
class EstimandCoverage:
    """``table``: replication, estimand, truth, mean, hdi_low, hdi_high, inside (and, for
    impact ratios, the row's best / worst levels, p_best, p_worst and selection)."""

    family: str
    prob: float
    table: pl.DataFrame
    timings: dict = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        return float(self.table["inside"].mean())

    def by_estimand(self) -> pl.DataFrame:
        return (self.table.group_by("estimand", maintain_order=True)
                .agg(pl.len().alias("n"), pl.col("inside").mean().alias("coverage")))

    def line(self) -> str:
        t = self.timings
        per = ", ".join(f"{r['estimand']} {r['coverage']:.3f}"
                        for r in self.by_estimand().iter_rows(named=True))
        return (f"{self.family}: {int(self.prob * 100)}% HDI coverage {self.coverage:.3f} "
                f"({int(self.table['inside'].sum())}/{self.table.height}; {per}); compile "
                f"{t.get('compile_s', 0):.1f} s, sampling {t.get('sampling_s', 0):.1f} s")


# columns of an estimand row kept beside its coverage (the impact table's selection)
_CARRIED = ("best", "worst", "p_best", "p_worst", "selection")
# impact truth keys -> the impact table's estimand
_IMPACT = {"impact": "adverse-impact ratio", "ratio_to_best": "ratio to best",
           "ratio_to_reference": "ratio to reference"}


def _row(est, key: str) -> dict:
    """The estimand row named like a design's truth key ("mean:condition:a",
    "difference:condition:b − a", "ratio:condition:b − a", "slope:x:average")."""
    kind, rest = key.split(":", 1)
    rest, _, stratum = rest.partition("@")  # within strata: "<level>@<stratum>"
    term, level = rest.rsplit(":", 1) if "|" in rest else rest.split(":", 1)
    if kind in _IMPACT:  # "impact:demo | s:min / max@<stratum>"
        t = est.impact.filter(pl.col("estimand") == _IMPACT[kind])
        rows = t.filter((pl.col("term") == term) & (pl.col("level") == level)
                        & (pl.col("stratum") == stratum))
        if rows.height != 1:  # pragma: no cover - a naming change in the estimands
            raise KeyError(f"no single estimand row for {key}")
        return rows.row(0, named=True)
    if kind == "derived":  # "derived:<name>:<stratum>"
        t, scale = est.derived, "derived"
    elif kind == "mean":
        t, scale = est.means, est.response_scale
    elif kind == "slope":
        t, scale = est.slopes, "slope"
    else:
        t, scale = est.contrasts, kind
        if kind == "ratio":
            level = level.replace(" − ", " / ")
    rows = t.filter((pl.col("term") == term) & (pl.col("level") == level)
                    & (pl.col("scale") == scale))
    if stratum:
        rows = rows.filter(pl.col("stratum") == stratum)
    if rows.height != 1:  # pragma: no cover - a naming change in the estimands
        raise KeyError(f"no single estimand row for {key}")
    return rows.row(0, named=True)


def run_estimand_coverage(family: str, reps: int = 40, *, prob: float = 0.90, seed: int = 0,
                          chains: int = 2, tune: int = 300, draws: int = 300,
                          target_accept: float = 0.9,
                          design: tuple | None = None) -> EstimandCoverage:
    """Coverage of the default estimands' ``prob`` HDIs over ``reps`` replications of
    ``DESIGNS[family]``, or of ``design`` (a (design function, its keyword arguments,
    formula) triple like the entries of :data:`DESIGNS`)."""
    # heavy libraries load on first use, not on import
    import nutpie
    import xarray as xr


    make, kw, formula, *more = DESIGNS[family] if design is None else design
    derived = as_derived(more[0]) if more and more[0] else ()
    compiled = Compiled()
    first = None
    rows = []
    sample_s = 0.0
    t_start = time.perf_counter()
    for rep in range(reps):
        df, truth = make(seed=seed * 1000 + rep + 1, **kw)
        truth = {k: v for k, v in truth.items() if ":" in k and not k.startswith("se_")}
        spec = prepare(formula, df, more[1] if len(more) > 1 else family,
                       centered={g.name: False for g in parse_formula(formula).groups})
        if first is None:
            first = spec
        elif not (np.array_equal(spec.X, first.X) and spec.cells.drop(
                [c for c in (spec.formula.response, "k", "n") if c in spec.cells.columns])
                .equals(first.cells.drop([c for c in (spec.formula.response, "k", "n")
                                          if c in first.cells.columns]))):
            raise RuntimeError("replications must share one design")  # pragma: no cover
        cm = compiled.with_y(first, np.asarray(spec.y, dtype=np.asarray(first.y).dtype))
        t0 = time.perf_counter()
        post = nutpie.sample(cm, draws=draws, tune=tune, chains=chains,
                             cores=min(chains, os.cpu_count() or 1), seed=seed * 100003 + rep,
                             progress_bar=False, target_accept=target_accept)
        sample_s += time.perf_counter() - t0
        ds = post.posterior.to_dataset() if hasattr(post.posterior, "to_dataset") \
            else post.posterior
        fit = Fit(idata=xr.DataTree.from_dict({"posterior": ds}), spec=spec)
        req = default_request(spec, prob=prob)
        within = tuple(dict.fromkeys(k.split(":")[1] for k in truth if "|" in k))
        impact = tuple(dict.fromkeys(k.split(":", 1)[1].partition("@")[0].rsplit(":", 1)[0]
                                     for k in truth if k.split(":", 1)[0] in _IMPACT))
        refs = {k.split(":", 1)[1].partition("@")[0].rsplit(":", 1)[0]:
                k.partition("@")[0].rsplit(" / ", 1)[1]
                for k in truth if k.startswith("ratio_to_reference:")}
        if impact:  # the design's truth is of impact ratios within strata: those
            req = EffectsRequest(by=impact, impact=impact, reference=refs, prob=prob)
        elif within:  # the design's truth is within strata: ask for those contrasts
            req = EffectsRequest(contrasts=within, prob=prob)
        if derived:  # the design's truth is of derived estimands: those only
            req = EffectsRequest(derived=derived, prob=prob)
        est = compute_estimands(fit, req)
        for key, t in truth.items():
            r = _row(est, key)
            rows.append({"replication": rep, "estimand": key, "truth": float(t),
                         "mean": r["mean"], "hdi_low": r["hdi_low"], "hdi_high": r["hdi_high"],
                         "inside": bool(r["hdi_low"] <= t <= r["hdi_high"]),
                         **{c: r.get(c) for c in _CARRIED if c in r}})
    timings = {"compile_s": compiled.compile_s, "sampling_s": sample_s,
               "total_s": time.perf_counter() - t_start}
    return EstimandCoverage(family, prob, pl.from_dicts(rows, infer_schema_length=None),
                           timings)

