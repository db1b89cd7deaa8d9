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
import time
from pathlib import Path

from biasstats.effects.draws import DRAWS_FILE
from biasstats.errors import DatasetUnavailableError
from biasstats.inference.from_spec import POSTERIOR_FILE, fit_spec
from biasstats.ingest import ingest
from biasstats.io import (
    TEMP_NAME,
    pending_backups,
    recording,
    remove_outputs,
    write_text_atomic,
)
from biasstats.pipeline import (
    analyse,
    analysis_folder,
    check_alternatives,
    check_before_sampling,
    load_sensitivity,
)
from biasstats.report.analysis import render, render_ledger
from biasstats.run.joint import run_joint
from biasstats.run.outcome import (
    AnalysisOutcome,
    attempt_printer,
    built,
    fit_stages,
    posterior_kept,
    show_diagnosis,
    stage_printer,
    write_estimand_draws,
    write_results,
)
from biasstats.spec import Spec, load_spec

__all__ = ["AnalysisOutcome", "run_analysis", "tidy_outputs", "write_estimand_draws",
           "write_results"]


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


def _run(spec: Spec, folder: Path, refit: bool, progress: bool | None) -> AnalysisOutcome:
    stage = stage_printer(spec, progress)
    if spec.parts is not None:
        return run_joint(spec, folder, refit, progress, stage)
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
                       ledger=ing.ledger, before_sampling=before_sampling,
                       on_attempt=attempt_printer(spec))
    t_fit = time.perf_counter() - t0
    files = [("canonical trial table", trials_path), ("ledger", ledger_path),
             ("posterior (NetCDF)", outcome.path)]
    with posterior_kept(outcome):
        stage("effects and checks")
        result = analyse(spec, ing, outcome.fit, folder, outcome.cached, files, sensitivity)
        result.stages = {"ingest": t_ingest, **fit_stages(outcome.fit.timings, outcome.cached,
                                                           t_fit), **result.stages}
        write_results(result)
        stage("figures and tables")
        page, stages = render(result)
    return built(spec, ing.ledger.counted(), result.gate, result.cached, page, stages)


OUTPUTS_FILE = ".biasstats-outputs.json"  # what the last run wrote in its analysis folder
# what a report writes in an analysis folder (for folders written before OUTPUTS_FILE)
_OWN_FILES = ("trials.parquet", "ledger.json", "truth.json", "effects.parquet",
              "estimands.parquet", DRAWS_FILE, "loo_pointwise.parquet", "diagnostics.json",
              "report.html")
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
