"""The fit cache is one atomic unit: a posterior is reused only under its own key.

Known truth: a fit is deterministic (same seed, same draws), so whatever a killed run leaves
behind, the next run of the seed-7 spec must hold exactly the seed-7 draws — reused when the
seed-7 file survived, refitted when it did not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from biasstats.inference.from_spec import KEY_ATTR, POSTERIOR_FILE, fit_spec
from biasstats.ingest import ingest

pytestmark = pytest.mark.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[2]
SPEC = """[data]
source = "d.csv"
[data.columns]
llm = "model"
congruent = "answer"
[model]
formula = "congruent ~ 1 + (1|llm)"
[fit]
chains = 1
tune = 30
draws = 20
seed = {seed}
sampler = "pymc"
"""

# Runs one fit in a child process and kills it (os._exit, no clean-up) at a chosen write.
KILLER = """
import os, sys
from biasstats.ingest import ingest
from biasstats.inference.from_spec import fit_spec
spec, out, point = sys.argv[1:4]
real = os.replace
def replace(src, dst):
    if point == "before_rename":
        os._exit(9)            # the temporary file is complete, the rename never happens
    real(src, dst)
    os._exit(9)                # renamed into place, then killed before anything else
os.replace = replace
res = ingest(spec)
fit_spec(res.spec, res.table, out)
"""


def _spec(folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(0)
    lines = ["model,answer"] + [f"{m},{int(rng.random() < p)}"
                                for m, p in (("a", 0.7), ("b", 0.3)) for _ in range(30)]
    (folder / "d.csv").write_text("\n".join(lines) + "\n")
    path = folder / f"seed{seed}.toml"
    path.write_text(SPEC.format(seed=seed))
    return path


def _fit(spec: Path, out: Path, **kw):
    res = ingest(spec)
    return fit_spec(res.spec, res.table, out, **kw)


def _draws(outcome) -> np.ndarray:
    return outcome.fit.idata.posterior["Intercept"].values


@pytest.fixture(scope="module")
def seed7(tmp_path_factory):
    """A seed-7 fit written to its cache folder, and its draws (the truth to compare with)."""
    folder = tmp_path_factory.mktemp("cache")
    spec = _spec(folder, 7)
    out = folder / "out"
    first = _fit(spec, out)
    assert not first.cached
    return folder, spec, _draws(first)


# before the rename (slow marker, 16 s): the atomic write leaves the old entry intact; after
# it (default run): the file holds another fit's draws under its own key
@pytest.mark.parametrize("point", [pytest.param("before_rename", marks=pytest.mark.slow),
                                   "after_rename"])
def test_killed_fit_never_serves_the_wrong_posterior(seed7, tmp_path, point):
    folder, spec7, truth = seed7
    out = tmp_path / "out"
    _fit(spec7, out)  # the seed-7 cache entry
    spec99 = _spec(folder, 99)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.run([sys.executable, "-c", KILLER, str(spec99), str(out), point],
                           env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode == 9, child.stderr[-2000:]
    again = _fit(spec7, out)
    # before the rename the seed-7 entry is intact and reused; after it, the file holds the
    # seed-99 draws under the seed-99 key, so the seed-7 run must refit
    assert again.cached is (point == "before_rename")
    got = _draws(again)  # a cached posterior is stored as float32: compare at its precision
    np.testing.assert_array_equal(got, truth.astype(got.dtype))
    import xarray as xr

    with xr.open_datatree(out / POSTERIOR_FILE) as tree:
        assert tree.attrs[KEY_ATTR] == again.key


def test_corrupt_or_foreign_posterior_is_refitted(seed7, tmp_path):
    _, spec7, truth = seed7
    out = tmp_path / "out"
    out.mkdir()
    (out / POSTERIOR_FILE).write_bytes(b"CDF\x01 truncated")  # a torn file from elsewhere
    first = _fit(spec7, out)
    assert not first.cached
    np.testing.assert_array_equal(_draws(first), truth)
    assert _fit(spec7, out).cached
    assert not _fit(spec7, out, refit=True).cached
