"""One joint analysis, run: each part ingested (a source several parts read, once) → every
part prepared and checked, the correlated factors' levels checked → one joint fit (cached) →
each part analysed and reported on its view of the posterior (``<analysis>/parts/<part>/``)
→ the joint estimands, ``estimands.parquet`` (every part's rows with a ``part`` column, and
the correlation and slope rows) and the joint page (``<analysis>/report.html``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from biasstats.errors import DatasetUnavailableError
from biasstats.inference.joint import fit_joint, prepare_parts
from biasstats.ingest import ingest_parts
from biasstats.io import write_parquet_atomic, write_text_atomic
from biasstats.pipeline import analyse_joint, check_before_sampling, part_folder
from biasstats.report.analysis import render
from biasstats.report.joint import render_joint
from biasstats.run.outcome import AnalysisOutcome, posterior_kept, show_diagnosis, write_results
from biasstats.spec import Spec
from biasstats.spec.parts import in_part

__all__ = ["run_joint"]


def run_joint(spec: Spec, folder: Path, refit: bool, progress: bool | None,
              stage) -> AnalysisOutcome:
    """Build joint spec ``spec`` in ``folder`` (``stage(name)`` announces each stage)."""
    stage("ingest")
    t0 = time.perf_counter()
    try:
        ings = ingest_parts(spec)
    except DatasetUnavailableError as e:
        return AnalysisOutcome(spec.name, spec.title, Path(spec.path), "unavailable", str(e))
    tables = {p: i.table for p, i in ings.items()}
    joint = prepare_parts(spec, tables, {p: i.ledger for p, i in ings.items()})
    for p, prepared in joint.parts.items():
        ps = spec.part(p)
        show_diagnosis(ps, prepared)
        with in_part(spec, p):
            check_before_sampling(ps, ings[p].adapter, prepared)
    t_ingest = time.perf_counter() - t0
    stage("fit (sampling shows its own progress)")
    t0 = time.perf_counter()
    outcome = fit_joint(spec, joint, folder, refit=refit, progress=progress)
    t_fit = time.perf_counter() - t0
    files = {}
    for p, ing in ings.items():
        trials, ledger = ing.write(part_folder(folder, p))
        files[p] = [(f"{p}: canonical trial table", trials), (f"{p}: ledger", ledger)]
    first = next(iter(files))
    files[first].append(("posterior (NetCDF, all parts)", outcome.path))
    with posterior_kept(outcome):
        stage("effects and checks")
        res = analyse_joint(spec, ings, outcome.fit, folder, outcome.cached, files)
        fit_s = {"load cached posterior": t_fit} if outcome.cached else {
            "compile": outcome.fit.timings.get("compile_s", 0.0),
            "sample": outcome.fit.timings.get("sampling_s", 0.0)
            - outcome.fit.timings.get("compile_s", 0.0),
            "log-likelihood": outcome.fit.timings.get("log_likelihood_s", 0.0),
            "predictive": outcome.fit.timings.get("predictive_s", 0.0)}
        res.stages = {"ingest": t_ingest, **fit_s, **res.stages}
        for part in res.parts.values():
            write_results(part)
        write_parquet_atomic(folder / "estimands.parquet", res.estimand_rows())
        write_text_atomic(folder / "diagnostics.json",
                          json.dumps(res.diag, indent=2, default=float) + "\n")
        stage("figures and tables")
        for part in res.parts.values():
            render(part)
        page, stages = render_joint(res)
    gate = res.gate
    msg = (f"{len(spec.parts)} parts ({', '.join(f'{p}: {ings[p].ledger.counted()}' for p in ings)}"
           f"); gate {'passed' if gate.passed else 'FAILED: ' + '; '.join(gate.failures)}"
           + ("; posterior cached" if outcome.cached else ""))
    return AnalysisOutcome(spec.name, spec.title, Path(spec.path), "built", msg, gate.passed,
                        spec.content.checks.allow_failure, page, outcome.cached,
                        tuple(stages.items()))
