"""Build every analysis and the index; an analysis whose data can't be had is listed, not fatal."""

from __future__ import annotations

import multiprocessing as mp
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from biasstats.errors import BiasstatsError
from biasstats.io import transaction
from biasstats.report.page import render_index
from biasstats.run.analysis import AnalysisOutcome, run_analysis
from biasstats.spec import load_spec


def build_reports(spec_paths: list[str | Path], out_root: str | Path, *, refit: bool = False,
                  progress: bool | None = None, on_done=None, jobs: int = 1
                  ) -> list[AnalysisOutcome]:
    """Build each analysis, then ``index.html``. Spec errors stop everything up front.

    Each analysis is one :func:`biasstats.io.transaction`: one that fails leaves nothing of
    its own behind (analyses built before it stay). ``jobs`` > 1 builds that many analyses at
    once, each in its own process (see :func:`_build_parallel`); the outputs are the same
    files, ``on_done`` sees the analyses as they finish and the index lists them in the order
    given."""
    out_root = Path(out_root)
    specs = [load_spec(p) for p in spec_paths]  # validate all specs before any work
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BiasstatsError(f"two analyses share the name {dup[0]!r}: names must be unique")
    if jobs > 1 and len(specs) > 1:
        outcomes = _build_parallel(specs, out_root, refit, min(jobs, len(specs)), on_done)
    else:
        outcomes = []
        for spec in specs:
            o = _build_one(spec, out_root, refit, progress)
            outcomes.append(o)
            if on_done is not None:
                on_done(o)
    write_index(outcomes, out_root)
    return outcomes


def _build_one(spec, out_root: Path, refit: bool, progress: bool | None) -> AnalysisOutcome:
    with transaction():
        return run_analysis(spec, out_root, refit=refit, progress=progress)


#: library notices nothing in an analysis can act on, kept from the terminal of a command
#: (the main process and its workers): PyTensor's C backend without BLAS (the samplers use
#: numba or JAX, which bring their own)
QUIET = ("PyTensor could not link to a BLAS",)


def quiet_library_notices() -> None:
    """Filter :data:`QUIET` in this process (a spawned worker starts without the parent's
    filters)."""
    for text in QUIET:
        warnings.filterwarnings("ignore", message=text, category=UserWarning)


def _build_in_worker(spec_path: str, out_root: Path, refit: bool) -> AnalysisOutcome:
    """:func:`_build_one` in a worker process (a Spec is passed by its path)."""
    quiet_library_notices()
    return _build_one(load_spec(spec_path), out_root, refit, progress=False)


def waits_for(specs) -> list[set[int]]:
    """For each spec, the specs of the batch it waits for: those naming it as a
    ``[checks] sensitivity`` model, which fit it into its own folder, so that it is sampled
    once and its own report reuses that posterior."""
    where = {Path(s.path).resolve(): i for i, s in enumerate(specs)}
    after: list[set[int]] = [set() for _ in specs]
    for j, s in enumerate(specs):
        for rel in s.content.checks.sensitivity:
            i = where.get(Path(s.relative(rel)).resolve())
            if i is not None and i != j:
                after[i].add(j)
    return after


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
                    running[pool.submit(_build_in_worker, str(spec.path), out_root,
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


def write_index(outcomes: list[AnalysisOutcome], out_root: Path) -> Path:
    """``<out_root>/index.html``: the built analyses first, in the order given, then those
    whose data could not be had (one line each, with the command that gets the data)."""
    return render_index(sorted(outcomes, key=lambda o: o.status == "unavailable"), out_root)
