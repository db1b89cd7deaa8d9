"""Same spec and seed, identical draws, whatever the state of the compile cache.

Truth: the draws of a fit whose every compiled function was freshly compiled (an empty PyTensor
base compile directory) against those of the same fit loaded from that directory's cache. With
numba's fastmath the two rounded differently and NUTS diverged from the first differing bit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import polars as pl
    from biasstats.inference import fit

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(5), 60)
    k = rng.binomial(16, 1 / (1 + np.exp(-rng.normal(0, 0.5, 5)[g] - rng.normal(0, 1, g.size))))
    df = pl.DataFrame({"g": g.astype(str), "k": k, "n": np.full(g.size, 16)})
    f = fit("k | trials(n) ~ 1 + (1|g)", df, family="beta_binomial", chains=2, tune=150,
            draws=100, seed=11, progress=False)
    post = f.idata["posterior"].to_dataset()
    np.savez(sys.argv[1], **{v: post[v].values for v in post.data_vars})
""")


def _run(out: Path, base: Path) -> dict:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={base}",
           "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, check=True,
                   capture_output=True, timeout=900)
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def test_fresh_and_warm_compile_cache_give_identical_draws(tmp_path):
    base = tmp_path / "pytensor"
    base.mkdir()
    fresh = _run(tmp_path / "fresh.npz", base)
    assert any((base / "numba").iterdir())  # the first run filled the cache
    warm = _run(tmp_path / "warm.npz", base)
    assert set(fresh) == set(warm) and "sd_g" in fresh
    for name in fresh:
        np.testing.assert_array_equal(fresh[name], warm[name], err_msg=name)
