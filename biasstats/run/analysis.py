"""One analysis, run: spec → ingest → fit → :func:`biasstats.pipeline.analyse` → data
outputs → report (:func:`biasstats.report.analysis.render`).

:func:`run_analysis` is the one entry point (``biasstats report`` / ``nox -s report`` run it
per spec; :func:`biasstats.run.many.build_reports` runs many). Output under
``<out>/<analysis>/``: ``trials.parquet``, ``ledger.json``, ``posterior.nc`` (cached by
content hash), ``effects.parquet``, ``estimands.parquet``, ``diagnostics.json``,
``loo_pointwise.parquet``, ``figures/*.{pdf,svg,png}``, ``tables/*.{csv,tex}`` and
``report.html``. A run that builds leaves there exactly what it wrote (listed in
``.biasstats-outputs.json``) and the posterior cache: the outputs of an earlier run that this
one did not write (figures of a factor since dropped, ...) and the temporary and backup files
of a killed run are removed (:func:`tidy_outputs`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from biasstats.effects.draws import DRAWS_FILE
from biasstats.errors import BiasstatsError, DatasetUnavailableError
from biasstats.inference.from_spec import POSTERIOR_FILE, fit_spec
from biasstats.inference.sample import want_progress
from biasstats.ingest import ingest
from biasstats.io import (
    TEMP_NAME,
    pending_backups,
    recording,
    remove_outputs,
    write_parquet_atomic,
    write_text_atomic,
)
from biasstats.pipeline import (
    AnalysisResult,
    analyse,
    analysis_folder,
    check_alternatives,
    check_before_sampling,
    load_sensitivity,
)
from biasstats.report.analysis import render, render_ledger
from biasstats.spec import Spec, load_spec

__all__ = ["AnalysisOutcome", "run_analysis", "tidy_outputs", "write_estimand_draws",
           "write_results"]


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
    stages: tuple[tuple[str, float], ...] = ()   # (stage, seconds), in order

    def time_line(self) -> str:
        """``time: ingest 0.4 s, compile 12.1 s, ...`` (empty without stages)."""
        return "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.stages) \
            if self.stages else ""

    @property
    def blocking(self) -> bool:
        """A failed convergence gate that the spec does not allow."""
        return self.gate_passed is False and not self.allow_failure


def run_analysis(spec: Spec | str | Path, out_root: str | Path, *, refit: bool = False,
                 progress: bool | None = None) -> AnalysisOutcome:
    """Ingest, fit, effects and estimands, checks; then render the report. The analysis
    folder then holds exactly what this run wrote, and the posterior cache
    (:func:`tidy_outputs`)."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    folder = analysis_folder(out_root, spec)
    with recording() as written:
        outcome = _run(spec, folder, refit, progress)
    if outcome.status != "unavailable":  # one that wrote nothing keeps its earlier report
        tidy_outputs(folder, written)
    return outcome


def _stage_printer(spec: Spec, progress: bool | None):
    """``stage(name)``: on a terminal, one line per stage as it starts (``ingest``, ``fit``,
    ``effects and checks``, ``figures and tables``) on stderr; silent otherwise."""
    if not want_progress(progress):
        return lambda name: None
    return lambda name: print(f"  {spec.name}: {name}...", file=sys.stderr, flush=True)


def show_diagnosis(spec: Spec, prepared, file=None) -> None:
    """The design diagnosis (:mod:`biasstats.model.diagnosis`), one line per hard design on
    stderr, before anything is sampled: always (in a worker process too, whose stderr is the
    terminal's), since it warns of a fit that may not converge."""
    for line in prepared.diagnosis:
        print(f"  {spec.name}: design: {line}", file=file or sys.stderr, flush=True)


def _run(spec: Spec, folder: Path, refit: bool, progress: bool | None) -> AnalysisOutcome:
    stage = _stage_printer(spec, progress)
    stage("ingest")
    spec_path, title = spec.path, spec.title
    t0 = time.perf_counter()
    try:
        ing = ingest(spec)
    except DatasetUnavailableError as e:
        src = spec.data.source if spec.data else "?"
        return AnalysisOutcome(spec.name, title, Path(spec_path), "unavailable",
                               f"{e} — to get it: biasstats fetch {src}")
    sensitivity = None
    if spec.model is not None:
        check_alternatives(spec, ing.table)  # before anything is written or sampled
        sensitivity = load_sensitivity(spec, ing)
    trials_path, ledger_path = ing.write(folder)
    if spec.model is None:
        page = render_ledger(spec, ing, folder)
        return AnalysisOutcome(spec.name, title, Path(spec_path), "ingested",
                               f"{ing.ledger.rows_read} rows read (no [model]: ledger only)",
                               report=page)
    t_ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    stage("fit (sampling shows its own progress)")
    def before_sampling(prepared):
        show_diagnosis(spec, prepared)
        check_before_sampling(spec, ing.adapter, prepared)

    outcome = fit_spec(spec, ing.table, folder, refit=refit, progress=progress,
                       ledger=ing.ledger, before_sampling=before_sampling)
    t_fit = time.perf_counter() - t0
    files = [("canonical trial table", trials_path), ("ledger", ledger_path),
             ("posterior (NetCDF)", outcome.path)]
    with _posterior_kept(outcome):
        stage("effects and checks")
        result = analyse(spec, ing, outcome.fit, folder, outcome.cached, files, sensitivity)
        result.stages = {"ingest": t_ingest, **fit_stages(outcome.fit.timings, outcome.cached,
                                                           t_fit), **result.stages}
        write_results(result)
        stage("figures and tables")
        page, stages = render(result)
    gate = result.gate
    msg = (f"{ing.ledger.counted()}; gate "
           f"{'passed' if gate.passed else 'FAILED: ' + '; '.join(gate.failures)}"
           + ("; posterior cached" if result.cached else ""))
    return AnalysisOutcome(spec.name, spec.title, Path(spec.path), "built", msg, gate.passed,
                           spec.content.checks.allow_failure, page, result.cached,
                           tuple(stages.items()))


@contextmanager
def _posterior_kept(outcome):
    """A user error after sampling says that the posterior is kept (the next run reuses it):
    the sampling is never lost to a mistake found later."""
    try:
        yield
    except BiasstatsError as e:
        if outcome.path is None or outcome.cached:
            raise
        raise type(e)(f"{e} (the posterior is kept in {outcome.path}: the next run reuses "
                      "it; --refit samples again)") from None


def write_results(res: AnalysisResult) -> None:
    """The data outputs of a computed analysis: ``effects.parquet`` (a study's congruence
    effects), ``estimands.parquet``, ``loo_pointwise.parquet`` and ``diagnostics.json``."""
    folder = res.folder
    if res.effects is not None:
        write_parquet_atomic(folder / "effects.parquet", res.effects.table)
    if res.estimands is not None:
        write_parquet_atomic(folder / "estimands.parquet", res.estimands.all_rows())
        write_estimand_draws(folder, res.estimands, res.spec, res.fit, res.study)
    loo = res.checks.loo
    if loo is not None:
        write_parquet_atomic(folder / "loo_pointwise.parquet", pl.DataFrame({
            "elpd_loo": loo["pointwise_elpd"], "pareto_k": loo["pareto_k"]}))
    write_text_atomic(folder / "diagnostics.json",
                      json.dumps(res.diag, indent=2, default=float) + "\n")


def write_estimand_draws(folder: Path, est, spec: Spec, fit, study) -> Path:
    """``estimand_draws.parquet``: the posterior draws behind every row of
    ``estimands.parquet`` (:meth:`~biasstats.effects.estimands.Estimands.draws_table`), with
    what a synthesis across analyses checks before it compares them in the file's metadata:
    the analysis, its outcome and the outcome's declared unit, the response scale, family
    and formula."""
    eff = spec.content.effects
    vocab = study.vocabulary if study is not None else None
    outcome = (vocab.outcome if vocab is not None else None) or eff.outcome_label \
        or fit.spec.formula.response or ""
    meta = {"biasstats_analysis": spec.name, "title": spec.title or spec.name,
            "spec": str(spec.path), "outcome": str(outcome), "outcome_unit": eff.unit or "",
            "response_scale": est.response_scale, "family": fit.spec.family.name,
            "formula": str(fit.formula), "hdi_prob": str(est.request.prob)}
    return write_parquet_atomic(folder / DRAWS_FILE, est.draws_table(), metadata=meta)


OUTPUTS_FILE = ".biasstats-outputs.json"  # what the last run wrote in its analysis folder
# what a report writes in an analysis folder (for folders written before OUTPUTS_FILE)
_OWN_FILES = ("trials.parquet", "ledger.json", "truth.json", "effects.parquet",
              "estimands.parquet", DRAWS_FILE, "loo_pointwise.parquet", "diagnostics.json", "report.html")
_OWN_FOLDERS = ("figures", "tables")


def tidy_outputs(folder: Path, written: set[str]) -> list[Path]:
    """Leave in ``folder`` what this run wrote (``written``, absolute paths) and the posterior
    cache: remove what an earlier run wrote there and this one did not (the files listed in
    the earlier :data:`OUTPUTS_FILE`, the report's own files and everything under
    ``figures/`` and ``tables/``), and the temporary and backup files a killed run left
    anywhere in the folder. Never removed: a ``posterior.nc`` (the cache, wherever the
    analysis keeps one), files another program put there, anything outside ``folder``.
    Then write this run's list. Returns the removed files."""
    root = Path(os.path.abspath(folder))
    if not root.is_dir():
        return []
    real = root.resolve()
    mine = {Path(p).relative_to(root) for p in written if Path(p).is_relative_to(root)}
    candidates = {Path(f) for f in _OWN_FILES}
    try:
        listed = json.loads((root / OUTPUTS_FILE).read_text(encoding="utf-8"))
        candidates |= {Path(p) for p in listed if isinstance(p, str)}
    except (OSError, ValueError, TypeError):
        pass  # none yet (or unreadable): the report's own files only
    keep = pending_backups()  # this run's own backups, until its transaction ends
    for dirpath, _, names in os.walk(root):  # never follows a link out of the folder
        here = Path(dirpath).relative_to(root)
        own = bool(here.parts) and here.parts[0] in _OWN_FOLDERS
        candidates |= {here / n for n in names
                       if (own or TEMP_NAME.match(n)) and os.path.join(dirpath, n) not in keep}
    stale = []
    for rel in sorted(candidates - mine):
        path = root / rel
        if (rel.is_absolute() or ".." in rel.parts or rel.name == POSTERIOR_FILE
                or rel == Path(OUTPUTS_FILE) or not path.is_file()
                or not path.parent.resolve().is_relative_to(real)):
            continue
        stale.append(path)
    remove_outputs(stale, root)
    write_text_atomic(root / OUTPUTS_FILE,
                      json.dumps(sorted(p.as_posix() for p in mine), indent=1) + "\n")
    return stale


def fit_stages(timings: dict, cached: bool, wall: float) -> dict[str, float]:
    """The fit's stages in seconds: compile, sample, log-likelihood, predictive (from the
    fit's own timings); for a cached posterior, the time to load it (and recompute what is
    derived from the draws) instead."""
    if cached:
        return {"load cached posterior": wall}
    comp = timings.get("compile_s")
    out = {}
    if comp is not None:
        out["compile"] = comp
    out["sample"] = timings.get("sampling_s", 0.0) - (comp or 0.0)
    if timings.get("first_attempt_s"):
        out["first attempt (refitted)"] = timings["first_attempt_s"]
    out["log-likelihood"] = timings.get("log_likelihood_s", 0.0)
    out["predictive"] = timings.get("predictive_s", 0.0)
    return out


