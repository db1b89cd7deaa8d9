"""Estimands for any study: marginal means, contrasts, slopes and ranks, draw by draw.

What a study reports is declared in ``[effects]`` (or read off the formula, see
:func:`default_request`), and every number is a function of posterior draws on the scale the
family table names (:class:`biasstats.model.families.Family`), never of summaries:

* **marginal means** (``by``): for each level of a factor or interaction, the average of the
  posterior expected response over the observed rows with that level (each row or binomial
  cell weighted by the observations it stands for) — marginaleffects'
  ``avg_predictions(by = ...)``. On the probability scale for binomial families, in outcome
  units otherwise.
* **contrasts** between the levels of a factor: differences of marginal means (percentage
  points for probabilities, outcome units otherwise) and, where the family's link makes them
  natural, ratios (log link) or odds ratios (logit link) — against a reference level, or all
  pairs. ``avg_predictions(by = ..., hypothesis = "pairwise")``.
* **slopes** of numeric predictors: the average marginal effect dE[y]/dx over the observed
  rows (a central finite difference through the fitted design, so transforms such as log(x)
  and poly(x, 2) are differentiated correctly) — ``avg_slopes()``; and, for every
  varying-slope term ``(x | g)``, each level's slope ``b + r`` on the link scale (with the
  family's natural transform: a ratio for log links, an odds ratio for logit links).
* **ranks** of the levels of a factor by marginal mean (1 = largest), with intervals and
  P(rank 1).

Nothing here knows a study's vocabulary: the words come from ``outcome_label`` and ``unit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from biasstats.effects.derived import as_derived, check_derived_request, derived_rows
from biasstats.effects.draws import DrawStore, draws_table
from biasstats.effects.strata import PAIRS_UP_TO, contrast_pairs, split_term, stratified
from biasstats.effects.summaries import verdict
from biasstats.errors import SpecError
from biasstats.inference.predict import (
    aux_of,
    category_names,
    eta_from,
    expected_response,
    fixed_design,
    group_draws,
    hdi,
    level_labels,
    linear_predictor,
    reduced,
    stack_draws,
    varying_design,
)
from biasstats.model.data import design_frame
from biasstats.model.design import has_interaction, model_factors

__all__ = ["EffectsRequest", "Estimands", "default_request", "request_from_spec",
           "compute_estimands", "estimands", "PAIRS_UP_TO"]



@dataclass(frozen=True)
class EffectsRequest:
    """Which estimands to compute (``[effects]`` keys; empty lists mean none)."""

    by: tuple[str, ...] = ()                 # "group", "llm:stereotype"
    contrasts: tuple[str, ...] = ()          # factors whose levels are compared
    reference: dict[str, str] = field(default_factory=dict)   # factor -> reference level
    pairs: str = "auto"                      # "auto" | "all" | "reference"
    slopes: tuple[str, ...] = ()             # numeric predictors (average slope)
    level_slopes: tuple[str, ...] = ()       # varying-slope grouping names ("iat")
    rank: str | None = None
    prob: float = 0.95
    rope: float | None = None                # in the units of contrasts / slopes
    impact: tuple[str, ...] = ()             # "demo | llm:job": ratios to the best level
    strata_weights: str = "equal"            # "equal" | "observed": the average over strata
    derived: tuple = ()                      # ((name, spec.derived.DerivedSpec), ...)


@dataclass(frozen=True)
class Estimands:
    """Long tables: ``means`` (term, level, [category,] scale, mean, sd, hdi_low, hdi_high,
    n_obs),
    ``contrasts`` (term, level "A − B", scale, ...), ``slopes`` (term, level, scale, ...),
    ``ranks`` (term, level, rank_mean, rank_low, rank_high, p_best)."""

    means: pl.DataFrame
    contrasts: pl.DataFrame
    slopes: pl.DataFrame
    ranks: pl.DataFrame
    request: EffectsRequest
    response_scale: str
    notes: tuple[str, ...] = ()
    # the response categories (ordinal / categorical families: every table has a ``category``
    # column, one row per category); () otherwise
    categories: tuple[str, ...] = ()
    # the posterior draws behind every summary row: "<estimand>:<term>:<scale>" ->
    # (level names, (S, levels) array), e.g. "mean:condition:mean", "contrast:condition:ratio"
    draws: dict = field(default_factory=dict, repr=False)
    # within strata (``"cond | test"``): how each contrast varies across the strata (term,
    # level, strata, sd_mean, sd_low, sd_high, p_same_sign), and each level's ratio to the
    # best level with the adverse-impact ratio per stratum (``impact``)
    heterogeneity: pl.DataFrame = field(default_factory=pl.DataFrame)
    impact: pl.DataFrame = field(default_factory=pl.DataFrame)
    # [effects.derived]: one row per derived estimand and stratum (term = its name, level =
    # the stratum, label, null, unit, expr), in declared order
    derived: pl.DataFrame = field(default_factory=pl.DataFrame)

    def all_rows(self) -> pl.DataFrame:
        """Means, contrasts, slopes and impact ratios in one long table (what ``biasstats
        effects`` writes)."""
        parts = [self.means.with_columns(pl.lit("mean").alias("estimand")),
                 self.contrasts.with_columns(pl.lit("contrast").alias("estimand")),
                 self.slopes.with_columns(pl.lit("slope").alias("estimand")),
                 self.impact.rename({"estimand": "impact"}).with_columns(
                     pl.lit("impact").alias("estimand")) if self.impact.height
                 else pl.DataFrame(),
                 self.derived.with_columns(pl.lit("derived").alias("estimand"))]
        rows = pl.concat([p for p in parts if p.height], how="diagonal_relaxed")
        if "scale" not in rows.columns:
            return rows
        unit = pl.col("scale").replace_strict(self.units(), default="", return_dtype=pl.Utf8)
        own = pl.col("unit").fill_null("") if "unit" in rows.columns else pl.lit(None)
        return rows.with_columns(pl.when(pl.col("estimand") == "derived").then(own)
                                 .otherwise(unit).alias("unit"))

    def draws_table(self) -> pl.DataFrame:
        """The draws behind every row of :meth:`all_rows`, one row per (row, draw): the
        columns naming the row (estimand, term, level, scale, stratum, category), ``unit``,
        ``draw`` and ``value`` (what ``estimand_draws.parquet`` holds)."""
        if not isinstance(self.draws, DrawStore):
            raise TypeError("these estimands keep no draw identities (not computed by "
                            "compute_estimands)")
        return draws_table(self.draws, self.units())

    def units(self) -> dict[str, str]:
        """The unit of each scale's numbers (for the CSV and Parquet a reader opens without
        the report): percentage points for a difference of probabilities, and so on."""
        probability = self.response_scale == "probability"
        return {"difference": "percentage points" if probability else "outcome units",
                "probability": "probability (0-1)", "mean": "outcome units",
                "ratio": "ratio", "odds_ratio": "odds ratio", "slope": (
                    "percentage points per unit" if probability else "outcome units per unit"),
                RATING: "rating", RATING_DIFFERENCE: "rating points"}


# ----------------------------------------------------------------------------- the model's factors
def default_request(spec, prob: float = 0.95, rope: float | None = None) -> EffectsRequest:
    """The estimands read off the formula: every fixed factor's marginal means and contrasts,
    every numeric predictor's average slope, every grouping factor's marginal means, every
    varying-slope term's per-level slopes. No ranks: a grouping factor (a prompt, a name) is
    a nuisance unless the spec says otherwise (``rank = "llm"``)."""
    factors, numeric, groups, varying = model_factors(spec)
    by = tuple(dict.fromkeys([*factors, *groups]))
    return EffectsRequest(by=by, contrasts=tuple(factors), slopes=tuple(numeric),
                          level_slopes=tuple(varying), rank=None, prob=prob, rope=rope)


def request_from_spec(effects, spec, *, study=None) -> EffectsRequest:
    """``[effects]`` (a :class:`~biasstats.spec.schema.EffectsSpec`) over the formula's
    defaults. For the outcome a registered study codes (``study``: its
    :class:`biasstats.registry.Study`, e.g. a congruence coding) the per-level means and ranks
    are the study's own tables (and its ROPE is on its own scale), so only contrasts and slopes
    are added here unless ``by`` / ``rank`` are given."""
    own = study is not None
    d = default_request(spec, prob=effects.hdi_prob)
    by = effects.by if effects.by is not None else ([] if own else d.by)
    rank = effects.rank if effects.rank is not None else (None if own else d.rank)
    return EffectsRequest(
        by=tuple(by), contrasts=tuple(effects.contrasts if effects.contrasts is not None
                                      else d.contrasts),
        reference=dict(effects.reference), pairs=effects.pairs,
        slopes=tuple(effects.slopes if effects.slopes is not None else d.slopes),
        level_slopes=tuple(effects.level_slopes if effects.level_slopes is not None
                           else d.level_slopes),
        rank=rank, prob=effects.hdi_prob, rope=None if own else effects.rope,
        impact=tuple(effects.impact or ()), strata_weights=effects.strata_weights,
        derived=as_derived(effects.derived))


def check_request(req: EffectsRequest, spec, key: str = "[effects]") -> None:
    """One-line SpecError for an estimand the model cannot give (naming the key). Any factor
    the formula holds — alone, inside an interaction or only in a grouping term — and any
    combination of them (``a:b``) is a valid ``by``, ``contrasts`` and ``rank`` target: its
    levels' marginal means average over the rest of the design, draw by draw."""
    factors, numeric, groups, varying = model_factors(spec)
    outcome = (spec.formula.response, spec.formula.trials)
    columns = list(dict.fromkeys([*factors, *(c for g in groups for c in g.split(":"))]))
    columns = [c for c in columns if c in spec.cells.columns and c not in numeric
               and c not in outcome]
    listing = ", ".join(columns) or "none"

    def factor_term(what: str, term: str) -> None:
        """A factor or combination (``a:b``), or one within strata (``a | s``)."""
        f, stratum = split_term(str(term))
        for part in (f, stratum) if stratum is not None else (f,):
            if not part or not all(col.strip() in columns for col in part.split(":")):
                raise SpecError(f"{key} {what}: '{term}' is not a factor of the model (its "
                                f"factors: {listing}; within strata: 'a | b')")

    for term in req.by:
        factor_term("by", term)
    for f in req.contrasts:
        if f not in numeric:  # a numeric one is reported as a slope (see resolve_request)
            factor_term("contrasts", f)
    for x in req.slopes:
        if x not in numeric:
            raise SpecError(f"{key} slopes: '{x}' is not a numeric predictor of the model "
                            f"(numeric predictors: {', '.join(numeric) or 'none'})")
    for g in req.level_slopes:
        if g not in varying:
            raise SpecError(f"{key} level_slopes: '{g}' is not a varying-slope term of the "
                            f"model (varying-slope terms: {', '.join(varying) or 'none'})")
    if req.rank is not None:
        factor_term("rank", req.rank)
    for term in req.impact:
        factor_term("impact", term)
        if split_term(term)[1] is None:
            raise SpecError(f"{key} impact: '{term}' needs strata, e.g. '{term} | llm' (each "
                            "level's rate against the best level within each stratum)")
    for f, ref in req.reference.items():
        factor_term("reference", f)
        _, labels = level_labels(spec.cells, tuple(split_term(str(f))[0].split(":")))
        levels = {str(v) for v in labels}
        if str(ref) not in levels:
            raise SpecError(f"{key} reference: level '{ref}' of '{f}' is not in the data "
                            f"(levels: {', '.join(sorted(levels)[:12])})")
    check_derived_request(req.derived, spec, key)


def resolve_request(req: EffectsRequest, spec) -> EffectsRequest:
    """A contrast on a numeric predictor becomes its slope."""
    _, numeric, _, _ = model_factors(spec)
    moved = [c for c in req.contrasts if c in numeric]
    if not moved:
        return req
    return replace(req, contrasts=tuple(c for c in req.contrasts if c not in numeric),
                   slopes=tuple(dict.fromkeys([*req.slopes, *moved])))


# ----------------------------------------------------------------------------- summaries
def _summ(draws: np.ndarray, prob: float, rope: tuple[float, float] | None,
          null: float | None) -> list[dict]:
    d = np.asarray(draws, dtype=float)
    h = hdi(d, prob) if d.shape[0] > 1 else np.stack([d[0], d[0]], axis=1)
    out = []
    for k in range(d.shape[1]):
        row = {"mean": float(d[:, k].mean()), "sd": float(d[:, k].std(ddof=1)),
               "hdi_low": float(h[k, 0]), "hdi_high": float(h[k, 1]), "hdi_prob": prob}
        if null is not None:
            row["p_positive"] = float((d[:, k] > null).mean())
        if rope is not None:
            row.update(rope_low=rope[0], rope_high=rope[1],
                       verdict=verdict(h[k, 0], h[k, 1], rope))
        out.append(row)
    return out


def _rows(term: str, levels, draws, scale: str, prob, rope=None, null=None, n=None) -> list[dict]:
    sums = _summ(draws, prob, rope, null)
    out = []
    for i, (lv, s) in enumerate(zip(levels, sums, strict=True)):
        row = {"term": term, "level": str(lv), "scale": scale, **s}
        if n is not None:
            row["n_obs"] = float(n[i])
        out.append(row)
    return out


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.from_dicts(rows, infer_schema_length=None) if rows else pl.DataFrame(
        schema={"term": pl.Utf8, "level": pl.Utf8, "scale": pl.Utf8, "mean": pl.Float64,
                "hdi_low": pl.Float64, "hdi_high": pl.Float64})


# ----------------------------------------------------------------------------- computation
def _response(fit, spec=None) -> tuple[np.ndarray, list[str] | None]:
    """(S, cells, C) posterior expected response per observation (per row of ``spec``: the
    covariate cells of a pattern-weighted fit) (probability for binomials; of each response
    category for ordinal / categorical families, whose names are returned, else None and
    C = 1)."""
    spec = fit.spec if spec is None else spec
    mu = expected_response(spec.family, linear_predictor(fit, multi=True, spec=spec),
                           aux_of(fit, spec))
    cats = None if spec.family.categories is None else category_names(spec)
    return mu, cats


def _level_average(mu: np.ndarray, w: np.ndarray, labels: np.ndarray):
    """Weighted average of mu (S, cells[, C]) over the cells of each level: (S, levels[, C])."""
    levels, inv = np.unique(labels.astype(str), return_inverse=True)
    W = np.zeros((len(labels), len(levels)))
    W[np.arange(len(labels)), inv] = w
    n = W.sum(axis=0)
    return np.einsum("sn...,nl->sl...", mu, W / n), [str(x) for x in levels], n


def _slope_draws(fit, x: str, spec, cells, h_rel: float = 1e-4):
    """(S, cells, C) dE[y]/dx per covariate cell (``spec``, ``cells``: :func:`reduced`; of
    each category's probability for ordinal / categorical families) by a central difference
    through the fitted design. The step is set by the spread of x over the fit's rows."""

    xs = fit.spec.cells[x].cast(pl.Float64).to_numpy()
    h = h_rel * (float(np.std(xs)) or 1.0)
    post = fit.idata["posterior"].to_dataset()
    fam = spec.family
    aux = aux_of(fit, spec)
    need = [c for c in spec.formula.columns() if c not in (spec.formula.response,
                                                           spec.formula.trials)]
    out = []
    for sign in (+1, -1):
        pdf = design_frame(cells.select(need).with_columns(
            (pl.col(x).cast(pl.Float64) + sign * h).alias(x)))
        terms = [(group_draws(post, g), g.idx, varying_design(g, pdf)) for g in spec.groups]
        out.append(expected_response(fam, eta_from(post, spec, fixed_design(spec, pdf), terms), aux))
    return (out[0] - out[1]) / (2 * h)


def _per_category(term: str, levels, m: np.ndarray, cats, scale: str, prob, rope=None,
                  null=None, n=None) -> list[dict]:
    """Summary rows of (S, levels, C) draws; a ``category`` column when there are categories."""
    if cats is None:
        return _rows(term, levels, m[:, :, 0], scale, prob, rope, null, n)
    out = []
    for c, cat in enumerate(cats):
        out += [{"term": r["term"], "level": r["level"], "category": cat, **r}
                for r in _rows(term, levels, m[:, :, c], scale, prob, rope, null, n)]
    return out


def _keep_draws(draws: DrawStore, key: str, levels, m: np.ndarray, cats) -> None:
    """``draws[key]`` (one category) or ``draws[key:category]`` for each category; the key
    is ``<estimand>:<term>:<scale>``."""
    estimand, rest = key.split(":", 1)
    term, scale = rest.rsplit(":", 1)
    if cats is None:
        draws.put(key, levels, m[:, :, 0], estimand=estimand, term=term, scale=scale)
        return
    for c, cat in enumerate(cats):
        draws.put(f"{key}:{cat}", levels, m[:, :, c], estimand=estimand, term=term,
                  scale=scale, category=cat)


Draws = DrawStore


def _means(spec, req: EffectsRequest, mu, w, cells, cats, prob, draws: Draws,
           notes: list[str], scale: str | None = None):
    """Summary rows of the marginal means (the overall mean, then each ``by`` term) and the
    per-level draws (S, levels, C) of every term a mean, contrast or rank needs (on
    ``scale``: the family's response scale unless given)."""
    scale = scale or spec.family.response_scale
    overall = np.einsum("snc,n->sc", mu, w / w.sum())[:, None, :]
    means = _per_category("overall", ["all"], overall, cats, scale, prob, n=[w.sum()])
    _keep_draws(draws, f"mean:overall:{scale}", ["all"], overall, cats)
    per_term: dict[str, tuple[list[str], np.ndarray]] = {}
    wanted = [t for t in dict.fromkeys([*req.by, *req.contrasts,
                                        *([req.rank] if req.rank else [])]) if "|" not in t]
    for term in wanted:
        key = tuple(term.split(":"))
        if term in req.by and len(key) > 1 and not has_interaction(spec, key):
            notes.append(f"{term} cells not reported: the model has no {term} term, so its "
                         f"cells would be additive by construction (add (1|{term}) or "
                         f"{' * '.join(key)} to the formula)")
            if term not in req.contrasts and term != req.rank:
                continue
        _, labels = level_labels(cells, key)
        m, levels, n = _level_average(mu, w, labels)
        per_term[term] = (levels, m)
        if term in req.by and (len(key) == 1 or has_interaction(spec, key)):
            means += _per_category(term, levels, m, cats, scale, prob, n=n)
            _keep_draws(draws, f"mean:{term}:{scale}", levels, m, cats)
    return means, per_term


def _contrasts(fam, req: EffectsRequest, per_term, cats, pct: float, rope_d,
               draws: Draws, ratios: bool = True) -> list[dict]:
    """Differences between levels (percentage points for probabilities) and the family's
    ratio scales (ratios, odds ratios) of every ``contrasts`` factor."""
    prob = req.prob
    contrasts: list[dict] = []
    for f in (c for c in req.contrasts if "|" not in c):  # within strata: effects.strata
        levels, m = per_term[f]
        ref = req.reference.get(f)
        pairs = contrast_pairs(levels, None if ref is None else str(ref), req.pairs)
        if not pairs:
            continue
        names = [f"{levels[i]} − {levels[j]}" for i, j in pairs]
        diff = np.stack([m[:, i] - m[:, j] for i, j in pairs], axis=1) * pct
        contrasts += _per_category(f, names, diff, cats, "difference", prob, rope_d, 0.0)
        _keep_draws(draws, f"contrast:{f}:difference", names, diff, cats)
        names_r = [f"{levels[i]} / {levels[j]}" for i, j in pairs]
        for cs in fam.contrast_scales if ratios else ():
            if cs == "ratio":
                r = np.stack([m[:, i] / m[:, j] for i, j in pairs], axis=1)
            elif cs == "odds_ratio":
                odds = m / (1 - m)
                r = np.stack([odds[:, i] / odds[:, j] for i, j in pairs], axis=1)
            else:
                continue
            contrasts += _per_category(f, names_r, r, cats, cs, prob, None, 1.0)
            _keep_draws(draws, f"contrast:{f}:{cs}", names_r, r, cats)
    return contrasts


def _slopes(fit, req: EffectsRequest, cats, pct: float, rope_d, draws: Draws,
            S: int, red) -> list[dict]:
    """Average slopes of the numeric predictors (over the covariate cells ``red`` =
    :func:`reduced`, weighted by the observations each stands for), then each level's slope
    (b + r, on the link's natural scale) of the varying-slope terms (``S`` draws)."""
    spec = fit.spec
    prob = req.prob
    slopes: list[dict] = []
    red_spec, red_cells, w_cells = red
    for x in req.slopes:
        d = _slope_draws(fit, x, red_spec, red_cells) * pct  # a central difference per cell
        ame = np.einsum("snc,n->sc", d, w_cells / w_cells.sum())[:, None, :]
        slopes += _per_category(x, ["average"], ame, cats, "slope", prob, rope_d, 0.0)
        _keep_draws(draws, f"slope:{x}:slope", ["average"], ame, cats)
    post = fit.idata["posterior"].to_dataset()
    tname, tf = spec.family.slope_scale
    for gname in req.level_slopes:
        g = next(gg for gg in spec.groups if gg.name == gname)
        r = group_draws(post, g)  # (S, coefs, levels)
        b = stack_draws(post, "b") if spec.fixed_names else np.zeros((S, 0))
        for k, coef in enumerate(g.coefs):
            if coef == "Intercept":
                continue
            base = (b[:, spec.fixed_names.index(coef)] if coef in spec.fixed_names
                    else np.zeros(S))
            per = base[:, None] + r[:, k, :]
            null = 1.0 if tname != "difference" else 0.0
            slopes += _rows(f"{coef} | {gname}", g.levels, tf(per), tname, prob, None, null)
            draws.put(f"slope:{coef} | {gname}:{tname}", g.levels, tf(per),
                      estimand="slope", term=f"{coef} | {gname}", scale=tname)
    return slopes


def _ranks(fam, req: EffectsRequest, per_term, cats, notes: list[str]) -> pl.DataFrame:
    """Posterior ranks of the levels of ``rank`` (1 = the highest expected outcome in a
    draw), with their interval and P(rank 1); none (and a note) for category families."""
    if req.rank and "|" in req.rank:
        return pl.DataFrame(schema={"term": pl.Utf8, "level": pl.Utf8})  # effects.strata
    if req.rank and cats is None:
        levels, m = per_term[req.rank]
        m = m[:, :, 0]
        S = m.shape[0]
        order = np.argsort(-m, axis=1)
        rank = np.empty_like(order)
        rank[np.arange(S)[:, None], order] = np.arange(1, len(levels) + 1)
        lo, hi = np.percentile(rank, [100 * (1 - req.prob) / 2, 100 * (1 + req.prob) / 2],
                               axis=0)
        return pl.DataFrame({"term": [req.rank] * len(levels), "level": levels,
                             "rank_mean": rank.mean(axis=0), "rank_low": lo, "rank_high": hi,
                             "p_best": (rank == 1).mean(axis=0)}).sort("rank_mean")
    if req.rank:
        notes.append(f"ranks of {req.rank} not computed: family '{fam.name}' has one "
                     "probability per response category, not one expected outcome per row")
    return pl.DataFrame(schema={"term": pl.Utf8, "level": pl.Utf8})


RATING = "expected rating"  # the scale of an ordinal outcome's expected value
RATING_DIFFERENCE = "difference (rating points)"  # its contrasts


def category_values(cats: list[str]) -> np.ndarray:
    """The numbers an ordinal outcome's categories stand for: their own values when every
    category is a number (a 1-4 rating), else their order 1 … K."""
    try:
        return np.array([float(c) for c in cats])
    except ValueError:
        return np.arange(1.0, len(cats) + 1.0)


def _expected_rating(spec, fam, req: EffectsRequest, mu, w, cells, cats, draws: Draws,
                     notes: list[str]) -> tuple[list[dict], list[dict]]:
    """Means and contrasts of E[rating] = sum_k value_k P(y = k) (draw by draw): a mean
    rating per level and differences in rating points, beside the category probabilities."""
    rating = np.einsum("snc,c->sn", mu, category_values(cats))[:, :, None]
    means, per_term = _means(spec, req, rating, w, cells, None, req.prob, draws, [], RATING)
    rope = None if req.rope is None else (-req.rope, req.rope)
    own = DrawStore()
    diffs = _contrasts(fam, req, per_term, None, 1.0, rope, own, ratios=False)
    draws.merge(own, lambda k: k.replace(":difference", f":{RATING_DIFFERENCE}"),
                scale=RATING_DIFFERENCE)
    return means, [{**r, "scale": RATING_DIFFERENCE} for r in diffs]


def compute_estimands(fit, request: EffectsRequest | None = None) -> Estimands:
    """The requested (default: read off the formula) estimands of a fit.

    For ordinal and categorical families the expected response is the probability of each
    response category: means, contrasts (differences in percentage points) and average slopes
    are given per category, in long tables with a ``category`` column, and draws are kept
    under ``"<estimand>:<term>:<scale>:<category>"``. Ranks need one expected outcome per
    row and are not computed for them (a note says so)."""
    spec = fit.spec
    fam = spec.family
    req = request if request is not None else default_request(spec)
    check_request(req, spec)
    req = resolve_request(req, spec)
    scale = fam.response_scale
    fam.check_rope(req.rope)
    # on covariate cells: the patterns of a pattern-weighted fit share their cell's mean
    red_spec, cells, w = reduced(fit)
    mu, cats = _response(fit, red_spec)
    pct = 100.0 if scale == "probability" else 1.0
    rope_d = None if req.rope is None else (-req.rope * pct, req.rope * pct)
    notes: list[str] = []
    draws = DrawStore()
    means, per_term = _means(spec, req, mu, w, cells, cats, req.prob, draws, notes)
    contrasts = _contrasts(fam, req, per_term, cats, pct, rope_d, draws)
    slopes = _slopes(fit, req, cats, pct, rope_d, draws, mu.shape[0], (red_spec, cells, w))
    ranks = _ranks(fam, req, per_term, cats, notes)
    within = stratified(req, mu, w, cells, cats, pct, scale,
                        [c for c in fam.contrast_scales if c != "difference"],
                        lambda d, null, rope: _summ(d, req.prob, rope, null), draws, notes)
    if within["ranks"]:
        ranks = pl.concat([ranks, pl.DataFrame(within["ranks"])], how="diagonal_relaxed")
    if fam.ordered and cats:  # ordinal outcomes: the expected rating too, in rating points
        more = _expected_rating(spec, fam, req, mu, w, cells, cats, draws, notes)
        means, contrasts = means + more[0], contrasts + more[1]
    derived = derived_rows(req.derived, red_spec, mu, w, cells, cats,
                           category_values(cats) if fam.ordered and cats else None, req.prob,
                           draws, notes)
    return Estimands(_frame(means + within["means"]), _frame(contrasts + within["contrasts"]),
                     _frame(slopes), ranks, req, scale, notes=tuple(notes), draws=draws,
                     categories=tuple(cats or ()), heterogeneity=_frame(within["heterogeneity"]),
                     impact=_frame(within["impact"]), derived=_frame(derived))


def estimands(fit, by=None, contrasts=None, slopes=None, level_slopes=None, rank=None,
              reference=None, pairs: str = "auto", prob: float = 0.95, rope=None,
              impact=(), strata_weights: str = "equal", derived=None) -> Estimands:
    """The estimands of a fit (``biasstats.estimands(fit, by="llm", ...)``): marginal means
    ``by`` factor, ``contrasts`` between levels, average ``slopes``, per-level slopes of
    varying-slope terms, ``rank``; ``impact``: ratios to the best level within strata. A term
    ``"a | s"`` asks within each level of ``s`` (contrasts also averaged over the strata with
    ``strata_weights``); ``derived``: ``{name: {"expr": ..., "within": ...}}`` as
    ``[effects.derived.<name>]`` tables (:mod:`biasstats.spec.derived`). Omitted arguments take the formula's defaults; pass ``[]`` for none. Returns an :class:`Estimands` whose tables hold summaries (``.means``,
    ``.contrasts``, ``.slopes``, ``.ranks``) and whose ``.draws`` hold the draws behind them."""
    d = default_request(fit.spec, prob=prob, rope=rope)

    def pick(value, default):
        return tuple([value] if isinstance(value, str) else value) if value is not None \
            else default

    req = EffectsRequest(
        by=pick(by, d.by), contrasts=pick(contrasts, d.contrasts),
        reference=dict(reference or {}), pairs=pairs, slopes=pick(slopes, d.slopes),
        level_slopes=pick(level_slopes, d.level_slopes),
        rank=rank if rank is not None else d.rank, prob=prob, rope=rope,
        impact=tuple([impact] if isinstance(impact, str) else impact),
        strata_weights=strata_weights, derived=as_derived(derived))
    return compute_estimands(fit, req)
