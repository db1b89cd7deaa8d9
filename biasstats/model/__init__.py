"""Modelling core: lme4-style formulas, families as data, data-scaled priors, PyMC builder."""

from biasstats.model.build import prepare
from biasstats.model.design import ModelSpec
from biasstats.model.families import FAMILIES, Family, get_family
from biasstats.model.formula import GroupTerm, ParsedFormula, parse_formula
from biasstats.model.graph import build_model
from biasstats.model.priors import Prior, parse_prior

__all__ = ["FAMILIES", "Family", "GroupTerm", "ModelSpec", "ParsedFormula", "Prior",
           "build_model", "get_family", "parse_formula", "parse_prior", "prepare"]
