"""Compile once (biasstats.inference.compiled) and the backend choice.

Truths: the structural key is a function of what the log density depends on (the same for a
rebuilt model; another for other data, another prior, the other parameterisation, the other
backend); a model loaded from the cache evaluates PyMC's own log density and gradient of the
model (``Model.compile_logp`` / ``compile_dlogp``) at random points; the automatic backend
follows its stated rule on the size of the model's largest data array."""

from __future__ import annotations

import ctypes
import importlib.util
import os

import numpy as np
import polars as pl
import pytest

from biasstats.errors import SpecError
from biasstats.inference import fit_settings
from biasstats.inference.compiled import (
    _evict,
    compile_model,
    graph_key,
    largest_constant_bytes,
)
from biasstats.inference.sample import JAX_MIN_BYTES, auto_backend
from biasstats.model.build import prepare
from biasstats.model.graph import build_model


def _table(n=240, seed=0, flip=False):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 6, n)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + 0.5 * x + 0.3 * (g - 2.5))))).astype(int)
    if flip:
        y[0] = 1 - y[0]
    return pl.DataFrame({"y": y, "x": np.round(x, 1), "g": [f"g{i}" for i in g]})


FORMULA = "y ~ 1 + x + (1|g)"


def _key(**kw):
    priors, centered = kw.pop("priors", None), kw.pop("centered", None)
    backend = kw.pop("backend", "numba")
    return graph_key(build_model(prepare(FORMULA, _table(**kw), "bernoulli", priors,
                                         centered)), backend)


def test_the_key_names_the_log_density_and_nothing_else():
    base = _key()
    assert _key() == base                       # a rebuilt model of the same spec
    assert _key(flip=True) != base              # one observation changed
    assert _key(priors={"sd_g": "HalfNormal(2)"}) != base
    assert _key(centered={"g": True}) != _key(centered={"g": False})
    assert _key(backend="jax") != base


def test_a_loaded_model_evaluates_pymcs_log_density_and_gradient(tmp_path, monkeypatch):
    monkeypatch.setenv("BIASSTATS_CACHE", str(tmp_path))
    spec = prepare(FORMULA, _table(), "bernoulli")
    first, info1 = compile_model(build_model(spec))
    model = build_model(spec)
    loaded, info2 = compile_model(model)
    assert (info1["cache"], info2["cache"]) == ("compiled", "loaded")
    assert info1["key"] == info2["key"] and (tmp_path / "compiled" / "numba").is_dir()
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    names, slices, shapes = loaded.shape_info
    free = [v.name for v in model.value_vars]  # nutpie's flat vector: these, in this order
    dp = ctypes.POINTER(ctypes.c_double)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.normal(0, 0.7, loaded.n_dim)
        outs = []
        for c in (first, loaded):
            grad, lp = np.zeros(c.n_dim), np.zeros(())
            rc = c.compiled_logp_func.ctypes(c.n_dim, x.ctypes.data_as(dp),
                                             grad.ctypes.data_as(dp), lp.ctypes.data_as(dp),
                                             None)
            assert rc == 0
            outs.append((float(lp), grad))
        assert outs[0][0] == outs[1][0] and np.array_equal(outs[0][1], outs[1][1])
        point = {n: x[s].reshape(sh) for n, s, sh in zip(names, slices, shapes, strict=False)
                 if n in free}
        assert list(point) == free
        assert outs[1][0] == pytest.approx(float(logp(point)), rel=1e-12)
        np.testing.assert_allclose(outs[1][1], dlogp(point), rtol=1e-10, atol=1e-10)
    # the same chain starts, from the seed: the support point plus U(-1, 1) jitter
    a, b = first.initial_point_func(5), loaded.initial_point_func(5)
    assert np.array_equal(a, b) and not np.array_equal(a, loaded.initial_point_func(6))


def test_the_cache_keeps_the_most_recently_used_models(tmp_path):
    (tmp_path / "numba").mkdir()
    for i, key in enumerate(("a" * 32, "b" * 32, "c" * 32)):
        (tmp_path / f"{key}.json").write_text("{}")
        (tmp_path / "numba" / f"biasstats-model.logp_{key[:16]}-{key}.py312.nbi").touch()
        os.utime(tmp_path / f"{key}.json", (1000 + i, 1000 + i))
    _evict(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [f"{'b' * 32}.json",
                                                                f"{'c' * 32}.json"]
    assert all("a" * 32 not in p.name for p in (tmp_path / "numba").iterdir())
    assert len(list((tmp_path / "numba").iterdir())) == 2


def test_the_automatic_backend_follows_the_size_of_the_largest_data_array():
    small = build_model(prepare(FORMULA, _table(), "bernoulli"))
    assert largest_constant_bytes(small) < JAX_MIN_BYTES
    backend, why = auto_backend(small)
    assert backend == "numba" and why.startswith("automatic: largest data array")
    n = JAX_MIN_BYTES // 8 + 1000  # one float64 response array above the limit
    rng = np.random.default_rng(1)
    big = build_model(prepare("y ~ 1 + x", pl.DataFrame({"y": rng.normal(size=n),
                                                         "x": rng.normal(size=n)}),
                              "gaussian"))
    assert largest_constant_bytes(big) > JAX_MIN_BYTES
    backend, why = auto_backend(big)
    has_jax = importlib.util.find_spec("jax") is not None
    assert backend == ("jax" if has_jax else "numba"), why
    assert "above 1 MB" in why


def test_backend_jax_without_jax_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    with pytest.raises(SpecError, match=r'^\[fit\] backend = "jax" needs JAX installed'):
        fit_settings(backend="jax")
    assert fit_settings(backend="numba").backend == "numba"


def test_an_unknown_backend_is_refused_by_the_fit_table():
    with pytest.raises(SpecError, match="backend"):
        fit_settings(backend="cuda")


# ----------------------------------------------------------------------------- device
def test_device_gpu_with_numba_is_one_line():
    with pytest.raises(SpecError, match=r'^\[fit\] device = "gpu" needs backend = "jax" '
                                        r'\(or "auto"\): numba compiles for the CPU$'):
        fit_settings(device="gpu", backend="numba")


def test_device_gpu_without_jax_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    with pytest.raises(SpecError, match=r'^\[fit\] device = "gpu" needs JAX with CUDA installed'):
        fit_settings(device="gpu")
    assert fit_settings(device="cpu").device == "cpu"


def test_the_device_rule(monkeypatch):
    """numba runs on the CPU; JAX on a GPU when it sees one (device = "auto"); device = "gpu"
    where JAX sees none is one line naming the key."""
    pytest.importorskip("jax")
    from biasstats.inference import sample

    assert sample.auto_device("numba", "auto") == ("cpu", "numba compiles for the CPU")

    class FakeGpu:
        device_kind = "Tesla T4"

    monkeypatch.setattr(sample, "jax_device", lambda platform: None)
    assert sample.auto_device("jax", "auto") == ("cpu", "automatic: JAX sees no GPU")
    assert sample.auto_device("jax", "cpu") == ("cpu", "set by user")
    with pytest.raises(SpecError, match=r'^\[fit\] device = "gpu": JAX sees no GPU on this '
                                        r'machine'):
        sample.auto_device("jax", "gpu")
    monkeypatch.setattr(sample, "jax_device",
                        lambda platform: FakeGpu() if platform == "gpu" else None)
    assert sample.auto_device("jax", "auto") == ("gpu", "automatic: JAX sees a GPU (Tesla T4)")
    assert sample.auto_device("jax", "cpu") == ("cpu", "set by user")


def test_the_jax_device_path_runs_on_this_cpu_and_restores_the_default(monkeypatch):
    """The code path a GPU takes, on the CPU: JAX's default device set to the chosen device
    while compiling and sampling, the choice recorded, and the global default put back."""
    jax = pytest.importorskip("jax")
    from biasstats.inference import fit

    set_to = []
    real = jax.config.update
    monkeypatch.setattr(jax.config, "update", lambda name, value: (
        set_to.append(value) if name == "jax_default_device" else None, real(name, value))[1])
    before = jax.config.jax_default_device
    placed = fit(FORMULA, _table(n=120), family="bernoulli", chains=1, tune=60, draws=40,
                 seed=5, progress=False, backend="jax", device="cpu")
    assert set_to == [jax.devices("cpu")[0], before]
    assert jax.config.jax_default_device == before
    assert (placed.settings["device"], placed.settings["device_reason"]) == ("cpu", "set by user")
    assert placed.idata["posterior"]["b"].shape == (1, 40, 1)
