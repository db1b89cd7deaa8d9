"""The refit plan: after a failed convergence gate, the cause of the failure decides the next
attempt, up to :data:`MAX_ATTEMPTS` in all (Stan workflow: geometry problems are fixed by
reparameterising and a smaller step, not by more draws; a chain that only mixes slowly needs
more draws, not another geometry).

* **Geometry** (divergences, or an E-BFMI below its threshold), and mixing too poor to read as
  a near miss (an R-hat above 1.02, an ESS below half its threshold): every term that funnels
  is flipped to its other parameterisation, together
  (:func:`biasstats.inference.convergence.refit_plan`), with ``target_accept`` raised for a
  term of few levels (its SD is barely pinned: one step under 30 degrees of freedom, to 0.99
  with 4 levels or fewer). A term already flipped by an earlier attempt is
  never flipped back (that geometry failed already): with nothing new to flip, the step size
  goes down one step (``target_accept`` 0.9 -> 0.95 -> 0.99 -> 0.995), and past 0.995 there is
  nothing left to try.
* **Low ESS only** (no divergences, E-BFMI and R-hat within the gate, every ESS at least half
  its threshold): the draws already made are valid, only too few. More chains of the same
  model are sampled and added to them (nutpie 0.16 cannot continue a finished run or start one
  from its adapted step size and mass matrix: a new chain costs its warm-up, and keeping the
  old draws is still cheaper than resampling all at twice the length). ESS grows with the
  draws, so the number of chains added is what the shortfall asks for with a margin of
  :data:`ESS_MARGIN`, at least one, at most as many as there are.
* **Mild R-hat only** (at most 1.02, no divergences, every ESS at least half its threshold):
  the chains disagree a little: the same model again with twice the warm-up and draws.

Attempt ``n`` samples with seed :func:`attempt_seed` ``(seed, n)``: the spec's seed for the
first, a seed derived from it for the others, so the same seed gives the same draws at every
attempt and the chains added never repeat the ones they join.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from biasstats.inference.convergence import Thresholds, refit_plan
from biasstats.model.centring import PINNED_DF

__all__ = ["MAX_ATTEMPTS", "ESS_MARGIN", "attempt_seed", "failure_cause", "next_attempt",
           "join_chains", "best_attempt", "run_attempts", "attempt_record"]

#: attempts in all, the first included
MAX_ATTEMPTS = 3
#: the chains added aim at this multiple of the ESS threshold
ESS_MARGIN = 1.25
#: a flipped term with at most this many levels goes straight to target_accept 0.99 (one with
#: fewer than PINNED_DF degrees of freedom goes up one step)
FEW_LEVELS = 4
#: the R-hat up to which, with no geometry problem, the chains are only slow to agree
MILD_RHAT = 1.02


def attempt_seed(seed: int, attempt: int) -> int:
    """The seed of attempt ``attempt`` (1-based): ``seed`` itself for the first; for the others
    a 32-bit seed derived from (seed, attempt) by numpy's SeedSequence."""
    if attempt <= 1:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(attempt)]).generate_state(1)[0])


def failure_cause(values: dict, thresholds: Thresholds) -> str:
    """Why the gate failed, from its values: ``"geometry"`` (divergences or a low E-BFMI),
    ``"ess"`` (only ESS, at least half its thresholds), ``"rhat"`` (R-hat above its threshold
    but at most :data:`MILD_RHAT`, every ESS at least half its threshold), ``"mixing"`` (worse
    mixing), or ``"passed"``."""
    t = thresholds
    geometry = (values["divergences"] > t.divergences_max
                or not values.get("min_bfmi", math.inf) >= t.bfmi_min)
    if geometry:
        return "geometry"
    bulk, tail, rhat = values["min_ess_bulk"], values["min_ess_tail"], values["max_rhat"]
    ess_ok = bulk >= t.ess_bulk_min and tail >= t.ess_tail_min
    half = bulk >= t.ess_bulk_min / 2 and tail >= t.ess_tail_min / 2
    if rhat <= t.rhat_max:
        return "passed" if ess_ok else ("ess" if half else "mixing")
    return "rhat" if rhat <= MILD_RHAT and half else "mixing"


def _chains_to_add(values: dict, thresholds: Thresholds, chains: int) -> int:
    """Chains to add to ``chains`` so that the ESS reaches :data:`ESS_MARGIN` x its threshold,
    ESS taken as proportional to the number of chains: at least 1, at most ``chains``."""
    short = max(thresholds.ess_bulk_min / max(values["min_ess_bulk"], 1e-9),
                thresholds.ess_tail_min / max(values["min_ess_tail"], 1e-9))
    want = math.ceil(round(chains * (ESS_MARGIN * short - 1), 9))
    return int(min(max(want, 1), chains))


def _next_ta(ta: float) -> float | None:
    """One step down in step size: 0.9 -> 0.95 -> 0.99 -> 0.995; None past 0.995."""
    for step in (0.95, 0.99, 0.995):
        if ta < step:
            return step
    return None


def next_attempt(values: dict, thresholds: Thresholds, current: Mapping, *, attempt: int,
                 centred: Mapping[str, bool], levels: Mapping[str, int],
                 flipped_before=(), idata=None) -> dict | None:
    """The attempt after attempt ``attempt`` failed the gate with ``values``
    (:class:`~biasstats.inference.convergence.GateResult` values), or None when no attempt is
    left (:data:`MAX_ATTEMPTS`) or nothing is left to try.

    ``current``: the failed attempt's ``seed`` (the spec's), ``chains`` (in its posterior),
    ``draws``, ``tune`` and ``target_accept``; ``centred``: each term's parameterisation in it;
    ``levels``: each term's number of levels; ``flipped_before``: terms an earlier refit
    flipped; ``idata``: its draws (where the divergences sit, how each SD mixed).

    Returns ``{"attempt", "cause", "action", "flip", "target_accept", "chains", "tune",
    "draws", "seed", "keep_draws", "reason"}``: ``action`` is ``"add chains"`` (``chains``
    more, joined to the draws kept), ``"longer"``, ``"reparameterise"`` (``flip``: the terms)
    or ``"step size"``; ``seed`` is the new attempt's (:func:`attempt_seed`)."""
    if attempt >= MAX_ATTEMPTS:
        return None
    cause = failure_cause(values, thresholds)
    if cause == "passed":
        return None
    n = attempt + 1
    ta = float(current["target_accept"])
    plan = {"attempt": n, "cause": cause, "flip": None, "target_accept": ta,
            "chains": int(current["chains"]), "tune": int(current["tune"]),
            "draws": int(current["draws"]), "seed": attempt_seed(current["seed"], n),
            "keep_draws": False}
    if cause == "ess":
        k = _chains_to_add(values, thresholds, int(current["chains"]))
        return {**plan, "action": "add chains", "chains": k, "keep_draws": True,
                "reason": (f"low ESS only (min bulk {values['min_ess_bulk']:.0f}, tail "
                           f"{values['min_ess_tail']:.0f}; R-hat {values['max_rhat']:.3f}, no "
                           f"divergences): {k} more chain{'s' if k > 1 else ''} of the same "
                           f"model added to the {int(current['chains'])} kept")}
    if cause == "rhat":
        return {**plan, "action": "longer", "tune": 2 * plan["tune"], "draws": 2 * plan["draws"],
                "reason": (f"a near miss on mixing alone (max R-hat {values['max_rhat']:.3f}, "
                           f"min bulk ESS {values['min_ess_bulk']:.0f}, no divergences): the "
                           "same model with twice the warm-up and draws")}
    before = tuple(flipped_before)
    base = refit_plan(values, centred, idata, ta, thresholds, keep=before)
    flips = tuple(base["flip"] or ())
    if flips:
        reason, ta2 = base["reason"], ta
        few = [t for t in flips if levels.get(t, math.inf) - 1 < PINNED_DF]
        if few and ta < 0.99:
            # a term of few levels has an SD barely pinned: its other parameterisation reaches
            # a funnel too (validate, 5 seeds: flipping alone left 2 of 5 default fits
            # failing; the rating design, seed 1: a 3-level term flipped non-centred at 0.95
            # still diverged 5 times at large SD): one step, with 4 levels or fewer to 0.99
            ta2 = 0.99 if ta >= 0.95 or min(levels[t] for t in few) <= FEW_LEVELS else 0.95
            which = (f"{levels[few[0]]} levels" if len(few) == 1 else
                     ", ".join(f"{t} {levels[t]}" for t in few) + " levels")
            reason += (f", and target_accept raised from {ta:g} to {ta2:g} ({which}: "
                       f"{'its SD is' if len(few) == 1 else 'their SDs are'} barely pinned)")
        return {**plan, "action": "reparameterise", "flip": flips, "target_accept": ta2,
                "reason": reason}
    nxt = _next_ta(ta)
    if nxt is None:
        return None
    # what the diagnostics point at, the flips of earlier attempts included
    again = before and refit_plan(values, centred, idata, ta, thresholds)["flip"]
    why = ("every term the diagnostics point at was flipped already" if again
           else "no term stands out")
    return {**plan, "action": "step size", "target_accept": nxt,
            "reason": f"{why}: target_accept raised from {ta:g} to {nxt:g}"}


def best_attempt(gates, thresholds: Thresholds) -> int:
    """The index of the attempt to keep when none passed the gate: the least far from it.
    A geometry failure (divergences or a low E-BFMI: draws that may be biased) ranks below
    any failure of mixing alone (draws too few or chains that disagree: noisy, not biased);
    then fewer gate failures, then the lower max R-hat, then the higher min bulk ESS; the
    later attempt on a tie."""
    def badness(i: int):
        v = gates[i].values
        rhat = v.get("max_rhat", math.inf)
        return (failure_cause(v, thresholds) == "geometry", len(gates[i].failures),
                rhat if rhat == rhat else math.inf, -v.get("min_ess_bulk", 0.0), -i)

    return min(range(len(gates)), key=badness)


def attempt_record(n: int, change: str, fit, gate, plan: dict | None = None) -> dict:
    """One attempt as ``settings["attempts"]`` lists it (a single or a joint fit's)."""
    rec = {"attempt": n, "change": change, "passed": gate.passed,
           "failures": list(gate.failures),
           "sampling_s": round(fit.timings.get("sampling_s", 0.0), 2),
           "target_accept": fit.settings["target_accept"],
           "centered": fit.settings["centered"]}
    if plan is None:  # the first: as the spec asks
        st = fit.settings
        rec.update({"cause": None, "action": "as specified", "seed": st["seed"],
                    "chains": st["chains"], "tune": st["tune"], "draws": st["draws"]})
    else:
        rec.update({"cause": plan["cause"], "action": plan["action"], "seed": plan["seed"],
                    "chains": plan["chains"], "tune": plan["tune"], "draws": plan["draws"]})
    return rec


def run_attempts(fit, gate_of, thresholds: Thresholds, settings, *, terms, next_fit,
                 on_attempt=None):
    """The refit loop of a single or a joint model: from the first attempt ``fit``, while the
    gate fails and ``settings.refit`` is on, the :func:`next_attempt` it names, then the
    attempt to keep (the one that passed, else :func:`best_attempt`).

    ``gate_of(fit)``: its gate; ``terms(fit)``: (centred, levels, draws of its SDs) as
    :func:`next_attempt` reads them; ``next_fit(fit, plan)``: the next attempt;
    ``on_attempt(line)``: told of each new attempt and of a last failure.

    Returns (the kept fit, with ``settings["attempts"]`` (each record's ``kept``) and
    ``timings["first_attempt_s"]`` (every other attempt's time) set; the terms flipped up to
    it, in order)."""
    gate = gate_of(fit)
    attempts = [attempt_record(1, "as specified", fit, gate)]
    tried = [(fit, gate, ())]  # every attempt: its fit, gate and the flips it sampled with
    while not gate.passed and settings.refit:
        centred, levels, idata = terms(fit)
        cur = {"seed": settings.seed, "chains": int(fit.idata["posterior"].sizes["chain"]),
               "draws": fit.settings["draws"], "tune": fit.settings["tune"],
               "target_accept": fit.settings["target_accept"]}
        plan = next_attempt(gate.values, thresholds, cur, attempt=len(attempts),
                            centred=centred, levels=levels, flipped_before=tried[-1][2],
                            idata=idata)
        if plan is None:
            break
        if on_attempt is not None:
            on_attempt(f"attempt {plan['attempt'] - 1} failed the gate ("
                       + "; ".join(f.split(";")[0] for f in gate.failures)
                       + f"); attempt {plan['attempt']} of {MAX_ATTEMPTS}: {plan['reason']}")
        fit = next_fit(fit, plan)
        gate = gate_of(fit)
        attempts.append(attempt_record(plan["attempt"], plan["reason"], fit, gate, plan))
        tried.append((fit, gate, (*tried[-1][2], *(plan["flip"] or ()))))
    kept = len(tried) - 1 if gate.passed else best_attempt([g for _, g, _ in tried], thresholds)
    fit, gate, flips = tried[kept]
    for i, rec in enumerate(attempts):
        rec["kept"] = i == kept
    fit.settings["attempts"] = attempts
    if len(attempts) > 1:  # every attempt but the one kept
        fit.timings["first_attempt_s"] = sum(f.timings.get("total_s", 0.0)
                                             for i, (f, _, _) in enumerate(tried) if i != kept)
        if on_attempt is not None and not gate.passed:
            on_attempt(f"attempt {len(attempts)} failed the gate too ("
                       + "; ".join(f.split(";")[0] for f in tried[-1][1].failures)
                       + "): nothing left to try automatically; attempt "
                       f"{kept + 1} is kept (the least far from the gate)")
    return fit, flips


def join_chains(kept, added):
    """One DataTree of the chains of ``kept`` followed by those of ``added`` (the same model
    and draws per chain), chains renumbered from 0; groups without chains from ``kept``."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    groups = {}
    for name in kept.children:
        a = kept[name].to_dataset()
        if "chain" in a.dims and name in added.children:
            b = added[name].to_dataset()
            joined = xr.concat([a, b], dim="chain", combine_attrs="override")
            groups[name] = joined.assign_coords(chain=np.arange(joined.sizes["chain"]))
        else:
            groups[name] = a
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = dict(kept.attrs)
    return tree
