"""What every engine that builds many analyses shares: building one analysis in its own
:func:`biasstats.io.transaction`, loading it again in a worker (from its spec path and sweep
member: a task ships references, never a Spec or data), the order the analyses wait for each
other, and the library notices kept from a terminal."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

from biasstats.io import transaction
from biasstats.run.analysis import AnalysisOutcome, run_analysis
from biasstats.spec import Spec, load_member, load_spec

__all__ = ["QUIET", "build_one", "load_task", "quiet_library_notices", "task_args",
           "waits_for"]

#: library notices nothing in an analysis can act on, kept from the terminal of a command
#: (the main process and its workers): PyTensor's C backend without BLAS (the samplers use
#: numba or JAX, which bring their own)
QUIET = ("PyTensor could not link to a BLAS",)


def quiet_library_notices() -> None:
    """Filter :data:`QUIET` in this process (a spawned worker starts without the parent's
    filters)."""
    for text in QUIET:
        warnings.filterwarnings("ignore", message=text, category=UserWarning)


def build_one(spec: Spec, out_root: Path, refit: bool, progress: bool | None
              ) -> AnalysisOutcome:
    """One analysis in one transaction; a sweep member's outcome names its sweep."""
    with transaction():
        outcome = run_analysis(spec, out_root, refit=refit, progress=progress)
    return outcome if spec.member is None else dataclasses.replace(
        outcome, sweep=spec.member.sweep)


def task_args(spec: Spec) -> tuple[str, tuple[tuple[str, str], ...] | None]:
    """What a worker needs to load ``spec`` again: its file's absolute path and, for a
    member of a sweep, the member's variable values."""
    return str(Path(spec.path).resolve()), None if spec.member is None else spec.member.values


def load_task(spec_path: str, member) -> Spec:
    """The spec :func:`task_args` refers to, loaded (and checked) again in a worker."""
    return load_spec(spec_path) if member is None else load_member(spec_path, member)


def waits_for(specs) -> list[set[int]]:
    """For each spec, the specs of the batch it waits for: those naming it as a
    ``[checks] sensitivity`` model, which fit it into its own folder, so that it is sampled
    once and its own report reuses that posterior."""
    where = {Path(s.path).resolve(): i for i, s in enumerate(specs) if s.member is None}
    after: list[set[int]] = [set() for _ in specs]
    for j, s in enumerate(specs):
        for rel in s.content.checks.sensitivity:
            i = where.get(Path(s.relative(rel)).resolve())
            if i is not None and i != j:
                after[i].add(j)
    return after
