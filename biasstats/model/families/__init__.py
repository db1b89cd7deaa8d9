"""Response families, declared as data: the one place that knows them.

Each family is one :class:`Family` record (:mod:`biasstats.model.families.base`) in a module
of its group — :mod:`~biasstats.model.families.binomial` (0/1 outcomes),
:mod:`~biasstats.model.families.continuous`, :mod:`~biasstats.model.families.counts`,
:mod:`~biasstats.model.families.categories` — with its likelihood, numpy log-likelihood and
random draw, expected value, the auxiliary parameters with their default priors (prior
strings, scaled to the data through ``{sd_y}``-style placeholders), the link, and what the
response must look like. Adding a family is adding an entry to its group's ``FAMILIES`` list
(and its tests); nothing outside this package asks which family it has.
"""

from __future__ import annotations

from biasstats.errors import SpecError
from biasstats.model.families import binomial, categories, continuous, counts
from biasstats.model.families.base import LINKS, RESPONSES, Family, Link, Response, log_choose
from biasstats.model.families.binomial import (
    LN_C2,
    LN_NODES,
    beta_binomial_log_pmf,
    binomial_loglik,
    ln_location,
    rising_tables,
)
from biasstats.model.families.categories import cutpoint_centres

__all__ = ["Family", "FAMILIES", "ALIASES", "get_family", "Link", "LINKS", "Response",
           "RESPONSES", "log_choose", "binomial_loglik", "rising_tables",
           "beta_binomial_log_pmf", "ln_location", "LN_C2", "LN_NODES", "cutpoint_centres"]

FAMILIES: dict[str, Family] = {
    f.name: f for f in [*binomial.FAMILIES, *continuous.FAMILIES, *counts.FAMILIES,
                        *categories.FAMILIES]
}
ALIASES: dict[str, str] = {a: f.name for f in FAMILIES.values() for a in f.aliases}


def get_family(name: str) -> Family:
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in FAMILIES:
        raise SpecError(f"unknown family '{name}'; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[key]
