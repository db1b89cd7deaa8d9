"""One analysis computed: a fitted model → gate, effects and estimands, checks → an
:class:`AnalysisResult` (compute only: nothing is written here).

:func:`analyse` is the entry point; :func:`biasstats.run.run_analysis` ingests, fits, calls it,
writes the data outputs and hands the result to the report stage
(:func:`biasstats.report.analysis.render`). A study's own stages (its congruence effects,
cross-checks, report outputs) come from the study registry (:mod:`biasstats.registry`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from biasstats import registry
from biasstats.checks import Thresholds, convergence_gate, grouped_ppc, loo_summary
from biasstats.checks.compare import compare_models, loo_table, trial_level_loo
from biasstats.checks.ppc import count_frequencies, loo_pit, prior_predictive
from biasstats.effects.estimands import check_request, compute_estimands, request_from_spec
from biasstats.effects.joint import JointEstimands, joint_estimands
from biasstats.effects.refusals import REFUSED, contrast_factors, refusal_sensitivity
from biasstats.effects.replication import compare_published, expected_rows, match_entries
from biasstats.effects.variance import variance_decomposition
from biasstats.errors import BiasstatsError, SpecError
from biasstats.inference.from_spec import fit_spec, model_data
from biasstats.ingest import ingest
from biasstats.model.data import complete_rows, data_hash
from biasstats.model.design import model_factors
from biasstats.model.families import get_family
from biasstats.model.formula import check_columns, parse_formula
from biasstats.spec import Spec, load_spec
from biasstats.spec.outcome import outcome_kind, outcome_study

__all__ = ["AnalysisResult", "ChecksResult", "JointResult", "analyse", "analyse_joint",
           "analysis_folder", "load_sensitivity", "check_alternatives", "check_before_sampling",
           "part_folder", "study_of"]


@dataclass
class ChecksResult:
    """Predictive checks and LOO of one fit (``notes``: what could not be computed, and why)."""

    prior: pl.DataFrame | None = None
    ppc: list[tuple[str, pl.DataFrame]] = field(default_factory=list)
    shares: bool = False                  # category shares (ordinal, categorical), not rates
    counts: pl.DataFrame | None = None    # count frequencies for a rootogram (count families)
    loo: dict | None = None
    pit: object | None = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per check (PPC, LOO, LOO-PIT)


@dataclass
class AnalysisResult:
    """Everything one analysis computed, ready to render."""

    spec: Spec
    ing: object                 # IngestResult
    fit: object                 # FitResult
    folder: Path
    cached: bool
    files: list[tuple[str, Path]]
    summary: object             # the posterior summary (pandas)
    gate: object                # GateResult
    diag: dict
    study: registry.Study | None         # the study whose coding the outcome is (None: neutral)
    effects: object | None = None        # the study's congruence effects
    estimands: object | None = None
    variance: pl.DataFrame | None = None  # latent-scale decomposition (non-congruence outcomes)
    replication: pl.DataFrame | None = None  # [[replication]]: published vs reanalysis
    checks: ChecksResult = field(default_factory=ChecksResult)
    comparison: pl.DataFrame | None = None  # [checks] alternatives compared by PSIS-LOO
    sensitivity: pl.DataFrame | None = None  # [checks] sensitivity specs, PSIS-LOO per trial
    crosschecks: list = field(default_factory=list)  # registry.CrossCheck
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, in order


def analysis_folder(out_root: str | Path, spec: Spec) -> Path:
    """``<out>/<analysis name>``, refused (one line) unless it lies inside ``out_root``."""
    root = Path(out_root)
    folder = root / spec.name
    if spec.name in ("", ".", "..") or not folder.resolve().is_relative_to(root.resolve()) \
            or folder.resolve() == root.resolve():
        raise BiasstatsError(f"{spec.path}: analysis name {spec.name!r} would write outside "
                             f"{root}; set [analysis] name (letters, digits, '-' or '_')")
    return folder


def analyse(spec: Spec, ing, fit, folder: Path, cached: bool,
            files: list[tuple[str, Path]], sensitivity=None) -> AnalysisResult:
    """Every computation after the fit: gate, effects, estimands, checks, cross-checks (the
    fits of ``[checks] alternatives`` and ``sensitivity`` keep their own posterior caches;
    nothing else is written: :mod:`biasstats.run` writes the results)."""
    spec_path = Path(spec.path)
    c = spec.content.checks
    summary = fit.summary()
    gate = convergence_gate(fit.diagnostics(summary), Thresholds(
        rhat_max=c.rhat_max, ess_bulk_min=c.ess_bulk_min, ess_tail_min=c.ess_tail_min,
        divergences_max=c.divergences_max, bfmi_min=c.bfmi_min))
    eff = spec.content.effects
    res = AnalysisResult(spec=spec, ing=ing, fit=fit, folder=folder, cached=cached, files=files,
                         summary=summary, gate=gate, diag={}, study=study_of(spec, ing.adapter))
    t0 = time.perf_counter()
    make_effects = res.study.effects if res.study is not None else None
    if make_effects is not None:
        res.effects = make_effects(fit, ing.table, prob=eff.hdi_prob,
                                   rope=eff.rope if eff.rope is not None else 0.05)
    try:  # every family: its one scale, or per-category probabilities
        res.estimands = compute_estimands(
            fit, request_from_spec(eff, fit.spec, study=res.study))
    except SpecError as e:
        raise SpecError(f"{spec_path}: {e}") from None
    if spec.content.replication:
        res.replication = compare_published(res.estimands, spec.content.replication,
                                            f"{spec_path}: ")
    if res.study is None:
        res.variance = variance_decomposition(fit, eff.hdi_prob)
    res.stages["effects"] = time.perf_counter() - t0
    res.checks = _checks(fit, c)
    res.stages.update({f"checks: {k}": v for k, v in res.checks.seconds.items()})
    t0 = time.perf_counter()
    res.comparison = _alternatives(spec, ing.table, fit, folder)
    if spec.content.checks.alternatives:
        res.stages["alternative models"] = time.perf_counter() - t0
    if spec.content.checks.sensitivity:
        t0 = time.perf_counter()
        res.sensitivity = _sensitivity(spec, ing, fit, folder,
                                       sensitivity or load_sensitivity(spec, ing))
        res.stages["sensitivity models"] = time.perf_counter() - t0
    res.crosschecks = [x for x in (check(ing.table, res.effects)
                                   for check in registry.crosschecks()) if x is not None]
    diag = {**gate.to_dict(), "allow_failure": c.allow_failure}
    loo = res.checks.loo
    if loo is not None:
        diag.update({k: v for k, v in loo.items() if isinstance(v, int | float)})
    res.diag = diag
    return res


@dataclass
class JointResult:
    """Everything a joint analysis computed: each part's own analysis (its view of the
    posterior, in ``<folder>/parts/<part>``), the joint estimands, the whole model's gate."""

    spec: Spec
    folder: Path
    fit: object                  # inference.joint.JointFit
    cached: bool
    parts: dict[str, AnalysisResult]
    estimands: JointEstimands
    summary: object              # posterior summary of the whole model (pandas)
    gate: object
    diag: dict
    files: list[tuple[str, Path]]
    # effects.refusals.RefusalSensitivity, one per (refusal part, outcome part)
    refusals: list = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)

    def estimand_rows(self) -> pl.DataFrame:
        """Every part's estimands (column ``part``) and the joint rows, one long table."""
        rows = [r.estimands.all_rows().with_columns(pl.lit(p).alias("part"))
                for p, r in self.parts.items() if r.estimands is not None]
        rows.append(self.estimands.rows())
        rows += [r.rows() for r in self.refusals]
        return pl.concat([r for r in rows if r.height], how="diagonal_relaxed")


def part_folder(folder: Path, part: str) -> Path:
    """Where part ``part`` of a joint analysis in ``folder`` keeps its report."""
    return folder / "parts" / part


def analyse_joint(spec: Spec, ings: dict, jfit, folder: Path, cached: bool,
                  files: dict[str, list[tuple[str, Path]]]) -> JointResult:
    """Each part analysed as a single model on its view of the joint posterior
    (:func:`analyse`), then the whole model's gate and the joint estimands."""
    c = spec.content.checks
    t0 = time.perf_counter()
    parts = {}
    for p in spec.parts:
        view = jfit.part(p)
        view.ledger = ings[p].ledger
        parts[p] = analyse(spec.part(p), ings[p], view, part_folder(folder, p), cached,
                           files[p])
    t_parts = time.perf_counter() - t0
    whole = jfit.whole()
    summary = whole.summary()
    gate = convergence_gate(whole.diagnostics(summary), Thresholds(
        rhat_max=c.rhat_max, ess_bulk_min=c.ess_bulk_min, ess_tail_min=c.ess_tail_min,
        divergences_max=c.divergences_max, bfmi_min=c.bfmi_min))
    jt = spec.content.joint
    t0 = time.perf_counter()
    est = joint_estimands(jfit, jt.slope if jt else None, jt.hdi_prob if jt else 0.95)
    res = JointResult(spec=spec, folder=folder, fit=jfit, cached=cached, parts=parts,
                      estimands=est, summary=summary, gate=gate,
                      diag={**gate.to_dict(), "allow_failure": c.allow_failure},
                      files=[f for p in spec.parts for f in files[p]])
    for r, o in refusal_pairs(spec, jfit.joint):
        ps, eff = spec.part(r), spec.parts[o].effects
        replies = model_data(ps, ings[r].table)
        need = [c for c in dict.fromkeys([*jfit.joint.parts[r].formula.columns(),
                                          *jfit.joint.parts[o].formula.columns()])
                if c in replies.columns and c != jfit.joint.parts[o].formula.response]
        replies = complete_rows(replies.select(need), need)
        res.refusals.append(refusal_sensitivity(
            jfit.part(r), jfit.part(o), replies,
            contrast_factors(jfit.joint.parts[o], eff), eff, (r, o), prob=eff.hdi_prob))
    res.stages = {"parts (effects, checks)": t_parts,
                  "joint estimands": time.perf_counter() - t0}
    return res


def refusal_pairs(spec: Spec, joint) -> list[tuple[str, str]]:
    """(refusal part, outcome part) of a joint spec: a part modelling the ``refused`` column
    and a part of another outcome on the same source (its ``[data]`` the same but for
    ``include``) sharing a correlation id with it."""
    def source(p):
        return spec.parts[p].data.model_dump(exclude={"include"})

    out = []
    for r, rs in joint.parts.items():
        if rs.formula.response != REFUSED:
            continue
        for o, os_ in joint.parts.items():
            if o != r and os_.formula.response != REFUSED and source(o) == source(r) and any(
                    r in s.parts and o in s.parts for s in joint.shared):
                out.append((r, o))
    return out


def study_of(spec: Spec, adapter: str | None):
    """The registered study whose effects and words describe this analysis' outcome (a
    congruence coding of a 0/1 outcome of a logit family, declared by the spec or its data
    source), or None for a neutral outcome."""
    if (outcome_kind(spec, adapter) != "congruence"
            or not get_family(spec.model.family).binary_outcomes):
        return None
    return outcome_study(spec, adapter)


def check_before_sampling(spec: Spec, adapter: str | None, prepared) -> None:
    """Everything the analysis will ask of the fit, resolved against the model's terms once
    the design is built and before anything is sampled: the ``[effects]`` estimands (its
    declared entries and the defaults filled in), and the row each ``[[replication]]`` entry
    names. A one-line SpecError naming the key."""
    req = request_from_spec(spec.content.effects, prepared, study=study_of(spec, adapter))
    check_request(req, prepared, key=f"{spec.path}: [effects]")
    if spec.content.replication:
        match_entries(spec.content.replication, expected_rows(req, prepared), f"{spec.path}: ")


def ppc_terms(fit) -> list[str]:
    """Every factor of the formula (fixed factors, then grouping factors) with few enough
    levels to draw, each once."""

    factors, _, groups, _ = model_factors(fit.spec)
    cells = fit.spec.cells
    out = []
    for t in [*factors, *groups]:
        n = cells.select(t.split(":")).unique().height
        last = t.split(":")[-1]
        if cells[last].n_unique() == n:  # a:b nested: b alone names the same levels
            t = last
        if t not in out and n <= 60:
            out.append(t)
    return out


def _checks(fit, checks) -> ChecksResult:
    out = ChecksResult()
    fam = fit.spec.family
    out.shares = fam.has_categories
    t0 = time.perf_counter()
    if checks.prior_predictive:

        terms = ppc_terms(fit)
        term = terms[0] if terms else ()
        out.prior = prior_predictive(fit, tuple(term.split(":")) if term else ())
    has_pp = "posterior_predictive" in fit.idata.children
    if has_pp and fam.counts:

        out.counts = count_frequencies(fit)
    for term in (["overall"] if out.shares else []) + ppc_terms(fit):
        if not has_pp:
            break
        out.ppc.append((term, grouped_ppc(fit, tuple(term.split(":")) if term != "overall"
                                          else ())))
    out.seconds["PPC"] = time.perf_counter() - t0
    if checks.loo and "log_likelihood" in fit.idata.children:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # summarised in the note below
                out.loo = loo_summary(fit)
        except Exception as e:  # LOO is diagnostic: report why it could not be computed
            out.notes.append(f"PSIS-LOO could not be computed ({type(e).__name__}: {e})")
        loo = out.loo
        out.seconds["LOO"] = time.perf_counter() - t0
        if loo is not None and checks.loo_pit:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                out.pit = loo_pit(fit, elpd_data=loo["elpd_data"])
            out.seconds["LOO-PIT"] = time.perf_counter() - t0
        if loo is not None and loo["pareto_k_bad"]:
            unit = "cells" if fit.spec.collapsed else "observations"
            out.notes.append(
                f"PSIS-LOO: {loo['pareto_k_bad']} of {loo['n_points']} {unit} have Pareto k > "
                f"{loo['pareto_k_threshold']:.2f}, so their LOO estimates are unreliable "
                f"(a collapsed cell holds many judgements and is influential; prefer K-fold "
                f"cross-validation for model comparison)")
    return out


def check_alternatives(spec: Spec, table: pl.DataFrame) -> None:
    """Before anything is sampled: every alternative formula names columns of the model's
    data (else a one-line SpecError naming ``[checks] alternatives[i]``), and models compared
    row by row (every family but bernoulli / binomial, which are compared on common cells)
    use the same rows: a formula whose columns are missing in other rows than the main
    formula's is a one-line SpecError naming it."""

    alts = spec.content.checks.alternatives
    if not alts:
        return
    data = model_data(spec, table).with_row_index("__row")
    for i, formula in enumerate(alts):
        try:
            check_columns(parse_formula(formula), data.columns)
        except SpecError as e:
            raise SpecError(f"{spec.path}: [checks] alternatives[{i}]: {e}") from None
    if get_family(spec.model.family).collapse:
        return

    def rows(formula: str) -> pl.Series:
        cols = [c for c in parse_formula(formula).columns() if c in data.columns]
        return complete_rows(data, cols)["__row"]

    main = rows(spec.model.formula)
    for formula in alts:
        alt = rows(formula)
        if not alt.equals(main):
            raise SpecError(f"{spec.path}: [checks] alternatives: '{formula}' uses "
                            f"{alt.len()} rows and the model formula {main.len()} (missing "
                            "values in different rows); models compared by PSIS-LOO must be "
                            "fitted to the same rows")


def load_sensitivity(spec: Spec, ing) -> list[tuple[Spec, object]]:
    """The ``[checks] sensitivity`` specs and their ingested data, checked before anything is
    written or sampled: each must exist, have a [model], a name of its own, and read the same
    data as this spec."""

    out: list[tuple[Spec, object]] = []
    names = {spec.name}
    for i, rel in enumerate(spec.content.checks.sensitivity):
        where = f'{spec.path}: [checks] sensitivity[{i}] = "{rel}"'
        path = spec.relative(rel)
        if path.resolve() == Path(spec.path).resolve():
            raise SpecError(f"{where}: is this spec itself")
        try:
            other = load_spec(path)
        except SpecError as e:
            raise SpecError(f"{where}: {e}") from None
        if other.model is None:
            raise SpecError(f"{where}: that spec has no [model]")
        if other.name in names:
            raise SpecError(f"{where}: analysis name {other.name!r} is already in the comparison")
        names.add(other.name)
        o_ing = ingest(other)
        if (o_ing.table.height != ing.table.height
                or data_hash(o_ing.table) != data_hash(ing.table)):
            a, b = o_ing.table.height, ing.table.height
            raise SpecError(f"{where}: that spec reads different data "
                            + (f"({a} rows; this spec reads {b})" if a != b
                               else f"(the same {a} rows, with different values)"))
        out.append((other, o_ing))
    return out


def _sensitivity(spec: Spec, ing, fit, folder: Path, others) -> pl.DataFrame:
    """Fit each ``[checks] sensitivity`` spec (``others``, from :func:`load_sensitivity`) in
    its own analysis folder beside this one, so its cache is shared with its own report, and
    compare all models by PSIS-LOO: per trial when one of them models trials (a trial-level
    and a judgement-level model of the same replies), else on the same rows."""
    # heavy libraries load on first use, not on import
    import arviz_stats as azs


    fits = {spec.name: fit}
    trial_spec = spec if spec.model.unit == "trial" else None
    for other, o_ing in others:
        fits[other.name] = fit_spec(other, o_ing.table, analysis_folder(folder.parent, other),
                                    ledger=o_ing.ledger).fit
        if trial_spec is None and other.model.unit == "trial":
            trial_spec = other
    try:
        with warnings.catch_warnings():  # Pareto k: the table's warning column and a note
            warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
            if trial_spec is not None:
                loo = trial_level_loo(fits, model_data(trial_spec, ing.table))
                return loo_table(azs.compare(loo, round_to="none"))
            return compare_models(fits, model_data(spec, ing.table))
    except (SpecError, ValueError) as e:
        raise SpecError(f"{spec.path}: [checks] sensitivity: {e}") from None


def _alternatives(spec: Spec, table: pl.DataFrame, fit, folder: Path) -> pl.DataFrame | None:
    """Fit each ``[checks] alternatives`` formula (cached) and compare all by PSIS-LOO (any
    family: the same rows, or common cells for collapsed binomial models)."""

    alts = spec.content.checks.alternatives
    if not alts:
        return None
    fits = {fit.formula: fit}
    for i, formula in enumerate(alts):
        content = spec.content.model_copy(
            update={"model": spec.model.model_copy(update={"formula": formula})})
        alt_spec = Spec(path=spec.path, content=content, text=spec.text)
        fits[formula] = fit_spec(alt_spec, table, folder / "alternatives" / f"alt{i + 1}",
                                 formula_key=f"[checks] alternatives[{i}]").fit
    try:
        with warnings.catch_warnings():  # Pareto k: the table's warning column and a note
            warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
            return compare_models(fits, model_data(spec, table))
    except SpecError as e:
        raise SpecError(f"{spec.path}: {e}") from None
