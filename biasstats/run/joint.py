"""One joint analysis, run: each part ingested (a source several parts read, once) → every
part prepared and checked, the correlated factors' levels checked → one joint fit (cached) →
each part analysed and reported on its view of the posterior (``<analysis>/parts/<part>/``)
→ the joint estimands, ``estimands.parquet`` (every part's rows with a ``part`` column, and
the correlation and slope rows) and the joint page (``<analysis>/report.html``).

``[parts.<name>.checks] alternatives``: each formula replaces the part's own in the joint model
(the other parts as they are, the part's correlation ids kept), is fitted jointly (cached in
``<analysis>/alternatives/<part>/alt<i>``) and compared with the part's model by PSIS-LOO on
that part's observations: both models then condition on the same data (every other part's
too), so the comparison is of the part's formulas alone. Each alternative costs a joint fit."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from biasstats.checks.compare import compare_models
from biasstats.errors import BiasstatsError, DatasetUnavailableError
from biasstats.inference.from_spec import model_data
from biasstats.inference.joint import fit_joint, prepare_parts
from biasstats.ingest import ingest_parts
from biasstats.io import write_parquet_atomic, write_text_atomic
from biasstats.pipeline import (
    analyse_joint,
    check_alternatives,
    check_before_sampling,
    part_folder,
)
from biasstats.report.analysis import render
from biasstats.report.joint import render_joint
from biasstats.run.outcome import (
    AnalysisOutcome,
    built,
    fit_stages,
    posterior_kept,
    show_diagnosis,
    write_results,
)
from biasstats.spec import Spec
from biasstats.spec.parts import PartChecks, in_part

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
    ledgers = {p: i.ledger for p, i in ings.items()}
    joint = prepare_parts(spec, tables, ledgers)
    for p, prepared in joint.parts.items():
        ps = spec.part(p)
        show_diagnosis(ps, prepared)
        with in_part(spec, p):
            check_before_sampling(ps, ings[p].adapter, prepared)
            check_alternatives(_with_alternatives(spec, p), tables[p])
    alternatives = prepare_alternatives(spec, tables, ledgers)
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
        t0 = time.perf_counter()
        for p in spec.parts:
            res.parts[p].comparison = part_alternatives(
                spec, p, alternatives.get(p, []), tables, outcome.fit, folder, progress, refit)
        if any(spec.parts[p].checks.alternatives for p in spec.parts):
            res.stages["alternative models"] = time.perf_counter() - t0
        res.stages = {"ingest": t_ingest,
                      **fit_stages(outcome.fit.timings, outcome.cached, t_fit), **res.stages}
        for part in res.parts.values():
            write_results(part)
        write_parquet_atomic(folder / "estimands.parquet", res.estimand_rows())
        write_text_atomic(folder / "diagnostics.json",
                          json.dumps(res.diag, indent=2, default=float) + "\n")
        stage("figures and tables")
        for part in res.parts.values():
            render(part)
        page, stages = render_joint(res)
    counted = ", ".join(f"{p}: {ings[p].ledger.counted()}" for p in ings)
    return built(spec, f"{len(spec.parts)} parts ({counted})", res.gate, outcome.cached, page,
                 stages)


def _with_alternatives(spec: Spec, part: str) -> Spec:
    """Part ``part`` as a spec of its own whose ``[checks] alternatives`` are the part's (what
    :func:`biasstats.pipeline.check_alternatives` reads)."""
    ps = spec.part(part)
    checks = ps.content.checks.model_copy(
        update={"alternatives": list(spec.parts[part].checks.alternatives)})
    return Spec(path=ps.path, content=ps.content.model_copy(update={"checks": checks}),
                text=ps.text)


def _replaced(spec: Spec, part: str, formula: str) -> Spec:
    """Joint spec ``spec`` with part ``part``'s formula replaced by ``formula``."""
    old = spec.parts[part]
    new = old.model_copy(update={"model": old.model.model_copy(update={"formula": formula}),
                                 "checks": PartChecks()})
    content = spec.content.model_copy(update={"parts": {**spec.parts, part: new}})
    return Spec(path=spec.path, content=content, text=spec.text)


def prepare_alternatives(spec: Spec, tables: dict, ledgers: dict) -> dict[str, list]:
    """Part -> [(formula, joint spec, prepared joint model)] of every ``[parts.<part>.checks]
    alternatives`` formula, prepared and checked on the data before anything is sampled (a
    mistake is one line naming the alternative)."""
    out: dict[str, list] = {}
    for part in spec.parts:
        for i, formula in enumerate(spec.parts[part].checks.alternatives):
            alt = _replaced(spec, part, formula)
            try:
                joint = prepare_parts(alt, tables, ledgers)
            except BiasstatsError as e:  # its key: the alternative, not the part's formula
                raise type(e)(str(e).replace(
                    f"[parts.{part}.model] formula",
                    f"[parts.{part}.checks] alternatives[{i}]")) from None
            out.setdefault(part, []).append((formula, alt, joint))
    return out


def part_alternatives(spec: Spec, part: str, prepared: list, tables: dict, jfit, folder: Path,
                      progress: bool | None, refit: bool = False):
    """Part ``part``'s alternatives (``prepared``: :func:`prepare_alternatives`' list), each
    fitted jointly with the other parts (cached) and compared with the part's model by
    PSIS-LOO on the part's observations; None without alternatives."""
    if not prepared:
        return None
    ps = spec.part(part)
    fits = {ps.model.formula: jfit.part(part)}
    for i, (formula, alt, joint) in enumerate(prepared):
        out = folder / "alternatives" / part / f"alt{i + 1}"
        fits[formula] = fit_joint(alt, joint, out, refit=refit, progress=progress).fit.part(part)
    with in_part(spec, part), warnings.catch_warnings():
        # Pareto k: the table's warning column and a note
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        return compare_models(fits, model_data(ps, tables[part]))
