"""What a spec's outcome is: a study's congruence coding (the study words it) or a neutral
outcome (worded from ``[effects] outcome_label`` and ``unit``)."""

from __future__ import annotations

from biasstats import registry
from biasstats.model.formula import parse_formula

__all__ = ["outcome_kind", "outcome_study"]


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


def outcome_study(spec, adapter: str | None = None) -> registry.Study | None:
    """The registered study whose congruence coding the spec's outcome is (its effects,
    report outputs and words apply), or None for a neutral outcome (:func:`outcome_kind`):
    the study that provides the spec's adapter (or simulation preset), else — a congruence
    coding declared by ``[effects] kind`` or by the canonical ``congruent`` response — the
    first study that provides congruence effects."""
    if outcome_kind(spec, adapter) != "congruence":
        return None
    known = registry.studies()
    if spec.simulate is not None:
        own = [s for s in known if spec.simulate.preset in s.congruence_presets]
    else:
        own = [s for s in known if adapter is not None and adapter in s.congruence_adapters]
    return next(iter(own), None) or next((s for s in known if s.effects is not None), None)
