"""Write a design analysis (:mod:`biasstats.design`): its table, per-simulation results,
recommendation and assurance-curve figure, each file atomically.

``<out>/design.csv``   one row per design size and contrast row (every column of
                       :func:`biasstats.design.summarise`, full precision)
``<out>/design.tex``   the same for a paper: size, rows, median width [quartiles], the power
                       column (Monte Carlo SE, 95% Wilson interval) and coverage
``<out>/sims.csv``     one row per size, simulation and contrast row (true value, estimate,
                       interval, scores, sampler diagnostics)
``<out>/design.json``  the estimand, target, recommendation, parameter source and settings
``<out>/assurance.{pdf,svg,png}``  the assurance curves
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from biasstats.io import write_csv_atomic, write_text_atomic
from biasstats.report.figures import assurance
from biasstats.report.style import save_figure
from biasstats.report.tables import format_interval, format_number, to_latex

__all__ = ["write_design", "paper_table"]


def _pm(value: float, se: float) -> str:
    return f"{format_number(value, 2)} ± {format_number(se, 2)}"


def _short(unit: str) -> str:
    """A unit short enough for an axis label."""
    return {"percentage points": "pp"}.get(unit, unit)


def paper_table(result) -> pl.DataFrame:
    """The reader-facing table: sizes, rows, (stratum,) contrast, median width with its
    quartiles, the power column as "p ± MC SE" with its 95% Wilson interval, and coverage."""
    t = result.table
    cols: dict[str, pl.Series] = {f: t[f] for f in result.factors}
    cols["rows"] = t["rows"]
    for c in ("stratum", "level", "category"):
        if c in t.columns:
            cols["contrast" if c == "level" else c] = t[c]
    cols[f"median width ({result.unit})"] = t["width_median"]
    cols["width quartiles"] = pl.Series([
        format_interval(a, b) for a, b in zip(t["width_q25"], t["width_q75"], strict=True)],
        dtype=pl.Utf8)
    p = result.power_column
    cols[result.power_label] = pl.Series(
        [_pm(v, s) for v, s in zip(t[p], t[f"{p}_mcse"], strict=True)], dtype=pl.Utf8)
    cols["95% interval (Wilson)"] = pl.Series(
        [format_interval(a, b, 2) for a, b in zip(t[f"{p}_lo"], t[f"{p}_hi"], strict=True)],
        dtype=pl.Utf8)
    cols["coverage"] = pl.Series(
        [_pm(v, s) for v, s in zip(t["coverage"], t["coverage_mcse"], strict=True)],
        dtype=pl.Utf8)
    cols["sims"] = t["sims"]
    return pl.DataFrame(cols)


def write_design(result, folder: str | Path) -> dict[str, Path]:
    """Write every output of ``result`` (a :class:`biasstats.design.DesignAnalysis`) into
    ``folder``; returns the paths by kind."""
    folder = Path(folder)
    pct = int(round(result.prob * 100))
    caption = (f"Design analysis of {result.estimand}: {pct}% HDI width, "
               f"{result.power_label} and coverage over {result.settings.get('sims')} "
               f"simulated studies per design size (parameters from the {result.source}).")
    out = {"csv": write_csv_atomic(folder / "design.csv", result.table),
           "tex": write_text_atomic(folder / "design.tex",
                                    to_latex(paper_table(result), caption, "tab:design",
                                             intervals=None)),
           "sims": write_csv_atomic(folder / "sims.csv", result.sims),
           "json": write_text_atomic(folder / "design.json", result.to_json())}
    target = result.target
    fig = assurance(result.table, factors=result.factors, power_column=result.power_column,
                    power_label=result.power_label,
                    width_label=f"Median {pct}% HDI width ({_short(result.unit)})",
                    power_target=target.value if target and target.kind == "power" else None,
                    width_target=target.value if target and target.kind == "width" else None)
    out.update(save_figure(fig, folder, "assurance"))
    return out
