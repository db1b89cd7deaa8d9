"""What a spec's outcome is: a congruence coding (bias wording) or a neutral outcome."""

from __future__ import annotations

from biasstats import registry
from biasstats.model.formula import parse_formula

__all__ = ["outcome_kind"]


def outcome_kind(spec, adapter: str | None = None) -> str:
    """``"congruence"`` or ``"outcome"``: the spec's ``[effects] kind`` if given; else what the
    study that provides its adapter (or simulation preset) declares; else ``"congruence"``
    when the model's response is the canonical ``congruent`` column (a tidy spec that maps
    its 0/1 answer onto it declares a congruence coding); else ``"outcome"``."""
    declared = spec.content.effects.kind
    if declared is not None:
        return declared
    if spec.model is not None:
        column = parse_formula(spec.model.formula).response  # a column, not a family
        if column == "congruent":
            return "congruence"
    known = registry.studies()
    if spec.simulate is not None:
        presets = {p for s in known for p in s.congruence_presets}
        return "congruence" if spec.simulate.preset in presets else "outcome"
    adapters = {a for s in known for a in s.congruence_adapters}
    return "congruence" if adapter in adapters else "outcome"
