"""A joint model of named parts: each part's own model in one PyMC model, with the effects of
a shared grouping factor correlated across the parts whose terms carry the same correlation id
``(1 | p | g)`` (brms' ``|ID|`` syntax).

* Each part is prepared on its own (:func:`biasstats.model.build.prepare`) and written into a
  named sub-model (:func:`biasstats.model.graph.write_part`): its variables are
  ``<part>::<name>`` (``implicit::Intercept``, ``implicit::sd_cell``, ``implicit::r_cell``), its
  dimensions ``<part>::<dim>``. A part's view of the posterior with the prefix taken off is a
  fit like any other (:func:`biasstats.inference.joint.part_fit`).
* A correlation id ``p`` on grouping ``g`` shared by parts 1..k: over the union of the parts'
  levels of ``g``, ``w = L z`` with ``z`` (terms x levels) zero-sum standard normal over the
  levels and ``L`` the Cholesky factor of the covariance of the parts' effects, whose
  correlation matrix ``cor_p`` is LKJ(eta = 2) and whose SDs ``sd_g`` have each part's own
  prior (one ``LKJCholeskyCov``); part j's effects are ``r_g = w[j]`` at its own levels. With
  varying slopes (``(1 + x | p | g)``) the terms are every part's intercept and slopes,
  stacked (``cor_p`` labelled ``<part>:<coefficient>``): part j's rows of ``w`` are its
  ``r_g`` (coefficient x level), and its own ``cor_g`` is its block of ``cor_p``. (Parts whose SD
  priors are of different distributions: ``w = sd_g * C z`` with ``C`` the correlation's
  Cholesky factor, each ``sd_g`` its part's own variable.)
  The term is always non-centred (as brms' correlated terms are). Each row of ``w`` sums to
  zero over the union, so when the parts share every level, each part's effects are
  deviations from the mean of its levels, as in a single model.
* The levels must overlap between the parts (else the correlation says nothing): checked on
  the data, before sampling, one line naming the part and key (:func:`prepare_joint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from biasstats.errors import SpecError
from biasstats.model.design import ModelSpec
from biasstats.model.graph import _vector_prior, write_part
from biasstats.model.priors import Prior

__all__ = ["SharedTerm", "JointSpec", "prepare_joint", "build_joint_model", "LKJ_ETA",
           "PART_SEP"]

LKJ_ETA = 2.0     # the LKJ shape of every correlation id (mildly towards 0)
PART_SEP = "::"   # <part>::<variable>, as PyMC names the variables of a named sub-model


@dataclass
class SharedTerm:
    """The varying intercepts of grouping ``grouping`` that correlation id ``cor_id`` links
    across ``parts``: over ``levels`` (the union of the parts' levels, sorted), part j's own
    levels sit at ``index[part]``."""

    cor_id: str
    grouping: str
    parts: tuple[str, ...]
    levels: list[str]
    index: dict[str, np.ndarray]
    eta: float = LKJ_ETA
    # each part's coefficients of the term (["Intercept"], or ["Intercept", "x", ...])
    coefs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def slopes(self) -> bool:
        """True when a part's term has varying slopes: the terms are labelled
        ``<part>:<coefficient>`` (else by the part's name alone)."""
        return any(len(c) > 1 for c in self.coefs.values())

    def label(self, part: str, coef: str = "Intercept") -> str:
        """The label of part ``part``'s coefficient ``coef`` in ``cor_<id>``."""
        return f"{part}:{coef}" if self.slopes else part

    @property
    def labels(self) -> list[str]:
        """Every stacked term, part by part (the order of ``cor_<id>``)."""
        return [self.label(p, c) for p in self.parts for c in self.coefs.get(p, ["Intercept"])]

    def rows_of(self, part: str) -> list[int]:
        """Positions of part ``part``'s terms in :attr:`labels`."""
        mine = {self.label(part, c) for c in self.coefs.get(part, ["Intercept"])}
        return [i for i, v in enumerate(self.labels) if v in mine]

    @property
    def part_dim(self) -> str:
        return f"{self.cor_id}__part"

    @property
    def level_dim(self) -> str:
        return f"{self.cor_id}__{self.grouping}"

    @property
    def cor_name(self) -> str:
        """The posterior variable of the correlation matrix (part x part)."""
        return f"cor_{self.cor_id}"

    def shared_levels(self, a: str, b: str) -> np.ndarray:
        """Positions (in ``levels``) of the levels both parts ``a`` and ``b`` have."""
        return np.intersect1d(self.index[a], self.index[b])


@dataclass
class JointSpec:
    """The prepared parts (name -> :class:`ModelSpec`, in spec order) and their correlated
    terms."""

    parts: dict[str, ModelSpec]
    shared: list[SharedTerm] = field(default_factory=list)

    def linked(self, part: str) -> dict[str, tuple[SharedTerm, int]]:
        """Grouping name -> (its shared term, this part's row in it) for ``part``."""
        return {s.grouping: (s, s.parts.index(part)) for s in self.shared if part in s.parts}

    @property
    def data_hash(self) -> str:
        return ",".join(f"{k}:{v.data_hash}" for k, v in self.parts.items())


def _levels_shown(levels) -> str:
    shown = [f"'{v}'" for v in list(levels)[:3]]
    return ", ".join(shown) + (", ..." if len(levels) > 3 else "")


def prepare_joint(parts: dict[str, ModelSpec]) -> JointSpec:
    """The joint design of prepared parts (``prepare(..., joint=True)``): each correlation id's
    union of levels and each part's place in it. A one-line SpecError naming the part and key
    when a correlated factor's levels do not overlap between two parts, or when the term is
    nested in another term of its part (its within-parent constraint cannot be kept)."""
    by_id: dict[str, list[tuple[str, str]]] = {}
    for name, spec in parts.items():
        for g in spec.groups:
            if g.term.cor_id is not None:
                by_id.setdefault(g.term.cor_id, []).append((name, g.name))
    shared = []
    for cid, where in by_id.items():
        groups = {p: next(g for g in parts[p].groups if g.name == grouping)
                  for p, grouping in where}
        for p, g in groups.items():
            key = f"[parts.{p}.model] formula"
            if "Intercept" not in g.coefs:
                raise SpecError(f"{key}: term '{g.term.source}': a correlation id correlates "
                                "the term's varying intercept (and its slopes with it); give "
                                "the term an intercept")
            if g.Q is not None:
                raise SpecError(f"{key}: term '{g.term.source}' is nested in "
                                f"{', '.join(repr(h) for h in g.parents)} in the data; a "
                                "correlated term keeps no within-parent constraint: drop the "
                                "parent term or the correlation id")
            g.centered = False  # prepare(joint=True) chose it so: here is why
            g.reason = f"correlated across parts (id {cid}): always non-centred"
        first, g0 = next(iter(groups.items()))
        for p, g in list(groups.items())[1:]:
            if not set(g.levels) & set(g0.levels):
                raise SpecError(
                    f"[parts.{p}.model] formula: correlation id '{cid}' on '{g.name}': no level "
                    f"of part '{p}' ({_levels_shown(g.levels)}) is a level of part '{first}' "
                    f"({_levels_shown(g0.levels)}); the parts' effects of a factor correlate "
                    "over the levels they share")
        union = sorted(set().union(*(g.levels for g in groups.values())))
        pos = {v: i for i, v in enumerate(union)}
        shared.append(SharedTerm(
            cor_id=cid, grouping=where[0][1], parts=tuple(groups), levels=union,
            index={p: np.array([pos[v] for v in g.levels], dtype=np.int64)
                   for p, g in groups.items()},
            coefs={p: list(g.coefs) for p, g in groups.items()}))
    return JointSpec(parts=dict(parts), shared=shared)


def _sd_prior(spec: ModelSpec, grouping: str, coef: str) -> Prior:
    """Part ``spec``'s SD prior of coefficient ``coef`` of the term of ``grouping``."""
    g = next(g for g in spec.groups if g.name == grouping)
    return spec.priors[f"sd_{grouping}" if len(g.coefs) == 1 else f"sd_{grouping}__{coef}"]


def build_joint_model(joint: JointSpec):
    """The PyMC model of all parts: the correlated terms' standardised effects at the top,
    each part in a sub-model named after it."""
    import pymc as pm  # heavy libraries: imported on first use

    # heavy libraries load on first use, not on import
    import pytensor.tensor as pt

    with pm.Model(check_bounds=False) as model:  # valid by construction (model.graph)
        rows: dict[str, dict[str, object]] = {p: {} for p in joint.parts}
        for s in joint.shared:
            labels = s.labels
            model.add_coords({s.part_dim: labels, s.part_dim + "_": labels,
                              s.level_dim: s.levels})
            k = len(labels)
            sds = [_sd_prior(joint.parts[p], s.grouping, c)
                   for p in s.parts for c in s.coefs.get(p, ["Intercept"])]
            same = len({(p.dist, tuple(p.params)) for p in sds}) == 1
            # the parts' SD priors as one vector (the usual case); else a unit scale that the
            # correlation factor is freed of, and each part's own SD
            sdp = _vector_prior(sds, f"sd_{s.grouping}") if same else \
                Prior("HalfNormal", {"sigma": np.ones(k)})
            chol, corr, stds = pm.LKJCholeskyCov(
                f"z_chol_{s.cor_id}", n=k, eta=s.eta, sd_dist=sdp.dist_(shape=k),
                compute_corr=True, store_in_trace=False)
            pm.Deterministic(s.cor_name, corr, dims=(s.part_dim, s.part_dim + "_"))
            z = pm.ZeroSumNormal(f"z_{s.cor_id}", sigma=1.0, dims=(s.part_dim, s.level_dim))
            w = pt.dot(chol if same else chol / stds[:, None], z)
            for p in s.parts:
                at = s.rows_of(p)
                if len(at) == 1:
                    rows[p][s.grouping] = (w[at[0]][s.index[p]], stds[at[0]] if same else None,
                                           None)
                else:
                    block = corr[at][:, at]
                    rows[p][s.grouping] = (w[at][:, s.index[p]], stds[at] if same else None,
                                           block)
        for name, spec in joint.parts.items():
            with pm.Model(name=name):
                write_part(spec, f"{name}{PART_SEP}", rows[name])
    return model
