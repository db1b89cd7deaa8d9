"""The report's "Published vs reanalysis" section: the ``[[replication]]`` comparison
(:func:`biasstats.effects.replication.compare_published`) as a table (CSV + LaTeX), a
forest of published values against the posterior, one findings sentence and one methods
sentence."""

from __future__ import annotations

import math

import polars as pl

from biasstats.effects.replication import RATIO_SCALES
from biasstats.report import figures as figs

__all__ = ["SECTION", "replication_findings", "replication_methods", "replication_outputs",
           "replication_table"]

SECTION = "replication"
_MINUS = "\u2212"


def _num(v, d: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    a = abs(v)
    d = 0 if a >= 1000 else (1 if a >= 100 else (2 if a >= 10 else d))
    return f"{v:,.{d}f}".replace("-", _MINUS)


def _where(r: dict) -> str:
    """The row an entry names, in words: ``contrast of condition | model:test, m1:t1, a − b``."""
    kind, term = r["estimand"].split(":", 1)
    parts = [f"{kind} {term.strip()}", r["stratum"], r["level"] if r["level"] != "all" else None,
             r["category"]]
    return ", ".join(str(p) for p in parts if p)


def _unit(r: dict, unit: str | None = None) -> str:
    """The row's unit, in the outcome's own unit where ``[effects] unit`` names one."""
    u = r["unit"] or r["scale"] or ""
    return u.replace("outcome units", unit) if unit else u


_SCALE_WORDS = {"difference": "difference", "ratio": "ratio", "odds_ratio": "odds ratio",
                "slope": "slope", "mean": "mean", "probability": "probability"}


def replication_table(cmp: pl.DataFrame, unit: str | None = None) -> pl.DataFrame:
    """The reader's table: the row, its unit and source, the published value and interval,
    the reanalysis' mean and HDI, whether the published value lies in the HDI, P(same sign)
    and the ratio reanalysis / published."""
    pct = f"{100 * float(cmp['hdi_prob'][0]):g}%"
    rows = list(cmp.iter_rows(named=True))
    out = {
        "Estimand": [r["estimand"] for r in rows],
        **({"Stratum": [r["stratum"] or "" for r in rows]}
           if cmp["stratum"].drop_nulls().len() else {}),
        "Level": [r["level"] for r in rows],
        **({"Category": [r["category"] or "" for r in rows]}
           if cmp["category"].drop_nulls().len() else {}),
        "Unit": [_unit(r, unit) for r in rows],
        "Published": cmp["published"],
        "Published interval": [
            f"[{_num(r['published_low'])}, {_num(r['published_high'])}]"
            + (" (± 1.96 SE)" if r["published_interval"] == "± 1.96 SE" else "")
            if r["published_low"] is not None else "" for r in rows],
        "Reanalysis": cmp["mean"],
        f"{pct} HDI": [f"[{_num(r['hdi_low'])}, {_num(r['hdi_high'])}]" for r in rows],
        "Inside HDI": cmp["inside"],
        "P(same sign)": cmp["p_same_sign"],
        "Ratio": cmp["ratio"],
        "Source": cmp["citation"],
    }
    return pl.DataFrame(out)


LOG_SPAN = 4.0  # a ratio panel whose values span more than this factor gets a log axis


def _figure_frame(cmp: pl.DataFrame, unit: str | None) -> pl.DataFrame:
    """One row per entry with its label, its panel (one per estimand, scale and unit: never
    a difference beside a ratio), the panel's "no effect" and whether its axis is log."""
    rows = []
    for r in cmp.iter_rows(named=True):
        ratio = r["scale"] in RATIO_SCALES or r["estimand"].startswith("impact:")
        null = 1.0 if ratio else (0.0 if r["scale"] in ("difference", "slope")
                                  or "difference" in (r["scale"] or "") else float("nan"))
        label = ", ".join(str(p) for p in (r["stratum"], r["level"], r["category"]) if p)
        kind, term = r["estimand"].split(":", 1)
        what = ("adverse-impact ratio" if kind == "impact" and r["level"] == "min / max"
                else "ratio to the reference" if kind == "impact" and " / " in r["level"]
                else "ratio to the best level" if kind == "impact"
                else _SCALE_WORDS.get(r["scale"] or "", r["scale"] or ""))
        u = _unit(r, unit)
        xlabel = u if u.startswith(what) else f"{what} ({u})" if u and u != "ratio" else what
        rows.append({**r, "label": label, "null": null, "ratio_axis": ratio,
                     "title": f"{kind} of {term.strip()}", "xlabel": xlabel,
                     "panel": f"{kind} of {term.strip()}: {xlabel}"})
    out = pl.from_dicts(rows, infer_schema_length=None)
    span = out.group_by("panel").agg(
        (pl.max_horizontal("hdi_high", "published_high", "published").max()
         / pl.min_horizontal("hdi_low", "published_low", "published").min()).alias("span"))
    out = out.join(span, on="panel", how="left", maintain_order="left")
    return out.with_columns((pl.col("ratio_axis") & (pl.col("span") > LOG_SPAN)).alias("log"))


def replication_outputs(art, cmp: pl.DataFrame | None, unit: str | None = None) -> None:
    """The table and the forest figure (nothing without ``[[replication]]`` entries);
    ``unit``: the outcome's unit (``[effects] unit``) for "outcome units"."""
    if cmp is None or not cmp.height:
        return
    pct = f"{100 * float(cmp['hdi_prob'][0]):g}%"
    art.figure("replication", lambda: figs.published_forest(_figure_frame(cmp, unit)),
               f"Published values (diamonds; with their interval where one was published) "
               f"against the reanalysis of the same estimands (posterior mean and {pct} HDI), "
               "one panel per estimand and unit; the dashed line marks no effect.",
               section=SECTION)
    art.table("replication", replication_table(cmp, unit),
              f"Published vs reanalysis: each published number beside the posterior of the "
              f"same estimand (mean and {pct} HDI), whether the published value lies inside "
              "the HDI, the posterior probability that the estimand has the published value's "
              "sign (for ratios: lies on the same side of 1) and the ratio reanalysis / "
              "published.", section=SECTION, digits=3)


def replication_findings(cmp: pl.DataFrame | None) -> list[str]:
    """One sentence: how many published values lie inside the reanalysis' HDI, the range
    of the ratios, and each value outside (its row and both numbers)."""
    if cmp is None or not cmp.height:
        return []
    pct = f"{100 * float(cmp['hdi_prob'][0]):g}%"
    n, inside = cmp.height, int(cmp["inside"].sum())
    s = (f"Published vs reanalysis: {inside} of {n} published values lie inside the {pct} "
         "HDI of the reanalysis")
    ratios = cmp["ratio"].drop_nulls()
    if ratios.len():
        s += (f"; the reanalysis is {_num(ratios.min(), 2)} to {_num(ratios.max(), 2)} times "
              "the published value" if ratios.len() > 1 else
              f"; the reanalysis is {_num(ratios[0], 2)} times the published value")
    outside = [r for r in cmp.iter_rows(named=True) if not r["inside"]]
    if outside:
        s += "; outside: " + "; ".join(
            f"{_where(r)} (published {_num(r['published'])}, reanalysis {_num(r['mean'])}, "
            f"{pct} HDI {_num(r['hdi_low'])} to {_num(r['hdi_high'])})" for r in outside[:3])
        if len(outside) > 3:
            s += f"; and {len(outside) - 3} more"
    return [s + " (table below)."]


def replication_methods(cmp: pl.DataFrame | None) -> str:
    """The methods sentence of the comparison."""
    if cmp is None or not cmp.height:
        return ""
    sources = list(dict.fromkeys(cmp["citation"].to_list()))
    pct = f"{100 * float(cmp['hdi_prob'][0]):g}%"
    return (f"We set {cmp.height} published value{'s' if cmp.height > 1 else ''} ("
            + "; ".join(sources[:4]) + (f"; and {len(sources) - 4} more" if len(sources) > 4
                                        else "")
            + ") beside the posterior of the same estimand in this reanalysis: for each, the "
            f"posterior mean and {pct} HDI, whether the published value lies inside that HDI, "
            "the posterior probability that the estimand has the published value's sign (for "
            "ratios, that it lies on the same side of 1) and the ratio of the posterior mean "
            "to the published value; a published standard error is shown as a 95% interval "
            "(± 1.96 SE).")
