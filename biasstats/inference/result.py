"""The :class:`Fit` object returned by :func:`biasstats.inference.fit`."""

from __future__ import annotations

import json
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from biasstats.inference.convergence import divergence_hint, locate_divergences
from biasstats.inference.predict import hdi, posterior_epred, posterior_linpred
from biasstats.io import atomic_path
from biasstats.model.data import to_polars
from biasstats.model.sufficient import count_stats

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Fit", "PriorTable"]


def _stored_as_float32(da) -> bool:
    return da.ndim > 0 and da.dtype == np.float64


def stored_precision(tree):
    """``tree`` with every array :func:`netcdf_encoding` stores as float32 cast to float32 in
    memory: the numbers a run computes from its fresh draws (gate, summary, effects) are then
    the numbers a later run computes from the stored posterior, and a reload of what was just
    written changes nothing (the results computed before it are kept, see
    :meth:`Fit.replace_draws`)."""
    for node in tree.subtree:
        ds = node.dataset
        cast = {k: da.astype(np.float32) for k, da in ds.data_vars.items()
                if _stored_as_float32(da)}
        if cast:
            node.dataset = ds.assign(cast)
    return tree


def netcdf_encoding(tree) -> dict:
    """Per-group encoding: draws stored as float32 (7 significant digits, more than any Monte
    Carlo error), every array zlib-compressed (level 4) with the byte shuffle filter."""
    enc = {}
    for node in tree.subtree:
        ds = node.dataset
        per = {}
        for name, da in ds.data_vars.items():
            if da.ndim == 0 or da.dtype.kind not in "fiub":
                continue
            e = {"zlib": True, "complevel": 4, "shuffle": True}
            if _stored_as_float32(da):
                e["dtype"] = "float32"
            per[name] = e
        if per:
            enc[node.path] = per
    return enc


# HDF5 strings end at a NUL: a level name holding one could not be written. Such strings
# (coordinate values: level names; any text variable) are stored with NUL as "%00" and "%" as
# "%25"; the root attribute lists them per group, and read_posterior restores them.
NUL_ATTR = "biasstats_nul_escaped"
_UNESCAPE = re.compile("%(00|25)")


def _escape_nul(text: str) -> str:
    return text.replace("%", "%25").replace("\x00", "%00")


def _unescape_nul(text: str) -> str:
    return _UNESCAPE.sub(lambda m: "\x00" if m.group(1) == "00" else "%", text)


def _map_text(var, fn):
    # heavy libraries load on first use, not on import
    import xarray as xr

    flat = [fn(str(x)) for x in np.asarray(var.values).ravel()]
    values = np.empty(len(flat), dtype=object)  # object: numpy's "U" drops a trailing NUL
    values[:] = flat
    return xr.Variable(var.dims, values.reshape(var.shape), var.attrs)


def escape_nul(tree) -> None:
    """Make ``tree`` (in place) writable to HDF5: the text variables and coordinates holding
    a NUL are escaped (``%00``; ``%`` as ``%25``), and listed in the root attribute
    ``biasstats_nul_escaped``. Nothing else changes; a tree without NUL is left as it is."""
    escaped: dict[str, list[str]] = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        names = [str(k) for k, v in ds.variables.items() if v.dtype.kind in "OUS"
                 and any("\x00" in str(x) for x in np.asarray(v.values).ravel())]
        if not names:
            continue
        coords = {k: _map_text(ds.variables[k], _escape_nul) for k in names if k in ds.coords}
        data = {k: _map_text(ds.variables[k], _escape_nul) for k in names if k not in coords}
        node.dataset = ds.assign_coords(coords).assign(data)
        escaped[node.path] = names
    if escaped:
        tree.attrs = {**tree.attrs, NUL_ATTR: json.dumps(escaped, sort_keys=True)}


def unescape_nul(tree) -> None:
    """Undo :func:`escape_nul` on a tree read back (in place)."""
    listed = tree.attrs.get(NUL_ATTR)
    if not listed:
        return
    for path, names in json.loads(listed).items():
        node = tree[path]
        ds = node.to_dataset(inherit=False)
        coords = {k: _map_text(ds.variables[k], _unescape_nul) for k in names if k in ds.coords}
        data = {k: _map_text(ds.variables[k], _unescape_nul) for k in names if k not in coords}
        node.dataset = ds.assign_coords(coords).assign(data)
    tree.attrs = {k: v for k, v in tree.attrs.items() if k != NUL_ATTR}


def write_bytes(path: Path, data) -> None:
    """Write ``data`` (bytes) to ``path`` in 1 MiB pieces."""
    view = memoryview(data)
    with open(path, "wb") as fh:
        for start in range(0, len(view), 1 << 20):
            fh.write(view[start:start + (1 << 20)])


def read_posterior(path: str | os.PathLike):
    """The DataTree :meth:`Fit.to_netcdf` wrote, loaded into memory (the file is closed),
    with its level names as they were (:func:`unescape_nul`)."""
    # heavy libraries load on first use, not on import
    import xarray as xr

    with xr.open_datatree(path) as stored:
        tree = stored.load()
    unescape_nul(tree)
    return tree


def _same_values(a, b) -> bool:
    """Whether two DataTrees hold the same groups, variables and numeric values (dtype
    included)."""
    na = {n.path: n.dataset for n in a.subtree}
    nb = {n.path: n.dataset for n in b.subtree}
    if na.keys() != nb.keys():
        return False
    for path, da in na.items():
        db = nb[path]
        if set(da.data_vars) != set(db.data_vars):
            return False
        for k, v in da.data_vars.items():
            w = db[k]
            if v.dtype.kind not in "fiub" or w.dtype.kind not in "fiub":
                continue  # text (a sampler's messages): no memoised result reads it
            if v.dtype != w.dtype or v.shape != w.shape or not np.array_equal(
                    v.values, w.values, equal_nan=v.dtype.kind == "f"):
                return False
    return True


class PriorTable(dict):
    """The priors actually used (key -> Prior); prints as an aligned table."""

    def __str__(self) -> str:
        if not self:
            return "(no priors)"
        w = max(len(k) for k in self)
        return "\n".join(f"{k:<{w}}  {v}" for k, v in self.items())

    def as_strings(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.items()}



@contextmanager
def quiet():
    """Numerical warnings of the diagnostics (a constant draw's R-hat divides by zero) kept
    from the terminal: the numbers themselves (inf, nan) say it, and the gate reads them."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield

@dataclass
class Fit:
    """A fitted model.

    ``idata``       xarray DataTree: posterior, posterior_predictive, log_likelihood,
                    observed_data, sample_stats (and constant_data). For bernoulli/binomial
                    families the observed, predicted and log-likelihood values are per
                    *cell* (unique covariate pattern, see ``spec.cells``), so LOO leaves one
                    cell out.
    ``spec``        the :class:`~biasstats.model.design.ModelSpec` (design, levels, cells)
    ``model``       the PyMC model (None for a posterior read back from the cache)
    ``timings``     seconds spent (compile+sample, post-processing)
    ``ledger``      the ingest ledger of the data, when fitted from a spec
    """

    idata: Any
    spec: Any
    model: Any = None
    timings: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    ledger: Any = None  # the ingest Ledger when fitted from a spec (biasstats.inference.from_spec)
    # results computed once per posterior (summary, PSIS-LOO, the linear predictor): emptied
    # whenever the draws are replaced (see __setattr__)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def __setattr__(self, name, value):
        if name == "idata" and "_memo" in self.__dict__:
            self.__dict__["_memo"].clear()
        super().__setattr__(name, value)

    def replace_draws(self, idata) -> None:
        """Take ``idata`` (the posterior as stored and read back); the results computed so
        far are kept when every array holds the same values (:func:`stored_precision` made
        sure of it), recomputed on demand otherwise."""
        kept = dict(self._memo) if _same_values(self.idata, idata) else {}
        self.idata = idata
        self._memo.update(kept)

    def memo(self, key, compute):
        """``compute()`` once per posterior: the second asker gets the first one's result
        (the summary and gate, PSIS-LOO and the linear predictor are read by several stages)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def formula(self) -> str:
        """The formula as given (normalised whitespace)."""
        return self.spec.formula.formula

    @property
    def family(self) -> str:
        return self.spec.family.name

    @property
    def priors(self) -> PriorTable:
        """The priors used (defaults and overrides)."""
        return PriorTable(self.spec.priors)

    @property
    def data_hash(self) -> str:
        """sha256 of the data used (referenced columns, rows after dropping missing)."""
        return self.spec.data_hash

    # ------------------------------------------------------------------ summaries
    def param_names(self) -> list[str]:
        """Posterior variables a user reads (basis helpers ``z_*``/``u_*`` left out; in a
        joint model's parts too: ``<part>::z_*``)."""
        return [v for v in self.idata.posterior.data_vars
                if not str(v).rpartition("::")[2].startswith(("z_", "u_"))]

    def summary(self, var_names: list[str] | None = None, ci_prob: float = 0.95) -> pd.DataFrame:
        """mean, sd, 95% HDI, ess_bulk, ess_tail, r_hat (and MCSE) of every parameter."""
        # heavy libraries load on first use, not on import
        import arviz_stats as azs

        def compute():
            with quiet():
                return azs.summary(self.idata, var_names=var_names or self.param_names(),
                                   ci_prob=ci_prob, ci_kind="hdi", round_to="none")

        if var_names is not None:
            return compute()
        return self.memo(("summary", ci_prob), compute).copy()

    def linpred(self, newdata, *, new_levels: str = "sample", seed: int = 0) -> np.ndarray:
        """Draws (S, rows) of the linear predictor for ``newdata`` (brms' posterior_linpred);
        see :func:`biasstats.inference.predict.posterior_linpred`."""

        return posterior_linpred(self, newdata, new_levels=new_levels, seed=seed)

    def epred(self, newdata, *, new_levels: str = "sample", seed: int = 0) -> np.ndarray:
        """Draws (S, rows) of the expected response for ``newdata`` (brms' posterior_epred):
        P(congruent) for the binomial families; see
        :func:`biasstats.inference.predict.posterior_epred`."""

        return posterior_epred(self, newdata, new_levels=new_levels, seed=seed)

    def predict(self, newdata, *, new_levels: str = "sample", seed: int = 0,
                prob: float = 0.95):
        """``newdata`` (polars) with the posterior mean, sd and ``prob`` HDI of the expected
        response per row (columns ``mean``, ``sd``, ``hdi_low``, ``hdi_high``)."""
        d = self.epred(newdata, new_levels=new_levels, seed=seed)
        h = hdi(d, prob)
        return to_polars(newdata).with_columns(
            pl.Series("mean", d.mean(axis=0)), pl.Series("sd", d.std(axis=0, ddof=1)),
            pl.Series("hdi_low", h[:, 0]), pl.Series("hdi_high", h[:, 1]))

    def diagnostics(self, summary: pd.DataFrame | None = None) -> dict:
        """max R-hat, min bulk/tail ESS, divergences, BFMI per chain.

        R-hat and ESS are read off ``summary`` (:meth:`summary`'s table; computed when not
        given, so a caller that needs both computes them once)."""
        # heavy libraries load on first use, not on import
        import arviz_stats as azs

        s = self.summary() if summary is None else summary
        post = self.idata.posterior

        ss = self.idata.sample_stats
        div = int(ss["diverging"].sum()) if "diverging" in ss else 0
        with quiet():
            bfmi = np.asarray(azs.bfmi(self.idata.sample_stats.to_dataset()["energy"]).values)
        out = {
            "max_rhat": float(s["r_hat"].max()),
            "min_ess_bulk": float(s["ess_bulk"].min()),
            "min_ess_tail": float(s["ess_tail"].min()),
            "divergences": div,
            "bfmi": [float(x) for x in np.atleast_1d(bfmi)],
            "chains": int(post.sizes["chain"]),
            "draws": int(post.sizes["draw"]),
        }
        if div and self.spec is not None:

            out["divergence_hint"] = divergence_hint(locate_divergences(
                self.idata, {g.name: g.centered for g in self.spec.groups}),
                target_accept=self.settings.get("target_accept"))
        if self.timings.get("sampling_s"):
            out["sampling_s"] = round(self.timings["sampling_s"], 2)
            out["min_ess_bulk_per_s"] = out["min_ess_bulk"] / self.timings["sampling_s"]
        return out

    # ------------------------------------------------------------------ persistence
    def to_netcdf(self, path: str | os.PathLike, *, durable: bool = False) -> Path:
        """Write the DataTree atomically (tmp file in the same folder, then os.replace);
        ``durable``: kept even when the run writing it fails later
        (:func:`biasstats.io.atomic_path`).

        The file opens with plain ``xarray.open_datatree`` / ArviZ; the formula, family,
        priors, data hash and centring decisions are stored as root attributes. Draws are
        stored as float32 and compressed (:func:`netcdf_encoding`). Text holding a NUL (a
        level name) is stored escaped (:func:`escape_nul`); :func:`read_posterior` restores it.
        """
        tree = self.idata.copy()
        if self.spec is not None:

            if count_stats(self.spec) is not None:
                # recomputed from the draws on load (biasstats.inference.sample.derived_groups)
                for group in ("log_likelihood", "posterior_predictive"):
                    if group in tree.children:
                        del tree[group]
        meta = {
            "biasstats_formula": self.formula,
            "biasstats_family": self.family,
            "biasstats_priors": json.dumps(self.priors.as_strings()),
            "biasstats_data_hash": self.data_hash,
            "biasstats_settings": json.dumps(self.settings, default=str),
        }
        if self.spec is not None:
            meta["biasstats_centring"] = json.dumps(self.spec.describe_centring())
            meta["biasstats_collapsed"] = int(bool(self.spec.collapsed))
        tree.attrs = {**tree.attrs, **meta}
        escape_nul(tree)  # a level name with a NUL: HDF5 would refuse it
        # HDF5 writes the file in memory; Python writes the bytes. A write that fails (a
        # full disk) then ends with the temporary file removed, and HDF5 never touches it
        # again: an HDF5 file left open after a failed write is flushed again when it is
        # collected, fails again, and can end the process with a segfault.
        # bytes, not xarray's memoryview of its BytesIO: a memoryview kept alive in a
        # reference cycle (an exception's frames) past its BytesIO crashes the collector
        image = bytes(tree.to_netcdf(None, engine="h5netcdf", encoding=netcdf_encoding(tree)))
        with atomic_path(path, durable=durable) as tmp:
            write_bytes(tmp, image)
        return Path(path)

    def __repr__(self) -> str:
        d = self.idata.posterior.sizes
        return (f"Fit(formula='{self.formula}', family='{self.family}', "
                f"chains={d.get('chain')}, draws={d.get('draw')})")
