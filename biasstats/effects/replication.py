"""Published numbers beside the reanalysis (``[[replication]]``, see
:mod:`biasstats.spec.replication`): which estimand row each names, and how the posterior of
that row compares with the published value.

An entry's address is checked twice against the rows of ``estimands.csv``: before sampling,
against the rows the request will give on this data (:func:`expected_rows`: level names,
strata and contrast pairs are known once the design is built), and after, against the
computed rows (:meth:`biasstats.effects.estimands.Estimands.all_rows`). A missing row is one
line listing the estimand's rows (or the estimands, when the estimand itself is missing).

:func:`compare_published` gives one row per entry, from the draws of its estimand row: the
posterior mean and HDI, whether the published value lies inside the HDI, P(same sign) (the
posterior probability that the estimand lies on the published value's side of "no effect":
0 for differences, slopes and means, 1 for ratios), the ratio reanalysis / published, and,
for a published interval, whether the two intervals overlap.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from biasstats.effects.derived import DERIVED_SCALE
from biasstats.effects.estimands import (
    RATING,
    RATING_DIFFERENCE,
    EffectsRequest,
    Estimands,
    resolve_request,
)
from biasstats.effects.strata import contrast_pairs, reference_level, split_term
from biasstats.errors import SpecError
from biasstats.inference.predict import category_names, hdi, level_labels
from biasstats.model.design import has_interaction
from biasstats.spec.replication import normal_level, normal_term

__all__ = ["RATIO_SCALES", "Z95", "compare_published", "expected_rows", "match_entries",
           "row_draws"]

Z95 = 1.959963984540054  # a published standard error's 95% interval: ± Z95 se
RATIO_SCALES = ("ratio", "odds_ratio")  # "no effect" is 1 (impact ratios too)
MAX_LISTED = 12
_ROW_KEYS = ("estimand", "term", "stratum", "level", "scale", "category")


# ----------------------------------------------------------------------------- before sampling
def _levels(cells: pl.DataFrame, term: str) -> list[str]:
    _, labels = level_labels(cells, tuple(term.split(":")))
    return sorted({str(v) for v in labels})


def _pairs_of(levels: list[str], req: EffectsRequest, term: str):
    return contrast_pairs(levels, reference_level(req, term), req.pairs)


def expected_rows(req: EffectsRequest, spec) -> pl.DataFrame:
    """The rows (estimand, term, stratum, level, scale, category) the estimands of ``req``
    will have on the prepared model ``spec`` (its cells, family and terms), known before
    sampling. Rows the draws decide (an impact stratum with a non-positive mean) are kept:
    the check after the fit is exact."""
    req = resolve_request(req, spec)
    fam, cells = spec.family, spec.cells
    cats = category_names(spec) if fam.categories is not None else [None]
    ordinal = fam.ordered and fam.categories is not None
    rows: list[tuple] = []

    def add(kind, term, stratum, levels, scales, with_cats=True):
        for scale in scales:
            for cat in (cats if with_cats else [None]):
                rows.extend((kind, term, stratum, lv, scale, cat) for lv in levels)

    scale = fam.response_scale
    add("mean", "overall", None, ["all"], [scale])
    if ordinal:
        add("mean", "overall", None, ["all"], [RATING], with_cats=False)
    ratio_scales = [c for c in fam.contrast_scales if c != "difference"]
    for term in req.by:
        if "|" in term:
            continue
        key = tuple(term.split(":"))
        if len(key) > 1 and not has_interaction(spec, key):
            continue  # additive by construction: not reported
        add("mean", term, None, _levels(cells, term), [scale])
        if ordinal:
            add("mean", term, None, _levels(cells, term), [RATING], with_cats=False)
    for term in (c for c in req.contrasts if "|" not in c):
        levels = _levels(cells, term)
        pairs = _pairs_of(levels, req, term)
        add("contrast", term, None, [f"{levels[i]} − {levels[j]}" for i, j in pairs],
            ["difference"])
        add("contrast", term, None, [f"{levels[i]} / {levels[j]}" for i, j in pairs],
            ratio_scales)
        if ordinal:
            add("contrast", term, None, [f"{levels[i]} − {levels[j]}" for i, j in pairs],
                [RATING_DIFFERENCE], with_cats=False)
    for x in req.slopes:
        add("slope", x, None, ["average"], ["slope"])
    tname = fam.slope_scale[0]
    for gname in req.level_slopes:
        g = next((gg for gg in spec.groups if gg.name == gname), None)
        for coef in (g.coefs if g is not None else ()):
            if coef != "Intercept":
                add("slope", f"{coef} | {gname}", None, [str(v) for v in g.levels], [tname],
                    with_cats=False)
    _strata_rows(req, cells, scale, ratio_scales, add)
    for name, d in req.derived:  # one row per stratum of its `within` (the level column)
        within = tuple(f.strip() for f in d.within.split(":")) if d.within else ()
        add("derived", name, None, sorted(set(map(str, level_labels(cells, within)[1]))),
            [DERIVED_SCALE], with_cats=False)
    return pl.DataFrame(rows, schema=list(_ROW_KEYS), orient="row")


def _strata_rows(req: EffectsRequest, cells, scale, ratio_scales, add) -> None:
    """The within-strata rows (``"a | s"``) of ``req``: means, contrasts (and their average
    over strata) and impact ratios, per stratum holding the levels."""
    for term in dict.fromkeys([*req.by, *req.contrasts, *req.impact]):
        f, s = split_term(term)
        if s is None:
            continue
        _, labels = level_labels(cells, tuple(f.split(":")))
        _, strata = level_labels(cells, tuple(s.split(":")))
        seen = pl.DataFrame({"level": labels.astype(str), "stratum": strata.astype(str)}
                            ).unique()
        levels = sorted(set(seen["level"]))
        have = {sn: set(seen.filter(pl.col("stratum") == sn)["level"])
                for sn in sorted(set(seen["stratum"]))}
        if term in req.by:
            for sn, lv in have.items():
                add("mean", term, sn, sorted(lv), [scale])
        if term in req.contrasts:
            how = getattr(req, "strata_weights", "equal")
            for i, j in _pairs_of(levels, req, term):
                inside = [sn for sn, lv in have.items() if {levels[i], levels[j]} <= lv]
                if not inside:
                    continue
                for sn in [*inside, f"average ({how} weights)"]:
                    add("contrast", term, sn, [f"{levels[i]} − {levels[j]}"], ["difference"])
                    add("contrast", term, sn, [f"{levels[i]} / {levels[j]}"], ratio_scales)
        if term in req.impact:
            ref = reference_level(req, term)
            for sn, lv in have.items():
                if len(lv) >= 2:
                    to_ref = [f"{v} / {ref}" for v in sorted(lv) if v != ref] \
                        if ref in lv else []
                    add("impact", term, sn, [*to_ref, *sorted(lv), "min / max"], [None],
                        with_cats=False)


# ----------------------------------------------------------------------------- matching
def _normal_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The address columns of ``rows`` (estimands.csv or :func:`expected_rows`), each there."""
    out = rows.with_row_index("__row")
    for c in _ROW_KEYS:
        if c not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c))
    return out.with_columns(pl.col("term").map_elements(normal_term, return_dtype=pl.Utf8))


def _listing(items) -> str:
    items = [str(x) for x in items]
    more = len(items) - MAX_LISTED
    return ", ".join(items[:MAX_LISTED]) + (f", … and {more} more" if more > 0 else "")


_PLURAL = {"stratum": "strata", "level": "levels", "scale": "scales", "category": "categories"}


def match_entries(entries, rows: pl.DataFrame, where: str = "") -> list[int]:
    """The index in ``rows`` of the one row each ``[[replication]]`` entry names (``rows``:
    estimands.csv's rows, or :func:`expected_rows`); a SpecError line (prefixed ``where``)
    listing what the estimand has when an entry names no row (its estimands, or the strata,
    levels, scales or categories of the rows its other keys pick) or several."""
    rows = _normal_rows(rows)
    out = []
    for i, e in enumerate(entries, 1):
        head = f"{where}[[replication]] entry {i}: {e.describe()}"
        hit = rows.filter((pl.col("estimand") == e.kind) & (pl.col("term") == e.term))
        if not hit.height:
            names = dict.fromkeys(f"{k}:{t}" for k, t in
                                  rows.select("estimand", "term").iter_rows())
            raise SpecError(f"{head}: this analysis has no such estimand (its estimands: "
                            f"{_listing(names)})")
        picked = [f'"{e.kind}:{e.term}"']
        for key in ("stratum", "level", "scale", "category"):
            want = getattr(e, key)
            have = list(dict.fromkeys(v for v in hit[key].to_list() if v is not None))
            if want is None:
                continue
            want = normal_level(want) if key == "level" else want.strip()
            if want not in have:
                raise SpecError(f"{head}: no such row (rows of {' with '.join(picked)}: "
                                f"{_PLURAL[key]} {_listing(have) or 'none'})")
            hit = hit.filter(pl.col(key) == want)
            picked.append(f'{key} "{want}"')
        if hit.height > 1:
            key = next(k for k in ("stratum", "level", "scale", "category")
                       if hit[k].n_unique() > 1)
            raise SpecError(f"{head}: {hit.height} rows match; add {key} (rows of "
                            f"{' with '.join(picked)}: {_PLURAL[key]} "
                            f"{_listing(hit[key].unique(maintain_order=True))})")
        out.append(int(hit["__row"][0]))
    return out


# ----------------------------------------------------------------------------- the comparison
def row_draws(est: Estimands, row: dict) -> np.ndarray:
    """The (S,) posterior draws behind one summary row of ``est`` (a row of ``all_rows()``)."""
    kind, term, level = row["estimand"], row["term"], row["level"]
    stratum, scale, cat = row.get("stratum"), row.get("scale"), row.get("category")
    suffix = f":{cat}" if cat is not None else ""
    if kind == "derived":
        key, pick = f"derived:{term}", level
    elif kind == "impact":
        key, pick = f"impact:{term}:{stratum}", level
    elif stratum is not None and kind == "mean":
        key, pick = f"mean:{term}:{stratum}{suffix}", level
    elif stratum is not None:
        key, pick = f"contrast:{term}:{scale}:{level}{suffix}", stratum
    else:
        key, pick = f"{kind}:{term}:{scale}{suffix}", level
    names, d = est.draws[key]
    return np.asarray(d[:, list(names).index(pick)], dtype=float)


def compare_published(est: Estimands, entries, where: str = "") -> pl.DataFrame:
    """One row per ``[[replication]]`` entry: its address, the published value and interval,
    the posterior mean and HDI of the row it names, ``inside`` (the published value lies in
    the HDI), ``p_same_sign``, ``ratio`` (posterior mean / published) and ``overlap`` (the
    published interval meets the HDI; null without one). Empty without entries."""
    if not entries:
        return pl.DataFrame()
    rows = est.all_rows()
    idx = match_entries(entries, rows, where)
    prob = est.request.prob
    out = []
    for e, k in zip(entries, idx, strict=True):
        r = rows.row(k, named=True)
        d = row_draws(est, r)
        lo, hi = (hdi(d[:, None], prob)[0] if d.shape[0] > 1 else (d[0], d[0]))
        scale = r.get("scale")
        null = (float(r["null"]) if r["estimand"] == "derived" else
                1.0 if scale in RATIO_SCALES or r["estimand"] == "impact" else 0.0)
        pub = float(e.published)
        plo, phi = (e.interval if e.interval is not None else
                    (pub - Z95 * e.se, pub + Z95 * e.se) if e.se is not None else (None, None))
        same = (float(((d - null) * (pub - null) > 0).mean()) if pub != null else None)
        mean = float(d.mean())
        out.append({
            "estimand": e.estimand, "term": r["term"], "stratum": r.get("stratum"),
            "level": r["level"], "category": r.get("category"), "scale": scale,
            "unit": r.get("unit") or ("ratio" if r["estimand"] == "impact" else ""),
            "citation": e.citation, "published": pub,
            "published_low": None if plo is None else float(plo),
            "published_high": None if phi is None else float(phi),
            "published_interval": ("reported" if e.interval is not None else
                                   "± 1.96 SE" if e.se is not None else None),
            "mean": mean, "hdi_low": float(lo), "hdi_high": float(hi), "hdi_prob": prob,
            "inside": bool(lo <= pub <= hi), "p_same_sign": same,
            "ratio": mean / pub if pub != 0 else None,
            "overlap": None if plo is None else bool(plo <= hi and lo <= phi),
        })
    return pl.from_dicts(out, infer_schema_length=None)
