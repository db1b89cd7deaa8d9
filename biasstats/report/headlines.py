"""The estimands' findings: plain sentences with units, in the outcome's own words, led by
what the spec declared.

:func:`estimand_findings` says first what ``[effects]`` declared, in the order the spec
writes it (``by``, ``contrasts``, ``impact``, ``rank``, ... as their keys come, each list in
its order: :func:`biasstats.spec.declared.declared_estimands`), then the overall mean, then
what the formula implied (contrasts of fixed factors, average slopes). A grouping factor
(``(1|prompt)``) is never ranked or led with unless the spec names it in ``rank`` or ``by``.
Nothing here knows a study's vocabulary; long level names arrive already shortened to their
keys (:mod:`biasstats.report.labels`).
"""

from __future__ import annotations

import polars as pl

from biasstats.effects.estimands import PAIRS_UP_TO, Estimands
from biasstats.effects.strata import SELECTION_SURE, split_term
from biasstats.report.derived_outputs import derived_findings
from biasstats.report.estimand_outputs import _SCALE_NAMES, Wording, _ci, _num

__all__ = ["MAX_LISTED_LEVELS", "estimand_findings"]

MAX_LISTED_LEVELS = 6  # a sentence lists every level up to this many, else the extremes
MAX_LISTED_STRATA = 6


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _rows(df: pl.DataFrame, term: str) -> pl.DataFrame:
    return df.filter(pl.col("term") == term) if df.height and "term" in df.columns else \
        df.clear()


def _v(wording: Wording, r: dict) -> str:
    return f"{wording.value(r['mean'])} ({_ci(r)})"


# ----------------------------------------------------------------------------- per estimand
def _means(est: Estimands, w: Wording, term: str, pct: int) -> list[str]:
    df = _rows(est.means, term)
    if not df.height:
        return []
    f, s = split_term(term)
    rows = list(df.sort("mean", descending=True).iter_rows(named=True))
    if s is not None:
        hi, lo = rows[0], rows[-1]
        k = df["stratum"].n_unique()
        return [f"{_cap(w.noun)} by {f} within each {s} ({k} strata; {pct}% HDI): highest, "
                f"{hi['level']} in {hi['stratum']}, {_v(w, hi)}; lowest, {lo['level']} in "
                f"{lo['stratum']}, {_v(w, lo)} (table below)."]
    if len(rows) <= MAX_LISTED_LEVELS:
        return [f"{_cap(w.noun)} by {term} ({pct}% HDI): "
                + ", ".join(f"{r['level']} {_v(w, r)}" for r in rows) + "."]
    hi, lo = rows[0], rows[-1]
    return [f"{_cap(w.noun)} by {term} ranges from {lo['level']}, {_v(w, lo)}, to "
            f"{hi['level']}, {_v(w, hi)}, over its {len(rows)} levels ({pct}% HDI; table "
            "below)."]


def _contrasts(est: Estimands, w: Wording, term: str, pct: int) -> list[str]:
    df = _rows(est.contrasts, term)
    if not df.height:
        return []
    if "|" in term:
        return _within_contrasts(est, w, term, df, pct)
    out = []
    diffs = df.filter(pl.col("scale") == "difference")
    for r in list(diffs.iter_rows(named=True))[:PAIRS_UP_TO]:
        s = (f"{term} {r['level']}: {w.noun} differs by {_num(r['mean'])} "
             f"{w.diff_unit} ({pct}% HDI {_ci(r)})")
        ratio = df.filter((pl.col("scale") != "difference")
                          & (pl.col("level") == r["level"].replace(" − ", " / ")))
        if ratio.height:
            q = ratio.row(0, named=True)
            s += f"; {_SCALE_NAMES[q['scale']].lower()} {_num(q['mean'])} ({_ci(q)})"
        out.append(s + ".")
    if diffs.height > PAIRS_UP_TO:
        out.append(f"… and {diffs.height - PAIRS_UP_TO} more contrasts of {term} "
                   "(table below).")
    return out


def _within_contrasts(est: Estimands, w: Wording, term: str, df: pl.DataFrame,
                      pct: int) -> list[str]:
    """Per pair: the average over strata, its ratio, the range over strata and the spread
    (SD, P(same sign in every stratum))."""
    f, s = split_term(term)
    diffs = df.filter(pl.col("scale") == "difference")
    avg = diffs.filter(pl.col("stratum").str.starts_with("average ("))
    het = _rows(est.heterogeneity, term)
    out = []
    for r in list(avg.iter_rows(named=True))[:PAIRS_UP_TO]:
        per = diffs.filter((pl.col("level") == r["level"])
                           & ~pl.col("stratum").str.starts_with("average ("))
        weights = r["stratum"].removeprefix("average (").removesuffix(")")
        text = (f"{f} {r['level']} within each {s}, averaged over {per.height} strata "
                f"({weights}): {w.noun} differs by {_num(r['mean'])} {w.diff_unit} "
                f"({pct}% HDI {_ci(r)})")
        ratio = df.filter((pl.col("stratum") == r["stratum"]) & (pl.col("scale") != "difference")
                          & (pl.col("level") == r["level"].replace(" − ", " / ")))
        if ratio.height:
            q = ratio.row(0, named=True)
            text += f"; {_SCALE_NAMES[q['scale']].lower()} {_num(q['mean'])} ({_ci(q)})"
        if per.height > 1:
            lo = per.sort("mean").row(0, named=True)
            hi = per.sort("mean").row(-1, named=True)
            text += (f"; over the strata from {_num(lo['mean'])} ({lo['stratum']}) to "
                     f"{_num(hi['mean'])} ({hi['stratum']}) {w.diff_unit}")
        h = het.filter(pl.col("level") == r["level"]) if het.height else het
        if h.height:
            q = h.row(0, named=True)
            text += (f"; SD across strata {_num(q['sd_mean'])} ({_num(q['sd_low'])} to "
                     f"{_num(q['sd_high'])}), P(same sign in every {s}) "
                     f"{q['p_same_sign']:.2f}")
        out.append(_cap(text) + ".")
    if avg.height > PAIRS_UP_TO:
        out.append(f"… and {avg.height - PAIRS_UP_TO} more contrasts of {f} within {s} "
                   "(table below).")
    return out


def _span(rows: pl.DataFrame, what: str) -> str:
    """``from 0.61 in m1:nurse (0.45 to 0.80) to 0.97 in m2:teacher (...)`` of ``rows``
    sorted by mean (``what``: the level's name when the rows are of several levels)."""
    lo, hi = rows.row(0, named=True), rows.row(-1, named=True)
    if rows.height == 1:
        return f"in {lo['stratum']}: {_num(lo['mean'])} ({_ci(lo)})"
    name = (lambda r: f"{r['level']} in {r['stratum']}") if what else (lambda r: r["stratum"])
    return (f"from {_num(lo['mean'])} in {name(lo)} ({_ci(lo)}) to {_num(hi['mean'])} in "
            f"{name(hi)} ({_ci(hi)})")


def _impact(est: Estimands, w: Wording, term: str, pct: int) -> list[str]:
    df = _rows(est.impact, term)
    if not df.height:
        return []
    f, s = split_term(term)
    out = []
    ref = df.filter(pl.col("estimand") == "ratio to reference").sort("mean")
    if ref.height:
        below = int((ref["p_below_four_fifths"] > 0.95).sum())
        out.append(f"Ratio of each {f}'s {w.noun} to {ref['reference'][0]}'s within each {s} "
                   f"({pct}% HDI): {_span(ref, 'level')}; below 0.8 with posterior "
                   f"probability above 0.95 for {below} of {ref.height} {f}-by-{s} cells.")
    air = df.filter(pl.col("estimand") == "adverse-impact ratio").sort("mean")
    if not air.height:
        return out
    below = int((air["p_below_four_fifths"] > 0.95).sum())
    unsure = air.filter(pl.col("selection") == "uncertain")["stratum"].to_list() \
        if "selection" in air.columns else []
    caveat = (f" Which {f} is lowest and which highest is uncertain (posterior probability "
              f"below {SELECTION_SURE:g}) in {len(unsure)} of {air.height} strata "
              f"({', '.join(unsure[:MAX_LISTED_STRATA])}"
              f"{', …' if len(unsure) > MAX_LISTED_STRATA else ''}): there the ratio compares "
              "a pair chosen from the estimates and its interval may be too narrow"
              + (f"; the ratios to {ref['reference'][0]} are the fixed comparison."
                 if ref.height else ".") if unsure else "")
    out.append(f"Adverse-impact ratio of {f} (the lowest {w.noun} over the highest) within "
               f"each {s} ({pct}% HDI): {_span(air, '')}; below 0.8 with posterior "
               f"probability above 0.95 in {below} of {air.height} strata." + caveat)
    return out


def _rank(est: Estimands, w: Wording, term: str) -> list[str]:
    df = _rows(est.ranks, term)
    if not df.height:
        return []
    f, s = split_term(term)
    if s is None or "stratum" not in df.columns:
        top = df.sort("p_best", descending=True).row(0, named=True)
        return [f"{top['level']} has the highest {w.noun} among the levels of {term} with "
                f"posterior probability {top['p_best']:.2f}."]
    tops = df.sort("p_best", descending=True).unique("stratum", keep="first",
                                                     maintain_order=True).sort("stratum")
    shown = [f"{r['stratum']} {r['level']} ({r['p_best']:.2f})"
             for r in tops.head(MAX_LISTED_STRATA).iter_rows(named=True)]
    more = f", … and {tops.height - MAX_LISTED_STRATA} more" if tops.height > \
        MAX_LISTED_STRATA else ""
    return [f"Highest {w.noun} among the levels of {f} within each {s} (posterior "
            f"probability of rank 1): {', '.join(shown)}{more}."]


def _slopes(est: Estimands, w: Wording, x: str, pct: int) -> list[str]:
    av = est.slopes.filter((pl.col("term") == x) & (pl.col("level") == "average")) \
        if est.slopes.height else est.slopes
    return [f"One unit more of {x} changes {w.noun} by {_num(r['mean'])} {w.diff_unit} on "
            f"average ({pct}% HDI {_ci(r)})." for r in av.iter_rows(named=True)]


def _level_slopes(est: Estimands, w: Wording, g: str, pct: int) -> list[str]:
    if not est.slopes.height:
        return []
    df = est.slopes.filter(pl.col("term").str.ends_with(f" | {g}")).sort("mean")
    out = []
    for term in dict.fromkeys(df["term"].to_list()):
        d = df.filter(pl.col("term") == term)
        lo, hi = d.row(0, named=True), d.row(-1, named=True)
        coef = term.split(" | ")[0]
        out.append(f"Slope of {coef} per level of {g} ({_SCALE_NAMES.get(lo['scale'], lo['scale']).lower()}, "
                   f"{pct}% HDI): from {_num(lo['mean'])} ({lo['level']}; {_ci(lo)}) to "
                   f"{_num(hi['mean'])} ({hi['level']}; {_ci(hi)}) over {d.height} levels.")
    return out


_SAY = {"by": _means, "contrasts": _contrasts, "impact": _impact, "slopes": _slopes,
        "level_slopes": _level_slopes}


def _sentences(est: Estimands, w: Wording, key: str, term: str, pct: int) -> list[str]:
    if key == "rank":
        return _rank(est, w, term)
    if key == "derived":
        return derived_findings(est, names=[term])
    return _SAY[key](est, w, term, pct) if key in _SAY else []


# ----------------------------------------------------------------------------- the list
def estimand_findings(est: Estimands, wording: Wording, declared=None,
                      after_declared=()) -> list[str]:
    """Plain sentences with units and the outcome's own nouns (no bias wording): first each
    estimand of ``declared`` (``[(key, term), ...]`` in the spec's order, see
    :func:`biasstats.spec.declared.declared_estimands`; None: nothing declared), then
    ``after_declared`` (e.g. the published-vs-reanalysis sentence), the overall mean, and
    what the formula implied and the spec did not declare: contrasts, average slopes, and
    within-strata estimands and ranks of a request made in code. A grouping factor's means
    are never said unless declared."""
    if est.categories:  # the declared derived estimands (a benchmark's scores) first
        lead = [s for key, term in declared or () if key == "derived"
                for s in derived_findings(est, names=[term])]
        return [*lead, *_category_findings(est, wording), *after_declared]
    pct = int(round(est.request.prob * 100))
    req = est.request
    out: list[str] = []
    said = set()
    for key, term in declared or ():
        out += _sentences(est, wording, key, term, pct)
        said.add((key, term))
    out += list(after_declared)
    ov = est.means.filter(pl.col("term") == "overall")
    if ov.height:
        r = ov.row(0, named=True)
        out.append(f"Overall, {wording.noun} is {wording.value(r['mean'])} ({pct}% HDI "
                   f"{_ci(r)}).")
    rest = ([("contrasts", t) for t in req.contrasts] + [("slopes", x) for x in req.slopes]
            + [("derived", name) for name, _ in req.derived]
            + ([] if declared is not None else
               [("by", t) for t in req.by if "|" in t] + [("impact", t) for t in req.impact]
               + ([("rank", req.rank)] if req.rank else [])))
    for key, term in rest:
        if (key, term) not in said:
            out += _sentences(est, wording, key, term, pct)
            said.add((key, term))
    return out


def _category_findings(est: Estimands, wording: Wording) -> list[str]:
    """Sentences for an ordinal / categorical outcome: one probability per category."""
    pct = int(round(est.request.prob * 100))
    label = wording.label

    def listing(rows, fmt) -> str:
        return ", ".join(f"P({label} = {r['category']}) {fmt(r)}" for r in rows)

    out: list[str] = []
    ov = est.means.filter(pl.col("term") == "overall")
    if ov.height:
        out.append(f"Overall ({pct}% HDI): " + listing(
            ov.iter_rows(named=True), lambda r: f"is {r['mean']:.2f} ({_ci(r)})") + ".")
    diffs = est.contrasts.filter(pl.col("scale") == "difference") if est.contrasts.height \
        else est.contrasts
    for f in dict.fromkeys(diffs["term"].to_list()) if diffs.height else []:
        levels = list(dict.fromkeys(diffs.filter(pl.col("term") == f)["level"].to_list()))
        for lv in levels[:PAIRS_UP_TO]:
            rows = diffs.filter((pl.col("term") == f) & (pl.col("level") == lv))
            out.append(f"{f} {lv}, in percentage points ({pct}% HDI): " + listing(
                rows.iter_rows(named=True),
                lambda r: f"changes by {_num(r['mean'])} ({_ci(r)})") + ".")
        if len(levels) > PAIRS_UP_TO:
            out.append(f"… and {len(levels) - PAIRS_UP_TO} more contrasts of {f} "
                       "(table below).")
    av = est.slopes.filter(pl.col("level") == "average") if est.slopes.height else est.slopes
    for x in dict.fromkeys(av["term"].to_list()) if av.height else []:
        out.append(f"One unit more of {x}, on average, in percentage points ({pct}% HDI): "
                   + listing(av.filter(pl.col("term") == x).iter_rows(named=True),
                             lambda r: f"changes by {_num(r['mean'])} ({_ci(r)})") + ".")
    return out
