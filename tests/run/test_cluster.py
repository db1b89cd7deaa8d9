"""``biasstats report --scheduler``: analyses as tasks on a Dask distributed cluster.

Truth: every analysis of a sweep is built on a cluster of 2 workers, and a fitted one's
every posterior draw equals the local run's (same seed); a task whose worker is killed is
run again and the analysis is built; a worker that cannot read an analysis' data, an
unreachable scheduler, a bad --scheduler value and a missing Dask are each one line (exit
2)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xarray as xr

from biasstats.cli import main
from biasstats.run import cluster

distributed = pytest.importorskip("distributed")

SPEC = """[sweep]
llm = {llms}
[data]
source = "runs/{{llm}}/trials.csv"
[data.columns]
variant = "prompt"
congruent = "answer"
{rest}"""
FIT = """[model]
formula = "congruent ~ 1 + (1|variant)"
[fit]
chains = 2
tune = 120
draws = 120
seed = 5
refit = false
[checks]
allow_failure = true
loo = false
"""


def _study(folder: Path, llms=("a", "b", "c", "d"), rest: str = "",
           listed: tuple[str, ...] | None = None) -> Path:
    """One trials.csv per LLM (a different rate each); the spec sweeps over ``listed`` (a
    list) or the folders (a glob)."""
    rng = np.random.default_rng(3)
    for i, llm in enumerate(llms):
        (folder / "runs" / llm).mkdir(parents=True)
        v = rng.integers(0, 3, 150)
        p = 1 / (1 + np.exp(-(0.4 * i - 0.6 + np.array([-0.4, 0.0, 0.4])[v])))
        pl.DataFrame({"prompt": np.array(["p1", "p2", "p3"])[v],
                      "answer": (rng.random(150) < p).astype(int)}).write_csv(
            folder / "runs" / llm / "trials.csv")
    shown = '"runs/*/"' if listed is None else "[" + ", ".join(f'"{x}"' for x in listed) + "]"
    spec = folder / "s.toml"
    spec.write_text(SPEC.format(llms=shown, rest=rest))
    return spec


@pytest.fixture(scope="module")
def scheduler():
    """A LocalCluster of 2 single-threaded worker processes, reached by its tcp address."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c.scheduler_address


class KillOnce(distributed.WorkerPlugin):
    """Ends its worker's process the first time a task of ``name`` starts there (a marker
    file says it happened: the restarted worker, and the others, let it run)."""

    def __init__(self, name: str, marker: str):
        self.name, self.marker = name, marker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and self.name in str(key) and not os.path.exists(self.marker):
            Path(self.marker).write_text("killed")
            os._exit(1)


def test_a_killed_workers_task_is_run_again(tmp_path, scheduler, capsys):
    spec = _study(tmp_path)
    marker = tmp_path / "killed"
    with distributed.Client(scheduler) as client:
        client.register_plugin(KillOnce("s--llm-b-", str(marker)), name="kill-once")
        try:
            code = main(["report", str(spec), "--out", str(tmp_path / "out"),
                         "--scheduler", scheduler])
        finally:
            client.unregister_worker_plugin("kill-once")
    assert marker.read_text() == "killed"
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    for llm in "abcd":
        assert f"ingested     s--llm-{llm}: 150 rows read" in printed
        assert (tmp_path / "out" / f"s--llm-{llm}" / "ledger.json").is_file()
    assert (tmp_path / "out" / "s" / "sweep.json").is_file()


def test_a_worker_without_the_data_is_one_line_naming_the_analysis(tmp_path, scheduler,
                                                                   capsys):
    spec = _study(tmp_path, llms=("a",), listed=("a", "gone"))
    out = tmp_path / "out"
    assert main(["report", str(spec), "--out", str(out), "--scheduler", scheduler]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: analysis 's--llm-gone': ")
    assert "runs/gone/trials.csv" in err[0] and f"(on worker {socket.gethostname()})" in err[0]
    assert not (out / "s--llm-gone").exists()


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = _study(tmp_path, llms=("a", "b"))
    assert main(["report", str(spec), "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: --scheduler tcp://127.0.0.1:{port}: cannot reach the "
                             "scheduler (")
    assert err[0].endswith("); none of the 2 analyses (first: 's--llm-a') was started")


def test_without_dask_the_scheduler_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    spec = _study(tmp_path, llms=("a",))
    assert main(["report", str(spec), "--scheduler", "local"]) == 2
    assert capsys.readouterr().err == (
        "error: --scheduler runs analyses on Dask distributed, which is not installed here: "
        "pip install 'biasstats[dask]'\n")


@pytest.mark.parametrize("value", ["somewhere:8786", "local:0", "local:x"])
def test_a_bad_scheduler_value_is_one_line(tmp_path, capsys, value):
    spec = _study(tmp_path, llms=("a",))
    assert main(["report", str(spec), "--scheduler", value]) == 2
    assert capsys.readouterr().err == (
        f"error: --scheduler {value!r}: expected a scheduler address (tcp://HOST:PORT), "
        "'local' or 'local:N' (N from 1 to 64 workers)\n")


def test_jobs_and_scheduler_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", "x.toml", "--jobs", "2", "--scheduler", "local"])
    assert e.value.code == 2
    assert "argument --scheduler: not allowed with argument --jobs" in capsys.readouterr().err


def _draws(path: Path) -> dict[str, np.ndarray]:
    with xr.open_datatree(path) as dt:
        return {k: dt["posterior"][k].values.copy() for k in dt["posterior"].data_vars}


# Slow (about a minute on 2 cores: 4 models compiled and fitted on the cluster, then again in
# this process, and a rerun): `nox -s cluster` runs it.
@pytest.mark.slow
def test_a_sweep_on_two_workers_gives_the_local_draws_and_reruns_free(tmp_path, capsys):
    spec = _study(tmp_path, rest=FIT)
    on_cluster, local = tmp_path / "cluster", tmp_path / "local"
    assert main(["report", str(spec), "--out", str(on_cluster), "--scheduler", "local"]) == 0
    assert main(["report", str(spec), "--out", str(local)]) == 0
    for llm in "abcd":
        a = _draws(on_cluster / f"s--llm-{llm}" / "posterior.nc")
        b = _draws(local / f"s--llm-{llm}" / "posterior.nc")
        assert a.keys() == b.keys() and "Intercept" in a
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    draws = [_draws(local / f"s--llm-{llm}" / "posterior.nc")["Intercept"] for llm in "ab"]
    assert not np.array_equal(*draws)  # each member fitted its own data
    capsys.readouterr()
    assert main(["report", str(spec), "--out", str(on_cluster), "--scheduler", "local:1"]) == 0
    assert capsys.readouterr().out.count("posterior cached") == 4
