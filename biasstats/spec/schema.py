"""The analysis spec: one TOML file in ``analyses/`` declares a whole analysis.

Tables and keys (unknown keys are errors, so a typo never silently does nothing)::

    [analysis]                 # optional
    name = "gpt4o_iat"         # default: the file name without .toml
    title = "..."
    description = "..."

    [data]
    source = "bai2024_gpt4o"   # a registered dataset name, or a file path (relative to this file)
    adapter = "bai2024_iat"    # how raw rows become judgements; default: the dataset's, else "tidy"
    format = "csv"             # csv | jsonl | parquet; default from the extension (.gz allowed)
    delimiter = ","            # csv only
    encoding = "utf-8"         # utf-8 | latin-1 | cp1252
    filters = ["variant != 'synonym'"]  # SQL expressions; rows failing one are kept as 'excluded'
    refusals = ["REFUSED"]     # outcome / response values that mean the model refused
    refusal_pattern = "(?i)^i (can't|cannot)"   # regex on the response (raw) column
    outcome = "congruent"      # the outcome column (after mapping); congruent must be 0/1
    missing_outcome = "unparseable"  # or "refused": how an empty/NaN outcome is classified

    [data.columns]             # canonical name = source column (tidy adapter)
    llm = "model"
    congruent = "biased"

    [data.derive]              # new columns as SQL expressions, computed before the filters
    variant = "concat(template, '-', language)"

    [model]                    # see biasstats.model
    formula = "congruent ~ 1 + (1|llm) + (1|category/stereotype) + (1|variant)"
    family = "bernoulli"
    unit = "judgement"         # or "trial": one row per trial (e.g. a decision per trial)
    [model.priors]             # per-term overrides, e.g. sd_llm = "HalfNormal(1)"
    [model.centered]           # per-term centring overrides, e.g. llm = true
    [model.aux]                # distributional auxiliary parameters (log link), e.g.
    phi = "~ 1 + (1|llm)"      #   one beta-binomial dispersion per LLM

    [effects]
    hdi_prob = 0.95
    rope = 0.05                # "practically unbiased" = |bias| < 0.05 on the −1 … +1 scale

    [checks]                   # convergence gate (a failing fit gets a red banner and
    rhat_max = 1.01            # makes `nox -s report` exit non-zero unless allow_failure)
    ess_bulk_min = 400
    ess_tail_min = 400
    divergences_max = 0
    bfmi_min = 0.3
    allow_failure = false
    alternatives = ["congruent ~ 1 + (1|llm)"]   # compared with the main formula by PSIS-LOO
    loo = true                 # PSIS-LOO with Pareto k; loo_pit = true adds a calibration plot
    prior_predictive = false   # true: what rates do the priors alone imply?

    [simulate]                 # instead of [data]: a simulated study with known truth
    preset = "bai2024"         # 8 LLMs x 21 stereotypes, calibrated to the published figures
    seed = 1
    trials = 50

    [fit]
    chains = 4
    tune = 1000
    draws = 1000
    seed = 20240204
    sampler = "nutpie"         # or "pymc"
    target_accept = 0.95       # default: automatic, 0.9 / 0.95 / 0.99 by the terms' funnel risk
    adaptation = "low_rank"    # nutpie mass matrix: "low_rank" (default) or "diag"
    refit = true               # after a failed gate, refit once with the suggested fix
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CANONICAL_TARGETS = (
    "llm",
    "category",
    "stereotype",
    "variant",
    "trial",
    "item",
    "congruent",
    "raw",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AnalysisMeta(_Strict):
    name: str | None = None
    title: str | None = None
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or not all(c.isalnum() or c in "-_" for c in v)):
            raise ValueError("must be letters, digits, '-' or '_' (it names the report folder)")
        return v


class DataSpec(_Strict):
    source: str
    adapter: str | None = None
    format: Literal["csv", "jsonl", "parquet"] | None = None
    delimiter: str = ","
    encoding: Literal["utf-8", "latin-1", "cp1252"] = "utf-8"
    columns: dict[str, str] = Field(default_factory=dict)
    derive: dict[str, str] = Field(default_factory=dict)
    filters: list[str] = Field(default_factory=list)
    refusals: list[str] = Field(default_factory=list)
    refusal_pattern: str | None = None
    outcome: str = "congruent"
    missing_outcome: Literal["unparseable", "refused"] = "unparseable"

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("must be a single character")
        return v

    @field_validator("columns")
    @classmethod
    def _known_targets(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if key not in CANONICAL_TARGETS:
                raise ValueError(
                    f"unknown canonical column {key!r} (expected one of: "
                    f"{', '.join(CANONICAL_TARGETS)})"
                )
        return v


class SimulateSpec(_Strict):
    """Simulated data instead of a source: ``[simulate] preset = "bai2024"``."""

    preset: Literal["bai2024"] = "bai2024"
    seed: int = 0
    trials: int = Field(default=50, ge=1)
    variants: list[str] = Field(
        default_factory=lambda: ["replication", "instruction1", "instruction2", "synonym"],
        min_length=1,
    )
    variant_sd: float = Field(default=0.15, ge=0)
    refusal_rate: float = Field(default=0.02, ge=0, lt=1)
    llms: list[str] | None = None


class ModelSpec(_Strict):
    formula: str
    family: str = "bernoulli"
    unit: Literal["judgement", "trial"] = "judgement"  # what one observation is
    priors: dict[str, str] = Field(default_factory=dict)
    centered: dict[str, bool] = Field(default_factory=dict)
    # distributional formulas of positive auxiliary parameters (log link), brms-style:
    # [model.aux] phi = "~ 1 + (1|llm)"
    aux: dict[str, str] = Field(default_factory=dict)


class FitSpec(_Strict):
    chains: int = Field(default=4, ge=1)
    tune: int = Field(default=1000, ge=0)
    draws: int = Field(default=1000, ge=1)
    seed: int = 20240204
    sampler: Literal["nutpie", "pymc"] = "nutpie"
    # None (omitted): chosen from the model's geometry (fit.sample.auto_target_accept)
    target_accept: float | None = Field(default=None, gt=0, lt=1)
    adaptation: Literal["low_rank", "diag"] = "low_rank"  # nutpie mass-matrix adaptation
    # after a failed convergence gate, refit once with the other parameterisation of the term
    # the divergence locator names and/or a higher target_accept (biasstats.fit.fit_prepared)
    refit: bool = True


class EffectsSpec(_Strict):
    """``[effects]``: how effect sizes are summarised."""

    hdi_prob: float = Field(default=0.95, gt=0, lt=1)
    rope: float = Field(default=0.05, ge=0, lt=1)  # half-width on the bias scale (−1 … +1)


class ChecksSpec(_Strict):
    """``[checks]``: convergence thresholds and which checks to run."""

    rhat_max: float = Field(default=1.01, ge=1)
    ess_bulk_min: float = Field(default=400, ge=0)
    ess_tail_min: float = Field(default=400, ge=0)
    divergences_max: int = Field(default=0, ge=0)
    bfmi_min: float = Field(default=0.3, ge=0)
    allow_failure: bool = False  # report a failing fit without failing the run
    loo: bool = True
    loo_pit: bool = True  # LOO-PIT calibration plot (needs loo)
    prior_predictive: bool = False  # prior predictive check (rates the priors alone imply)
    alternatives: list[str] = Field(default_factory=list)  # formulas compared by LOO


class AnalysisSpec(_Strict):
    analysis: AnalysisMeta = Field(default_factory=AnalysisMeta)
    data: DataSpec | None = None
    simulate: SimulateSpec | None = None
    model: ModelSpec | None = None
    fit: FitSpec = Field(default_factory=FitSpec)
    effects: EffectsSpec = Field(default_factory=EffectsSpec)
    checks: ChecksSpec = Field(default_factory=ChecksSpec)

    @model_validator(mode="after")
    def _one_source(self) -> AnalysisSpec:
        if (self.data is None) == (self.simulate is None):
            raise ValueError("give exactly one of [data] (a dataset or file) or [simulate]")
        return self
