"""``biasstats spec``: the spec reference, generated from the pydantic schema.

Every table and key is listed with its type and default read from
:class:`~biasstats.spec.analysis.AnalysisSpec` (so the reference cannot drift from what the
loader accepts) and a one-line meaning from :data:`MEANINGS` (a test checks every schema key
has one and no meaning names a key the schema lacks). Then the families, the canonical
columns (what each means to the model and report) and the ingest order of operations.
"""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from biasstats.model.families import FAMILIES
from biasstats.spec.analysis import AnalysisSpec
from biasstats.spec.sql import FUNCTIONS

SQL_GRAMMAR = (
    "[data] derive and filters (SQL, checked when the spec loads): columns (quote nested "
    "paths: \"choices[0].text\"), literals, + - * / % ||, = != < <= > >=, IS [NOT] NULL, "
    "AND OR NOT, ~ ~* (regex), CASE, CAST / :: to a scalar type, IN (literals), BETWEEN, "
    "LIKE / ILIKE, and these functions; no subqueries, table functions or comments:"
)

MEANINGS: dict[str, str] = {
    "analysis": "optional: names the analysis",
    "analysis.name": "report folder name (letters, digits, - or _); default: the spec file name",
    "analysis.title": "title shown on the report",
    "analysis.description": "free text shown on the report",
    "sweep": "one analysis per value of each variable (their product): a glob relative to "
             "the spec (llm = \"runs/*/\": each match's name) or a list of strings or "
             "integers (llm = [\"gpt4\", \"claude\"]); {llm} in [data] source, [analysis] title / description takes the "
             "value; members are named <analysis>--llm-<value>",
    "data": "the data to analyse (give [data] or [simulate], not both)",
    "data.source": "registered dataset name, or file path / glob (** allowed) / folder, or a "
                   "list of those; relative to the spec's folder",
    "data.adapter": "how raw rows become judgements: tidy (default), a built-in adapter, one "
                    "registered with biasstats.register_adapter or an entry point in "
                    "'biasstats.adapters' (a name, never Python code)",
    "data.format": "file format; default from the extension (.gz / .zst allowed)",
    "data.path_pattern": "placeholders matched against each file's path below the source's "
                         "fixed prefix become columns, e.g. \"{llm}/{test}.csv\"",
    "data.delimiter": "CSV field separator (one character); .tsv files use a tab",
    "data.encoding": "text encoding of CSV / JSON files",
    "data.rename": "source column = new name, applied when each file is read",
    "data.parse": "one rule per parsed column: makes <column> from text, without Python",
    "data.parse.<column>.kind": "regex: first capture group (then map); first_mention: rank of "
                                "each candidate by first mention; one_of: text must be a value",
    "data.parse.<column>.text": "column or nested path holding the text (a list of texts gives a "
                                "list aligned with it)",
    "data.parse.<column>.pattern": "regex with a capture group (Rust regex syntax)",
    "data.parse.<column>.map": "captured text = label; text not in the map is unparseable",
    "data.parse.<column>.candidates": "list column of names, ranked 1 = mentioned first; never "
                                      "mentioned ones after, in list order",
    "data.parse.<column>.values": "allowed answers, compared after trimming and case-folding",
    "data.explode": "list fields turned into one row per element (zipped; position in 'position')",
    "data.columns": "name = source column or nested path (copied; the source column stays "
                    "usable); a canonical name (llm, category, ...) keeps its meaning, any other "
                    "is a plain copy",
    "data.derive": "new column = SQL expression (the whitelist below), computed after the "
                   "mapping",
    "data.filters": "SQL yes/no expressions; ok rows failing one are kept as 'excluded'",
    "data.exclude": "SQL yes/no expressions; ok rows matching one are kept as 'excluded', the "
                    "condition as the reason (checked after filters)",
    "data.refusals": "outcome / raw values that mean the model refused",
    "data.refusal_pattern": "regex (Rust syntax) on the raw text / a parse rule's text: refused",
    "data.outcome": "the outcome column (after mapping, derive); congruent must be 0/1",
    "data.outcome_type": "number or label; default: label for a regex / one_of parse output, "
                         "else number",
    "data.missing_outcome": "status of a row whose outcome is empty or NaN",
    "data.include": "statuses whose rows reach the model beside ok ones (their outcome is "
                    "empty), e.g. [\"refused\"] to model the refused column",
    "data.max_rows": "stop with an error when the source passes this many rows (at most 1e9)",
    "data.max_decompressed_bytes": "stop with an error when a .gz / .zst file expands past this",
    "data.max_files": "refuse a source naming more files than this, before reading any (at "
                      "most 1e7)",
    "simulate": "simulated data with known truth instead of [data]",
    "simulate.preset": "a simulated design a registered study provides (built in: bai2024)",
    "simulate.seed": "random seed (same seed, same data)",
    "simulate.trials": "trials per cell",
    "simulate.max_rows": "refuse a simulated study larger than this many judgements",
    "simulate.variants": "prompt variants simulated",
    "simulate.variant_sd": "SD of the variant effects (logit scale)",
    "simulate.refusal_rate": "share of refused trials",
    "simulate.llms": "the LLMs simulated; default: the preset's",
    "model": "the hierarchical model",
    "model.formula": "R-style formula, e.g. congruent ~ 1 + (1|llm) + (1|category/stereotype)",
    "model.family": "response family (see the list below)",
    "model.unit": "what one observation is: a judgement, or a trial (k | trials(n) counts)",
    "model.priors": "prior key = \"Dist(args)\": Intercept, b, b_<column>, sd, sd_<group>, "
                    "sd_<group>__<coef>, cor, cor_<group>, sigma, nu, alpha, phi, cutpoints",
    "model.aux": "distributional formulas for auxiliary parameters, e.g. phi = \"~ 1 + (1|llm)\" (log link)",
    "model.centered": "grouping = true / false forces a centred / non-centred term "
                      "(e.g. llm = true, \"category:stereotype\" = false); default: automatic",
    "fit": "sampler settings",
    "fit.chains": "number of chains",
    "fit.tune": "warm-up draws per chain",
    "fit.draws": "kept draws per chain",
    "fit.seed": "random seed (same seed, same draws)",
    "fit.sampler": "nutpie or pymc",
    "fit.target_accept": "NUTS target acceptance; default: 0.9 / 0.95 / 0.99 by funnel risk",
    "fit.adaptation": "nutpie mass matrix adaptation: auto (low_rank up to 500 parameters, "
                      "diag above), low_rank or diag",
    "fit.backend": "how nutpie compiles the log density and gradient: auto (numba; JAX for "
                   "a model holding a data array above 1 MB), numba or jax",
    "fit.device": "where the JAX backend runs: auto (a GPU when JAX sees one), cpu or gpu",
    "fit.max_memory_gb": "refuse a fit whose estimated memory (draws x cells) exceeds this",
    "fit.refit": "after a failed convergence gate, refit up to twice, as its cause says: "
                 "other parameterisations and/or a higher target_accept for divergences or "
                 "a low E-BFMI, chains added for a low ESS alone",
    "effects": "the estimands the report leads with (default: read off the formula)",
    "effects.hdi_prob": "probability mass of the credible intervals",
    "effects.kind": "congruence (bias wording, -1...+1 scale) or outcome (neutral words); "
                    "default: what the adapter declares",
    "effects.outcome_label": "the outcome's name in sentences, e.g. refusal, reasoning tokens",
    "effects.unit": "the outcome's unit, e.g. tokens",
    "effects.by": "marginal means per level of these factors or interactions (a:b); within "
                  "each stratum of another: 'a | s'",
    "effects.contrasts": "factors whose levels are compared (difference, ratio, odds ratio); "
                         "'a | s': within each stratum of s, their average over the strata and "
                         "how much they vary (SD, P(same sign))",
    "effects.reference": "factor (or a within-strata term 'a | s' of [effects]) -> reference "
                         "level for its contrasts and impact ratios",
    "effects.pairs": "auto (all pairs up to 4 levels), all, or reference",
    "effects.slopes": "numeric predictors reported as average slopes",
    "effects.level_slopes": "varying-slope terms reported per level (b + r)",
    "effects.rank": "rank the levels of this factor by marginal mean ('a | s': within each "
                    "stratum)",
    "effects.impact": "'a | s': within each stratum, each level's rate over the reference "
                      "level's (when reference names one), over the best level's, the "
                      "adverse-impact ratio min/max, P(< 0.8) and P(best) / P(worst)",
    "effects.strata_weights": "the average of a within-strata contrast: equal weights per "
                              "stratum, or observed (its observations)",
    "effects.rope": "region of practical equivalence: congruence, half-width on the bias "
                    "scale (default 0.05); otherwise in outcome units for contrasts (a "
                    "probability for binomial families; not for ordinal / categorical ones, "
                    "which report one probability per category)",
    "effects.derived": "derived estimands, one table per name: an expression of P() / E() or a "
                       "score from the registry, evaluated draw by draw in each stratum",
    "effects.derived.<column>.expr": "P('cat'), P() (a 0/1 outcome), E(), P('cat', f='level'); "
                                     "numbers, + - * /, min, max, log, exp, abs",
    "effects.derived.<column>.score": "instead of expr, a score from the registry: qa_bias_disambiguated, "
                                      "qa_bias_ambiguous, adverse_impact_ratio, "
                                      "demographic_parity_difference",
    "effects.derived.<column>.categories": "a score's category roles, e.g. { biased = "
                                           "\"biased\", anti = \"anti\" } (the defaults)",
    "effects.derived.<column>.over": "the factor whose levels a score compares (impact ratio, "
                                     "parity difference)",
    "effects.derived.<column>.within": "factors of the model (a:b): one value per combination "
                                       "of their levels",
    "effects.derived.<column>.label": "its name in tables and sentences (default: the score's, "
                                      "else the table's name)",
    "effects.derived.<column>.unit": "its unit in tables and sentences",
    "effects.derived.<column>.rope": "region of practical equivalence: a half-width around "
                                     "null, or [low, high]",
    "effects.derived.<column>.null": "the value of no effect: P(> null) is reported (default 0; "
                                     "a score's own, e.g. 1 for a ratio)",
    "replication": "one table per published number, set beside the reanalysis of the same "
                   "estimand (report section 'Published vs reanalysis')",
    "replication.estimand": "<estimand>:<term> of an estimands.csv row: mean, contrast, slope "
                            "or impact, and the term as [effects] declares it, e.g. "
                            "\"contrast:condition\", \"impact:group | llm:job\", "
                            "\"mean:overall\"",
    "replication.level": "the row's level (a contrast: \"a − b\" or \"a / b\"; '-' is read "
                         "as '−'); may be left out when the estimand has one row",
    "replication.stratum": "the row's stratum (within-strata terms 'a | s'; also \"average "
                           "(equal weights)\" of a contrast)",
    "replication.category": "the row's response category (ordinal / categorical outcomes)",
    "replication.scale": "the row's scale (difference, ratio, odds_ratio, ...) when its level "
                         "has several",
    "replication.published": "the published number, in the row's unit (estimands.csv's unit "
                             "column)",
    "replication.interval": "the published interval [low, high] (optional)",
    "replication.se": "the published standard error (optional; shown as ± 1.96 se)",
    "replication.citation": "where the number was published, e.g. \"Author et al. (2025), "
                            "Table 2\"",
    "parts": "a joint model of named parts instead of [data] + [model]; (1|p|g) in two parts' "
             "formulas correlates their effects of g (LKJ)",
    "parts.<column>.data": "the part's data (a source several parts name is ingested once)",
    "parts.<column>.model": "the part's model; a correlation id (1|p|g) or (1 + x|p|g) links "
                            "it to the other parts with the same id",
    "parts.<column>.effects": "the part's own estimands",
    "parts.<column>.checks": "the part's own checks",
    "parts.<column>.checks.alternatives": "other formulas of the part (its correlation ids "
                                          "kept), each fitted jointly with the other parts "
                                          "and compared by PSIS-LOO on the part's "
                                          "observations",
    "joint": "what a joint model reports beyond its parts' estimands",
    "joint.slope": "[x, y]: the latent regression slope of part y's effects on part x's, "
                   "beside the two-step slope; default: the first two parts sharing an id",
    "joint.hdi_prob": "probability mass of the joint estimands' intervals",
    "checks": "convergence gate and model checks",
    "checks.rhat_max": "largest R-hat that passes",
    "checks.ess_bulk_min": "smallest bulk effective sample size that passes",
    "checks.ess_tail_min": "smallest tail effective sample size that passes",
    "checks.divergences_max": "most divergent transitions that pass",
    "checks.bfmi_min": "smallest E-BFMI that passes",
    "checks.allow_failure": "report a failing fit (red banner) without failing the run",
    "checks.loo": "PSIS-LOO with Pareto k",
    "checks.loo_pit": "LOO-PIT calibration plot (needs loo)",
    "checks.prior_predictive": "prior predictive check: rates the priors alone imply",
    "checks.alternatives": "formulas compared with the main one by PSIS-LOO",
    "checks.sensitivity": "other specs of the same data (paths relative to this spec), e.g. "
                          "a judgement-level model: fitted and compared per trial by PSIS-LOO",
}

# The canonical columns every ingest produces, and what each means downstream.
CANONICAL_MEANINGS: dict[str, str] = {
    "source_row": "0-based row of the source (running across files): the audit trail",
    "source_file": "the file a row came from (path relative to the spec's folder)",
    "llm": "the language model; a grouping the report compares",
    "category": "social category (race, gender, ...); grouping, with stereotype nested in it",
    "stereotype": "stereotype / test within the category",
    "variant": "prompt variant; a nuisance grouping",
    "trial": "trial id within (llm, stereotype, variant); whole numbers; judgements of one "
             "trial (exploded rows) share it; unit = \"trial\" groups by source row",
    "item": "the judged item (word, candidate, question); one trial may judge several",
    "congruent": "default outcome: 1 = stereotype-congruent, 0 = not; bias = 2 P(congruent) - 1",
    "status": "ok | refused | unparseable | excluded; only ok rows reach the model",
    "reason": "why a row is not ok (counted in the ledger)",
    "raw": "the raw response text kept for audit; refusal_pattern runs on it",
    "refused": "1 when the row's status is refused, 0 when ok (read off status); model it "
               "with [data] include = [\"refused\"]",
}

ORDER = ("read (files stacked, columns unioned, rename, path_pattern columns) -> "
         "[data.parse] rules -> explode -> [data.columns] -> [data.derive] -> filters")


def _type(ann) -> str:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        return " or ".join(parts)
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' for a in args)
    if origin is list:
        return f"list of {_type(args[0])}s"
    if origin is dict:
        if _is_model(args[1]):
            return "tables"
        inner = _type(args[1])
        return f"table of ({inner})" if " or " in inner else f"table of {inner}s"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(ann, str(ann))


def _is_model(ann) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _default(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        v = field.default_factory()
        return "none" if v in ({}, []) else repr(v) if not isinstance(v, BaseModel) else "-"
    v = field.default
    if v is None or v is PydanticUndefined:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else repr(v)


def _dict_of(ann) -> bool:
    """``dict[str, X]`` or ``dict[str, X] | None``."""
    return any(typing.get_origin(a) is dict for a in (ann, *typing.get_args(ann)))


def _model_of(ann):
    """The pydantic model inside an annotation (``X | None``, ``dict[str, X]``, ``dict[str, X]
    | None``), or None."""
    for a in (ann, *typing.get_args(ann)):
        if _is_model(a):
            return a
        if a is not ann and typing.get_origin(a) is dict:
            return _model_of(a)
    return None


def _first_tables(model: type[BaseModel] = AnalysisSpec, prefix: str = "",
                  out: dict | None = None) -> dict:
    """Each table's model -> the key where it is first listed (``data``): a table met again
    (``parts.<column>.data``) is listed as "the keys of [data]", not twice."""
    out = {} if out is None else out
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if sub is not None and sub not in out:
            out[sub] = f"{prefix}{name}"
            _first_tables(sub, f"{prefix}{name}.<column>." if _dict_of(field.annotation)
                          else f"{prefix}{name}.", out)
    return out


def schema_keys(model: type[BaseModel] = AnalysisSpec, prefix: str = "") -> list[str]:
    """Every table and key the schema accepts, dotted (``data.parse.<column>.kind``); a table
    met again (``parts.<column>.data``) is one key, its keys those of the first."""
    first = _first_tables()
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        out.append(key)
        sub = _model_of(field.annotation)
        if sub is not None and first.get(sub) == key:
            out += schema_keys(sub, f"{key}.<column>." if _dict_of(field.annotation)
                               else f"{key}.")
    return out


def _rows(model: type[BaseModel], prefix: str, lines: list[str]) -> None:
    first = _first_tables()
    tables = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _model_of(field.annotation)
        if sub is not None and first.get(sub) != key:
            lines.append(f"  [{key}]   the keys of [{first[sub]}]")
            lines.append(f"      {MEANINGS.get(key, '')}")
            continue
        if sub is not None:
            tables.append((key, field, sub))
            continue
        default = _default(field)
        shown = "(required)" if default == "required" else f"(default: {default})"
        lines.append(f"  {name} = {_type(field.annotation)}   {shown}")
        lines.append(f"      {MEANINGS.get(key, '')}")
    for key, field, sub in tables:
        dict_of = _dict_of(field.annotation)
        title = f"{key}.<column>" if dict_of else key
        array = typing.get_origin(field.annotation) is list  # an array of tables: [[key]]
        lines.append("")
        lines.append(f"[{'[' * array}{title}{']' * array}]  {MEANINGS.get(key, '')}")
        _rows(sub, f"{title}.", lines)


def render() -> str:
    """The whole reference as plain text."""

    lines = ["biasstats analysis spec (TOML): every table and key, its type, default and meaning"]
    _rows(AnalysisSpec, "", lines)
    lines += ["", "families ([model] family):"]
    width = max(len(n) for n in FAMILIES) + 2
    for f in FAMILIES.values():
        also = f" (also: {', '.join(f.aliases)})" if f.aliases else ""
        lines.append(f"  {f.name:<{width}}link {f.link:<18}response {f.response}{also}")
    lines += ["", "canonical columns (the ingested table; [data.columns] maps onto them):"]
    lines += [f"  {k:<12}{v}" for k, v in CANONICAL_MEANINGS.items()]
    lines += ["  (any other source, path, parse or derived column is kept and usable in "
              "derive, filters and formulas)", "", f"ingest order: {ORDER}",
              "regex dialect: Rust regex (as polars runs it), for refusal_pattern and parse "
              "rules alike; no look-around or back-references", "", SQL_GRAMMAR]
    lines += [f"  {kind:<15}{', '.join(names)}" for kind, names in FUNCTIONS.items()]
    return "\n".join(lines) + "\n"
