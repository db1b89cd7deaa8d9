"""Spec stage: the declarative TOML analysis spec. Entry points: :func:`load_spec` (one
analysis) and :func:`load_specs` (one, or every member of a ``[sweep]``)."""

from biasstats.spec.analysis import AnalysisSpec
from biasstats.spec.load import Spec, SweepMember, load_spec
from biasstats.spec.sweep import load_member, load_specs

__all__ = ["AnalysisSpec", "Spec", "SweepMember", "load_member", "load_spec", "load_specs"]
