"""Analyses as tasks on a Dask distributed cluster: ``biasstats report ... --scheduler``.

``--scheduler tcp://HOST:PORT`` connects to a running scheduler; ``--scheduler local`` (or
``local:N``) starts a ``LocalCluster`` on this machine, 2 (N) worker processes of one
thread each (a fit's chains run on nutpie's own threads).

What travels, and who writes what:

* A task is one analysis: it ships the spec's absolute path, the sweep member's variable
  values and the reports folder, nothing else (no Spec object, no data, no posterior). The
  worker loads and checks the spec again (:func:`biasstats.run.tasks.load_task`), reads the
  data from the paths the spec names and builds the analysis with the same code as a local
  run, in one :func:`biasstats.io.transaction`: ``<reports>/<analysis>/`` is written whole
  or not at all. So the specs, the data and the reports folder must be at the **same paths
  on every worker** (a shared file system); a worker that cannot see them fails the task
  with one line naming the analysis, the path and the worker's host.
* The result sent back is the small :class:`~biasstats.run.analysis.AnalysisOutcome`
  (status, message, gate, timings), never draws. The client then writes what spans
  analyses, atomically: each sweep's ``sweep.json`` and ``index.html``.
* Writing in place (rather than shipping the built folder's bytes back to the client) is
  what keeps a rerun free: the posterior cache lives in the analysis folder, so the next run
  of the same spec and data loads it, on whichever worker the task lands.
* A worker that dies mid-task (killed, out of memory) is replaced by its nanny and the
  scheduler runs the task again elsewhere (up to ``distributed.scheduler.allowed-failures``,
  default 3, then one line naming the analysis); an unexpected exception in a task is retried
  :data:`RETRIES` times. A user error (a bad spec, missing data) is returned, not raised, so
  it is never retried. The same seed gives the same draws on any worker (the compiled
  model's start points and the sampler's streams come from the seed).

Dask is an optional extra (``pip install 'biasstats[dask]'``), imported only here, inside the
functions that need it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from biasstats.errors import BiasstatsError, first_line
from biasstats.run.analysis import AnalysisOutcome
from biasstats.run.tasks import (
    build_one,
    load_task,
    quiet_library_notices,
    task_args,
    waits_for,
)

__all__ = ["CONNECT_TIMEOUT", "LOCAL_WORKERS", "RETRIES", "build_on_cluster", "parse_scheduler",
           "run_task"]

LOCAL_WORKERS = 2     # --scheduler local: worker processes, one thread each
MAX_LOCAL_WORKERS = 64
RETRIES = 2           # re-runs of a task that raised an unexpected exception
CONNECT_TIMEOUT = 10  # seconds to reach a scheduler
INSTALL = "pip install 'biasstats[dask]'"
_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://\S+")


def parse_scheduler(text: str) -> tuple[str, int | str]:
    """``("local", workers)`` for ``local`` / ``local:N``, else ``("address", text)`` for a
    scheduler address (``tcp://HOST:PORT``, ``tls://...``)."""
    if text == "local":
        return "local", LOCAL_WORKERS
    if text.startswith("local:"):
        n = text.removeprefix("local:")
        if n.isdigit() and 1 <= int(n) <= MAX_LOCAL_WORKERS:
            return "local", int(n)
    elif _ADDRESS.fullmatch(text):
        return "address", text
    raise BiasstatsError(f"--scheduler {text!r}: expected a scheduler address "
                         f"(tcp://HOST:PORT), 'local' or 'local:N' (N from 1 to "
                         f"{MAX_LOCAL_WORKERS} workers)")


def _distributed():
    try:
        # dask.distributed is heavy and optional (biasstats[dask]): imported on first use
        import distributed
    except ImportError:
        raise BiasstatsError(f"--scheduler runs analyses on Dask distributed, which is not "
                             f"installed here: {INSTALL}") from None
    return distributed


@contextmanager
def connect(scheduler: str, what: str):
    """A Dask client of ``scheduler`` (a started LocalCluster for ``local``), closed after.
    ``what`` names the analyses for an unreachable scheduler's message."""
    kind, arg = parse_scheduler(scheduler)
    distributed = _distributed()
    cluster = None
    if kind == "local":
        cluster = distributed.LocalCluster(n_workers=arg, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(arg, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise BiasstatsError(f"--scheduler {arg}: cannot reach the scheduler "
                                 f"({first_line(e)}); {what}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@dataclass(frozen=True)
class TaskError:
    """A user error in a task, returned (not raised: never retried)."""

    message: str
    exit_code: int


def run_task(spec_path: str, member, out_root: str, refit: bool, *after
             ) -> AnalysisOutcome | TaskError:
    """One analysis on a worker (``after``: the outcomes of the analyses it waits for).

    Dask's scheduler is set to ``synchronous`` for the analysis: any dask collection a library
    computes inside it (xarray) runs in this task's thread instead of going back to the
    cluster, and xarray takes a local write lock (on a worker it would ask the scheduler for
    a distributed lock named after an in-memory file, which fails)."""
    # dask is heavy and optional (biasstats[dask]); a worker has it
    import dask

    quiet_library_notices()
    host = socket.gethostname()
    try:
        if not os.path.isfile(spec_path):
            raise BiasstatsError(f"the worker on {host} cannot see the spec file {spec_path} "
                                 "(specs, data and the reports folder must be at the same "
                                 "paths on every worker)")
        spec = load_task(spec_path, member)
        with dask.config.set(scheduler="synchronous"):
            return build_one(spec, Path(out_root), refit, progress=False)
    except BiasstatsError as e:
        return TaskError(f"{e} (on worker {host})", e.exit_code)


def _submit(client, specs, out_root: str, refit: bool) -> dict:
    """One future per analysis; one that waits for others (:func:`waits_for`) gets theirs
    as arguments, so the scheduler runs it after them."""
    blockers, futures = waits_for(specs), {}
    pending = list(range(len(specs)))
    run = uuid.uuid4().hex[:8]
    while pending:
        ready = [i for i in pending if blockers[i] <= futures.keys()] or pending  # a cycle
        for i in ready:
            after = [futures[j] for j in sorted(blockers[i]) if j in futures]
            futures[i] = client.submit(run_task, *task_args(specs[i]), out_root, refit, *after,
                                       key=f"biasstats-{specs[i].name}-{run}", pure=False,
                                       retries=RETRIES)
        pending = [i for i in pending if i not in futures]
    return futures


def _failure(name: str, e: BaseException, distributed) -> BiasstatsError:
    """One line for a task that did not return (lost workers, a cluster problem)."""
    if isinstance(e, distributed.KilledWorker):
        return BiasstatsError(f"analysis {name!r}: the workers running it died repeatedly "
                              "(out of memory? killed? see the workers' logs); not retried "
                              "again")
    if isinstance(e, ImportError):
        return BiasstatsError(f"analysis {name!r}: a worker cannot import biasstats or a "
                              f"dependency ({first_line(e)}): {INSTALL} on every worker")
    return BiasstatsError(f"analysis {name!r}: the cluster failed it ({type(e).__name__}: "
                          f"{first_line(e)})")


def build_on_cluster(specs, out_root: Path, refit: bool, scheduler: str,
                     on_done) -> list[AnalysisOutcome]:
    """Build ``specs`` as tasks on ``scheduler``; ``on_done`` sees each as it finishes. The
    first failure cancels the tasks not finished (a running one may still commit its own
    folder) and is raised as one line naming the analysis."""
    what = (f"analysis {specs[0].name!r} was not started" if len(specs) == 1
            else f"none of the {len(specs)} analyses (first: {specs[0].name!r}) was started")
    with connect(scheduler, what) as client:
        distributed = _distributed()
        futures = _submit(client, specs, str(Path(out_root).resolve()), refit)
        which = {f.key: i for i, f in futures.items()}
        done: dict[int, AnalysisOutcome] = {}
        error: BiasstatsError | None = None
        for fut in distributed.as_completed(list(futures.values())):
            i = which[fut.key]
            try:
                got = fut.result()
            except Exception as e:  # noqa: BLE001 - a lost task: one line, raised below
                error = _failure(specs[i].name, e, distributed)
            else:
                if isinstance(got, TaskError):
                    error = BiasstatsError(f"analysis {specs[i].name!r}: {got.message}")
                    error.exit_code = got.exit_code
                else:
                    done[i] = got
                    if on_done is not None:
                        on_done(got)
            if error is not None:
                client.cancel([f for j, f in futures.items() if j not in done and j != i])
                raise error
    return [done[i] for i in range(len(specs))]
