"""Named scores: ``[effects.derived.<name>] score = "<score>"`` instead of an ``expr``.

A score is an expression template of the derived-estimand grammar
(:mod:`biasstats.spec.derived`), filled in from the table's parameters, never code:

* ``categories``: the names of the outcome categories the template's roles stand for
  (``{biased}``, ``{anti}``: the QA scores; ``{outcome}``: the category whose probability the
  impact scores compare, none for a 0/1 outcome), each with a default;
* ``over``: a model factor whose levels the template compares (``per_level`` is written once
  per level, ``{level}`` the level, and the copies joined into ``{levels}``).

The built-in scores are below; a study (or a user) adds more with :func:`register_score`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Score", "SCORES", "register_score", "score", "score_names", "expand_score"]


@dataclass(frozen=True)
class Score:
    """``template``: an expression with ``{role}`` fields (each a category of ``roles``,
    written as a quoted name) and, when ``per_level`` is set, ``{levels}``; ``null``: the value
    meaning "no bias"; ``label`` / ``unit``: its words in tables and sentences."""

    name: str
    template: str
    label: str
    roles: Mapping[str, str | None] = field(default_factory=dict)  # role -> default category
    per_level: str | None = None   # e.g. "P({outcome}{over}={level})": needs ``over``
    null: float = 0.0
    unit: str = ""
    description: str = ""

    @property
    def needs_over(self) -> bool:
        return self.per_level is not None


_QA_ROLES = {"biased": "biased", "anti": "anti"}

# units with a minus sign (−): a CSV cell starting "-" is neutralised as a formula
SCORES: dict[str, Score] = {s.name: s for s in [
    Score("qa_bias_disambiguated", "2 * P({biased}) / (P({biased}) + P({anti})) - 1",
          "bias score s_DIS", _QA_ROLES, unit="−1 to 1",
          description="2 P(biased) / (P(biased) + P(anti)) - 1: the share of biased answers "
                      "among the answers that pick a target, on -1 ... 1 (BBQ's s_DIS)"),
    Score("qa_bias_ambiguous", "P({biased}) - P({anti})",
          "bias score s_AMB", _QA_ROLES, unit="−1 to 1",
          description="P(biased) - P(anti), which is BBQ's s_AMB = (1 - accuracy) s_DIS when "
                      "the correct answer of an ambiguous context is 'unknown'"),
    Score("adverse_impact_ratio", "min({levels}) / max({levels})",
          "adverse-impact ratio", {"outcome": None}, per_level="P({outcome}{over}={level})",
          null=1.0, unit="ratio",
          description="the lowest P over the levels of `over` divided by the highest, within "
                      "each stratum (1: parity; below 0.8 fails the four-fifths rule)"),
    Score("demographic_parity_difference", "max({levels}) - min({levels})",
          "demographic-parity difference", {"outcome": None},
          per_level="P({outcome}{over}={level})", unit="probability",
          description="the highest P over the levels of `over` minus the lowest, within each "
                      "stratum (0: parity)"),
]}


def register_score(s: Score, *, replace: bool = False) -> Score:
    """Add a named score (a different score under a taken name is an error)."""
    old = SCORES.get(s.name)
    if old is not None and old != s and not replace:
        raise ValueError(f"score {s.name!r} registered twice")
    SCORES[s.name] = s
    return s


def score(name: str) -> Score | None:
    """The score registered as ``name``, or None."""
    return SCORES.get(name)


def score_names() -> list[str]:
    return sorted(SCORES)


def expand_score(s: Score, categories: Mapping[str, str], over: str | None = None,
                 levels: list[str] | tuple[str, ...] = ()) -> str:
    """The expression of score ``s`` with its roles filled in (``categories`` over the
    defaults; names quoted, so no name can change the expression's shape) and, for a score
    over the levels of a factor, one term per level of ``over``."""
    roles = {**s.roles, **categories}
    fields = {k: (repr(str(v)) if v is not None else "") for k, v in roles.items()}
    if s.per_level is None:
        return s.template.format(**fields)
    outcome = fields.get("outcome", "")
    each = [s.per_level.format(**{**fields, "outcome": f"{outcome}, " if outcome else "",
                                  "over": over, "level": repr(str(lv))}) for lv in levels]
    return s.template.format(**fields, levels=", ".join(each))
