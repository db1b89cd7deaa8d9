"""What a spec's ``[effects]`` declared, in the order it is written: the report's headlines
lead with these (:mod:`biasstats.report.headlines`)."""

from __future__ import annotations

import tomllib

__all__ = ["ESTIMAND_KEYS", "declared_estimands"]

#: The ``[effects]`` keys that ask for estimands, in the schema's order (the order used when
#: the spec's text is not at hand).
ESTIMAND_KEYS = ("by", "contrasts", "impact", "rank", "slopes", "level_slopes", "derived")


def declared_estimands(spec) -> list[tuple[str, str]]:
    """``(key, term)`` of every estimand ``[effects]`` declares, keys in the order the spec's
    text writes them, terms in their list order: ``[("contrasts", "condition | test"),
    ("by", "group"), ...]``. Keys left to their defaults are not declared. ``spec``: a
    :class:`~biasstats.spec.Spec` (its text gives the order; without text, the schema's)."""
    e = spec.content.effects
    try:
        written = list((tomllib.loads(spec.text or "").get("effects") or {}).keys())
    except tomllib.TOMLDecodeError:  # a spec built in code: no text of its own
        written = []
    keys = [k for k in written if k in ESTIMAND_KEYS]
    keys += [k for k in ESTIMAND_KEYS if k not in keys and k in e.model_fields_set]
    out: list[tuple[str, str]] = []
    for key in keys:
        value = getattr(e, key)
        # a derived estimand's "term" is its name ([effects.derived.<name>], in written order)
        for term in [value] if isinstance(value, str) else list(value or []):
            if (key, term) not in out:
                out.append((key, term))
    return out
