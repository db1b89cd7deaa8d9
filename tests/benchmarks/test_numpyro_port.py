"""The bench's NumPyro contestant samples biasstats' posterior: at random points of the
unconstrained space, NumPyro's log density (transforms' Jacobians included) equals the PyMC
model's, for every bench model (tiny data)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numpyro")
pytest.importorskip("jax")

sys.path.insert(0, str(Path(__file__).parent))

from bench_models import MODELS, build, estimands  # noqa: E402


def _numpyro_name(value_name: str) -> str:
    """PyMC's value variable -> the NumPyro site holding the same unconstrained numbers."""
    name = value_name
    for suffix in ("_log__", "_zerosum__"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.startswith("u_"):                      # a centred nested term's basis coefficients
        return "r_raw_" + name[2:]
    if name.startswith("r_"):                      # a centred ZeroSumNormal
        return "r_raw_" + name[2:]
    return name


@pytest.mark.parametrize("name", MODELS)
def test_same_log_density(name):
    import jax
    import numpyro  # noqa: F401
    from numpyro.infer.util import potential_energy

    jax.config.update("jax_enable_x64", True)
    from numpyro_port import model_and_data

    from biasstats.model.graph import build_model

    bench = build(name, "tiny")
    model, data = model_and_data(bench.spec)
    pm_model = build_model(bench.spec)
    logp = pm_model.compile_logp(jacobian=True)
    start = pm_model.initial_point()
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in start.items()}
        ours = -float(potential_energy(model, (), data,
                                       {_numpyro_name(k): v for k, v in point.items()}))
        assert ours == pytest.approx(float(logp(point)), rel=1e-9, abs=1e-7)


@pytest.mark.parametrize("name", ["additive", "categorical"])
def test_estimands_read_both_posteriors_alike(name):
    """The PyMC model's deterministic r_* and the NumPyro port's give the same estimands for
    the same unconstrained point."""
    import jax
    from numpyro.infer.util import constrain_fn

    jax.config.update("jax_enable_x64", True)
    from numpyro_port import model_and_data

    from biasstats.model.graph import build_model

    bench = build(name, "tiny")
    model, data = model_and_data(bench.spec)
    pm_model = build_model(bench.spec)
    point = {k: v + 0.2 for k, v in pm_model.initial_point().items()}
    # constrained values and deterministics of a point (not the transformed values)
    free = [v for v in pm_model.unobserved_value_vars if not v.name.endswith("__")]
    outs = [v.name for v in free]
    vals = pm_model.compile_fn(free, inputs=pm_model.value_vars, on_unused_input="ignore")(point)
    ours = constrain_fn(model, (), data, {_numpyro_name(k): v for k, v in point.items()},
                        return_deterministic=True)
    a = estimands({k: np.asarray(v)[None, None] for k, v in zip(outs, vals, strict=True)},
                  bench.spec)
    b = estimands({k: np.asarray(v)[None, None] for k, v in ours.items()}, bench.spec)
    assert set(a) == set(b) and "eta" in a
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-12)
