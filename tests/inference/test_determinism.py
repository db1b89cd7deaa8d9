"""Same spec, seed and backend: identical draws, whatever the state of the compile caches.

Truth: the draws of a fit whose every compiled function was freshly compiled (an empty
PyTensor base compile directory and an empty biasstats compile cache) against those of the
same fit in a new process that loads the compiled model from those caches, for each backend.
With numba's fastmath the two rounded differently and NUTS diverged from the first differing
bit; the loaded model must also start its chains where the fresh one did."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import polars as pl
    from biasstats.inference import fit

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(5), 60)
    k = rng.binomial(16, 1 / (1 + np.exp(-rng.normal(0, 0.5, 5)[g] - rng.normal(0, 1, g.size))))
    df = pl.DataFrame({"g": g.astype(str), "k": k, "n": np.full(g.size, 16)})
    f = fit("k | trials(n) ~ 1 + (1|g)", df, family="beta_binomial", chains=2, tune=150,
            draws=100, seed=11, progress=False, backend=sys.argv[2])
    post = f.idata["posterior"].to_dataset()
    np.savez(sys.argv[1], **{v: post[v].values for v in post.data_vars})
    print(json.dumps({"backend": f.settings["backend"], "reason": f.settings["backend_reason"],
                      "cache": f.timings["compile_cache"]}))
""")


def _run(out: Path, base: Path, backend: str) -> tuple[dict, dict]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={base / 'pytensor'}",
           "BIASSTATS_CACHE": str(base / "biasstats"),
           "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(out), backend], env=env, check=True,
                       capture_output=True, text=True, timeout=900)
    with np.load(out) as z:
        return {k: z[k] for k in z.files}, json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_fresh_and_warm_compile_caches_give_identical_draws(tmp_path, backend):
    if backend == "jax" and importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed")
    fresh, info1 = _run(tmp_path / "fresh.npz", tmp_path, backend)
    assert any((tmp_path / "biasstats" / "compiled").iterdir())  # the first run filled it
    warm, info2 = _run(tmp_path / "warm.npz", tmp_path, backend)
    assert info1["backend"] == info2["backend"] == backend
    assert info1["reason"] == "set by user"
    if backend == "numba":  # the second process loaded the compiled model
        assert (info1["cache"], info2["cache"]) == ("compiled", "loaded")
    assert set(fresh) == set(warm) and "sd_g" in fresh
    for name in fresh:
        np.testing.assert_array_equal(fresh[name], warm[name], err_msg=name)
