"""Fit the model a spec declares, with a content-addressed cache.

:func:`fit_spec` is the spec-driven entry point of the fit stage (``biasstats fit``, the
report). The cache key hashes the exact data the model sees, the model and sampler settings,
the versions of biasstats and its inference stack, and a digest of the source of the stages
that turn data into draws (``model/``, ``fit/``; an edited centring rule or likelihood is a
different model even under the same version number): the same key means the same numbers,
so a cached posterior (``posterior.nc``) is reused; anything changed means a refit.

The cache is one atomic unit: the key (and the payload it hashes) is stored in the NetCDF
file's own root attributes, and the file is written to a temporary name and renamed into
place, so a posterior and its key can never disagree. Before reuse the file is opened and
verified (same key, a posterior group of the expected chains x draws); anything else — a
missing or unreadable file, another key, a truncated posterior — means a refit.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import polars as pl

from biasstats import registry
from biasstats.errors import BiasstatsError, DataError, SpecError
from biasstats.inference import Fit, fit_prepared, flipped
from biasstats.inference.convergence import thresholds_from
from biasstats.inference.result import read_posterior, unescape_nul
from biasstats.inference.sample import derived_groups
from biasstats.ingest.schema import NOT_TRIALS
from biasstats.io import OutputError
from biasstats.limits import MAX_MAGNITUDE
from biasstats.model.build import prepare
from biasstats.model.design import model_factors
from biasstats.model.families import get_family
from biasstats.model.formula import parse_formula
from biasstats.spec import Spec

POSTERIOR_FILE = "posterior.nc"
KEY_ATTR = "biasstats_fit_key"            # root attribute of posterior.nc: the cache key
PAYLOAD_ATTR = "biasstats_fit_key_payload"  # what the key hashes (JSON, for humans)
TIMINGS_ATTR = "biasstats_timings"
_VERSIONED = ("biasstats", "pymc", "pytensor", "nutpie", "arviz-base", "arviz-stats", "numpy")


def versions(packages=_VERSIONED) -> dict[str, str]:
    """The installed version of each of ``packages`` (default: what the cache key names)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def code_digest() -> str:
    """sha256 over the source files of biasstats.model and biasstats.inference (sorted by
    their path inside the package)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = [*(root / "model").rglob("*.py"), *(root / "inference").rglob("*.py")]
    for f in sorted(files, key=lambda f: f.relative_to(root).as_posix()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


JUDGEMENT_COLUMNS = ("item", "congruent", "valence", "group", "group_role", "raw", "reason",
                     "status")


def model_data(spec: Spec, table: pl.DataFrame) -> pl.DataFrame:
    """The rows the model sees (``[model] unit``).

    ``judgement``: the ok judgements (and those of the statuses ``[data] include`` names:
    refused rows, for a model of the ``refused`` column). ``trial``: one row per trial (source row) with the
    trial's own columns, ``k`` = its congruent judgements and ``n`` = its ok judgements (for
    ``k | trials(n)`` formulas), and for IAT tables the counts a, b, c, d and the D score.
    Trials with no ok judgement have n = 0 and are left out of ``k | trials(n)`` models.
    """
    if spec.model.unit == "judgement":
        keep = ["ok", *(spec.data.include if spec.data is not None else [])]
        return table.filter(pl.col("status").is_in(keep))
    base = table.filter(~pl.col("status").is_in(NOT_TRIALS))
    ok = pl.col("status") == "ok"
    # a trial's own columns: every column constant within its source row (judgement-level
    # columns such as a Bai table's valence or word vary within a trial and are summarised
    # as k and n; a user's tidy column named "group" or "item" is the trial's own and kept)
    cand = [c for c in base.columns if c in JUDGEMENT_COLUMNS]
    varying = set()
    if cand:
        counts = base.group_by("source_row").agg(pl.col(c).n_unique() for c in cand)
        varying = {c for c in cand if counts[c].max() > 1}
    varying |= {"congruent", "status", "reason", "refused"}  # summarised per trial
    own = [c for c in base.columns if c not in varying and c != "source_row"]
    aggs = [pl.col(c).first() for c in own]
    if "refused" in base.columns:  # a trial with an ok row answered; else refused if any is
        aggs.append(pl.when(ok.any()).then(0).when((pl.col("status") == "refused").any())
                    .then(1).otherwise(None).cast(pl.Int64).alias("refused"))
    if "congruent" in base.columns:
        aggs += [pl.col("congruent").filter(ok).sum().cast(pl.Int64).alias("k"),
                 ok.sum().cast(pl.Int64).alias("n")]
    trials = base.group_by("source_row", maintain_order=True).agg(aggs)

    for per_trial in registry.trial_aggregations():  # a study's own per-trial columns
        counts = per_trial(base)
        if counts is None:
            continue
        # the canonical refused column is aggregated above (read off the status)
        counts = counts.drop("refused", strict=False)
        keys = [c for c in counts.columns if c in trials.columns]
        trials = trials.join(counts, on=keys, how="left", maintain_order="left")
    if "n" in trials.columns and "trials(n)" in spec.model.formula.replace(" ", ""):
        trials = trials.filter(pl.col("n") > 0)
    return trials


def _spec_key(message: str, formula_key: str = "[model] formula") -> str:
    """The spec key a fit-stage error message is about."""
    if message.startswith(("prior", "unknown prior key")):
        return "[model.priors]"
    if message.startswith("centered"):
        return "[model.centered]"
    if message.startswith(("unknown family", "family ")):
        return "[model] family"
    return formula_key


@contextmanager
def _named(spec: Spec, formula_key: str = "[model] formula"):
    """Fit-stage user errors name the spec file and the key: ``<spec>: [model] formula: ...``."""
    try:
        yield
    except BiasstatsError as e:
        msg = str(e)
        if msg.startswith(str(spec.path)) or isinstance(e, OutputError):
            raise  # named already, or not about the spec (a full disk)
        where = "" if msg.startswith("[") else f"{_spec_key(msg, formula_key)}: "
        raise type(e)(f"{spec.path}: {where}{msg.removeprefix('centered: ')}") from None


_NAME = re.compile(r"`([^`]+)`|([A-Za-z_][A-Za-z0-9_.]*)")


def check_finite(spec: Spec, data: pl.DataFrame, ledger=None) -> None:
    """Every numeric column the formula names holds finite numbers (NaN counts as missing)
    within ±:data:`biasstats.limits.MAX_MAGNITUDE`: else a one-line DataError naming the
    data, the column, how many rows and the largest value, before any default prior is
    computed from it."""
    named = {a or b for a, b in _NAME.findall(spec.model.formula)}
    source = getattr(ledger, "source", None) or (
        spec.data.source if spec.data is not None else "the simulated data")
    for col in data.columns:
        if col not in named or not data[col].dtype.is_numeric():
            continue
        values = data[col].cast(pl.Float64)
        bad = int(values.is_infinite().sum())
        if bad:
            raise DataError(
                f"{spec.path}: [model] formula uses column '{col}', which holds {bad} infinite "
                f"value{'s' if bad > 1 else ''} (of {data.height} rows) in {source}; expected "
                "finite numbers (fix the data or drop those rows with [data] filters)")
        big = values.abs() > MAX_MAGNITUDE
        if big.any():
            n = int(big.sum())
            over = values.filter(big)
            largest = float(over.gather(over.abs().arg_max()).item())
            raise DataError(
                f"{spec.path}: [model] formula uses column '{col}', which holds {n} value"
                f"{'s' if n > 1 else ''} too large for a model (of {data.height} rows, the "
                f"largest {largest:.3g}) in {source}; expected magnitudes up to "
                f"{MAX_MAGNITUDE:.3g} (2^53): rescale it with [data.derive] (e.g. "
                f"'{col} / 1e6') or drop those rows with [data] filters")


def check_factor_names(prepared) -> None:
    """No factor's name holds ':', which separates the factors of an interaction everywhere
    a term is named (``llm:condition`` in ``[effects] by``, the estimands, the report): a
    one-line SpecError before anything is sampled, not a failure after."""

    factors, _, _, _ = model_factors(prepared)
    factors += [f for g in prepared.groups for f in g.term.factors]
    for name in dict.fromkeys(factors):
        if ":" in name:
            raise SpecError(f"factor '{name}' holds ':', which separates the factors of an "
                            "interaction (a:b); give the column a name without it "
                            "(e.g. with [data.derive])")


def check_support(spec: Spec, data: pl.DataFrame, ledger=None) -> None:
    """The response can come from the family: else a one-line DataError naming the spec key,
    the data file(s) holding the offending rows, their count and the first source row."""

    try:
        fam = get_family(spec.model.family)
        pf = parse_formula(spec.model.formula)
    except SpecError:
        return  # reported with its key elsewhere
    cols = [pf.response] + ([pf.trials] if pf.trials else [])
    if fam.has_categories or any(c not in data.columns for c in cols):
        return
    if not all(data[c].dtype.is_numeric() or data[c].dtype == pl.Boolean for c in cols):
        return
    rows = data.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in cols))
    y = rows[pf.response].cast(pl.Float64).to_numpy()
    trials = rows[pf.trials].cast(pl.Float64).to_numpy() if pf.trials else None
    what, off = fam.unsupported(y, trials)
    if off is None:
        return
    bad = rows.filter(pl.Series(off))
    where = getattr(ledger, "source", None) or (
        spec.data.source if spec.data is not None else "the simulated data")
    if "source_file" in bad.columns and bad["source_file"].null_count() < bad.height:
        files = bad["source_file"].drop_nulls().unique(maintain_order=True).to_list()
        where = files[0] + (f" and {len(files) - 1} more file(s)" if len(files) > 1 else "")
    first = (f", first at source_row {bad['source_row'][0]}" if "source_row" in bad.columns
             else "")
    raise DataError(f"{spec.path}: [model] family = \"{fam.name}\": response '{pf.response}' "
                    f"must hold {what} ({bad.height} of {rows.height} rows do not, in {where}"
                    f"{first})")


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
             *, refit: bool = False, progress: bool | None = None, ledger=None,
             formula_key: str = "[model] formula", before_sampling=None,
             cached_only: bool = False, on_attempt=None) -> FitOutcome:
    """Fit ``spec``'s model to ``table`` (the ingested canonical table).

    With ``out_dir``, the posterior is written there (atomically) and reused when the cache
    key matches. User errors name the spec file and key (``formula_key`` for errors in the
    formula, e.g. ``[checks] alternatives[0]`` for an alternative model).
    ``before_sampling(prepared)`` runs once the design is built, before a cached posterior is
    read or anything is sampled: the caller's checks of what it will ask of the fit (the
    ``[effects]`` estimands), so that a mistake costs seconds, not a sampling run.
    ``cached_only``: never sample; a one-line SpecError when no cached posterior matches.
    ``on_attempt(line)``: one line before each automatic refit (:func:`fit_prepared`)."""

    if spec.model is None:
        raise SpecError(f"{spec.path}: no [model] table: nothing to fit")
    m, f = spec.model, spec.fit
    data = model_data(spec, table)
    check_finite(spec, data, ledger)
    check_support(spec, data, ledger)
    with _named(spec, formula_key):
        prepared = prepare(m.formula, data, m.family, dict(m.priors), dict(m.centered),
                           aux=dict(m.aux))
        check_factor_names(prepared)
    if before_sampling is not None:
        before_sampling(prepared)
    key, payload = _key(spec, prepared)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and not refit:
        cached = _load_cached(out / POSTERIOR_FILE, key, f, prepared, ledger)
        if cached is not None:
            return FitOutcome(cached, True, key, out / POSTERIOR_FILE)
    if cached_only:
        raise SpecError(f"{spec.path}: no posterior of this model and data in "
                        f"{out / POSTERIOR_FILE if out is not None else 'the cache'} (run "
                        "'biasstats fit' first, or pass --fit to fit now)")

    with _named(spec, formula_key):
        result = fit_prepared(prepared, f, progress,
                              thresholds=thresholds_from(spec.content.checks), derive=False,
                              on_attempt=on_attempt)
    result.ledger = ledger
    path = None
    if out is not None:
        # the key travels inside the one file that is renamed into place: never apart
        result.idata.attrs = {**result.idata.attrs, KEY_ATTR: key,
                              PAYLOAD_ATTR: json.dumps(payload, sort_keys=True, default=str),
                              TIMINGS_ATTR: json.dumps(result.timings, default=str)}
        # written as soon as it is sampled, and kept whatever fails after this (effects,
        # checks, figures): the next run reuses it instead of sampling again
        path = result.to_netcdf(out / POSTERIOR_FILE, durable=True)
        # continue from the stored (float32) draws, so this run's numbers are those a reuse of
        # the cached posterior gives (the same values: fit_prepared keeps them as stored, so
        # the summary and linear predictor computed for the gate are kept)
        result.replace_draws(read_posterior(path))

    # the log-likelihood and predictions from the (stored) draws, as a reload computes them
    result.timings.update(derived_groups(result, f.seed + 1))
    return FitOutcome(result, False, key, path)


def read_cached(path: Path, key: str, complete):
    """The posterior DataTree cached at ``path``, loaded into memory with its level names as
    they were, when it is readable, carries ``key`` and ``complete(sizes, stored settings)``
    holds; None (sample over it) otherwise."""
    if not path.is_file():
        return None
    # heavy libraries load on first use, not on import
    import xarray as xr

    try:
        tree = xr.open_datatree(path)
    except Exception:  # unreadable or truncated: not a cache entry, refit over it
        return None
    try:
        if tree.attrs.get(KEY_ATTR) != key or "posterior" not in tree.children:
            return None
        if not complete(tree["posterior"].sizes,
                        json.loads(tree.attrs.get("biasstats_settings", "{}"))):
            return None
        tree = tree.load()
        unescape_nul(tree)  # level names holding a NUL, as they were
    except Exception:
        return None
    finally:
        tree.close()
    return tree


def complete_for(settings):
    """``read_cached``'s completeness test for a posterior of the ``[fit]`` ``settings``: it
    holds the chains and draws its own fit kept (the key pins the spec's; an automatic refit
    can add chains or double the draws, never keep fewer)."""
    def complete(sizes, stored) -> bool:
        chains = int(stored.get("chains", settings.chains))
        draws = int(stored.get("draws", settings.draws))
        return ((sizes.get("chain"), sizes.get("draw")) == (chains, draws)
                and chains >= settings.chains and draws >= settings.draws)

    return complete


def _load_cached(path: Path, key: str, settings, prepared, ledger):
    """The cached Fit at ``path`` if it is readable, carries ``key`` and holds a complete
    posterior (settings.chains x settings.draws); None (refit) otherwise."""

    tree = read_cached(path, key, complete_for(settings))
    if tree is None:
        return None
    stored = json.loads(tree.attrs.get("biasstats_settings", "{}"))
    settings_ = stored
    if settings_.get("flipped"):  # the automatic refit changed one term's centring
        prepared = flipped(prepared, settings_["flipped"])

    fit = Fit(idata=tree, spec=prepared, timings=json.loads(tree.attrs.get(TIMINGS_ATTR, "{}")),
              settings=settings_, ledger=ledger)
    derived_groups(fit, int(settings_.get("seed", settings.seed)) + 1)
    return fit
