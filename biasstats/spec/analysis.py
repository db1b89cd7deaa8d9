"""The whole analysis spec, :class:`AnalysisSpec`: its tables (:mod:`biasstats.spec.schema`,
and for a joint model the parts, :mod:`biasstats.spec.parts`) and the checks that read more
than one table."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from biasstats.model.formula import parse_formula
from biasstats.spec.derived import check_derived
from biasstats.spec.parts import (
    JointTable,
    PartSpec,
    check_effects,
    check_parts,
    no_correlation_ids,
)
from biasstats.spec.replication import ReplicationSpec, check_entries, check_terms
from biasstats.spec.schema import (
    AnalysisMeta,
    ChecksSpec,
    DataSpec,
    EffectsSpec,
    FitSpec,
    ModelSpec,
    SimulateSpec,
    _as_value_error,
    _Strict,
)

__all__ = ["AnalysisSpec"]


class AnalysisSpec(_Strict):
    analysis: AnalysisMeta = Field(default_factory=AnalysisMeta)
    data: DataSpec | None = None
    simulate: SimulateSpec | None = None
    model: ModelSpec | None = None
    fit: FitSpec = Field(default_factory=FitSpec)
    effects: EffectsSpec = Field(default_factory=EffectsSpec)
    checks: ChecksSpec = Field(default_factory=ChecksSpec)
    # a joint model of named parts, instead of [data] (or [simulate]) and [model]
    parts: dict[str, PartSpec] | None = None
    joint: JointTable | None = None
    # [[replication]]: published numbers beside the reanalysis (biasstats.spec.replication)
    replication: list[ReplicationSpec] = Field(default_factory=list)
    # [sweep]: one analysis per value (biasstats.spec.sweep expands it before validation;
    # declared here for the reference only: an expanded member has none)
    sweep: dict[str, str | list[str]] | None = None

    @field_validator("replication", mode="before")
    @classmethod
    def _replication_entries(cls, v):
        return check_entries(v)

    @model_validator(mode="after")
    def _one_source(self) -> AnalysisSpec:
        if self.parts is not None:
            return self._joint()
        if self.joint is not None:
            raise ValueError("[joint]: describes a joint model, which needs [parts.<name>] "
                             "tables (each with its own data and model)")
        if (self.data is None) == (self.simulate is None):
            raise ValueError("give exactly one of [data] (a dataset or file) or [simulate]")
        return self

    def _joint(self) -> AnalysisSpec:
        for table in ("data", "simulate", "model"):
            if getattr(self, table) is not None:
                raise ValueError(f"[{table}]: a joint spec ([parts]) gives each part its own "
                                 "[parts.<name>.data] and [parts.<name>.model]; move it into "
                                 "a part")
        if "effects" in self.model_fields_set:
            raise ValueError("[effects]: a joint spec declares each part's estimands in "
                             "[parts.<name>.effects] (and the joint ones in [joint])")
        if self.replication:
            raise ValueError("[[replication]]: not available for a joint model ([parts]) yet; "
                             "set published numbers beside a part in a spec of its own")
        if self.checks.alternatives:
            raise ValueError("[checks] alternatives: a joint model compares each part's "
                             "formulas in [parts.<name>.checks] alternatives (each fitted "
                             "jointly with the other parts)")
        if self.checks.sensitivity:
            raise ValueError("[checks] sensitivity: not available for a joint model ([parts]): "
                             "it compares whole specs by per-trial PSIS-LOO, and a joint "
                             "model's pointwise log-likelihood belongs to one part; compare a "
                             "part's formulas with [parts.<name>.checks] alternatives")
        check_parts(self.parts, self.joint)
        return self

    @model_validator(mode="after")
    def _estimands_in_formula(self) -> AnalysisSpec:
        """Every column an ``[effects]`` entry names must be one the model formula uses; a
        single model's formulas have no correlation id."""
        if self.model is None:
            return self
        no_correlation_ids(self.model.formula, "[model] formula")
        for i, f in enumerate(self.checks.alternatives):
            no_correlation_ids(f, f"[checks] alternatives[{i}]")
        check_effects(self.effects, self.model)
        pf = parse_formula(self.model.formula)
        check_terms(self.replication, [c for c in pf.columns()
                                       if c not in (pf.response, pf.trials)], self.effects)
        return self

    @model_validator(mode="after")
    def _derived(self) -> AnalysisSpec:  # [effects.derived.<name>] against the model
        _as_value_error(check_derived, self.effects.derived, self.model, self.data)
        return self
