"""Separation: terms whose 0/1 outcomes a threshold or a level splits exactly, so only the
prior bounds their estimate."""

from __future__ import annotations

import numpy as np

from biasstats.model.design import ModelSpec

__all__ = ["separation"]


def separation(spec: ModelSpec) -> list[str]:
    """One line per term whose data are (quasi-)completely separated, for the binomial
    families: the likelihood then has no finite maximum along that term, only the prior
    bounds it, and the sampler meets a ridge or funnel that no reparameterisation fixes.

    * the response: every observation in one class, or all but at most 1% (and at most 5) of
      them;
    * a fixed-effect 0/1 column: every row where it is 1 (or every row where it is 0) in one
      class;
    * a continuous fixed-effect column of a 0/1 response: a threshold on it splits the
      classes exactly;
    * a group term: more than half of its levels (and at least 3) with every observation in
      one class (its SD is then set by how far the levels' rates sit from 0 / 1, i.e. by the
      prior)."""
    fam = spec.family
    if not fam.binary_outcomes:
        return []
    w = spec.row_weights()
    k = np.asarray(spec.y, dtype=float) * w
    n = np.asarray(spec.trials, dtype=float) * w
    out = []
    total, hits = n.sum(), k.sum()
    minority = min(hits, total - hits)
    resp = spec.formula.response
    if minority == 0 or (minority <= 5 and minority <= 0.01 * total):
        cls = 1 if hits > total / 2 else 0
        what = "complete" if minority == 0 else "near-complete"
        out.append(f"response '{resp}': {int(total - minority)} of {int(total)} outcomes are "
                   f"{cls} ({what} separation): the intercept is bounded by its prior alone; "
                   f"keep a proper prior such as [model.priors] Intercept = \"Normal(0, 2.5)\" "
                   f"and read its estimate as a bound")
        return out
    one = (k == n) & (n > 0)
    zero = (k == 0) & (n > 0)
    for j, name in enumerate(spec.fixed_names):
        x = spec.X[:, j]
        if np.isin(x, (0.0, 1.0)).all():
            for val in (1.0, 0.0):
                sel = (x == val) & (n > 0)
                if sel.any() and (one[sel].all() or zero[sel].all()):
                    cls = 1 if one[sel].all() else 0
                    out.append(f"fixed effect '{name}': every outcome where it is {val:g} is "
                               f"{cls} (complete separation): b_{name} is set by its prior; "
                               f"use a weakly informative one, e.g. [model.priors] "
                               f"b_{name} = \"Normal(0, 2.5)\"")
                    break
        elif fam.single_outcome or np.all(spec.trials == 1):
            x1, x0 = x[k > 0], x[k < n]
            if len(x1) and len(x0) and (x1.min() > x0.max() or x1.max() < x0.min()):
                out.append(f"fixed effect '{name}': a threshold on it splits the outcomes exactly "
                           f"(complete separation): b_{name} is set by its prior; use a weakly "
                           f"informative one, e.g. [model.priors] b_{name} = \"Normal(0, 2.5)\"")
    for g in spec.groups:
        L = len(g.levels)
        lk = np.bincount(g.idx, weights=k, minlength=L)
        ln = np.bincount(g.idx, weights=n, minlength=L)
        degenerate = int(np.sum((ln > 0) & ((lk == 0) | (lk == ln))))
        if degenerate >= 3 and degenerate > L / 2:
            key = f"sd_{g.name}" if len(g.coefs) == 1 else f"sd_{g.name}__{g.coefs[0]}"
            out.append(f"term '{g.term.source}': {degenerate} of {L} levels have every outcome "
                       f"in one class (separation): {key} is set by its prior, not the data; "
                       f"use a weakly informative one, e.g. [model.priors] "
                       f"{key} = \"HalfNormal(1)\"")
    return out
