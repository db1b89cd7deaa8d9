"""Simulate studies of each design size, refit them, and score the estimand's intervals.

For each design size (:mod:`biasstats.design.sizes`) and each of ``sims`` simulations: take
the simulation's parameter set (:mod:`biasstats.design.truth`: a posterior draw, or a prior
draw when nothing is fitted), draw the outcome of every row of the design, refit the model
and compute the estimand (a contrast, :mod:`biasstats.effects.estimands`; within strata for
``"a | s"``). The same estimand computed from the parameter set itself is the study's true
value. Each contrast row is scored by

* the width of its ``prob`` HDI (in the estimand's units: percentage points for a
  difference of probabilities),
* whether the interval excludes zero, and with a ROPE its decision (HDI+ROPE rule: entirely
  outside the ROPE, entirely inside it, or undecided),
* whether the interval covers the true value.

Over the simulations of a size: the median width and its quartiles, P(the interval excludes
zero) — with a ROPE P(a decision), its sum of outside and inside — with Monte Carlo standard
errors sqrt(p (1 - p) / sims) and 95% Wilson intervals, and the coverage; the median width
has a distribution-free 95% interval from its order statistics.

**The recommendation goes by the bound, not the point estimate**: the smallest design whose
95% Wilson lower bound of the assurance (every contrast row's) reaches a ``--power`` target,
or whose median width's upper bound is within a ``--width`` target. A smaller design whose
point estimate meets the target but whose interval holds it straddles the target: it is
named beside the recommendation (more ``--sims`` narrow the intervals and may settle it). Averaged over parameter sets drawn from the
posterior, P(excludes zero) is the **assurance** of the design (the power expected given what
the analysis has learnt), over prior draws its prior-predictive counterpart.

**One compiled model per size.** A size's simulations share their design (rows, cells,
levels), so its model is compiled once (nutpie, numba) with the observed outcome as a shared
variable and each simulation's outcome swapped in (:class:`biasstats.checks.sbc.Compiled`;
``with_data``). The first simulation of a size fixes the centring (chosen from its data as a
fit would) and the NUTS target acceptance (``[fit] target_accept``, else the automatic
choice); priors are the analysis' own throughout (its data-scaled defaults). Refits are short
(``chains`` x ``draws`` after as many warm-up steps, diagonal mass matrix unless ``[fit]
adaptation = "low_rank"``); each simulation's divergences and the R-hat and bulk ESS of the
estimand's draws are kept in the per-simulation table.

Deterministic by ``seed``: the parameter draws, level effects, outcomes and sampler seeds are
derived from it, and the refits compile with IEEE arithmetic (no numba fastmath), as fits do.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from math import comb

import numpy as np
import polars as pl

from biasstats.checks.sbc import Compiled
from biasstats.design.plan import Plan, Target, _prepare, category_response
from biasstats.design.truth import one_draw_fit, parameter_draws, simulate_outcome, truth_draw
from biasstats.effects.estimands import compute_estimands
from biasstats.inference.result import Fit
from biasstats.inference.sample import adaptation_options, auto_target_accept

__all__ = ["DesignAnalysis", "run_design", "summarise", "recommend", "straddling", "wilson",
           "median_interval"]

CONF = 0.95      # the intervals the recommendation reads (Wilson; order statistics)
Z_CONF = 1.959963984540054


@dataclass
class DesignAnalysis:
    """``sims``: one row per size, simulation and contrast row; ``table``: one row per size
    and contrast row (see :func:`summarise`); ``recommended``: the smallest design meeting
    ``target`` (None when no size does or no target is given)."""

    sims: pl.DataFrame
    table: pl.DataFrame
    factors: list[str]
    estimand: str
    unit: str
    prob: float
    rope: float | None
    source: str
    source_note: str
    target: Target | None
    recommended: dict | None
    settings: dict = field(default_factory=dict)
    # designs meeting the target by their point estimate while their interval holds it
    straddling: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    @property
    def power_column(self) -> str:
        return "p_decision" if self.rope is not None else "p_excludes_zero"

    @property
    def power_label(self) -> str:
        return ("P(ROPE decision)" if self.rope is not None
                else "P(interval excludes 0)")

    def recommendation(self) -> str:
        """One line: the smallest design whose 95% bound meets the target, designs that
        straddle it, or why there is none."""
        if self.target is None:
            return "no target given (--power P or --width W): no design recommended"
        what = self.target.text(self.unit)
        straddle = "; ".join(f"{self._size(r)} meets it by its point estimate only "
                             f"({self._got(r)}): its interval holds the target"
                             for r in self.straddling)
        tail = f"; {straddle} (raise --sims to settle it)" if straddle else ""
        if self.recommended is None:
            return (f"no design size meets {what} by its 95% bound for every contrast of "
                    f"{self.estimand}{tail}")
        r = self.recommended
        bound = "lower" if self.target.kind == "power" else "upper"
        return (f"smallest design meeting {what} by its 95% {bound} bound: {self._size(r)} "
                f"({r['rows']} rows); {self._got(r)}"
                + (f", for the least of {r['contrasts']} contrasts" if r["contrasts"] > 1
                   else "") + tail)

    @staticmethod
    def _size(r: dict) -> str:
        return " ".join(f"{k}={v}" for k, v in r["size"].items())

    def _got(self, r: dict) -> str:
        if self.target.kind == "power":
            return (f"{self.power_label} {r['power']:.2f} ± {r['power_mcse']:.2f} (MC SE; 95% "
                    f"{r['power_lo']:.2f}–{r['power_hi']:.2f})")
        return (f"median width {r['width_median']:.3g} (95% {r['width_median_lo']:.3g}–"
                f"{r['width_median_hi']:.3g})")

    def to_json(self) -> str:
        out = {"estimand": self.estimand, "unit": self.unit, "hdi_prob": self.prob,
               "rope": self.rope, "parameters_from": self.source, "note": self.source_note,
               "target": None if self.target is None else self.target.__dict__,
               "recommended": self.recommended, "straddling": self.straddling,
               "recommendation": self.recommendation(),
               "settings": self.settings, "timings": self.timings}
        return json.dumps(out, indent=2, default=_json_default) + "\n"


def _json_default(v):
    return v.item() if isinstance(v, np.generic) else str(v)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _estimand_rows(est, term: str) -> pl.DataFrame:
    """The estimand's difference rows: (stratum,) level, (category: a family with categories
    has one per response category, in percentage points), mean, hdi_low, hdi_high[,
    verdict]."""
    t = est.contrasts.filter((pl.col("term") == term) & (pl.col("scale") == "difference"))
    keep = [c for c in ("stratum", "level", "category", "mean", "hdi_low", "hdi_high",
                        "verdict")
            if c in t.columns]
    return t.select(keep)


def _chain_diagnostics(est, term: str, chains: int) -> tuple[float, float]:
    """(max R-hat, min bulk ESS) over the estimand's draws."""
    # heavy libraries load on first use, not on import
    import arviz_stats.base as azb

    rhat, ess = [], []
    for key, (_, d) in est.draws.items():
        if key == f"contrast:{term}:difference" or key.startswith(f"contrast:{term}:difference:"):
            for col in np.asarray(d, dtype=float).T:
                v = col.reshape(chains, -1)
                rhat.append(float(azb.array_stats.rhat(v, chain_axis=0, draw_axis=1)))
                ess.append(float(azb.array_stats.ess(v, chain_axis=0, draw_axis=1,
                                                     method="bulk")))
    return (max(rhat) if rhat else float("nan")), (min(ess) if ess else float("nan"))


class _Refit:
    """The refits of one design size: one compiled model, the first simulation's centring
    and target acceptance."""

    def __init__(self, plan: Plan, chains: int, draws: int):
        self.plan, self.chains, self.draws = plan, chains, draws
        self.compiled = Compiled()
        self.first = None
        self.centered: dict | None = None
        self.target_accept = None
        self.sampling_s = 0.0

    def prepare(self, data: pl.DataFrame):
        spec = _prepare(self.plan.spec, data, dict(self.plan.base.priors), self.centered,
                        self.plan.collapse)
        if self.first is None:
            self.first = spec
            self.centered = {g.name: g.centered for g in spec.groups}
            fit = self.plan.spec.fit
            self.target_accept = (fit.target_accept if fit.target_accept is not None
                                  else auto_target_accept(spec)[0])
        elif not (np.array_equal(spec.X, self.first.X) and len(spec.y) == len(self.first.y)):
            raise RuntimeError("internal: simulations of one design differ in their design")
        return spec

    def sample(self, spec, seed: int):
        # heavy libraries load on first use, not on import
        import nutpie
        import pytensor
        import xarray as xr

        # IEEE arithmetic in the compiled log density, as a fit's (inference.sample)
        with pytensor.config.change_flags(numba__fastmath=False):
            cm = self.compiled.with_y(self.first, np.asarray(spec.y,
                                                             dtype=np.asarray(self.first.y).dtype))
        adapt = "low_rank" if self.plan.spec.fit.adaptation == "low_rank" else "diag"
        t0 = time.perf_counter()
        post = nutpie.sample(cm, draws=self.draws, tune=self.draws, chains=self.chains,
                             cores=min(self.chains, os.cpu_count() or 1), seed=seed,
                             progress_bar=False, target_accept=self.target_accept,
                             **adaptation_options(adapt))
        self.sampling_s += time.perf_counter() - t0
        ds = post.posterior.to_dataset()
        div = int(np.asarray(post.sample_stats["diverging"]).sum())
        return Fit(idata=xr.DataTree.from_dict({"posterior": ds}), spec=spec), div


def _score(est_rows: pl.DataFrame, truth_rows: pl.DataFrame, rope) -> pl.DataFrame:
    keys = [c for c in ("stratum", "level", "category") if c in est_rows.columns]
    t = truth_rows.select([*keys, pl.col("mean").alias("truth")])
    out = est_rows.join(t, on=keys, how="left", maintain_order="left").with_columns(
        (pl.col("hdi_high") - pl.col("hdi_low")).alias("width"),
        ((pl.col("hdi_low") > 0) | (pl.col("hdi_high") < 0)).alias("excludes_zero"),
        ((pl.col("hdi_low") <= pl.col("truth")) & (pl.col("truth") <= pl.col("hdi_high")))
        .alias("covers"))
    if rope is None:
        out = out.drop("verdict", strict=False)
    return out


def _one_size(plan: Plan, i: int, params, flats, seed: int, chains: int, draws: int,
              progress) -> tuple[list[pl.DataFrame], _Refit]:
    """Every simulation of design ``i``: its scored contrast rows, and the refit state."""
    design = plan.designs[i]
    refit = _Refit(plan, chains, draws)
    resp = plan.base.formula.response
    parts = []
    for s in range(len(flats)):
        t0 = time.perf_counter()
        truth = truth_draw(params, flats[s], plan.base, design.spec, plan.varied,
                           np.random.default_rng([seed, s, 1]))
        y = simulate_outcome(truth, design.spec, np.random.default_rng([seed, i, s, 2]))
        data = design.rows.with_columns(
            category_response(y, plan.base, resp) if plan.base.family.has_categories
            else pl.Series(resp, y))
        spec = refit.prepare(data)
        fit, div = refit.sample(spec, _seed(seed, i, s, 3))
        est = compute_estimands(fit, plan.request)
        true = compute_estimands(one_draw_fit(truth, spec, copies=2), plan.request)
        rows = _score(_estimand_rows(est, plan.estimand), _estimand_rows(true, plan.estimand),
                      plan.rope)
        rhat, ess = _chain_diagnostics(est, plan.estimand, chains)
        rows = rows.with_columns(
            pl.lit(s, dtype=pl.Int64).alias("sim"), pl.lit(int(flats[s])).alias("draw"),
            pl.lit(div).alias("divergences"), pl.lit(rhat).alias("rhat"),
            pl.lit(ess).alias("ess_bulk"),
            pl.lit(time.perf_counter() - t0).alias("seconds"))
        parts.append(pl.DataFrame({k: [v] for k, v in design.size.items()})
                     .with_columns(pl.lit(design.spec.n_rows).alias("rows"))
                     .join(rows, how="cross"))
        if progress is not None:
            progress(i, s, rows.row(0, named=True))
    return parts, refit


def run_design(plan: Plan, fit=None, *, sims: int = 50, draws: int = 500, chains: int = 2,
               seed: int = 0, source_note: str = "", progress=None) -> DesignAnalysis:
    """Simulate, refit and score ``sims`` studies of every design of ``plan``; parameters
    from ``fit``'s posterior, or from the prior when ``fit`` is None.

    ``progress(design index, simulation, first scored row)`` is called after each refit."""
    t_start = time.perf_counter()
    params, flats, source = parameter_draws(plan.base, fit, sims, seed)
    parts, compile_s, sample_s, settings = [], 0.0, 0.0, []
    for i in range(len(plan.designs)):
        p, refit = _one_size(plan, i, params, flats, seed, chains, draws, progress)
        parts += p
        compile_s += refit.compiled.compile_s
        sample_s += refit.sampling_s
        settings.append({**plan.designs[i].size, "target_accept": refit.target_accept,
                         "centred": [k for k, v in (refit.centered or {}).items() if v]})
    table_sims = pl.concat(parts, how="diagonal_relaxed")
    table = summarise(table_sims, plan.factors, plan.rope is not None)
    fam = plan.base.family
    unit = ("percentage points" if fam.response_scale == "probability"
            else (plan.spec.content.effects.unit or "outcome units"))
    result = DesignAnalysis(
        table_sims, table, plan.factors, plan.estimand, unit, plan.prob, plan.rope, source,
        source_note, plan.target, None,
        settings={"formula": plan.base.formula.formula, "family": fam.name, "sims": sims,
                  "chains": chains, "draws": draws, "tune": draws, "seed": seed,
                  "sizes": settings},
        timings={"compile_s": round(compile_s, 2), "sampling_s": round(sample_s, 2),
                 "total_s": round(time.perf_counter() - t_start, 2)})
    result.recommended = recommend(table, plan.factors, plan.target, result.power_column)
    result.straddling = straddling(table, plan.factors, plan.target, result.power_column)
    return result


def _mcse(p: str) -> pl.Expr:
    return ((pl.col(p) * (1 - pl.col(p)) / pl.col("sims")).sqrt()).alias(f"{p}_mcse")


def summarise(sims: pl.DataFrame, factors: list[str], rope: bool) -> pl.DataFrame:
    """One row per design size and contrast row: sims, rows, the median true value, the
    median width and quartiles, P(excludes 0), with a ROPE P(outside), P(inside) and
    P(decision), each P with its Monte Carlo SE, the coverage (and its MC SE), the
    simulations with divergences and the largest R-hat."""
    keys = [*factors, "rows",
            *(c for c in ("stratum", "level", "category") if c in sims.columns)]
    aggs = [pl.len().alias("sims"), pl.col("truth").median().alias("truth_median"),
            pl.col("width").median().alias("width_median"),
            pl.col("width").quantile(0.25, "linear").alias("width_q25"),
            pl.col("width").quantile(0.75, "linear").alias("width_q75"),
            pl.col("excludes_zero").mean().alias("p_excludes_zero")]
    if rope:
        aggs += [(pl.col("verdict") == "outside ROPE").mean().alias("p_outside_rope"),
                 (pl.col("verdict") == "inside ROPE").mean().alias("p_inside_rope"),
                 (pl.col("verdict") != "undecided").mean().alias("p_decision")]
    aggs += [pl.col("covers").mean().alias("coverage"),
             (pl.col("divergences") > 0).sum().alias("divergent_sims"),
             pl.col("rhat").max().alias("max_rhat")]
    aggs.append(pl.col("width").sort().alias("__widths"))
    t = sims.group_by(keys, maintain_order=True).agg(aggs)
    probs = ["p_excludes_zero", *(["p_decision"] if rope else []), "coverage"]
    t = t.with_columns(_mcse(p) for p in probs)
    bounds = {}
    for p in probs[:-1]:  # the power column(s): 95% Wilson intervals
        lo, hi = wilson(t[p].to_numpy(), t["sims"].to_numpy())
        bounds |= {f"{p}_lo": lo, f"{p}_hi": hi}
    med = [median_interval(w.to_numpy()) for w in t["__widths"]]
    bounds |= {"width_median_lo": [m[0] for m in med], "width_median_hi": [m[1] for m in med]}
    t = t.with_columns(pl.Series(k, v, dtype=pl.Float64) for k, v in bounds.items())
    order = [*keys, "sims", "truth_median", "width_median", "width_median_lo",
             "width_median_hi", "width_q25", "width_q75"]
    for p in ("p_excludes_zero", "p_outside_rope", "p_inside_rope", "p_decision", "coverage"):
        if p in t.columns:
            order += [p] + [f"{p}_{x}" for x in ("mcse", "lo", "hi") if f"{p}_{x}" in t.columns]
    return t.select([*order, "divergent_sims", "max_rhat"])


def wilson(p, n, z: float = Z_CONF) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval (default 95%) of shares ``p`` over ``n`` simulations each:
    unlike p ± z SE it stays inside [0, 1] and is not empty at p = 0 or 1."""
    p, n = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z / d * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def median_interval(x: np.ndarray, conf: float = CONF) -> tuple[float, float]:
    """A distribution-free interval of the median of ``x``: the order statistics
    x_(j) and x_(n+1-j), j the largest rank with P(Binomial(n, 1/2) < j) <= (1 - conf) / 2
    (their coverage is at least ``conf``); the extremes when ``x`` is too short for it."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    cdf, j = 0.0, 0
    while j < n // 2:
        nxt = cdf + comb(n, j) / 2 ** n   # P(B <= j) = P(B < j + 1)
        if nxt > (1 - conf) / 2:
            break
        cdf, j = nxt, j + 1
    j = max(j, 1)
    return float(x[j - 1]), float(x[n - j])


def _designs(table: pl.DataFrame, factors: list[str]):
    """Each design's size, rows and contrast rows, fewest rows first (the order given among
    equals)."""
    designs = table.select([*factors, "rows"]).unique(maintain_order=True)
    for j in sorted(range(designs.height), key=lambda j: (designs["rows"][j], j)):
        size = {f: int(designs[f][j]) for f in factors}
        yield size, int(designs["rows"][j]), table.filter(
            pl.all_horizontal(pl.col(f) == v for f, v in size.items()))


def _verdict(sub: pl.DataFrame, target: Target, power_column: str) -> tuple[dict, bool, bool]:
    """(the worst contrast row's values, met by its 95% bound, met by its point estimate)."""
    if target.kind == "power":
        worst = sub.sort(f"{power_column}_lo").row(0, named=True)
        point = bool(sub[power_column].min() >= target.value)
        return worst, worst[f"{power_column}_lo"] >= target.value, point
    worst = sub.sort("width_median_hi", descending=True).row(0, named=True)
    point = bool(sub["width_median"].max() <= target.value)
    return worst, worst["width_median_hi"] <= target.value, point


def _row(size, rows, sub, worst, power_column) -> dict:
    return {"size": size, "rows": rows, "contrasts": sub.height,
            "power": worst[power_column], "power_mcse": worst[f"{power_column}_mcse"],
            "power_lo": worst[f"{power_column}_lo"], "power_hi": worst[f"{power_column}_hi"],
            "width_median": worst["width_median"],
            "width_median_lo": worst["width_median_lo"],
            "width_median_hi": worst["width_median_hi"]}


def recommend(table: pl.DataFrame, factors: list[str], target: Target | None,
              power_column: str) -> dict | None:
    """The smallest design (fewest rows; the order given among equals) whose every contrast
    row meets ``target`` by its 95% bound — the Wilson lower bound of the assurance, or the
    upper bound of the median width — with the values of its worst contrast row."""
    if target is None:
        return None
    for size, rows, sub in _designs(table, factors):
        worst, bound, _ = _verdict(sub, target, power_column)
        if bound:
            return _row(size, rows, sub, worst, power_column)
    return None


def straddling(table: pl.DataFrame, factors: list[str], target: Target | None,
               power_column: str) -> list[dict]:
    """The designs smaller than the recommended one (all, when none is) that meet
    ``target`` by their point estimate but not by their 95% bound: their intervals hold the
    target, so the simulations cannot tell whether they meet it."""
    if target is None:
        return []
    out = []
    for size, rows, sub in _designs(table, factors):
        worst, bound, point = _verdict(sub, target, power_column)
        if bound:
            break
        if point:
            out.append(_row(size, rows, sub, worst, power_column))
    return out
