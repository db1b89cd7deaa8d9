"""The convergence gate: a fit is reported as trustworthy only if it passes every threshold.

Defaults follow current practice (Vehtari et al. 2021 for R-hat and ESS; Betancourt 2016 for
BFMI): R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no divergent transitions, E-BFMI ≥ 0.3 in every
chain. Thresholds come from the spec's ``[checks]`` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
        fails.append(f"{d['divergences']} divergent transitions (allowed: {t.divergences_max})")
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
