"""Study registry: what a study module adds to the generic stages, declared as data.

Generic stages (ingest, model, fit, effects, checks, report) never import a study's module;
a study registers what it adds here and the stages ask the registry. A study declares:

* ``adapters``: the ``[data] adapter`` names it registers whose outcome is a *congruence
  coding* (1 = the stereotype-congruent answer), and ``presets``: ``[simulate] preset`` names
  it provides with such an outcome. Only for these does a report use bias wording (the
  −1…+1 bias scale, "practically unbiased" verdicts); every other analysis gets neutral words
  built from ``[effects] outcome_label`` and ``unit``.

The built-in study is Bai et al. (2024) (``biasstats.ingest.bai2024``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Study", "register_study", "STUDIES", "outcome_kind"]


@dataclass(frozen=True)
class Study:
    name: str
    congruence_adapters: tuple[str, ...] = ()
    congruence_presets: tuple[str, ...] = ()


STUDIES: dict[str, Study] = {}


def register_study(study: Study) -> Study:
    if study.name in STUDIES and STUDIES[study.name] != study:
        raise ValueError(f"study {study.name!r} registered twice")
    STUDIES[study.name] = study
    return study


def _load_builtin() -> None:
    import biasstats.ingest.bai2024  # noqa: F401  (registers the Bai et al. study)


def outcome_kind(spec, adapter: str | None = None) -> str:
    """``"congruence"`` or ``"outcome"``: the spec's ``[effects] kind`` if given; else what the
    study that provides its adapter (or simulation preset) declares; else ``"congruence"``
    when the model's response is the canonical ``congruent`` column (a tidy spec that maps
    its 0/1 answer onto it declares a congruence coding); else ``"outcome"``."""
    declared = spec.content.effects.kind
    if declared is not None:
        return declared
    if spec.model is not None:
        from biasstats.model.formula import parse_formula

        if parse_formula(spec.model.formula).response == "congruent":
            return "congruence"
    _load_builtin()
    if spec.simulate is not None:
        presets = {p for s in STUDIES.values() for p in s.congruence_presets}
        return "congruence" if spec.simulate.preset in presets else "outcome"
    adapters = {a for s in STUDIES.values() for a in s.congruence_adapters}
    return "congruence" if adapter in adapters else "outcome"
