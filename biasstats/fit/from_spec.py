"""Fit the model a spec declares, with a content-addressed cache.

:func:`fit_spec` is the spec-driven entry point of the fit stage (``biasstats fit``, the
report). The cache key hashes the exact data the model sees, the model and sampler settings,
the versions of biasstats and its inference stack, and a digest of the source of the stages
that turn data into draws (``model/``, ``fit/``; an edited centring rule or likelihood is a
different model even under the same version number): the same key means the same numbers,
so a cached posterior (``posterior.nc``) is reused; anything changed means a refit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import polars as pl

from biasstats.errors import SpecError
from biasstats.io import write_text_atomic
from biasstats.spec import Spec

POSTERIOR_FILE = "posterior.nc"
KEY_FILE = "fit_key.json"
_VERSIONED = ("biasstats", "pymc", "pytensor", "nutpie", "arviz-base", "arviz-stats", "numpy")


def versions() -> dict[str, str]:
    out = {}
    for pkg in _VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def code_digest() -> str:
    """sha256 over the source files of biasstats.model and biasstats.fit (sorted by name)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted([*(root / "model").glob("*.py"), *(root / "fit").glob("*.py")]):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


JUDGEMENT_COLUMNS = ("item", "congruent", "valence", "group", "group_role", "raw", "reason",
                     "status")


def model_data(spec: Spec, table: pl.DataFrame) -> pl.DataFrame:
    """The rows the model sees (``[model] unit``).

    ``judgement``: the ok judgements. ``trial``: one row per trial (source row) with the
    trial's own columns, ``k`` = its congruent judgements and ``n`` = its ok judgements (for
    ``k | trials(n)`` formulas), and for IAT tables the counts a, b, c, d and the D score.
    Trials with no ok judgement have n = 0 and are left out of ``k | trials(n)`` models.
    """
    if spec.model.unit == "judgement":
        return table.filter(pl.col("status") == "ok")
    base = table.filter(pl.col("status") != "excluded")
    ok = pl.col("status") == "ok"
    own = [c for c in base.columns if c not in JUDGEMENT_COLUMNS and c != "source_row"]
    aggs = [pl.col(c).first() for c in own]
    if "congruent" in base.columns:
        aggs += [pl.col("congruent").filter(ok).sum().cast(pl.Int64).alias("k"),
                 ok.sum().cast(pl.Int64).alias("n")]
    trials = base.group_by("source_row", maintain_order=True).agg(aggs)
    if {"group_role", "valence"} <= set(base.columns):
        from biasstats.ingest.bai2024.dscore import trial_counts

        counts = trial_counts(base).drop("n_ok", strict=False)
        keys = [c for c in counts.columns if c in trials.columns]
        trials = trials.join(counts, on=keys, how="left", maintain_order="left")
    if "n" in trials.columns and "trials(n)" in spec.model.formula.replace(" ", ""):
        trials = trials.filter(pl.col("n") > 0)
    return trials


@dataclass(frozen=True)
class FitOutcome:
    fit: object
    cached: bool
    key: str
    path: Path | None


def _key(spec: Spec, prepared) -> tuple[str, dict]:
    m, f = spec.model, spec.fit
    payload = {
        "data_hash": prepared.data_hash,
        "formula": m.formula, "family": m.family, "unit": m.unit,
        "priors": dict(sorted(m.priors.items())), "centered": dict(sorted(m.centered.items())),
        **({"aux": dict(sorted(m.aux.items()))} if m.aux else {}),
        "fit": f.model_dump(), "versions": versions(), "code": code_digest(),
    }
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest(), payload


def fit_spec(spec: Spec, table: pl.DataFrame, out_dir: str | Path | None = None,
             *, refit: bool = False, progress: bool | None = None, ledger=None) -> FitOutcome:
    """Fit ``spec``'s model to ``table`` (the ingested canonical table).

    With ``out_dir``, the posterior is written there (atomically) and reused when the cache
    key matches."""
    from biasstats.fit import Fit, fit_prepared
    from biasstats.model.build import prepare

    if spec.model is None:
        raise SpecError(f"{spec.path}: no [model] table: nothing to fit")
    m, f = spec.model, spec.fit
    data = model_data(spec, table)
    prepared = prepare(m.formula, data, m.family, dict(m.priors), dict(m.centered),
                       aux=dict(m.aux))
    key, payload = _key(spec, prepared)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and not refit and (out / KEY_FILE).is_file() and (out / POSTERIOR_FILE).is_file():
        stored = json.loads((out / KEY_FILE).read_text())
        if stored.get("key") == key:
            import xarray as xr

            from biasstats.fit import flipped

            tree = xr.open_datatree(out / POSTERIOR_FILE).load()
            settings = json.loads(tree.attrs.get("biasstats_settings", "{}"))
            if settings.get("flipped"):  # the automatic refit changed one term's centring
                prepared = flipped(prepared, settings["flipped"])
            cached = Fit(idata=tree, spec=prepared, timings=stored.get("timings", {}),
                         settings=settings, ledger=ledger)
            return FitOutcome(cached, True, key, out / POSTERIOR_FILE)
    from biasstats.checks.convergence import thresholds_from

    result = fit_prepared(prepared, f, progress, thresholds=thresholds_from(spec.content.checks))
    result.ledger = ledger
    path = None
    if out is not None:
        path = result.to_netcdf(out / POSTERIOR_FILE)
        # continue from the stored (float32) draws, so this run's numbers are those a reuse of
        # the cached posterior gives
        import xarray as xr

        result.idata = xr.open_datatree(path).load()
        write_text_atomic(out / KEY_FILE, json.dumps(
            {"key": key, **payload, "timings": result.timings}, indent=2, default=str) + "\n")
    return FitOutcome(result, False, key, path)
