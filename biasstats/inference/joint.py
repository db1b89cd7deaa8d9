"""Fit a joint model of named parts (:mod:`biasstats.model.joint`), with a content-addressed
cache, and give each part its own view of the posterior.

:func:`prepare_parts` turns each part's ingested table into its prepared model (the rows its
``[model] unit`` and ``[data] include`` say) and the joint design; :func:`fit_joint` samples
the one PyMC model with nutpie (or reuses ``posterior.nc`` when the key — every part's data
hash, model and the ``[fit]`` table, the versions and the model/inference code — matches);
:func:`part_fit` is a part's posterior with the ``<part>::`` prefix taken off its variables
and dimensions: a :class:`~biasstats.inference.result.Fit` like any other (estimands, checks,
PSIS-LOO with that part's own log-likelihood, figures). The convergence gate reads the whole
model; after a failed gate (and ``[fit] refit``, on by default) the joint model is refitted
by the single model's plan over up to three attempts
(:func:`biasstats.inference.attempts.next_attempt`, the same function, read on the joint
posterior with each part's group SDs named ``sd_<part>::<term>``): chains added for a low ESS
alone, twice the warm-up and draws for a mild R-hat, a funnelling term of a part in its
other parameterisation (a term correlated across parts is always non-centred, so it is never
flipped) or a smaller step for geometry. ``JointFit.settings["attempts"]`` lists every
attempt, as a single fit's does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from biasstats.errors import BiasstatsError
from biasstats.inference import flipped, memory_estimate, resolve_settings
from biasstats.inference.attempts import join_chains, run_attempts
from biasstats.inference.convergence import convergence_gate, thresholds_from
from biasstats.inference.from_spec import (
    KEY_ATTR,
    PAYLOAD_ATTR,
    POSTERIOR_FILE,
    TIMINGS_ATTR,
    _spec_key,
    check_factor_names,
    check_finite,
    check_support,
    code_digest,
    complete_for,
    model_data,
    read_cached,
    versions,
)
from biasstats.inference.result import (
    Fit,
    escape_nul,
    netcdf_encoding,
    read_posterior,
)
from biasstats.inference.sample import (
    adaptation_options,
    auto_target_accept,
    derived_groups,
    pattern_predictive,
    sample_model,
)
from biasstats.io import atomic_path
from biasstats.model.build import prepare
from biasstats.model.joint import PART_SEP, JointSpec, build_joint_model, prepare_joint
from biasstats.spec import Spec
from biasstats.spec.parts import in_part

__all__ = ["JointFit", "JointOutcome", "prepare_parts", "fit_joint", "fit_prepared_joint",
           "refit_terms", "split_flips", "flipped_joint",
           "part_fit"]


def prepare_parts(spec: Spec, tables: dict[str, object], ledgers: dict | None = None
                  ) -> JointSpec:
    """The prepared parts of joint spec ``spec`` (``tables``: part -> its ingested canonical
    table) and their joint design; every check of a single model's data, per part, then the
    overlap of every correlated factor's levels (one line naming the part and key)."""
    prepared = {}
    for name in spec.parts:
        ps = spec.part(name)
        m = ps.model
        with in_part(spec, name):
            data = model_data(ps, tables[name])
            check_finite(ps, data, (ledgers or {}).get(name))
            check_support(ps, data, (ledgers or {}).get(name))
            try:
                prepared[name] = prepare(m.formula, data, m.family, dict(m.priors),
                                         dict(m.centered), aux=dict(m.aux), joint=True)
            except BiasstatsError as e:
                msg = str(e)
                raise type(e)(f"{spec.path}: {_spec_key(msg)}: "
                              f"{msg.removeprefix('centered: ')}") from None
            check_factor_names(prepared[name])
    try:
        return prepare_joint(prepared)
    except BiasstatsError as e:
        raise type(e)(f"{spec.path}: {e}") from None


@dataclass
class JointFit:
    """A fitted joint model: the DataTree of every part's variables (``<part>::name``) and the
    correlated terms' (``cor_<id>``), the prepared parts, settings and timings."""

    idata: object
    joint: JointSpec
    model: object = None
    timings: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    _views: dict = field(default_factory=dict, repr=False)

    def whole(self) -> Fit:
        """The whole posterior as a Fit (summary and diagnostics of every parameter)."""
        return self._views.setdefault(None, Fit(idata=self.idata, spec=None,
                                                timings=self.timings, settings=self.settings))

    def part(self, name: str) -> Fit:
        """Part ``name``'s view (:func:`part_fit`), made once."""
        if name not in self._views:
            self._views[name] = part_fit(self, name)
        return self._views[name]


@dataclass(frozen=True)
class JointOutcome:
    fit: JointFit
    cached: bool
    key: str
    path: Path | None


def _strip(ds, prefix: str):
    """The variables of ``ds`` named ``<prefix>name``, renamed ``name`` (dimensions too)."""
    keep = [v for v in ds.data_vars if str(v).startswith(prefix)]
    sub = ds[keep]
    names = {str(v): str(v)[len(prefix):] for v in keep}
    names |= {str(d): str(d)[len(prefix):] for d in sub.dims if str(d).startswith(prefix)}
    sub = sub.rename(names)
    return sub.drop_vars([c for c in sub.coords if str(c).startswith(prefix)
                          or (c not in sub.dims and PART_SEP in str(c))], errors="ignore")


def part_fit(jfit: JointFit, name: str) -> Fit:
    """Part ``name`` of a joint fit as a single-model :class:`Fit`: its variables and
    dimensions without the ``<name>::`` prefix, its own log-likelihood, predictions and
    observed data, and the sampler's statistics of the whole model."""
    import xarray as xr  # heavy library: imported on first use

    prefix = f"{name}{PART_SEP}"
    groups = {}
    for g in ("posterior", "log_likelihood", "posterior_predictive", "observed_data"):
        if g in jfit.idata.children:
            ds = _strip(jfit.idata[g].to_dataset(), prefix)
            if ds.data_vars:
                groups[f"/{g}"] = ds
    if "sample_stats" in jfit.idata.children:
        groups["/sample_stats"] = jfit.idata["sample_stats"].to_dataset()
    spec = jfit.joint.parts[name]
    fit = Fit(idata=xr.DataTree.from_dict(groups), spec=spec, timings=jfit.timings,
              settings=jfit.settings)
    seed = int(jfit.settings.get("seed", 0)) + 1
    if spec.weights is not None and "posterior_predictive" in fit.idata.children \
            and f"{spec.formula.response}__total" not in fit.idata["posterior_predictive"]:
        fit.idata["posterior_predictive"] = pattern_predictive(fit, seed)
    derived_groups(fit, seed)
    return fit


def _all_groups(joint: JointSpec):
    return SimpleNamespace(groups=[g for s in joint.parts.values() for g in s.groups])


def fit_prepared_joint(joint: JointSpec, settings, progress: bool | None = None,
                       thresholds=None) -> JointFit:
    """Sample the joint model with the ``[fit]`` settings (target acceptance and mass matrix
    chosen as for a single model, from every part's terms). With ``thresholds``
    (:class:`~biasstats.inference.convergence.Thresholds`) the whole model is checked against
    the convergence gate and, when it fails and ``settings.refit`` is on, refitted by the
    single model's plan (:func:`biasstats.inference.attempts.next_attempt`, up to
    :data:`~biasstats.inference.attempts.MAX_ATTEMPTS` attempts, read on the joint posterior
    with each part's group SDs named ``sd_<part>::<term>``): chains added to the draws kept
    for a low ESS alone, twice the warm-up and draws for a mild R-hat, a part's funnelling
    terms in their other parameterisation (a term correlated across parts is always
    non-centred, so never flipped) or a smaller step for geometry. The attempt that passed is
    returned or, when none did, the one least far from the gate
    (:func:`~biasstats.inference.attempts.best_attempt`); ``settings["attempts"]`` lists
    every attempt, as :func:`biasstats.inference.fit_prepared` does for a single model."""
    fit = _fit_joint_once(joint, settings, progress)
    if thresholds is None:
        return fit
    levels = {f"{p}{PART_SEP}{g.name}": len(g.levels) for p, s in joint.parts.items()
              for g in s.groups}
    fit, flips = run_attempts(
        fit, lambda f: convergence_gate(f.whole().diagnostics(), thresholds), thresholds,
        settings,
        terms=lambda f: (refit_terms(f.joint), levels, _sd_view(f.idata, f.joint)),
        next_fit=lambda f, plan: _next_joint(f, settings, plan, progress))
    if flips:  # a cached posterior re-applies them
        fit.settings["flipped"] = {p: list(t) for p, t in split_flips(flips).items()}
    return fit


def _next_joint(fit: JointFit, settings, plan: dict, progress) -> JointFit:
    """The attempt ``plan`` describes after ``fit`` failed: its chains added to ``fit``'s, or
    a new fit of the joint model with the plan's flips, step size, warm-up and draws."""
    ta1 = fit.settings["target_accept"]
    new = settings.model_copy(update={"target_accept": plan["target_accept"],
                                      "seed": plan["seed"], "chains": plan["chains"],
                                      "tune": plan["tune"], "draws": plan["draws"]})
    flips = split_flips(plan["flip"] or ())
    joint = flipped_joint(fit.joint, flips) if flips else fit.joint
    nxt = _fit_joint_once(joint, new, progress, why="raised after a failed gate")
    nxt.settings["target_accept_reason"] = (
        f"raised from {ta1:g} by the automatic refit after a failed gate"
        if plan["target_accept"] != ta1 else fit.settings["target_accept_reason"])
    nxt.settings["seed"] = settings.seed  # the spec's; each attempt's own is in its record
    if not plan["keep_draws"]:
        return nxt
    joined = join_chains(fit.idata, nxt.idata)
    return JointFit(idata=joined, joint=fit.joint, model=fit.model, timings=nxt.timings,
                    settings={**fit.settings,
                              "chains": int(joined["posterior"].sizes["chain"])})


def refit_terms(joint: JointSpec) -> dict[str, bool]:
    """``<part>::<term>`` -> centred, for every group term the refit may flip (not a term
    correlated across parts, nor one with correlated slopes: those are always non-centred)."""
    return {f"{p}{PART_SEP}{g.name}": g.centered for p, s in joint.parts.items()
            for g in s.groups if g.term.cor_id is None and not g.correlated}


def split_flips(terms) -> dict[str, tuple[str, ...]]:
    """``("implicit::cell", ...)`` -> ``{"implicit": ("cell",), ...}``."""
    out: dict[str, list[str]] = {}
    for t in terms:
        p, name = t.split(PART_SEP, 1)
        out.setdefault(p, []).append(name)
    return {p: tuple(v) for p, v in out.items()}


def flipped_joint(joint: JointSpec, flips: dict) -> JointSpec:
    """``joint`` with each part's terms in ``flips`` (part -> terms) in the other
    parameterisation (:func:`biasstats.inference.flipped`, per part)."""
    return JointSpec(parts={p: flipped(s, flips[p]) if flips.get(p) else s
                            for p, s in joint.parts.items()}, shared=joint.shared)


def _sd_view(idata, joint: JointSpec):
    """The joint posterior's group SDs as the refit plan reads a single model's: part
    ``p``'s ``p::sd_<term>`` named ``sd_p::<term>`` (its dimensions kept), with the sampler's
    statistics."""
    import xarray as xr  # heavy library: imported on first use

    post = idata["posterior"].to_dataset()
    names = {}
    for key in refit_terms(joint):
        p, term = key.split(PART_SEP, 1)
        var = f"{p}{PART_SEP}sd_{term}"
        if var in post:
            names[var] = f"sd_{key}"
    groups = {"/posterior": post[list(names)].rename(names)}
    if "sample_stats" in idata.children:
        groups["/sample_stats"] = idata["sample_stats"].to_dataset()
    return xr.DataTree.from_dict(groups)


def _fit_joint_once(joint: JointSpec, settings, progress: bool | None,
                    why: str | None = None) -> JointFit:
    why = why or "set by user"
    if settings.target_accept is None:
        value, why = auto_target_accept(_all_groups(joint))
        settings = settings.model_copy(update={"target_accept": value})
    model = build_joint_model(joint)
    n_obs = sum(len(s.y) for s in joint.parts.values())
    est = memory_estimate(model, SimpleNamespace(y=range(n_obs)), settings)
    settings, reasons = resolve_settings(model, est, settings)
    idata, timings = sample_model(model, settings, progress)
    centring = {f"{p}: {k}": v for p, s in joint.parts.items()
                for k, v in s.describe_centring().items()}
    return JointFit(idata=idata, joint=joint, model=model, timings=timings, settings={
        **settings.model_dump(), "target_accept_reason": why, **reasons,
        **adaptation_options(settings.adaptation), "sampler": timings["sampler"],
        "centered": centring, "parameters": est["parameters"],
        "correlations": {s.cor_id: {"grouping": s.grouping, "parts": list(s.parts),
                                    "levels": len(s.levels), "lkj_eta": s.eta}
                         for s in joint.shared}})


def _key(spec: Spec, joint: JointSpec) -> tuple[str, dict]:
    payload = {
        "parts": {p: {"data_hash": joint.parts[p].data_hash,
                      "model": spec.parts[p].model.model_dump(),
                      "include": list(spec.parts[p].data.include)} for p in spec.parts},
        "fit": spec.fit.model_dump(), "versions": versions(), "code": code_digest(),
    }
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest(), payload


def _cached(path: Path, key: str, settings, joint: JointSpec) -> JointFit | None:
    tree = read_cached(path, key, complete_for(settings))
    if tree is None:
        return None
    stored = json.loads(tree.attrs.get("biasstats_settings", "{}"))
    if stored.get("flipped"):  # the automatic refit changed some terms' centring
        joint = flipped_joint(joint, stored["flipped"])
    return JointFit(idata=tree, joint=joint,
                    timings=json.loads(tree.attrs.get(TIMINGS_ATTR, "{}")), settings=stored)


def fit_joint(spec: Spec, joint: JointSpec, out_dir: str | Path | None = None, *,
              refit: bool = False, progress: bool | None = None) -> JointOutcome:
    """Fit joint spec ``spec``'s prepared model ``joint``; with ``out_dir`` its posterior is
    written there (``posterior.nc``, atomically, kept whatever fails later) and reused when
    the key matches."""
    key, payload = _key(spec, joint)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and not refit:
        cached = _cached(out / POSTERIOR_FILE, key, spec.fit, joint)
        if cached is not None:
            return JointOutcome(cached, True, key, out / POSTERIOR_FILE)
    try:
        fit = fit_prepared_joint(joint, spec.fit, progress,
                                 thresholds=thresholds_from(spec.content.checks))
    except BiasstatsError as e:  # e.g. [fit] max_memory_gb: named with the spec's path
        raise type(e)(f"{spec.path}: {e}") from None
    path = None
    if out is not None:
        tree = fit.idata.copy()
        tree.attrs = {**tree.attrs, KEY_ATTR: key,
                      PAYLOAD_ATTR: json.dumps(payload, sort_keys=True, default=str),
                      TIMINGS_ATTR: json.dumps(fit.timings, default=str),
                      "biasstats_settings": json.dumps(fit.settings, default=str),
                      "biasstats_parts": json.dumps(list(joint.parts))}
        escape_nul(tree)
        path = out / POSTERIOR_FILE
        with atomic_path(path, durable=True) as tmp:
            tree.to_netcdf(tmp, engine="h5netcdf", encoding=netcdf_encoding(tree))
        fit.idata = read_posterior(path)  # the stored (float32) draws, as a reuse reads them
    return JointOutcome(fit, False, key, path)
