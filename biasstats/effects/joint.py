"""The estimands of a joint model beyond each part's own: per correlation id, the latent
correlation of the parts' effects of the shared factor, and the latent regression slope of
one part's effects on another's, each beside its two-step counterpart.

* **latent correlation** ``cor_<id>[a, b]``, draw by draw (posterior mean, SD, HDI and
  P(> 0)). With varying slopes under the id, one row per pair of terms of different parts
  (``coefs`` names them: ``Intercept, x``); the slope and the figure read the intercepts.
* **latent slope** of part y's effects on part x's: ``rho * sd_y / sd_x`` per draw, the
  regression of the true effects (on each part's link scale).
* **two-step**: the classic analysis — first each level's own estimate, then a regression of
  one on the other. The first step is each level's empirical link-scale estimate (the
  family's working response, information-weighted over the level's observations: the
  smoothed empirical logit of a 0/1 outcome); the second an OLS slope (t interval) and a
  Pearson correlation (Fisher-z interval) over the levels both parts have. Measurement noise
  in the first step attenuates both towards 0; the joint model does not have that bias.

:func:`joint_cells` gives the figure's points: per level, each part's posterior effect with
its interval and the (centred) two-step estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import polars as pl

from biasstats.inference.predict import hdi, stack_draws
from biasstats.model.joint import SharedTerm

__all__ = ["JointEstimands", "joint_estimands", "joint_cells", "level_estimates",
           "slope_pairs"]


@dataclass
class JointEstimands:
    """``correlations`` (term, cor_id, parts, method, mean, sd, hdi_low, hdi_high, hdi_prob,
    p_positive, n_levels) and ``slopes`` (term, cor_id, parts "y on x", method, ...): one row
    per shared factor and pair of parts, ``method`` latent (the joint posterior) or two-step.
    ``cells``: (term, x, y) -> the figure's table (:func:`joint_cells`)."""

    correlations: pl.DataFrame
    slopes: pl.DataFrame
    cells: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    draws: dict = field(default_factory=dict, repr=False)

    def rows(self) -> pl.DataFrame:
        """The joint rows of ``estimands.parquet``: estimand ``correlation`` / ``slope``."""
        parts = [self.correlations.with_columns(pl.lit("correlation").alias("estimand"),
                                                pl.lit("correlation").alias("unit")),
                 self.slopes.with_columns(pl.lit("slope").alias("estimand"),
                                          pl.lit("link-scale units per unit").alias("unit"))]
        return pl.concat([p for p in parts if p.height], how="diagonal_relaxed")


def level_estimates(spec, grouping: str) -> tuple[list[str], np.ndarray] | None:
    """(levels, each level's empirical link-scale estimate) of grouping ``grouping`` of a
    prepared part (the family's working response, information-weighted); None when the
    family has no working response."""
    fam = spec.family
    w = fam.working(np.asarray(spec.y, dtype=float), spec.trials, spec.row_weights())
    if w is None:
        return None
    z, info = w
    g = next(g for g in spec.groups if g.name == grouping)
    L = len(g.levels)
    tot = np.bincount(g.idx, weights=info, minlength=L)
    est = np.bincount(g.idx, weights=info * z, minlength=L) / np.maximum(tot, 1e-12)
    return list(g.levels), est


def _summary(draws: np.ndarray, prob: float) -> dict:
    lo, hi = hdi(draws[:, None], prob)[0]
    return {"mean": float(draws.mean()), "sd": float(draws.std(ddof=1)),
            "hdi_low": float(lo), "hdi_high": float(hi), "hdi_prob": prob,
            "p_positive": float((draws > 0).mean())}


def _two_step(x: np.ndarray, y: np.ndarray, prob: float) -> tuple[dict, dict]:
    """(OLS slope of y on x with its t interval, Pearson correlation with its Fisher-z
    interval) over the levels."""
    from scipy import stats  # heavy library: imported on first use

    n = len(x)
    xc, yc = x - x.mean(), y - y.mean()
    sxx = float(xc @ xc)
    b = float(xc @ yc) / sxx
    res = yc - b * xc
    se = float(np.sqrt(res @ res / max(n - 2, 1) / sxx))
    t = float(stats.t.ppf((1 + prob) / 2, max(n - 2, 1)))
    r = float(np.corrcoef(x, y)[0, 1])
    zq = float(stats.norm.ppf((1 + prob) / 2)) / np.sqrt(max(n - 3, 1))
    zr = np.arctanh(np.clip(r, -0.999999, 0.999999))
    slope = {"mean": b, "sd": se, "hdi_low": b - t * se, "hdi_high": b + t * se,
             "hdi_prob": prob, "p_positive": None}
    cor = {"mean": r, "sd": None, "hdi_low": float(np.tanh(zr - zq)),
           "hdi_high": float(np.tanh(zr + zq)), "hdi_prob": prob, "p_positive": None}
    return slope, cor


def slope_pairs(shared: list[SharedTerm], slope: list[str] | None) -> list[tuple]:
    """(shared term, x part, y part) of every latent slope: ``[joint] slope`` = [x, y] for
    each shared term holding both, else each term's first two parts."""
    if slope is not None:
        x, y = slope
        return [(s, x, y) for s in shared if x in s.parts and y in s.parts]
    return [(s, s.parts[0], s.parts[1]) for s in shared]


def _cor_draws(post, s: SharedTerm, a: str, b: str, ca: str = "Intercept",
               cb: str = "Intercept") -> np.ndarray:
    return stack_draws(post[s.cor_name].sel({s.part_dim: s.label(a, ca),
                                             s.part_dim + "_": s.label(b, cb)}))


def _intercept(da, grouping: str, prefix: str = ""):
    """``da`` at the term's intercept when it has varying slopes (a coefficient dimension)."""
    dim = f"{prefix}{grouping}__coef"
    return da.sel({dim: "Intercept"}) if dim in da.dims else da


def joint_estimands(jfit, slope: list[str] | None = None, prob: float = 0.95
                    ) -> JointEstimands:
    """The correlations and slopes of a :class:`~biasstats.inference.joint.JointFit`."""
    joint = jfit.joint
    post = jfit.idata["posterior"].to_dataset()
    cors, slopes, draws, notes, cells_of = [], [], {}, [], {}
    for s in joint.shared:
        for a, b in combinations(s.parts, 2):
            pairs = [(ca, cb) for ca in s.coefs.get(a, ["Intercept"])
                     for cb in s.coefs.get(b, ["Intercept"])]
            for ca, cb in pairs:
                d = _cor_draws(post, s, a, b, ca, cb)
                coefs = f"{ca}, {cb}" if s.slopes else None
                draws[f"correlation:{s.grouping}:{a}, {b}"
                      + (f":{coefs}" if coefs else "")] = d
                cors.append({"term": s.grouping, "cor_id": s.cor_id, "parts": f"{a}, {b}",
                             **({"coefs": coefs} if coefs else {}),
                             "method": "latent", **_summary(d, prob),
                             "n_levels": len(s.shared_levels(a, b))})
    for s, x, y in slope_pairs(joint.shared, slope):
        rho = _cor_draws(post, s, x, y)
        sd = {p: stack_draws(_intercept(post[f"{p}::sd_{s.grouping}"], s.grouping, f"{p}::"))
              for p in (x, y)}
        d = rho * sd[y] / sd[x]
        key = f"{y} on {x}"
        draws[f"slope:{s.grouping}:{key}"] = d
        slopes.append({"term": s.grouping, "cor_id": s.cor_id, "parts": key,
                       "method": "latent", **_summary(d, prob),
                       "n_levels": len(s.shared_levels(x, y))})
        cells = cells_of[(s.grouping, x, y)] = joint_cells(jfit, s, x, y, prob)
        points = cells.drop_nulls(["x_two_step", "y_two_step"])
        if points.height >= 3:
            st_slope, st_cor = _two_step(points["x_two_step"].to_numpy(),
                                         points["y_two_step"].to_numpy(), prob)
            slopes.append({"term": s.grouping, "cor_id": s.cor_id, "parts": key,
                           "method": "two-step", **st_slope, "n_levels": points.height})
            cors.append({"term": s.grouping, "cor_id": s.cor_id, "parts": f"{x}, {y}",
                         **({"coefs": "Intercept, Intercept"} if s.slopes else {}),
                         "method": "two-step", **st_cor, "n_levels": points.height})
        else:
            notes.append(f"two-step slope of {key} ({s.grouping}) not computed: "
                         + ("fewer than 3 shared levels" if cells.height < 3 else
                            "a part's family has no empirical link-scale estimate per level"))
    return JointEstimands(correlations=_frame(cors), slopes=_frame(slopes), cells=cells_of,
                          notes=notes, draws=draws)


def _frame(rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame(rows, infer_schema_length=None)


def joint_cells(jfit, s: SharedTerm, x: str, y: str, prob: float = 0.95) -> pl.DataFrame:
    """Per level both parts have: each part's posterior effect (link scale: mean and HDI)
    and its two-step estimate (the level's empirical link-scale estimate, centred over these
    levels as the effects are; null when the family has none)."""
    levels = [s.levels[i] for i in s.shared_levels(x, y)]
    out: dict[str, object] = {"level": levels}
    for p, tag in ((x, "x"), (y, "y")):
        view = jfit.part(p)
        r = _intercept(view.idata["posterior"][f"r_{s.grouping}"],
                       s.grouping).sel({s.grouping: levels})
        d = stack_draws(r)
        h = hdi(d, prob)
        out[f"{tag}_mean"], out[f"{tag}_low"], out[f"{tag}_high"] = d.mean(0), h[:, 0], h[:, 1]
        emp = level_estimates(jfit.joint.parts[p], s.grouping)
        if emp is None:
            out[f"{tag}_two_step"] = [None] * len(levels)
        else:
            pos = {v: i for i, v in enumerate(emp[0])}
            e = emp[1][[pos[v] for v in levels]]
            out[f"{tag}_two_step"] = e - e.mean()
    return pl.DataFrame(out)
