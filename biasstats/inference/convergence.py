"""The convergence gate: a fit is reported as trustworthy only if it passes every threshold.

Defaults follow current practice (Vehtari et al. 2021 for R-hat and ESS; Betancourt 2016 for
BFMI): R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no divergent transitions, E-BFMI ≥ 0.3 in every
chain. Thresholds come from the spec's ``[checks]`` table.

When a fit diverges, :func:`locate_divergences` says where: for each group SD it compares
the log SD at the divergent draws with all draws (a standardised shift, the numeric version
of looking for divergences in a pair plot), and :func:`divergence_hint` turns the largest
shift and that term's parameterisation into the fix to try. A centred term diverging at
small SD is the classic funnel (try it non-centred); a non-centred term diverging at large SD
is the inverted one (try it centred); with no term standing out, a smaller step size
(higher ``target_accept``) is what is left.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Thresholds:
    rhat_max: float = 1.01
    ess_bulk_min: float = 400
    ess_tail_min: float = 400
    divergences_max: int = 0
    bfmi_min: float = 0.3


@dataclass(frozen=True)
class GateResult:
    passed: bool
    failures: tuple[str, ...]
    values: dict
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict:
        """Values and thresholds keyed by the same metric names (what the report shows)."""
        t = self.thresholds
        return {"passed": self.passed, "failures": list(self.failures), **self.values,
                "thresholds": {"max_rhat": t.rhat_max, "min_ess_bulk": t.ess_bulk_min,
                               "min_ess_tail": t.ess_tail_min, "divergences": t.divergences_max,
                               "min_bfmi": t.bfmi_min}}


def convergence_gate(diagnostics: dict, thresholds: Thresholds | None = None) -> GateResult:
    """Check ``Fit.diagnostics()`` output against the thresholds; say what failed, in words."""
    t = thresholds or Thresholds()
    d = diagnostics
    min_bfmi = min(d.get("bfmi") or [float("nan")])
    fails = []
    if not d["max_rhat"] <= t.rhat_max:
        fails.append(f"max R-hat {d['max_rhat']:.3f} > {t.rhat_max}")
    if not d["min_ess_bulk"] >= t.ess_bulk_min:
        fails.append(f"min bulk ESS {d['min_ess_bulk']:.0f} < {t.ess_bulk_min:.0f}")
    if not d["min_ess_tail"] >= t.ess_tail_min:
        fails.append(f"min tail ESS {d['min_ess_tail']:.0f} < {t.ess_tail_min:.0f}")
    if d["divergences"] > t.divergences_max:
        hint = f"; {d['divergence_hint']}" if d.get("divergence_hint") else ""
        fails.append(f"{d['divergences']} divergent transitions (allowed: {t.divergences_max})"
                     + hint)
    if not min_bfmi >= t.bfmi_min:
        fails.append(f"min E-BFMI {min_bfmi:.2f} < {t.bfmi_min}")
    values = {
        "max_rhat": float(d["max_rhat"]),
        "min_ess_bulk": float(d["min_ess_bulk"]),
        "min_ess_tail": float(d["min_ess_tail"]),
        "divergences": int(d["divergences"]),
        "min_bfmi": float(min_bfmi),
    }
    return GateResult(passed=not fails, failures=tuple(fails), values=values, thresholds=t)


def thresholds_from(checks) -> Thresholds:
    """The gate's thresholds from a ``[checks]`` table (``ChecksSpec``; defaults when None)."""
    if checks is None:
        return Thresholds()
    return Thresholds(rhat_max=checks.rhat_max, ess_bulk_min=checks.ess_bulk_min,
                      ess_tail_min=checks.ess_tail_min, divergences_max=checks.divergences_max,
                      bfmi_min=checks.bfmi_min)


def near_miss(diagnostics: dict, thresholds: Thresholds | None) -> bool:
    """True when the gate failed only just, on mixing alone: no divergences, E-BFMI above its
    threshold, max R-hat <= 1.02 and every ESS at least half its threshold. Such a fit needs
    more draws, not another geometry (validate seed 3: R-hat 1.010 with ESS above 400; flipping
    the slowest SD's term instead gave R-hat 1.16, ESS 21 and 5 divergences)."""
    if thresholds is None or diagnostics.get("divergences", 0) > thresholds.divergences_max:
        return False
    b = diagnostics.get("min_bfmi", diagnostics.get("bfmi"))  # gate values or diagnostics
    bfmi = np.atleast_1d(np.asarray(np.inf if b is None else b, dtype=float))
    return bool(np.all(bfmi >= thresholds.bfmi_min)
                and diagnostics.get("max_rhat", np.inf) <= 1.02
                and diagnostics.get("min_ess_bulk", 0) >= thresholds.ess_bulk_min / 2
                and diagnostics.get("min_ess_tail", 0) >= thresholds.ess_tail_min / 2)


def refit_plan(diagnostics: dict, centred: Mapping[str, bool], idata,
               target_accept: float | None, thresholds: Thresholds | None = None,
               keep=()) -> dict:
    """What a refit after a gate failed on geometry or mixing changes, and why (the plan over
    attempts, which calls this: :func:`biasstats.inference.attempts.next_attempt`).

    * A near miss on mixing alone (:func:`near_miss`): the same model with twice the warm-up
      and draws (``longer``).
    * Every term the first attempt shows funnelling is flipped, all together: each term
      whose divergences point at its parameterisation (a centred term at small SD, a
      non-centred one at large SD; :func:`locate_divergences`), and each centred term whose
      log SD mixes badly (bulk ESS or R-hat past the gate) or, with a low E-BFMI, follows the
      energy (:func:`funnel_signs`), also when the divergences point at no SD (the rating
      design, seed 3: 3 divergences at no SD in particular, E-BFMI 0.09, R-hat 1.026 — a
      funnel the step size alone does not cure). With no divergences and no such centred
      term, the term whose SD has the lowest bulk ESS is flipped (a funnel shows as slow
      mixing of its SD).
    * Divergences no SD explains: the target acceptance goes up one step
      (0.9 -> 0.95 -> 0.99 -> 0.995).

    Terms in ``keep`` (flipped by an earlier refit) are never flipped back.

    Returns ``{"flip": tuple of terms | None, "target_accept": float, "longer": bool,
    "reason": str}``."""
    ta = target_accept or 0.9
    if near_miss(diagnostics, thresholds):
        return {"flip": None, "target_accept": ta, "longer": True,
                "reason": (f"a near miss on mixing alone (max R-hat "
                           f"{diagnostics.get('max_rhat', float('nan')):.3f}, min bulk ESS "
                           f"{diagnostics.get('min_ess_bulk', 0):.0f}, no divergences): the same "
                           "model with twice the warm-up and draws")}
    rows = locate_divergences(idata, centred) if diagnostics.get("divergences") else []
    nxt = 0.95 if ta < 0.95 else (0.99 if ta < 0.99 else 0.995)
    pointing = [r for r in rows if abs(r["shift"]) >= 0.5 and (r["shift"] < 0) == r["centred"]
                and r["term"] not in keep]
    div_terms = list(dict.fromkeys(r["term"] for r in pointing))
    signs = funnel_signs(idata, centred, diagnostics, thresholds) if centred else []
    slow = [r for r in signs if r["centred"] and r["funnel"] and r["term"] not in div_terms
            and r["term"] not in keep]
    if div_terms or slow:
        flips = [*div_terms, *(r["term"] for r in slow)]
        parts = [f"divergences at {'small' if r['shift'] < 0 else 'large'} {r['parameter']} "
                 f"({r['shift']:+.1f} SD)" for r in pointing
                 if r is next(q for q in pointing if q["term"] == r["term"])]
        parts += [f"{r['parameter']} {r['why']}" for r in slow]
        if len(flips) == 1 and not div_terms and slow[0]["worst"]:
            side = "centred" if not centred[flips[0]] else "non-centred"
            reason = (f"slowest-mixing group SD is sd_{flips[0]}: term '{flips[0]}' refitted "
                      f"{side}")
        elif len(flips) == 1:
            side = "centred" if not centred[flips[0]] else "non-centred"
            reason = f"{parts[0]}: term '{flips[0]}' refitted {side}"
        else:
            reason = ("funnels in " + ", ".join(parts) + ": terms "
                      + ", ".join(f"'{t}'" for t in flips)
                      + " refitted in their other parameterisations together")
        return {"flip": tuple(flips), "target_accept": ta, "reason": reason}
    if not rows and centred:
        # no centred term stands out: flip the term whose log SD mixes worst
        worst = _worst_sd(idata, {t: c for t, c in centred.items() if t not in keep})
        if worst is not None:
            side = "centred" if not centred[worst] else "non-centred"
            return {"flip": (worst,), "target_accept": ta,
                    "reason": f"slowest-mixing group SD is sd_{worst}: term '{worst}' refitted "
                              f"{side}"}
    return {"flip": None, "target_accept": nxt,
            "reason": f"no term stands out: target_accept raised from {ta:g} to {nxt:g}"}


ENERGY_CORR = 0.3  # |corr(log SD, energy)| from which a low E-BFMI is read as that SD's funnel


def funnel_signs(idata, centred: Mapping[str, bool], diagnostics: dict,
                 thresholds: Thresholds | None) -> list[dict]:
    """Per group term, how its SD mixed in the first attempt: the bulk ESS and R-hat of its
    (worst) SD and the correlation of its log SD with the energy (within chains). ``funnel``
    is True when the ESS or R-hat fails the gate's threshold, or, with E-BFMI below its
    threshold, the log SD follows the energy (|corr| >= :data:`ENERGY_CORR`: the sampler's
    energy cannot move that SD, Betancourt 2016). ``worst``: the lowest ESS of all."""
    # heavy libraries load on first use, not on import
    import arviz_stats as azs

    t = thresholds or Thresholds()
    post = idata["posterior"]
    names = [n for n in centred if f"sd_{n}" in post]
    if not names:
        return []
    ds = post.to_dataset()[[f"sd_{n}" for n in names]]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a stuck SD: its ESS says so
        ess = azs.ess(ds, method="bulk")
        rhat = azs.rhat(ds)
    ss = idata["sample_stats"]
    energy = np.asarray(ss["energy"].values, dtype=float) if "energy" in ss else None
    b = diagnostics.get("min_bfmi", diagnostics.get("bfmi"))
    low_bfmi = b is not None and bool(np.any(np.atleast_1d(np.asarray(b, float)) < t.bfmi_min))
    rows = []
    for n in names:
        e = np.atleast_1d(np.asarray(ess[f"sd_{n}"].values, dtype=float))
        r = np.atleast_1d(np.asarray(rhat[f"sd_{n}"].values, dtype=float))
        corr = 0.0
        if energy is not None:
            x = np.log(np.asarray(post[f"sd_{n}"].values, dtype=float))
            x = x.reshape(*energy.shape, -1)
            ec = energy - energy.mean(axis=1, keepdims=True)
            for j in range(x.shape[-1]):
                xc = x[..., j] - x[..., j].mean(axis=1, keepdims=True)
                den = float(np.sqrt((xc ** 2).sum() * (ec ** 2).sum()))
                if den > 0:
                    c = float((xc * ec).sum() / den)
                    corr = c if abs(c) > abs(corr) else corr
        why = []
        # one chain has no R-hat (NaN): the extremes of what there is, without numpy's warning
        worst_ess = float(np.min(e[~np.isnan(e)])) if np.any(~np.isnan(e)) else float("nan")
        worst_rhat = float(np.max(r[~np.isnan(r)])) if np.any(~np.isnan(r)) else float("nan")
        if not worst_ess >= t.ess_bulk_min:
            why.append(f"bulk ESS {worst_ess:.0f}")
        if not worst_rhat <= t.rhat_max:
            why.append(f"R-hat {worst_rhat:.3f}")
        if low_bfmi and abs(corr) >= ENERGY_CORR:
            why.append(f"energy correlation {corr:+.2f}")
        rows.append({"term": n, "parameter": f"sd_{n}", "centred": bool(centred[n]),
                     "ess_bulk": worst_ess, "rhat": worst_rhat,
                     "energy_corr": corr, "funnel": bool(why),
                     "why": "(" + ", ".join(why) + ")" if why else ""})
    if rows:
        lowest = min(rows, key=lambda q: q["ess_bulk"])
        for q in rows:
            q["worst"] = q is lowest
    return rows


def _worst_sd(idata, centred: Mapping[str, bool]) -> str | None:
    """The grouping whose (first) SD has the lowest bulk ESS."""
    # heavy libraries load on first use, not on import
    import arviz_stats as azs

    post = idata["posterior"]
    names = [t for t in centred if f"sd_{t}" in post]
    if not names:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ess = azs.ess(post.to_dataset()[[f"sd_{t}" for t in names]], method="bulk")
    vals = {t: float(np.min(np.asarray(ess[f"sd_{t}"].values))) for t in names}
    return min(vals, key=vals.get)


def locate_divergences(idata, centred: Mapping[str, bool]) -> list[dict]:
    """Where the divergent draws sit, per group SD (largest shift first).

    ``centred`` maps each grouping (``llm``, ``category:stereotype``) to its parameterisation.
    Each row: ``term``, ``parameter`` (``sd_llm``; ``sd_g[x]`` for one slope of a vector SD),
    ``centred``, ``divergent`` (count) and ``shift``: mean log SD at the divergent draws
    minus that at the other draws, in posterior SDs of the log SD. Empty without divergences
    (or when every draw diverged: nothing to compare with).
    """
    ss = idata["sample_stats"]
    if "diverging" not in ss:
        return []
    div = np.asarray(ss["diverging"].values).astype(bool)
    if not div.any() or div.all():
        return []
    post = idata["posterior"]
    rows = []
    for term, is_centred in centred.items():
        var = f"sd_{term}"
        if var not in post:
            continue
        da = post[var]
        x = np.log(np.asarray(da.values, dtype=float)).reshape(*div.shape, -1)
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        labels = [f"{var}[{v}]" for v in da[extra[0]].values] if extra else [var]
        for j, name in enumerate(labels):
            xj = x[..., j]
            spread = float(np.std(xj))
            shift = (xj[div].mean() - xj[~div].mean()) / spread if spread > 0 else 0.0
            rows.append({"term": term, "parameter": name, "centred": bool(is_centred),
                         "divergent": int(div.sum()), "shift": float(shift)})
    rows.sort(key=lambda r: -abs(r["shift"]))
    return rows


def _raise_ta(current: float | None) -> str:
    """The step-size advice, above the target acceptance the fit already used."""
    if current is None or current < 0.95:
        return "raise [fit] target_accept (e.g. 0.95, 0.99)"
    nxt = 0.99 if current < 0.99 else 0.995
    return f"raise [fit] target_accept above its {current:g} (e.g. {nxt})"


def divergence_hint(rows: list[dict], min_shift: float = 0.5,
                    target_accept: float | None = None) -> str:
    """One sentence: where the divergences sit and what to try (empty without divergences).

    A centred term diverging at small SD (shift < 0) or a non-centred one at large SD
    (shift > 0) points at its parameterisation; anything else at the step size, above the
    ``target_accept`` the fit used (automatic choices can already be 0.95 or 0.99)."""
    if not rows:
        return ""
    raise_ta = _raise_ta(target_accept)
    top = rows[0]
    if abs(top["shift"]) < min_shift:
        return (f"no group SD stands out at the divergent draws (largest shift "
                f"{top['shift']:+.1f} SD, {top['parameter']}): {raise_ta}")
    where = (f"they sit at {'small' if top['shift'] < 0 else 'large'} {top['parameter']} "
             f"({top['shift']:+.1f} SD on the log scale; the term is "
             f"{'centred' if top['centred'] else 'non-centred'})")
    if (top["shift"] < 0) == top["centred"]:
        term = top["term"]
        key = term if term.replace("_", "").isalnum() else f'"{term}"'
        return (f"{where}: try [model.centered] {key} = {str(not top['centred']).lower()}, "
                f"or {raise_ta}")
    return f"{where}: {raise_ta}"
