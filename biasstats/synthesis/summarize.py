"""A synthesis across analyses, computed and written: ``biasstats summarize``.

:func:`summarize` reads one estimand's draws from every analysis
(:mod:`biasstats.synthesis.collect`), ranks them (:mod:`~biasstats.synthesis.leaderboard`)
and pools them (:mod:`~biasstats.synthesis.meta`); :func:`write_summary` writes, under the
summary's folder: ``leaderboard.csv`` / ``.tex`` (analysis, mean, HDI, P(rank 1), median rank
and its interval), ``rank_probabilities.csv`` (P(rank = k)), ``meta_analysis.csv`` / ``.tex``,
``figures/leaderboard.{pdf,svg,png}``, ``summary.json`` (the numbers, for a program) and
``summary.html`` (linking each analysis' report); then the reports index lists the summary.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from biasstats.errors import BiasstatsError
from biasstats.io import write_csv_atomic, write_text_atomic
from biasstats.names import visible
from biasstats.report.figures.plot_leaderboard import leaderboard as leaderboard_figure
from biasstats.report.page import (
    FigureEntry,
    ReportContext,
    TableEntry,
    refresh_index,
    write_report,
)
from biasstats.report.style import save_figure
from biasstats.report.tables import format_number, write_table
from biasstats.synthesis.collect import AnalysisDraws, collect, find_analyses
from biasstats.synthesis.leaderboard import Leaderboard, leaderboard
from biasstats.synthesis.meta import MetaAnalysis, random_effects
from biasstats.synthesis.spec import SummaryRequest
from biasstats.version import __version__

__all__ = ["SUMMARY_FILE", "Summary", "summarize", "write_summary"]

FIGURE_ROWS = 40  # analyses drawn in the leaderboard figure (the tables hold every one)
SUMMARY_FILE = "summary.json"  # marks a summary folder (the reports index lists it)
# the scales on which "no effect" is a value worth a reference line
_NULLS = {"difference": 0.0, "slope": 0.0, "difference (rating points)": 0.0, "ratio": 1.0,
          "odds_ratio": 1.0}


@dataclass(frozen=True)
class Summary:
    request: SummaryRequest
    analyses: list[AnalysisDraws]
    board: Leaderboard
    meta: MetaAnalysis

    @property
    def unit(self) -> str:
        return self.analyses[0].unit

    @property
    def scale(self) -> str:
        return self.analyses[0].scale


def summarize(req: SummaryRequest) -> Summary:
    """Read, rank and pool: every mistake in the request or the folders is one line."""
    folders = find_analyses(req.sources, req.base,
                            key=f"{req.spec_path}: [summary] analyses" if req.spec_path
                            else "analyses")
    analyses = collect(folders, req.selector)
    if len(analyses) < 2:
        raise BiasstatsError(f"a synthesis needs at least two analyses; found one: "
                             f"'{visible(analyses[0].name)}' ({analyses[0].folder})")
    names = [a.name for a in analyses]
    board = leaderboard(names, [a.values for a in analyses], prob=req.prob, order=req.order,
                        seed=req.seed)
    meta = random_effects([a.values for a in analyses], prob=req.prob,
                          tau_prior=req.tau_prior, seed=req.seed)
    return Summary(req, analyses, board, meta)


def _num(x: float) -> str:
    return format_number(x, 3 if abs(x) < 10 else 2)


def _pct(prob: float) -> str:
    return f"{100 * prob:g}%"


def _what(s: Summary) -> str:
    """``the contrast of condition (sensitive − neutral), difference in percentage points``"""
    sel = s.request.selector
    a = s.analyses[0]
    parts = [x for x in (a.level if a.level and a.level != "all" else None, sel.stratum,
                         sel.category) if x]
    unit = f" in {a.unit}" if a.unit else ""
    return (f"the {sel.estimand} of {sel.term}"
            + (f" ({', '.join(parts)})" if parts else "")
            + (f", {a.scale}{unit}" if a.scale else unit))


def findings(s: Summary) -> list[str]:
    """The summary's sentences, each number with its interval."""
    p = _pct(s.request.prob)
    mt = {r["parameter"]: r for r in s.meta.table.iter_rows(named=True)}
    mu, tau = mt["pooled effect (mu)"], mt["between-analysis SD (tau)"]
    new = mt["a new analysis (prediction)"]
    top = s.board.table.row(0, named=True)
    word = "highest" if s.board.order == "highest" else "lowest"
    return [
        f"{len(s.analyses)} analyses of {_what(s)}.",
        f"Pooled effect {_num(mu['mean'])} ({p} HDI {_num(mu['hdi_low'])} to "
        f"{_num(mu['hdi_high'])}); between-analysis SD {_num(tau['mean'])} "
        f"({_num(tau['hdi_low'])} to {_num(tau['hdi_high'])}).",
        f"A new analysis would fall between {_num(new['hdi_low'])} and "
        f"{_num(new['hdi_high'])} ({p} prediction interval).",
        f"Ranked {word}: {visible(top['analysis'])}, P(rank 1) = {top['p_best']:.2f} "
        f"(median rank {top['rank_median']}, {p} interval {top['rank_low']}–"
        f"{top['rank_high']}).",
    ]


def methods(s: Summary) -> str:
    """The methods paragraph of a synthesis."""
    m = s.meta
    prior = (f"Half-Normal({_num(m.tau_prior)}), twice the total spread of the draws"
             if m.tau_prior_default else f"Half-Normal({_num(m.tau_prior)}), as declared")
    return (
        f"We compared {_what(s)} across {len(s.analyses)} analyses, each from its own posterior "
        f"draws. Ranks were computed draw by draw from joint draws of the independent "
        f"posteriors ({s.board.joint_draws} per analysis: each analysis' draws shuffled and "
        f"cut to the fewest any analysis has); rank 1 is the {s.board.order} value, ties "
        f"share the better rank, and rank intervals are central {_pct(s.request.prob)} "
        f"intervals. The random-effects meta-analysis models each analysis' true value as "
        f"theta_i ~ Normal(mu, tau) and lets each analysis enter through its draws rather than "
        f"a normal approximation: its posterior stands for its likelihood (its own prior on "
        f"the estimand taken as flat where the posterior has mass), represented by a Gaussian "
        f"kernel density of its draws that keeps their mean and variance (Silverman's "
        f"bandwidth, draws shrunk toward their mean). theta_i then integrates out in closed "
        f"form, and the posterior of (mu, tau) was computed by quadrature on an adaptive grid "
        f"(final cells {m.grid_cells[0]:.3g} by {m.grid_cells[1]:.3g}), with a flat prior on mu "
        f"and tau ~ {prior}; {len(m.mu):,} posterior draws, and theta_new = mu + tau z for "
        f"the prediction interval. Intervals are {_pct(s.request.prob)} highest-density "
        f"intervals. biasstats {__version__}.")


def _leaderboard_table(s: Summary) -> pl.DataFrame:
    return s.board.table.select(
        "analysis", "mean", "sd", "hdi_low", "hdi_high", "p_best", "rank_median", "rank_low",
        "rank_high", "draws").rename({"p_best": "p_rank_1"})


def _summary_json(s: Summary, folder: Path) -> dict:
    req = s.request
    return {
        "name": req.name, "title": req.title or f"Synthesis: {req.selector.label()}",
        "estimand": {"estimand": req.selector.estimand, "term": req.selector.term,
                     "level": s.analyses[0].level, "scale": s.scale, "unit": s.unit,
                     "stratum": req.selector.stratum, "category": req.selector.category},
        "rank": req.order, "hdi_prob": req.prob, "tau_prior": s.meta.tau_prior,
        "tau_prior_default": s.meta.tau_prior_default,
        "meta_analysis": s.meta.table.to_dicts(),
        "leaderboard": s.board.table.to_dicts(),
        "analyses": [{"name": a.name, "title": a.title,
                      "folder": os.path.relpath(a.folder, folder),
                      "report": None if a.report is None else os.path.relpath(a.report, folder)}
                     for a in s.analyses],
        "biasstats": __version__,
    }


def write_summary(s: Summary, folder: str | Path) -> Path:
    """Write the summary's tables, figure, ``summary.json`` and ``summary.html`` into
    ``folder``; then the reports index of its parent folder lists it. Returns the page."""
    folder = Path(folder)
    req = s.request
    p = _pct(req.prob)
    what = _what(s)
    opening = what[:1].upper() + what[1:]  # the same words, opening a sentence
    title = req.title or f"Synthesis: {visible(req.selector.label())}"
    lb = _leaderboard_table(s)
    lb_files = write_table(
        lb, folder / "tables", "leaderboard",
        f"{opening} across analyses, best ({s.board.order}) first: posterior mean, SD and {p} "
        f"HDI, P(rank 1), median rank and its central {p} interval.", "tab:leaderboard",
        intervals={f"{p} HDI": ("hdi_low", "hdi_high"), "rank interval": ("rank_low",
                                                                         "rank_high")},
        column_digits={"rank_median": 0, "rank_low": 0, "rank_high": 0, "draws": 0})
    probs_path = write_csv_atomic(folder / "tables" / "rank_probabilities.csv",
                                  s.board.rank_probabilities)
    meta_files = write_table(
        s.meta.table, folder / "tables", "meta_analysis",
        f"Random-effects meta-analysis of {what} from each analysis' draws: pooled effect, "
        f"between-analysis SD and a new analysis' value (prediction), mean, SD, median and "
        f"{p} HDI.", "tab:meta_analysis", float_digits=3)
    label = (f"{s.scale} ({s.unit})" if s.unit else s.scale) or "value"
    shown = s.board.table.head(FIGURE_ROWS)  # all of them in the tables
    fig = leaderboard_figure(shown, pooled=s.meta.table, ref=_NULLS.get(s.scale),
                             xlabel=label[:1].upper() + label[1:])
    fig_files = save_figure(fig, folder / "figures", "leaderboard")
    write_text_atomic(folder / "summary.json",
                      json.dumps(_summary_json(s, folder), indent=1, default=float) + "\n")
    ctx = ReportContext(
        title=title, analysis=req.name,
        description=f"{len(s.analyses)} analyses compared on {what}.",
        generated=f"biasstats {__version__}, {_dt.date.today().isoformat()}",
        findings=findings(s),
        figures=[FigureEntry("leaderboard", fig_files, section="leaderboard", caption=(
            f"{opening} in each analysis (posterior mean and {p} HDI), best first"
            + (f" (the first {FIGURE_ROWS} of {len(s.analyses)}; all in Table 1)"
               if len(s.analyses) > FIGURE_ROWS else "") + ", with "
            f"P(rank 1) at the right; below the rule, the pooled effect (mu, {p} HDI) and the "
            f"{p} prediction interval of a new analysis."))],
        tables=[TableEntry("leaderboard", lb, section="leaderboard", files=lb_files,
                           caption=f"Leaderboard of {what} (rank 1 = {s.board.order}).",
                           column_digits={"rank_median": 0, "rank_low": 0, "rank_high": 0,
                                          "draws": 0}),
                TableEntry("rank_probabilities", s.board.rank_probabilities,
                           section="leaderboard", files={"csv": probs_path},
                           caption="P(rank = k) of each analysis, draw by draw."),
                TableEntry("meta_analysis", s.meta.table, section="meta", files=meta_files,
                           float_digits=3, caption=(
                               f"Random-effects meta-analysis of {what}, from each "
                               "analysis' draws (see Methods)."))],
        methods=methods(s),
        extra_files=[(f"report: {visible(a.name)}", a.report) for a in s.analyses
                     if a.report is not None],
        base_dir=folder)
    page = write_report(ctx, folder / "summary.html")
    refresh_index(folder.parent)
    return page
