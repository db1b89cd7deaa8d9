"""Estimands within strata: ``"cond | test"`` asks the study's own question inside each level
of another factor (or combination), and the adverse-impact ratio of ``impact``.

For a term ``f | s`` every number is computed draw by draw from the marginal means of the
levels of ``f`` within each stratum of ``s`` (the posterior expected response averaged over
the observed rows of that (level, stratum), each row weighted by the observations it stands
for):

* **means** ``by = ["f | s"]``: each level's mean within each stratum;
* **contrasts** ``contrasts = ["f | s"]``: the contrast within each stratum (differences, and
  the family's ratio scales), their **average over strata** (equal weights, or the observed
  weights with ``[effects] strata_weights = "observed"``) and how much they **vary** across
  strata: the SD of the stratum contrasts and P(the contrast has the same sign in every
  stratum);
* **ranks** ``rank = "f | s"``: the levels' ranks within each stratum;
* **impact** ``impact = ["f | s"]``: within each stratum, each level's ratio to a declared
  reference level (``reference = {f = "x"}``: a fixed estimand), each level's ratio to the
  best level and the adverse-impact ratio worst / best (the pair with the highest and lowest
  posterior mean: chosen from the data), with P(ratio < 0.8) (the four-fifths rule) and
  P(each level is the best / the worst) — for rates and other positive outcomes.

A stratum lacking a level of ``f`` gives no contrast for the pairs with that level (a note says
which). Nothing here knows a study's vocabulary.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from biasstats.inference.predict import level_labels

__all__ = ["FOUR_FIFTHS", "PAIRS_UP_TO", "SELECTION_SURE", "contrast_pairs", "reference_level",
           "split_term", "stratified"]

FOUR_FIFTHS = 0.8  # the adverse-impact threshold of the four-fifths rule
PAIRS_UP_TO = 4  # "auto" contrasts: all pairs up to this many levels, else vs the reference
# impact: the data-selected best / worst pair is called clear when the posterior probability
# that the chosen best is the best and the chosen worst the worst are both at least this
SELECTION_SURE = 0.9


def contrast_pairs(levels: list[str], ref: str | None, pairs: str) -> list[tuple[int, int]]:
    """The (i, j) level pairs a contrast compares, i − j: all pairs (later − earlier: with the
    reference first, "treated − control") up to :data:`PAIRS_UP_TO` levels with ``"auto"``,
    else each level against the reference (``ref``, or the first level)."""
    L = len(levels)
    if pairs == "all" or (pairs == "auto" and L <= PAIRS_UP_TO and ref is None):
        # later − earlier: with the reference first, "treated − control"
        return [(j, i) for i, j in itertools.combinations(range(L), 2)]
    r = levels.index(ref) if ref is not None else 0
    return [(i, r) for i in range(L) if i != r]


def split_term(term: str) -> tuple[str, str | None]:
    """``"cond | test"`` -> ("cond", "test"); ``"cond"`` -> ("cond", None)."""
    if "|" not in term:
        return term.strip(), None
    f, _, s = term.partition("|")
    return f.strip(), s.strip()


def _cell_means(mu: np.ndarray, w: np.ndarray, labels: np.ndarray, strata: np.ndarray):
    """(levels, strata names, m (S, levels, strata, C), n (levels, strata)) of the weighted
    average of ``mu`` (S, cells, C) over the cells of each (level, stratum); NaN where a
    (level, stratum) has no cell."""
    levels = list(dict.fromkeys(sorted(map(str, labels))))
    names = list(dict.fromkeys(sorted(map(str, strata))))
    S, _, C = mu.shape
    m = np.full((S, len(levels), len(names), C), np.nan)
    n = np.zeros((len(levels), len(names)))
    lab, st = np.asarray(labels).astype(str), np.asarray(strata).astype(str)
    for i, lv in enumerate(levels):
        for j, sn in enumerate(names):
            rows = (lab == lv) & (st == sn)
            if rows.any():
                ww = w[rows]
                m[:, i, j, :] = np.einsum("snc,n->sc", mu[:, rows, :], ww / ww.sum())
                n[i, j] = ww.sum()
    return levels, names, m, n


class Stratified:
    """The per-(level, stratum) draws of one ``f | s`` term."""

    def __init__(self, term: str, mu, w, cells: pl.DataFrame):
        self.term = term
        self.factor, self.stratum = split_term(term)
        _, labels = level_labels(cells, tuple(self.factor.split(":")))
        _, strata = level_labels(cells, tuple(self.stratum.split(":")))
        self.levels, self.strata, self.m, self.n = _cell_means(mu, w, labels, strata)


def _weights(st: Stratified, how: str) -> np.ndarray:
    """Weights of the strata in the average contrast: equal, or the observations each holds."""
    if how == "observed":
        n = st.n.sum(axis=0)
        return n / n.sum()
    return np.full(len(st.strata), 1.0 / len(st.strata))


def stratified(req, mu, w, cells, cats, pct: float, scale: str, ratio_scales, summarise,
               draws, notes: list[str]) -> dict[str, list[dict]]:
    """Rows of every within-strata estimand of ``req``: ``means``, ``contrasts``,
    ``heterogeneity``, ``ranks`` and ``impact`` (long tables with a ``stratum`` column).
    ``summarise(draws (S, K), null, rope) -> [summary dicts]`` summarises draws as the other
    estimands are; ``ratio_scales`` are the family's ratio contrast scales."""
    out: dict[str, list[dict]] = {k: [] for k in ("means", "contrasts", "heterogeneity",
                                                  "ranks", "impact")}
    terms = [t for t in dict.fromkeys([*req.by, *req.contrasts, *req.impact,
                                       *([req.rank] if req.rank else [])]) if "|" in t]
    how = getattr(req, "strata_weights", "equal")
    for term in terms:
        st = Stratified(term, mu, w, cells)
        if term in req.by:
            out["means"] += _means(st, cats, scale, summarise, draws)
        if term in req.contrasts:
            _contrasts(st, req, cats, pct, ratio_scales, summarise, draws, notes, how, out)
        if term == req.rank:
            out["ranks"] += _ranks(st, req.prob, cats, notes)
        if term in req.impact:
            out["impact"] += _impact(st, req, cats, summarise, draws, notes)
    return out


def _category_loop(cats):
    return [(None, 0)] if cats is None else [(c, k) for k, c in enumerate(cats)]


def _means(st: Stratified, cats, scale: str, summarise, draws) -> list[dict]:
    rows = []
    for cat, k in _category_loop(cats):
        for j, sn in enumerate(st.strata):
            keep = [i for i in range(len(st.levels)) if st.n[i, j] > 0]
            d = st.m[:, keep, j, k]
            for r, i in zip(summarise(d, None, None), keep, strict=True):
                rows.append({"term": st.term, "stratum": sn, "level": st.levels[i],
                             **({"category": cat} if cat is not None else {}),
                             "scale": scale, **r, "n_obs": float(st.n[i, j])})
            draws.put(f"mean:{st.term}:{sn}" + (f":{cat}" if cat else ""),
                      [st.levels[i] for i in keep], d, estimand="mean", term=st.term,
                      stratum=sn, category=cat, scale=scale)
    return rows


def _pairs(st: Stratified, req) -> list[tuple[int, int]]:
    return contrast_pairs(st.levels, reference_level(req, st.term), req.pairs)


def _contrasts(st: Stratified, req, cats, pct, ratio_scales, summarise, draws, notes, how,
               out) -> None:
    pairs = _pairs(st, req)
    wts = _weights(st, how)
    avg_name = f"average ({how} weights)"
    for cat, k in _category_loop(cats):
        extra = {"category": cat} if cat is not None else {}
        for scale in ("difference", *ratio_scales):
            for i, j in pairs:
                name = (f"{st.levels[i]} − {st.levels[j]}" if scale == "difference"
                        else f"{st.levels[i]} / {st.levels[j]}")
                a, b = st.m[:, i, :, k], st.m[:, j, :, k]  # (S, strata)
                if scale == "difference":
                    c, null = (a - b) * pct, 0.0
                elif scale == "ratio":
                    c, null = a / b, 1.0
                else:  # odds ratio
                    c, null = (a / (1 - a)) / (b / (1 - b)), 1.0
                have = ~np.isnan(c).any(axis=0)
                if not have.all():
                    missing = [s for s, h in zip(st.strata, have, strict=True) if not h]
                    notes.append(f"{st.term}: no {name} contrast in stratum "
                                 f"{', '.join(missing)} (a level is not observed there)")
                if not have.any():
                    continue
                strata = [s for s, h in zip(st.strata, have, strict=True) if h]
                cs = c[:, have]
                rope = None
                if scale == "difference" and req.rope is not None:
                    rope = (-req.rope * pct, req.rope * pct)
                for r, sn in zip(summarise(cs, null, rope), strata, strict=True):
                    out["contrasts"].append({"term": st.term, "stratum": sn, "level": name,
                                             **extra, "scale": scale, **r})
                ww = wts[have] / wts[have].sum()
                avg = (np.log(cs) @ ww if scale != "difference" else cs @ ww)
                avg = np.exp(avg) if scale != "difference" else avg  # ratios: geometric
                (r,) = summarise(avg[:, None], null, rope)
                out["contrasts"].append({"term": st.term, "stratum": avg_name, "level": name,
                                         **extra, "scale": scale, **r})
                key = f"contrast:{st.term}:{scale}:{name}" + (f":{cat}" if cat else "")
                draws.put(key, [*strata, avg_name], np.column_stack([cs, avg]),
                          along="stratum", estimand="contrast", term=st.term, level=name,
                          scale=scale, category=cat)
                if scale == "difference" and cs.shape[1] > 1:
                    out["heterogeneity"].append(_spread(st, name, extra, cs, summarise))


def _spread(st: Stratified, name: str, extra: dict, cs: np.ndarray, summarise) -> dict:
    """How much a contrast varies across strata: the SD of the stratum contrasts (draw by
    draw) and P(the same sign in every stratum)."""
    sd = cs.std(axis=1, ddof=1)
    (r,) = summarise(sd[:, None], None, None)
    same = float(((cs > 0).all(axis=1) | (cs < 0).all(axis=1)).mean())
    return {"term": st.term, "level": name, **extra, "strata": cs.shape[1],
            "sd_mean": r["mean"], "sd_low": r["hdi_low"], "sd_high": r["hdi_high"],
            "p_same_sign": same}


def _ranks(st: Stratified, prob: float, cats, notes) -> list[dict]:
    if cats is not None:
        notes.append(f"ranks of {st.term} not computed: one probability per response category")
        return []
    rows = []
    for j, sn in enumerate(st.strata):
        keep = [i for i in range(len(st.levels)) if st.n[i, j] > 0]
        m = st.m[:, keep, j, 0]
        S = m.shape[0]
        order = np.argsort(-m, axis=1)
        rank = np.empty_like(order)
        rank[np.arange(S)[:, None], order] = np.arange(1, len(keep) + 1)
        lo, hi = np.percentile(rank, [100 * (1 - prob) / 2, 100 * (1 + prob) / 2], axis=0)
        for q, i in enumerate(keep):
            rows.append({"term": st.term, "stratum": sn, "level": st.levels[i],
                         "rank_mean": float(rank[:, q].mean()), "rank_low": float(lo[q]),
                         "rank_high": float(hi[q]), "p_best": float((rank[:, q] == 1).mean())})
    return rows


def reference_level(req, term: str) -> str | None:
    """The declared reference level of ``term``'s factor (``[effects] reference``, keyed by
    the term itself, ``"f | s"``, or by its factor ``f``), or None."""
    ref = {_spaced(k): v for k, v in getattr(req, "reference", {}).items()}
    found = ref.get(_spaced(term), ref.get(split_term(term)[0]))
    return None if found is None else str(found)


def _spaced(term: str) -> str:
    """A term with canonical spacing (``"a|s1 : s2"`` -> ``"a | s1:s2"``)."""
    f, s = split_term(term)
    f = ":".join(p.strip() for p in f.split(":"))
    return f if s is None else f"{f} | " + ":".join(p.strip() for p in s.split(":"))


def _impact(st: Stratified, req, cats, summarise, draws, notes) -> list[dict]:
    """Per stratum: each level's ratio to a declared reference level (``[effects] reference``;
    a fixed estimand), each level's ratio to the best level and the adverse-impact ratio
    worst / best with P(< 0.8), and P(each level is the best / the worst).

    The best and worst levels are those with the highest and lowest posterior mean (as the
    four-fifths rule compares the groups with the highest and lowest selection rates), fixed
    across draws: the ratio of the highest to the lowest mean *in each draw* is biased away
    from 1 wherever levels are (nearly) tied — a winner's curse that left 90% intervals
    covering the true ratio in 3% of simulated studies with three tied groups (0.59 over six
    strata). The fixed pair is still chosen from the data, so where levels nearly tie the
    chosen pair is uncertain and its ratio under-covers (:data:`biasstats.checks
    .estimand_coverage.DESIGNS` ``bernoulli_impact``): every row carries P(best) and P(worst),
    and the adverse-impact row says ``selection = "uncertain"`` when P(the chosen best is the
    best) or P(the chosen worst is the worst) is below :data:`SELECTION_SURE`. A ratio to a
    declared reference involves no selection and covers at the nominal rate."""
    if cats is not None:
        notes.append(f"impact of {st.term} not computed: one probability per response "
                     "category, not one rate per level")
        return []
    ref = reference_level(req, st.term)
    rows = []
    for j, sn in enumerate(st.strata):
        keep = [i for i in range(len(st.levels)) if st.n[i, j] > 0]
        if len(keep) < 2:
            notes.append(f"impact of {st.term}: stratum {sn} has fewer than two levels")
            continue
        m = st.m[:, keep, j, 0]
        if np.any(m <= 0):
            notes.append(f"impact of {st.term}: ratios need a positive outcome; stratum {sn} "
                         "has a non-positive mean")
            continue
        names = [st.levels[i] for i in keep]
        p_best = np.bincount(np.argmax(m, axis=1), minlength=len(keep)) / m.shape[0]
        p_worst = np.bincount(np.argmin(m, axis=1), minlength=len(keep)) / m.shape[0]
        cols, labels = [], []
        if ref is not None and ref not in names:
            notes.append(f"impact of {st.term}: no ratio to the reference {ref} in stratum "
                         f"{sn} (not observed there)")
        elif ref is not None:
            r0 = names.index(ref)
            others = [q for q in range(len(keep)) if q != r0]
            to_ref = m[:, others] / m[:, [r0]]
            for r, q in zip(summarise(to_ref, 1.0, None), others, strict=True):
                rows.append({"term": st.term, "stratum": sn, "level": f"{names[q]} / {ref}",
                             "estimand": "ratio to reference", **r, "reference": ref,
                             "p_below_four_fifths": float((to_ref[:, others.index(q)]
                                                           < FOUR_FIFTHS).mean()),
                             "p_best": float(p_best[q]), "p_worst": float(p_worst[q])})
            cols.append(to_ref)
            labels += [f"{names[q]} / {ref}" for q in others]
        avg = m.mean(axis=0)
        b, w = int(np.argmax(avg)), int(np.argmin(avg))
        ratio = m / m[:, [b]]
        air = m[:, w] / m[:, b]
        for q, r in enumerate(summarise(ratio, 1.0, None)):
            rows.append({"term": st.term, "stratum": sn, "level": names[q],
                         "estimand": "ratio to best", **r, "best": names[b],
                         "p_below_four_fifths": float((ratio[:, q] < FOUR_FIFTHS).mean()),
                         "p_best": float(p_best[q]), "p_worst": float(p_worst[q])})
        (r,) = summarise(air[:, None], 1.0, None)
        sure = min(p_best[b], p_worst[w]) >= SELECTION_SURE
        rows.append({"term": st.term, "stratum": sn, "level": "min / max",
                     "estimand": "adverse-impact ratio", **r,
                     "worst": names[w], "best": names[b],
                     "p_below_four_fifths": float((air < FOUR_FIFTHS).mean()),
                     "p_best": float(p_best[b]), "p_worst": float(p_worst[w]),
                     "selection": "clear" if sure else "uncertain"})
        draws.put(f"impact:{st.term}:{sn}", [*labels, *names, "min / max"],
                  np.column_stack([*cols, ratio, air]), estimand="impact", term=st.term,
                  stratum=sn)
    return rows
