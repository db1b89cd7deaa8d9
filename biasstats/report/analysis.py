"""One analysis, end to end: spec → ingest → fit → effects and checks → figures, tables, page.

:func:`build_analysis` is what ``biasstats report`` / ``nox -s report`` runs per spec. Output
under ``<out>/<analysis>/``: ``trials.parquet``, ``ledger.json``, ``posterior.nc`` (cached by
content hash), ``effects.parquet``, ``figures/*.{pdf,svg,png}``, ``tables/*.{csv,tex}`` and
``report.html``.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from biasstats import __version__
from biasstats.checks import Thresholds, convergence_gate, grouped_ppc, loo_summary
from biasstats.effects import compute_effects
from biasstats.effects.compute import LOGIT_FAMILIES
from biasstats.effects.estimands import compute_estimands, request_from_spec
from biasstats.errors import BiasstatsError, DatasetUnavailableError, SpecError
from biasstats.fit.from_spec import fit_spec
from biasstats.ingest import ingest
from biasstats.io import write_parquet_atomic, write_text_atomic
from biasstats.model.families import get_family
from biasstats.report import figures as figs
from biasstats.report.estimand_outputs import (
    estimand_findings,
    estimand_methods,
    estimand_outputs,
    wording_for,
)
from biasstats.report.methods import findings, methods_paragraph
from biasstats.report.page import FigureEntry, ModelInfo, ReportContext, TableEntry, write_report
from biasstats.report.style import DOUBLE_COLUMN, save_figure
from biasstats.report.tables import format_effects_table, write_table
from biasstats.spec import Spec, load_spec
from biasstats.studies import outcome_kind


@dataclass(frozen=True)
class AnalysisOutcome:
    name: str
    title: str
    spec_path: Path
    status: str          # "built" | "unavailable" | "ingested" (no model)
    message: str
    gate_passed: bool | None = None
    allow_failure: bool = False
    report: Path | None = None
    cached: bool = False

    @property
    def blocking(self) -> bool:
        """A failed convergence gate that the spec does not allow."""
        return self.gate_passed is False and not self.allow_failure


def _category_map(table: pl.DataFrame) -> dict[str, str] | None:
    if not {"category", "stereotype"} <= set(table.columns):
        return None
    pairs = table.select("stereotype", "category").drop_nulls().unique()
    return dict(pairs.iter_rows()) if pairs.height else None


class _Artifacts:
    """Collects saved figures and tables for the page."""

    def __init__(self, folder: Path):
        self.fig_dir = folder / "figures"
        self.tab_dir = folder / "tables"
        self.figures: list[FigureEntry] = []
        self.tables: list[TableEntry] = []
        self.skipped: list[str] = []  # figures that do not apply to this model, with why

    def figure(self, name, make, caption, section="effects"):
        try:
            fig = make()
        except (ValueError, KeyError) as e:  # a figure that does not apply to this model
            self.skipped.append(f"figure {name} not drawn: {e}")
            return
        files = save_figure(fig, self.fig_dir, name)
        self.figures.append(FigureEntry(name=name, files=files, caption=caption, section=section))

    def table(self, name, df, caption, section="effects", digits=2, show=True):
        if df is None or df.height == 0:
            return
        files = write_table(df, self.tab_dir, name, caption=caption, label=f"tab:{name}",
                            float_digits=digits)
        if show:
            self.tables.append(TableEntry(name=name, data=df, caption=caption, section=section,
                                          files=files, float_digits=digits))


def _effect_outputs(art: _Artifacts, effects, table):
    terms_present = set(effects.table["term"].unique().to_list())
    cat_of = _category_map(table)
    pct = int(effects.prob * 100)
    cap = (f"Posterior mean bias (2·P(congruent) − 1; 0 = unbiased) with {pct}% HDI; "
           f"shaded band: ROPE ±{effects.rope}.")
    e = effects.table
    if "llm" in terms_present:
        art.figure("forest_llm", lambda: figs.forest(e, "llm", "bias"), "Bias by LLM. " + cap)
    if "llm:stereotype" in terms_present:
        art.figure("heatmap_llm_stereotype",
                   lambda: figs.heatmap(e, "llm", "stereotype", "bias", category_of=cat_of),
                   "Bias by LLM × stereotype (posterior means).")
    if "stereotype" in terms_present and cat_of:
        art.figure("forest_stereotype",
                   lambda: figs.category_forest(e, cat_of, "bias", width=DOUBLE_COLUMN / 2),
                   "Bias by stereotype, grouped by category. " + cap)
    elif "stereotype" in terms_present:
        art.figure("forest_stereotype", lambda: figs.forest(e, "stereotype", "bias"),
                   "Bias by stereotype. " + cap)
    if "category" in terms_present:
        art.figure("forest_category", lambda: figs.forest(e, "category", "bias"),
                   "Bias by category. " + cap)
    for term in ("overall", "llm", "category", "stereotype", "variant", "llm:stereotype"):
        if term in terms_present:
            show = term != "llm:stereotype"
            art.table(f"effects_{term.replace(':', '_')}", format_effects_table(e, term, "bias"),
                      f"Bias by {term} (posterior mean, {pct}% HDI, P(bias > 0), ROPE verdict).",
                      show=show)
    long = e.filter(pl.col("scale").is_in(["probability", "odds_ratio", "d_score"]))
    art.table("effects_all_scales", long.select(
        "term", "level", "scale", "mean", "hdi_low", "hdi_high", "p_positive", "verdict"),
        "All effects on the probability, odds-ratio and D-score scales.", show=False, digits=3)
    if effects.ranks.height:
        art.figure("ranks_llm", lambda: figs.ranks(effects.ranks),
                   f"Posterior rank of each LLM (1 = most biased), mean and {pct}% interval.",
                   section="ranks")
        art.table("ranks_llm", effects.ranks, "Posterior ranks of the LLMs.", section="ranks")
        art.table("contrasts_llm", effects.contrasts.select(
            "level", "mean", "hdi_low", "hdi_high", "p_positive", "verdict"),
            "Pairwise differences in bias between LLMs (A − B).", section="ranks",
            show=effects.contrasts.height <= 12)
    if effects.variance.height:
        art.figure("variance_decomposition", lambda: figs.variance_decomposition(effects.variance),
                   "Share of latent (logit-scale) variance by component, with the logistic "
                   "residual π²/3.", section="variance")
        art.table("variance_decomposition", effects.variance, "Variance decomposition.",
                  section="variance", digits=3)


def _variance_outputs(art, fit, prob: float) -> None:
    """Variance decomposition on the latent scale with the family's residual variance, or a
    note saying why the family has none."""
    from biasstats.effects.compute import variance_decomposition

    fam = fit.spec.family
    vd = variance_decomposition(fit, prob)
    if vd.height == 0:
        art.skipped.append(f"variance decomposition not applicable: {fam.latent_note}")
        return
    link = {"logit": "logit", "log": "log", "identity": "outcome"}.get(fam.link, fam.link)
    art.figure("variance_decomposition", lambda: figs.variance_decomposition(vd),
               f"Share of latent ({link}-scale) variance by component, with the {fam.name} "
               "family's residual variance on that scale." + (f" Note: {fam.latent_note}."
                                                             if fam.latent_note else ""),
               section="variance")
    art.table("variance_decomposition", vd, "Variance decomposition.", section="variance",
              digits=3)


def _ppc_terms(fit) -> list[str]:
    """Every factor of the formula (fixed factors, then grouping factors) with few enough
    levels to draw, each once."""
    from biasstats.effects.estimands import model_factors

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


def _checks_outputs(art, fit, checks, wording):
    notes = []
    fam = fit.spec.family
    if fam.ppc_stat == "rate":
        stat, xlabel = "rate", ("Rate of stereotype-congruent answers"
                                if wording.label == "congruent" else f"Rate of {wording.label}")
    else:
        stat, xlabel = "mean", wording.axis
    shares = fam.ppc_stat == "shares"
    if shares:
        stat, xlabel = "share of each category", f"Share of each {wording.label} category"

    def draw(table, term):
        if shares:
            return figs.category_panels(table, term, xlabel=xlabel, point="rep_mean",
                                        low="rep_low", high="rep_high", observed="observed")
        return figs.ppc_grouped(table, term, xlabel=xlabel)

    if checks.prior_predictive:
        from biasstats.checks.ppc import prior_predictive

        terms = _ppc_terms(fit)
        term = terms[0] if terms else ()
        prior = prior_predictive(fit, tuple(term.split(":")) if term else ())
        label = prior["group_term"][0]
        art.figure("prior_predictive", lambda: draw(prior, label),
                   f"Prior predictive check: the 95% interval of the {stat} the priors alone "
                   f"imply (before seeing data), against the observed {stat}.", section="ppc")
    has_pp = "posterior_predictive" in fit.idata.children
    if has_pp and fam.response == "count":
        from biasstats.checks.ppc import count_frequencies

        freq = count_frequencies(fit)
        count = wording.label[:1].upper() + wording.label[1:] + (
            f" ({wording.unit})" if wording.unit else "")
        art.figure("rootogram", lambda: figs.rootogram(freq, xlabel=count),
                   "Hanging rootogram: for each count value (or bin of values), a bar of "
                   "√(observed frequency) hangs from the curve of the replicated mean frequency "
                   "(95% interval shaded); bars ending above zero mark values the model "
                   "over-predicts, below zero values it under-predicts.", section="ppc")
        art.table("rootogram", freq, "Observed and replicated frequency of each count value "
                  "(or bin).", section="ppc", digits=2, show=False)
    for term in (["overall"] if shares else []) + _ppc_terms(fit):
        if not has_pp:
            break
        ppc = grouped_ppc(fit, tuple(term.split(":")) if term != "overall" else ())
        art.figure(f"ppc_{term.replace(':', '_')}", lambda p=ppc, t=term: draw(p, t),
                   f"Posterior predictive check by {term}: observed {stat} (point) against the "
                   f"95% interval of replicated {stat}s"
                   + ("." if shares else "; Bayesian p-value at right."), section="ppc")
        art.table(f"ppc_{term.replace(':', '_')}", ppc,
                  f"Posterior predictive check by {term} ({stat}).", section="ppc",
                  digits=3, show=False)
    loo = None
    if checks.loo and "log_likelihood" in fit.idata.children:
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # summarised in the note below
                loo = loo_summary(fit)
        except Exception as e:  # LOO is diagnostic: report why it could not be computed
            notes.append(f"PSIS-LOO could not be computed ({type(e).__name__}: {e})")
        if loo is not None and checks.loo_pit:
            from biasstats.checks.ppc import loo_pit

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                pit = loo_pit(fit, elpd_data=loo["elpd_data"])
            art.figure("loo_pit", lambda: figs.pit_ecdf(pit),
                       "LOO-PIT calibration: ECDF of the leave-one-out PIT values minus the "
                       "uniform CDF, with a 95% simultaneous band. A ∪ shape outside the band "
                       "means predictive intervals too narrow (e.g. unmodelled overdispersion "
                       "between trials); ∩, too wide.", section="ppc")
        if loo is not None and loo["pareto_k_bad"]:
            unit = "cells" if fit.spec.collapsed else "observations"
            notes.append(
                f"PSIS-LOO: {loo['pareto_k_bad']} of {loo['n_points']} {unit} have Pareto k > "
                f"{loo['pareto_k_threshold']:.2f}, so their LOO estimates are unreliable "
                f"(a collapsed cell holds many judgements and is influential; prefer K-fold "
                f"cross-validation for model comparison)")
    return loo, notes


def analysis_folder(out_root: str | Path, spec: Spec) -> Path:
    """``<out>/<analysis name>``, refused (one line) unless it lies inside ``out_root``."""
    root = Path(out_root)
    folder = root / spec.name
    if spec.name in ("", ".", "..") or not folder.resolve().is_relative_to(root.resolve()) \
            or folder.resolve() == root.resolve():
        raise BiasstatsError(f"{spec.path}: analysis name {spec.name!r} would write outside "
                             f"{root}; set [analysis] name (letters, digits, '-' or '_')")
    return folder


def build_analysis(spec: Spec | str | Path, out_root: str | Path, *, refit: bool = False,
                   progress: bool | None = None) -> AnalysisOutcome:
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    spec_path, title = spec.path, spec.title
    folder = analysis_folder(out_root, spec)
    try:
        ing = ingest(spec)
    except DatasetUnavailableError as e:
        src = spec.data.source if spec.data else "?"
        return AnalysisOutcome(spec.name, title, Path(spec_path), "unavailable",
                               f"{e} — to get it: biasstats fetch {src}")
    if spec.model is not None:
        _check_alternatives(spec, ing.table)  # before anything is written or sampled
    trials_path, ledger_path = ing.write(folder)
    if spec.model is None:
        ctx = ReportContext(title=title, analysis=spec.name, ledger=ing.ledger,
                            description=spec.content.analysis.description,
                            generated=f"biasstats {__version__}")
        page = write_report(ctx, folder / "report.html")
        return AnalysisOutcome(spec.name, title, Path(spec_path), "ingested",
                               f"{ing.ledger.rows_read} rows read (no [model]: ledger only)",
                               report=page)
    outcome = fit_spec(spec, ing.table, folder, refit=refit, progress=progress,
                       ledger=ing.ledger)
    files = [("canonical trial table", trials_path), ("ledger", ledger_path),
             ("posterior (NetCDF)", outcome.path)]
    return _render(spec, ing, outcome.fit, folder, outcome.cached, files)


def _render(spec: Spec, ing, fit, folder: Path, cached: bool, files: list[tuple[str, Path]]):
    title, spec_path = spec.title, Path(spec.path)
    c = spec.content.checks
    summary = fit.summary()
    gate = convergence_gate(fit.diagnostics(summary), Thresholds(
        rhat_max=c.rhat_max, ess_bulk_min=c.ess_bulk_min, ess_tail_min=c.ess_tail_min,
        divergences_max=c.divergences_max, bfmi_min=c.bfmi_min))
    art = _Artifacts(folder)
    effects = None
    eff = spec.content.effects
    congruence = outcome_kind(spec, ing.adapter) == "congruence" and fit.family in LOGIT_FAMILIES
    wording = wording_for(spec, fit)
    if congruence:
        effects = compute_effects(fit, ing.table, prob=eff.hdi_prob,
                                  rope=eff.rope if eff.rope is not None else 0.05)
        write_parquet_atomic(folder / "effects.parquet", effects.table)
        _effect_outputs(art, effects, ing.table)
    estimands, est_sentences, est_methods = None, [], ""
    if fit.spec.family.response_scale is not None:
        try:
            estimands = compute_estimands(
                fit, request_from_spec(eff, fit.spec, congruence=congruence))
        except SpecError as e:
            raise SpecError(f"{spec_path}: {e}") from None
        write_parquet_atomic(folder / "estimands.parquet", estimands.all_rows())
        art.skipped += list(estimands.notes)
        estimand_outputs(art, estimands, wording, by=not congruence)
        est_methods = estimand_methods(estimands, wording)
        if not congruence:
            _variance_outputs(art, fit, eff.hdi_prob)
        est_sentences = estimand_findings(estimands, wording)
        if congruence:  # the study's own sentences lead; add contrasts and slopes only
            est_sentences = [x for x in est_sentences if not x.startswith("Overall,")]
    loo, notes = _checks_outputs(art, fit, c, wording)
    notes += _alternatives(art, spec, ing.table, fit, folder)
    cross_note = _crosscheck(art, ing.table, effects)
    summary_pl = pl.from_pandas(summary.reset_index(names="parameter"))
    art.table("parameters", summary_pl, "Posterior summary of every parameter.",
              section="other", digits=3, show=False)
    diag = {**gate.to_dict(), "allow_failure": c.allow_failure}
    if loo is not None:
        diag.update({k: v for k, v in loo.items() if isinstance(v, int | float)})
        write_parquet_atomic(folder / "loo_pointwise.parquet", pl.DataFrame({
            "elpd_loo": loo["pointwise_elpd"], "pareto_k": loo["pareto_k"]}))
    write_text_atomic(folder / "diagnostics.json", json.dumps(diag, indent=2, default=float) + "\n")
    st = fit.settings
    model_info = ModelInfo(
        formula=fit.formula, family=fit.family,
        link=get_family(fit.family).link,
        priors={k: str(v) for k, v in fit.priors.items()},
        sampler={k: st.get(k) for k in ("sampler", "chains", "tune", "draws", "seed",
                                         "target_accept", "adaptation")},
        notes=[f"centring: {k} {v}" for k, v in (st.get("centered") or {}).items()]
        + [f"target_accept {st.get('target_accept')}: {st.get('target_accept_reason', 'set by user')}"]
        + (["posterior reused from cache (data, spec and versions unchanged)"] if cached else [])
        + notes + art.skipped,
    )
    ctx = ReportContext(
        title=title, analysis=spec.name, description=spec.content.analysis.description,
        generated=f"biasstats {__version__}, {_dt.date.today().isoformat()}",
        findings=findings(effects, gate, ing, est_sentences), diagnostics=diag,
        diagnostics_table=_worst_parameters(summary_pl), ledger=ing.ledger, model=model_info,
        figures=art.figures, tables=art.tables, crosscheck_note=cross_note,
        methods=methods_paragraph(spec, ing, fit, gate, effects, ing.sources, est_methods),
        extra_files=files,
        base_dir=folder,
    )
    page = write_report(ctx, folder / "report.html")
    msg = (f"{ing.ledger.rows_read} rows; gate {'passed' if gate.passed else 'FAILED: ' + '; '.join(gate.failures)}"
           + ("; posterior cached" if cached else ""))
    return AnalysisOutcome(spec.name, title, spec_path, "built", msg, gate.passed,
                           c.allow_failure, page, cached)


def _check_alternatives(spec: Spec, table: pl.DataFrame) -> None:
    """Models compared row by row (every family but bernoulli / binomial, which are compared
    on common cells) must use the same rows: a formula whose columns are missing in other
    rows than the main formula's is a one-line SpecError naming it."""
    from biasstats.fit.from_spec import model_data
    from biasstats.model.build import complete_rows
    from biasstats.model.formula import parse_formula

    alts = spec.content.checks.alternatives
    if not alts or get_family(spec.model.family).collapse:
        return
    data = model_data(spec, table).with_row_index("__row")

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


def _alternatives(art, spec: Spec, table: pl.DataFrame, fit, folder: Path) -> list[str]:
    """Fit each ``[checks] alternatives`` formula (cached) and compare all by PSIS-LOO."""
    from biasstats.checks.compare import compare_models
    from biasstats.fit.from_spec import model_data

    alts = spec.content.checks.alternatives
    if not alts:
        return []
    fits = {fit.formula: fit}
    for i, formula in enumerate(alts):
        content = spec.content.model_copy(
            update={"model": spec.model.model_copy(update={"formula": formula})})
        alt_spec = Spec(path=spec.path, content=content, text=spec.text)
        fits[formula] = fit_spec(alt_spec, table, folder / "alternatives" / f"alt{i + 1}",
                                 formula_key=f"[checks] alternatives[{i}]").fit
    try:
        comparison = compare_models(fits, model_data(spec, table))
    except SpecError as e:
        raise SpecError(f"{spec.path}: {e}") from None
    unit = "common cells" if fit.spec.collapsed else "the same rows"
    art.table("model_comparison", comparison,
              f"Model comparison by PSIS-LOO on {unit} (best first): expected log "
              "predictive density, its difference from the best model (elpd_diff, with its "
              "standard error dse) and stacking weights.", section="other", digits=2)
    best = comparison.row(0, named=True)
    return [f"model comparison (PSIS-LOO): best is {best['model']}"]


def _worst_parameters(summary_pl: pl.DataFrame, n: int = 15) -> pl.DataFrame:
    """The ``n`` parameters with the smallest bulk ESS (the page orders them by R-hat)."""
    cols = [c for c in summary_pl.columns if c in
            ("parameter", "mean", "sd", "r_hat", "ess_bulk", "ess_tail")]
    return summary_pl.select(cols).sort("ess_bulk").head(n)


def _crosscheck(art, table: pl.DataFrame, effects) -> str | None:
    from biasstats.checks.crosscheck import crosscheck_table, miller_summary

    if not {"valence", "congruent"} <= set(table.columns):
        return None
    if "variant" in table.columns:
        ms = miller_summary(table)
        keep = [c for c in ("se_type", "n", "n_clusters", "estimate", "se", "ci_low", "ci_high",
                            "design_effect", "mde") if c in ms.columns]
        art.table("error_bars", ms.select(keep),
                  "Overall P(congruent) with naive and cluster-robust standard errors (by trial "
                  "and by prompt variant; Miller 2024), design effect and minimum detectable "
                  "effect at 80% power. Few variant clusters make the variant-clustered SE "
                  "itself noisy.", section="crosscheck", digits=4)
    cc = crosscheck_table(table, effects.table if effects is not None else None)
    art.table("crosscheck", cc, "Frequentist cross-check: the authors' one-sample t-tests of the "
              "per-trial D score (failures scored 0, as they did), a logistic GLM with "
              "cluster-robust SEs by trial, and the posterior.", section="crosscheck", digits=3)
    return ("t-test columns are on the authors' D scale; GLM and posterior columns on the bias "
            "scale 2p − 1. Compare signs and rankings, not digits.")
