"""The derived estimands' table, figures, findings and methods sentence
(``[effects.derived.<name>]``, :mod:`biasstats.effects.derived`).

Each is worded from its own ``label`` and ``unit`` (or its score's), never from a study's
vocabulary; the table goes out as CSV and LaTeX like every other table of the report.
"""

from __future__ import annotations

import polars as pl

from biasstats.effects.estimands import Estimands
from biasstats.names import safe_name
from biasstats.report import figures as figs
from biasstats.report.tables import hdi_label

__all__ = ["derived_findings", "derived_methods", "derived_outputs"]

MAX_PANELS = 12      # small multiples: at most this many panels ...
MAX_ROWS = 40        # ... and rows
MAX_LISTED = 8       # strata named in one findings sentence


def _fmt(v: float) -> str:
    a = abs(v)
    d = 0 if a >= 100 else (1 if a >= 10 else 2)
    return f"{v:,.{d}f}".replace("-", "−")


def _ci(r: dict) -> str:
    return f"{_fmt(r['hdi_low'])} to {_fmt(r['hdi_high'])}"


def _names(est: Estimands) -> list[str]:
    """Derived estimands with rows, in declared order."""
    have = set(est.derived["term"].to_list()) if est.derived.height else set()
    return [name for name, _ in est.request.derived if name in have]


def _panels(df: pl.DataFrame) -> pl.DataFrame | None:
    """``panel`` (the last factor of ``within``) and ``row`` (the others) of each stratum; one
    panel when ``within`` has one factor; None when there are too many to draw."""
    within = [f for f in str(df["within"][0]).split(":") if f]
    parts = [str(lv).split(":") for lv in df["level"].to_list()]
    if len(within) > 1 and all(len(p) == len(within) for p in parts):
        out = df.with_columns(pl.Series("panel", [p[-1] for p in parts]),
                              pl.Series("row", [":".join(p[:-1]) for p in parts]))
    else:
        out = df.with_columns(pl.lit(within[0] if within else "").alias("panel"),
                              pl.col("level").alias("row"))
    if out["panel"].n_unique() > MAX_PANELS or out["row"].n_unique() > MAX_ROWS:
        return None
    return out


def derived_outputs(art, est: Estimands, *, section: str = "estimands") -> None:
    """The "Derived estimands" table (every derived estimand and stratum, in declared order)
    and, for an estimand with more than one stratum, small multiples of its strata."""
    names = _names(est)
    if not names:
        return
    df = pl.concat([est.derived.filter(pl.col("term") == n) for n in names])
    pct = int(round(est.request.prob * 100))
    hdi = hdi_label(df)
    table = {"Estimand": df["label"], "Stratum": df["level"], "Mean": df["mean"],
             hdi: [f"[{_fmt(lo)}, {_fmt(hi)}]" for lo, hi in
                   zip(df["hdi_low"], df["hdi_high"], strict=True)],
             "Null": df["null"], "P(> null)": df["p_positive"]}
    if "verdict" in df.columns and df["verdict"].drop_nulls().len():
        table["ROPE"] = df["verdict"].fill_null("")
    table["Unit"] = df["unit"].fill_null("")
    exprs = "; ".join(f"{n} = {est.derived.filter(pl.col('term') == n)['expr'][0]}"
                      for n in names)
    art.table("derived", pl.DataFrame(table),
              f"Derived estimands, each computed per posterior draw from the model's expected "
              f"outcome within each stratum (P() and E() average the observed rows of the "
              f"stratum, and of the level named): posterior mean, {pct}% HDI, the posterior "
              f"probability that it exceeds its null value, and the ROPE verdict where a ROPE "
              f"is declared. Expressions: {exprs}.", section=section, digits=3)
    for name in names:
        d = df.filter(pl.col("term") == name)
        if d.height < 2:
            continue
        panels = _panels(d)
        if panels is None:
            art.skipped.append(f"figure derived_{name} not drawn: more than {MAX_PANELS} "
                               f"panels or {MAX_ROWS} rows")
            continue
        r = d.row(0, named=True)
        xlabel = r["label"] + (f" ({r['unit']})" if r["unit"] else "")
        art.figure(f"derived_{safe_name(name)}",
                   lambda p=panels, x=xlabel, n=r["null"]: figs.derived_panels(
                       p, xlabel=x, null=n),
                   f"{r['label'][:1].upper()}{r['label'][1:]} ({name}) in each stratum of "
                   f"{r['within']}: posterior mean and {pct}% HDI; the dashed line is its null "
                   f"value {_fmt(r['null'])}.", section=section)


def derived_findings(est: Estimands, names=None) -> list[str]:
    """One sentence per derived estimand (those of ``names``; default all), in declared
    order: its value (one stratum) or its value in each stratum (the first
    :data:`MAX_LISTED`), with HDIs and units."""
    out = []
    pct = int(round(est.request.prob * 100))
    for name in _names(est):
        if names is not None and name not in names:
            continue
        d = est.derived.filter(pl.col("term") == name)
        r = d.row(0, named=True)
        label = r["label"][:1].upper() + r["label"][1:]
        unit = f" {r['unit']}" if r["unit"] and r["unit"] != "probability" else ""
        if d.height == 1:
            s = (f"{label} is {_fmt(r['mean'])}{unit} ({pct}% HDI {_ci(r)}); P(> "
                 f"{_fmt(r['null'])}) = {r['p_positive']:.2f}")
            if r.get("verdict"):
                s += f"; {r['verdict']} (ROPE {_fmt(r['rope_low'])} to {_fmt(r['rope_high'])})"
            out.append(s + ".")
            continue
        rows = list(d.iter_rows(named=True))
        listed = ", ".join(f"{x['level']} {_fmt(x['mean'])} ({_ci(x)})"
                           for x in rows[:MAX_LISTED])
        more = f", … and {len(rows) - MAX_LISTED} more (table below)" \
            if len(rows) > MAX_LISTED else ""
        out.append(f"{label}{unit and ' (' + unit.strip() + ')'} by {r['within']} "
                   f"({pct}% HDI): {listed}{more}.")
    return out


def derived_methods(est: Estimands) -> str:
    """The methods clause on derived estimands (empty without any)."""
    if not _names(est):
        return ""
    return ("derived estimands are functions of the per-draw marginal means (each P() or E() "
            "is the posterior expected outcome averaged over the observed rows of its stratum, "
            "and of the level it names, weighted by their observations), evaluated draw by "
            "draw and summarised like the other estimands")
