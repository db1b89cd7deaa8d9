"""The analysis spec: one TOML file in ``analyses/`` declares a whole analysis.

Tables and keys (unknown keys are errors, so a typo never silently does nothing)::

    [analysis]                 # optional
    name = "gpt4o_iat"         # default: the file name without .toml
    title = "..."
    description = "..."

    [data]                     # `biasstats spec` lists every key (generated from this schema)
    source = "bai2024_gpt4o"   # a registered dataset, or a path / glob / folder, or a list of them
    adapter = "bai2024_iat"    # how raw rows become judgements; default: the dataset's, else "tidy"
    format = "csv"             # csv | tsv | jsonl | json | parquet | inspect_eval | lm_eval_samples
    path_pattern = "{llm}/{test}.csv"   # columns from each file's path
    explode = ["request.names"]         # list fields -> one row per element
    delimiter = ","            # csv only
    encoding = "utf-8"         # utf-8 | latin-1 | cp1252
    filters = ["variant != 'synonym'"]  # SQL expressions; rows failing one are kept as 'excluded'
    refusals = ["REFUSED"]     # outcome / response values that mean the model refused
    refusal_pattern = "(?i)^i (can't|cannot)"   # regex (Rust syntax) on the response (raw) column
    outcome = "congruent"      # the outcome column (after mapping); congruent must be 0/1
    missing_outcome = "unparseable"  # or "refused": how an empty/NaN outcome is classified

    [data.columns]             # canonical name = source column (tidy adapter)
    llm = "model"
    congruent = "biased"

    [data.derive]              # new columns as SQL expressions, computed before the filters
    variant = "concat(template, '-', language)"

    [data.parse.answer]        # text -> a column: regex | first_mention | one_of
    kind = "regex"
    text = "completion"
    pattern = "\\(([A-D])\\)"

    include = ["refused"]      # statuses whose rows reach the model beside ok (P(refusal))

    [model]                    # see biasstats.model
    formula = "congruent ~ 1 + (1|llm) + (1|category/stereotype) + (1|variant)"
    family = "bernoulli"
    unit = "judgement"         # or "trial": one row per trial (e.g. a decision per trial)
    [model.priors]             # per-term overrides, e.g. sd_llm = "HalfNormal(1)"
    [model.centered]           # per-term centring overrides, e.g. llm = true
    [model.aux]                # distributional auxiliary parameters (log link), e.g.
    phi = "~ 1 + (1|llm)"      #   one beta-binomial dispersion per LLM

    [effects]                  # what the report leads with (default: read off the formula)
    hdi_prob = 0.95
    kind = "outcome"           # or "congruence" (bias wording; the Bai adapters set it)
    outcome_label = "refusal"  # words for the outcome; unit = "tokens" for amounts
    by = ["group", "llm:stereotype"]   # marginal means per level
    contrasts = ["condition"]  # differences (and ratios / odds ratios) between levels
    reference = {condition = "control"}  # else all pairs (<= 4 levels) or the first level
    slopes = ["x"]             # average slope of a numeric predictor
    rank = "llm"               # rank levels by marginal mean
    rope = 0.05                # congruence: |bias| < 0.05; otherwise in outcome units

    [checks]                   # convergence gate (a failing fit gets a red banner and
    rhat_max = 1.01            # makes `nox -s report` exit non-zero unless allow_failure)
    ess_bulk_min = 400
    ess_tail_min = 400
    divergences_max = 0
    bfmi_min = 0.3
    allow_failure = false
    alternatives = ["congruent ~ 1 + (1|llm)"]   # compared with the main formula by PSIS-LOO
    sensitivity = ["other_model.toml"]   # other specs of the same data, compared per trial
    loo = true                 # PSIS-LOO with Pareto k; loo_pit = true adds a calibration plot
    prior_predictive = false   # true: what rates do the priors alone imply?

    [[replication]]            # a published number beside the reanalysis (one table each;
    estimand = "contrast:condition"  # biasstats.spec.replication): <estimand>:<term> of
    level = "treated − control"      # estimands.csv, then the row's stratum / level / scale
    published = 0.12
    interval = [0.05, 0.19]    # or se = 0.035
    citation = "Author et al. (2025), Table 2"

    [simulate]                 # instead of [data]: a simulated study with known truth
    preset = "bai2024"         # 8 LLMs x 21 stereotypes, calibrated to the published figures
    seed = 1                   # 0 ... 4294967295
    trials = 50                # per LLM x stereotype x variant; at most 10000
    max_rows = 5000000         # cap on judgements simulated (LLMs x 21 x variants x trials x
                               # 16); at most 50000000

    [fit]                      # limits suit one machine; each is stated in the error
    chains = 4                 # at most 64
    tune = 1000                # at most 100000
    draws = 1000               # at most 100000
    seed = 20240204            # 0 ... 4294967295
    max_memory_gb = 4          # the fit's estimated memory (draws x chains x (parameters + 2
                               # x observations) x 8 bytes) must stay below; at most 1024
    sampler = "nutpie"         # or "pymc"
    target_accept = 0.95       # default: automatic, 0.9 / 0.95 / 0.99 by the terms' funnel risk
    adaptation = "auto"        # nutpie mass matrix: "auto" (default), "low_rank" or "diag"
    backend = "auto"           # nutpie's compiler: "auto" (default: numba, JAX for a data
                               # array above 1 MB), "numba" or "jax"
    device = "auto"            # where JAX runs: "auto" (default: a GPU when JAX sees one and
                               # the backend is JAX, else the CPU), "cpu" or "gpu" (needs JAX)
    refit = true               # after a failed gate, refit (up to 3 attempts) as its cause says

    [parts.<name>]             # instead of [data] + [model]: a joint model of named parts
    data = {...}               # [parts.<name>.data]: the [data] keys
    model = {...}              # [parts.<name>.model]: the [model] keys; (1|p|g) correlates
    effects = {...}            # [parts.<name>.effects]: the [effects] keys
    [joint]
    slope = ["implicit", "decision"]   # regress the second part's effects on the first's
    hdi_prob = 0.95

The whole spec is :class:`biasstats.spec.analysis.AnalysisSpec`; the parts are
:mod:`biasstats.spec.parts`.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from biasstats import registry
from biasstats.errors import SpecError
from biasstats.limits import MAX_DERIVE, MAX_FILES, MAX_FILES_CEILING, MAX_FILTERS
from biasstats.model.families import get_family
from biasstats.model.formula import parse_aux, parse_formula
from biasstats.model.priors import parse_prior
from biasstats.spec.derived import DerivedSpec
from biasstats.spec.sql import check_sql

#: Resource limits (stated maxima; the defaults below suit one machine).
MAX_SEED = 2**32 - 1
MAX_CHAINS = 64
MAX_TUNE = 100_000
MAX_DRAWS = 100_000
MAX_MEMORY_GB = 1024.0
MAX_SIM_TRIALS = 10_000
MAX_SIM_ROWS = 50_000_000
DEFAULT_SIM_ROWS = 5_000_000

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


def is_safe_name(name: str) -> bool:
    """Letters, digits, '-' and '_' only: safe as a folder name (no '/', no '..')."""
    return bool(name) and all(c.isalnum() or c in "-_" for c in name)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AnalysisMeta(_Strict):
    name: str | None = None
    title: str | None = None
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        if v is not None and not is_safe_name(v):
            raise ValueError("must be letters, digits, '-' or '_' (it names the report folder)")
        return v


# never written by a spec (``refused`` is read off ``status``)
PROTECTED_COLUMNS = ("source_row", "source_file", "status", "reason", "refused")
DATA_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "inspect_eval", "lm_eval_samples")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid regex for the engine that runs it (polars, i.e. the
    Rust ``regex`` crate), or None. One dialect validates and runs every pattern."""

    try:
        pl.select(pl.lit("").str.contains(pattern))
    except Exception as e:  # polars raises ComputeError with the regex crate's message
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip().startswith("error:")]
        return lines[0].removeprefix("error:").strip() if lines else type(e).__name__
    return None


def regex_groups(pattern: str) -> int:
    """Number of capture groups of a valid pattern (polars' regex engine)."""

    return len(pl.select(pl.lit("").str.extract_groups(pattern)).to_series().struct.fields)


def _check_pattern(pattern: str) -> str:
    why = regex_problem(pattern)
    if why is not None:
        raise ValueError(f"not a valid regex (Rust regex syntax, as polars runs it): {why}")
    return pattern


def toml_value(v, *, items: bool = True) -> str:
    """A spec value as a one-line message shows it: a string quoted, a boolean as TOML writes
    it, a table as "a table", a list with its items (``items``) or as "a list"."""
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]" if items else "a list"
    return repr(v)


class ParseRule(_Strict):
    """``[data.parse.<column>]``: make ``<column>`` from text, without Python."""

    kind: Literal["regex", "first_mention", "one_of"]
    text: str
    pattern: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    candidates: str | None = None
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields_for_kind(self) -> ParseRule:
        need = {"regex": "pattern", "first_mention": "candidates", "one_of": "values"}[self.kind]
        own = {"regex": {"pattern", "map"}, "first_mention": {"candidates"}, "one_of": {"values"}}
        if not getattr(self, need):
            raise ValueError(f'kind = "{self.kind}" needs {need}')
        for key in ("pattern", "map", "candidates", "values"):
            if key not in own[self.kind] and getattr(self, key):
                raise ValueError(f'{key} does not apply to kind = "{self.kind}"')
        if self.pattern is not None:
            _check_pattern(self.pattern)
            if regex_groups(self.pattern) < 1:
                raise ValueError(f"pattern {self.pattern!r} needs a capture group, e.g. ([A-D])")
        return self


class DataSpec(_Strict):
    source: str | list[str]
    adapter: str | None = None
    format: Literal[DATA_FORMATS] | None = None  # type: ignore[valid-type]
    path_pattern: str | None = None
    delimiter: str = ","
    encoding: Literal["utf-8", "latin-1", "cp1252"] = "utf-8"
    rename: dict[str, str] = Field(default_factory=dict)
    parse: dict[str, ParseRule] = Field(default_factory=dict)
    explode: list[str] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict)
    derive: dict[str, str] = Field(default_factory=dict)
    filters: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    refusals: list[str] = Field(default_factory=list)
    refusal_pattern: str | None = None
    outcome: str = "congruent"
    outcome_type: Literal["number", "label"] | None = None
    missing_outcome: Literal["unparseable", "refused"] = "unparseable"
    # rows of these statuses reach the model beside the ok ones (their outcome is empty):
    # ["refused"] with a formula on the `refused` column models P(refusal)
    include: list[Literal["refused", "unparseable"]] = Field(default_factory=list)
    max_rows: int = Field(default=50_000_000, ge=1, le=1_000_000_000)
    max_decompressed_bytes: int = Field(default=1 << 28, ge=1, le=1 << 40)
    max_files: int = Field(default=MAX_FILES, ge=1, le=MAX_FILES_CEILING)

    @field_validator("source", mode="before")
    @classmethod
    def _sources(cls, v):
        items = [v] if isinstance(v, str) else v
        if (
            not isinstance(items, list)
            or not items
            or any(not isinstance(s, str) or not s.strip() for s in items)
        ):
            raise ValueError(
                "expected a path, glob, folder or dataset name, or a list of them "
                f"(got {toml_value(v)})"
            )
        return v

    @field_validator("path_pattern")
    @classmethod
    def _placeholders(cls, v: str | None) -> str | None:
        if v is None:
            return v
        names = _PLACEHOLDER.findall(v)
        if not names:
            raise ValueError('expected at least one {placeholder}, e.g. "{llm}/{test}.csv"')
        for name in names:
            if not name.isidentifier():
                raise ValueError(f"placeholder {{{name}}} must be a plain name (letters, digits, _)")
            if name in PROTECTED_COLUMNS:
                raise ValueError(f"placeholder {{{name}}} is a reserved audit column")
        if len(set(names)) != len(names):
            raise ValueError("each placeholder may appear once")
        return v

    @field_validator("refusal_pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return v if v is None else _check_pattern(v)

    @field_validator("derive", "parse", "rename")
    @classmethod
    def _no_audit_targets(cls, v: dict, info) -> dict:
        targets = v.values() if info.field_name == "rename" else v.keys()
        for name in targets:
            if name in PROTECTED_COLUMNS:
                raise ValueError(f"cannot write the audit column {name!r}")
        return v

    @field_validator("adapter")
    @classmethod
    def _registered_adapter(cls, v: str | None) -> str | None:
        """A spec names a registered adapter; a ``module:function`` string (Python code to
        import) is refused when the spec loads, before anything runs."""
        if v is None:
            return v

        if ":" in v:
            raise ValueError(f'[data] adapter = "{v}": {registry.code_adapter_message(v)}')
        known = registry.adapter_names()
        if v not in known:
            raise ValueError(f'[data] adapter = "{v}": unknown adapter (known: {", ".join(known)}; register '
                             "yours with biasstats.register_adapter or an entry point in "
                             f"'{registry.ADAPTER_ENTRY_POINTS}')")
        return v

    @field_validator("derive")
    @classmethod
    def _derive_grammar(cls, v: dict[str, str]) -> dict[str, str]:
        """Each derive expression is parsed and checked against the whitelist (never run)."""

        if len(v) > MAX_DERIVE:
            raise ValueError(f"{len(v)} derived columns, above the limit of {MAX_DERIVE}")
        for name, text in v.items():
            if not isinstance(text, str):
                raise ValueError(f"{name}: expected a SQL expression (a string)")
            _as_value_error(check_sql, text, f"[data] derive.{name}")
        return v

    @field_validator("filters", "exclude")
    @classmethod
    def _filter_grammar(cls, v: list[str], info) -> list[str]:
        key = info.field_name
        if len(v) > MAX_FILTERS:
            raise ValueError(f"{len(v)} {'filters' if key == 'filters' else 'exclusions'}, above "
                             f"the limit of {MAX_FILTERS}")
        for i, text in enumerate(v):
            _as_value_error(check_sql, text, f"[data] {key}[{i}]")
        return v

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("must be a single character")
        return v

    @field_validator("columns")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        """Any plain name: a canonical one (CANONICAL_TARGETS) keeps its meaning to the model
        and the report, any other is a copy under that name."""
        for key in v:
            if key in PROTECTED_COLUMNS:
                raise ValueError(f"cannot write the audit column {key!r}")
            if not (key.replace("_", "a").isalnum() and not key[0].isdigit()):
                raise ValueError(f"{key!r}: a target is a plain name (letters, digits, _), "
                                 f"e.g. judge = \"response.model\"")
        return v


class SimulateSpec(_Strict):
    """Simulated data instead of a source: ``[simulate] preset = "bai2024"`` (a preset a
    registered study provides; see :mod:`biasstats.registry`)."""

    preset: str = "bai2024"
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    trials: int = Field(default=50, ge=1, le=MAX_SIM_TRIALS)
    variants: list[str] = Field(
        default_factory=lambda: ["replication", "instruction1", "instruction2", "synonym"],
        min_length=1,
    )
    variant_sd: float = Field(default=0.15, ge=0, allow_inf_nan=False)
    refusal_rate: float = Field(default=0.02, ge=0, lt=1)
    llms: list[str] | None = None
    max_rows: int = Field(default=DEFAULT_SIM_ROWS, ge=1, le=MAX_SIM_ROWS)

    @model_validator(mode="after")
    def _size(self) -> SimulateSpec:
        size = registry.preset_size(self.preset)  # the study that provides the preset says
        if size is None:
            return self
        rows, how = size(self)
        if rows > self.max_rows:
            raise ValueError(
                f"would make {rows} judgements ({how}), above max_rows = {self.max_rows}; "
                f"lower trials, or raise max_rows (at most {MAX_SIM_ROWS})")
        return self

    @field_validator("preset")
    @classmethod
    def _registered_preset(cls, v: str) -> str:
        known = registry.preset_names()
        if v not in known:
            raise ValueError(f"unknown preset {v!r} (registered: {', '.join(known)})")
        return v


def _as_value_error(check, *args):
    """Run a checker that raises SpecError, as a pydantic validator must: ValueError."""

    try:
        return check(*args)
    except SpecError as e:
        raise ValueError(str(e)) from None


def _formula_syntax(text: str) -> str:
    """Check a formula's syntax and whitelist when the spec is loaded (parsed, never run)."""

    try:
        parse_formula(text)
    except SpecError as e:
        raise ValueError(str(e)) from None
    return text


class ModelSpec(_Strict):
    formula: str
    family: str = "bernoulli"
    unit: Literal["judgement", "trial"] = "judgement"  # what one observation is
    priors: dict[str, str] = Field(default_factory=dict)
    centered: dict[str, bool] = Field(default_factory=dict)
    # distributional formulas of positive auxiliary parameters (log link), brms-style:
    # [model.aux] phi = "~ 1 + (1|llm)"
    aux: dict[str, str] = Field(default_factory=dict)

    @field_validator("formula")
    @classmethod
    def _formula(cls, v: str) -> str:
        return _formula_syntax(v)

    @model_validator(mode="after")
    def _aux_formulas(self) -> ModelSpec:
        """``[model.aux]`` formulas are parsed and checked like ``formula`` when the spec
        loads (grammar, whitelist, the family's auxiliary parameters)."""
        if not self.aux:
            return self

        try:
            parse_aux(self.aux, get_family(self.family), parse_formula(self.formula))
        except SpecError as e:
            raise ValueError(str(e)) from None
        return self

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        try:
            get_family(v)
        except SpecError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("priors")
    @classmethod
    def _parsable_priors(cls, v: dict[str, str]) -> dict[str, str]:
        """Each prior is parsed (never evaluated) and its parameters checked when the spec is
        read, so a bad one is reported against its key before any data is touched."""

        for key, text in v.items():
            try:
                parse_prior(text, key)
            except SpecError as e:
                raise ValueError(str(e)) from None
        return v


class FitSpec(_Strict):
    chains: int = Field(default=4, ge=1, le=MAX_CHAINS)
    tune: int = Field(default=1000, ge=0, le=MAX_TUNE)
    draws: int = Field(default=1000, ge=1, le=MAX_DRAWS)
    seed: int = Field(default=20240204, ge=0, le=MAX_SEED)
    sampler: Literal["nutpie", "pymc"] = "nutpie"
    # None (omitted): chosen from the model's geometry (fit.sample.auto_target_accept)
    target_accept: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False)
    # nutpie mass-matrix adaptation; "auto": low_rank up to fit.sample.LOW_RANK_MAX_PARAMS
    # unconstrained parameters or with LOW_RANK_MIN_OBS_PER_PARAM observations per parameter,
    # diag otherwise
    adaptation: Literal["auto", "low_rank", "diag"] = "auto"
    # how nutpie compiles the log density and its gradient; "auto": chosen by the model's size
    # (biasstats.inference.sample.auto_backend)
    backend: Literal["auto", "numba", "jax"] = "auto"
    # where the JAX backend runs; "auto": a GPU when JAX sees one (biasstats.inference.sample.
    # auto_device); numba always runs on the CPU
    device: Literal["auto", "cpu", "gpu"] = "auto"

    @field_validator("backend")
    @classmethod
    def _jax_installed(cls, v: str) -> str:
        if v == "jax" and importlib.util.find_spec("jax") is None:
            raise ValueError('[fit] backend = "jax" needs JAX installed (pip install jax); or '
                             'use backend = "auto" or "numba"')
        return v

    @model_validator(mode="after")
    def _device_needs_jax(self):
        if self.device != "gpu":
            return self
        if self.backend == "numba":
            raise ValueError('[fit] device = "gpu" needs backend = "jax" (or "auto"): numba '
                             'compiles for the CPU')
        if importlib.util.find_spec("jax") is None:
            raise ValueError('[fit] device = "gpu" needs JAX with CUDA installed (pip install '
                             '"jax[cuda12]"); or use device = "auto"')
        return self
    # cap on the fit's estimated memory (biasstats.inference.memory_estimate), checked before sampling
    max_memory_gb: float = Field(default=4.0, gt=0, le=MAX_MEMORY_GB, allow_inf_nan=False)
    # after a failed convergence gate, refit as its cause says, up to 3 attempts in all
    # (biasstats.inference.attempts: reparameterise / target_accept, chains added, longer)
    refit: bool = True


class EffectsSpec(_Strict):
    """``[effects]``: which estimands the report leads with, and their wording.

    Every list defaults to what the formula implies (see
    :func:`biasstats.effects.estimands.default_request`): every fixed factor's marginal means
    and contrasts, every numeric predictor's average slope, every grouping factor's marginal
    means, per-level slopes of varying-slope terms; no ranks unless asked.
    """

    hdi_prob: float = Field(default=0.95, gt=0, lt=1)
    # "congruence": the outcome codes a stereotype-congruent answer (bias wording, −1…+1
    # scale, D score, ROPE verdicts); "outcome": neutral words from outcome_label and unit.
    # Default: what the data's adapter / simulator declares (the Bai adapters: congruence).
    kind: Literal["congruence", "outcome"] | None = None
    outcome_label: str | None = None   # e.g. "refusal", "reasoning tokens", "ranked first"
    unit: str | None = None            # e.g. "tokens" (outcome units, for wording)
    by: list[str] | None = None        # marginal means per level: ["group", "llm:stereotype"]
    contrasts: list[str] | None = None  # factors whose levels are compared
    # factor (or a declared within-strata term "a | s") -> reference level of its contrasts
    # and impact ratios
    reference: dict[str, str] = Field(default_factory=dict)
    pairs: Literal["auto", "all", "reference"] = "auto"  # auto: all pairs up to 4 levels
    slopes: list[str] | None = None    # numeric predictors (average marginal effect)
    level_slopes: list[str] | None = None  # varying-slope terms: each level's slope
    rank: str | None = None            # rank the levels of this factor ("llm | test": within)
    # within each stratum: each level's rate over the reference level's (``reference``), over
    # the best level's, the adverse-impact ratio min/max, P(< 0.8), P(best) / P(worst):
    # ["demo | llm:job"]
    impact: list[str] | None = None
    # the average of a within-strata contrast over its strata: "equal" weights, or "observed"
    strata_weights: Literal["equal", "observed"] = "equal"
    # region of practical equivalence: for congruence outcomes a half-width on the bias
    # scale (default 0.05); otherwise in outcome units for contrasts and slopes (percentage
    # points / 100 for probabilities), or absent
    rope: float | None = Field(default=None, ge=0)
    derived: dict[str, DerivedSpec] = Field(default_factory=dict)  # biasstats.spec.derived


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
    # other specs of the same data (paths relative to this one), e.g. a judgement-level model
    # beside a trial-level default: fitted (sharing their own analysis' cache) and compared
    # with this model by PSIS-LOO per trial
    sensitivity: list[str] = Field(default_factory=list)

    @field_validator("alternatives")
    @classmethod
    def _alternatives(cls, v: list[str]) -> list[str]:
        return [_formula_syntax(f) for f in v]
