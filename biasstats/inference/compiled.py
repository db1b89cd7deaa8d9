"""Compile once: nutpie's compiled model, persisted across runs and processes.

nutpie compiles a PyMC model in two steps: PyTensor builds and rewrites the log density and
its gradient and compiles them with numba (PyTensor caches that on disk), then numba
compiles two C callbacks around them (the log density with its gradient, and the
"expand" function that computes the deterministics of a draw). nutpie's callbacks carry the
model's data as compile-time constants and numba will not cache them: every process paid
them again (5-12 s of a warm compile on the bench's models) and the graph work before them
(1-4 s).

Here the callbacks are generated from source with the model's **structural key** (a hash of
the model's random-variable graph: ops, constants and observed data, transforms, value
variables, plus the library versions; :func:`graph_key`) as their numba cache key, under the
biasstats cache folder (``$BIASSTATS_CACHE/compiled``). A later process that builds a model
with the same key (a refit, the next run of the same spec, a worker) loads both callbacks
and the model's layout (unconstrained size, variable shapes, initial point) without building
the gradient graph at all. A model that differs in anything that changes its log density
(data, priors, parameterisation, family) has another key.

The JAX backend (nutpie's ``backend="jax", gradient_backend="jax"``) compiles through XLA;
JAX's persistent compilation cache is pointed at the same folder (``compiled/jax``).

The initial point is the transformed support point of every free variable plus a U(-1, 1)
jitter drawn from the chain's seed (what nutpie's default asks of PyMC), computed here so a
loaded and a freshly compiled model start their chains at the same points: the same seed
gives the same draws whatever the state of the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import weakref
from pathlib import Path

import numpy as np

from biasstats.ingest.datasets import cache_dir

__all__ = ["compile_model", "graph_key", "cache_folder", "largest_constant_bytes",
           "Uncacheable", "BACKENDS"]

BACKENDS = ("numba", "jax")
#: bump when the generated callbacks or the stored layout change (old entries are ignored)
FORMAT = 1
#: compiled models kept in the cache folder (the least recently used beyond are removed)
MAX_MODELS = 300


class Uncacheable(Exception):
    """The model's graph has something the structural key cannot name reliably."""


def cache_folder() -> Path:
    """Where compiled models live: ``$BIASSTATS_CACHE/compiled`` (the download cache's
    folder, :func:`biasstats.ingest.datasets.cache_dir`)."""
    return cache_dir() / "compiled"


# ----------------------------------------------------------------------------- the key
def _array_token(a) -> str:
    a = np.ascontiguousarray(a)
    return f"{a.dtype.str}{a.shape}:{hashlib.sha256(a.tobytes()).hexdigest()}"


def _value_token(v, depth: int = 0) -> str:
    """A deterministic text for an op property (never an object address)."""
    if depth > 20:
        raise Uncacheable("op properties nested too deeply")
    if v is None or isinstance(v, (bool, int, float, str, bytes, np.number, np.dtype)):
        return repr(v)
    if isinstance(v, np.ndarray):
        return _array_token(v)
    if isinstance(v, (tuple, list)):
        return "(" + ",".join(_value_token(x, depth + 1) for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ",".join(f"{_value_token(k, depth + 1)}:{_value_token(x, depth + 1)}"
                              for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))) + "}"
    # heavy libraries load on first use
    from pytensor.graph.op import Op

    if isinstance(v, Op) or hasattr(v, "__props__") or hasattr(v, "fgraph"):
        return _op_token(v, depth + 1)
    text = repr(v)
    if " at 0x" in text or "object at" in text:
        raise Uncacheable(f"no stable name for {type(v).__name__}")
    return f"{type(v).__module__}.{type(v).__qualname__}:{text}"


def _op_token(op, depth: int = 0) -> str:
    parts = [f"{type(op).__module__}.{type(op).__qualname__}"]
    props = getattr(op, "__props__", None)
    if props:
        parts += [f"{p}={_value_token(getattr(op, p), depth + 1)}" for p in props]
    else:
        text = str(op)
        if " at 0x" in text or "object at" in text:
            raise Uncacheable(f"no stable name for op {type(op).__name__}")
        parts.append(text)
    inner = getattr(op, "fgraph", None)
    if inner is not None:
        parts.append(_graph_token(list(inner.outputs), list(inner.inputs), depth + 1))
    return "|".join(parts)


def _graph_token(outputs, inputs=(), depth: int = 0, ids: dict | None = None,
                 h=None) -> str:
    """Hash of the graph from ``inputs`` (named by position) to ``outputs``: every apply node
    in topological order as (op, input ids, output types); roots by type and, for constants,
    their data."""
    # heavy libraries load on first use
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import toposort

    own = h is None
    h = h or hashlib.sha256()
    ids = {} if ids is None else ids
    for i, v in enumerate(inputs):
        ids.setdefault(v, f"in{i}:{v.type}")

    def name(v) -> str:
        if v not in ids:
            if isinstance(v, Constant):
                ids[v] = f"const:{v.type}:{_value_token(v.data, depth + 1)}"
            elif v.owner is None:
                ids[v] = f"root:{type(v).__name__}:{v.type}:{v.name}"
        return ids[v]

    for node in toposort(outputs, blockers=inputs):
        ins = ",".join(name(v) for v in node.inputs)
        h.update(f"{_op_token(node.op, depth)}({ins})".encode())
        for j, o in enumerate(node.outputs):
            ids[o] = f"n{len(ids)}.{j}:{o.type}"
    h.update(("->" + ",".join(name(o) for o in outputs)).encode())
    return h.hexdigest() if own else ""


def _transform_token(tr) -> str:
    """A transform by its class and attributes (PyMC's transforms hold plain values)."""
    if tr is None:
        return "-"
    return f"{type(tr).__module__}.{type(tr).__qualname__}{_value_token(vars(tr))}"


def _versions() -> str:
    # heavy libraries load on first use
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("pymc", "pytensor", "nutpie", "numba", "llvmlite", "numpy", "jax", "jaxlib"):
        try:
            out.append(f"{pkg}={version(pkg)}")
        except PackageNotFoundError:
            out.append(f"{pkg}=-")
    return ";".join(out) + f";python={sys.version_info[:3]}"


_SOURCE: list[str] = []


def _source_stamp() -> str:
    """Hash of the code that writes the model (biasstats.model) and of this module: a custom
    log density (a family's ``CustomDist``) is a Python function the graph does not show."""
    if not _SOURCE:
        h = hashlib.sha256()
        pkg = Path(__file__).resolve().parents[1]
        for f in sorted([*(pkg / "model").rglob("*.py"), Path(__file__).resolve()]):
            h.update(f.read_bytes())
        _SOURCE.append(h.hexdigest())
    return _SOURCE[0]


def largest_constant_bytes(model) -> int:
    """Bytes of the largest data array in the model's graph (observed data, designs, index
    vectors)."""
    # heavy libraries load on first use
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    outputs = [*model.free_RVs, *model.observed_RVs, *model.potentials, *model.deterministics,
               *(model.rvs_to_values[rv] for rv in model.observed_RVs)]
    return max((int(getattr(v.data, "nbytes", 0)) for v in ancestors(outputs)
                if isinstance(v, Constant)), default=0)


def graph_key(model, backend: str) -> str:
    """The structural key of a PyMC model: a hash of its random variables, observed data,
    potentials and deterministics (their whole graphs, constants by content), each free
    variable's transform and initial-value setting, and the versions of the libraries that
    compile it. Raises :class:`Uncacheable` when some op has no stable description."""
    # heavy libraries load on first use
    import pytensor

    h = hashlib.sha256()
    h.update(f"format={FORMAT};source={_source_stamp()};backend={backend};{_versions()};floatX="
             f"{pytensor.config.floatX};check_bounds={model.check_bounds}".encode())
    ids: dict = {}
    outputs = [*model.free_RVs, *model.observed_RVs, *model.potentials, *model.deterministics]
    _graph_token(outputs, (), 0, ids, h)
    for rv in model.free_RVs:
        tr = model.rvs_to_transforms.get(rv)
        init = model.rvs_to_initial_values.get(rv)
        init = _graph_token([init]) if hasattr(init, "owner") else _value_token(init)
        h.update(f"free {rv.name} {ids[rv]} value={model.rvs_to_values[rv].type} "
                 f"transform={_transform_token(tr)} init={init}".encode())
    for rv in model.observed_RVs:
        val = model.rvs_to_values[rv]
        h.update(f"obs {rv.name} {ids[rv]} {_graph_token([val])}".encode())
    for v in (*model.potentials, *model.deterministics):
        h.update(f"out {v.name} {ids[v]}".encode())
    return h.hexdigest()[:32]


# ----------------------------------------------------------------------------- numba's cache
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCATOR_ADDED = False


def _add_locator() -> None:
    """Put biasstats' callbacks in its cache folder, keyed by their structural key (numba's
    own locators need a source file; these are generated from text)."""
    global _LOCATOR_ADDED
    if _LOCATOR_ADDED:
        return
    # heavy libraries load on first use
    from numba.core.caching import CacheImpl, _CacheLocator

    class CompiledModelLocator(_CacheLocator):
        def __init__(self, py_func, py_file, key):
            self._py_func, self._py_file, self._key = py_func, py_file, key

        def ensure_cache_path(self):
            path = self.get_cache_path()
            os.makedirs(path, exist_ok=True)

        def get_cache_path(self):
            return str(cache_folder() / "numba")

        def get_source_stamp(self):
            return FORMAT

        def get_disambiguator(self):
            return self._key

        @classmethod
        def from_function(cls, py_func, py_file):
            key = _KEYS.get(py_func)
            return None if key is None else cls(py_func, py_file, key)

    CacheImpl._locator_classes.insert(0, CompiledModelLocator)
    _LOCATOR_ADDED = True


_LOGP_SRC = """
def logp_{tag}(dim, x_, out_, logp_, user_data_):
    if dim != {n}:
        return -1
    try:
        x = carray(x_, ({n},))
        out = carray(out_, ({n},))
        logp = carray(logp_, ())
        logp_val, grad = inner(x)
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND_SRC = """
def expand_{tag}(dim, expanded, x_, out_, user_data_):
    if dim != {n}:
        return -1
    if expanded != {m}:
        return -1
    try:
        x = carray(x_, ({n},))
        out = carray(out_, ({m},))
        (values,) = inner(x)
        out[...] = values
    except Exception:
        return -2
    return 0
"""


def _callback(src: str, name: str, key: str, inner, sig):
    """A numba C callback from ``src`` whose cache entry is ``key``. ``inner`` None: load it
    from the cache (None when it is not there or cannot be read); else compile it around
    ``inner`` and save it."""
    # heavy libraries load on first use
    import numba
    from numba.core import registry
    from numba.core.ccallback import CFunc
    from numba.core.compiler_lock import global_compiler_lock

    _add_locator()
    # __name__: numba rebuilds a cached function's environment from an importable module
    env = {"__name__": __name__, "carray": numba.carray, "np": np, "inner": inner}
    exec(compile(src, "biasstats-model", "exec"), env)  # our own template
    fn = env[name]
    _KEYS[fn] = key
    cf = CFunc(fn, (sig.args, sig.return_type), locals={}, options={})
    cf.enable_caching()
    with global_compiler_lock:
        if inner is None:
            try:
                cres = cf._cache.load_overload(cf._sig, registry.cpu_target.target_context)
            except Exception:  # noqa: BLE001 - an unreadable entry is a miss, compiled again
                cres = None
            if cres is None:
                return None
        else:
            cres = cf._compile_uncached()
            if not cres.library.has_dynamic_globals:  # else numba refuses (with a warning)
                cf._cache.save_overload(cf._sig, cres)
        cf._library = cres.library
        cf._wrapper_name = cres.fndesc.llvm_cfunc_wrapper_name
        cf._wrapper_address = cf._library.get_pointer_to_function(cf._wrapper_name)
    return cf


def _signatures():
    # heavy libraries load on first use
    from numba import types

    logp = types.int64(types.uint64, types.CPointer(types.double),
                       types.CPointer(types.double), types.CPointer(types.double), types.voidptr)
    expand = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                         types.CPointer(types.double), types.voidptr)
    return logp, expand


def _layout_path(key: str) -> Path:
    return cache_folder() / f"{key}.json"


def _write_layout(key: str, layout: dict) -> None:
    path = _layout_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(layout))
    os.replace(tmp, path)
    _evict(path.parent)


def _evict(folder: Path, keep: int | None = None) -> None:
    """Keep the ``keep`` (:data:`MAX_MODELS`) most recently used compiled models: the
    folder grows by about 1.5 MB a model (a test suite compiles ~90)."""
    keep = MAX_MODELS if keep is None else keep
    try:  # another process may evict at the same time: a vanished file is no error
        layouts = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in layouts[keep:]:
            for f in [old, *(folder / "numba").glob(f"*{old.stem}*")]:
                f.unlink(missing_ok=True)
    except OSError:
        pass


def _read_layout(key: str) -> dict | None:
    path = _layout_path(key)
    try:
        layout = json.loads(path.read_text())
        os.utime(path)  # used now (the eviction keeps the most recently used)
    except (OSError, ValueError):
        return None
    return layout if layout.get("format") == FORMAT else None


def _initial_point_fn(start: np.ndarray):
    """nutpie's initial point: the transformed support point plus U(-1, 1) jitter per
    element, from the chain's seed."""
    start = np.asarray(start, dtype=np.float64)

    def initial_point(seed=None):
        rng = np.random.default_rng(seed)
        return start + rng.uniform(-1.0, 1.0, size=start.shape)

    return initial_point


def _support_point(model, names: list[str], shapes: list) -> np.ndarray:
    # heavy libraries load on first use
    from pymc.initial_point import make_initial_point_fn

    point = make_initial_point_fn(model=model, jitter_rvs=set(), return_transformed=True)(0)
    return np.concatenate([np.asarray(point[n], dtype=np.float64).reshape(-1)
                           for n in names]) if names else np.zeros(0)


def _fresh_numba(model, key: str, var_names):
    """Build the gradient graph (nutpie's own ``_make_functions``), compile and cache the two
    callbacks, store the layout; return (layout, logp callback, expand callback)."""
    # heavy libraries load on first use
    from nutpie.compile_pymc import _make_functions

    (n_dim, n_expanded, logp_pt, expand_pt, _init, shape_info,
     reparam) = _make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=True,
                                pymc_initial_point_fn=lambda seed: {},
                                var_names=var_names)
    if logp_pt.get_shared() or expand_pt.get_shared():
        raise Uncacheable("the model has shared variables")
    names, slices, shapes = shape_info
    n_free = len(model.free_RVs)
    layout = {"format": FORMAT, "n_dim": int(n_dim), "n_expanded": int(n_expanded),
              "names": list(names), "slices": [[int(s.start), int(s.stop)] for s in slices],
              "shapes": [[int(d) for d in s] for s in shapes],
              "reparameterized": list(reparam),
              "start": _support_point(model, list(names[:n_free]), shapes[:n_free]).tolist()}
    sig_logp, sig_expand = _signatures()
    tag = key[:16]
    logp = _callback(_LOGP_SRC.format(tag=tag, n=n_dim), f"logp_{tag}", key,
                     logp_pt.vm.jit_fn, sig_logp)
    expand = _callback(_EXPAND_SRC.format(tag=tag, n=n_dim, m=n_expanded), f"expand_{tag}",
                       key, expand_pt.vm.jit_fn, sig_expand)
    if logp._library.has_dynamic_globals or expand._library.has_dynamic_globals:
        return layout, logp, expand, ("compiled, not cacheable: data arrays above numba's "
                                      "1 MB constant limit")
    _write_layout(key, layout)
    return layout, logp, expand, "compiled"


def _cached_numba(key: str):
    layout = _read_layout(key)
    if layout is None:
        return None
    sig_logp, sig_expand = _signatures()
    tag, n, m = key[:16], layout["n_dim"], layout["n_expanded"]
    logp = _callback(_LOGP_SRC.format(tag=tag, n=n), f"logp_{tag}", key, None, sig_logp)
    expand = _callback(_EXPAND_SRC.format(tag=tag, n=n, m=m), f"expand_{tag}", key, None,
                       sig_expand) if logp is not None else None
    if logp is None or expand is None:
        return None
    return layout, logp, expand, "loaded"


def _compile_numba(model, key: str, var_names) -> tuple[object, str]:
    # heavy libraries load on first use
    import pytensor
    from nutpie.compile_pymc import CompiledPyMCModel, _prepare_dims_and_coords, make_user_data

    cached = _cached_numba(key)
    if cached is None:
        with pytensor.config.change_flags(numba__fastmath=False):
            cached = _fresh_numba(model, key, var_names)
    layout, logp, expand, state = cached
    names, shapes = layout["names"], [tuple(s) for s in layout["shapes"]]
    shape_info = (names, [slice(a, b) for a, b in layout["slices"]], shapes)
    dims, coords = _prepare_dims_and_coords(model, shape_info, layout["reparameterized"])
    compiled = CompiledPyMCModel(
        _n_dim=layout["n_dim"], dims=dims, _coords=coords,
        _shapes={nm: tuple(s) for nm, s in zip(names, shapes, strict=True)},
        compiled_logp_func=logp, compiled_expand_func=expand,
        initial_point_func=_initial_point_fn(np.asarray(layout["start"])),
        shared_data={}, shared_var_keys={}, user_data=make_user_data({}, {}),
        n_expanded=layout["n_expanded"], shape_info=shape_info, logp_func=None,
        expand_func=None, reparameterized_names=layout["reparameterized"])
    return compiled, state


# ----------------------------------------------------------------------------- JAX
def use_jax_cache() -> Path:
    """Point JAX's persistent compilation cache at ``compiled/jax`` (every compile kept)."""
    # heavy libraries load on first use
    import jax

    folder = cache_folder() / "jax"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return folder


def _compile_jax(model, var_names):
    # heavy libraries load on first use
    import nutpie

    use_jax_cache()
    compiled = nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax",
                                         var_names=var_names)
    # JAX compiles (or loads from its cache) on the first call: made here, so that it counts
    # as compile time, not sampling
    x = compiled._make_initial_points(0)
    compiled._make_logp_func()(x, **compiled._shared_data)
    compiled._make_expand_func(0, 0, 0)(x, **compiled._shared_data)
    return compiled


# ----------------------------------------------------------------------------- entry point
def compile_model(model, backend: str = "numba", var_names=None) -> tuple[object, dict]:
    """nutpie's compiled ``model`` with ``backend`` ("numba" or "jax"), from the cache when
    its structural key is there; returns (compiled model, info): ``backend``, ``cache``
    ("loaded", "compiled", or "off: <why>"), ``key`` and ``compile_s``."""
    # heavy libraries load on first use
    import nutpie

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    t0 = time.perf_counter()
    if backend == "jax":
        compiled = _compile_jax(model, var_names)
        return compiled, {"backend": "jax", "cache": "JAX persistent cache",
                          "compile_s": time.perf_counter() - t0}
    try:
        key = graph_key(model, backend)
        if var_names is not None:  # the deterministics kept in the trace
            key = hashlib.sha256(f"{key}{sorted(var_names)}".encode()).hexdigest()[:32]
        compiled, state = _compile_numba(model, key, var_names)
    except (Uncacheable, ImportError) as e:  # ImportError: another nutpie layout
        # heavy libraries load on first use
        import pytensor

        with pytensor.config.change_flags(numba__fastmath=False):
            compiled = nutpie.compile_pymc_model(model, var_names=var_names)
        key, state = None, f"off: {e}"
    return compiled, {"backend": "numba", "cache": state, "key": key,
                      "compile_s": time.perf_counter() - t0}
