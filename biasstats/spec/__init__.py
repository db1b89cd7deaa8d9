"""Spec stage: the declarative TOML analysis spec. Entry point: :func:`load_spec`."""

from biasstats.spec.analysis import AnalysisSpec
from biasstats.spec.load import Spec, load_spec

__all__ = ["AnalysisSpec", "Spec", "load_spec"]
