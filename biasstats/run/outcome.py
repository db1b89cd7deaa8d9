"""What running one analysis gives and the steps every kind of analysis shares: the
:class:`AnalysisOutcome`, the stage lines on a terminal, the design diagnosis before sampling,
the data outputs of a computed analysis and the posterior kept after a later user error."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from biasstats.effects.draws import DRAWS_FILE
from biasstats.errors import BiasstatsError
from biasstats.inference.sample import want_progress
from biasstats.io import write_parquet_atomic, write_text_atomic
from biasstats.pipeline import AnalysisResult
from biasstats.spec import Spec

__all__ = ["AnalysisOutcome", "stage_printer", "show_diagnosis", "posterior_kept",
           "write_estimand_draws",
           "write_results", "fit_stages"]


@dataclass(frozen=True)
class AnalysisOutcome:
    name: str
    title: str
    spec_path: Path
    status: str          # "built" | "unavailable" | "ingested" (no model)
    message: str
    gate_passed: bool | None = None
    allow_failure: bool = False
    report: Path | None = None
    cached: bool = False
    stages: tuple[tuple[str, float], ...] = ()   # (stage, seconds), in order
    sweep: str | None = None   # the [sweep] this analysis is a member of

    def time_line(self) -> str:
        """``time: ingest 0.4 s, compile 12.1 s, ...`` (empty without stages)."""
        return "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.stages) \
            if self.stages else ""

    @property
    def blocking(self) -> bool:
        """A failed convergence gate that the spec does not allow."""
        return self.gate_passed is False and not self.allow_failure


def stage_printer(spec: Spec, progress: bool | None):
    """``stage(name)``: on a terminal, one line per stage as it starts (``ingest``, ``fit``,
    ``effects and checks``, ``figures and tables``) on stderr; silent otherwise."""
    if not want_progress(progress):
        return lambda name: None
    return lambda name: print(f"  {spec.name}: {name}...", file=sys.stderr, flush=True)


def show_diagnosis(spec: Spec, prepared, file=None) -> None:
    """The design diagnosis (:mod:`biasstats.model.diagnosis`), one line per hard design on
    stderr, before anything is sampled: always (in a worker process too, whose stderr is the
    terminal's), since it warns of a fit that may not converge."""
    for line in prepared.diagnosis:
        print(f"  {spec.name}: design: {line}", file=file or sys.stderr, flush=True)


def attempt_printer(spec: Spec, file=None):
    """``say(line)``: the automatic refit's line before each new attempt (what failed, what
    changes and why), on stderr, always (it explains the extra sampling time)."""
    return lambda line: print(f"  {spec.name}: refit: {line}", file=file or sys.stderr,
                              flush=True)


@contextmanager
def posterior_kept(outcome):
    """A user error after sampling says that the posterior is kept (the next run reuses it):
    the sampling is never lost to a mistake found later."""
    try:
        yield
    except BiasstatsError as e:
        if outcome.path is None or outcome.cached:
            raise
        raise type(e)(f"{e} (the posterior is kept in {outcome.path}: the next run reuses "
                      "it; --refit samples again)") from None


def write_results(res: AnalysisResult) -> None:
    """The data outputs of a computed analysis: ``effects.parquet`` (a study's congruence
    effects), ``estimands.parquet``, ``loo_pointwise.parquet`` and ``diagnostics.json``."""
    folder = res.folder
    if res.effects is not None:
        write_parquet_atomic(folder / "effects.parquet", res.effects.table)
    if res.estimands is not None:
        write_parquet_atomic(folder / "estimands.parquet", res.estimands.all_rows())
        write_estimand_draws(folder, res.estimands, res.spec, res.fit, res.study)
    loo = res.checks.loo
    if loo is not None:
        write_parquet_atomic(folder / "loo_pointwise.parquet", pl.DataFrame({
            "elpd_loo": loo["pointwise_elpd"], "pareto_k": loo["pareto_k"]}))
    write_text_atomic(folder / "diagnostics.json",
                      json.dumps(res.diag, indent=2, default=float) + "\n")


def write_estimand_draws(folder: Path, est, spec: Spec, fit, study) -> Path:
    """``estimand_draws.parquet``: the posterior draws behind every row of
    ``estimands.parquet`` (:meth:`~biasstats.effects.estimands.Estimands.draws_table`), with
    what a synthesis across analyses checks before it compares them in the file's metadata:
    the analysis, its outcome and the outcome's declared unit, the response scale, family
    and formula."""
    eff = spec.content.effects
    vocab = study.vocabulary if study is not None else None
    outcome = (vocab.outcome if vocab is not None else None) or eff.outcome_label \
        or fit.spec.formula.response or ""
    meta = {"biasstats_analysis": spec.name, "title": spec.title or spec.name,
            "spec": str(spec.path), "outcome": str(outcome), "outcome_unit": eff.unit or "",
            "response_scale": est.response_scale, "family": fit.spec.family.name,
            "formula": str(fit.formula), "hdi_prob": str(est.request.prob)}
    return write_parquet_atomic(folder / DRAWS_FILE, est.draws_table(), metadata=meta)


def built(spec, counted: str, gate, cached: bool, page, stages: dict) -> AnalysisOutcome:
    """The outcome of an analysis that was built: its status line (``counted``: the ledger's
    counts, the gate, whether the posterior was reused), page and time per stage."""
    msg = (f"{counted}; gate {'passed' if gate.passed else 'FAILED: ' + '; '.join(gate.failures)}"
           + ("; posterior cached" if cached else ""))
    return AnalysisOutcome(spec.name, spec.title, Path(spec.path), "built", msg, gate.passed,
                           spec.content.checks.allow_failure, page, cached,
                           tuple(stages.items()))


def fit_stages(timings: dict, cached: bool, wall: float) -> dict[str, float]:
    """The fit's stages in seconds: compile, sample, log-likelihood, predictive (from the
    fit's own timings); for a cached posterior, the time to load it (and recompute what is
    derived from the draws) instead."""
    if cached:
        return {"load cached posterior": wall}
    comp = timings.get("compile_s")
    out = {}
    if comp is not None:
        out["compile"] = comp
    out["sample"] = timings.get("sampling_s", 0.0) - (comp or 0.0)
    if timings.get("first_attempt_s"):
        out["earlier attempts (refitted)"] = timings["first_attempt_s"]
    out["log-likelihood"] = timings.get("log_likelihood_s", 0.0)
    out["predictive"] = timings.get("predictive_s", 0.0)
    return out


