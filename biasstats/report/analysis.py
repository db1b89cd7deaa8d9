"""Report stage: render an already-computed analysis (:class:`biasstats.pipeline.AnalysisResult`)
as figures, tables and ``report.html``. Nothing here ingests, fits or computes an effect: the
pipeline (:func:`biasstats.pipeline.analyse`) does, then calls :func:`render`. Output under
``<out>/<analysis>/``: ``figures/*.{pdf,svg,png}``, ``tables/*.{csv,tex}`` and ``report.html``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from pathlib import Path

import polars as pl

from biasstats.model.families import get_family
from biasstats.names import safe_name, safe_stem
from biasstats.pipeline import AnalysisResult
from biasstats.report import figures as figs
from biasstats.report.estimand_outputs import (
    estimand_methods,
    estimand_outputs,
    wording_for,
)
from biasstats.report.headlines import estimand_findings
from biasstats.report.labels import LabelKeys, label_keys, shortened
from biasstats.report.methods import findings, methods_paragraph
from biasstats.report.page import FigureEntry, ModelInfo, ReportContext, TableEntry, write_report
from biasstats.report.replication import (
    replication_findings,
    replication_methods,
    replication_outputs,
)
from biasstats.report.style import save_figure
from biasstats.report.tables import write_table
from biasstats.spec.declared import declared_estimands
from biasstats.version import __version__

__all__ = ["render", "render_ledger"]


class _Artifacts:
    """Collects saved figures and tables for the page.

    ``name`` is the file name stem (and, behind ``fig-`` / ``tab-``, the HTML id and the
    LaTeX label): callers build it from :func:`biasstats.names.safe_name` of a term
    (``f"ppc_{safe_name(term)}"``); a name that is not a safe stem is made one here
    (:func:`biasstats.names.safe_stem`), and a stem already written in this analysis gets
    ``-2``, ``-3``, … so that no output overwrites another."""

    def __init__(self, folder: Path):
        self.fig_dir = folder / "figures"
        self.tab_dir = folder / "tables"
        self.figures: list[FigureEntry] = []
        self.tables: list[TableEntry] = []
        self.skipped: list[str] = []  # figures that do not apply to this model, with why
        self._stems: dict[str, set[str]] = {"figure": set(), "table": set()}
        self.figure_s = 0.0  # seconds drawing and saving figures

    def _stem(self, kind: str, name: str) -> str:
        stem = safe_stem(name)
        used = self._stems[kind]
        if stem in used:
            k = 2
            while f"{stem}-{k}" in used:
                k += 1
            stem = f"{stem}-{k}"
        used.add(stem)
        return stem

    def figure(self, name, make, caption, section="effects"):
        t0 = time.perf_counter()
        try:
            fig = make()
        except (ValueError, KeyError) as e:  # a figure that does not apply to this model
            self.skipped.append(f"figure {name} not drawn: {e}")
            return
        finally:
            self.figure_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        name = self._stem("figure", name)
        files = save_figure(fig, self.fig_dir, name)
        self.figure_s += time.perf_counter() - t0
        self.figures.append(FigureEntry(name=name, files=files, caption=caption, section=section))

    def table(self, name, df, caption, section="effects", digits=2, show=True):
        if df is None or df.height == 0:
            return
        name = self._stem("table", name)
        files = write_table(df, self.tab_dir, name, caption=caption, label=f"tab:{name}",
                            float_digits=digits)
        if show:
            self.tables.append(TableEntry(name=name, data=df, caption=caption, section=section,
                                          files=files, float_digits=digits))


def _variance_outputs(art, fit, vd: pl.DataFrame) -> None:
    """Variance decomposition on the latent scale with the family's residual variance, or a
    note saying why the family has none."""
    fam = fit.spec.family
    if vd.height == 0:
        art.skipped.append(f"variance decomposition not applicable: {fam.latent_note}")
        return
    art.figure("variance_decomposition", lambda: figs.variance_decomposition(vd),
               f"Share of latent ({fam.latent_scale}-scale) variance by component, with the {fam.name} "
               "family's residual variance on that scale." + (f" Note: {fam.latent_note}."
                                                             if fam.latent_note else ""),
               section="variance")
    art.table("variance_decomposition", vd, "Variance decomposition.", section="variance",
              digits=3)


def _checks_outputs(art, fit, checks, wording) -> None:
    fam = fit.spec.family
    stat = fam.ppc_stat  # the check's statistic in words: "rate" of 0/1 outcomes, or "mean"
    if fam.binary_outcomes:
        xlabel = wording.rate_axis
    else:
        xlabel = wording.axis
    shares = checks.shares
    if shares:
        stat, xlabel = "share of each category", f"Share of each {wording.label} category"

    def draw(table, term):
        if shares:
            return figs.category_panels(table, term, xlabel=xlabel, point="rep_mean",
                                        low="rep_low", high="rep_high", observed="observed")
        return figs.ppc_grouped(table, term, xlabel=xlabel)

    if checks.prior is not None:
        prior = checks.prior
        label = prior["group_term"][0]
        art.figure("prior_predictive", lambda: draw(prior, label),
                   f"Prior predictive check: the 95% interval of the {stat} the priors alone "
                   f"imply (before seeing data), against the observed {stat}.", section="ppc")
    if checks.counts is not None:
        freq = checks.counts
        count = wording.label[:1].upper() + wording.label[1:] + (
            f" ({wording.unit})" if wording.unit else "")
        art.figure("rootogram", lambda: figs.rootogram(freq, xlabel=count),
                   "Hanging rootogram: for each count value (or bin of values), a bar of "
                   "√(observed frequency) hangs from the curve of the replicated mean frequency "
                   "(95% interval shaded); bars ending above zero mark values the model "
                   "over-predicts, below zero values it under-predicts.", section="ppc")
        art.table("rootogram", freq, "Observed and replicated frequency of each count value "
                  "(or bin).", section="ppc", digits=2, show=False)
    for term, ppc in checks.ppc:
        art.figure(f"ppc_{safe_name(term)}", lambda p=ppc, t=term: draw(p, t),
                   f"Posterior predictive check by {term}: observed {stat} (point) against the "
                   f"95% interval of replicated {stat}s"
                   + ("." if shares else "; Bayesian p-value at right."), section="ppc")
        art.table(f"ppc_{safe_name(term)}", ppc,
                  f"Posterior predictive check by {term} ({stat}).", section="ppc",
                  digits=3, show=False)
    if checks.pit is not None:
        pit = checks.pit
        art.figure("loo_pit", lambda: figs.pit_ecdf(pit),
                   "LOO-PIT calibration: ECDF of the leave-one-out PIT values minus the "
                   "uniform CDF, with a 95% simultaneous band. A ∪ shape outside the band "
                   "means predictive intervals too narrow (e.g. unmodelled overdispersion "
                   "between trials); ∩, too wide.", section="ppc")


def render_ledger(spec, ing, folder: Path) -> Path:
    """The page of an analysis without a model: its ledger."""
    ctx = ReportContext(title=spec.title, analysis=spec.name, ledger=ing.ledger,
                        description=spec.content.analysis.description,
                        generated=f"biasstats {__version__}")
    return write_report(ctx, folder / "report.html")


def render(res: AnalysisResult) -> tuple[Path, dict[str, float]]:
    """Figures, tables and the page of a computed analysis: (the page, the seconds of every
    stage, figures and tables included)."""
    t_render = time.perf_counter()
    spec, ing, fit, folder, gate = res.spec, res.ing, res.fit, res.folder, res.gate
    title, _spec_path = spec.title, Path(spec.path)
    art = _Artifacts(folder)
    effects, estimands, study = res.effects, res.estimands, res.study
    wording = wording_for(spec, fit, study)
    if study is not None:  # the study's own figures and tables of its effects
        for outputs in study.report_outputs:
            outputs(art, fit, ing, spec, effects)
    est_sentences, est_methods = [], ""
    keys = _label_keys(fit)  # long level names (whole prompts) are shown as keys
    shown, replication = shortened(estimands, keys), keys.frame(res.replication)
    if estimands is not None:
        art.skipped += list(estimands.notes)
        estimand_outputs(art, shown, wording, by=study is None,
                         declared=declared_estimands(spec))
        est_methods = " ".join(x for x in (estimand_methods(estimands, wording),
                                           replication_methods(replication)) if x)
        if keys:
            art.table("label_keys", keys.table(), "Keys of long level names: figures, tables "
                      "and sentences show the key; the full label is here.",
                      section="estimands", digits=0)
        replication_outputs(art, replication, wording.unit)
        if study is None:
            _variance_outputs(art, fit, res.variance)
        est_sentences = estimand_findings(shown, wording, declared_estimands(spec),
                                          after_declared=replication_findings(replication))
        if study is not None:  # the study's own sentences lead; add contrasts and slopes only
            est_sentences = [x for x in est_sentences if not x.startswith("Overall,")]
    lead, study_methods, unusable = _study_words(study, effects)
    _checks_outputs(art, fit, dataclasses.replace(
        res.checks, ppc=[(t, keys.frame(p)) for t, p in res.checks.ppc]), wording)
    notes = list(res.checks.notes) + _comparison_outputs(art, res.comparison,
                                                         fit.spec.collapsed)
    notes += _sensitivity_outputs(art, res.sensitivity, spec.name)
    cross_note = _crosscheck(art, res.crosschecks)
    summary_pl = keys.frame(pl.from_pandas(res.summary.reset_index(names="parameter")))
    art.table("parameters", summary_pl, "Posterior summary of every parameter.",
              section="other", digits=3, show=False)
    diag = res.diag
    st = fit.settings
    t_all = time.perf_counter() - t_render
    stages = {**res.stages, "figures": art.figure_s, "tables and page": t_all - art.figure_s}
    model_info = ModelInfo(
        formula=fit.formula, family=fit.family,
        link=get_family(fit.family).link,
        priors={k: str(v) for k, v in fit.priors.items()},
        sampler={k: st.get(k) for k in ("sampler", "chains", "tune", "draws", "seed",
                                         "target_accept", "adaptation")},
        notes=[f"centring: {k} {v}" for k, v in (st.get("centered") or {}).items()]
        + [f"target_accept {st.get('target_accept')}: {st.get('target_accept_reason', 'set by user')}"]
        + ([f"{st.get('adaptation')} mass matrix: {st['adaptation_reason']}"]
           if st.get("adaptation_reason") else [])
        + ([f"compiled with {st.get('backend')}: {st['backend_reason']}"]
           if st.get("backend_reason") else [])
        + ([f"ran on the {str(st.get('device')).upper()}: {st['device_reason']}"]
           if st.get("device_reason") else [])
        + (["posterior reused from cache (data, spec and versions unchanged)"] if res.cached else [])
        + notes + art.skipped
        + ["time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
           + (" (the sampling of the cached posterior is not repeated)" if res.cached else "")],
    )
    ctx = ReportContext(
        title=title, analysis=spec.name, description=spec.content.analysis.description,
        generated=f"biasstats {__version__}, {_dt.date.today().isoformat()}",
        findings=findings(gate, ing, est_sentences, lead=lead, unusable=unusable),
        diagnostics=diag,
        diagnostics_table=_worst_parameters(summary_pl), ledger=ing.ledger, model=model_info,
        figures=art.figures, tables=art.tables, crosscheck_note=cross_note,
        methods=methods_paragraph(spec, ing, fit, gate, ing.sources, effects=study_methods,
                                  estimands=est_methods),
        extra_files=res.files,
        base_dir=folder,
    )
    return write_report(ctx, folder / "report.html"), stages


def _label_keys(fit) -> LabelKeys:
    """Keys for the long level names of the formula's factors (the fitted cells)."""
    f = fit.spec.formula
    return label_keys(fit.spec.cells, [c for c in f.columns() if c not in (f.response,
                                                                            f.trials)])


def _study_words(study, effects) -> tuple[list[str], str, str | None]:
    """What the study whose coding the outcome is says of its effects, in its own words
    (:class:`biasstats.registry.Vocabulary`): the sentences that lead the findings, the
    methods sentence, and the sentence on unusable rows (None: the generic one)."""
    vocab = study.vocabulary if study is not None else None
    if vocab is None or effects is None:
        return [], "", None
    return (list(vocab.findings(effects)) if vocab.findings else [],
            vocab.methods(effects) if vocab.methods else "", vocab.unusable)


def _comparison_outputs(art, comparison: pl.DataFrame | None, collapsed: bool) -> list[str]:
    """The ``[checks] alternatives`` comparison by PSIS-LOO, and its note."""
    if comparison is None:
        return []
    unit = "common cells" if collapsed else "the same rows"
    art.table("model_comparison", comparison,
              f"Model comparison by PSIS-LOO on {unit} (best first): expected log "
              "predictive density, its difference from the best model (elpd_diff, with its "
              "standard error dse) and stacking weights.", section="other", digits=2)
    best = comparison.row(0, named=True)
    warned = (comparison.filter(pl.col("warning"))["model"].to_list()
              if "warning" in comparison.columns else [])
    return [f"model comparison (PSIS-LOO): best is {best['model']}"] + (
        [f"model comparison: PSIS-LOO of {', '.join(warned)} has observations with Pareto k "
         "above the threshold, so its elpd is approximate"] if warned else [])


def _sensitivity_outputs(art, table: pl.DataFrame | None, name: str) -> list[str]:
    """The ``[checks] sensitivity`` comparison (PSIS-LOO per trial) and its note."""
    if table is None:
        return []
    art.table("sensitivity_comparison", table,
              f"This analysis ({name}) and its sensitivity analyses, compared by PSIS-LOO on "
              "the same trials (best first): expected log predictive density, its difference "
              "from the best model (elpd_diff, with its standard error dse) and stacking "
              "weights.", section="other", digits=2)
    best = table.row(0, named=True)
    others = table["model"].to_list()[1:]
    return [f"sensitivity (PSIS-LOO per trial): {best['model']} predicts held-out trials best"
            + (f", ahead of {', '.join(others)} (elpd_diff "
               + ", ".join(f"{d:.1f} ± {e:.1f}" for d, e in zip(table['elpd_diff'][1:],
                                                               table['dse'][1:], strict=True))
               + ")" if others else "")] + (
        [f"sensitivity: PSIS-LOO of {', '.join(table.filter(pl.col('warning'))['model'])} has "
         "trials with Pareto k above the threshold, so its elpd is approximate"]
        if "warning" in table.columns and table["warning"].any() else [])


def _worst_parameters(summary_pl: pl.DataFrame, n: int = 15) -> pl.DataFrame:
    """The ``n`` parameters with the smallest bulk ESS (the page orders them by R-hat)."""
    cols = [c for c in summary_pl.columns if c in
            ("parameter", "mean", "sd", "r_hat", "ess_bulk", "ess_tail")]
    return summary_pl.select(cols).sort("ess_bulk").head(n)


def _crosscheck(art, crosschecks) -> str | None:
    """The registered studies' cross-check tables, and the first note."""
    note = None
    for cc in crosschecks:
        for t in cc.tables:
            art.table(t.name, t.data, t.caption, section="crosscheck", digits=t.digits)
        note = note or cc.note
    return note
