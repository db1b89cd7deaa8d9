"""The centred / non-centred choice per group term.

Per level l of a term, the data give an estimate of its effect with standard error
se_l = 1/sqrt(I_l) (I_l = summed Fisher information on the link scale of the family's working
response, :attr:`biasstats.model.families.Family.working`). The between-level sd tau is
estimated by moments from the level means of the working response: s^2 = weighted var(level
means) estimates tau^2 + se^2, with df = (free levels) degrees of freedom.

Each parameterisation has a funnel on one side: a centred term where tau is small next to se
(the posterior of the effects is squeezed by tau), a non-centred one where tau is large next
to se (the standardised effects are squeezed by se/tau). How far into its bad side each would
go is read off the 90% chi-square interval of tau (tau_lo, tau_hi; tau_hi no larger than the
prior allows): centred risks se/tau_lo, non-centred tau_hi/se; the term takes the smaller
risk. With many levels the interval is narrow and this is the usual shrinkage rule (centred
when tau > se, i.e. B = se^2/(se^2+tau^2) < 0.5); with few levels (2 variants, 4 categories)
tau is barely estimated, tau_lo is 0 unless the levels clearly differ, and the term is
non-centred: its funnel is bounded by the prior on tau, the centred one reaches down to
tau = 0. Families without a working response (ordinal, categorical) use tau = prior scale of
sd and the shrinkage rule.
"""

from __future__ import annotations

import math

import numpy as np

from biasstats.errors import SpecError
from biasstats.model.design import GroupSpec, ModelSpec, nested_in

__all__ = ["choose_centring", "PINNED_DF", "PINNED_SCALE", "PINNED_RISK"]

# A term with at least PINNED_DF degrees of freedom whose effects' conditional scale varies
# less than PINNED_SCALE-fold over the 90% range of its SD has no funnel: its funnel risk is
# capped at PINNED_RISK (the default target acceptance). Few-level terms never qualify: their
# chi-square interval for the SD is too unreliable (SBC of the canonical model).
PINNED_DF = 30
PINNED_SCALE = 1.5
PINNED_RISK = 0.5


def _sd_key(g: GroupSpec) -> str:
    return f"sd_{g.name}" if len(g.coefs) == 1 else f"sd_{g.name}__{g.coefs[0]}"


def _level_stats(spec: ModelSpec, w) -> list[tuple]:
    """Per term: (information per level, se^2 per level, tau^2, s^2 or None, prior scale)."""
    stats = []
    for g in spec.groups:
        L = len(g.levels)
        if w is not None:
            z, info = w
        else:
            z, info = np.zeros(len(spec.y)), np.full(len(spec.y), 0.2)
        info_l = np.bincount(g.idx, weights=info, minlength=L)
        se2 = 1.0 / np.maximum(info_l, 1e-12)
        prior_scale = spec.priors[_sd_key(g)].scale()
        if w is not None:
            m = np.bincount(g.idx, weights=info * z, minlength=L) / np.maximum(info_l, 1e-12)
            wts = info_l / info_l.sum()
            grand = np.sum(wts * m)
            s2 = float(np.sum(wts * (m - grand) ** 2) * L / max(L - 1, 1))
            tau2 = max(s2 - np.mean(se2), 0.0)
        else:
            s2, tau2 = None, prior_scale ** 2
        stats.append((info_l, se2, tau2, s2, prior_scale))
    return stats


def _risks(g: GroupSpec, s2: float, se2: np.ndarray, med_se2: float, prior_scale: float):
    """(centred risk se/tau_lo, non-centred risk tau_hi/se, df, tau_lo, tau_hi, se) from the
    90% chi-square interval of tau."""
    from scipy.stats import chi2  # heavy library: imported on first use

    df = max(1, g.Q.shape[1] if g.Q is not None else len(g.levels) - 1)
    noise = float(np.mean(se2))
    tau_lo = math.sqrt(max(s2 * df / chi2.ppf(0.95, df) - noise, 0.0))
    tau_hi = math.sqrt(max(s2 * df / chi2.ppf(0.05, df) - noise, 0.0))
    tau_hi = min(tau_hi, 2.6 * prior_scale)  # the prior's ~99% point (half-normal)
    se = math.sqrt(med_se2)
    return se / max(tau_lo, 1e-6 * se), tau_hi / se, df, tau_lo, tau_hi, se


def _pinned(g: GroupSpec, df: int, tau_lo: float, tau_hi: float, se: float) -> None:
    """A funnel is the effects' scale changing with tau across the posterior. With many levels
    tau is pinned: if the effects' conditional scale (centred: (1/se^2 + 1/tau^2)^-1/2;
    non-centred: that over tau) changes less than PINNED_SCALE-fold over tau's 90% range, the
    geometry is near Gaussian whatever se/tau is (e.g. 800 levels with tau ~ se)."""
    if not (df >= PINNED_DF and g.funnel_risk > PINNED_RISK):
        return
    se_ = se if se > 0 else 1.0
    scale = [1.0 / math.sqrt(1.0 / se_ ** 2 + 1.0 / max(t, 1e-12) ** 2)
             for t in (tau_lo, tau_hi)]
    if not g.centered:
        scale = [c / max(t, 1e-12) for c, t in zip(scale, (tau_lo, tau_hi), strict=True)]
    ratio = max(scale) / max(min(scale), 1e-300)
    if ratio < PINNED_SCALE:
        g.funnel_risk = PINNED_RISK
        g.reason += (f"; SD pinned by {df} df (effects' scale varies "
                     f"{ratio:.2f}-fold over its range): no funnel")


def _choose(spec: ModelSpec, gi: int, stats: list[tuple], user: dict[str, bool]) -> None:
    """Centre term ``gi`` or not (see the module docstring), and record why."""
    g = spec.groups[gi]
    info_l, se2, tau2, s2, prior_scale = stats[gi]
    # A term with a finer term inside it (a within a:b, llm within llm:stereotype) is only
    # identified up to the mean of its children: add their spread tau_child^2 / m_l.
    for hi, h in enumerate(spec.groups):
        if hi != gi and h.Q is None and nested_in(h, g):
            pairs = np.unique(np.stack([g.idx, h.idx]), axis=1)
            m_l = np.bincount(pairs[0], minlength=len(g.levels))
            se2 = se2 + stats[hi][2] / np.maximum(m_l, 1)
    tau2 = max(tau2 - float(np.mean(se2 - stats[gi][1])), 0.0)
    med_se2 = float(np.median(se2))
    B = med_se2 / (med_se2 + tau2) if (med_se2 + tau2) > 0 else 1.0
    reason = f"shrinkage B={B:.2f}, median info/level={float(np.median(info_l)):.3g}"
    risks = None
    if s2 is None:
        auto = B < 0.5
    else:
        risks = _risks(g, s2, se2, med_se2, prior_scale)
        risk_c, risk_nc, df, tau_lo, tau_hi, se = risks
        auto = risk_c < risk_nc
        reason += f", tau/se 90% range {tau_lo / se:.2g}-{tau_hi / se:.2g} ({df} df)"
    auto = auto and not g.correlated
    if g.name in user:
        forced = bool(user[g.name])
        if forced and g.correlated:
            raise SpecError(f"centered: term '{g.term.source}' has correlated varying slopes, "
                            "which are always non-centred; use '||' to centre them")
        g.centered, g.reason = forced, "set by user"
    else:
        g.centered = auto
        g.reason = reason + ("; correlated slopes" if g.correlated else "")
    if risks is not None:
        risk_c, risk_nc, df, tau_lo, tau_hi, se = risks
        g.funnel_risk = risk_c if g.centered else risk_nc
        _pinned(g, df, tau_lo, tau_hi, se)


def choose_centring(spec: ModelSpec, user: dict[str, bool]) -> None:
    """Choose centred vs non-centred per term of ``spec``, in place (``GroupSpec.centered``,
    ``reason``, ``funnel_risk``). ``user`` maps a grouping name (``llm``,
    ``category:stereotype``) to a forced choice."""
    names = {g.name for g in spec.groups}
    for k in user:
        if k not in names:
            raise SpecError(f"centered: unknown grouping '{k}'; groupings are "
                            f"{', '.join(sorted(names)) or '(none)'}")
    fam = spec.family
    w = fam.working(spec.y.astype(float), spec.trials, spec.row_weights())
    stats = _level_stats(spec, w)
    for gi in range(len(spec.groups)):
        _choose(spec, gi, stats, user)
