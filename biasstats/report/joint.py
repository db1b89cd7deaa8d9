"""The page of a joint analysis (:class:`biasstats.pipeline.JointResult`): the correlations of
the parts' shared effects and the latent slopes beside the two-step ones (tables, sentences),
one figure per slope of the cells' joint posterior with the two-step points, the refusal
sensitivity when a part models refusals, the whole model's diagnostics and a link to each
part's own report (rendered by :func:`biasstats.report.analysis.render`)."""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

import polars as pl

from biasstats.names import safe_name
from biasstats.pipeline import JointResult
from biasstats.report import figures as figs
from biasstats.report.analysis import _Artifacts, _worst_parameters
from biasstats.report.methods import _attempts
from biasstats.report.page import ModelInfo, ReportContext, write_report
from biasstats.version import __version__

__all__ = ["render_joint", "joint_sentences"]


def _interval(row: dict) -> str:
    return f"{row['hdi_low']:.2f} to {row['hdi_high']:.2f}"


def joint_sentences(res: JointResult) -> list[str]:
    """The joint estimands in words: each latent correlation (with the two-step one), each
    latent slope beside the two-step slope."""
    est = res.estimands
    out = []
    cors = est.correlations
    for row in cors.filter(pl.col("method") == "latent").iter_rows(named=True):
        pct = f"{row['hdi_prob']:.0%}"
        two = cors.filter((pl.col("method") == "two-step") & (pl.col("term") == row["term"])
                          & (pl.col("parts") == row["parts"]))
        tail = ""
        if two.height:
            t = two.row(0, named=True)
            tail = (f"; the two-step correlation of the levels' own estimates is "
                    f"{t['mean']:.2f} ({_interval(t)})")
        a, b = row["parts"].split(", ")
        out.append(f"The effects of {row['term']} in {a} and in {b} correlate: latent rho = "
                   f"{row['mean']:.2f} ({pct} HDI {_interval(row)}; P(rho > 0) = "
                   f"{row['p_positive']:.2f}) over {row['n_levels']} levels{tail}.")
    sl = est.slopes
    for row in sl.filter(pl.col("method") == "latent").iter_rows(named=True):
        y, x = row["parts"].split(" on ")
        two = sl.filter((pl.col("method") == "two-step") & (pl.col("term") == row["term"])
                        & (pl.col("parts") == row["parts"]))
        tail = "."
        if two.height:
            t = two.row(0, named=True)
            tail = (f", against a two-step slope of {t['mean']:.2f} ({_interval(t)}), "
                    "which the noise in the levels' own estimates biases towards 0.")
        out.append(f"A level's {row['term']} effect in {y} rises by {row['mean']:.2f} "
                   f"({_interval(row)}) per unit of its effect in {x} (latent slope, each "
                   f"part's link scale){tail}")
    return out


def _pp(v: float, unit: str) -> str:
    return f"{v:+.1f} pp" if unit == "percentage points" else f"{v:+.3g}"


def _refusal_outputs(art, res: JointResult, ref) -> list[str]:
    """P(refusal) and the outcome among answers by the contrast factors, the sensitivity of
    the outcome's contrasts to the refusals (table and sentences)."""
    r, o = ref.parts
    spec = res.spec
    label = spec.parts[o].effects.outcome_label or res.fit.joint.parts[o].formula.response
    art.skipped += list(ref.notes)
    if ref.shares.height:
        art.table(f"refusals_{safe_name(r)}", ref.shares,
                  f"Replies, refused replies and P(refusal) (part {r}: posterior mean and "
                  "HDI) per level of each contrast factor.", section="refusals", digits=3)
    out_est = res.parts[o].estimands
    if out_est is not None and ref.shares.height:
        terms = ref.shares["term"].unique().to_list()
        means = out_est.means.filter(pl.col("term").is_in(terms))
        art.table(f"answers_{safe_name(o)}", means,
                  f"{label[:1].upper() + label[1:]} among the answered replies (part {o}) per "
                  "level of each contrast factor.", section="refusals", digits=3)
    if ref.table.height == 0:
        return []
    art.table(f"refusal_sensitivity_{safe_name(o)}", ref.table,
              f"The contrast of {label} had the refused replies answered ({ref.unit}): among "
              "answers only; its lower and upper bounds (every refused reply 0 in one level "
              "and 1 in the other: no assumption about the refusals); and model-based (they "
              "answer as the answered replies with the same covariates).",
              section="refusals", digits=2)
    out = []
    for term, level, m in ref.ranges():
        ans, mod = m.get("answers only"), m.get("model-based")
        text = (f"Among answers, the {label} contrast {level} ({term}) is "
                f"{_pp(ans['mean'], ref.unit)} ({ans['hdi_low']:.1f} to "
                f"{ans['hdi_high']:.1f})")
        lo, hi = m.get("lower bound"), m.get("upper bound")
        if lo is not None and hi is not None:
            text += (f"; had the refused replies answered, it would lie between "
                     f"{_pp(lo['mean'], ref.unit)} and {_pp(hi['mean'], ref.unit)} whatever "
                     f"they said ({lo['hdi_low']:.1f} to {hi['hdi_high']:.1f} with the "
                     "posterior uncertainty)")
        text += (f"; had they answered as the answered replies with the same covariates, "
                 f"{_pp(mod['mean'], ref.unit)} ({mod['hdi_low']:.1f} to "
                 f"{mod['hdi_high']:.1f}).")
        out.append(text)
    for row in ref.shares.iter_rows(named=True):
        out.append(f"P(refusal) in {row['term']} = {row['level']}: "
                   f"{row['p_refusal_mean']:.2f} ({row['p_refusal_hdi_low']:.2f} to "
                   f"{row['p_refusal_hdi_high']:.2f}; {row['refused']} of {row['replies']} "
                   "replies refused).")
    return out


def _methods(res: JointResult) -> str:
    spec, st = res.spec, res.fit.settings
    parts = "; ".join(f"{p}: {spec.parts[p].model.formula} ({spec.parts[p].model.family})"
                      for p in spec.parts)
    linked = "; ".join(
        f"the {'intercepts and slopes' if s.slopes else 'effects'} of {s.grouping} in "
        f"{', '.join(s.parts)} (id {s.cor_id}, "
        f"{len(s.levels)} levels) are multivariate normal with an LKJ({s.eta:g}) prior on "
        "their correlation and each part's own prior on its SD (non-centred, zero-sum over "
        "the levels)" for s in res.fit.joint.shared)
    return (f"We fitted one Bayesian model of {len(spec.parts)} parts ({parts}) in PyMC, "
            f"sampled with {st.get('sampler')} ({st.get('chains')} chains of "
            f"{st.get('draws')} draws after {st.get('tune')} warm-up, target acceptance "
            f"{st.get('target_accept')}). {linked[:1].upper() + linked[1:]}. Each part's "
            "estimands are computed from its share of the joint posterior, draw by draw. The "
            "latent slope of one part's effects on another's is rho x SD_y / SD_x per draw; "
            "the two-step slope, for comparison, is the OLS slope of the levels' empirical "
            "link-scale estimates (t interval), whose measurement error attenuates it."
            + (" " + _attempts(st) if _attempts(st) else ""))


def render_joint(res: JointResult) -> tuple[Path, dict[str, float]]:
    """Figures, tables and the page of a joint analysis; (the page, seconds per stage)."""
    t0 = time.perf_counter()
    folder, est = res.folder, res.estimands
    art = _Artifacts(folder)
    art.skipped += list(est.notes)
    art.table("correlations", est.correlations,
              "Correlation of the parts' effects of each shared factor: latent (the joint "
              "posterior: mean, SD, HDI, P(> 0)) and two-step (Pearson correlation of the "
              "levels' own estimates, Fisher-z interval).", section="joint", digits=3)
    art.table("slopes", est.slopes,
              "Regression slope of one part's effects on another's (each part's link scale): "
              "latent (rho x SD_y / SD_x, draw by draw) and two-step (OLS of the levels' own "
              "estimates, t interval).", section="joint", digits=3)
    prob = float(est.correlations["hdi_prob"][0]) if est.correlations.height else 0.95
    for (term, x, y), cells in est.cells.items():
        sl = est.slopes.filter((pl.col("term") == term) & (pl.col("parts") == f"{y} on {x}"))
        by = {r["method"]: r["mean"] for r in sl.iter_rows(named=True)}
        art.figure(f"joint_{safe_name(term)}_{safe_name(y)}_{safe_name(x)}",
                   lambda c=cells, x=x, y=y, t=term, b=by: figs.joint_cells(
                       c, xlabel=f"{t} effect in {x} (link scale)",
                       ylabel=f"{t} effect in {y} (link scale)", latent_slope=b.get("latent"),
                       two_step_slope=b.get("two-step"), prob=prob),
                   f"Each level of {term}: its effect in {y} against its effect in {x}, joint "
                   f"posterior mean with {prob:.0%} HDIs (cross), and its two-step estimate "
                   "(open circle: the level's own empirical estimate, centred), joined to the "
                   "posterior mean; lines: the latent and the two-step regression slopes.",
                   section="joint")
        art.table(f"joint_cells_{safe_name(term)}", cells,
                  f"Levels of {term}: posterior effects in {x} and {y} and their two-step "
                  "estimates.", section="joint", digits=3, show=False)
    sentences = joint_sentences(res)
    for ref in res.refusals:
        sentences += _refusal_outputs(art, res, ref)
    summary_pl = pl.from_pandas(res.summary.reset_index(names="parameter"))
    art.table("parameters", summary_pl, "Posterior summary of every parameter.",
              section="other", digits=3, show=False)
    gate = res.gate
    findings = ([] if gate.passed else [
        "The sampler did not converge by the declared thresholds "
        f"({'; '.join(gate.failures)}): treat every number below as provisional."])
    findings += sentences
    findings += [f"Part {p}: {r.estimands.means.height if r.estimands is not None else 0} "
                 f"marginal means and its checks in its own report (parts/{p}/report.html)."
                 for p, r in res.parts.items()]
    st = res.fit.settings
    stages = {**res.stages, "figures and tables": time.perf_counter() - t0}
    spec = res.spec
    model = ModelInfo(
        formula="; ".join(f"{p}: {spec.parts[p].model.formula}" for p in spec.parts),
        family="; ".join(f"{p}: {spec.parts[p].model.family}" for p in spec.parts),
        priors={f"{p}: {k}": str(v) for p, s in res.fit.joint.parts.items()
                for k, v in s.priors.items()},
        sampler={k: st.get(k) for k in ("sampler", "chains", "tune", "draws", "seed",
                                         "target_accept", "adaptation")},
        notes=[f"centring: {k} {v}" for k, v in (st.get("centered") or {}).items()]
        + [f"target_accept {st.get('target_accept')}: "
           f"{st.get('target_accept_reason', 'set by user')}"]
        + (["posterior reused from cache (data, spec and versions unchanged)"]
           if res.cached else [])
        + ["no automatic refit for a joint model: after a failed gate, raise [fit] draws or "
           "target_accept"] + art.skipped
        + ["time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())])
    ctx = ReportContext(
        title=spec.title, analysis=spec.name, description=spec.content.analysis.description,
        generated=f"biasstats {__version__}, {_dt.date.today().isoformat()}",
        findings=findings, diagnostics=res.diag, diagnostics_table=_worst_parameters(summary_pl),
        model=model, figures=art.figures, tables=art.tables, methods=_methods(res),
        extra_files=[*[(f"part {p}: report", folder / "parts" / p / "report.html")
                       for p in res.parts], *res.files],
        base_dir=folder)
    return write_report(ctx, folder / "report.html"), stages
