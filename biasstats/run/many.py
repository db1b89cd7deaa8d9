"""Build every analysis and the index; an analysis whose data can't be had is listed, not fatal."""

from __future__ import annotations

import json
import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from biasstats.errors import BiasstatsError
from biasstats.io import transaction, write_text_atomic
from biasstats.report.page import SWEEP_FILE, render_index
from biasstats.run.analysis import AnalysisOutcome
from biasstats.run.cluster import build_on_cluster
from biasstats.run.tasks import (
    QUIET,
    build_one,
    load_task,
    quiet_library_notices,
    task_args,
    waits_for,
)
from biasstats.spec import load_specs

__all__ = ["QUIET", "SWEEP_FILE", "build_reports", "quiet_library_notices", "waits_for",
           "write_index", "write_sweeps"]


def build_reports(spec_paths: list[str | Path], out_root: str | Path, *, refit: bool = False,
                  progress: bool | None = None, on_done=None, jobs: int = 1,
                  scheduler: str | None = None, on_start=None) -> list[AnalysisOutcome]:
    """Build each analysis, then ``index.html``. Spec errors stop everything up front.

    A spec with a ``[sweep]`` is one analysis per member (:func:`biasstats.spec.load_specs`);
    each sweep also gets ``<out_root>/<sweep>/sweep.json`` listing its analyses. Each
    analysis is one :func:`biasstats.io.transaction`: one that fails leaves nothing of its
    own behind (analyses built before it stay). ``jobs`` > 1 builds that many analyses at
    once, each in its own process (see :func:`_build_parallel`); ``scheduler`` (a Dask
    scheduler's address, or ``local`` / ``local:N``) runs them as tasks on a cluster
    (:func:`biasstats.run.cluster.build_on_cluster`). The outputs are the same files,
    ``on_done`` sees the analyses as they finish and the index lists them in the order
    given; ``on_start`` is told how many analyses there are once every spec is loaded."""
    out_root = Path(out_root)
    specs = [s for p in spec_paths for s in load_specs(p)]  # validate all before any work
    names = [s.name for s in specs]
    names += sorted({s.member.sweep for s in specs if s.member is not None})
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BiasstatsError(f"two analyses share the name {dup[0]!r}: names must be unique")
    if on_start is not None:
        on_start(len(specs))
    if scheduler is not None:
        outcomes = build_on_cluster(specs, out_root, refit, scheduler, on_done)
    elif jobs > 1 and len(specs) > 1:
        outcomes = _build_parallel(specs, out_root, refit, min(jobs, len(specs)), on_done)
    else:
        outcomes = []
        for spec in specs:
            o = build_one(spec, out_root, refit, progress)
            outcomes.append(o)
            if on_done is not None:
                on_done(o)
    write_sweeps(specs, outcomes, out_root)
    write_index(outcomes, out_root)
    return outcomes


def _build_in_worker(spec_path: str, member, out_root: Path, refit: bool) -> AnalysisOutcome:
    """:func:`build_one` in a worker process (a Spec is passed by its path and member)."""
    quiet_library_notices()
    return build_one(load_task(spec_path, member), out_root, refit, progress=False)


def _build_parallel(specs, out_root: Path, refit: bool, jobs: int,
                    on_done) -> list[AnalysisOutcome]:
    """Build the analyses in ``jobs`` worker processes, in the order given, except that an
    analysis waits for those that fit it as a sensitivity model (:func:`waits_for`).

    A 2-core machine gains because most stages (compiling, effects, predictive checks, LOO,
    figures) use one core while sampling uses both. Workers are spawned, not forked (the
    parent may hold sampler threads), so a script calling this with ``jobs`` > 1 needs the
    usual ``if __name__ == "__main__":`` guard; they show no progress bars. When an analysis
    fails, those queued but not started are cancelled, those running finish (their own
    transactions commit), and the first error is raised."""

    blockers = waits_for(specs)
    done: dict[int, AnalysisOutcome] = {}
    started: set[int] = set()
    error: BaseException | None = None
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        running: dict = {}

        def submit_ready():
            for i, spec in enumerate(specs):
                if i not in started and blockers[i] <= done.keys():
                    started.add(i)
                    running[pool.submit(_build_in_worker, *task_args(spec), out_root,
                                        refit)] = i

        submit_ready()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = running.pop(fut)
                try:
                    done[i] = fut.result()
                except BaseException as e:  # noqa: BLE001 - re-raised below
                    error = error or e
                    continue
                if on_done is not None:
                    on_done(done[i])
            if error is None:
                submit_ready()
            else:  # queued but not started: never start them
                for fut in running:
                    fut.cancel()
    if error is not None:
        raise error
    return [done[i] for i in range(len(specs))]


def write_sweeps(specs, outcomes: list[AnalysisOutcome], out_root: Path) -> list[Path]:
    """``<out_root>/<sweep>/sweep.json`` for each sweep among ``specs``: its spec, variables
    and values, and each analysis (its values, status and folder, relative to the file)."""
    groups: dict[str, list] = {}
    for spec, o in zip(specs, outcomes, strict=True):
        if spec.member is not None:
            groups.setdefault(spec.member.sweep, []).append((spec, o))
    written = []
    with transaction():
        for name, members in groups.items():
            variables: dict[str, list[str]] = {}
            for spec, _ in members:
                for k, v in spec.member.values:
                    if v not in variables.setdefault(k, []):
                        variables[k].append(v)
            doc = {"name": name, "spec": str(Path(members[0][0].path).resolve()),
                   "variables": variables,
                   "analyses": [{"name": o.name, "title": o.title,
                                 "values": dict(spec.member.values), "status": o.status,
                                 "gate_passed": o.gate_passed, "folder": f"../{o.name}",
                                 "report": None if o.report is None else f"../{o.name}/"
                                 f"{Path(o.report).name}"} for spec, o in members]}
            written.append(write_text_atomic(out_root / name / SWEEP_FILE,
                                             json.dumps(doc, indent=1) + "\n"))
    return written


def write_index(outcomes: list[AnalysisOutcome], out_root: Path) -> Path:
    """``<out_root>/index.html``: the built analyses first, in the order given, then those
    whose data could not be had (one line each, with the command that gets the data)."""
    return render_index(sorted(outcomes, key=lambda o: o.status == "unavailable"), out_root)
